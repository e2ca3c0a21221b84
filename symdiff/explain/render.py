"""Rule-by-rule derivations rendered for people: numbered, nested steps as text, Markdown, LaTeX
or JSON, built from the foundation's ``Step`` records (``differentiate``) and the simplified
result of ``calculus.derive``.

Also the small rendering toolkit shared by the limit and graph explanations (``Explained``,
``wrap``) and the answer checker ``check_answer``.
"""

from __future__ import annotations

import json
import random
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ..calculus.api import ExprLike, as_expr, derive, json_number, numeric, resolve_variables
from ..calculus.rules import RULE_FORMULAS
from ..calculus.simplify import simplify_within
from ..calculus.steps import Step
from ..errors import InputError
from ..text import formula
from ..text import grouped as grouped_formula

#: Width of text output (an ordinary terminal).
TEXT_WIDTH = 80

#: Rules that combine substeps; their header line shows the rule's formula.
COMPOSITE_RULES = frozenset(
    {"sum", "constant_multiple", "product", "quotient", "chain", "general_power", "max", "min"}
)


# --------------------------------------------------------------------------- rendering toolkit


def wrap(line: str, indent: str = "", width: int = TEXT_WIDTH) -> list[str]:
    """One logical line as lines of at most ``width`` columns (continuations indented 4 more)."""
    return textwrap.wrap(
        line,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "    ",
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def number_text(value: sp.Expr, digits: int = 10) -> str:
    """An exact integer as is, anything else as a decimal with ``digits`` significant digits."""
    if isinstance(value, sp.Integer):
        return str(value)
    number = numeric(value)
    return formula(value) if number is None else f"{number:.{digits}g}"


def latex_text(text: str) -> str:
    """Plain text made safe inside ``\\text{...}``."""
    replacements = {
        "\\": r"\textbackslash{}",
        "{": r"\{",
        "}": r"\}",
        "_": r"\_",
        "#": r"\#",
        "%": r"\%",
        "&": r"\&",
        "$": r"\$",
        "^": r"\^{}",
        "~": r"\~{}",
    }
    return "".join(replacements.get(char, char) for char in text)


def align(rows: list[str]) -> str:
    """Rows joined into one ``align*`` environment (amsmath)."""
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


class Explained:
    """Mixin: ``render(fmt)`` over text / markdown / latex / json, and Jupyter display hooks."""

    formats: tuple[str, ...] = ("text", "markdown", "latex", "json")

    def text(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def markdown(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def latex(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def render(self, fmt: str = "text") -> str:
        """The explanation in ``fmt``: one of ``self.formats``."""
        renderers: dict[str, Callable[[], str]] = {
            "text": self.text,
            "markdown": self.markdown,
            "latex": self.latex,
            "json": lambda: json.dumps(self.to_dict(), indent=2, ensure_ascii=False),
        }
        extra = getattr(self, "dot", None)
        if extra is not None:
            renderers["dot"] = extra
        if fmt not in self.formats or fmt not in renderers:
            raise InputError(f"unknown format '{fmt}' (choose from {', '.join(self.formats)})")
        return renderers[fmt]()

    def _repr_latex_(self) -> str:
        return self.latex()

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return self.text()


# --------------------------------------------------------------------------- rule-by-rule steps


def rule_title(rule: str) -> str:
    """'constant_multiple' -> 'constant multiple'."""
    return rule.replace("_", " ")


def _d(wrt: sp.Symbol) -> str:
    return f"d/d{wrt}"


def grouped(expr: sp.Expr) -> str:
    """``expr`` as text, in parentheses when it is a sum or starts with a minus sign."""
    text = str(expr)
    needs = isinstance(expr, sp.Add) or (text.startswith("-") and not expr.is_Number)
    return f"({text})" if needs else text


def _latex_d(wrt: sp.Symbol) -> str:
    return rf"\frac{{d}}{{d{sp.latex(wrt)}}}"


def _numbered(steps: tuple[Step, ...], prefix: str = "") -> list[tuple[str, Step]]:
    return [(f"{prefix}{i}.", step) for i, step in enumerate(steps, start=1)]


def _outer_at_inner(step: Step) -> sp.Expr:
    """f'(g(x)): the chain step's outer derivative with u replaced by the inner function."""
    if step.outer is None:  # derivative_steps records outer on every chain-rule step
        raise ValueError(f"a '{step.rule}' step has no outer derivative")
    return step.outer.xreplace({step.variable: step.inner})


@dataclass(frozen=True)
class StepStyle:
    """How one format writes the parts of a step; ``render_step`` walks the tree.

    Each function gets the step's number (``1.2.``), its label (``inner, power``), the step and
    its depth, and returns output lines.
    """

    leaf: Callable[[str, str, Step, int], list[str]]
    head: Callable[[str, str, Step, int], list[str]]
    rule: Callable[[str, str, int], list[str]]
    let: Callable[[str, Step, int], list[str]]
    multiply: Callable[[str, Step, int], list[str]]
    conclude: Callable[[str, Step, int], list[str]]


def render_step(style: StepStyle, number: str, step: Step, depth: int = 0, role: str = "") -> list:
    """The step and its substeps, numbered 1., 1.1., ...; chain substeps are outer and inner."""
    label = f"{role}, {rule_title(step.rule)}" if role else rule_title(step.rule)
    if not step.substeps:
        return style.leaf(number, label, step, depth)
    lines = style.head(number, label, step, depth)
    if step.rule in COMPOSITE_RULES and step.rule in RULE_FORMULAS:
        lines += style.rule(number, RULE_FORMULAS[step.rule], depth)
    chain = step.rule == "chain"
    if chain:
        lines += style.let(number, step, depth)
    roles = ("outer", "inner") if chain else ("",) * len(step.substeps)
    for (sub_number, sub), sub_role in zip(_numbered(step.substeps, number), roles, strict=True):
        lines += render_step(style, sub_number, sub, depth + 1, sub_role)
    finish = style.multiply if chain else style.conclude
    return lines + finish(number, step, depth)


def _text_indent(number: str, depth: int) -> str:
    return "   " * depth + " " * (len(number) + 1)


def _text_head(number: str, label: str, step: Step) -> str:
    return f"{number} {label}: {_d(step.wrt)} {grouped(step.expression)}"


TEXT_STYLE = StepStyle(
    leaf=lambda n, label, step, depth: wrap(
        f"{_text_head(n, label, step)} = {step.result}", "   " * depth
    ),
    head=lambda n, label, step, depth: wrap(_text_head(n, label, step), "   " * depth),
    rule=lambda n, formula, depth: wrap(f"rule: {formula}", _text_indent(n, depth)),
    let=lambda n, step, depth: wrap(
        f"let {step.variable} = {step.inner}, so {step.expression} = {step.substeps[0].expression}",
        _text_indent(n, depth),
    ),
    multiply=lambda n, step, depth: wrap(
        f"multiply: {grouped(_outer_at_inner(step))} * {grouped(step.substeps[1].result)} = "
        f"{step.result}",
        _text_indent(n, depth),
    ),
    conclude=lambda n, step, depth: wrap(
        f"so {_d(step.wrt)} {grouped(step.expression)} = {step.result}", _text_indent(n, depth)
    ),
)


def _md_derivative(step: Step) -> str:
    return rf"$\frac{{d}}{{d{sp.latex(step.wrt)}}}\left({sp.latex(step.expression)}\right)"


MARKDOWN_STYLE = StepStyle(
    leaf=lambda n, label, step, depth: [
        f"{'  ' * depth}- **{n}** *{label}*: {_md_derivative(step)} = {sp.latex(step.result)}$"
    ],
    head=lambda n, label, step, depth: [
        f"{'  ' * depth}- **{n}** *{label}*: {_md_derivative(step)}$"
    ],
    rule=lambda n, formula, depth: [f"{'  ' * (depth + 1)}- rule: `{formula}`"],
    let=lambda n, step, depth: [
        f"{'  ' * (depth + 1)}- let ${sp.latex(step.variable)} = {sp.latex(step.inner)}$, so "
        f"${sp.latex(step.expression)} = {sp.latex(step.substeps[0].expression)}$"
    ],
    multiply=lambda n, step, depth: [
        rf"{'  ' * (depth + 1)}- multiply: $\left({sp.latex(_outer_at_inner(step))}\right) \cdot "
        rf"\left({sp.latex(step.substeps[1].result)}\right) = {sp.latex(step.result)}$"
    ],
    conclude=lambda n, step, depth: [
        f"{'  ' * (depth + 1)}- so {_md_derivative(step)} = {sp.latex(step.result)}$"
    ],
)


def _pad(depth: int) -> str:
    return rf"\hspace{{{depth * 1.5:g}em}}" if depth else ""


def _latex_derivative(step: Step) -> str:
    return rf"{_latex_d(step.wrt)}\left({sp.latex(step.expression)}\right)"


def _latex_label(n: str, label: str, depth: int) -> str:
    return rf"&{_pad(depth)}\text{{{latex_text(f'{n} {label}')}:}} && "


LATEX_STYLE = StepStyle(
    leaf=lambda n, label, step, depth: [
        _latex_label(n, label, depth) + f"{_latex_derivative(step)} = {sp.latex(step.result)}"
    ],
    head=lambda n, label, step, depth: [_latex_label(n, label, depth) + _latex_derivative(step)],
    rule=lambda n, formula, depth: [],
    let=lambda n, step, depth: [
        rf"&{_pad(depth + 1)}\text{{let}} && {sp.latex(step.variable)} = {sp.latex(step.inner)}"
    ],
    multiply=lambda n, step, depth: [
        rf"&{_pad(depth + 1)}\text{{multiply:}} && "
        rf"\left({sp.latex(_outer_at_inner(step))}\right)\cdot"
        rf"\left({sp.latex(step.substeps[1].result)}\right) = {sp.latex(step.result)}"
    ],
    conclude=lambda n, step, depth: [
        rf"&{_pad(depth + 1)}\text{{so}} && {_latex_derivative(step)} = {sp.latex(step.result)}"
    ],
)


@dataclass(frozen=True)
class Explanation(Explained):
    """d(expression)/d(wrt) rule by rule: ``steps`` (one per differentiation), the raw chain-rule
    result and its simplified form ``result`` (what ``symdiff diff`` prints)."""

    expression: sp.Expr
    wrt: sp.Symbol
    steps: tuple[Step, ...]
    raw: sp.Expr
    result: sp.Expr

    def _held_constant(self) -> str:
        """' (y, z held constant)' for a partial derivative, '' otherwise."""
        others = sorted(s.name for s in self.expression.free_symbols if s != self.wrt)
        return f" ({', '.join(others)} held constant)" if others else ""

    def _final_lines(self) -> tuple[str, str]:
        count = len(self.steps) + 1
        if self.raw == self.result:
            simplify = f"{count}. simplify: {self.result} is already in simplest form"
        else:
            simplify = f"{count}. simplify: {self.raw} = {self.result}"
        answer = f"Answer: {_d(self.wrt)} {grouped(self.expression)} = {self.result}"
        return simplify, answer

    def text(self) -> str:
        lines = wrap(
            f"Differentiate {self.expression} with respect to {self.wrt}, rule by rule"
            f"{self._held_constant()}."
        )
        lines.append("")
        for number, step in _numbered(self.steps):
            lines += render_step(TEXT_STYLE, number, step)
        simplify, answer = self._final_lines()
        lines += wrap(simplify)
        lines.append("")
        lines += wrap(answer)
        return "\n".join(lines)

    def markdown(self) -> str:
        d = rf"\frac{{d}}{{d{sp.latex(self.wrt)}}}"
        lines = [
            f"**Differentiate** ${sp.latex(self.expression)}$ with respect to "
            f"${sp.latex(self.wrt)}$, rule by rule{self._held_constant()}.",
            "",
        ]
        for number, step in _numbered(self.steps):
            lines += render_step(MARKDOWN_STYLE, number, step)
        count = len(self.steps) + 1
        if self.raw == self.result:
            lines.append(f"- **{count}.** *simplify*: already in simplest form")
        else:
            lines.append(
                f"- **{count}.** *simplify*: ${sp.latex(self.raw)} = {sp.latex(self.result)}$"
            )
        lines += [
            "",
            rf"**Answer:** ${d}\left({sp.latex(self.expression)}\right) = "
            rf"{sp.latex(self.result)}$",
        ]
        return "\n".join(lines)

    def latex(self) -> str:
        rows: list[str] = []
        for number, step in _numbered(self.steps):
            rows += render_step(LATEX_STYLE, number, step)
        count = len(self.steps) + 1
        if self.raw == self.result:
            rows.append(rf"&\text{{{count}. simplify: already in simplest form}} && ")
        else:
            rows.append(
                rf"&\text{{{count}. simplify:}} && {sp.latex(self.raw)} = {sp.latex(self.result)}"
            )
        rows.append(
            rf"&\text{{Answer:}} && {_latex_d(self.wrt)}\left({sp.latex(self.expression)}\right)"
            rf" = {sp.latex(self.result)}"
        )
        return align(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "rules",
            "expression": str(self.expression),
            "wrt": str(self.wrt),
            "result": str(self.result),
            "raw": str(self.raw),
            "steps": [step.to_dict() for step in self.steps],
        }


def explain(expr: ExprLike, wrt: str | sp.Symbol | None = None) -> Explanation:
    """The rule-by-rule derivation of d(expr)/d(wrt), ending in the simplified answer."""
    expression = as_expr(expr)
    derivation = derive(expression, wrt)
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


# --------------------------------------------------------------------------- check an answer

#: Random test points per check, and the relative tolerance for calling two values equal.
CHECK_POINTS = 40
CHECK_TOLERANCE = 1e-7


@dataclass(frozen=True)
class CheckResult(Explained):
    """Whether ``answer`` equals the derivative ``expected``; if not, a point where they differ."""

    expression: sp.Expr
    wrt: sp.Symbol
    expected: sp.Expr
    answer: sp.Expr
    correct: bool
    how: str
    counterexample: dict[str, Any] | None = field(default=None)

    formats = ("text", "markdown", "latex", "json")

    def text(self) -> str:
        lines = wrap(
            f"{_d(self.wrt)} {grouped_formula(self.expression)} = {formula(self.expected)}"
        )
        if self.correct:
            lines += wrap(f"correct: {formula(self.answer)} is equivalent ({self.how})")
            return "\n".join(lines)
        lines += wrap(f"incorrect: {formula(self.answer)} differs from the derivative")
        if self.counterexample is not None:
            where, want, got = self._counterexample_texts()
            lines += wrap(f"at {where}: derivative = {want}, your answer = {got}", "  ")
        return "\n".join(lines)

    def _counterexample_texts(self) -> tuple[str, str, str]:
        """(point, derivative value, answer value) of the counterexample, as text."""
        example = self.counterexample or {}
        where = ", ".join(f"{k}={formula(v)}" for k, v in example["point"].items())
        got = example["answer"]
        return where, f"{example['expected']:.10g}", "undefined" if got is None else f"{got:.10g}"

    def _latex_counterexample(self) -> tuple[str, str, str]:
        """(point, derivative value, answer value) of the counterexample, in LaTeX."""
        example = self.counterexample or {}
        where = ", ".join(
            f"{sp.latex(sp.Symbol(k))} = {sp.latex(v)}" for k, v in example["point"].items()
        )
        _, want, got = self._counterexample_texts()
        return where, want, r"\text{undefined}" if example["answer"] is None else got

    def markdown(self) -> str:
        verdict = "correct" if self.correct else "incorrect"
        text = (
            f"${_latex_d(self.wrt)}\\left({sp.latex(self.expression)}\\right) = "
            f"{sp.latex(self.expected)}$; the answer ${sp.latex(self.answer)}$ is **{verdict}**."
        )
        if self.counterexample is not None:
            where, want, got = self._latex_counterexample()
            text += f" At ${where}$ the derivative is ${want}$, your answer ${got}$."
        return text

    def latex(self) -> str:
        relation = "=" if self.correct else r"\neq"
        rows = [
            rf"&{_latex_d(self.wrt)}\left({sp.latex(self.expression)}\right) = "
            rf"{sp.latex(self.expected)} {relation} {sp.latex(self.answer)}"
        ]
        if self.counterexample is not None:
            where, want, got = self._latex_counterexample()
            rows.append(
                rf"&\text{{at }} {where}:\ \text{{derivative}} = {want},\ "
                rf"\text{{your answer}} = {got}"
            )
        return align(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "correct": self.correct,
            "expected": formula(self.expected),
            "answer": formula(self.answer),
            "counterexample": self.counterexample,
        }


def _float_at(expr: sp.Expr, point: Mapping[sp.Symbol, sp.Expr]) -> float | None:
    value = expr.xreplace(dict(point))
    return numeric(value.doit() if isinstance(value, sp.Basic) else value)


def _candidate_points(symbols: list[sp.Symbol], rng: random.Random) -> list[dict]:
    """Small integers first (readable counterexamples), then random reals in [-3, 3]."""
    points = [{s: sp.Integer(k) for s in symbols} for k in (1, 2, 3, -1)]
    points += [
        {s: sp.Integer(rng.randint(-4, 4)) for s in symbols} for _ in range(CHECK_POINTS // 4)
    ]
    points += [
        {s: sp.Float(round(rng.uniform(-3, 3), 3)) for s in symbols} for _ in range(CHECK_POINTS)
    ]
    return points


def check_answer(
    expr: ExprLike, wrt: str | sp.Symbol | None, answer: ExprLike, *, seed: int = 0
) -> CheckResult:
    """Is ``answer`` d(expr)/d(wrt)? Symbolic test first, then values at test points.

    Correct when expected - answer simplifies to 0, or when the two agree (relative tolerance
    ``CHECK_TOLERANCE``) at every test point where the derivative is defined. Otherwise the
    first point where they differ is returned as the counterexample.
    """
    expression = as_expr(expr)
    proposed = as_expr(answer)
    variable = resolve_variables(wrt, expression)
    if wrt is None and len(variable) != 1:
        raise InputError("say which variable the answer is a derivative by (use --wrt)")
    variable = variable[0]
    extra = sorted(s.name for s in proposed.free_symbols - expression.free_symbols)
    if extra:
        raise InputError(f"the answer uses {', '.join(extra)}, which the expression does not")
    expected = derive(expression, variable).result
    if simplify_within(sp.expand(expected - proposed)) == 0:
        return CheckResult(expression, variable, expected, proposed, True, "symbolically")
    symbols = sorted(expression.free_symbols | proposed.free_symbols, key=lambda s: s.name)
    compared = 0
    for point in _candidate_points(symbols, random.Random(seed)):
        want, got = _float_at(expected, point), _float_at(proposed, point)
        if want is None:
            continue
        if got is None or abs(want - got) > CHECK_TOLERANCE * max(1.0, abs(want)):
            counterexample = {
                "point": {s.name: json_number(v) for s, v in point.items()},
                "expected": want,
                "answer": got,
            }
            return CheckResult(
                expression, variable, expected, proposed, False, "numerically", counterexample
            )
        compared += 1
    if compared == 0:
        raise InputError("the derivative is undefined at every test point; cannot check")
    return CheckResult(
        expression, variable, expected, proposed, True, f"numerically, at {compared} points"
    )


__all__ = [
    "CheckResult",
    "Explained",
    "Explanation",
    "check_answer",
    "explain",
    "rules_table",
]
