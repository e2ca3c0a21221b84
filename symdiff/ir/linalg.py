"""Matrix-calculus operations: det, logdet, inv, solve, diag, norm1, the Frobenius norm, kron.

Smart constructors like those of ``symdiff.ir.nodes``: each checks shapes and pulls constant
factors out where the identity is exact (``inv(c*A) = inv(A)/c``, ``diag(c*x) = c*diag(x)``,
``kron(c*A, B) = c*kron(A, B)``). ``solve(A, B)`` is ``inv(A) @ B`` in the IR; generated code
computes every product with an inverse by ``np.linalg.solve`` (``codegen.program``). Their
vector-Jacobian products are in ``autodiff.reverse``, their forward rules in ``autodiff.forward``.
"""

from __future__ import annotations

import sympy as sp

from .nodes import (
    Node,
    ShapeMismatch,
    broadcast_to,
    const,
    format_shape,
    make_node,
    matmul,
    mul,
    scale,
    scaled,
)
from .ops import eye


def _square(op: str, a: Node) -> None:
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeMismatch(f"{op} needs a square matrix, got {format_shape(a.shape)}")


def det(a: Node) -> Node:
    """det(A) of a square matrix."""
    _square("det", a)
    return make_node("det", (a,), (), ())


def logdet(a: Node) -> Node:
    """log(det(A)) of a square matrix with det(A) > 0 (an SPD covariance, say)."""
    _square("logdet", a)
    return make_node("logdet", (a,), (), ())


def inv(a: Node) -> Node:
    """inv(A), the inverse of a square matrix: inv(inv(A)) = A, inv(c*A) = inv(A)/c."""
    _square("inv", a)
    if a.op == "inv":
        return a.args[0]
    if a.op == "eye":
        return a
    c, x = scaled(a)
    if c != 1:
        return scale(1 / c, inv(x))
    return make_node("inv", (a,), (), a.shape)


def solve(a: Node, b: Node) -> Node:
    """solve(A, B) = inv(A) @ B (generated code calls np.linalg.solve, never inv)."""
    _square("solve", a)
    return matmul(inv(a), b)


def diag(a: Node) -> Node:
    """diag(v): the (n, n) matrix with v on its diagonal; diag(A): the diagonal of a square A."""
    if a.ndim == 1:
        shape: tuple = (a.shape[0], a.shape[0])
    elif a.ndim == 2 and a.shape[0] == a.shape[1]:
        shape = (a.shape[0],)
    else:
        raise ShapeMismatch(f"diag needs a vector or a square matrix, got {format_shape(a.shape)}")
    c, x = scaled(a)
    if c != 1:
        return scale(c, diag(x))
    if a.ndim == 1 and a.op == "broadcast_to" and a.args[0].ndim == 0:  # diag(c*ones) = c*eye
        return mul(a.args[0], eye(a.shape[0]))
    if a.op == "eye":
        return broadcast_to(const(1), shape)
    return make_node("diag", (a,), (), shape)


def _reduction(op: str, a: Node) -> Node:
    if a.ndim == 0:
        raise ShapeMismatch(f"{op} needs a vector or matrix, got a scalar")
    c, x = scaled(a)
    if c != 1 and c.is_number:  # norm(c*A) = |c| * norm(A)
        return scale(sp.Abs(c), _reduction(op, x))
    return make_node(op, (a,), (), ())


def norm1(a: Node) -> Node:
    """norm1(A) = sum(abs(A)), the entrywise 1-norm."""
    return _reduction("norm1", a)


def frobenius(a: Node) -> Node:
    """frobenius(A) = sqrt(sum(A**2)), the Frobenius (entrywise Euclidean) norm."""
    return _reduction("frobenius", a)


def kron(a: Node, b: Node) -> Node:
    """kron(A, B), the Kronecker product of two matrices: (m, n) x (p, q) -> (m*p, n*q).

    The dimensions must be numbers (a product of two named sizes is not a dimension).
    """
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeMismatch(
            f"kron needs two matrices, got {format_shape(a.shape)} and {format_shape(b.shape)}"
        )
    dims = (*a.shape, *b.shape)
    if not all(isinstance(d, int) for d in dims):
        raise ShapeMismatch(
            f"kron needs numeric dimensions, got {format_shape(a.shape)} and "
            f"{format_shape(b.shape)}"
        )
    (ca, xa), (cb, xb) = scaled(a), scaled(b)
    if ca != 1 or cb != 1:
        return scale(ca * cb, kron(xa, xb))
    m, n, p, q = (int(d) for d in dims)
    return make_node("kron", (a, b), (), (m * p, n * q))
