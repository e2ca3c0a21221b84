"""Generalized Jacobians in index notation: J[I, K] = ∂f[I]/∂p[K] for any ranks of f and p.

Forward mode over the IR with symbolic indices: the Jacobian of a node with index tuple ``I`` is
a sum of terms, each ``coefficient * Σ_s factor * ...``, a factor being a tensor indexed by
indices (``X[i,k]``) or a Kronecker delta ``δ[a,b]``. One rule per operation in
``INDEX_RULES`` (rules are data: a new operation adds a row), for example

    matmul   Z[..,i,j] = Σ_s A[..,i,s] B[..,s,j]:  ∂Z = Σ_s ∂A[..,i,s] B[..,s,j] + A ∂B
    f(A)     Z[I] = f(A[I]):                    ∂Z[I] = f'(A)[I] ∂A[I]
    softmax  s = softmax(z):                    ∂s[i] = s[i] ∂z[i] - Σ_t s[i] s[t] ∂z[t]
    det      ∂det(A) = Σ_kl det(A) inv(A)[l,k] ∂A[k,l]
    inv      ∂inv(A)[i,j] = -Σ_kl inv(A)[i,k] inv(A)[l,j] ∂A[k,l]
    reshape  ∂Y[I] = Σ_K δ[(I),(K)] ∂A[K], δ over the row-major flat positions of I and K
    max      ∂max(A, axis)[I] = Σ_t M[I with t] ∂A[I with t], M the one-hot of the argmax

A delta with a summed index is contracted away (Σ_s X[i,s] δ[s,k] = X[i,k]), so
``X @ W`` by W prints ``∂f[i,j]/∂W[k,l] = X[i,k] δ[j,l]``. An axis of length 1 that
broadcasting stretches is indexed by ``0``. Each term is also an ``einsum`` that parses back
with the tensor parser (δ becomes ``eye(n)``, an index no factor carries a ones vector
``broadcast_to(1, (n,))``, a scalar factor multiplies the einsum), which is how
:func:`evaluate_jacobian` computes J at a point, never more than ``JACOBIAN_LIMIT`` entries.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from ..errors import InputError
from ..ir.linalg import inv
from ..ir.nodes import (
    Dim,
    Node,
    broadcast_to,
    const,
    dim_expr,
    div,
    format_shape,
    mul,
    power,
    reshape,
    sub,
    walk,
)
from ..ir.ops import BINARY_ELEMENTWISE, ELEMENTWISE, einsum, elementwise, eye, softmax
from ..ir.printing import to_text
from ..primitives import PRIMITIVES
from ..text import formula

#: The most entries a Jacobian evaluated at a point may have (8 MB of float64).
JACOBIAN_LIMIT = 1_000_000
_LETTERS = "ijklmnopqrstuvwxyzabcdefgh"
_UNIT = "0_"


class NoIndexForm(Exception):
    """An operation without an index rule (or a broadcast of a length-1 axis)."""


@dataclass(frozen=True)
class Factor:
    """``node[indices]``, or the delta ``δ[a,b]`` when ``node`` is None; with ``flat`` > 0
    the node is the reshape delta δ[(I),(K)] of ``reshape``, I its first ``flat`` indices."""

    node: Node | None
    indices: tuple[str, ...]
    flat: int = 0


@dataclass(frozen=True)
class Term:
    """``coefficient * Σ_summed Π factors``."""

    coefficient: sp.Expr = sp.Integer(1)
    factors: tuple[Factor, ...] = ()
    summed: frozenset[str] = field(default_factory=frozenset)

    def times(self, *factors: Factor, summed: Sequence[str] = (), by: sp.Expr | int = 1) -> Term:
        return Term(self.coefficient * by, self.factors + factors, self.summed | set(summed))


Terms = list[Term]


class _Indices:
    """Fresh index letters and the dimension each index runs over."""

    def __init__(self) -> None:
        self.dims: dict[str, Dim] = {}
        self._letters = iter(_LETTERS)
        self._count = itertools.count(1)

    def fresh(self, dim: Dim) -> str:
        letter = next(self._letters, None) or f"s{next(self._count)}"
        self.dims[letter] = dim
        return letter

    def unit(self) -> str:
        """The index of a length-1 axis that broadcasting stretches, printed ``0``."""
        name = f"{_UNIT}{next(self._count)}"
        self.dims[name] = 1
        return name


IndexRule = Callable[[Node, tuple[str, ...], "_Context"], Terms]
INDEX_RULES: dict[str, IndexRule] = {}


def index_rule(*ops: str) -> Callable[[IndexRule], IndexRule]:
    """Register the rule of ``ops``: rule(node, its indices, context) -> terms of ∂node[I]."""

    def register(rule: IndexRule) -> IndexRule:
        for op in ops:
            INDEX_RULES[op] = rule
        return rule

    return register


@dataclass
class _Context:
    param: Node
    param_indices: tuple[str, ...]
    indices: _Indices
    depends: set[Node]

    def d(self, node: Node, indices: tuple[str, ...]) -> Terms:
        """∂node[indices]/∂p[K] as terms (empty when node does not depend on p)."""
        if node not in self.depends:
            return []
        if node is self.param:
            return [
                Term(
                    factors=tuple(
                        Factor(None, (a, k))
                        for a, k in zip(indices, self.param_indices, strict=True)
                    )
                )
            ]
        rule = INDEX_RULES.get(node.op)
        if rule is None:
            raise NoIndexForm(node.op)
        return rule(node, indices, self)

    def derived(self, node: Node, indices: tuple[str, ...]) -> Terms:
        """∂node[indices] of a node a rule builds from the operands (an equivalent form)."""
        self.depends |= _depending(node, self.param)
        return self.d(node, indices)

    def over(self, node: Node) -> tuple[str, ...]:
        """Fresh indices for every axis of ``node``."""
        return tuple(self.indices.fresh(d) for d in node.shape)


def _aligned(node: Node, arg: Node, indices: tuple[str, ...], ctx: _Context) -> tuple[str, ...]:
    """The indices of a broadcast argument: the trailing ones, ``0`` on a stretched length-1
    axis."""
    if arg.ndim == 0:
        return ()
    full = zip(arg.shape, node.shape[node.ndim - arg.ndim :], strict=True)
    trailing = indices[node.ndim - arg.ndim :]
    return tuple(
        i if dim == whole else ctx.indices.unit()
        for (dim, whole), i in zip(full, trailing, strict=True)
    )


def _scaled(terms: Terms, factor: Node, indices: tuple[str, ...], by: object = 1) -> Terms:
    """Each term times ``factor[indices]`` (a constant factor, also one filling an array,
    joins the coefficient; an identity matrix is a delta)."""
    if factor.op == "const":
        return [t.times(by=by * factor.value) for t in terms]
    if factor.op == "broadcast_to" and factor.args[0].op == "const":
        return [t.times(by=by * factor.args[0].value) for t in terms]
    if factor.op == "mul" and factor.args[0].op == "const":
        return _scaled(terms, factor.args[1], indices, by * factor.args[0].value)
    return [t.times(*_factors(factor, indices[len(indices) - factor.ndim :]), by=by) for t in terms]


def _factors(node: Node, indices: tuple[str, ...]) -> tuple[Factor, ...]:
    """``node[indices]`` read through index-only operations: eye(n)[i,j] = δ[i,j],
    A.T[i,j] = A[j,i], outer(a, b)[i,j] = a[i] b[j]."""
    if node.op == "eye":
        return (Factor(None, indices),)
    if node.op == "transpose":
        return _factors(node.args[0], indices[::-1])
    if node.op == "outer":
        (a, b), (i, j) = node.args, indices
        return _factors(a, (i,)) + _factors(b, (j,))
    return (Factor(node, indices),)


@index_rule("add")
def _add(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A + B)[I] = ∂A[I] + ∂B[I]."""
    return [t for arg in node.args for t in ctx.d(arg, _aligned(node, arg, indices, ctx))]


