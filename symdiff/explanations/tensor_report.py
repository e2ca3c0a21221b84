"""Reports of tensor gradients, steps and Jacobians (symdiff grad/steps/jacobian --shape)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp

from ..ir.nodes import Node, format_shape, scaled, walk
from ..ir.printing import (
    _ACTIVATIONS,
    _LETTERS,
    MAX_EXPANDED,
    LatexPrinter,
    TextPrinter,
    shared_names,
    to_latex,
    to_text,
    tree_size,
)
from .report import Report

# --------------------------------------------------------------------------- reports


def tensor_gradient_report(
    loss_text: str,
    shapes: Mapping[str, tuple],
    loss: Node,
    gradients: Mapping[str, Node],
    adjoints: Mapping[Node, Node] | None = None,
    title: str = "dL/d",
) -> Report:
    """``symdiff grad --shape``: one matrix formula per parameter, with shared names and shapes."""
    roots = list(gradients.values())
    names = shared_names(loss, roots, adjoints, frozenset(shapes), preactivations=True)
    text_printer, latex_printer = TextPrinter(names), LatexPrinter(names)
    width = max((len(n) for n in gradients), default=0)
    lines = [f"loss: {loss_text}"]
    shape_list = ", ".join(f"{n} {format_shape(s)}" for n, s in shapes.items())
    lines.append(f"shapes: {shape_list}")
    latex_rows = []
    rows = [(f"  {name}", text_printer(node), node.shape) for node, name in names.items()]
    rows += [(f"{title}{p:<{width}}", text_printer(g), g.shape) for p, g in gradients.items()]
    left = max(len(r[0]) for r in rows)
    middle = min(max(len(r[1]) for r in rows), 60)  # long formulas push only their own shape
    formatted = [f"{a:<{left}} = {b:<{middle}}  {format_shape(s)}" for a, b, s in rows]
    if names:
        lines.append("where")
        lines += formatted[: len(names)]
        for node, name in names.items():
            latex_rows.append(rf"{sp.latex(sp.Symbol(name))} &= {latex_printer(node)}")
    lines += formatted[len(names) :]
    for param, grad in gradients.items():
        latex_rows.append(
            rf"\frac{{\partial L}}{{\partial {sp.latex(sp.Symbol(param))}}} &= "
            f"{latex_printer(grad)}"
        )
    data: dict[str, Any] = {
        "expression": loss_text,
        "shapes": {n: list(s) for n, s in shapes.items()},
        "wrt": list(gradients),
        "where": {
            name: {"formula": to_text(node, names), "shape": list(node.shape)}
            for node, name in names.items()
        },
        "gradient": {
            p: {
                "formula": text_printer(g),
                "shape": list(g.shape),
                "expanded": to_text(g) if tree_size(g) <= MAX_EXPANDED else None,
                "latex": latex_printer(g),
            }
            for p, g in gradients.items()
        },
    }
    latex = "\\begin{align}\n" + " \\\\\n".join(latex_rows) + "\n\\end{align}"
    return Report("\n".join(lines), lambda: latex, lambda: data)


def node_names(forward: Node, taken: frozenset[str] = frozenset()) -> dict[Node, str]:
    """A name for every operation of the forward pass (the nodes of the computational graph)."""
    counters: dict[str, int] = {}
    names: dict[Node, str] = {}
    for node in walk(forward):
        trivial = node.op in ("var", "const") or (
            node.op == "transpose" and node.args[0].op == "var"
        )
        if trivial or (scaled(node)[0] != 1 and node is not forward):
            continue
        letter = "H" if node.op in _ACTIVATIONS else _LETTERS.get(node.op, "T")
        if node is forward:
            letter = "L"
        while True:
            counters[letter] = counters.get(letter, 0) + 1
            name = f"{letter}{counters[letter]}" if letter != "L" else "L"
            if name not in taken:
                break
        names[node] = name
    return names


def steps_report(
    loss_text: str, shapes: Mapping[str, tuple], gradient: Any, wrt: Sequence[str]
) -> Report:
    """``symdiff steps --shape``: the forward graph with shapes, then the matrix chain rule node
    by node (adjoint in, rule, what each argument receives), then the gradients."""
    names = node_names(gradient.loss, frozenset(shapes))
    text_printer, latex_printer = TextPrinter(names), LatexPrinter(names)

    def one_op(node: Node) -> str:
        return text_printer(node)

    lines = [f"loss: {loss_text}", "forward pass:"]
    forward_rows = [(names[n], one_op(n), n.shape) for n in walk(gradient.loss) if n in names]
    left = max((len(r[0]) for r in forward_rows), default=1)
    middle = max((len(r[1]) for r in forward_rows), default=1)
    lines += [f"  {a:<{left}} = {b:<{middle}}  {format_shape(s)}" for a, b, s in forward_rows]
    lines.append("backward pass (dL/dL = 1; each node sends G through its rule to its inputs):")
    steps_data = []
    latex_rows = []
    for step in gradient.steps:
        label = names.get(step.node, text_printer(step.node))
        lines.append(f"  {label} = {one_op(step.node)}    {format_shape(step.node.shape)}")
        lines.append(f"      rule {step.rule}: {step.formula}")
        lines.append(
            f"      G = dL/d{label} = {text_printer(step.adjoint)}"
            f"    {format_shape(step.adjoint.shape)}"
        )
        sends = []
        for arg, contribution in step.contributions:
            target = names.get(arg, text_printer(arg))
            lines.append(
                f"      dL/d{target} += {text_printer(contribution)}"
                f"    {format_shape(contribution.shape)}"
            )
            sends.append(
                {
                    "to": target,
                    "contribution": text_printer(contribution),
                    "shape": list(contribution.shape),
                }
            )
        latex_rows.append(rf"\bar{{{sp.latex(sp.Symbol(label))}}} &= {latex_printer(step.adjoint)}")
        steps_data.append(
            {
                "node": label,
                "formula": one_op(step.node),
                "shape": list(step.node.shape),
                "rule": step.rule,
                "rule_formula": step.formula,
                "adjoint": text_printer(step.adjoint),
                "sends": sends,
            }
        )
    lines.append("gradients:")
    for name, grad in zip(wrt, gradient.gradients, strict=True):
        lines.append(f"  dL/d{name} = {text_printer(grad)}    {format_shape(grad.shape)}")
        latex_rows.append(
            rf"\frac{{\partial L}}{{\partial {sp.latex(sp.Symbol(name))}}} &= {latex_printer(grad)}"
        )
    data = {
        "expression": loss_text,
        "shapes": {n: list(s) for n, s in shapes.items()},
        "forward": [{"node": a, "formula": b, "shape": list(s)} for a, b, s in forward_rows],
        "backward": steps_data,
        "gradient": {
            name: text_printer(g) for name, g in zip(wrt, gradient.gradients, strict=True)
        },
    }
    latex = "\\begin{align}\n" + " \\\\\n".join(latex_rows) + "\n\\end{align}"
    return Report("\n".join(lines), lambda: latex, lambda: data)


def jacobian_report(
    text: str,
    shapes: Mapping[str, tuple],
    product: Any,
    explicit: Sequence[Node | None] | None = None,
) -> Report:
    """``symdiff jacobian --shape``: J = df/dp has shape f.shape + p.shape; printed as a matrix
    formula when it has at most two axes (``explicit``, from forward mode), and always as the
    vector-Jacobian product vᵀJ (what reverse mode computes) in a seed v of f's shape."""
    explicit = list(explicit or [None] * len(product.wrt))
    seed = product.seed.name
    lines = [
        f"f = {text}    {format_shape(product.expression.shape)}",
        f"{seed}: a seed of the shape of f {format_shape(product.expression.shape)}",
    ]
    rows, latex_rows = [], []
    for index, (param, value) in enumerate(zip(product.wrt, product.products, strict=True)):
        shape = product.jacobian_shape(index)
        matrix = explicit[index]
        if matrix is not None:
            lines.append(f"J_{param.name} = {to_text(matrix)}    {format_shape(shape)}")
            latex_rows.append(
                rf"\frac{{\partial f}}{{\partial {sp.latex(sp.Symbol(param.name))}}} &= "
                f"{to_latex(matrix)}"
            )
        lines.append(
            f"J_{param.name} = df/d{param.name}: shape {format_shape(shape)};  "
            f"{seed}ᵀ J_{param.name} = {to_text(value)}    {format_shape(value.shape)}"
        )
        latex_rows.append(
            rf"{sp.latex(sp.Symbol(seed))}^{{\top}} \frac{{\partial f}}"
            rf"{{\partial {sp.latex(sp.Symbol(param.name))}}} &= {to_latex(value)}"
        )
        rows.append(
            {
                "wrt": param.name,
                "jacobian_shape": list(shape),
                "jacobian": None if matrix is None else to_text(matrix),
                "vjp": to_text(value),
                "vjp_shape": list(value.shape),
            }
        )
    data = {
        "expression": text,
        "shape": list(product.expression.shape),
        "seed": seed,
        "shapes": {n: list(s) for n, s in shapes.items()},
        "jacobian": rows,
    }
    latex = "\\begin{align}\n" + " \\\\\n".join(latex_rows) + "\n\\end{align}"
    return Report("\n".join(lines), lambda: latex, lambda: data)
