"""Rule-by-rule derivations rendered for people: numbered, nested steps as text, Markdown, LaTeX
or JSON, built from the ``Step`` records of ``differentiate`` and the simplified result of
``calculus.derive``. Every formula in text goes through ``symdiff.text`` (it parses back); a
composite step shows its rule, the rule with the step's parts substituted, and the result; a
derivative of an expression of several variables is written with ∂.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..calculus.api import ExprLike, as_expr, derive
from ..calculus.rules import RULE_FORMULAS
from ..calculus.steps import Step
from ..errors import InputError
from ..text import formula
from ..text import grouped as text_grouped
from .applied import Applied, applied
from .render import Explained, align, latex_text, wrap

#: Rules that combine substeps; their header line shows the rule's formula.
COMPOSITE_RULES = frozenset(
    {"sum", "constant_multiple", "product", "quotient", "chain", "general_power", "max", "min"}
)


def rule_title(rule: str) -> str:
    """'constant_multiple' -> 'constant multiple'."""
    return rule.replace("_", " ")


def d_text(wrt: sp.Symbol, partial: bool = False) -> str:
    """d/dx, or ∂/∂x for a partial derivative."""
    return f"∂/∂{wrt.name}" if partial else f"d/d{wrt.name}"


def _latexd_text(wrt: sp.Symbol, partial: bool = False) -> str:
    if partial:
        return rf"\frac{{\partial}}{{\partial {sp.latex(wrt)}}}"
    return rf"\frac{{d}}{{d{sp.latex(wrt)}}}"


#: Composite rules as shown inside a partial derivative by v (∂ instead of primes).
PARTIAL_RULES: dict[str, str] = {
    "sum": "∂(f + g)/∂{v} = ∂f/∂{v} + ∂g/∂{v}",
    "constant_multiple": "∂(c*f)/∂{v} = c*∂f/∂{v}",
    "product": "∂(f*g)/∂{v} = ∂f/∂{v}*g + f*∂g/∂{v}",
    "quotient": "∂(f/g)/∂{v} = (∂f/∂{v}*g - f*∂g/∂{v})/g**2",
    "chain": "∂f(g)/∂{v} = f'(g) * ∂g/∂{v}",
    "general_power": "∂(f**g)/∂{v} = f**g*(∂g/∂{v}*log(f) + g*(∂f/∂{v})/f)",
    "max": "∂max(f, g)/∂{v} = H(f - g)*∂f/∂{v} + H(g - f)*∂g/∂{v}",
    "min": "∂min(f, g)/∂{v} = H(g - f)*∂f/∂{v} + H(f - g)*∂g/∂{v}",
}

#: The chain rule as shown for a derivative by v of a function of v alone.
ORDINARY_CHAIN = "d/d{v} f(g({v})) = f'(g({v})) * g'({v})"


def shown_rule(rule: str, wrt: sp.Symbol, partial: bool) -> str | None:
    """The formula shown under a composite step, in the step's own variable."""
    if rule not in COMPOSITE_RULES or rule not in RULE_FORMULAS:
        return None
    if partial:
        return PARTIAL_RULES[rule].format(v=wrt.name)
    return ORDINARY_CHAIN.format(v=wrt.name) if rule == "chain" else RULE_FORMULAS[rule]


def _numbered(steps: tuple[Step, ...], prefix: str = "") -> list[tuple[str, Step]]:
    return [(f"{prefix}{i}.", step) for i, step in enumerate(steps, start=1)]


@dataclass(frozen=True)
class At:
    """A step in place: its number (``1.2.``), label (``inner, power``), nesting depth, and
    whether it is a partial derivative (∂)."""

    number: str
    label: str
    step: Step
    depth: int
    partial: bool

    @property
    def applied(self) -> Applied | None:
        """The step's rule with its parts substituted (None when it would repeat the result)."""
        shown = applied(self.step)
        return None if shown is None or shown.text == formula(self.step.result) else shown


@dataclass(frozen=True)
class StepStyle:
    """How one format writes the parts of a step; ``render_step`` walks the tree."""

    leaf: Callable[[At], list[str]]
    head: Callable[[At], list[str]]
    rule: Callable[[At, str], list[str]]
    let: Callable[[At], list[str]]
    multiply: Callable[[At], list[str]]
    conclude: Callable[[At], list[str]]


def render_step(
    style: StepStyle,
    number: str,
    step: Step,
    partial_wrt: sp.Symbol | None,
    depth: int = 0,
    role: str = "",
) -> list[str]:
    """The step and its substeps, numbered 1., 1.1., ...; chain substeps are outer and inner.

    Steps by ``partial_wrt`` are partial derivatives (∂); a chain's outer step is by its letter.
    """
    label = f"{role}, {rule_title(step.rule)}" if role else rule_title(step.rule)
    at = At(number, label, step, depth, step.wrt == partial_wrt)
    if not step.substeps:
        return style.leaf(at)
    lines = style.head(at)
    formula_shown = shown_rule(step.rule, step.wrt, at.partial)
    if formula_shown is not None:
        lines += style.rule(at, formula_shown)
    chain = step.rule == "chain"
    if chain:
        lines += style.let(at)
    roles = ("outer", "inner") if chain else ("",) * len(step.substeps)
    for (sub_number, sub), sub_role in zip(_numbered(step.substeps, number), roles, strict=True):
        lines += render_step(style, sub_number, sub, partial_wrt, depth + 1, sub_role)
    finish = style.multiply if chain else style.conclude
    return lines + finish(at)


