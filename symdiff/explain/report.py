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


def value_text(value: sp.Expr) -> str:
    """Exact value, with a decimal approximation when the exact form is not a plain number."""
    if value.is_Integer or value.is_Float:
        return str(value)
    number = numeric(value)
    return f"{value} ≈ {number:.12g}" if number is not None else str(value)


def _latex_value(value: sp.Expr) -> str:
    number = numeric(value)
    if value.is_Integer or value.is_Float or number is None:
        return sp.latex(value)
    return rf"{sp.latex(value)} \approx {number:.12g}"


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
) -> Report:
    """``symdiff diff``: the derivative, and its value at a point."""
    text_op, latex_op = _operator(variables)
    lines = [str(result)]
    if value is not None and point is not None:
        lines.append(f"at {format_point(point)}: {value_text(value)}")

    def latex() -> str:
        formula = rf"{latex_op}\left({sp.latex(expression)}\right) = {sp.latex(result)}"
        if value is not None and point is not None:
            formula += rf" \quad\text{{at }} {_latex_point(point)}: {_latex_value(value)}"
        return formula

    def data() -> dict[str, Any]:
        return {
            "expression": str(expression),
            # variables repeats each requested one ``order`` times: --wrt x --wrt x stays [x, x]
            "wrt": [v.name for v in variables[::order]] if order > 0 else [],
            "order": order,
            "operator": text_op,
            "derivative": str(result),
            "latex": sp.latex(result),
            "value": None if value is None else json_number(value),
            "exact_value": None if value is None else str(value),
        }

    return Report("\n".join(lines), latex, data)


def _latex_point(point: Mapping[str, sp.Expr]) -> str:
    return ", ".join(f"{sp.latex(sp.Symbol(k))} = {sp.latex(v)}" for k, v in point.items())


def gradient_report(
    expression: sp.Expr,
    variables: Sequence[sp.Symbol],
    grad: Sequence[sp.Expr],
    values: Sequence[sp.Expr] | None,
    point: Mapping[str, sp.Expr] | None,
    directional: sp.Expr | None = None,
    directional_value: sp.Expr | None = None,
    direction: Sequence[sp.Expr] | None = None,
) -> Report:
    """``symdiff grad``: the partial derivatives, values, and the directional derivative."""
    width = max(len(v.name) for v in variables) if variables else 0
    lines = [f"d/d{v.name:<{width}} = {g}" for v, g in zip(variables, grad, strict=True)]
    if values is not None and point is not None:
        lines.append(f"at {format_point(point)}:")
        lines += [
            f"  d/d{v.name:<{width}} = {value_text(x)}"
            for v, x in zip(variables, values, strict=True)
        ]
    if directional is not None and direction is not None:
        unit = ", ".join(str(c) for c in direction)
        lines.append(f"directional derivative along ({unit}): {directional}")
        if directional_value is not None:
            lines.append(f"  at {format_point(point or {})}: {value_text(directional_value)}")

    def latex() -> str:
        rows = [
            rf"\frac{{\partial f}}{{\partial {sp.latex(v)}}} &= {sp.latex(g)}"
            for v, g in zip(variables, grad, strict=True)
        ]
        if directional is not None and direction is not None:
            rows.append(rf"D_{{\mathbf{{u}}}} f &= {sp.latex(directional)}")
        return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"

    def data() -> dict[str, Any]:
        result: dict[str, Any] = {
            "expression": str(expression),
            "wrt": [v.name for v in variables],
            "gradient": [str(g) for g in grad],
            "latex": [sp.latex(g) for g in grad],
            "value": None if values is None else [json_number(x) for x in values],
        }
        if directional is not None:
            result["direction"] = [str(c) for c in direction or []]
            result["directional"] = str(directional)
            result["directional_value"] = (
                None if directional_value is None else json_number(directional_value)
            )
        return result

    return Report("\n".join(lines), latex, data)


def matrix_report(
    kind: str,
    expressions: Sequence[sp.Expr],
    variables: Sequence[sp.Symbol],
    matrix: sp.Matrix,
    values: sp.Matrix | None,
    point: Mapping[str, sp.Expr] | None,
) -> Report:
    """``symdiff jacobian`` / ``symdiff hessian``: a matrix of derivatives, and its value."""
    rows = [[str(matrix[i, j]) for j in range(matrix.cols)] for i in range(matrix.rows)]
    lines = [f"{kind} with respect to ({', '.join(v.name for v in variables)}):"]
    lines += _matrix_lines(rows)
    value_rows = (
        [[values[i, j] for j in range(values.cols)] for i in range(values.rows)]
        if values is not None and point is not None
        else None
    )
    if value_rows is not None:
        lines.append(f"at {format_point(point or {})}:")
        lines += _matrix_lines([[value_text(x) for x in row] for row in value_rows])

    def latex() -> str:
        formula = rf"{'J' if kind == 'jacobian' else 'H'} = {sp.latex(matrix)}"
        if value_rows is not None:
            formula += rf" \quad\text{{at }} {_latex_point(point or {})}: {sp.latex(values)}"
        return formula

    def data() -> dict[str, Any]:
        head: dict[str, Any] = (
            {"expressions": [str(e) for e in expressions]}
            if kind == "jacobian"
            else {"expression": str(expressions[0])}
        )
        return {
            **head,
            "wrt": [v.name for v in variables],
            kind: rows,
            "latex": sp.latex(matrix),
            "value": None
            if value_rows is None
            else [[json_number(x) for x in row] for row in value_rows],
        }

    return Report("\n".join(lines), latex, data)


def _matrix_lines(rows: list[list[str]]) -> list[str]:
    if not rows or not rows[0]:
        return ["  []"]
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    return [
        "  [ " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " ]"
        for row in rows
    ]
