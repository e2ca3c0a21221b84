"""The report of ``symdiff hessian --shape``: Hessian blocks as matrix formulas, and H v."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy as sp

from ..autodiff.second import TensorHessian
from ..ir.nodes import Node, add, format_shape, sum_
from ..ir.printing import LatexPrinter, TextPrinter, shared_names
from .index_notation import IndexJacobian, NoIndexForm, index_jacobian
from .report import Report


def block_label(first: str, second: str) -> str:
    """'d2L/dw2' for a diagonal block, 'd2L/dW db' for a mixed one."""
    return f"d2L/d{first}2" if first == second else f"d2L/d{first} d{second}"


def block_index_form(hessian: TensorHessian, i: int, j: int) -> IndexJacobian | None:
    """d2L/dp dq[I, K] = ∂(dL/dp)[I]/∂q[K] in index notation (None without index rules)."""
    try:
        return index_jacobian(hessian.gradient.gradients[i], hessian.gradient.wrt[j])
    except NoIndexForm:
        return None


def hessian_report(text: str, shapes: Mapping[str, tuple], hessian: TensorHessian) -> Report:
    """Each block d2L/dp dq (q after p; the others are transposes) as a matrix formula with its
    shape, or in index notation and as an einsum when it needs more than two axes (its shape
    alone where an operation has no index rule); then (Hv)_p, the Hessian-vector product in a
    direction v of the parameters' shapes, which always has a matrix formula."""
    wrt = hessian.gradient.wrt
    blocks = [(i, j, b) for i, j, b in hessian.blocks]
    explicit = [b for _, _, b in blocks if b is not None]
    # H v is shown when some block has no matrix formula (it always has one)
    shown = list(hessian.products) if len(explicit) < len(blocks) else []
    products = list(zip(wrt, shown, strict=True)) if shown else []
    forms = {(i, j): block_index_form(hessian, i, j) for i, j, b in blocks if b is None}
    factors = [n for form in forms.values() if form is not None for n in form.factor_nodes()]
    roots = explicit + shown + factors
    forward: Node = hessian.gradient.loss
    for grad in hessian.gradient.gradients:  # name the gradient's parts like the forward pass
        forward = add(forward, sum_(grad))
    taken = frozenset(shapes) | {d.name for d in hessian.directions}
    names = shared_names(forward, roots, None, taken, preactivations=True)
    text_printer, latex_printer = TextPrinter(names), LatexPrinter(names)
    rows = [
        (f"  {name}", text_printer(node), format_shape(node.shape)) for node, name in names.items()
    ]
    notes: list[str] = []

    def show(node: Node) -> str:  # a named tensor by its name in index notation
        return names.get(node) or text_printer(node)

    for i, j, block in blocks:
        label = block_label(wrt[i].name, wrt[j].name)
        shape = format_shape(hessian.block_shape(i, j))
        form = forms.get((i, j))
        if form is not None:
            notes.append(f"{label}: {form.hessian_text(wrt[i].name, show)}")
            notes.append(f"  = {form.einsum_text()}    {shape}")
        elif block is None:
            notes.append(f"{label}: shape {shape}, no matrix formula (see (Hv)_{wrt[i].name})")
        else:
            rows.append((label, text_printer(block), shape))
    for param, product in products:
        rows.append((f"(Hv)_{param.name}", text_printer(product), format_shape(product.shape)))
    left = max(len(r[0]) for r in rows)
    middle = min(max(len(r[1]) for r in rows), 60)
    formatted = [f"{a:<{left}} = {b:<{middle}}  {s}" for a, b, s in rows]
    lines = [f"loss: {text}"]
    lines.append("shapes: " + ", ".join(f"{n} {format_shape(s)}" for n, s in shapes.items()))
    if shown:
        lines.append(
            "direction v: "
            + ", ".join(f"{d.name} {format_shape(d.shape)}" for d in hessian.directions)
        )
    if names:
        lines.append("where")
        lines += formatted[: len(names)]
    lines += formatted[len(names) :]
    lines += notes

    def latex() -> str:
        parts = [
            rf"{sp.latex(sp.Symbol(name))} &= {latex_printer(node)}" for node, name in names.items()
        ]
        for i, j, block in blocks:
            if block is not None:
                p, q = sp.latex(sp.Symbol(wrt[i].name)), sp.latex(sp.Symbol(wrt[j].name))
                denominator = rf"\partial {p}^{{2}}" if i == j else rf"\partial {p} \partial {q}"
                parts.append(
                    rf"\frac{{\partial^{{2}} L}}{{{denominator}}} &= {latex_printer(block)}"
                )
        for param, product in products:
            parts.append(
                rf"(H v)_{{{sp.latex(sp.Symbol(param.name))}}} &= {latex_printer(product)}"
            )
        return "\\begin{align}\n" + " \\\\\n".join(parts) + "\n\\end{align}"

    def data() -> dict[str, Any]:
        return {
            "expression": text,
            "shapes": {n: list(s) for n, s in shapes.items()},
            "wrt": [p.name for p in wrt],
            "where": {
                name: {"formula": text_printer(node), "shape": list(node.shape)}
                for node, name in names.items()
            },
            "hessian": [
                {
                    "rows": wrt[i].name,
                    "columns": wrt[j].name,
                    "shape": list(hessian.block_shape(i, j)),
                    "formula": None if block is None else text_printer(block),
                    **_index_data(forms.get((i, j)), wrt[i].name),
                }
                for i, j, block in blocks
            ],
            "hvp": {
                param.name: {
                    "direction": direction.name,
                    "formula": text_printer(product),
                    "shape": list(product.shape),
                }
                for param, direction, product in zip(
                    wrt, hessian.directions, hessian.products, strict=True
                )
            },
        }

    return Report("\n".join(lines), latex, data)


def _index_data(form: IndexJacobian | None, first: str) -> dict[str, str]:
    """The index form and einsum of a block without a matrix formula (none: nothing)."""
    if form is None:
        return {}
    return {"index": form.hessian_text(first), "einsum": form.einsum_text()}
