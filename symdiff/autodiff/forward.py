"""Explicit Jacobians J = df/dp by forward mode, for the cases that stay within matrices.

The tangent of a node x is dx/dp, of shape x.shape + p.shape (the parameter's axes last, so
NumPy broadcasting of the forward values still lines up once they get trailing length-1 axes).
One rule per operation in ``JVP_RULES``; elementwise derivatives f'(a) are read off the VJP
rules (the VJP of f with G = 1 is f'(a)). When a tangent would need three axes (a matrix output
by a vector parameter, or a matrix parameter inside a product) there is no matrix formula and
:func:`jacobian` returns None; the caller then shows the vector-Jacobian product instead.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir.linalg import diag, inv, kron
from ..ir.nodes import (
    Node,
    add,
    broadcast_to,
    const,
    div,
    expand_dims,
    matmul,
    mul,
    neg,
    power,
    sub,
    sum_,
    transpose,
    walk,
)
from ..ir.ops import ELEMENTWISE, elementwise, eye, softmax, trace
from ..ir.simplify import tidy
from .reverse import VJP_RULES, reverse_mode

Tangent = Node | None
JVPRule = Callable[[Node, tuple[Tangent, ...], tuple], Tangent]
JVP_RULES: dict[str, JVPRule] = {}


class NoMatrixForm(Exception):
    """The Jacobian would need a tensor with more than two axes."""


def jvp(*ops: str) -> Callable[[JVPRule], JVPRule]:
    """Register the forward-mode rule of ``ops``: rule(node, arg tangents, param shape)."""

    def register(rule: JVPRule) -> JVPRule:
        for op in ops:
            JVP_RULES[op] = rule
        return rule

    return register


def _lift(x: Node, param_shape: tuple) -> Node:
    """A forward value with trailing length-1 axes for the parameter's axes."""
    for _ in param_shape:
        if x.ndim == 0:
            return x
        x = expand_dims(x, x.ndim)
    return x


def _sum_tangents(node: Node, parts: list[Node], param_shape: tuple) -> Tangent:
    if not parts:
        return None
    total = parts[0]
    for part in parts[1:]:
        total = add(total, part)
    shape = node.shape + param_shape
    return total if total.shape == shape else broadcast_to(total, shape)


