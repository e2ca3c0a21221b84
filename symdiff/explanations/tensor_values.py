"""Tensor results at a point: values of losses, gradients, directional derivatives and of the
nodes of the forward and backward passes (``--at`` with ``--shape``), arrays shown compactly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..codegen.assemble import HESSIAN_LIMIT
from ..codegen.tensor import evaluate, evaluator
from ..errors import InputError
from ..frontend.points import SHOWN_ENTRIES, compact
from ..ir.nodes import Node, format_shape, variables, walk
from ..ir.printing import TextPrinter
from .report import Report
from .tensor_report import node_names

Values = Mapping[str, np.ndarray]


def point_line(point: Values) -> str:
    """'at w = [1, 2], X = [[1, 0], [0, 1]]'."""
    return "at " + ", ".join(f"{name} = {compact(value)}" for name, value in point.items())


def dims_at(root: Node | Sequence[Node], point: Values) -> dict[str, int]:
    """The size each named dimension of the symbols of ``root`` takes at the point."""
    dims: dict[str, int] = {}
    for leaf in variables(root):
        for dim, size in zip(leaf.shape, np.shape(point[leaf.name]), strict=False):
            if isinstance(dim, str):
                dims[dim] = size
    return dims


def values_of(nodes: Sequence[Node], point: Values, root: Node | None = None) -> list[np.ndarray]:
    """The value of each node at the point (``codegen.tensor.evaluate``), as float64 arrays;
    named dimensions are those the symbols of ``root`` take at the point."""
    dims = dims_at(root if root is not None else nodes, point)
    return [np.asarray(evaluate(node, point, dims), dtype=np.float64) for node in nodes]


def with_values(
    report: Report,
    point: Values,
    rows: Sequence[tuple[str, Any]],
    direction: Values | None = None,
) -> Report:
    """``report`` followed by 'at ...' (and 'along u = ...') and one 'label = value' line per
    row; the JSON data gain ``point``, ``values`` (nested lists) and ``direction``."""
    width = max((len(label) for label, _ in rows), default=0)
    lines = [point_line(point)]
    if direction is not None:
        lines.append("along u: " + ", ".join(f"u_{n} = {compact(v)}" for n, v in direction.items()))
    lines += [f"  {label:<{width}} = {_shown(value)}" for label, value in rows]
    data, latex = report.make_data, report.make_latex

    def make_latex() -> str:
        """The report's LaTeX, then an align of the values (a matrix for 1-2 axes)."""
        parts = [
            rf"\text{{{label.replace('_', chr(92) + '_')}}} &= {_latex_value(value)}"
            for label, value in rows
        ]
        return latex() + "\n\\begin{align}\n" + " \\\\\n".join(parts) + "\n\\end{align}"

    def make_data() -> dict[str, Any]:
        return {
            **data(),
            "point": {name: np.asarray(v).tolist() for name, v in point.items()},
            "values": {label: np.asarray(v).tolist() for label, v in rows},
            **(
                {}
                if direction is None
                else {"direction": {n: np.asarray(v).tolist() for n, v in direction.items()}}
            ),
        }

    return Report(report.plain + "\n" + "\n".join(lines), make_latex, make_data)


def _shown(value: Any) -> str:
    """'[1, 2]  (2,)': the compact value and its shape (a long one already shows it)."""
    array = np.asarray(value, dtype=np.float64)
    shown, shape = compact(array), format_shape(array.shape)
    return shown if shown.endswith(shape) and array.size > 1 else f"{shown}  {shape}"


def _latex_value(value: object) -> str:
    """A scalar as it is, a vector or matrix as a bmatrix (a vector as a column), else text."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0 or array.size > SHOWN_ENTRIES or array.ndim > 2:
        return rf"\text{{{compact(array)}}}" if array.ndim else compact(array)
    matrix = array.reshape(-1, 1) if array.ndim == 1 else array
    body = r" \\ ".join(" & ".join(compact(x) for x in row) for row in matrix)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def gradient_values(
    loss: Node,
    gradients: Mapping[str, Node],
    point: Values,
    direction: Values | None = None,
) -> list[tuple[str, Any]]:
    """Rows L, dL/dp for each p, and with a direction u (over some of the parameters, the
    others 0) the terms sum(dL/dp * u_p) and the directional derivative
    D_u L = sum_p sum(dL/dp * u_p) / |u| (u normalised over all its parameters together)."""
    nodes = [loss, *gradients.values()]
    computed = values_of(nodes, point, loss)
    rows: list[tuple[str, Any]] = [("L", computed[0])]
    rows += [(f"dL/d{name}", value) for name, value in zip(gradients, computed[1:], strict=True)]
    if direction is not None:
        by_name = dict(zip(gradients, computed[1:], strict=True))
        terms = [(name, float(np.sum(by_name[name] * u))) for name, u in direction.items()]
        rows += [(f"sum(dL/d{name} * u_{name})", term) for name, term in terms]
        rows += [
            ("|u|", _length(direction)),
            ("D_u L", sum(t for _, t in terms) / _length(direction)),
        ]
    return rows


def _length(direction: Values) -> float:
    """|u| over all the direction's parameters; a zero direction is bad input."""
    size = float(np.sqrt(sum(float(np.sum(u * u)) for u in direction.values())))
    if size == 0:
        raise InputError("--direction must not be zero")
    return size


