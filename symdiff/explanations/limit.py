"""Derivatives from the limit definition f'(x) = lim_{h->0} (f(x+h) - f(x))/h.

For a rational function of x the algebra is shown in full: substitute, expand the numerator,
cancel h, let h -> 0. exp(k*x + b), sigmoid(k*x + b), sqrt of a rational function, sin, cos and
log take their textbook routes (``limit_routes.py``); elsewhere the derivation says which
standard limits carry the argument instead of pretending. With a point, a table of forward and
central difference quotients for h = 1e-1 ... 1e-8 (float64) shows the convergence and where
rounding error takes over; with a step size h (``--h``), the quotient at that h, exact when the
inputs are exact. Every formula printed as text parses back with symdiff's parser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..calculus.api import ExprLike, as_expr, check_point_names, derive, evaluate, numeric
from ..errors import InputError
from ..frontend.parse import parse_number
from ..functions import expm1, log1p, relu, sigmoid, softplus
from ..primitives import BY_SYMPY_CLASS
from ..text import formula, grouped, number, quotient, shortest_decimal
from .limit_routes import LimitLine, cancel_lines, latex_grouped, route_for
from .render import Explained, align, latex_text, wrap

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
class QuotientRow:
    """Difference quotients at one step size h, and their errors against the exact derivative."""

    h: float
    forward: float
    central: float
    error_forward: float
    error_central: float


@dataclass(frozen=True, repr=False)
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
    at_step: AtStep | None = None

    def text(self) -> str:
        x = self.wrt
        out = wrap(
            f"Differentiate {formula(self.expression)} with respect to {x} from the definition:"
        )
        out += wrap(f"f'({x}) = lim h->0 (f({x} + h) - f({x}))/h", "  ")
        out.append("")
        for index, line in enumerate(self.lines, start=1):
            body = line.text if line.final else f"lim h->0 {line.text}"
            out += wrap(f"{index}. {line.note}:", "")
            out += wrap(("= " if line.final else "") + body, "     ")
        if self.standard_limits:
            out.append("")
            out.append("Standard limits used:")
            for key in self.standard_limits:
                out += wrap(f"- {STANDARD_LIMITS[key][0]}", "  ")
        out.append("")
        out += wrap(f"Answer: f'({x}) = {formula(self.result)}")
        if self.at_step is not None:
            out.append("")
            out += self.at_step.text_lines(x, self.exact_value)
        if self.table:
            out.append("")
            out += self._table_text()
        return "\n".join(out)

    def _point_text(self) -> str:
        return point_text(self.point or {})

    def _table_text(self) -> list[str]:
        if self.exact_value is None:  # limit_derivation makes a table only with the exact value
            raise ValueError("a difference-quotient table needs the exact value")
        exact = numeric(self.exact_value)
        shown = formula(self.exact_value)
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
        for index, line in enumerate(self.lines, start=1):
            body = line.latex if line.final else rf"\lim_{{h \to 0}} {line.latex}"
            out.append(f"{index}. {line.note}: $${'= ' if line.final else ''}{body}$$")
        if self.standard_limits:
            out += ["", "Standard limits used:", ""]
            out += [f"- ${STANDARD_LIMITS[k][1]}$" for k in self.standard_limits]
        out += ["", f"**Answer:** $f'({x}) = {sp.latex(self.result)}$"]
        if self.at_step is not None:
            out += ["", self.at_step.markdown(self.wrt, self.exact_value)]
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
        if self.at_step is not None:
            rows.append(self.at_step.latex_row(self.wrt, self.exact_value))
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
            "expression": formula(self.expression),
            "wrt": self.wrt.name,
            "result": formula(self.result),
            "algebraic": self.algebraic,
            "steps": [
                {"note": line.note, "expression": line.text, "limit": not line.final}
                for line in self.lines
            ],
            "standard_limits": [STANDARD_LIMITS[k][0] for k in self.standard_limits],
            "at": None if self.point is None else {k: formula(v) for k, v in self.point.items()},
            "exact_value": None if self.exact_value is None else numeric(self.exact_value),
            "at_h": None if self.at_step is None else self.at_step.to_dict(),
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


def substitute_line(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> LimitLine:
    """(f(x + h) - f(x))/h, written out."""
    shifted = f.xreplace({x: x + h})
    return LimitLine(
        quotient(f"({grouped(shifted, 'Add')} - {grouped(f, 'Add')})", h),
        rf"\frac{{{latex_grouped(shifted)} - {latex_grouped(f)}}}{{{sp.latex(h)}}}",
        f"substitute f({x} + {h}) and f({x})",
    )


def _rational_lines(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> tuple[list[LimitLine], sp.Expr]:
    """Substitute, expand the numerator over a common denominator, cancel h, let h -> 0."""
    lines = [substitute_line(f, x, h)]
    more, after = cancel_lines(f.xreplace({x: x + h}) - f, sp.Integer(1), h, "expand the numerator")
    lines += more
    result = sp.factor_terms(after.xreplace({h: 0}))
    lines.append(LimitLine(formula(result), sp.latex(result), f"let {h} -> 0", final=True))
    return lines, result


def _transcendental_lines(
    f: sp.Expr, x: sp.Symbol, h: sp.Symbol, result: sp.Expr, keys: list[str], unexplained: list
) -> tuple[list[LimitLine], list[str], bool]:
    """The lines, the standard limits used, and whether algebra alone finished the limit."""
    lines = [substitute_line(f, x, h)]
    route = route_for(f, x, h)
    if route is not None:
        lines += route.lines
        lines.append(LimitLine(formula(result), sp.latex(result), route.final_note, True))
        return lines, list(route.keys), not route.keys
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
    lines.append(LimitLine(formula(result), sp.latex(result), note, final=True))
    return lines, keys, False


def limit_derivation(
    expr: ExprLike,
    wrt: str | sp.Symbol | None = None,
    at: str | Mapping | None = None,
    h: str | sp.Expr | float | None = None,
) -> LimitDerivation:
    """f'(x) from the limit definition; at ``at``, the table of difference quotients; with a
    step size ``h``, the quotient (f(x + h) - f(x))/h at that h (exact for exact inputs)."""
    expression = as_expr(expr)
    derivation = derive(expression, wrt)
    if len(derivation.variables) != 1:
        raise InputError("the limit definition needs exactly one variable (use --wrt)")
    x = derivation.variables[0]
    step = None if h is None else step_size(h)
    dh = _step_variable(expression)
    algebraic = bool(expression.is_rational_function(x)) and _expansion_is_small(expression)
    if algebraic:
        lines, result = _rational_lines(expression, x, dh)
        keys: list[str] = []
    else:
        result = derivation.result
        keys, unexplained = standard_limits_for(expression, x)
        lines, keys, algebraic = _transcendental_lines(expression, x, dh, result, keys, unexplained)
    point = exact = None
    table: tuple[QuotientRow, ...] = ()
    if at is not None:
        point = check_point_names(at, expression)
        exact = evaluate(derivation.result, point)
        table = quotient_table(expression, x, point, exact)
    at_step = None
    if step is not None:
        at_step = quotient_at_step(expression, x, step, point or {}, algebraic)
    return LimitDerivation(
        expression, x, tuple(lines), result, algebraic, tuple(keys), point, exact, table, at_step
    )


def step_size(value: str | sp.Expr | float) -> sp.Expr:
    """A step size h for ``--h``: a number (``0.0001``, ``1/10000``, ``1e-4``), not 0."""
    if isinstance(value, str):
        parsed = parse_number(value)
    elif isinstance(value, float):
        parsed = sp.Float(value)
    else:
        parsed = sp.Integer(value) if isinstance(value, int) else value
    if parsed.is_zero:
        raise InputError("--h must not be 0 (the quotient divides by h)")
    return parsed


def exact_number(value: sp.Expr) -> sp.Expr:
    """A decimal as the exact rational it is written as (0.0001 -> 1/10000); others unchanged."""
    if isinstance(value, sp.Float):
        return sp.Rational(shortest_decimal(float(value)))
    return value


def point_text(point: Mapping[str, sp.Expr]) -> str:
    """x=3, y=1/2: a point as the user writes it."""
    return ", ".join(f"{k}={formula(v)}" for k, v in point.items())


@dataclass(frozen=True)
class AtStep:
    """The difference quotient (f(x + h) - f(x))/h at one step size, before the limit: as a
    function of x (``quotient``) and, at a point, its ``value``. Decimal inputs give decimals,
    computed exactly from the decimals as written (0.0001 is 1/10000)."""

    h: sp.Expr
    quotient: sp.Expr
    point: dict[str, sp.Expr]
    value: sp.Expr | None

    def _value_text(self) -> str:
        value = self.value
        if value is None:
            return ""
        if isinstance(value, sp.Float) or value.is_Integer:
            return number(value)
        if value.is_Rational:
            return f"{formula(value)} = {float(value):.12g}"
        return f"{formula(value)} ≈ {number(value, 12)}"

    def text_lines(self, x: sp.Symbol, limit: sp.Expr | None) -> list[str]:
        lines = wrap(f"At h = {formula(self.h)}, before the limit:")
        lines += wrap(f"(f({x} + h) - f({x}))/h = {formula(self.quotient)}", "  ")
        if self.value is not None:
            against = "" if limit is None else f" (the limit: {formula(limit)})"
            lines += wrap(f"at {point_text(self.point)}: {self._value_text()}{against}", "  ")
        return lines

    def markdown(self, x: sp.Symbol, limit: sp.Expr | None) -> str:
        text = (
            f"At $h = {sp.latex(self.h)}$, before the limit: $\\frac{{f({sp.latex(x)} + h) - "
            f"f({sp.latex(x)})}}{{h}} = {sp.latex(self.quotient)}$"
        )
        if self.value is not None:
            text += f"; at {point_text(self.point)}: ${sp.latex(self.value)}$"
            if limit is not None:
                text += f" (the limit: ${sp.latex(limit)}$)"
        return text

    def latex_row(self, x: sp.Symbol, limit: sp.Expr | None) -> str:
        row = (
            rf"& \left.\frac{{f({sp.latex(x)} + h) - f({sp.latex(x)})}}{{h}}\right|_{{h = "
            rf"{sp.latex(self.h)}}} = {sp.latex(self.quotient)}"
        )
        if self.value is not None:
            row += rf" = {sp.latex(self.value)}"
        return row + r" && \text{before the limit}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "h": formula(self.h),
            "quotient": formula(self.quotient),
            "value": None if self.value is None else formula(self.value),
        }


def quotient_at_step(
    expr: sp.Expr, x: sp.Symbol, h: sp.Expr, point: Mapping[str, sp.Expr], rational: bool
) -> AtStep:
    """(f(x + h) - f(x))/h at the step size h, exactly (a rational f is cancelled to lowest
    terms); in decimals when h or a value of the point is a decimal."""
    decimal = isinstance(h, sp.Float) or any(isinstance(v, sp.Float) for v in point.values())
    step = exact_number(h)
    difference = (expr.xreplace({x: x + step}) - expr) / step
    if rational:
        difference = sp.cancel(difference)
    value = None
    symbols = {s.name: s for s in expr.free_symbols}
    if point and x.name in point:
        values = {symbols[k]: exact_number(v) for k, v in point.items() if k in symbols}
        value = evaluate(difference, {k.name: v for k, v in values.items()})
    if decimal:
        difference = as_decimals(difference)
        value = None if value is None else as_decimals(value)
    return AtStep(h, difference, dict(point), value)


def as_decimals(expr: sp.Expr) -> sp.Expr:
    """Fractions as float64 decimals (integers stay integers): 2*x + 1/10000 -> 2*x + 0.0001."""
    if expr.is_Rational and not expr.is_Integer:
        return sp.Float(float(expr))
    if expr.is_number and not expr.is_Rational:
        return sp.Float(float(expr))
    fractions = {r: sp.Float(float(r)) for r in expr.atoms(sp.Rational) if not r.is_Integer}
    return expr.xreplace(fractions)


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