def _indent(at: At, body: bool = False) -> str:
    """Three columns per level: a step's number at its depth, its body one level in."""
    return "   " * (at.depth + body)


def operand(expr: sp.Expr) -> str:
    """The expression after d/dx: bare when no operator could bind it wrongly."""
    return text_grouped(expr, "Mul")


def _text_head(at: At) -> str:
    step = at.step
    return f"{at.number} {at.label}: {d_text(step.wrt, at.partial)} {step.operand_text()}"


def _text_chain(at: At) -> str:
    step = at.step
    return (
        f"let {step.variable} = {step.substeps[1].text()}, so {step.text()} = "
        f"{step.substeps[0].text()}"
    )


def _text_conclude(at: At, lead: str) -> list[str]:
    middle = "" if at.applied is None else f"{at.applied.text} = "
    return wrap(f"{lead}{middle}{formula(at.step.result)}", _indent(at, True))


TEXT_STYLE = StepStyle(
    leaf=lambda at: wrap(f"{_text_head(at)} = {formula(at.step.result)}", _indent(at)),
    head=lambda at: wrap(_text_head(at), _indent(at)),
    rule=lambda at, shown: wrap(f"rule: {shown}", _indent(at, True)),
    let=lambda at: wrap(_text_chain(at), _indent(at, True)),
    multiply=lambda at: _text_conclude(at, "multiply: "),
    conclude=lambda at: _text_conclude(
        at, f"so {d_text(at.step.wrt, at.partial)} {at.step.operand_text()} = "
    ),
)


def _latex_derivative(at: At) -> str:
    step = at.step
    return rf"{_latexd_text(step.wrt, at.partial)}\left({step.latex()}\right)"


def _latex_result(at: At) -> str:
    """'applied = result' in LaTeX (the applied rule only where it adds something)."""
    middle = "" if at.applied is None else f"{at.applied.latex} = "
    return f"{middle}{sp.latex(at.step.result)}"


def _md(at: At, body: bool = False) -> str:
    return "  " * (at.depth + body) + "- "


MARKDOWN_STYLE = StepStyle(
    leaf=lambda at: [
        f"{_md(at)}**{at.number}** *{at.label}*: ${_latex_derivative(at)} = "
        f"{sp.latex(at.step.result)}$"
    ],
    head=lambda at: [f"{_md(at)}**{at.number}** *{at.label}*: ${_latex_derivative(at)}$"],
    rule=lambda at, shown: [f"{_md(at, True)}rule: `{shown}`"],
    let=lambda at: [
        f"{_md(at, True)}let ${sp.latex(at.step.variable)} = {at.step.substeps[1].latex()}$, "
        f"so ${at.step.latex()} = {at.step.substeps[0].latex()}$"
    ],
    multiply=lambda at: [f"{_md(at, True)}multiply: ${_latex_result(at)}$"],
    conclude=lambda at: [f"{_md(at, True)}so ${_latex_derivative(at)} = {_latex_result(at)}$"],
)


def _pad(depth: int) -> str:
    return rf"\hspace{{{depth * 1.5:g}em}}" if depth else ""


def _latex_label(at: At) -> str:
    return rf"&{_pad(at.depth)}\text{{{latex_text(f'{at.number} {at.label}')}:}} && "


LATEX_STYLE = StepStyle(
    leaf=lambda at: [_latex_label(at) + f"{_latex_derivative(at)} = {sp.latex(at.step.result)}"],
    head=lambda at: [_latex_label(at) + _latex_derivative(at)],
    rule=lambda at, shown: [],
    let=lambda at: [
        rf"&{_pad(at.depth + 1)}\text{{let}} && {sp.latex(at.step.variable)} = "
        rf"{at.step.substeps[1].latex()}"
    ],
    multiply=lambda at: [rf"&{_pad(at.depth + 1)}\text{{multiply:}} && {_latex_result(at)}"],
    conclude=lambda at: [
        rf"&{_pad(at.depth + 1)}\text{{so}} && {_latex_derivative(at)} = {_latex_result(at)}"
    ],
)


def _step_data(step: Step) -> dict[str, Any]:
    """``Step.to_dict`` plus ``"applied"``: the rule with the step's parts substituted."""
    data = step.to_dict()
    shown = applied(step)
    if shown is not None:
        data["applied"] = shown.text
    data["substeps"] = [_step_data(sub) for sub in step.substeps]
    return data