@jvp("add")
def _add(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    return _sum_tangents(node, [t for t in tangents if t is not None], param_shape)


@jvp("mul")
def _mul(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (a, b), (ta, tb) = node.args, tangents
    parts = []
    if ta is not None:
        parts.append(mul(ta, _lift(b, param_shape)))
    if tb is not None:
        parts.append(mul(_lift(a, param_shape), tb))
    return _sum_tangents(node, parts, param_shape)


@jvp("div")
def _div(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (_, b), (ta, tb) = node.args, tangents
    parts = []
    if ta is not None:
        parts.append(div(ta, _lift(b, param_shape)))
    if tb is not None:
        parts.append(neg(div(mul(_lift(node, param_shape), tb), _lift(b, param_shape))))
    return _sum_tangents(node, parts, param_shape)


@jvp("pow")
def _pow(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (a, b), (ta, tb) = node.args, tangents
    if tb is not None or b.op != "const":
        raise NoMatrixForm
    derivative = mul(b, power(a, const(b.value - 1)))
    return None if ta is None else mul(ta, _lift(derivative, param_shape))


def _elementwise(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (ta,) = tangents
    if ta is None:
        return None
    (derivative,) = VJP_RULES[node.op](node, const(1))  # f'(a), the VJP with G = 1
    return None if derivative is None else mul(ta, _lift(derivative, param_shape))


for _op in ELEMENTWISE:
    jvp(_op)(_elementwise)


@jvp("matmul")
def _matmul(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (a, b), (ta, tb) = node.args, tangents
    parts = []
    if ta is not None:
        if a.ndim == 2 and param_shape:
            raise NoMatrixForm
        if a.ndim == 2:  # scalar parameter: dA @ B
            parts.append(matmul(ta, b))
        elif b.ndim == 2:  # (k,) @ (k,p): B.T @ da
            parts.append(matmul(transpose(b), ta))
        else:  # (k,) @ (k,): b @ da
            parts.append(matmul(b, ta))
    if tb is not None:
        if b.ndim == 2 and param_shape:
            raise NoMatrixForm
        parts.append(matmul(a, tb))  # A @ dB, A @ db or a @ db
    return _sum_tangents(node, parts, param_shape)


@jvp("transpose")
def _transpose(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (ta,) = tangents
    if ta is None:
        return None
    if param_shape:
        raise NoMatrixForm
    return transpose(ta)


@jvp("sum")
def _sum(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (ta,) = tangents
    axis, keepdims = node.attrs
    if ta is None:
        return None
    if axis is None and not keepdims:
        if _is_diagonal(ta):  # sum(diag(v), axis=0) = v
            return ta.args[1].args[0]
        for _ in range(node.args[0].ndim):
            ta = sum_(ta, 0)
        return ta
    if param_shape:
        raise NoMatrixForm
    return sum_(ta, axis, keepdims)


def _is_diagonal(node: Node) -> bool:
    """eye(d) * expand_dims(v, axis=1): the tangent of an elementwise function of p itself."""
    return (
        node.op == "mul"
        and node.args[0].op == "eye"
        and node.args[1].op == "expand_dims"
        and node.args[1].attrs == (1,)
    )


@jvp("softmax", "log_softmax", "logsumexp")
def _softmax_family(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    (ta,) = tangents
    if ta is None:
        return None
    if node.args[0].ndim != 1:
        raise NoMatrixForm
    weights = softmax(node.args[0], 0)
    mixed = matmul(weights, ta) if param_shape else sum_(mul(weights, ta))  # sum_i s_i da_i
    if node.op == "logsumexp":
        return mixed
    if node.op == "log_softmax":
        return sub(ta, mixed)
    return mul(_lift(node, param_shape), sub(ta, mixed))


@jvp("trace")
def _trace(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    """d trace(A) = trace(dA) (scalar parameters)."""
    (ta,) = tangents
    if ta is None:
        return None
    if param_shape:
        raise NoMatrixForm
    return trace(ta)


@jvp("det", "logdet")
def _det(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    """d logdet(A) = trace(inv(A) @ dA),  d det(A) = det(A) * trace(inv(A) @ dA)."""
    (ta,) = tangents
    if ta is None:
        return None
    if param_shape:
        raise NoMatrixForm
    change = trace(matmul(inv(node.args[0]), ta))
    return mul(node, change) if node.op == "det" else change


@jvp("inv")
def _inv(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    """d inv(A) = -inv(A) @ dA @ inv(A) (scalar parameters)."""
    (ta,) = tangents
    if ta is None:
        return None
    if param_shape:
        raise NoMatrixForm
    return neg(matmul(matmul(node, ta), node))


@jvp("diag")
def _diag(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    """d diag(A) = diag(dA) (scalar parameters)."""
    (ta,) = tangents
    if ta is None:
        return None
    if param_shape:
        raise NoMatrixForm
    return diag(ta)


@jvp("norm1", "frobenius")
def _norm(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    """d norm1(a) = sum(sign(a) * da),  d frobenius(a) = sum(a * da) / frobenius(a)."""
    (ta,) = tangents
    a = node.args[0]
    if ta is None:
        return None
    slope = elementwise("sign", a) if node.op == "norm1" else div(a, node)
    if not param_shape:
        return sum_(mul(slope, ta))
    if a.ndim != 1:
        raise NoMatrixForm
    return matmul(slope, ta)


@jvp("kron")
def _kron(node: Node, tangents: tuple[Tangent, ...], param_shape: tuple) -> Tangent:
    """d kron(A, B) = kron(dA, B) + kron(A, dB) (scalar parameters)."""
    (a, b), (ta, tb) = node.args, tangents
    if param_shape:
        raise NoMatrixForm
    parts = [kron(ta, b)] if ta is not None else []
    parts += [kron(a, tb)] if tb is not None else []
    return _sum_tangents(node, parts, param_shape)


def jacobian(expression: Node, param: Node) -> Node | None:
    """J = d expression / d param, of shape expression.shape + param.shape, or None when that
    needs more than two axes or an operation without a forward rule."""
    if expression.ndim + param.ndim > 2:
        return None
    if expression.ndim == 0:
        return reverse_mode(expression, [param]).gradients[0]
    tangents: dict[Node, Tangent] = {}
    try:
        for node in walk(expression):
            if node is param:
                tangents[node] = const(1) if param.ndim == 0 else eye(param.shape[0])
            elif not node.args:
                tangents[node] = None
            else:
                rule = JVP_RULES.get(node.op)
                if rule is None:
                    return None
                arg_tangents = tuple(tangents[a] for a in node.args)
                if all(t is None for t in arg_tangents):
                    tangents[node] = None
                else:
                    tangents[node] = rule(node, arg_tangents, param.shape)
    except NoMatrixForm:
        return None
    result = tangents[expression]
    shape = expression.shape + param.shape
    if result is None:
        return broadcast_to(const(0), shape)
    return tidy(result)
