"""Results as the three things a user sees: a JSON-ready dict, plain text and LaTeX.

Each ``*_report`` function is pure: it takes computed SymPy results and returns a ``Report``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..calculus.api import format_point, json_number, numeric
from ..text import formula, grouped, number
from .render import Explained


@dataclass(frozen=True)
class Report(Explained):
    """One computed result (a derivative, gradient, matrix or tensor gradient) in every format:
    the same ``Explained`` protocol as derivations, limits and graphs.

    The LaTeX and the JSON data are built only when asked for: text output never pays for
    LaTeX it does not print (SymPy's LaTeX printer is the slowest part of a large result).
    """

    plain: str
    make_latex: Callable[[], str]
    make_data: Callable[[], dict[str, Any]]

    @functools.cached_property
    def formula(self) -> str:
        return self.make_latex()

    @functools.cached_property
    def data(self) -> dict[str, Any]:
        return self.make_data()

    def text(self) -> str:
        return self.plain

    def latex(self) -> str:
        return self.formula

    def markdown(self) -> str:
        return f"$$\n{self.formula}\n$$"

    def to_dict(self) -> dict[str, Any]:
        return self.data


#: Text of a value that is undefined at the point, before its reason.
UNDEFINED = "undefined"


def value_text(value: sp.Expr | None, reason: str | None = None) -> str:
    """Exact value, with a decimal approximation when the exact form is not a plain number;
    ``undefined (reason)`` when there is no value."""
    if value is None:
        return f"{UNDEFINED} ({reason})" if reason else UNDEFINED
    if value.is_Integer or value.is_Float:
        return number(value)
    approx = numeric(value)
    return f"{formula(value)} ≈ {approx:.12g}" if approx is not None else formula(value)


def _latex_value(value: sp.Expr | None, reason: str | None = None) -> str:
    if value is None:
        return rf"\text{{{UNDEFINED} ({reason})}}"
    approx = numeric(value)
    if value.is_Integer or value.is_Float or approx is None:
        return sp.latex(value)
    return rf"{sp.latex(value)} \approx {approx:.12g}"


def _json_value(value: sp.Expr | None) -> int | float | str | None:
    return None if value is None else json_number(value)


def _operator(variables: Sequence[sp.Symbol]) -> tuple[str, str]:
    """('d/dx', latex) for a (possibly repeated or mixed) derivative operator."""
    order = len(variables)
    if order == 0:
        return "", ""
    counts: dict[str, int] = {}
    for v in variables:
        counts[v.name] = counts.get(v.name, 0) + 1
    partial = len(counts) > 1
    d = "∂" if partial else "d"
    dl = r"\partial" if partial else "d"
    denominator = " ".join(f"{d}{n}" + (f"^{k}" if k > 1 else "") for n, k in counts.items())
    latex_den = " ".join(
        f"{dl} {sp.latex(sp.Symbol(n))}" + (f"^{{{k}}}" if k > 1 else "") for n, k in counts.items()
    )
    top = f"{d}^{order}" if order > 1 else d
    latex_top = f"{dl}^{{{order}}}" if order > 1 else dl
    return f"{top}/{denominator}", rf"\frac{{{latex_top}}}{{{latex_den}}}"


def diff_report(
    expression: sp.Expr,
    variables: Sequence[sp.Symbol],
    order: int,
    result: sp.Expr,
    value: sp.Expr | None,
    point: Mapping[str, sp.Expr] | None,
    reason: str | None = None,
) -> Report:
    """``symdiff diff``: the derivative, and its value at a point (or why it has none there)."""
    text_op, latex_op = _operator(variables)
    lines = [formula(result)]
    if point is not None:
        lines.append(f"at {format_point(point)}: {value_text(value, reason)}")

    def latex() -> str:
        text = rf"{latex_op}\left({sp.latex(expression)}\right) = {sp.latex(result)}"
        if point is not None:
            text += rf" \quad\text{{at }} {_latex_point(point)}: {_latex_value(value, reason)}"
        return text

    def data() -> dict[str, Any]:
        return {
            "expression": formula(expression),
            # variables repeats each requested one ``order`` times: --wrt x --wrt x stays [x, x]
            "wrt": [v.name for v in variables[::order]] if order > 0 else [],
            "order": order,
            "operator": text_op,
            "derivative": formula(result),
            "latex": sp.latex(result),
            "value": _json_value(value),
            "exact_value": None if value is None else formula(value),
            "reason": reason,
        }

    return Report("\n".join(lines), latex, data)


def _latex_point(point: Mapping[str, sp.Expr]) -> str:
    return ", ".join(f"{sp.latex(sp.Symbol(k))} = {sp.latex(v)}" for k, v in point.items())


def dot_text(grad: Sequence[sp.Expr], direction: Sequence[sp.Expr]) -> str:
    """∇f·u written out term by term: ``g1*u1 + g2*u2 + ...`` (zero terms left out)."""
    terms = [f"{grouped(g)}*{grouped(u)}" for g, u in zip(grad, direction, strict=True) if g != 0]
    return " + ".join(terms) or "0"


def gradient_report(
    expression: sp.Expr,
    variables: Sequence[sp.Symbol],
    grad: Sequence[sp.Expr],
    values: Sequence[sp.Expr | None] | None,
    point: Mapping[str, sp.Expr] | None,
    directional: sp.Expr | None = None,
    directional_value: sp.Expr | None = None,
    direction: Sequence[sp.Expr] | None = None,
    reasons: Sequence[str | None] | None = None,
    directional_reason: str | None = None,
) -> Report:
    """``symdiff grad``: the partial derivatives, values, and the directional derivative
    D_u f = ∇f·u shown as ∇f, the unit vector u, ∇f·u term by term, its simplified form and
    its value."""
    width = max(len(v.name) for v in variables) if variables else 0
    why = list(reasons) if reasons is not None else [None] * len(variables)
    lines = [f"d/d{v.name:<{width}} = {formula(g)}" for v, g in zip(variables, grad, strict=True)]
    if values is not None and point is not None:
        lines.append(f"at {format_point(point)}:")
        lines += [
            f"  d/d{v.name:<{width}} = {value_text(x, r)}"
            for v, x, r in zip(variables, values, why, strict=True)
        ]
    if directional is not None and direction is not None:
        unit = ", ".join(formula(c) for c in direction)
        lines.append(f"directional derivative along u = ({unit}):")
        lines.append(f"  ∇f = ({', '.join(formula(g) for g in grad)})")
        lines.append(f"  ∇f·u = {dot_text(grad, direction)}")
        lines.append(f"       = {formula(directional)}")
        if point is not None:
            shown = value_text(directional_value, directional_reason)
            lines.append(f"  at {format_point(point)}: {shown}")

    def latex() -> str:
        rows = [
            rf"\frac{{\partial f}}{{\partial {sp.latex(v)}}} &= {sp.latex(g)}"
            for v, g in zip(variables, grad, strict=True)
        ]
        if directional is not None and direction is not None:
            rows.append(rf"\mathbf{{u}} &= {sp.latex(sp.Matrix([list(direction)]))}")
            rows.append(
                rf"D_{{\mathbf{{u}}}} f = \nabla f \cdot \mathbf{{u}} &= "
                rf"{sp.latex(directional)}"
            )
        return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"

    def data() -> dict[str, Any]:
        result: dict[str, Any] = {
            "expression": formula(expression),
            "wrt": [v.name for v in variables],
            "gradient": [formula(g) for g in grad],
            "latex": [sp.latex(g) for g in grad],
            "value": None if values is None else [_json_value(x) for x in values],
        }
        if reasons is not None:
            result["reason"] = list(reasons)
        if directional is not None:
            result["direction"] = [formula(c) for c in direction or []]
            result["directional"] = formula(directional)
            result["directional_terms"] = dot_text(grad, direction or [])
            result["directional_value"] = _json_value(directional_value)
            if directional_reason is not None:
                result["directional_reason"] = directional_reason
        return result

    return Report("\n".join(lines), latex, data)


def matrix_report(
    kind: str,
    expressions: Sequence[sp.Expr],
    variables: Sequence[sp.Symbol],
    matrix: sp.Matrix,
    values: Sequence[Sequence[sp.Expr | None]] | None,
    point: Mapping[str, sp.Expr] | None,
    reasons: Sequence[Sequence[str | None]] | None = None,
) -> Report:
    """``symdiff jacobian`` / ``symdiff hessian``: a matrix of derivatives, and its value
    (``undefined (reason)`` for an entry with no value at the point)."""
    rows = [[formula(matrix[i, j]) for j in range(matrix.cols)] for i in range(matrix.rows)]
    lines = [f"{kind} with respect to ({', '.join(v.name for v in variables)}):"]
    lines += _matrix_lines(rows)
    value_rows = [list(row) for row in values] if values is not None and point else None
    why = reasons or [[None] * matrix.cols for _ in range(matrix.rows)]
    if value_rows is not None:
        lines.append(f"at {format_point(point or {})}:")
        lines += _matrix_lines(
            [
                [value_text(x, r) for x, r in zip(row, w, strict=True)]
                for row, w in zip(value_rows, why, strict=True)
            ]
        )

    def latex() -> str:
        text = rf"{'J' if kind == 'jacobian' else 'H'} = {sp.latex(matrix)}"
        if value_rows is not None:
            shown = sp.Matrix([[x if x is not None else sp.nan for x in row] for row in value_rows])
            text += rf" \quad\text{{at }} {_latex_point(point or {})}: {sp.latex(shown)}"
        return text

    def data() -> dict[str, Any]:
        head: dict[str, Any] = (
            {"expressions": [formula(e) for e in expressions]}
            if kind == "jacobian"
            else {"expression": formula(expressions[0])}
        )
        result = {
            **head,
            "wrt": [v.name for v in variables],
            kind: rows,
            "latex": sp.latex(matrix),
            "value": None
            if value_rows is None
            else [[_json_value(x) for x in row] for row in value_rows],
        }
        if reasons is not None:
            result["reason"] = [list(row) for row in reasons]
        return result

    return Report("\n".join(lines), latex, data)


def _matrix_lines(rows: list[list[str]]) -> list[str]:
    if not rows or not rows[0]:
        return ["  []"]
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    return [
        "  [ " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " ]"
        for row in rows
    ]