@dataclass(frozen=True, repr=False)
class Explanation(Explained):
    """d(expression)/d(wrt) rule by rule: ``steps`` (one per differentiation), the raw chain-rule
    result and its simplified form ``result`` (what ``symdiff diff`` prints)."""

    expression: sp.Expr
    wrt: sp.Symbol
    steps: tuple[Step, ...]
    raw: sp.Expr
    result: sp.Expr

    @property
    def partial(self) -> bool:
        """Whether this is a partial derivative: the expression has more than one variable."""
        return len(self.expression.free_symbols) > 1

    @property
    def _partial_wrt(self) -> sp.Symbol | None:
        return self.wrt if self.partial else None

    def _held_constant(self) -> str:
        """' (y, z held constant)' for a partial derivative, '' otherwise."""
        others = sorted(s.name for s in self.expression.free_symbols if s != self.wrt)
        return f" ({', '.join(others)} held constant)" if others else ""

    def _expression_text(self) -> str:
        """The expression as typed (as its first step records it), else as SymPy prints it."""
        return self.steps[0].text() if self.steps else formula(self.expression)

    def _expression_latex(self) -> str:
        """The expression in LaTeX as typed (as its first step records it)."""
        return self.steps[0].latex() if self.steps else sp.latex(self.expression)

    def _operand_text(self) -> str:
        return self.steps[0].operand_text() if self.steps else operand(self.expression)

    def _final_lines(self) -> tuple[str, str]:
        count = len(self.steps) + 1
        if self.raw == self.result:
            simplify = f"{count}. simplify: {formula(self.result)} is already in simplest form"
        else:
            simplify = f"{count}. simplify: {formula(self.raw)} = {formula(self.result)}"
        answer = (
            f"Answer: {d_text(self.wrt, self.partial)} {self._operand_text()} = "
            f"{formula(self.result)}"
        )
        return simplify, answer

    def text(self) -> str:
        lines = wrap(
            f"Differentiate {self._expression_text()} with respect to {self.wrt}, rule by rule"
            f"{self._held_constant()}."
        )
        lines.append("")
        for number, step in _numbered(self.steps):
            lines += render_step(TEXT_STYLE, number, step, self._partial_wrt)
        simplify, answer = self._final_lines()
        lines += wrap(simplify)
        lines.append("")
        lines += wrap(answer)
        return "\n".join(lines)

    def markdown(self) -> str:
        d = _latexd_text(self.wrt, self.partial)
        lines = [
            f"**Differentiate** ${self._expression_latex()}$ with respect to "
            f"${sp.latex(self.wrt)}$, rule by rule{self._held_constant()}.",
            "",
        ]
        for number, step in _numbered(self.steps):
            lines += render_step(MARKDOWN_STYLE, number, step, self._partial_wrt)
        count = len(self.steps) + 1
        if self.raw == self.result:
            lines.append(f"- **{count}.** *simplify*: already in simplest form")
        else:
            lines.append(
                f"- **{count}.** *simplify*: ${sp.latex(self.raw)} = {sp.latex(self.result)}$"
            )
        lines += [
            "",
            rf"**Answer:** ${d}\left({self._expression_latex()}\right) = "
            rf"{sp.latex(self.result)}$",
        ]
        return "\n".join(lines)

    def latex(self) -> str:
        rows: list[str] = []
        for number, step in _numbered(self.steps):
            rows += render_step(LATEX_STYLE, number, step, self._partial_wrt)
        count = len(self.steps) + 1
        if self.raw == self.result:
            rows.append(rf"&\text{{{count}. simplify: already in simplest form}} && ")
        else:
            rows.append(
                rf"&\text{{{count}. simplify:}} && {sp.latex(self.raw)} = {sp.latex(self.result)}"
            )
        rows.append(
            rf"&\text{{Answer:}} && {_latexd_text(self.wrt, self.partial)}"
            rf"\left({self._expression_latex()}\right) = {sp.latex(self.result)}"
        )
        return align(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "rules",
            "expression": self._expression_text(),
            "wrt": self.wrt.name,
            "partial": self.partial,
            "result": formula(self.result),
            "raw": formula(self.raw),
            "steps": [_step_data(step) for step in self.steps],
        }


def explain(expr: ExprLike, wrt: str | sp.Symbol | None = None) -> Explanation:
    """The rule-by-rule derivation of d(expr)/d(wrt), ending in the simplified answer."""
    expression = as_expr(expr)
    derivation = derive(expr if isinstance(expr, str) else expression, wrt)
    if len(derivation.variables) != 1:
        raise InputError("a step-by-step derivation needs exactly one variable (use --wrt)")
    return Explanation(
        expression, derivation.variables[0], derivation.steps, derivation.raw, derivation.result
    )


def rules_table(fmt: str = "text") -> str:
    """Every rule name with its formula (``symdiff steps --list-rules``): text, markdown, json."""
    if fmt == "json":
        return json.dumps(RULE_FORMULAS, indent=2)
    if fmt in ("markdown", "latex"):
        rows = [f"| `{name}` | `{formula}` |" for name, formula in RULE_FORMULAS.items()]
        return "\n".join(["| rule | formula |", "|---|---|", *rows])
    width = max(len(name) for name in RULE_FORMULAS)
    return "\n".join(f"{name:<{width}}  {formula}" for name, formula in RULE_FORMULAS.items())


__all__ = ["COMPOSITE_RULES", "Explanation", "explain", "rules_table"]
