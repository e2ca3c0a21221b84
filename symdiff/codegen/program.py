"""From an IR loss to the statements of a generated module: one pipeline for every loss.

    loss --stabilize--> --reassociate--> --reverse_mode--> gradients (and Hessian entries,
         or Hessian-vector products: reverse mode again over <gradient, v>)
         --stabilize_for_evaluation--> --lower--> --schedule--> statements

A per-sample loss (parameters of shape (), data of shape (n,)) is *blocked*: work that needs
only parameters is done once before the loop, per-sample work runs over blocks of ``BLOCK``
samples (the arrays of one block stay in cache), each sum over the samples is accumulated
block by block (``np.dot`` for a sum of products), and what follows the sums runs once after
the loop. Peak memory is then bounded by the block size, not by n. Tensor losses keep
whole-array matrix code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import sympy as sp

from ..autodiff.reverse import reverse_mode
from ..autodiff.second import direction_names, hvp_products
from ..errors import InputError
from ..ir.nodes import Node, Shape, const, dim_expr, format_shape, make_node, scaled, var, walk
from ..ir.printing import shared_names
from ..ir.rewrites import reassociate, stabilize, stabilize_for_evaluation
from ..ir.simplify import computed_anyway, tidy
from .numpy_print import NumpyPrinter

#: Samples per block in per-sample modules (a module constant, BLOCK, in the generated code).
BLOCK = 16_384

# --------------------------------------------------------------------------- lowering

Lowering = Callable[[Node, tuple[Node, ...]], Node]
LOWERINGS: dict[str, Lowering] = {}


def lowering(op: str) -> Callable[[Lowering], Lowering]:
    """Register how the composite ``op`` is computed from printable operations."""

    def register(rule: Lowering) -> Lowering:
        LOWERINGS[op] = rule
        return rule

    return register


def _raw(op: str, args: Sequence[Node], attrs: tuple = (), shape: Shape | None = None) -> Node:
    return make_node(op, tuple(args), attrs, args[0].shape if shape is None else shape)


@lowering("log_softmax")
def _lower_log_softmax(node: Node, args: tuple[Node, ...]) -> Node:
    """log_softmax(Z) = Z - logsumexp(Z, axis, keepdims)."""
    (z,) = args
    (axis,) = node.attrs
    shape = tuple(1 if axis is None or i == axis else d for i, d in enumerate(z.shape))
    lse = _raw("logsumexp", [z], (axis, True), shape)
    minus = _raw("mul", [const(-1), lse], (), shape)
    return _raw("add", [z, minus], (), z.shape)


@lowering("softmax")
def _lower_softmax(node: Node, args: tuple[Node, ...]) -> Node:
    """softmax(Z) = exp(log_softmax(Z)) (shares log_softmax with the cross-entropy)."""
    return _raw("exp", [_lower_log_softmax(node, args)])


@lowering("softmax_cross_entropy")
def _lower_softmax_cross_entropy(node: Node, args: tuple[Node, ...]) -> Node:
    """cross_entropy(Y, softmax(Z)) = -sum(Y * log_softmax(Z)) / n."""
    targets, logits = args
    rows = dim_expr(targets.shape[0]) if targets.ndim == 2 else sp.Integer(1)
    last = logits.ndim - 1
    log_p = _lower_log_softmax(make_node("log_softmax", (logits,), (last,), logits.shape), args[1:])
    total = _raw("sum", [_raw("mul", [targets, log_p])], (None, False), ())
    return _raw("mul", [const(-1 / rows), total], (), ())


def _raw_transpose(x: Node) -> Node:
    return x if x.ndim < 2 else _raw("transpose", [x], (), (x.shape[1], x.shape[0]))


def _inverse_of(node: Node) -> tuple[Node, bool] | None:
    """(A, False) for inv(A), (A, True) for inv(A).T, else None."""
    if node.op == "inv":
        return node.args[0], False
    if node.op == "transpose" and node.args[0].op == "inv":
        return node.args[0].args[0], True
    return None


@lowering("matmul")
def _lower_matmul(node: Node, args: tuple[Node, ...]) -> Node:
    """inv(A) @ B = solve(A, B), inv(A).T @ B = solve(A.T, B), B @ inv(A) = solve(A.T, B.T).T,
    B @ inv(A).T = solve(A, B.T).T: no inverse is formed for a product."""
    a, b = args
    left, right = _inverse_of(a), _inverse_of(b)
    if left is not None:
        system, transposed = left
        return _raw("solve", [_raw_transpose(system) if transposed else system, b], (), node.shape)
    if right is not None:
        system, transposed = right
        system = system if transposed else _raw_transpose(system)
        if a.ndim == 1:
            return _raw("solve", [system, a], (), node.shape)
        solved = _raw("solve", [system, _raw_transpose(a)], (), (b.shape[1], a.shape[0]))
        return _raw_transpose(solved)
    return node if args == node.args else _raw("matmul", args, (), node.shape)


def lower(roots: Sequence[Node]) -> list[Node]:
    """The roots with every composite operation replaced by its lowering (memoised)."""
    memo: dict[Node, Node] = {}
    for node in walk(list(roots)):
        args = tuple(memo[a] for a in node.args)
        rule = LOWERINGS.get(node.op)
        if rule is not None:
            memo[node] = rule(node, args)
        elif args == node.args:
            memo[node] = node
        else:
            memo[node] = make_node(node.op, args, node.attrs, node.shape)
    return [memo[r] for r in roots]


# --------------------------------------------------------------------------- differentiation


@dataclass(frozen=True)
class LossProgram:
    """A loss ready to print: the evaluated forms of the loss, gradients and Hessian entries."""

    loss: Node
    gradients: tuple[Node, ...]
    hessian: tuple[tuple[int, int, Node], ...]
    params: dict[str, Shape]
    data: dict[str, Shape]
    sample_dim: str | None
    applied: tuple[str, ...]
    differentiated: Node  # the loss reverse mode saw (before the evaluation rewrites)
    gradient_forms: tuple[Node, ...]  # the gradients before the evaluation rewrites
    adjoints: Mapping[Node, Node] = field(default_factory=dict)
    hvp: tuple[Node, ...] = ()  # (H v)_p per parameter, in the directions below
    directions: dict[str, Shape] = field(default_factory=dict)  # v_p: the direction of p


def differentiate(
    loss: Node,
    params: Mapping[str, Shape],
    data: Mapping[str, Shape],
    *,
    sample_dim: str | None = None,
    hessian: bool = False,
    hvp: bool = False,
) -> LossProgram:
    """Stabilize, reassociate, differentiate, rewrite for evaluation and lower ``loss``; with
    ``hvp``, also the Hessian-vector product in directions ``v_p`` of the parameters' shapes."""
    (stable,), applied = stabilize([loss])
    (stable,) = reassociate([stable])
    stable = tidy(stable, computed_anyway(stable))
    wrt = [var(name, shape) for name, shape in params.items()]
    gradient = reverse_mode(stable, wrt)
    grads = list(gradient.gradients)
    entries: list[tuple[int, int, Node]] = []
    if hessian:
        for i, first in enumerate(grads):
            second = reverse_mode(first, wrt[i:]).gradients
            entries += [(i, i + k, h) for k, h in enumerate(second)]
    directions: dict[str, Shape] = {}
    products: tuple[Node, ...] = ()
    if hvp:
        taken = {*params, *data, *(str(d) for s in [*params.values(), *data.values()] for d in s)}
        names = direction_names(list(params), taken)
        directions = dict(zip(names, params.values(), strict=True))
        seeds = [var(name, shape) for name, shape in directions.items()]
        products = tuple(hvp_products(grads, wrt, seeds))
    more_roots = [*(h for _, _, h in entries), *products]
    evaluated, more = stabilize_for_evaluation([stable, *grads, *more_roots])
    lowered = lower(evaluated)
    count = len(grads)
    rest = len(entries)
    return LossProgram(
        loss=lowered[0],
        gradients=tuple(lowered[1 : 1 + count]),
        hessian=tuple(
            (i, j, h)
            for (i, j, _), h in zip(entries, lowered[1 + count : 1 + count + rest], strict=True)
        ),
        params=dict(params),
        data=dict(data),
        sample_dim=sample_dim,
        applied=tuple(dict.fromkeys([*applied, *more])),
        differentiated=stable,
        gradient_forms=tuple(grads),
        adjoints=gradient.adjoints,
        hvp=tuple(lowered[1 + count + rest :]),
        directions=directions,
    )


