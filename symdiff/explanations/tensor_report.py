"""Reports of tensor gradients, steps and Jacobians (symdiff grad/steps/jacobian --shape)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp

from ..ir.nodes import Node, format_shape, scale, scaled, var, walk
from ..ir.printing import (
    MAX_EXPANDED,
    POSTFIX,
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
    names = shared_names(loss, roots, adjoints, taken_names(shapes, loss), preactivations=True)
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


#: Rules the report presents in the form the user typed, where the IR builds the node from
#: another op: a difference is ``add(A, -1 * B)``, a scaling is ``mul(c, A)``.
PRESENTED_RULES = {
    "sub": "Y = A - B:  dA = unbroadcast(G),  dB = -unbroadcast(G)",
    "scale": "Y = c * A:  dA = c * G",
}

_LETTER = re.compile(r"(?<![\w.])(d?)([A-Za-z])(?!\w)")
_NOTE = re.compile(r"\s+\(([^()]*)\)$")


def _negated(node: Node) -> bool:
    return node.op == "mul" and scaled(node)[0] == -1


def _subtrahends(forward: Node) -> set[Node]:
    """Negated nodes used only as a later term of one sum: printed ``A - B``, explained as one
    subtraction step (rule sub) instead of an add and a multiplication by -1."""
    uses: dict[Node, list[tuple[Node, int]]] = {}
    for node in walk(forward):
        for index, arg in enumerate(node.args):
            uses.setdefault(arg, []).append((node, index))
    return {
        node
        for node, parents in uses.items()
        if _negated(node) and len(parents) == 1 and parents[0][0].op == "add" and parents[0][1] > 0
    }


def node_names(
    forward: Node,
    roots: Sequence[Node] = (),
    adjoints: Mapping[Node, Node] | None = None,
    taken: frozenset[str] = frozenset(),
) -> dict[Node, str]:
    """A name for every operation of the forward pass (the nodes of the computational graph).

    The nodes ``grad`` names in its ``where`` block (``shared_names`` of the same ``roots``) keep
    those names (Z1 = X @ W1 + b1, H1 = relu(Z1)); the loss is L; the others are T1, T2, ... in
    the order of the forward pass, never a name of ``taken``.
    """
    forward_nodes = set(walk(forward))
    where = shared_names(forward, list(roots), adjoints, taken, preactivations=True)
    names = {node: name for node, name in where.items() if node in forward_nodes}
    used = set(taken) | set(where.values())
    skip = _subtrahends(forward)

    def fresh(letter: str, first: str | None = None) -> str:
        if first is not None and first not in used:
            used.add(first)
            return first
        number = 1
        while f"{letter}{number}" in used:
            number += 1
        used.add(f"{letter}{number}")
        return f"{letter}{number}"

    loss_name = fresh("L", "L")
    for node in walk(forward):
        trivial = node.op in ("var", "const", "eye") or (
            node.op == "transpose" and node.args[0].op == "var"
        )
        if node in names or trivial or node in skip:
            continue
        names[node] = loss_name if node is forward else fresh("T")
    return names


def _instantiate(
    formula: str,
    output: str,
    args: Sequence[tuple[str, bool]],
    extra: Mapping[str, str],
    loss: str,
) -> str:
    """The table's rule in the step's own names: in ``Y = A + B:  dA = ...,  dB = ...`` the
    output letter, the argument letters in order, dA as dL/dA. ``args`` are (name, receives)
    pairs: the clause of an argument that receives nothing is left out. Returns the rule's
    body (the step's line above already shows its definition)."""
    definition, _, body = formula.partition(":")
    body, note = _NOTE.split(body.strip())[0], _NOTE.findall(body.strip())
    letters = [m.group(2) for m in _LETTER.finditer(definition) if not m.group(1)]
    mapping = {**extra, **{k: v for k, (v, _) in zip(letters[1:], args, strict=False)}}
    if letters:
        mapping[letters[0]] = output
    skipped = {k for k, (_, receives) in zip(letters[1:], args, strict=False) if not receives}

    def replace(match: re.Match[str]) -> str:
        prefix, letter = match.groups()
        if letter not in mapping:
            return match.group(0)
        if prefix:
            return f"d{loss}/d{mapping[letter]}" if letter in letters[1:] else match.group(0)
        return mapping[letter]

    clauses = [
        _LETTER.sub(replace, clause)
        for clause in body.split(",  ")
        if not any(clause.startswith(f"d{k} ") for k in skipped)
    ]
    return ",  ".join(clauses) + "".join(f"  ({n})" for n in note)


def steps_report(
    loss_text: str, shapes: Mapping[str, tuple], gradient: Any, wrt: Sequence[str]
) -> Report:
    """``symdiff steps --shape``: the forward graph with shapes, then the matrix chain rule node
    by node (adjoint in, rule, what each argument receives), then the gradients."""
    taken = taken_names(shapes, gradient.loss)
    names = node_names(gradient.loss, gradient.gradients, gradient.adjoints, taken)
    adjoint_name = "G" if "G" not in taken | set(names.values()) else "Gbar"
    text_printer, latex_printer = TextPrinter(names), LatexPrinter(names)
    one_op = text_printer
    loss = names[gradient.loss]

    def label(node: Node) -> str:
        return names.get(node) or text_printer.wrap(node, POSTFIX)

    lines = [f"loss: {loss_text}", "forward pass:"]
    forward_rows = [(names[n], one_op(n), n.shape) for n in walk(gradient.loss) if n in names]
    left = max((len(r[0]) for r in forward_rows), default=1)
    middle = max((len(r[1]) for r in forward_rows), default=1)
    lines += [f"  {a:<{left}} = {b:<{middle}}  {format_shape(s)}" for a, b, s in forward_rows]
    lines.append(
        f"backward pass (d{loss}/d{loss} = 1; each node sends {adjoint_name} "
        "through its rule to its inputs):"
    )
    subtrahends = _subtrahends(gradient.loss)
    pending = {step.node: step for step in gradient.steps if step.node in subtrahends}
    steps_data = []
    latex_rows = []
    for step in gradient.steps:
        if step.node in subtrahends:
            continue  # explained by the subtraction that uses it
        rule, formula, sends = _presented(step, subtrahends, pending)
        receivers = {arg for arg, _ in sends}
        args = _sub_operands(step.node) if rule == "sub" else step.node.args
        operands = [(label(a), a in receivers) for a in args]
        extra = {"G": adjoint_name, "g": adjoint_name}
        if rule == "softmax_cross_entropy" and step.node.args[0].ndim == 2:
            extra["n"] = str(step.node.args[0].shape[0])
        rule_text = _instantiate(formula, label(step.node), operands, extra, loss)
        if rule == "scale":  # dA = c * G, written as the node is (G / n for T / n)
            c, x = scaled(step.node)
            rule_text = f"d{loss}/d{label(x)} = {text_printer(scale(c, var(adjoint_name)))}"
        name = label(step.node)
        lines.append(f"  {name} = {one_op(step.node)}    {format_shape(step.node.shape)}")
        lines.append(f"      rule {rule}: {rule_text}")
        lines.append(
            f"      {adjoint_name} = d{loss}/d{name} = {text_printer(step.adjoint)}"
            f"    {format_shape(step.adjoint.shape)}"
        )
        sent = []
        for arg, contribution in sends:
            target = label(arg)
            lines.append(
                f"      d{loss}/d{target} += {text_printer(contribution)}"
                f"    {format_shape(contribution.shape)}"
            )
            sent.append(
                {
                    "to": target,
                    "contribution": text_printer(contribution),
                    "shape": list(contribution.shape),
                }
            )
        latex_rows.append(rf"\bar{{{sp.latex(sp.Symbol(name))}}} &= {latex_printer(step.adjoint)}")
        steps_data.append(
            {
                "node": name,
                "formula": one_op(step.node),
                "shape": list(step.node.shape),
                "rule": rule,
                "rule_formula": rule_text,
                "adjoint": text_printer(step.adjoint),
                "sends": sent,
            }
        )
    lines.append("gradients:")
    for name, grad in zip(wrt, gradient.gradients, strict=True):
        lines.append(f"  d{loss}/d{name} = {text_printer(grad)}    {format_shape(grad.shape)}")
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


def taken_names(shapes: Mapping[str, tuple], loss: Node) -> frozenset[str]:
    """Names a report must not give a node: declared symbols, dimensions, the loss's symbols."""
    dims = {d for shape in shapes.values() for d in shape if isinstance(d, str)}
    return (
        frozenset(shapes) | frozenset(dims) | frozenset(n.name for n in walk(loss) if n.op == "var")
    )


def _sub_operands(node: Node) -> tuple[Node, Node]:
    """``A - B`` from ``add(A, -1 * B)``."""
    a, b = node.args
    return a, scaled(b)[1]


def _presented(
    step: Any, subtrahends: set[Node], pending: Mapping[Node, Any]
) -> tuple[str, str, list[tuple[Node, Node]]]:
    """(rule name, rule formula, what is sent where) as the user typed the node: ``A - B`` is a
    subtraction sending -G straight to B (the step of ``-1 * B`` folded in); ``c * A`` a scaling."""
    node = step.node
    sends = list(step.contributions)
    if node.op == "add" and node.args[1] in subtrahends:
        negated = node.args[1]
        inner = pending.get(negated)
        sends = [(a, c) for a, c in sends if a is not negated]
        sends += list(inner.contributions) if inner is not None else []
        return "sub", PRESENTED_RULES["sub"], sends
    if node.op == "mul" and scaled(node)[0] != 1:
        return "scale", PRESENTED_RULES["scale"], sends
    return step.rule, step.formula, sends


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
        else:
            lines.append(
                f"J_{param.name}: df/d{param.name} of shape {format_shape(shape)}, "
                "not written as a matrix"
            )
        lines.append(f"{seed}ᵀ J_{param.name} = {to_text(value)}    {format_shape(value.shape)}")
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
