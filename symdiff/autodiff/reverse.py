"""Reverse mode over tensor expressions: one vector-Jacobian product (VJP) rule per operation.

A rule receives a node ``y = op(x1, ..., xk)`` and the adjoint ``G = dL/dy`` (same shape as y)
and returns each ``dL/dxi`` with the shape of ``xi``. Rules are data: ``VJP_RULES[op]``, filled
by the ``@vjp`` decorator, with the formula each one applies in ``VJP_FORMULAS``. Gradients come
out in matrix form: an elementwise derivative is a Hadamard product (``diag(f'(x)) @ G`` is
written ``G * f'(x)``, never as an n x n matrix) and a broadcast bias gets the sum over the
stretched axes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from ..errors import InputError, ShapeError, UnknownFunctionError
from ..frontend.tensor_parse import parse_tensor
from ..ir.linalg import diag, inv, kron
from ..ir.nodes import (
    Node,
    Shape,
    add,
    const,
    dim_expr,
    div,
    expand_dims,
    format_shape,
    is_const,
    matmul,
    mul,
    neg,
    permute,
    power,
    reshape,
    scale,
    sub,
    sum_,
    swapaxes,
    transpose,
    unbroadcast,
    var,
    walk,
)
from ..ir.nodes import broadcast_to as broadcast
from ..ir.ops import (
    IR_FUNCTIONS,
    apply,
    einsum_adjoint,
    elementwise,
    eye,
    log_softmax,
    outer,
    softmax,
)
from ..ir.simplify import tidy_all
from ..primitives import PRIMITIVES, Primitive

Adjoints = tuple[Node | None, ...]
VJPRule = Callable[[Node, Node], Adjoints]

VJP_RULES: dict[str, VJPRule] = {}
VJP_FORMULAS: dict[str, str] = {}


def vjp(op: str, formula: str) -> Callable[[VJPRule], VJPRule]:
    """Register the vector-Jacobian product of ``op`` (``formula`` is shown by ``steps``)."""

    def register(rule: VJPRule) -> VJPRule:
        VJP_RULES[op] = rule
        VJP_FORMULAS[op] = formula
        return rule

    return register


# --------------------------------------------------------------------------- arithmetic


@vjp("add", "Y = A + B:  dA = unbroadcast(G),  dB = unbroadcast(G)")
def _add(y: Node, g: Node) -> Adjoints:
    a, b = y.args
    return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


@vjp("mul", "Y = A * B:  dA = unbroadcast(G * B),  dB = unbroadcast(G * A)")
def _mul(y: Node, g: Node) -> Adjoints:
    a, b = y.args
    return unbroadcast(mul(g, b), a.shape), unbroadcast(mul(g, a), b.shape)


@vjp("div", "Y = A / B:  dA = unbroadcast(G / B),  dB = unbroadcast(-G * Y / B)")
def _div(y: Node, g: Node) -> Adjoints:
    a, b = y.args
    return unbroadcast(div(g, b), a.shape), unbroadcast(neg(div(mul(g, y), b)), b.shape)


@vjp("pow", "Y = A ** B:  dA = G * B * A**(B - 1),  dB = G * log(A) * Y")
def _pow(y: Node, g: Node) -> Adjoints:
    a, b = y.args
    exponent_minus_one = const(b.value - 1) if is_const(b) else sub(b, const(1))
    da = unbroadcast(mul(g, mul(b, power(a, exponent_minus_one))), a.shape)
    db = None if is_const(b) else unbroadcast(mul(g, mul(elementwise("log", a), y)), b.shape)
    return da, db


@vjp("matmul", "Y = A @ B:  dA = G @ B.T,  dB = A.T @ G  (outer products for vectors)")
def _matmul(y: Node, g: Node) -> Adjoints:
    a, b = y.args
    if a.ndim > 2 or b.ndim > 2:
        return _batched_matmul(a, b, g)
    if a.ndim == 2 and b.ndim == 2:
        return matmul(g, transpose(b)), matmul(transpose(a), g)
    if a.ndim == 2:  # (m,k) @ (k,) -> (m,)
        return outer(g, b), matmul(transpose(a), g)
    if b.ndim == 2:  # (k,) @ (k,p) -> (p,)
        return matmul(b, g), outer(a, g)
    return mul(g, b), mul(g, a)  # (k,) @ (k,) -> ()


def _batched_matmul(a: Node, b: Node, g: Node) -> Adjoints:
    """Stacks of matrices: dA = G @ swapaxes(B, -1, -2), dB = swapaxes(A, -1, -2) @ G, each
    summed over the batch axes its operand was broadcast along."""
    if a.ndim == 1:  # (k,) @ (..., k, p) -> (..., p): da = sum over p and the batch of B * G
        da = sum_(mul(b, expand_dims(g, g.ndim - 1)), -1)
        db = mul(expand_dims(a, 1), expand_dims(g, g.ndim - 1))
    elif b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m): db = sum over m and the batch of A * G
        da = mul(expand_dims(g, g.ndim), b)
        db = sum_(mul(a, expand_dims(g, g.ndim)), -2)
    else:
        da = matmul(g, swapaxes(b, -1, -2))
        db = matmul(swapaxes(a, -1, -2), g)
    return unbroadcast(da, a.shape), unbroadcast(db, b.shape)


@vjp("permute", "Y = transpose(A, axes):  dA = transpose(G, argsort(axes))")
def _permute(y: Node, g: Node) -> Adjoints:
    (axes,) = y.attrs
    return (permute(g, sorted(range(len(axes)), key=axes.__getitem__)),)


@vjp("reshape", "Y = reshape(A, shape):  dA = reshape(G, A.shape)")
def _reshape(y: Node, g: Node) -> Adjoints:
    return (reshape(g, y.args[0].shape),)


@vjp(
    "einsum",
    "Y = einsum('ij,jk->ik', A, B):  dA = einsum('ik,jk->ij', G, B),  "
    "dB = einsum('ik,ij->jk', G, A)  (G with the other operands, to each operand's indices)",
)
def _einsum(y: Node, g: Node) -> Adjoints:
    return tuple(einsum_adjoint(y, g, i) for i in range(len(y.args)))


@vjp("transpose", "Y = A.T:  dA = G.T")
def _transpose(y: Node, g: Node) -> Adjoints:
    return (transpose(g),)


@vjp("outer", "Y = outer(a, b):  da = G @ b,  db = G.T @ a")
def _outer(y: Node, g: Node) -> Adjoints:
    a, b = y.args
    return matmul(g, b), matmul(transpose(g), a)


@vjp("trace", "y = trace(A):  dA = g * I")
def _trace(y: Node, g: Node) -> Adjoints:
    return (mul(g, eye(y.args[0].shape[0])),)


# --------------------------------------------------------------------------- linear algebra


@vjp("det", "y = det(A):  dA = g * det(A) * inv(A).T")
def _det(y: Node, g: Node) -> Adjoints:
    return (mul(mul(g, y), transpose(inv(y.args[0]))),)


@vjp("logdet", "y = logdet(A):  dA = g * inv(A).T")
def _logdet(y: Node, g: Node) -> Adjoints:
    return (mul(g, transpose(inv(y.args[0]))),)


@vjp("inv", "Y = inv(A):  dA = -Y.T @ G @ Y.T")
def _inv(y: Node, g: Node) -> Adjoints:
    return (neg(matmul(matmul(transpose(y), g), transpose(y))),)


@vjp("diag", "Y = diag(v):  dv = diag(G);  y = diag(A):  dA = diag(g)")
def _diag(y: Node, g: Node) -> Adjoints:
    return (diag(g),)


@vjp("norm1", "y = norm1(A) = sum(abs(A)):  dA = g * sign(A)")
def _norm1(y: Node, g: Node) -> Adjoints:
    return (mul(g, elementwise("sign", y.args[0])),)


@vjp("frobenius", "y = frobenius(A) = sqrt(sum(A**2)):  dA = g * A / y")
def _frobenius(y: Node, g: Node) -> Adjoints:
    return (mul(g, div(y.args[0], y)),)


def _ones(rows: int, columns: int) -> Node:
    return broadcast(const(1), (rows, columns))


@vjp(
    "kron",
    "Y = kron(A, B):  dA = kron(eye(m), ones(p, 1)).T @ (G * kron(ones(m, n), B)) @ "
    "kron(eye(n), ones(q, 1)),  dB = kron(ones(m, 1), eye(p)).T @ (G * kron(A, ones(p, q))) @ "
    "kron(ones(n, 1), eye(q))  (block sums)",
)
def _kron(y: Node, g: Node) -> Adjoints:
    a, b = y.args
    (m, n), (p, q) = a.shape, b.shape
    assert all(isinstance(d, int) for d in (m, n, p, q))  # kron() admits numeric dimensions only
    m, n, p, q = int(m), int(n), int(p), int(q)
    if g.op == "broadcast_to" and g.args[0].ndim == 0:  # G = c everywhere: c*sum(B), c*sum(A)
        c = g.args[0]
        return broadcast(mul(c, sum_(b)), a.shape), broadcast(mul(c, sum_(a)), b.shape)
    da = matmul(
        matmul(transpose(kron(eye(m), _ones(p, 1))), mul(g, kron(_ones(m, n), b))),
        kron(eye(n), _ones(q, 1)),
    )
    db = matmul(
        matmul(transpose(kron(_ones(m, 1), eye(p))), mul(g, kron(a, _ones(p, q)))),
        kron(_ones(n, 1), eye(q)),
    )
    return da, db


# --------------------------------------------------------------------------- reductions


def _spread(g: Node, axis: int | None, keepdims: bool, shape: tuple) -> Node:
    """The adjoint of a reduction: G copied back along the reduced axis."""
    if axis is not None and not keepdims and axis != 0:
        g = expand_dims(g, axis)
    return broadcast(g, shape)


def _kept(g: Node, axis: int | None, keepdims: bool) -> Node:
    """A reduction's value with its reduced axis put back (length 1), ready to broadcast."""
    return expand_dims(g, axis) if axis not in (None, 0) and not keepdims else g