@index_rule("mul")
def _mul(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A * B)[I] = ∂A[I] B[I] + A[I] ∂B[I]."""
    a, b = node.args
    ia, ib = _aligned(node, a, indices, ctx), _aligned(node, b, indices, ctx)
    return _scaled(ctx.d(a, ia), b, ib) + _scaled(ctx.d(b, ib), a, ia)


@index_rule("div")
def _div(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A / B)[I] = ∂A[I] (1/B)[I] - (A/B/B)[I] ∂B[I]."""
    a, b = node.args
    ia, ib = _aligned(node, a, indices, ctx), _aligned(node, b, indices, ctx)
    return _scaled(ctx.d(a, ia), div(const(1), b), ib) + _scaled(
        ctx.d(b, ib), div(node, b), indices, by=-1
    )


@index_rule("pow")
def _pow(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A ** c)[I] = c (A ** (c - 1))[I] ∂A[I] for a constant c; else the binary rule."""
    a, b = node.args
    if b.op != "const" or b in ctx.depends:
        return _binary(node, indices, ctx)
    ia = _aligned(node, a, indices, ctx)
    return _scaled(ctx.d(a, ia), power(a, const(b.value - 1)), ia, by=b.value)


def _binary(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂f(A, B)[I] = f_A[I] ∂A[I] + f_B[I] ∂B[I] (broadcast; partials from the primitives
    table, maximum's f_A = heaviside(A - B, 1/2) say, and for A ** B by hand)."""
    from ..ir.ops import IR_FUNCTIONS

    a, b = node.args
    partials = (
        (mul(b, power(a, sub(b, const(1)))), mul(elementwise("log", a), node))
        if node.op == "pow"  # A ** B:  f_A = B A**(B - 1),  f_B = log(A) A**B
        else PRIMITIVES[node.op].partials(node.args, node, IR_FUNCTIONS)
    )
    terms: Terms = []
    for arg, partial in zip(node.args, partials, strict=True):
        if arg in ctx.depends:
            slope = partial if partial.ndim == 0 else broadcast_to(partial, node.shape)
            terms += _scaled(ctx.d(arg, _aligned(node, arg, indices, ctx)), slope, indices)
    return terms


