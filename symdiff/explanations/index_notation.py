"""Generalized Jacobians in index notation: J[I, K] = ∂f[I]/∂p[K] for any ranks of f and p.

Forward mode over the IR with symbolic indices: the Jacobian of a node with index tuple ``I`` is
a sum of terms, each ``coefficient * Σ_s factor * ...``, a factor being a tensor indexed by
indices (``X[i,k]``) or a Kronecker delta ``δ[a,b]``. One rule per operation in
``INDEX_RULES`` (rules are data: a new operation adds a row), for example

    matmul  Z[i,j] = Σ_s A[i,s] B[s,j]:  ∂Z[i,j] = Σ_s ∂A[i,s] B[s,j] + A[i,s] ∂B[s,j]
    f(A)    Z[I] = f(A[I]):              ∂Z[I] = f'(A)[I] ∂A[I]

A delta with a summed index is contracted away (Σ_s X[i,s] δ[s,k] = X[i,k]), so
``X @ W`` by W prints ``∂f[i,j]/∂W[k,l] = X[i,k] δ[j,l]``. Each term is also an
``einsum`` (δ becomes ``eye``), which is how :func:`evaluate_jacobian` computes J at a point,
never more than ``JACOBIAN_LIMIT`` entries.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from ..errors import InputError
from ..ir.nodes import Dim, Node, const, div, format_shape, power, walk
from ..ir.ops import ELEMENTWISE
from ..ir.printing import to_text
from ..text import formula

#: The most entries a Jacobian evaluated at a point may have (8 MB of float64).
JACOBIAN_LIMIT = 1_000_000
_LETTERS = "ijklmnopqrstuvwxyzabcdefgh"


class NoIndexForm(Exception):
    """An operation without an index rule (or a broadcast of a length-1 axis)."""


@dataclass(frozen=True)
class Factor:
    """``node[indices]``, or the delta ``δ[a,b]`` when ``node`` is None."""

    node: Node | None
    indices: tuple[str, ...]


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


def _aligned(node: Node, arg: Node, indices: tuple[str, ...]) -> tuple[str, ...]:
    """The indices of a broadcast argument: the trailing ones (a length-1 axis is refused)."""
    if arg.ndim == 0:
        return ()
    for dim, full in zip(arg.shape, node.shape[node.ndim - arg.ndim :], strict=True):
        if dim != full:
            raise NoIndexForm("broadcast of a length-1 axis")
    return indices[node.ndim - arg.ndim :]


def _scaled(terms: Terms, factor: Node, indices: tuple[str, ...], by: object = 1) -> Terms:
    """Each term times ``factor[indices]`` (a constant factor joins the coefficient)."""
    if factor.op == "const":
        return [t.times(by=by * factor.value) for t in terms]
    return [t.times(Factor(factor, indices), by=by) for t in terms]


@index_rule("add")
def _add(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A + B)[I] = ∂A[I] + ∂B[I]."""
    return [t for arg in node.args for t in ctx.d(arg, _aligned(node, arg, indices))]


@index_rule("mul")
def _mul(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A * B)[I] = ∂A[I] B[I] + A[I] ∂B[I]."""
    a, b = node.args
    ia, ib = _aligned(node, a, indices), _aligned(node, b, indices)
    return _scaled(ctx.d(a, ia), b, ib) + _scaled(ctx.d(b, ib), a, ia)


@index_rule("div")
def _div(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A / B)[I] = ∂A[I] (1/B)[I] - (A/B/B)[I] ∂B[I]."""
    a, b = node.args
    ia, ib = _aligned(node, a, indices), _aligned(node, b, indices)
    return _scaled(ctx.d(a, ia), div(const(1), b), ib) + _scaled(
        ctx.d(b, ib), div(node, b), indices, by=-1
    )


@index_rule("pow")
def _pow(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A ** c)[I] = c (A ** (c - 1))[I] ∂A[I] (constant exponents)."""
    a, b = node.args
    if b.op != "const" or b in ctx.depends:
        raise NoIndexForm("pow")
    ia = _aligned(node, a, indices)
    return _scaled(ctx.d(a, ia), power(a, const(b.value - 1)), ia, by=b.value)


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


@index_rule("matmul")
def _matmul(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A @ B)[i,j] = Σ_s ∂A[i,s] B[s,j] + A[i,s] ∂B[s,j] (vectors drop i or j)."""
    a, b = node.args
    if a.ndim > 2 or b.ndim > 2:
        raise NoIndexForm("batched matmul")
    s = ctx.indices.fresh(a.shape[-1])
    ia = (*indices[: a.ndim - 1], s)
    ib = (s, *indices[node.ndim - (b.ndim - 1) :]) if b.ndim == 2 else (s,)
    return [
        t.times(summed=[s]) for t in _scaled(ctx.d(a, ia), b, ib) + _scaled(ctx.d(b, ib), a, ia)
    ]