@vjp("sum", "y = sum(A, axis):  dA = G copied along axis")
def _sum(y: Node, g: Node) -> Adjoints:
    axis, keepdims = y.attrs
    return (_spread(g, axis, keepdims, y.args[0].shape),)


@vjp(
    "amax",
    "y = max(A, axis):  dA = G * M / sum(M, axis, keepdims),  M = heaviside(A - y, 1) "
    "(shared evenly between tied maxima)",
)
def _amax(y: Node, g: Node) -> Adjoints:
    axis, keepdims = y.attrs
    a = y.args[0]
    mask = elementwise("heaviside", sub(a, _kept(y, axis, keepdims)), 1)
    share = div(mask, sum_(mask, axis, keepdims=True))
    return (mul(_kept(g, axis, keepdims), share),)


@vjp("broadcast_to", "Y = broadcast_to(A):  dA = sum of G over the stretched axes")
def _broadcast_to(y: Node, g: Node) -> Adjoints:
    return (unbroadcast(g, y.args[0].shape),)


@vjp("expand_dims", "Y = expand_dims(A, axis):  dA = sum(G, axis)")
def _expand_dims(y: Node, g: Node) -> Adjoints:
    return (sum_(g, y.attrs[0]),)


@vjp("softmax", "S = softmax(A, axis):  dA = S * (G - sum(G * S, axis, keepdims))")
def _softmax(y: Node, g: Node) -> Adjoints:
    (axis,) = y.attrs
    return (mul(y, sub(g, sum_(mul(g, y), axis, keepdims=True))),)