for _op in BINARY_ELEMENTWISE:
    index_rule(_op)(_binary)


def _elementwise(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂f(A)[I] = f'(A)[I] ∂A[I] (f' read off the VJP rule with G = 1)."""
    from ..autodiff.reverse import VJP_RULES

    (a,) = node.args
    (slope,) = VJP_RULES[node.op](node, const(1))
    if slope is None:
        return []
    return _scaled(ctx.d(a, indices), slope, indices[node.ndim - slope.ndim :])


for _op in ELEMENTWISE:
    index_rule(_op)(_elementwise)


def _batch(node: Node, arg: Node, batch: tuple[str, ...], ctx: _Context) -> tuple[str, ...]:
    """The batch indices of a matmul operand (its axes before the last two), broadcast."""
    axes = arg.shape[:-2] if arg.ndim > 1 else ()
    if not axes:
        return ()
    full = node.shape[: len(batch)][len(batch) - len(axes) :]
    return tuple(
        i if dim == whole else ctx.indices.unit()
        for dim, whole, i in zip(axes, full, batch[len(batch) - len(axes) :], strict=True)
    )


@index_rule("matmul")
def _matmul(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A @ B)[..,i,j] = Σ_s ∂A[..,i,s] B[..,s,j] + A[..,i,s] ∂B[..,s,j] (vectors drop i or
    j; the batch axes .. broadcast)."""
    a, b = node.args
    rows, columns = int(a.ndim > 1), int(b.ndim > 1)
    nbatch = node.ndim - rows - columns
    batch = indices[:nbatch]
    s = ctx.indices.fresh(a.shape[-1])
    ia = (*_batch(node, a, batch, ctx), *indices[nbatch : nbatch + rows], s)
    ib = (*_batch(node, b, batch, ctx), s, *indices[nbatch + rows :])
    return [
        t.times(summed=[s]) for t in _scaled(ctx.d(a, ia), b, ib) + _scaled(ctx.d(b, ib), a, ia)
    ]


