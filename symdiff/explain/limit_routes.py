"""Textbook routes through the limit definition, one per function, in a table keyed by the
function's SymPy class: each rewrites (f(x+h) - f(x))/h until a standard limit (or plain algebra)
finishes it. Every line is a formula that symdiff's parser reads back to a function equal to the
difference quotient, for h != 0.

- ``exp(k*x + b)``: factor out exp(k*x + b), then (exp(t) - 1)/t -> 1 with t = k*h (the chain
  rule's inner derivative k appears as the factor that makes t);
- ``sigmoid(k*x + b)``: subtract the fractions 1/(1 + exp(-u)), factor out exp(-u), and the same
  standard limit with t = -k*h;
- ``sqrt(p(x))`` for a rational p: multiply by the conjugate, then the algebra of rational
  functions (no standard limit needed);
- ``sin(x)``, ``cos(x)``, ``log(x)``: the addition theorems and log(1 + t)/t -> 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from ..functions import sigmoid
from ..text import formula, grouped, quotient


@dataclass(frozen=True)
class LimitLine:
    """One line of the derivation: the body of the limit (or, when ``final``, the answer)."""

    text: str
    latex: str
    note: str
    final: bool = False


@dataclass(frozen=True)
class Route:
    """The lines between the substitution and the answer, the note of the last step (h -> 0),
    and the standard limits used (keys of ``STANDARD_LIMITS``)."""

    lines: list[LimitLine]
    final_note: str
    keys: tuple[str, ...] = field(default=())


def linear_slope(u: sp.Expr, x: sp.Symbol) -> sp.Expr | None:
    """k when u = k*x + b (k and b free of x, k != 0), else None."""
    if not u.is_polynomial(x):
        return None
    k = sp.diff(u, x)
    return None if k.has(x) or k == 0 else k


def latex_grouped(expr: sp.Expr) -> str:
    """LaTeX of ``expr``, in parentheses when it is a sum (after a limit sign)."""
    latex = sp.latex(expr)
    return rf"\left({latex}\right)" if isinstance(expr, sp.Add) else latex


def cancel_lines(
    top: sp.Expr, bottom: sp.Expr, h: sp.Symbol, note: str
) -> tuple[list[LimitLine], sp.Expr]:
    """(top)/(h*bottom) with top a difference that vanishes at h = 0: expand top over a common
    denominator, cancel h. Returns the lines and what is left (a function continuous at h = 0)."""
    numerator, denominator = sp.fraction(sp.together(top))
    numerator = sp.expand(numerator)
    below = h * denominator * bottom
    lines = [
        LimitLine(
            quotient(numerator, below),
            rf"\frac{{{sp.latex(numerator)}}}{{{sp.latex(below)}}}",
            note + (" over a common denominator" if denominator != 1 else ""),
        )
    ]
    cancelled = sp.expand(sp.cancel(numerator / h))
    rest = denominator * bottom
    lines.append(
        LimitLine(
            quotient(cancelled, rest) if rest != 1 else grouped(cancelled, "Add"),
            latex_grouped(cancelled / rest),
            f"cancel {h} (every term of the numerator has a factor {h})",
        )
    )
    return lines, cancelled / rest


def _exp_route(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> Route | None:
    u = f.args[0]
    k = linear_slope(u, x)
    if k is None:
        return None
    grown = sp.exp(k * h)
    lines = [
        LimitLine(
            f"{formula(f)}*({formula(grown)} - 1)/{grouped(h)}",
            rf"{sp.latex(f)} \cdot \frac{{{sp.latex(grown)} - 1}}{{{sp.latex(h)}}}",
            f"factor out {formula(f)}: exp({formula(u)} + {formula(k * h)}) = "
            f"{formula(f)}*{formula(grown)}",
        )
    ]
    if k == 1:
        return Route(lines, "apply the standard limits", ("exp",))
    t = k * h
    lines.append(
        LimitLine(
            f"{grouped(k)}*{formula(f)}*({formula(grown)} - 1)/({formula(t)})",
            rf"{sp.latex(k)} \cdot {sp.latex(f)} \cdot \frac{{{sp.latex(grown)} - 1}}"
            rf"{{{sp.latex(t)}}}",
            f"multiply and divide by {formula(k)}, so that t = {formula(t)} -> 0 as {h} -> 0 "
            f"(the chain rule's inner derivative {formula(k)})",
        )
    )
    return Route(lines, f"apply the standard limit with t = {formula(t)}", ("exp",))


def _sigmoid_route(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> Route | None:
    u = f.args[0]
    k = linear_slope(u, x)
    if k is None:
        return None
    before, after, shrink = sp.exp(-u), sp.exp(-u - k * h), sp.exp(-k * h)
    below = h * (1 + after) * (1 + before)
    lead = k * before / ((1 + after) * (1 + before))
    t = -k * h
    lines = [
        LimitLine(
            quotient(f"({formula(before)} - {formula(after)})", below),
            rf"\frac{{{sp.latex(before)} - {sp.latex(after)}}}{{{sp.latex(below)}}}",
            "write sigmoid(u) = 1/(1 + exp(-u)) and subtract the fractions",
        ),
        LimitLine(
            f"{formula(before)}*(1 - {formula(shrink)})/{grouped(below)}",
            rf"\frac{{{sp.latex(before)} \left(1 - {sp.latex(shrink)}\right)}}"
            rf"{{{sp.latex(below)}}}",
            f"factor out {formula(before)}: {formula(after)} = {formula(before)}*{formula(shrink)}",
        ),
        LimitLine(
            f"{grouped(lead)}*({formula(shrink)} - 1)/({formula(t)})",
            rf"{sp.latex(lead)} \cdot \frac{{{sp.latex(shrink)} - 1}}{{{sp.latex(t)}}}",
            f"regroup around the standard limit, with t = {formula(t)} -> 0 as {h} -> 0",
        ),
    ]
    limit = k * before / (1 + before) ** 2
    value = k * f * (1 - f)
    return Route(
        lines,
        f"let {h} -> 0: (exp(t) - 1)/t -> 1 and {formula(after)} -> {formula(before)}, which "
        f"leaves {formula(limit)} = {formula(value)}",
        ("exp",),
    )


#: Largest total degree of a radicand whose conjugate route is written out.
MAX_RADICAND_DEGREE = 12


def _sqrt_route(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> Route | None:
    radicand, exponent = f.args
    if exponent != sp.S.Half or not radicand.is_rational_function(x):
        return None
    if sp.total_degree(sp.together(radicand).as_numer_denom()[0]) > MAX_RADICAND_DEGREE:
        return None
    shifted = radicand.xreplace({x: x + h})
    conjugate = sp.sqrt(shifted) + f
    lines = [
        LimitLine(
            quotient(f"({grouped(shifted, 'Add')} - {grouped(radicand, 'Add')})", h * conjugate),
            rf"\frac{{{latex_grouped(shifted)} - {latex_grouped(radicand)}}}"
            rf"{{{sp.latex(h * conjugate)}}}",
            f"multiply above and below by the conjugate {formula(conjugate)}: "
            "(sqrt(a) - sqrt(b))*(sqrt(a) + sqrt(b)) = a - b",
        )
    ]
    more, _ = cancel_lines(shifted - radicand, conjugate, h, "expand the numerator")
    return Route(lines + more, f"let {h} -> 0: the conjugate tends to 2*{formula(f)}")


Names = Callable[[str, str], str]


def _addition_theorem(
    text: Names, latex: Names, note: Names
) -> Callable[[sp.Expr, sp.Symbol, sp.Symbol], Route | None]:
    """A route for F(x) with one rewritten line (sin, cos, log of the variable itself)."""

    def route(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> Route | None:
        if f.args != (x,):
            return None
        names = (x.name, h.name)
        line = LimitLine(text(*names), latex(sp.latex(x), sp.latex(h)), note(*names))
        return Route([line], "apply the standard limits", KEYS[type(f)])

    return route


#: The standard limits each single-function route uses.
KEYS: dict[type, tuple[str, ...]] = {
    sp.sin: ("sin", "cos"),
    sp.cos: ("sin", "cos"),
    sp.log: ("log",),
}

#: The routes, by the class of f (sqrt is a power).
ROUTES: dict[type, Callable[[sp.Expr, sp.Symbol, sp.Symbol], Route | None]] = {
    sp.exp: _exp_route,
    sigmoid: _sigmoid_route,
    sp.Pow: _sqrt_route,
    sp.sin: _addition_theorem(
        lambda x, h: f"sin({x})*(cos({h}) - 1)/{h} + cos({x})*sin({h})/{h}",
        lambda x, h: (
            rf"\sin {x} \cdot \frac{{\cos {h} - 1}}{{{h}}} + \cos {x} \cdot "
            rf"\frac{{\sin {h}}}{{{h}}}"
        ),
        lambda x, h: f"sin({x} + {h}) = sin({x})*cos({h}) + cos({x})*sin({h})",
    ),
    sp.cos: _addition_theorem(
        lambda x, h: f"cos({x})*(cos({h}) - 1)/{h} - sin({x})*sin({h})/{h}",
        lambda x, h: (
            rf"\cos {x} \cdot \frac{{\cos {h} - 1}}{{{h}}} - \sin {x} \cdot "
            rf"\frac{{\sin {h}}}{{{h}}}"
        ),
        lambda x, h: f"cos({x} + {h}) = cos({x})*cos({h}) - sin({x})*sin({h})",
    ),
    sp.log: _addition_theorem(
        lambda x, h: f"(1/{x})*log(1 + {h}/{x})/({h}/{x})",
        lambda x, h: (
            rf"\frac{{1}}{{{x}}} \cdot \frac{{\log(1 + t)}}{{t}}, \quad "
            rf"t = \frac{{{h}}}{{{x}}}"
        ),
        lambda x, h: f"log({x} + {h}) - log({x}) = log(1 + {h}/{x}); write t = {h}/{x}",
    ),
}


def route_for(f: sp.Expr, x: sp.Symbol, h: sp.Symbol) -> Route | None:
    """The textbook route for f, or None where there is none here."""
    build = ROUTES.get(type(f))
    return None if build is None else build(f, x, h)