@vjp("log_softmax", "Y = log_softmax(A, axis):  dA = G - softmax(A) * sum(G, axis, keepdims)")
def _log_softmax(y: Node, g: Node) -> Adjoints:
    (axis,) = y.attrs
    a = y.args[0]
    return (sub(g, mul(softmax(a, axis), sum_(g, axis, keepdims=True))),)


@vjp("logsumexp", "y = logsumexp(A, axis):  dA = G * softmax(A, axis) = G * exp(A - y)")
def _logsumexp(y: Node, g: Node) -> Adjoints:
    axis, keepdims = y.attrs
    a = y.args[0]
    if axis is not None and not keepdims:
        g = expand_dims(g, axis)
    if axis is None and a.ndim > 1:  # softmax over all elements, written with y itself
        return (mul(g, elementwise("exp", sub(a, y))),)
    return (mul(g, softmax(a, 0 if axis is None else axis)),)


@vjp(
    "softmax_cross_entropy",
    "l = cross_entropy(Y, softmax(Z)):  dZ = g * (softmax(Z) - Y) / n,  "
    "dY = -g * log_softmax(Z) / n  (rows of Y sum to 1)",
)
def _softmax_cross_entropy(y: Node, g: Node) -> Adjoints:
    targets, logits = y.args
    rows = dim_expr(targets.shape[0]) if targets.ndim == 2 else sp.Integer(1)
    last = logits.ndim - 1
    d_logits = mul(g, scale(1 / rows, sub(softmax(logits, last), targets)))
    d_targets = mul(g, scale(-1 / rows, log_softmax(logits, last)))
    return d_targets, d_logits


