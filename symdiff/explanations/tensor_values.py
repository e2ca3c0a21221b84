"""Tensor results at a point: values of losses, gradients, directional derivatives and of the
nodes of the forward and backward passes (``--at`` with ``--shape``), arrays shown compactly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..codegen.tensor import evaluate
from ..frontend.points import compact
from ..ir.nodes import Node, format_shape, variables, walk
from ..ir.printing import TextPrinter
from .report import Report
from .tensor_report import node_names

Values = Mapping[str, np.ndarray]


def point_line(point: Values) -> str:
    """'at w = [1, 2], X = [[1, 0], [0, 1]]'."""
    return "at " + ", ".join(f"{name} = {compact(value)}" for name, value in point.items())


def values_of(nodes: Sequence[Node], point: Values, root: Node | None = None) -> list[np.ndarray]:
    """The value of each node at the point (``codegen.tensor.evaluate``), as float64 arrays;
    named dimensions are those the symbols of ``root`` take at the point."""
    dims: dict[str, int] = {}
    for leaf in variables(root if root is not None else nodes):
        for dim, size in zip(leaf.shape, np.shape(point[leaf.name]), strict=False):
            if isinstance(dim, str):
                dims[dim] = size
    return [np.asarray(evaluate(node, point, dims), dtype=np.float64) for node in nodes]


def with_values(report: Report, point: Values, rows: Sequence[tuple[str, Any]]) -> Report:
    """``report`` followed by 'at ...' and one 'label = value' line per row; the JSON data gain
    ``point`` and ``values`` (nested lists)."""
    width = max((len(label) for label, _ in rows), default=0)
    lines = [point_line(point)]
    lines += [
        f"  {label:<{width}} = {compact(value)}  {format_shape(np.shape(value))}"
        for label, value in rows
    ]
    data = report.make_data

    def make_data() -> dict[str, Any]:
        return {
            **data(),
            "point": {name: np.asarray(v).tolist() for name, v in point.items()},
            "values": {label: np.asarray(v).tolist() for label, v in rows},
        }

    return Report(report.plain + "\n" + "\n".join(lines), report.make_latex, make_data)


def gradient_values(
    loss: Node,
    gradients: Mapping[str, Node],
    point: Values,
    direction: Values | None = None,
) -> list[tuple[str, Any]]:
    """Rows L, dL/dp for each p, and with a direction u the directional derivative
    D_u L = sum_p sum(dL/dp * u_p) / |u| (u normalised over all parameters together)."""
    nodes = [loss, *gradients.values()]
    computed = values_of(nodes, point, loss)
    rows: list[tuple[str, Any]] = [("L", computed[0])]
    rows += [(f"dL/d{name}", value) for name, value in zip(gradients, computed[1:], strict=True)]
    if direction is not None:
        size = float(np.sqrt(sum(float(np.sum(u * u)) for u in direction.values())))
        if size == 0:
            from ..errors import InputError

            raise InputError("--direction must not be zero")
        slope = sum(
            float(np.sum(g * direction[name]))
            for name, g in zip(gradients, computed[1:], strict=True)
        )
        rows.append(("D_u L", slope / size))
    return rows


def graph_report(loss_text: str, gradient: Any, point: Values, mode: str = "both") -> Report:
    """``symdiff graph --shape``: the ξ table of the forward sweep (each node's formula, shape
    and value) and of the reverse sweep (each node's adjoint ξ̄ = dL/dξ and its value)."""
    names = node_names(gradient.loss, gradient.gradients, gradient.adjoints, frozenset(point))
    printer = TextPrinter(names)
    nodes = [n for n in walk(gradient.loss) if n in names]
    lines = [f"loss: {loss_text}", point_line(point)]
    data: dict[str, Any] = {"expression": loss_text, "point": {}, "forward": [], "reverse": []}
    data["point"] = {name: np.asarray(v).tolist() for name, v in point.items()}
    if mode in ("forward", "both"):
        computed = values_of(nodes, point)
        rows = [(names[n], printer(n), n.shape, v) for n, v in zip(nodes, computed, strict=True)]
        lines += ["forward sweep (ξ = value of each node):", *_table(rows)]
        data["forward"] = [_row(r) for r in rows]
    if mode in ("reverse", "both"):
        ordered = [n for n in reversed(nodes) if n in gradient.adjoints]
        adjoints = [gradient.adjoints[n] for n in ordered]
        leaves = [p for p in gradient.wrt]
        rows = [
            (f"ξ̄ {names[n]}", printer(a), n.shape, v)
            for n, a, v in zip(
                ordered, adjoints, values_of(adjoints, point, gradient.loss), strict=True
            )
        ]
        grads = values_of(gradient.gradients, point, gradient.loss)
        rows += [
            (f"dL/d{p.name}", printer(g), p.shape, v)
            for p, g, v in zip(leaves, gradient.gradients, grads, strict=True)
        ]
        lines += ["reverse sweep (ξ̄ = dL/dξ, from ξ̄ L = 1):", *_table(rows)]
        data["reverse"] = [_row(r) for r in rows]
    return Report("\n".join(lines), lambda: "", lambda: data)


def _table(rows: Sequence[tuple[str, str, tuple, Any]]) -> list[str]:
    left = max((len(r[0]) for r in rows), default=1)
    middle = min(max((len(r[1]) for r in rows), default=1), 40)
    shape = max((len(format_shape(r[2])) for r in rows), default=1)
    return [
        f"  {a:<{left}} = {b:<{middle}}  {format_shape(s):<{shape}}  {compact(v)}"
        for a, b, s, v in rows
    ]


def _row(row: tuple[str, str, tuple, Any]) -> dict[str, Any]:
    label, formula, shape, value = row
    return {"node": label, "formula": formula, "shape": list(shape), "value": value.tolist()}