#: ``hessian --at``: the Hessian at a point is built from one H v per parameter entry, so its
#: blocks are shown only while the parameters have at most this many entries in all.
HESSIAN_VALUE_LIMIT = HESSIAN_LIMIT


def hessian_values(
    loss: Node,
    wrt: Sequence[Node],
    directions: Sequence[Node],
    products: Sequence[Node],
    point: Values,
    direction: Values | None = None,
) -> list[tuple[str, Any]]:
    """Rows L, each block d2L/dp dq (q after p) of shape p.shape + q.shape, its column k being
    (H e_k)_p for the unit vector e_k of q; with a direction u, (H u)_p for each p (u is 0 for
    the parameters it does not name, not normalised)."""
    from .second_order import block_label

    dims = dims_at(loss, point)
    zeros = {
        d.name: np.zeros(np.shape(point[p.name])) for d, p in zip(directions, wrt, strict=True)
    }
    (value,) = values_of([loss], point, loss)
    rows: list[tuple[str, Any]] = [("L", value)]
    run = evaluator(products, {**point, **zeros}, dims)
    total = sum(int(np.size(point[p.name])) for p in wrt)
    if total > HESSIAN_VALUE_LIMIT and direction is None:
        raise InputError(
            f"the Hessian at the point is {total} x {total}: its values are shown for at most "
            f"{HESSIAN_VALUE_LIMIT} parameter entries in all (--direction gives H v at any size)"
        )
    if total <= HESSIAN_VALUE_LIMIT:
        columns: list[list[list[object]]] = []  # columns[q][k]: the results for e_k of q
        for d, p in zip(directions, wrt, strict=True):
            shape = np.shape(point[p.name])
            results: list[list[object]] = []
            for k in range(int(np.size(point[p.name]))):
                unit = np.zeros(shape)
                unit.flat[k] = 1.0
                results.append(run({**point, **zeros, d.name: unit}))
            columns.append(results)
        for i, p in enumerate(wrt):
            p_shape = np.shape(point[p.name])
            for j in range(i, len(wrt)):
                q_shape = np.shape(point[wrt[j].name])
                stacked = np.stack([_as(r[i], p_shape) for r in columns[j]], axis=-1)
                block = stacked.reshape(p_shape + q_shape)
                rows.append((block_label(p.name, wrt[j].name), block))
    if direction is not None:
        given = {
            d.name: direction.get(p.name, zeros[d.name])
            for d, p in zip(directions, wrt, strict=True)
        }
        along = run({**point, **given})
        rows += [
            (f"(Hu)_{p.name}", _as(r, np.shape(point[p.name])))
            for p, r in zip(wrt, along, strict=True)
        ]
    return rows


def _as(value: object, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` (a constant result, such as a zero block, broadcast)."""
    return np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), shape))


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


def jvp_rows(product: Any, point: Values, direction: Values) -> list[tuple[str, str, Any]]:
    """J u for the Jacobian of ``product`` (a ``VectorJacobian``) along u (0 for the parameters
    it does not name): J u = d/dv sum_p sum(vᵀJ_p * u_p), the formula in u_p and its value
    at the point; rows (label, formula, value)."""
    from ..autodiff.reverse import reverse_mode
    from ..autodiff.second import direction_names
    from ..ir.nodes import add, mul, sum_, var

    taken = {n.name for n in variables(product.expression)} | {product.seed.name}
    names = direction_names([p.name for p in product.wrt], taken)
    names = [f"u_{n[2:]}" for n in names]  # v_w -> u_w (still free: checked below)
    directions = [var(n, p.shape) for n, p in zip(names, product.wrt, strict=True)]
    if taken & set(names):
        directions = [var(f"v{n}", p.shape) for n, p in zip(names, product.wrt, strict=True)]
    total: Node | None = None
    for u, vjp in zip(directions, product.products, strict=True):
        term = sum_(mul(u, vjp))
        total = term if total is None else add(total, term)
    assert total is not None
    (formula,) = reverse_mode(total, [product.seed]).gradients
    given = {
        u.name: direction.get(p.name, np.zeros(np.shape(point[p.name])))
        for u, p in zip(directions, product.wrt, strict=True)
    }
    _length(direction)
    values = {**point, **given}
    dims = dims_at(product.expression, point)
    (value,) = evaluator([formula], values, dims)(values)
    shaped = _as(value, np.shape(values_of([product.expression], point)[0]))
    return [("J u", TextPrinter()(formula), shaped)]
