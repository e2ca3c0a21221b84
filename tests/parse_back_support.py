"""Does a printed formula parse back, with symdiff's own parser, to what it stands for?

``assert_parses_back(text, expected)`` parses ``text`` with ``symdiff.frontend.parse.parse``
(never ``sympify``) and compares the result with ``expected``: equal as SymPy trees, or, when
the forms differ, ``sympy.simplify(got - expected) == 0``; decimals compare as float64. The
helpers below cut the formulas out of the text outputs (``name = formula`` lines, matrix
cells, ``value ≈ decimal``).
"""

from __future__ import annotations

import random
import re

import sympy as sp

from symdiff.frontend.parse import make_symbol, parse

#: Cells of a printed matrix row ``[ a  b  c ]`` are separated by two spaces or more.
CELL_GAP = re.compile(r"\s{2,}")


def unwrapped(text: str) -> list[str]:
    """The logical lines of wrapped text output, stripped: a continuation line is indented 4 more
    than the line it continues (``symdiff.explanations.render.wrap``)."""
    lines: list[tuple[int, str]] = []
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if lines and line.strip() and indent == lines[-1][0] + 4:
            lines[-1] = (lines[-1][0], f"{lines[-1][1]} {line.strip()}")
        else:
            lines.append((indent, line.strip()))
    return [line for _, line in lines]


def parses_back(text: str, expected: sp.Expr | int | float) -> bool:
    """Whether ``text`` parses to ``expected`` (the same tree, or a difference that simplifies
    to 0)."""
    got = parse(text)
    assert not isinstance(expected, str), "expected must be SymPy or a number, not text"
    want = sp.sympify(expected)
    if want.has(sp.I):  # a derivative that is not real ((-2)**x): printed with SymPy's I, which
        got = got.xreplace({make_symbol("I"): sp.I})  # the parser (for real losses) reads as a name
    if got == want:
        return True
    read = {}
    for literal in DECIMAL.findall(text):  # the parser folds a unary minus into the number
        read[parse(literal)] = sp.Float(float(literal))
        read[-parse(literal)] = sp.Float(-float(literal))
    got = got.xreplace(read)
    if got == as_float64(want):
        return True
    return sp.expand(got - want) == 0 or _equal_at_random_points(got, want)


def _equal_at_random_points(got: sp.Expr, want: sp.Expr, points: int = 4) -> bool:
    """Whether two forms agree to 25 digits (float64 precision where decimals are in them) at
    random rational points (bounded work, where
    ``sympy.simplify`` may run for minutes); points where either is not finite are skipped,
    and at least one point must be finite."""
    rng = random.Random(0)
    symbols = sorted(got.free_symbols | want.free_symbols, key=str)
    # a decimal stands for a float64, and the parser folds it into products at 56 bits
    # (-1.7320508075688772*(-sqrt(2)/2) becomes 0.86602540378443864...): forms with decimals
    # agree to float64 precision, exact forms to 25 digits
    tolerance = sp.Float("1e-14") if got.has(sp.Float) or want.has(sp.Float) else sp.Float("1e-25")
    checked = 0
    for _ in range(points * 3):
        at = {s: sp.Rational(rng.randint(-300, 300), rng.randint(50, 150)) for s in symbols}
        a, b = (sp.N(e.subs(at), 30) for e in (got, want))
        if not (a.is_finite and b.is_finite):  # real or complex ((-0.69)**x at x = 1/3)
            continue
        if abs(a - b) > tolerance * (1 + abs(b)):
            return False
        checked += 1
        if checked == points:
            return True
    return checked > 0


#: A decimal literal as the printer writes one (``0.5``, ``1e-05``, ``2.5e+20``).
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d*(?:e[+-]?\d+)?|(?<![\w.])\d+e[+-]?\d+")


def as_float64(expr: sp.Basic) -> sp.Basic:
    """``expr`` with every decimal rounded to float64. A printed decimal stands for its float64
    value, but the parser reads ``7.281413400211799`` at 56 bits, which rounds to the next
    float64; so ``parses_back`` maps each decimal literal of the text to ``float(literal)``."""
    return expr.xreplace({f: sp.Float(float(f)) for f in expr.atoms(sp.Float)})


def assert_parses_back(text: str, expected: sp.Expr | int | float) -> None:
    """Fail, showing both, unless ``text`` parses back to ``expected``."""
    assert parses_back(text, expected), f"{text!r} parses to {parse(text)!r}, not {expected!r}"


def exact_part(value_text: str) -> str:
    """The exact value of a value line: ``pi/6 ≈ 0.52...`` -> ``pi/6``."""
    return value_text.split(" ≈ ")[0]


def after(line: str, separator: str = " = ") -> str:
    """The formula after the first ``separator`` of a line (``d/dx = 2*x`` -> ``2*x``)."""
    assert separator in line, f"{separator!r} not in {line!r}"
    return line.split(separator, 1)[1]


def matrix_cells(line: str) -> list[str]:
    """The cells of one printed matrix row ``  [ 6*x*y   3*x**2 ]``."""
    inner = line.strip()
    assert inner.startswith("[ ") and inner.endswith(" ]"), line
    return CELL_GAP.split(inner[2:-2].strip())


def point_values(text: str) -> dict[str, str]:
    """``x=1/2, y=0.5`` -> {'x': '1/2', 'y': '0.5'}."""
    pairs = (item.split("=", 1) for item in text.split(", "))
    return {name: value for name, value in pairs}


def tuple_items(text: str) -> list[str]:
    """``(a, b(c, d), e)`` -> ['a', 'b(c, d)', 'e'] (commas inside brackets kept)."""
    assert text.startswith("(") and text.endswith(")"), text
    items, depth, current = [], 0, ""
    for char in text[1:-1]:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return items