# --------------------------------------------------------------------------- elementwise


def _elementwise_rule(row: Primitive) -> VJPRule:
    """Y = f(A, ...):  dA = unbroadcast(G * df/dA), ... from the primitives table."""

    def rule(y: Node, g: Node) -> Adjoints:
        if row.flat:
            return (None,) * len(y.args)
        partials = row.partials(y.args, y, IR_FUNCTIONS)
        return tuple(
            unbroadcast(mul(g, partial), a.shape)
            for a, partial in zip(y.args, partials, strict=True)
        )

    return rule


def _elementwise_formula(row: Primitive) -> str:
    """'Y = sigmoid(A):  dA = G * Y * (1 - Y)', printed from the table's own derivative."""
    from ..ir.printing import MUL, TextPrinter

    names = "AB"[: row.arity]
    args = tuple(var(n) for n in names)
    y = apply(row.name, *args)
    if row.flat:
        return f"Y = {row.name}({', '.join(names)}):  d{names[0]} = 0 (almost everywhere)"
    partials = row.partials(args, y, IR_FUNCTIONS)
    printer = TextPrinter({y: "Y"})
    parts = [
        f"d{n} = G * {printer.wrap(p, MUL, strict=True)}"
        for n, p in zip(names, partials, strict=True)
    ]
    return f"Y = {row.name}({', '.join(names)}):  {',  '.join(parts)}"


for _row in PRIMITIVES.values():
    vjp(_row.name, _elementwise_formula(_row))(_elementwise_rule(_row))


# --------------------------------------------------------------------------- reverse mode


@dataclass(frozen=True)
class BackwardStep:
    """One node of the backward pass: its adjoint G and what the rule sends to each argument."""

    node: Node
    adjoint: Node
    rule: str
    formula: str
    contributions: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class TensorGradient:
    """dL/dp for each parameter p, in matrix form, with the backward pass that produced it."""

    loss: Node
    wrt: tuple[Node, ...]
    gradients: tuple[Node, ...]
    steps: tuple[BackwardStep, ...]
    adjoints: dict[Node, Node]

    def __getitem__(self, name: str) -> Node:
        for param, grad in zip(self.wrt, self.gradients, strict=True):
            if param.name == name:
                return grad
        raise KeyError(name)

    def as_dict(self) -> dict[str, Node]:
        return {p.name: g for p, g in zip(self.wrt, self.gradients, strict=True)}


def _depends_on(root: Node, targets: Iterable[Node]) -> set[Node]:
    """Nodes below ``root`` through which any of ``targets`` is reached."""
    wanted = set(targets)
    result: set[Node] = set()
    for node in walk(root):
        if node in wanted or any(arg in result for arg in node.args):
            result.add(node)
    return result


