"""How calculus results show themselves: a short ``repr`` (formulas through ``symdiff.text``)
and Jupyter's ``_repr_markdown_`` / ``_repr_latex_`` for ``Step``, ``Derivation`` and the
``Gradient`` list that ``symdiff.gradient`` returns.

The notation is SymPy's LaTeX of an unevaluated ``Derivative``: d/dx for a function of one
variable, the partial ∂/∂x (and ∂²/∂y∂x for a mixed partial) when there are several. The
narrated, rule-by-rule explanation is ``symdiff.explanations.explain``; these are compact summaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import sympy as sp

from ..text import formula, grouped

if TYPE_CHECKING:  # steps.py imports this module for Step's display methods
    from .steps import Step


def operator_text(variables: Sequence[sp.Symbol]) -> str:
    """d/dx for one variable; d/dy d/dx (x first, then y) for several, as operators compose."""
    return " ".join(f"d/d{formula(v)}" for v in reversed(variables))


def derivative_text(expression: sp.Expr, variables: Sequence[sp.Symbol], result: sp.Expr) -> str:
    """'d/dx (2*x**3 + 5) = 6*x**2'; with no variables, 'f = f'."""
    if not variables:
        return f"{formula(expression)} = {formula(result)}"
    return f"{operator_text(variables)} {grouped(expression)} = {formula(result)}"


def derivative_latex(expression: sp.Expr, variables: Sequence[sp.Symbol]) -> str:
    """d^n f / dx...: SymPy's LaTeX of the unevaluated derivative."""
    if not variables:
        return sp.latex(expression)
    return sp.latex(sp.Derivative(expression, *variables, evaluate=False))


def equation_latex(expression: sp.Expr, variables: Sequence[sp.Symbol], result: sp.Expr) -> str:
    """The derivative written as an equation, in LaTeX (no dollars)."""
    return f"{derivative_latex(expression, variables)} = {sp.latex(result)}"


def plural(count: int, noun: str) -> str:
    """'1 step', '2 steps'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --------------------------------------------------------------------------- steps


def step_repr(step: Step) -> str:
    """Step(chain: d/dx sin(x**2) = 2*x*cos(x**2); 2 substeps), the expression as typed."""
    body = f"{operator_text((step.wrt,))} {step.operand_text()} = {formula(step.result)}"
    return f"Step({step.rule}: {body}; {plural(len(step.substeps), 'substep')})"


def step_markdown_lines(step: Step, depth: int = 0) -> list[str]:
    """The step and its substeps as a nested Markdown list: rule, equation, substitution."""
    pad = "  " * depth
    equation = equation_latex(step.expression, (step.wrt,), step.result)
    lines = [f"{pad}- *{step.rule.replace('_', ' ')}*: ${equation}$"]
    if step.variable is not None and step.inner is not None:
        lines.append(f"{pad}  - let ${sp.latex(step.variable)} = {sp.latex(step.inner)}$")
    for sub in step.substeps:
        lines += step_markdown_lines(sub, depth + 1)
    return lines


def step_markdown(step: Step) -> str:
    """A step as Markdown: a nested list, one item per rule application."""
    return "\n".join(step_markdown_lines(step))


def step_latex(step: Step) -> str:
    """A step as one displayed LaTeX equation, tagged with its rule."""
    equation = equation_latex(step.expression, (step.wrt,), step.result)
    rule = step.rule.replace("_", r"\_")
    return rf"$\displaystyle {equation} \qquad \text{{({rule})}}$"


# --------------------------------------------------------------------------- derivations


def derivation_repr(
    expression: sp.Expr, variables: Sequence[sp.Symbol], steps: Sequence[Step], result: sp.Expr
) -> str:
    """Derivation(d/dx (2*x**3 + 5) = 6*x**2; 1 step)."""
    body = derivative_text(expression, variables, result)
    return f"Derivation({body}; {plural(len(steps), 'step')})"


def derivation_markdown(
    expression: sp.Expr,
    variables: Sequence[sp.Symbol],
    steps: Sequence[Step],
    raw: sp.Expr,
    result: sp.Expr,
) -> str:
    """The equation in bold, the step tree of each differentiation, then the simplification."""
    lines = [f"**Derivative:** ${equation_latex(expression, variables, result)}$", ""]
    for number, step in enumerate(steps, start=1):
        lines.append(f"{number}. differentiate by ${sp.latex(step.wrt)}$:")
        lines += ["   " + line for line in step_markdown_lines(step)]
    if raw != result:
        lines.append(f"{len(steps) + 1}. simplify: ${sp.latex(raw)} = {sp.latex(result)}$")
    return "\n".join(lines)


def derivation_latex(expression: sp.Expr, variables: Sequence[sp.Symbol], result: sp.Expr) -> str:
    """The derivative as one displayed LaTeX equation."""
    return rf"$\displaystyle {equation_latex(expression, variables, result)}$"


# --------------------------------------------------------------------------- gradients


class Gradient(list[sp.Expr]):
    """[df/dx_1, ..., df/dx_n]: a plain list (equal to the list of its entries) that also
    remembers the ``variables`` and the ``expression`` and displays itself as ∇f."""

    def __init__(
        self,
        entries: Iterable[sp.Expr] = (),
        variables: Sequence[sp.Symbol] = (),
        expression: sp.Expr | None = None,
    ) -> None:
        super().__init__(entries)
        self.variables = tuple(variables)
        self.expression = expression

    def __repr__(self) -> str:
        return "[" + ", ".join(formula(entry) for entry in self) + "]"

    def _subscript(self) -> str:
        if len(self.variables) != len(self):
            return ""
        return "_{(" + ", ".join(sp.latex(v) for v in self.variables) + ")}"

    def _function_latex(self) -> str:
        if self.expression is None:
            return ""
        return rf"\left({sp.latex(self.expression)}\right)"

    def _repr_latex_(self) -> str:
        column = r" \\ ".join(sp.latex(entry) for entry in self)
        vector = rf"\begin{{bmatrix}} {column} \end{{bmatrix}}"
        return rf"$\displaystyle \nabla{self._subscript()}{self._function_latex()} = {vector}$"

    def _repr_markdown_(self) -> str:
        if self.expression is None or len(self.variables) != len(self):
            return "\n".join(f"- ${sp.latex(entry)}$" for entry in self)
        return "\n".join(
            f"- ${equation_latex(self.expression, (v,), entry)}$"
            for v, entry in zip(self.variables, self, strict=True)
        )