# --------------------------------------------------------------------------- names


class Namer:
    """Names for generated locals that never collide with user names, dimensions or ours."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)

    def __call__(self, base: str) -> str:
        """``base`` if free, else ``base_2``, ``base_3`` ..."""
        candidate, index = base, 1
        while candidate in self.taken:
            index += 1
            candidate = f"{base}_{index}"
        self.taken.add(candidate)
        return candidate

    def numbered(self, letter: str) -> str:
        """The first free of ``letter1``, ``letter2`` ..."""
        index = 1
        while f"{letter}{index}" in self.taken:
            index += 1
        self.taken.add(f"{letter}{index}")
        return f"{letter}{index}"


# --------------------------------------------------------------------------- schedule


@dataclass
class Body:
    """The statements of one generated function, and the code of its results."""

    lines: list[str]
    results: list[str]
    helpers: set[str]


PARAM, SAMPLE, AFTER = 0, 1, 2


def _levels(nodes: Sequence[Node], data: set[str], sample_dim: str) -> dict[Node, int] | None:
    """PARAM, SAMPLE or AFTER (after a sum over the samples) per node; None if not one pass."""
    level: dict[Node, int] = {}
    for node in nodes:
        if node.op == "var":
            level[node] = SAMPLE if node.name in data else PARAM
            continue
        highest = max((level[a] for a in node.args), default=PARAM)
        per_sample = sample_dim in node.shape
        if per_sample and highest != SAMPLE:
            return None  # a per-sample array built from parameters alone (broadcast)
        if per_sample and any(level[a] == AFTER for a in node.args):
            return None  # per-sample work needs a finished sum: two passes
        if highest == SAMPLE and not per_sample:
            if node.op != "sum" or node.shape != ():
                return None  # a reduction that is not a plain sum
            level[node] = AFTER
            continue
        level[node] = highest if not per_sample else SAMPLE
    return level


def _is_leaf(node: Node) -> bool:
    return node.op in ("var", "const")


def _comment(node: Node, labels: Mapping[Node, str], name: str = "") -> str:
    """The shape of an array, and what a result is (L, dL/dW) unless its name says so."""
    label = labels.get(node, "")
    parts = [label] if label and name not in ("L", label.replace("dL/d", "d", 1)) else []
    parts += [format_shape(node.shape)] if node.shape else []
    return f"  # {', '.join(parts)}" if parts else ""


def emit(
    roots: Sequence[Node],
    program: LossProgram,
    namer: Namer,
    inputs: Mapping[str, str],
    labels: Mapping[Node, str] | None = None,
    printer_class: type[NumpyPrinter] = NumpyPrinter,
) -> Body:
    """Statements computing ``roots`` (blocked for per-sample losses), and the roots' code.

    ``inputs`` maps each parameter and data name to the local that holds it; ``printer_class``
    is the backend's printer (NumPy, or the array API standard).
    """
    labels = labels or {}
    nodes = walk(list(roots))
    levels = _levels(nodes, set(program.data), program.sample_dim) if program.sample_dim else None
    blocked = levels is not None and any(levels[n] == AFTER for n in nodes)
    taken = frozenset(namer.taken)
    names = shared_names(roots[0], list(roots), None, taken)
    namer.taken.update(names.values())
    for root in roots:
        if root not in names and not _is_leaf(root) and root.op != "broadcast_to":
            label = labels.get(root, "")
            preferred = "L" if label == "L" else label.replace("dL/d", "d", 1)
            names[root] = namer(preferred) if preferred.isidentifier() else namer.numbered("T")
    for node in nodes:
        if node.op == "var":
            names[node] = inputs[node.name]
    if not blocked:
        printer = printer_class(names)
        lines = [
            f"{names[n]} = {printer(n)}{_comment(n, labels, names[n])}"
            for n in nodes
            if n in names and not _is_leaf(n)
        ]
        results = [printer.visit(r)[0] for r in roots]
        return Body(lines, results, printer.helpers)
    assert levels is not None and program.sample_dim is not None
    return _emit_blocked(roots, nodes, levels, names, printer_class, namer, program, labels)


def _emit_blocked(
    roots: Sequence[Node],
    nodes: Sequence[Node],
    levels: Mapping[Node, int],
    names: dict[Node, str],
    printer_class: type[NumpyPrinter],
    namer: Namer,
    program: LossProgram,
    labels: Mapping[Node, str],
) -> Body:
    sums = [
        n for n in nodes if levels[n] == AFTER and n.op == "sum" and levels[n.args[0]] == SAMPLE
    ]
    for node in sums:
        names[node] = namer.numbered("S")
    used_per_sample = {a for n in nodes if levels[n] == SAMPLE for a in n.args}
    for node in nodes:  # parameter-only work used per sample: computed once, before the loop
        if (
            levels[node] == PARAM
            and not _is_leaf(node)
            and node in used_per_sample
            and scaled(node)[0] == 1  # -p and 2*p print inline in their users
        ):
            names.setdefault(node, namer.numbered("T"))
    full = {
        d: namer(f"{names[var(d, s)]}_all") for d, s in program.data.items() if var(d, s) in names
    }
    printer = printer_class(names)
    start, size = namer("start"), str(program.sample_dim)
    before = [
        f"{names[n]} = {printer(n)}"
        for n in nodes
        if levels[n] == PARAM and n in names and not _is_leaf(n)
    ]
    loop = ["# per-sample work, block by block; S1, S2, ... are sums over all samples"]
    loop += [f"{name} = 0.0" for name in (names[s] for s in sums)]
    loop.append(f"for {start} in range(0, {size}, BLOCK):")
    body = [
        f"{names[var(d, program.data[d])]} = {printer.block(full[d], start, size)}" for d in full
    ]
    for node in nodes:
        if levels[node] == SAMPLE and node in names and not _is_leaf(node) and node not in sums:
            body.append(f"{names[node]} = {printer(node)}")
    for node in sums:
        (summand,) = node.args
        if summand.op == "mul" and summand.args[0].shape == summand.args[1].shape == summand.shape:
            total = printer.dot(*summand.args)
        else:
            total = printer.call(printer.fn("sum"), [printer.visit(summand)[0]])
        body.append(f"{names[node]} += {total}")
    loop += [f"    {line}" for line in body]
    after = [
        f"{names[n]} = {printer(n)}{_comment(n, labels, names[n])}"
        for n in nodes
        if levels[n] == AFTER and n in names and n not in sums and not _is_leaf(n)
    ]
    results = [printer.visit(r)[0] for r in roots]
    rename = [f"{full[d]} = {names[var(d, program.data[d])]}" for d in full]
    return Body([*rename, *before, *loop, *after], results, printer.helpers)


def check_generated_names(names: Sequence[str], reserved: frozenset[str]) -> None:
    """Every user name must be free for the generated module's own names."""
    for name in names:
        if name in reserved:
            raise InputError(f"name '{name}' is reserved in generated code; rename it")
