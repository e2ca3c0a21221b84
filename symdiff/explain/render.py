"""The small rendering toolkit shared by the explanations (``Explained``, ``wrap``, ``align``)
and the answer checker ``check_answer``. Rule-by-rule derivations live in ``derivation.py``.
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
from ..calculus.simplify import simplify_within
from ..errors import InputError
from ..text import formula
from ..text import grouped as grouped_formula

#: Width of text output (an ordinary terminal).
TEXT_WIDTH = 80

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


# --------------------------------------------------------------------------- shared by check


def _d(wrt: sp.Symbol) -> str:
    return f"d/d{wrt}"


def grouped(expr: sp.Expr) -> str:
    """``expr`` as text, in parentheses when it is a sum or starts with a minus sign."""
    text = str(expr)
    needs = isinstance(expr, sp.Add) or (text.startswith("-") and not expr.is_Number)
    return f"({text})" if needs else text


def _latex_d(wrt: sp.Symbol) -> str:
    return rf"\frac{{d}}{{d{sp.latex(wrt)}}}"


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
    "check_answer",
]