@index_rule("transpose")
def _transpose(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂(A.T)[i,j] = ∂A[j,i]."""
    return ctx.d(node.args[0], indices[::-1])


@index_rule("sum")
def _sum(node: Node, indices: tuple[str, ...], ctx: _Context) -> Terms:
    """∂sum(A, axis)[I] = Σ_s ∂A[I with s at axis] (every axis when axis is None)."""
    (a,) = node.args
    axis, keepdims = node.attrs
    if keepdims:
        raise NoIndexForm("sum with keepdims")
    if axis is None:
        fresh = tuple(ctx.indices.fresh(d) for d in a.shape)
        return [t.times(summed=fresh) for t in ctx.d(a, fresh)]
    s = ctx.indices.fresh(a.shape[axis])
    inner = (*indices[:axis], s, *indices[axis:])
    return [t.times(summed=[s]) for t in ctx.d(a, inner)]


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

    def index_text(self, name: str = "f") -> str:
        """'∂f[i,j]/∂W[k,l] = X[i,k] δ[j,l]'."""
        out, inner = _brackets(self.out_indices), _brackets(self.param_indices)
        left = f"∂{name}{out}/∂{self.param.name}{inner}"
        return f"{left} = {_sum_text(self.terms)}"

    def einsum_text(self) -> str:
        """'einsum("ik,jl->ijkl", X, eye(m))' (+ one per term; δ is an identity matrix)."""
        if not self.terms:
            return f"zeros({format_shape(self.shape)})"
        parts = []
        for term in self.terms:
            spec, operands = self._spec(term)
            call = f'einsum("{spec}", {", ".join(_operand_text(f, self.dims) for f in operands)})'
            parts.append(_with_coefficient(term.coefficient, call))
        return " + ".join(parts).replace("+ -", "- ")

    def _spec(self, term: Term) -> tuple[str, tuple[Factor, ...]]:
        output = self.out_indices + self.param_indices
        loose = [i for i in output if not any(i in f.indices for f in term.factors)]
        factors = term.factors + tuple(Factor(None, (i, i)) for i in loose)  # 1 = δ[i,i] on ii->i
        letters = {
            i: _LETTERS[n]
            for n, i in enumerate(
                dict.fromkeys((*output, *[i for f in factors for i in f.indices]))
            )
        }
        inputs = ",".join("".join(letters[i] for i in f.indices) for f in factors)
        return f"{inputs}->{''.join(letters[i] for i in output)}", factors


def _brackets(indices: Sequence[str]) -> str:
    return f"[{','.join(indices)}]" if indices else ""


def _factor_text(factor: Factor) -> str:
    if factor.node is None:
        return f"δ{_brackets(factor.indices)}"
    text = to_text(factor.node)
    atomic = factor.node.op == "var" or text.replace("_", "").isalnum()
    return (text if atomic else f"({text})") + _brackets(factor.indices)


def _operand_text(factor: Factor, dims: Mapping[str, Dim]) -> str:
    if factor.node is None:
        return f"eye({dims[factor.indices[0]]})"
    return to_text(factor.node)


def _coefficient_text(coefficient: sp.Expr) -> str:
    text = formula(coefficient)
    return text if coefficient.is_Atom else f"({text})"


def _with_coefficient(coefficient: sp.Expr, body: str, joiner: str = " * ") -> str:
    """'c * body', '-body' or 'body'."""
    if coefficient == 1:
        return body
    if coefficient == -1:
        return f"-{body}"
    return f"{_coefficient_text(coefficient)}{joiner}{body}"


def _sum_text(terms: Sequence[Term]) -> str:
    if not terms:
        return "0"
    parts = []
    for term in terms:
        body = " ".join(_factor_text(f) for f in term.factors) or "1"
        if term.summed:
            body = f"Σ_{''.join(sorted(term.summed))} {body}"
        parts.append(_with_coefficient(term.coefficient, body, " "))
    return " + ".join(parts).replace("+ -", "- ")


def _contract(term: Term) -> Term:
    """Σ_s ... δ[s,k] ... = ...[s -> k]: every delta with a summed index is contracted."""
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
                Factor(f.node, tuple(kept if i == gone else i for i in f.indices)) for f in rest
            )
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
    terms = tuple(_tensors_first(_contract(t)) for t in ctx.d(expression, out))
    return IndexJacobian(expression, param, out, inner, terms, dict(indices.dims))


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
    total = np.zeros(shape)
    for term in jac.terms:
        spec, factors = jac._spec(term)
        operands = [
            np.eye(sizes[f.indices[0]])
            if f.node is None
            else np.asarray(evaluate(f.node, point, dims), dtype=np.float64)
            for f in factors
        ]
        coefficient = float(term.coefficient.subs({sp.Symbol(k): v for k, v in dims.items()}))
        total = total + coefficient * np.einsum(spec, *operands)
    return total