def reverse_mode(loss: Node, wrt: Sequence[Node]) -> TensorGradient:
    """Backpropagate dL/dL = 1 through the DAG of ``loss``, one VJP rule per node.

    Adjoints of a node used in several places are summed; only nodes on a path to a parameter
    are visited. A parameter the loss does not use gets a zero gradient of its shape.
    """
    if loss.shape != ():
        raise ShapeError(
            f"the loss must be a scalar, but it has shape {format_shape(loss.shape)}: "
            "reduce it with sum(...) or mean(...)"
        )
    for param in wrt:
        if param.op != "var":
            raise InputError("can only differentiate with respect to a named symbol")
    relevant = _depends_on(loss, wrt)
    adjoints: dict[Node, Node] = {loss: const(1)}
    steps: list[BackwardStep] = []
    for node in reversed(walk(loss)):
        g = adjoints.get(node)
        if g is None or node.op in ("var", "const") or node not in relevant:
            continue
        rule = VJP_RULES.get(node.op)
        if rule is None:
            raise UnknownFunctionError(node.op)
        sent: list[tuple[Node, Node]] = []
        for arg, contribution in zip(node.args, rule(node, g), strict=True):
            if contribution is None or arg not in relevant:
                continue
            if contribution.shape != arg.shape:  # a broken rule must never pass silently
                raise AssertionError(f"VJP of {node.op} gave {contribution.shape} for {arg.shape}")
            adjoints[arg] = add(adjoints[arg], contribution) if arg in adjoints else contribution
            sent.append((arg, contribution))
        steps.append(BackwardStep(node, g, node.op, VJP_FORMULAS[node.op], tuple(sent)))
    gradients = tuple(tidy_all([adjoints.get(p, broadcast(const(0), p.shape)) for p in wrt]))
    return TensorGradient(loss, tuple(wrt), gradients, tuple(steps), adjoints)


def check_used(names: Iterable[str], used: Iterable[str], what: str = "") -> None:
    """Every name in ``names`` must be a symbol of the expression (``used``): a --wrt name or a
    parameter it does not use is bad input, never a zero gradient, declared shape or not."""
    symbols = list(used)
    known_names = set(symbols)
    unused = [name for name in dict.fromkeys(names) if name not in known_names]
    if not unused:
        return
    more = f" (and {len(unused) - 1:,} more)" if len(unused) > 1 else ""
    known = ", ".join(symbols[:20]) + (
        f", ... ({len(symbols):,} in all)" if len(symbols) > 20 else ""
    )
    raise InputError(
        f"{what}'{unused[0]}'{more} does not appear in the expression (symbols: {known or 'none'})"
    )


def _wrt_nodes(expression: Node, shapes: Mapping[str, Shape], wrt: Sequence[str] | None) -> list:
    """The symbols to differentiate by: ``wrt`` (each one used by the expression), or every
    declared shaped symbol in the loss."""
    used = {v.name: v for v in walk(expression) if v.op == "var"}
    if not wrt:
        wrt = [name for name in shapes if name in used] or sorted(used)
    check_used(wrt, used)
    return [used[name] for name in wrt]


def tensor_gradient(
    text: str, shapes: Mapping[str, Shape], wrt: Sequence[str] | None = None
) -> TensorGradient:
    """Parse the scalar loss ``text`` with ``shapes`` and return dL/dp for each p in ``wrt``."""
    loss = parse_tensor(text, shapes)
    return reverse_mode(loss, _wrt_nodes(loss, shapes, wrt))


@dataclass(frozen=True)
class VectorJacobian:
    """The Jacobian J = df/dp of a tensor-valued f, shape f.shape + p.shape, as vᵀJ = grad of
    sum(v * f): a matrix formula in a seed ``v`` of f's shape (J itself is never expanded)."""

    expression: Node
    seed: Node
    wrt: tuple[Node, ...]
    products: tuple[Node, ...]

    def jacobian_shape(self, index: int) -> Shape:
        return self.expression.shape + self.wrt[index].shape


def vector_jacobian(
    text: str, shapes: Mapping[str, Shape], wrt: Sequence[str] | None = None, seed: str = "v"
) -> VectorJacobian:
    """vᵀ (df/dp) for each p: reverse mode applied to sum(v * f)."""
    expression = parse_tensor(text, shapes)
    taken = {v.name for v in walk(expression) if v.op == "var"} | set(shapes)
    while seed in taken:
        seed += "_"
    v = var(seed, expression.shape)
    params = _wrt_nodes(expression, shapes, wrt)
    gradient = reverse_mode(sum_(mul(v, expression)), params)
    return VectorJacobian(expression, v, tuple(params), gradient.gradients)
