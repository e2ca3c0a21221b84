"""Derivatives from the limit definition f'(x) = lim_{h->0} (f(x+h) - f(x))/h.

For a rational function of x the algebra is shown in full: substitute, expand the numerator,
cancel h, let h -> 0. Where algebra alone cannot cancel h (exp, log, sin, ...), the derivation
says which standard limits carry the argument instead of pretending. With a point, a table of
forward and central difference quotients for h = 1e-1 ... 1e-8 (float64) shows the convergence
and where rounding error takes over.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..calculus.api import ExprLike, as_expr, check_point_names, derive, evaluate, numeric
from ..errors import InputError
from ..functions import expm1, log1p, relu, sigmoid, softplus
from ..primitives import BY_SYMPY_CLASS
from .render import Explained, align, grouped, latex_text, wrap

#: Step sizes of the convergence table.
STEP_SIZES: tuple[float, ...] = tuple(10.0**-k for k in range(1, 9))


# --------------------------------------------------------------------------- float64 evaluation


#: Float64 implementations of the functions symdiff parses (an expression tree walker's table),
#: taken from the primitives table.
FLOAT_FUNCTIONS: dict[type, Callable[..., float]] = {
    cls: row.evaluate for cls, row in BY_SYMPY_CLASS.items()
}


def float_value(expr: sp.Expr, values: Mapping[sp.Symbol, float]) -> float:
    """``expr`` evaluated in float64, one operation at a time (nan where undefined)."""
    try:
        return _float(expr, values)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return math.nan


def _float(expr: sp.Expr, values: Mapping[sp.Symbol, float]) -> float:
    if isinstance(expr, sp.Symbol):
        return float(values[expr])
    if expr.is_Number or isinstance(expr, sp.NumberSymbol):
        return float(expr)
    args = [_float(arg, values) for arg in expr.args]
    if isinstance(expr, sp.Add):
        return sum(args[1:], args[0])
    if isinstance(expr, sp.Mul):
        return math.prod(args)
    if isinstance(expr, sp.Pow):
        result = args[0] ** args[1]
        if isinstance(result, complex):
            raise ValueError("complex power")
        return result
    function = next((FLOAT_FUNCTIONS[c] for c in type(expr).__mro__ if c in FLOAT_FUNCTIONS), None)
    if function is None:
        raise TypeError(f"no float64 rule for {type(expr).__name__}")
    return float(function(*args))


# --------------------------------------------------------------------------- standard limits

#: Standard limits by the function that needs them: (text, LaTeX).
STANDARD_LIMITS: dict[str, tuple[str, str]] = {
    "exp": ("lim h->0 (exp(h) - 1)/h = 1", r"\lim_{h \to 0} \frac{e^{h} - 1}{h} = 1"),
    "log": ("lim t->0 log(1 + t)/t = 1", r"\lim_{t \to 0} \frac{\log(1 + t)}{t} = 1"),
    "sin": ("lim h->0 sin(h)/h = 1", r"\lim_{h \to 0} \frac{\sin h}{h} = 1"),
    "cos": ("lim h->0 (cos(h) - 1)/h = 0", r"\lim_{h \to 0} \frac{\cos h - 1}{h} = 0"),
    "power": (
        "lim t->0 ((1 + t)**a - 1)/t = a",
        r"\lim_{t \to 0} \frac{(1 + t)^{a} - 1}{t} = a",
    ),
    "kink": (
        "|u|, max and relu have no derivative where the argument is 0 (a kink); elsewhere "
        "they equal a linear piece locally and the limit is that piece's slope",
        r"\text{at a kink (argument } 0\text{) the limit does not exist; elsewhere the "
        r"function is linear nearby}",
    ),
}

#: Which standard limits each function's derivative rests on (functions built from exp use exp).
NEEDS_LIMITS: dict[type, tuple[str, ...]] = {
    sp.exp: ("exp",),
    sp.log: ("log",),
    log1p: ("log",),
    expm1: ("exp",),
    sp.sin: ("sin", "cos"),
    sp.cos: ("sin", "cos"),
    sp.tan: ("sin", "cos"),
    sp.sec: ("sin", "cos"),
    sp.csc: ("sin", "cos"),
    sp.cot: ("sin", "cos"),
    sp.sinh: ("exp",),
    sp.cosh: ("exp",),
    sp.tanh: ("exp",),
    sigmoid: ("exp",),
    softplus: ("exp", "log"),
    sp.Abs: ("kink",),
    relu: ("kink",),
    sp.Max: ("kink",),
    sp.Min: ("kink",),
}


def standard_limits_for(expr: sp.Expr, wrt: sp.Symbol) -> tuple[list[str], list[str]]:
    """(standard-limit keys, names of functions with no standard limit here) used by ``expr``."""
    keys: list[str] = []
    unexplained: list[str] = []
    for node in sp.preorder_traversal(expr):
        if not isinstance(node, sp.Basic) or not node.has(wrt):
            continue
        if isinstance(node, sp.Pow):
            base, exponent = node.args
            if exponent.has(wrt) or base.is_Number:
                needed: tuple[str, ...] = ("exp", "log")
            elif not exponent.is_Integer:
                needed = ("power",)
            else:
                continue
        elif isinstance(node, (sp.Function, sp.Max, sp.Min)):
            needed = next((NEEDS_LIMITS[c] for c in type(node).__mro__ if c in NEEDS_LIMITS), ())
            if not needed:
                unexplained.append(type(node).__name__)
        else:
            continue
        keys += [k for k in needed if k not in keys]
    return keys, sorted(set(unexplained))


# --------------------------------------------------------------------------- the derivation


@dataclass(frozen=True)
class LimitLine:
    """One line of the derivation: the body of the limit (or, when ``final``, the answer)."""

    text: str
    latex: str
    note: str
    final: bool = False


@dataclass(frozen=True)
class QuotientRow:
    """Difference quotients at one step size h, and their errors against the exact derivative."""

    h: float
    forward: float
    central: float
    error_forward: float
    error_central: float


@dataclass(frozen=True)
class LimitDerivation(Explained):
    """f'(x) from the limit definition: the algebra (or the standard limits used), the result,
    and, at a point, the convergence table of difference quotients."""

    expression: sp.Expr
    wrt: sp.Symbol
    lines: tuple[LimitLine, ...]
    result: sp.Expr
    algebraic: bool
    standard_limits: tuple[str, ...]
    point: dict[str, sp.Expr] | None = None
    exact_value: sp.Expr | None = None
    table: tuple[QuotientRow, ...] = ()

    def text(self) -> str:
        x = self.wrt
        out = wrap(f"Differentiate {self.expression} with respect to {x} from the definition:")
        out += wrap(f"f'({x}) = lim h->0 (f({x} + h) - f({x}))/h", "  ")
        out.append("")
        for number, line in enumerate(self.lines, start=1):
            body = line.text if line.final else f"lim h->0 {line.text}"
            out += wrap(f"{number}. {line.note}:", "")
            out += wrap(("= " if line.final else "") + body, "     ")
        if self.standard_limits:
            out.append("")
            out.append("Standard limits used:")
            for key in self.standard_limits:
                out += wrap(f"- {STANDARD_LIMITS[key][0]}", "  ")
        out.append("")
        out += wrap(f"Answer: f'({x}) = {self.result}")
        if self.table:
            out.append("")
            out += self._table_text()
        return "\n".join(out)

    def _point_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in (self.point or {}).items())

    def _table_text(self) -> list[str]:
        if self.exact_value is None:  # limit_derivation makes a table only with the exact value
            raise ValueError("a difference-quotient table needs the exact value")
        exact = numeric(self.exact_value)
        shown = str(self.exact_value)
        if not self.exact_value.is_Integer:
            shown += f" = {exact:.12g}"
        lines = wrap(f"Difference quotients at {self._point_text()} (float64); exact f' = {shown}")
        lines.append("forward = (f(x+h) - f(x))/h, central = (f(x+h) - f(x-h))/(2h)")
        header = f"{'h':>7}  {'forward':>19}  {'error':>9}  {'central':>19}  {'error':>9}"
        lines += [header, "-" * len(header)]
        for row in self.table:
            lines.append(
                f"{row.h:>7.0e}  {row.forward:>19.12g}  {row.error_forward:>9.2e}  "
                f"{row.central:>19.12g}  {row.error_central:>9.2e}"
            )
        return lines

    def markdown(self) -> str:
        x = sp.latex(self.wrt)
        out = [
            f"**Differentiate** ${sp.latex(self.expression)}$ with respect to ${x}$ from the "
            f"definition $f'({x}) = \\lim_{{h \\to 0}} \\frac{{f({x} + h) - f({x})}}{{h}}$",
            "",
        ]
        for number, line in enumerate(self.lines, start=1):
            body = line.latex if line.final else rf"\lim_{{h \to 0}} {line.latex}"
            out.append(f"{number}. {line.note}: $${'= ' if line.final else ''}{body}$$")
        if self.standard_limits:
            out += ["", "Standard limits used:", ""]
            out += [f"- ${STANDARD_LIMITS[k][1]}$" for k in self.standard_limits]
        out += ["", f"**Answer:** $f'({x}) = {sp.latex(self.result)}$"]
        if self.table:
            out += [
                "",
                f"Difference quotients at {self._point_text()} (float64); exact value "
                f"${_latex_exact(self.exact_value)}$",
                "",
                "| h | forward | error | central | error |",
                "|---|---|---|---|---|",
            ]
            out += [
                f"| {r.h:.0e} | {r.forward:.12g} | {r.error_forward:.2e} | {r.central:.12g} | "
                f"{r.error_central:.2e} |"
                for r in self.table
            ]
        return "\n".join(out)

    def latex(self) -> str:
        x = sp.latex(self.wrt)
        rows = [
            rf"f'({x}) &= \lim_{{h \to 0}} \frac{{f({x} + h) - f({x})}}{{h}} "
            rf"&& \text{{definition}}"
        ]
        for line in self.lines:
            body = line.latex if line.final else rf"\lim_{{h \to 0}} {line.latex}"
            rows.append(rf"&= {body} && \text{{{_latex_note(line.note)}}}")
        for key in self.standard_limits:
            rows.append(rf"& {STANDARD_LIMITS[key][1]} && \text{{standard limit}}")
        if self.table:
            where = ", ".join(
                f"{sp.latex(sp.Symbol(k))} = {sp.latex(v)}" for k, v in (self.point or {}).items()
            )
            rows.append(
                rf"& f'\big|_{{{where}}} = {_latex_exact(self.exact_value)} "
                r"&& \text{difference quotients (float64):}"
            )
            table = [
                r"\begin{array}{rrrrr}",
                r"h & \text{forward} & \text{error} & \text{central} & \text{error} \\ \hline",
            ]
            table += [
                rf"{_latex_float(r.h, '.0e')} & {r.forward:.12g} & {_latex_float(r.error_forward)}"
                rf" & {r.central:.12g} & {_latex_float(r.error_central)} \\"
                for r in self.table
            ]
            table.append(r"\end{array}")
            rows.append("& " + "\n".join(table))
        return align(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "limit",
            "expression": str(self.expression),
            "wrt": str(self.wrt),
            "result": str(self.result),
            "algebraic": self.algebraic,
            "steps": [
                {"note": line.note, "expression": line.text, "limit": not line.final}
                for line in self.lines
            ],
            "standard_limits": [STANDARD_LIMITS[k][0] for k in self.standard_limits],
            "at": None if self.point is None else {k: str(v) for k, v in self.point.items()},
            "exact_value": None if self.exact_value is None else numeric(self.exact_value),
            "table": [
                {
                    "h": r.h,
                    "forward": r.forward,
                    "central": r.central,
                    "error_forward": r.error_forward,
                    "error_central": r.error_central,
                }
                for r in self.table
            ],
        }


def _latex_float(value: float, spec: str = ".2e") -> str:
    mantissa, _, exponent = f"{value:{spec}}".partition("e")
    if not exponent:
        return mantissa
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def _latex_exact(value: sp.Expr) -> str:
    if value.is_Integer:
        return sp.latex(value)
    return rf"{sp.latex(value)} \approx {numeric(value):.12g}"


def _latex_grouped(expr: sp.Expr) -> str:
    latex = sp.latex(expr)
    return rf"\left({latex}\right)" if isinstance(expr, sp.Add) else latex


def _latex_note(note: str) -> str:
    return latex_text(note).replace("->", r"$\to$")


def _step_variable(expr: sp.Expr) -> sp.Symbol:
    """h, or a fresh name when the expression already uses h."""
    names = {s.name for s in expr.free_symbols}
    name = next(n for n in ("h", "dh", "delta_h", "h_step") if n not in names)
    return sp.Symbol(name, real=True)


#: Largest total degree whose expansion the limit derivation writes out (a polynomial of degree
#: d in x and h has up to (d+1)(d+2)/2 terms; (x+1)**200 would have 20,301).
MAX_EXPANDED_DEGREE = 24


def _degree_bound(expr: sp.Expr) -> int:
    """An upper bound of the total degree of a rational expression, without expanding it."""
    if expr.is_Symbol:
        return 1
    if expr.is_Number:
        return 0
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer:
        return _degree_bound(expr.base) * abs(int(expr.exp))
    if isinstance(expr, (sp.Add, sp.Mul)):
        degrees = [_degree_bound(a) for a in expr.args]
        return max(degrees) if isinstance(expr, sp.Add) else sum(degrees)
    return MAX_EXPANDED_DEGREE + 1


def _expansion_is_small(expr: sp.Expr) -> bool:
    """Whether writing out the expanded numerator stays readable (and fast)."""
    return _degree_bound(expr) <= MAX_EXPANDED_DEGREE


def _rational_lines(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> tuple[list[LimitLine], sp.Expr]:
    """Substitute, expand the numerator over a common denominator, cancel h, let h -> 0."""
    shifted = f.xreplace({x: x + h})
    lines = [
        LimitLine(
            f"({grouped(shifted)} - {grouped(f)})/{h}",
            rf"\frac{{{_latex_grouped(shifted)} - {_latex_grouped(f)}}}{{{sp.latex(h)}}}",
            f"substitute f({x} + {h}) and f({x})",
        )
    ]
    numerator, denominator = sp.fraction(sp.together(shifted - f))
    numerator = sp.expand(numerator)
    quotient = sp.Mul(numerator, sp.Pow(h * denominator, -1), evaluate=False)
    note = "expand the numerator" + (" over a common denominator" if denominator != 1 else "")
    lines.append(LimitLine(f"({numerator})/{grouped(h * denominator)}", sp.latex(quotient), note))
    cancelled = sp.expand(sp.cancel(numerator / h))
    after = cancelled if denominator == 1 else cancelled / denominator
    lines.append(
        LimitLine(
            grouped(after),
            _latex_grouped(after),
            f"cancel {h} (every term of the numerator has a factor {h})",
        )
    )
    result = sp.factor_terms(after.xreplace({h: 0}))
    lines.append(LimitLine(str(result), sp.latex(result), f"let {h} -> 0", final=True))
    return lines, result


#: Worked identities for f(x) = F(x) of one elementary function: (text, LaTeX) of the rewritten
#: quotient, built from x and h, and the limit keys they use.
_SINGLE_FUNCTION_FORMS: dict[type, Callable[[sp.Symbol, sp.Symbol], tuple[str, str, str]]] = {
    sp.exp: lambda x, h: (
        f"exp({x})*(exp({h}) - 1)/{h}",
        rf"e^{{{x}}} \cdot \frac{{e^{{{h}}} - 1}}{{{h}}}",
        f"factor out exp({x}): exp({x} + {h}) = exp({x})*exp({h})",
    ),
    sp.sin: lambda x, h: (
        f"sin({x})*(cos({h}) - 1)/{h} + cos({x})*sin({h})/{h}",
        rf"\sin {x} \cdot \frac{{\cos {h} - 1}}{{{h}}} + \cos {x} \cdot \frac{{\sin {h}}}{{{h}}}",
        f"sin({x} + {h}) = sin({x})*cos({h}) + cos({x})*sin({h})",
    ),
    sp.cos: lambda x, h: (
        f"cos({x})*(cos({h}) - 1)/{h} - sin({x})*sin({h})/{h}",
        rf"\cos {x} \cdot \frac{{\cos {h} - 1}}{{{h}}} - \sin {x} \cdot \frac{{\sin {h}}}{{{h}}}",
        f"cos({x} + {h}) = cos({x})*cos({h}) - sin({x})*sin({h})",
    ),
    sp.log: lambda x, h: (
        f"(1/{x})*log(1 + t)/t  with t = {h}/{x}",
        rf"\frac{{1}}{{{x}}} \cdot \frac{{\log(1 + t)}}{{t}}, \quad t = \frac{{{h}}}{{{x}}}",
        f"log({x} + {h}) - log({x}) = log(1 + {h}/{x})",
    ),
}


def _transcendental_lines(
    f: sp.Expr, x: sp.Symbol, h: sp.Symbol, result: sp.Expr, keys: list[str], unexplained: list
) -> list[LimitLine]:
    shifted = f.xreplace({x: x + h})
    lines = [
        LimitLine(
            f"({grouped(shifted)} - {grouped(f)})/{h}",
            rf"\frac{{{_latex_grouped(shifted)} - {_latex_grouped(f)}}}{{{sp.latex(h)}}}",
            f"substitute f({x} + {h}) and f({x})",
        )
    ]
    form = _SINGLE_FUNCTION_FORMS.get(type(f)) if f.args == (x,) else None
    if form is not None:
        text, latex, note = form(x, h)
        lines.append(LimitLine(text, latex, note))
        lines.append(LimitLine(str(result), sp.latex(result), "apply the standard limits", True))
        return lines
    note = f"algebra alone cannot cancel {h} here"
    if f.is_rational_function(x):
        degree = _degree_bound(f)
        note = (
            f"expanding the numerator would write up to {(degree + 1) * (degree + 2) // 2:,} "
            f"terms (degree {degree}); every term but those linear in {h} vanishes as "
            f"{h} -> 0, which the power, product and chain rules collect"
        )
    if keys:
        note += (
            f"; the limit follows from the standard limits ({', '.join(keys)}) through the "
            "sum, product and chain rules, each proved from this definition"
        )
    if unexplained:
        note += (
            f"; for {', '.join(unexplained)} symdiff uses the known derivative from its rule "
            "table (see symdiff steps --list-rules), not a limit shown here"
        )
    lines.append(LimitLine(str(result), sp.latex(result), note, final=True))
    return lines


def limit_derivation(
    expr: ExprLike, wrt: str | sp.Symbol | None = None, at: str | Mapping | None = None
) -> LimitDerivation:
    """f'(x) from the limit definition, and the difference-quotient table at ``at`` if given."""
    expression = as_expr(expr)
    derivation = derive(expression, wrt)
    if len(derivation.variables) != 1:
        raise InputError("the limit definition needs exactly one variable (use --wrt)")
    x = derivation.variables[0]
    h = _step_variable(expression)
    algebraic = bool(expression.is_rational_function(x)) and _expansion_is_small(expression)
    if algebraic:
        lines, result = _rational_lines(expression, x, h)
        keys: list[str] = []
    else:
        result = derivation.result
        keys, unexplained = standard_limits_for(expression, x)
        lines = _transcendental_lines(expression, x, h, result, keys, unexplained)
    point = exact = None
    table: tuple[QuotientRow, ...] = ()
    if at is not None:
        point = check_point_names(at, expression)
        exact = evaluate(derivation.result, point)
        table = quotient_table(expression, x, point, exact)
    return LimitDerivation(
        expression, x, tuple(lines), result, algebraic, tuple(keys), point, exact, table
    )


def quotient_table(
    expr: sp.Expr, x: sp.Symbol, point: Mapping[str, sp.Expr], exact: sp.Expr
) -> tuple[QuotientRow, ...]:
    """Forward (f(x+h) - f(x))/h and central (f(x+h) - f(x-h))/(2h) quotients in float64."""
    symbols = {s.name: s for s in expr.free_symbols}
    values = {symbols[k]: float(v) for k, v in point.items() if k in symbols}
    if x not in values:
        raise InputError(f"--at must give a value for {x}")
    exact_float = numeric(exact)
    if exact_float is None:
        raise InputError(f"the derivative is not a finite number at {x}={point[x.name]}")
    x0 = values[x]

    def f(at_x: float) -> float:
        return float_value(expr, {**values, x: at_x})

    rows = []
    for h in STEP_SIZES:
        forward = (f(x0 + h) - f(x0)) / h
        central = (f(x0 + h) - f(x0 - h)) / (2 * h)
        rows.append(
            QuotientRow(h, forward, central, abs(forward - exact_float), abs(central - exact_float))
        )
    return tuple(rows)
