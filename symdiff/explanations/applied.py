"""A rule's right-hand side with one step's parts substituted: the line between a composite rule
and its result (``(f*g)' = f'*g + f*g'`` becomes ``1*sin(x) + x*cos(x)``), as text that symdiff's
parser reads back and as LaTeX. One function per rule, in a table keyed by the rule's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp

from ..calculus.steps import Step
from ..text import formula, grouped


@dataclass(frozen=True)
class Applied:
    """The substituted right-hand side as text (parses back) and as LaTeX."""

    text: str
    latex: str


def factor_text(expr: sp.Expr) -> str:
    """A factor of a product: bare only when no operator could bind it wrongly."""
    return grouped(expr, "Mul")


def base_text(expr: sp.Expr) -> str:
    """The base of a power ``b**2``: bare only for a name, a non-negative integer or a call."""
    bare = expr.is_Symbol or (expr.is_Integer and expr >= 0) or isinstance(expr, sp.Function)
    return formula(expr) if bare else f"({formula(expr)})"


def factor_latex(expr: sp.Expr) -> str:
    """A factor of a product in LaTeX, in parentheses unless it is a name, number or call."""
    bare = expr.is_Symbol or (expr.is_Number and expr >= 0) or isinstance(expr, sp.Function)
    return sp.latex(expr) if bare else rf"\left({sp.latex(expr)}\right)"


def typed_factor(step: Step) -> Applied:
    """A step's expression as a factor: as typed where known, grouped."""
    return Applied(step.operand_text(), factor_latex(step.expression))


def product(factors: Sequence[sp.Expr | Applied]) -> Applied:
    """f1*f2*...: each factor grouped."""
    parts = [
        f if isinstance(f, Applied) else Applied(factor_text(f), factor_latex(f)) for f in factors
    ]
    return Applied("*".join(p.text for p in parts), r" \cdot ".join(p.latex for p in parts))


def term(expr: sp.Expr) -> Applied:
    """A term of a sum: in parentheses when it is itself a sum or starts with a minus sign."""
    needs = isinstance(expr, sp.Add) or sp.latex(expr).startswith("-")
    latex = rf"\left({sp.latex(expr)}\right)" if needs else sp.latex(expr)
    return Applied(grouped(expr, "Add"), latex)


def _sum(terms: Sequence[Applied], signs: Sequence[str] = ()) -> Applied:
    signs = list(signs) or ["+"] * len(terms)
    text = terms[0].text
    latex = terms[0].latex
    for sign, term in zip(signs[1:], terms[1:], strict=True):
        text += f" {sign} {term.text}"
        latex += f" {sign} {term.latex}"
    return Applied(text, latex)


def _sum_rule(step: Step) -> Applied:
    """f' + g' + ...: the derivatives of the terms, in the order of the terms (a negative one
    after a minus sign)."""
    ops = step.typed.ops if step.typed is not None and step.typed.kind == "sum" else ()
    results = [
        -sub.result if op == "-" else sub.result
        for sub, op in zip(step.substeps, ops or ["+"] * len(step.substeps), strict=True)
    ]
    signs = ["-" if r.could_extract_minus_sign() and i else "+" for i, r in enumerate(results)]
    return _sum(
        [term(-r if sign == "-" else r) for r, sign in zip(results, signs, strict=True)], signs
    )


def _constant_multiple(step: Step) -> Applied:
    """c*f': the constant times the derivative of the rest."""
    (sub,) = step.substeps
    return product([step.expression / sub.expression, sub.result])


def _product_rule(step: Step) -> Applied:
    """f1'*f2*...*fn + ... + f1*...*fn': one term per factor, differentiated in its place."""
    factors = [typed_factor(sub) for sub in step.substeps]
    terms = [
        product([*factors[:i], sub.result, *factors[i + 1 :]])
        for i, sub in enumerate(step.substeps)
    ]
    return _sum(terms)


def _quotient_rule(step: Step) -> Applied:
    """(f'*g - f*g')/g**2."""
    top, bottom = step.substeps
    f, g = typed_factor(top), typed_factor(bottom)
    numerator = _sum([product([top.result, g]), product([f, bottom.result])], ["+", "-"])
    base = g.text if g.text.isidentifier() or g.text.isdigit() else f"({g.text})"
    return Applied(
        f"({numerator.text})/{base}**2",
        rf"\frac{{{numerator.latex}}}{{{g.latex}^{{2}}}}",
    )


def _chain_rule(step: Step) -> Applied:
    """f'(g(x))*g'(x): the outer derivative at the inner function times the inner derivative."""
    if step.outer is None or step.variable is None:
        raise ValueError("a chain step records its substitution and outer derivative")
    return product([step.outer.xreplace({step.variable: step.inner}), step.substeps[1].result])


def _general_power(step: Step) -> Applied:
    """f**g*(g'*log(f) + g*f'/f)."""
    f_step, g_step = step.substeps
    f, g = f_step.expression, g_step.expression
    log_f = sp.log(f)
    first = product([g_step.result, log_f])
    second = product([g, f_step.result])
    return Applied(
        f"{factor_text(step.expression)}*({first.text} + {second.text}/{factor_text(f)})",
        rf"{factor_latex(step.expression)} \left({first.latex} + "
        rf"\frac{{{second.latex}}}{{{sp.latex(f)}}}\right)",
    )


#: The substituted right-hand side of each composite rule (max and min show the result only).
APPLIED: dict[str, Callable[[Step], Applied]] = {
    "sum": _sum_rule,
    "constant_multiple": _constant_multiple,
    "product": _product_rule,
    "quotient": _quotient_rule,
    "chain": _chain_rule,
    "general_power": _general_power,
}


def applied(step: Step) -> Applied | None:
    """The step's rule with its parts substituted, or None for a rule without such a line."""
    build = APPLIED.get(step.rule)
    return None if build is None else build(step)