@index_rule("outer")
def _outer(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂outer(a, b)[i,j] = ∂a[i] b[j] + a[i] ∂b[j]."""
    (a, b), (i, j) = node.args, indices
    return _scaled(ctx.d(a, (i,)), b, (j,)) + _scaled(ctx.d(b, (j,)), a, (i,))


@index_rule("transpose")
def _transpose(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A.T)[i,j] = ∂A[j,i]."""
    return ctx.d(node.args[0], indices[::-1])


@index_rule("permute")
def _permute(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂transpose(A, axes)[I] = ∂A[J] with J[axes[x]] = I[x]."""
    (order,) = node.attrs
    inner = [""] * node.ndim
    for x, axis in enumerate(order):
        inner[axis] = indices[x]
    return ctx.d(node.args[0], tuple(inner))


@index_rule("expand_dims")
def _expand_dims(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂expand_dims(A, axis)[I] = ∂A[I without the new axis]."""
    (axis,) = node.attrs
    return ctx.d(node.args[0], indices[:axis] + indices[axis + 1 :])


@index_rule("broadcast_to")
def _broadcast_to(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂broadcast_to(A, shape)[I] = ∂A[the trailing indices, 0 on a stretched length-1 axis]."""
    (a,) = node.args
    return ctx.d(a, _aligned(node, a, indices, ctx))


def _identity(shape: tuple[Dim, ...]) -> Node:
    """The identity on a tensor of ``shape``: Π_x δ[i_x, k_x], of shape shape + shape."""
    if all(isinstance(d, int) for d in shape):
        return reshape(eye(math.prod(int(d) for d in shape)), shape + shape)
    left, right = _LETTERS[: len(shape)], _LETTERS[len(shape) : 2 * len(shape)]
    spec = ",".join(f"{a}{b}" for a, b in zip(left, right, strict=True)) + f"->{left}{right}"
    return einsum(spec, *(eye(d) for d in shape))


@index_rule("reshape")
def _reshape(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂reshape(A)[I] = Σ_K δ[(I),(K)] ∂A[K]: 1 where I and K have the same row-major flat
    position (reshape of the identity on A to Y.shape + A.shape)."""
    (a,) = node.args
    inner = ctx.over(a)
    flat = Factor(reshape(_identity(a.shape), node.shape + a.shape), indices + inner, node.ndim)
    return [t.times(flat, summed=inner) for t in ctx.d(a, inner)]


@index_rule("einsum")
def _einsum(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂einsum(spec, A1, ..., An)[I] = Σ_n Σ_(other letters) ∂An[..] Π_(m≠n) Am[..]."""
    inputs, output = node.attrs[0].split("->")
    groups = inputs.split(",")
    letters = dict(zip(output, indices, strict=True))
    for group, operand in zip(groups, node.args, strict=True):
        for letter, dim in zip(group, operand.shape, strict=True):
            if letter not in letters:
                letters[letter] = ctx.indices.fresh(dim)
    summed = [letters[x] for x in letters if x not in output]
    index_of = [tuple(letters[x] for x in group) for group in groups]
    terms: Terms = []
    for n, operand in enumerate(node.args):
        others = [Factor(o, index_of[m]) for m, o in enumerate(node.args) if m != n]
        terms += [t.times(*others, summed=summed) for t in ctx.d(operand, index_of[n])]
    return terms


def _reduced(node: Node, indices: tuple[str, ...], ctx: _Context) -> tuple[tuple[str, ...], ...]:
    """(the operand's indices, the summed ones) of a reduction over ``axis`` (None: all)."""
    (a,) = node.args
    axis, keepdims = node.attrs[0], node.attrs[1] if len(node.attrs) > 1 else False
    if axis is None:
        inner = ctx.over(a)
        return inner, inner
    s = ctx.indices.fresh(a.shape[axis])
    return (*indices[:axis], s, *indices[axis + int(bool(keepdims)) :]), (s,)


@index_rule("sum", "amax", "logsumexp")
def _reduction(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂r(A, axis)[I] = Σ_s W[I with s at axis] ∂A[I with s at axis], W the slope read off the
    VJP rule with G = 1: 1 for sum, softmax(A, axis) for logsumexp and for max the one-hot
    M = heaviside(A - max, 1) / sum(heaviside(A - max, 1), axis) of the argmax (shared at ties)."""
    from ..autodiff.reverse import VJP_RULES

    ones = broadcast_to(const(1), node.shape) if node.ndim else const(1)
    (slope,) = VJP_RULES[node.op](node, ones)
    assert slope is not None  # sum, max and logsumexp pass gradients on
    inner, summed = _reduced(node, indices, ctx)
    return [t.times(summed=summed) for t in _scaled(ctx.d(node.args[0], inner), slope, inner)]


@index_rule("trace", "norm1", "frobenius", "softmax_cross_entropy")
def _scalar(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂y = Σ_K G[K] ∂A[K] for a scalar y of each operand A, G the VJP rule's dA at g = 1:
    trace: δ[k,l]; norm1: sign(A); frobenius: A / frobenius(A)."""
    from ..autodiff.reverse import VJP_RULES

    terms: Terms = []
    for arg, slope in zip(node.args, VJP_RULES[node.op](node, const(1)), strict=True):
        if arg in ctx.depends and slope is not None:
            inner = ctx.over(arg)
            terms += [t.times(summed=inner) for t in _scaled(ctx.d(arg, inner), slope, inner)]
    return terms


def _over_axis(node: Node, indices: tuple[str, ...], ctx: _Context) -> tuple[str, ...]:
    """The indices of softmax's operand with the axes it normalizes over made fresh (summed)."""
    (axis,) = node.attrs
    if axis is None:
        return ctx.over(node)
    return (*indices[:axis], ctx.indices.fresh(node.shape[axis]), *indices[axis + 1 :])


@index_rule("softmax")
def _softmax(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂s[I] = Σ_t s[I] (δ[i,t] - s[I with t]) ∂A[I with t] = s[I] ∂A[I] - Σ_t s[I] s[I with t]
    ∂A[I with t], t running over the softmax axis."""
    (a,) = node.args
    inner = _over_axis(node, indices, ctx)
    summed = [x for x in inner if x not in indices]
    mixed = _scaled(_scaled(ctx.d(a, inner), node, indices, by=-1), node, inner)
    return _scaled(ctx.d(a, indices), node, indices) + [t.times(summed=summed) for t in mixed]


@index_rule("log_softmax")
def _log_softmax(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂log_softmax(A)[I] = ∂A[I] - Σ_t softmax(A)[I with t] ∂A[I with t]."""
    (a,) = node.args
    inner = _over_axis(node, indices, ctx)
    summed = [x for x in inner if x not in indices]
    weights = softmax(a, node.attrs[0])
    mixed = _scaled(ctx.d(a, inner), weights, inner, by=-1)
    return ctx.d(a, indices) + [t.times(summed=summed) for t in mixed]


@index_rule("det")
def _det(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂det(A) = Σ_kl det(A) inv(A)[l,k] ∂A[k,l]."""
    (a,) = node.args
    p, q = ctx.over(a)
    inverse = Factor(inv(a), (q, p))
    return [t.times(Factor(node, ()), inverse, summed=(p, q)) for t in ctx.d(a, (p, q))]


@index_rule("logdet")
def _logdet(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂logdet(A) = Σ_kl inv(A)[l,k] ∂A[k,l]."""
    (a,) = node.args
    p, q = ctx.over(a)
    return [t.times(Factor(inv(a), (q, p)), summed=(p, q)) for t in ctx.d(a, (p, q))]


@index_rule("inv")
def _inv(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂inv(A)[i,j] = -Σ_kl inv(A)[i,k] inv(A)[l,j] ∂A[k,l]."""
    (a,), (i, j) = node.args, indices
    p, q = ctx.over(a)
    left, right = Factor(node, (i, p)), Factor(node, (q, j))
    return [t.times(left, right, summed=(p, q), by=-1) for t in ctx.d(a, (p, q))]


@index_rule("diag")
def _diag(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂diag(v)[i,j] = δ[i,j] ∂v[i];  ∂diag(A)[i] = Σ_j δ[i,j] ∂A[i,j] = ∂A[i,i]."""
    (a,) = node.args
    if a.ndim == 1:
        i, j = indices
        return [t.times(Factor(None, (i, j))) for t in ctx.d(a, (i,))]
    (i,) = indices
    j = ctx.indices.fresh(a.shape[1])
    return [t.times(Factor(None, (i, j)), summed=[j]) for t in ctx.d(a, (i, j))]


@index_rule("kron")
def _kron(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """kron(A, B) = reshape(einsum("ij,kl->ikjl", A, B), (m p, n q)): the reshape and einsum
    rules."""
    a, b = node.args
    return ctx.derived(reshape(einsum("ij,kl->ikjl", a, b), node.shape), indices)


# --------------------------------------------------------------------------- the Jacobian


@dataclass(frozen=True)
class IndexJacobian:
    """J[I, K] = ∂f[I]/∂p[K] as a sum of ``terms``; ``dims`` gives each index's dimension."""

    expression: Node
    param: Node
    out_indices: tuple[str, ...]
    param_indices: tuple[str, ...]
    terms: tuple[Term, ...]
    dims: Mapping[str, Dim]

    @property
    def shape(self) -> tuple[Dim, ...]:
        return self.expression.shape + self.param.shape

    def index_text(
        self, name: str = "f", left: str | None = None, show: Callable[[Node], str] = to_text
    ) -> str:
        """'∂f[i,j]/∂W[k,l] = X[i,k] δ[j,l]' (``left`` replaces the left-hand side, ``show``
        prints a factor's tensor)."""
        if left is None:
            out, inner = _brackets(self.out_indices), _brackets(self.param_indices)
            left = f"∂{name}{out}/∂{self.param.name}{inner}"
        return f"{left} = {_sum_text(self.terms, show)}"

    def hessian_text(self, first: str, show: Callable[[Node], str] = to_text) -> str:
        """'∂²L/∂W1[i,j]∂W1[k,l] = ...': this Jacobian of the gradient by ``first``."""
        out, inner = _brackets(self.out_indices), _brackets(self.param_indices)
        return self.index_text(left=f"∂²L/∂{first}{out}∂{self.param.name}{inner}", show=show)

    def factor_nodes(self) -> list[Node]:
        """The tensors the terms multiply (to name the shared ones in a report)."""
        return [f.node for t in self.terms for f in t.factors if f.node is not None]

    def einsum_text(self) -> str:
        """'einsum("ik,jl->ijkl", X, eye(m))' (+ one per term; δ is an identity matrix, an
        index no factor carries a ones vector, a scalar factor multiplies the einsum)."""
        if not self.terms:
            return "0" if not self.shape else f"broadcast_to(0, {format_shape(self.shape)})"
        parts = []
        for term in self.terms:
            spec, operands, scalars = self._spec(term)
            texts = [_operand_text(f, self.dims) for f in operands]
            body = [_atomic(to_text(s)) for s in scalars]
            inputs, output = spec.split("->")
            if len(operands) == 1 and inputs == output:  # einsum("ij->ij", A) is A
                alone = not body and term.coefficient == 1
                body.append(texts[0] if alone else _atomic(texts[0]))
            elif operands:
                body.append(f'einsum("{spec}", {", ".join(texts)})')
            parts.append(_with_coefficient(term.coefficient, " * ".join(body) or "1"))
        return " + ".join(parts).replace("+ -", "- ")

    def _spec(self, term: Term) -> tuple[str, tuple[Factor, ...], tuple[Node, ...]]:
        """The einsum string of a term, its indexed operands and its scalar factors."""
        output = self.out_indices + self.param_indices
        loose = [i for i in output if not any(i in f.indices for f in term.factors)]
        ones = tuple(Factor(broadcast_to(const(1), (self.dims[i],)), (i,)) for i in loose)
        factors = tuple(f for f in term.factors if f.indices) + ones
        scalars = tuple(f.node for f in term.factors if not f.indices and f.node is not None)
        letters = {
            i: _LETTERS[n]
            for n, i in enumerate(
                dict.fromkeys((*output, *[i for f in factors for i in f.indices]))
            )
        }
        inputs = ",".join("".join(letters[i] for i in f.indices) for f in factors)
        return f"{inputs}->{''.join(letters[i] for i in output)}", factors, scalars


def _brackets(indices: Sequence[str]) -> str:
    shown = ("0" if i.startswith(_UNIT) else i for i in indices)
    return f"[{','.join(shown)}]" if indices else ""


def _atomic(text: str) -> str:
    """``text`` as it may stand before an index bracket or a product: a name or a call as is,
    anything else in parentheses."""
    plain = text.replace("_", "").isalnum()
    call = text.endswith(")") and text.split("(", 1)[0].replace("_", "").isalnum()
    depth, closes_first = 0, False
    for n, char in enumerate(text):  # a call's own parentheses close at the end
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char == ")" and n < len(text) - 1:
            closes_first = True
    return text if plain or (call and not closes_first) else f"({text})"


def _factor_text(factor: Factor, show: Callable[[Node], str] = to_text) -> str:
    if factor.node is None:
        return f"δ{_brackets(factor.indices)}"
    if factor.flat:
        first, rest = factor.indices[: factor.flat], factor.indices[factor.flat :]
        return f"δ[({_brackets(first)[1:-1]}),({_brackets(rest)[1:-1]})]"
    return _atomic(show(factor.node)) + _brackets(factor.indices)


def _operand_text(factor: Factor, dims: Mapping[str, Dim]) -> str:
    if factor.node is None:
        return f"eye({dims[factor.indices[0]]})"
    return to_text(factor.node)


def _coefficient_text(coefficient: sp.Expr) -> str:
    text = formula(coefficient)
    return text if coefficient.is_Atom else f"({text})"


def _with_coefficient(coefficient: sp.Expr, body: str, joiner: str = " * ") -> str:
    """'c * body', '-body', '-(c) * body' or 'body'."""
    if coefficient == 1:
        return body
    if coefficient.could_extract_minus_sign():
        return f"-{_with_coefficient(-coefficient, body, joiner)}"
    return f"{_coefficient_text(coefficient)}{joiner}{body}"


def _sum_text(terms: Sequence[Term], show: Callable[[Node], str] = to_text) -> str:
    """The terms added up; factors that every term starts with are written once in front:
    s[i] δ[i,j] - s[i] s[j] = s[i] (δ[i,j] - s[j])."""
    if not terms:
        return "0"
    common = _common_prefix(terms) if len(terms) > 1 else 0
    parts = []
    for term in terms:
        body = _product_text(term.factors[common:], show) or "1"
        if term.summed:
            body = f"Σ_{''.join(sorted(term.summed))} {body}"
        parts.append(_with_coefficient(term.coefficient, body, " "))
    total = " + ".join(parts).replace("+ -", "- ")
    if not common:
        return total
    front = _product_text(terms[0].factors[:common], show)
    return f"{front} ({total})" if front else total


def _product_text(factors: Sequence[Factor], show: Callable[[Node], str]) -> str:
    """Factors side by side; a ones vector (which only carries a summed index into the einsum
    form) is 1 and left out."""
    return " ".join(_factor_text(f, show) for f in factors if not _is_ones(f.node))


def _is_ones(node: Node | None) -> bool:
    """broadcast_to(1, shape)."""
    return (
        node is not None
        and node.op == "broadcast_to"
        and node.args[0].op == "const"
        and node.args[0].value == 1
    )


def _common_prefix(terms: Sequence[Term]) -> int:
    """How many leading factors all the terms share (none when a term sums over an index)."""
    if any(term.summed for term in terms):
        return 0
    count = 0
    for column in zip(*(term.factors for term in terms), strict=False):
        if any(factor != column[0] for factor in column):
            break
        count += 1
    return count


def _contract(term: Term) -> Term:
    """Σ_s ... δ[s,k] ... = ...[s -> k]: a delta with a summed index is contracted (unless a
    factor would repeat an index)."""
    while True:
        for n, factor in enumerate(term.factors):
            if factor.node is not None:
                continue
            a, b = factor.indices
            gone, kept = (
                (a, b) if a in term.summed else (b, a) if b in term.summed else (None, None)
            )
            if gone is None or kept is None:
                continue
            rest = term.factors[:n] + term.factors[n + 1 :]
            renamed = tuple(
                replace(f, indices=tuple(kept if i == gone else i for i in f.indices)) for f in rest
            )
            if any(len(set(f.indices)) < len(f.indices) for f in renamed):
                continue  # X[k,k] is not an einsum operand: the delta stays
            term = replace(term, factors=renamed, summed=term.summed - {gone})
            break
        else:
            return term


def _tensors_first(term: Term) -> Term:
    """X[i,k] δ[j,l]: tensors before deltas, each in the order they arose."""
    ordered = sorted(term.factors, key=lambda f: f.node is None)
    return replace(term, factors=tuple(ordered))


def index_jacobian(expression: Node, param: Node) -> IndexJacobian:
    """∂expression[I]/∂param[K] in index notation; NoIndexForm for an operation without a rule."""
    indices = _Indices()
    out = tuple(indices.fresh(d) for d in expression.shape)
    inner = tuple(indices.fresh(d) for d in param.shape)
    ctx = _Context(param, inner, indices, _depending(expression, param))
    terms = _merged(_tensors_first(_contract(t)) for t in ctx.d(expression, out))
    return IndexJacobian(expression, param, out, inner, terms, dict(indices.dims))


def _merged(terms: Iterable[Term]) -> tuple[Term, ...]:
    """Equal terms added up: A[i,k] δ[i,j] + A[i,k] δ[i,j] = 2 A[i,k] δ[i,j] (none that cancel)."""
    total: dict[tuple[tuple[Factor, ...], frozenset[str]], sp.Expr] = {}
    for term in terms:
        key = (term.factors, term.summed)
        total[key] = total.get(key, sp.Integer(0)) + term.coefficient
    return tuple(Term(c, f, s) for (f, s), c in total.items() if c != 0)


def _depending(root: Node, param: Node) -> set[Node]:
    """The nodes of ``root`` on a path from ``param``."""
    found: set[Node] = set()
    for node in walk(root):
        if node is param or any(a in found for a in node.args):
            found.add(node)
    return found


def evaluate_jacobian(jac: IndexJacobian, point: Mapping[str, Any], dims: Mapping[str, int]) -> Any:
    """J at a point: the sum of each term's ``np.einsum`` (δ as an identity matrix), refused
    when J would have more than ``JACOBIAN_LIMIT`` entries."""
    import numpy as np

    from ..codegen.tensor import evaluate

    sizes = {i: (d if isinstance(d, int) else dims[str(d)]) for i, d in jac.dims.items()}
    shape = tuple(sizes[i] for i in jac.out_indices + jac.param_indices)
    entries = math.prod(shape)
    if entries > JACOBIAN_LIMIT:
        raise InputError(
            f"the Jacobian has shape {format_shape(shape)}, {entries:,} entries, more than the "
            f"limit of {JACOBIAN_LIMIT:,} for evaluating it at a point (the formula above holds)"
        )

    def value(node: Node) -> Any:
        return np.asarray(evaluate(node, point, dims), dtype=np.float64)

    total = np.zeros(shape)
    for term in jac.terms:
        spec, factors, scalars = jac._spec(term)
        operands = [
            np.eye(sizes[f.indices[0]]) if f.node is None else value(f.node) for f in factors
        ]
        coefficient = float(term.coefficient.subs({dim_expr(k): v for k, v in dims.items()}))
        for scalar in scalars:
            coefficient *= float(value(scalar))
        total = total + coefficient * (np.einsum(spec, *operands) if operands else 1.0)
    return total
