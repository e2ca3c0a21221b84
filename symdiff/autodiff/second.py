"""Second order: Hessian blocks as matrix formulas, and Hessian-vector products.

The gradient g = dL/dp is itself an IR expression, so second derivatives are first derivatives
of it:

* a Hessian block d2L/dp dq = d g_p / d q is the forward-mode Jacobian of the gradient formula
  (``forward.jacobian``): a matrix formula when it has at most two axes, else None;
* the Hessian-vector product H v = d/dp sum_q <g_q, v_q> is reverse mode applied again to the
  scalar <g, v> (reverse over reverse): one more sweep, so it costs a small multiple of the
  gradient and never forms H.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..frontend.tensor_parse import parse_tensor
from ..ir.nodes import Node, Shape, add, mul, sum_, var, walk
from .forward import jacobian
from .reverse import TensorGradient, _wrt_nodes, reverse_mode


def direction_names(params: Sequence[str], taken: set[str]) -> list[str]:
    """A direction name per parameter, ``v_<p>``, free of every name in ``taken``."""
    names: list[str] = []
    for param in params:
        name = f"v_{param}"
        while name in taken or name in names:
            name += "_"
        names.append(name)
    return names


def hvp_products(
    gradients: Sequence[Node], wrt: Sequence[Node], directions: Sequence[Node]
) -> tuple[Node, ...]:
    """(H v)_p = d/dp sum_q sum(g_q * v_q) for each parameter p (reverse over reverse)."""
    total: Node | None = None
    for grad, direction in zip(gradients, directions, strict=True):
        term = sum_(mul(direction, grad))
        total = term if total is None else add(total, term)
    assert total is not None
    return tuple(reverse_mode(total, list(wrt)).gradients)


@dataclass(frozen=True)
class TensorHessian:
    """Blocks d2L/dp dq (i <= j; None when no matrix formula) and the products H v."""

    gradient: TensorGradient
    blocks: tuple[tuple[int, int, Node | None], ...]
    directions: tuple[Node, ...]
    products: tuple[Node, ...]

    def block_shape(self, i: int, j: int) -> Shape:
        return self.gradient.wrt[i].shape + self.gradient.wrt[j].shape


def hessian_of(gradient: TensorGradient) -> TensorHessian:
    """The Hessian blocks and Hessian-vector products of a differentiated scalar loss."""
    wrt = gradient.wrt
    blocks = tuple(
        (i, j, jacobian(gradient.gradients[i], wrt[j]))
        for i in range(len(wrt))
        for j in range(i, len(wrt))
    )
    taken = {n.name for n in walk(gradient.loss) if n.op == "var"}
    taken |= {str(d) for n in walk(gradient.loss) for d in n.shape if isinstance(d, str)}
    names = direction_names([p.name for p in wrt], taken)
    directions = tuple(var(name, p.shape) for name, p in zip(names, wrt, strict=True))
    products = hvp_products(gradient.gradients, wrt, directions)
    return TensorHessian(gradient, blocks, directions, products)


def tensor_hessian(
    text: str, shapes: Mapping[str, Shape], wrt: Sequence[str] | None = None
) -> TensorHessian:
    """Parse the scalar loss ``text`` with ``shapes``; its Hessian blocks and products H v."""
    loss = parse_tensor(text, shapes)
    return hessian_of(reverse_mode(loss, _wrt_nodes(loss, shapes, wrt)))
