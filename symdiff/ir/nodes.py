"""The IR: interned, shaped expression DAGs built by smart constructors.

A tensor expression is a DAG of interned :class:`Node` objects (identical sub-expressions are the
same object, so sharing is free). Every node carries its shape, a tuple of dimensions, each an
``int`` or a symbolic name such as ``"n"``. Nodes are built only through the *smart constructors*
below (``add``, ``mul``, ``matmul``, ``sum_`` ...), which check shapes and apply local
simplifications: constants are folded and pulled to the front (``c*(d*x) = (c*d)*x``, ``A @ (c*B)
= c*(A @ B)``), ``x.T.T = x``, ``log(sigmoid(z)) = -softplus(-z)``, ``log(softmax(Z)) =
log_softmax(Z)`` and ``cross_entropy(Y, softmax(Z))`` becomes one fused node.

The tensor parser (``symdiff.frontend.tensor_parse``) builds nodes from text; elementwise
functions and the softmax family live in ``symdiff.ir.ops``.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from itertools import zip_longest
from typing import Any

import sympy as sp

from ..checks import check_name, check_power_size
from ..errors import ShapeError

Dim = int | str
Shape = tuple[Dim, ...]
#: An ``axis=`` option: None (all axes), one axis, or a tuple of axes.
Axes = int | tuple[int, ...] | None

# --------------------------------------------------------------------------- nodes


class Node:
    """One interned operation ``op(args; attrs)`` with its ``shape``.

    Leaves are ``var`` (attrs = (name,)) and ``const`` (attrs = (sympy value,), shape ()).
    Construct nodes with the smart constructors, never directly.
    """

    __slots__ = ("op", "args", "attrs", "shape", "__weakref__")

    op: str
    args: tuple[Node, ...]
    attrs: tuple[Any, ...]
    shape: Shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        """The name of a ``var`` leaf."""
        return str(self.attrs[0])

    @property
    def value(self) -> sp.Expr:
        """The value of a ``const`` leaf."""
        return self.attrs[0]

    def __repr__(self) -> str:
        """The operation, its leaf name or value, and the shape (``to_text`` prints formulas)."""
        label = f" {self.attrs[0]}" if self.op in ("var", "const") else ""
        return f"<{self.op}{label} : {format_shape(self.shape)}>"

    # Arithmetic with Python operators (numbers become constants), so derivative formulas in
    # the primitives table are written once for SymPy and for the IR.
    def __add__(self, other: object) -> Node:
        return add(self, as_node(other))

    def __radd__(self, other: object) -> Node:
        return add(as_node(other), self)

    def __sub__(self, other: object) -> Node:
        return sub(self, as_node(other))

    def __rsub__(self, other: object) -> Node:
        return sub(as_node(other), self)

    def __mul__(self, other: object) -> Node:
        return mul(self, as_node(other))

    def __rmul__(self, other: object) -> Node:
        return mul(as_node(other), self)

    def __truediv__(self, other: object) -> Node:
        return div(self, as_node(other))

    def __rtruediv__(self, other: object) -> Node:
        return div(as_node(other), self)

    def __pow__(self, other: object) -> Node:
        return power(self, as_node(other))

    def __neg__(self) -> Node:
        return neg(self)


#: The interning table holds nodes weakly: a node lives as long as an expression uses it. Keys
#: hold the ids of the arguments, which a live node keeps alive, so an id is never reused while
#: its key is in the table.
_INTERNED: weakref.WeakValueDictionary[tuple[Any, ...], Node] = weakref.WeakValueDictionary()
_INTERNING = threading.Lock()


def make_node(op: str, args: Sequence[Node], attrs: tuple[Any, ...], shape: Shape) -> Node:
    """The unique node for (op, args, attrs): identical sub-expressions are one object."""
    key = (op, tuple(id(a) for a in args), attrs, shape)
    with _INTERNING:
        node = _INTERNED.get(key)
        if node is None:
            node = object.__new__(Node)
            node.op, node.args, node.attrs, node.shape = op, tuple(args), attrs, shape
            _INTERNED[key] = node
    return node


def interned_count() -> int:
    """How many nodes are alive in the interning table (for memory tests)."""
    return len(_INTERNED)


def var(name: str, shape: Shape = ()) -> Node:
    """A named input (parameter or data) of the given shape."""
    return make_node("var", (), (check_name(name),), tuple(shape))


def const(value: object) -> Node:
    """A scalar constant; ``value`` may involve symbolic dimensions (``1/n``)."""
    if isinstance(value, bool):
        raise TypeError("a constant cannot be a bool")
    number = (
        sp.Integer(value)
        if isinstance(value, int)
        else sp.Float(value)
        if isinstance(value, float)
        else value
    )
    if not isinstance(number, sp.Expr):
        raise TypeError(f"constant must be a number, got {value!r}")
    return make_node("const", (), (number,), ())


_REWRITES: ContextVar[list[str] | None] = ContextVar("symdiff_rewrites", default=None)


@contextlib.contextmanager
def recording_rewrites() -> Iterator[list[str]]:
    """Collect the names of the stabilising rewrites the constructors apply meanwhile."""
    applied: list[str] = []
    token = _REWRITES.set(applied)
    try:
        yield applied
    finally:
        _REWRITES.reset(token)


def note_rewrite(name: str) -> None:
    """Record that a constructor applied the stabilising rewrite ``name`` (if recording)."""
    applied = _REWRITES.get()
    if applied is not None:
        applied.append(name)


def as_node(value: object) -> Node:
    """A node as is; a number (int, float or SymPy number) as a constant."""
    return value if isinstance(value, Node) else const(value)


def is_const(node: Node, value: object | None = None) -> bool:
    return node.op == "const" and (value is None or node.value == value)


def walk(root: Node | Iterable[Node]) -> list[Node]:
    """All nodes below ``root`` (or several roots), each once, children before parents."""
    roots = [root] if isinstance(root, Node) else list(root)
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((arg, False) for arg in reversed(node.args) if id(arg) not in seen)
    return order


def variables(root: Node | Iterable[Node]) -> list[Node]:
    """The ``var`` leaves of an expression, in order of first appearance."""
    return [n for n in walk(root) if n.op == "var"]


# --------------------------------------------------------------------------- shapes


class ShapeMismatch(ShapeError):
    """Raised by a constructor; the parser adds the sub-expression and column."""


def format_shape(shape: Shape) -> str:
    """(n, 10) -> '(n, 10)'; () -> '()' (a scalar); (d,) -> '(d,)'."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def dim_expr(dim: Dim) -> sp.Expr:
    """A dimension as a SymPy number or positive integer symbol (for 1/n in formulas)."""
    if isinstance(dim, int):
        return sp.Integer(dim)
    return sp.Symbol(dim, positive=True, integer=True)


def size_of(shape: Shape, axes: Iterable[int] | None = None) -> sp.Expr:
    """Number of elements over ``axes`` (all axes when None)."""
    chosen = range(len(shape)) if axes is None else axes
    return sp.Mul(*[dim_expr(shape[a]) for a in chosen])


def broadcast_shape(a: Shape, b: Shape) -> Shape | None:
    """NumPy broadcasting of two shapes (trailing axes aligned, 1 stretches), None if they clash."""
    out: list[Dim] = []
    for da, db in zip_longest(reversed(a), reversed(b), fillvalue=1):
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            return None
    return tuple(reversed(out))


def _broadcast(a: Node, b: Node, symbol: str) -> Shape:
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        raise ShapeMismatch(
            f"shapes {format_shape(a.shape)} {symbol} {format_shape(b.shape)} do not broadcast"
        )
    return shape


def _axis(node: Node, axis: int | None) -> int | None:
    if axis is None:
        return None
    if not -node.ndim <= axis < max(node.ndim, 1) or node.ndim == 0:
        raise ShapeMismatch(f"axis {axis} is out of range for shape {format_shape(node.shape)}")
    return axis % node.ndim


def axis_tuple(node: Node, axes: tuple[int, ...]) -> tuple[int, ...]:
    """Distinct axes of ``node`` (negative ones counted from the end), in increasing order."""
    normal = tuple(sorted(_axis(node, a) or 0 for a in axes))
    if len(set(normal)) != len(normal):
        raise ShapeMismatch(f"repeated axis in {axes} for shape {format_shape(node.shape)}")
    return normal


def over_axes(
    reduce: Any, a: Node, axis: Axes, keepdims: bool, *options: object
) -> tuple[Node, bool]:
    """A reduction over a tuple of axes as reductions over one axis each, the highest first
    (sum(A, axis=(0, 2)) = sum(sum(A, axis=2), axis=0)); (node, True) when ``axis`` was a tuple."""
    if not isinstance(axis, tuple):
        return a, False
    for one in reversed(axis_tuple(a, axis)):
        a = reduce(a, one, keepdims, *options)
    return a, True


# --------------------------------------------------------------------------- smart constructors


def scaled(node: Node) -> tuple[sp.Expr, Node]:
    """Split ``c * x`` into (c, x); any other node is (1, node)."""
    if node.op == "mul" and is_const(node.args[0]):
        return node.args[0].value, node.args[1]
    return sp.Integer(1), node


def scale(coefficient: sp.Expr, node: Node) -> Node:
    return mul(const(coefficient), node)


def _unstretch(a: Node, b: Node, shape: Shape) -> tuple[Node, Node]:
    """An operand broadcast_to in an elementwise operation is its source when the other operand
    stretches it to the same shape anyway (NumPy broadcasts)."""
    if a.op == "broadcast_to" and broadcast_shape(a.args[0].shape, b.shape) == shape:
        a = a.args[0]
    if b.op == "broadcast_to" and broadcast_shape(a.shape, b.args[0].shape) == shape:
        b = b.args[0]
    return a, b


def add(a: Node, b: Node) -> Node:
    """Elementwise a + b with broadcasting."""
    shape = _broadcast(a, b, "+")
    a, b = _unstretch(a, b, shape)
    if is_const(a) and is_const(b):
        return const(a.value + b.value)
    if is_const(a, 0) and b.shape == shape:
        return b
    if is_const(b, 0) and a.shape == shape:
        return a
    ca, xa = scaled(a)
    cb, xb = scaled(b)
    if xa is xb and not is_const(xa):
        return scale(ca + cb, xa)
    if ca != 1 and cb != 1 and (ca == cb or ca == -cb):  # c*x + c*y = c*(x + y)
        if ca.could_extract_minus_sign() and not cb.could_extract_minus_sign():
            (ca, xa), (cb, xb) = (cb, xb), (ca, xa)
        return scale(ca, add(xa, scale(cb / ca, xb)))
    return make_node("add", (a, b), (), shape)


def neg(a: Node) -> Node:
    return mul(const(-1), a)


def sub(a: Node, b: Node) -> Node:
    return add(a, neg(b))


def mul(a: Node, b: Node) -> Node:
    """Elementwise a * b with broadcasting (the Hadamard product ⊙ for equal shapes)."""
    shape = _broadcast(a, b, "*")
    if is_const(b) and not is_const(a):
        a, b = b, a
    if is_const(a):
        if is_const(b):
            return const(a.value * b.value)
        if a.value == 1:
            return b
        c, x = scaled(b)
        if c != 1:
            return scale(a.value * c, x)
        if b.op == "broadcast_to" and is_const(b.args[0]):
            return broadcast_to(const(a.value * b.args[0].value), b.shape)
        return make_node("mul", (a, b), (), shape)
    for first, second in ((a, b), (b, a)):
        if first.op == "broadcast_to" and broadcast_shape(first.args[0].shape, second.shape) == (
            shape
        ):
            return mul(first.args[0], second)
    (ca, xa), (cb, xb) = scaled(a), scaled(b)
    if ca != 1 or cb != 1:
        return scale(ca * cb, mul(xa, xb))
    for first, second in ((a, b), (b, a)):  # x * (1/y) = x / y
        if second.op == "div" and is_const(second.args[0], 1) and first.shape == shape:
            return div(first, second.args[1])
    return make_node("mul", (a, b), (), shape)


def div(a: Node, b: Node) -> Node:
    """Elementwise a / b with broadcasting."""
    shape = _broadcast(a, b, "/")
    a, b = _unstretch(a, b, shape)
    if is_const(a) and a.value != 1:
        return scale(a.value, div(const(1), b))
    if is_const(b):
        if b.value == 0:
            raise ShapeMismatch("division by zero")
        return mul(const(1 / b.value), a)
    (ca, xa), (cb, xb) = scaled(a), scaled(b)
    if ca != 1 or cb != 1:
        return scale(ca / cb, div(xa, xb))
    return make_node("div", (a, b), (), shape)


def power(a: Node, b: Node) -> Node:
    """Elementwise a ** b with broadcasting."""
    shape = _broadcast(a, b, "**")
    if is_const(b):
        if b.value == 1:
            return a
        if is_const(a):
            check_power_size(a.value, b.value, ShapeMismatch)
            return const(a.value**b.value)
        c, x = scaled(a)
        if c != 1 and b.value.is_integer:
            return scale(c**b.value, power(x, b))
    return make_node("pow", (a, b), (), shape)


def matmul(a: Node, b: Node) -> Node:
    """a @ b: (m,k)@(k,p) -> (m,p), (m,k)@(k,) -> (m,), (k,)@(k,p) -> (p,), (k,)@(k,) -> ();
    with more axes NumPy's batched product: (..., m, k) @ (..., k, p) -> (..., m, p), the
    leading (batch) axes broadcast."""
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeMismatch(
            f"'@' needs vectors, matrices or stacks of them, got "
            f"{format_shape(a.shape)} @ {format_shape(b.shape)}"
        )
    inner_a, inner_b = a.shape[-1], b.shape[-2 if b.ndim > 1 else 0]
    if inner_a != inner_b:
        raise ShapeMismatch(
            f"{format_shape(a.shape)} @ {format_shape(b.shape)}: inner dimensions "
            f"{inner_a} and {inner_b} differ"
        )
    if a.ndim > 2 or b.ndim > 2:
        return _batched_matmul(a, b)
    shape = a.shape[:-1] + b.shape[1:]
    if a.op == "eye":
        return b
    if b.op == "eye":
        return a
    if _is_filled(a) or _is_filled(b):
        return _matmul_filled(a, b, shape)
    (ca, xa), (cb, xb) = scaled(a), scaled(b)
    if ca != 1 or cb != 1:
        return scale(ca * cb, matmul(xa, xb))
    return make_node("matmul", (a, b), (), shape)


def _batched_matmul(a: Node, b: Node) -> Node:
    """(..., m, k) @ (..., k, p) with broadcast batch axes (a vector operand has none)."""
    batch_a = a.shape[:-2] if a.ndim > 1 else ()
    batch_b = b.shape[:-2] if b.ndim > 1 else ()
    batch = broadcast_shape(batch_a, batch_b)
    if batch is None:
        raise ShapeMismatch(
            f"{format_shape(a.shape)} @ {format_shape(b.shape)}: batch axes "
            f"{format_shape(batch_a)} and {format_shape(batch_b)} do not broadcast"
        )
    rows = a.shape[-2:-1] if a.ndim > 1 else ()
    columns = b.shape[-1:] if b.ndim > 1 else ()
    if _is_filled(a) or _is_filled(b):
        return _matmul_filled(a, b, batch + rows + columns)
    (ca, xa), (cb, xb) = scaled(a), scaled(b)
    if ca != 1 or cb != 1:
        return scale(ca * cb, matmul(xa, xb))
    return make_node("matmul", (a, b), (), batch + rows + columns)


def _is_filled(node: Node) -> bool:
    return node.op == "broadcast_to" and node.args[0].ndim == 0


def _matmul_filled(a: Node, b: Node, shape: Shape) -> Node:
    """A matrix product with an array filled with one value c is c times a sum (no ones array)."""
    if _is_filled(b):
        total = sum_(a, a.ndim - 1, keepdims=b.ndim >= 2 and a.ndim >= 2)
        filler = b.args[0]
    else:
        total = sum_(b, b.ndim - 2 if b.ndim > 1 else 0, keepdims=a.ndim >= 2 and b.ndim >= 2)
        filler = a.args[0]
    return broadcast_to(mul(filler, total), shape)


def transpose(a: Node) -> Node:
    """a.T: swaps the axes of a matrix (reverses all axes of a tensor, as NumPy does); a vector
    or scalar is its own transpose."""
    if a.ndim > 2:
        return permute(a, tuple(reversed(range(a.ndim))))
    if a.ndim < 2:
        return a
    if a.op == "transpose":
        return a.args[0]
    c, x = scaled(a)
    if c != 1:
        return scale(c, transpose(x))
    if a.op == "eye":
        return a
    if a.op == "matmul":  # (A @ B).T = B.T @ A.T
        return matmul(transpose(a.args[1]), transpose(a.args[0]))
    return make_node("transpose", (a,), (), (a.shape[1], a.shape[0]))


def permute(a: Node, axes: Sequence[int]) -> Node:
    """transpose(a, axes): axis i of the result is axis axes[i] of ``a`` (numpy.transpose)."""
    if (
        len(axes) != a.ndim
        or not all(-a.ndim <= x < a.ndim for x in axes)
        or len({x % a.ndim for x in axes}) != a.ndim
    ):
        raise ShapeMismatch(
            f"axes {tuple(axes)} are not a permutation of the axes of shape {format_shape(a.shape)}"
        )
    order = tuple(x % a.ndim for x in axes)
    if order == tuple(range(a.ndim)):
        return a
    if a.ndim == 2:
        return transpose(a)
    if a.op == "permute":  # transpose(transpose(x, p), q) = transpose(x, p[q])
        return permute(a.args[0], tuple(a.attrs[0][i] for i in order))
    c, x = scaled(a)
    if c != 1:
        return scale(c, permute(x, order))
    return make_node("permute", (a,), (order,), tuple(a.shape[i] for i in order))


def swapaxes(a: Node, first: int, second: int) -> Node:
    """numpy.swapaxes(a, first, second): the two axes exchanged."""
    i, j = _axis(a, first), _axis(a, second)
    if i is None or j is None:  # unreachable: _axis refuses a scalar
        raise ShapeMismatch(f"swapaxes needs a tensor, got {format_shape(a.shape)}")
    order = list(range(a.ndim))
    order[i], order[j] = order[j], order[i]
    return permute(a, order)


def reshape(a: Node, shape: Shape) -> Node:
    """numpy.reshape(a, shape): the same elements in row-major order; sizes must agree. One
    entry may be -1: the size that makes them agree, a whole number or a declared dimension."""
    shape = _infer_dimension(a.shape, tuple(shape))
    if sp.simplify(size_of(a.shape) - size_of(shape)) != 0:
        raise ShapeMismatch(
            f"cannot reshape {format_shape(a.shape)} to {format_shape(shape)}: "
            f"{size_of(a.shape)} and {size_of(shape)} elements"
        )
    if a.shape == shape:
        return a
    if a.op == "reshape":
        a = a.args[0]
        if a.shape == shape:
            return a
    c, x = scaled(a)
    if c != 1:
        return scale(c, reshape(x, shape))
    return make_node("reshape", (a,), (), shape)


def _infer_dimension(source: Shape, shape: Shape) -> Shape:
    """``shape`` with its -1 replaced by size(source) / size(the other entries)."""
    if -1 not in shape:
        return shape
    if shape.count(-1) > 1:
        raise ShapeMismatch(f"reshape to {format_shape(shape)}: at most one -1")
    rest = tuple(d for d in shape if d != -1)
    inferred = sp.simplify(size_of(source) / size_of(rest))
    if inferred.is_Integer and inferred > 0:
        size: Dim = int(inferred)
    elif inferred.is_Symbol:
        size = str(inferred)
    else:
        raise ShapeMismatch(
            f"cannot reshape {format_shape(source)} to {format_shape(shape)}: the -1 would be "
            f"{inferred}, which is neither a whole number nor one declared dimension "
            "(write the shape out, or declare integer sizes)"
        )
    return tuple(size if d == -1 else d for d in shape)


def sum_(a: Node, axis: Axes = None, keepdims: bool = False) -> Node:
    """Sum over all elements (axis None), one axis or a tuple of axes."""
    total, done = over_axes(sum_, a, axis, keepdims)
    if done:
        return total
    assert not isinstance(axis, tuple)
    axis = _axis(a, axis)
    if a.ndim == 1 and not keepdims:  # the only axis of a vector is all of it
        axis = None
    if axis is None:
        shape: Shape = tuple(1 for _ in a.shape) if keepdims else ()
        axes: list[int] = list(range(a.ndim))
    else:
        shape = a.shape[:axis] + ((1,) if keepdims else ()) + a.shape[axis + 1 :]
        axes = [axis]
    if a.ndim == 0 or all(a.shape[i] == 1 for i in axes) and keepdims:
        return a
    c, x = scaled(a)
    if c != 1:
        return scale(c, sum_(x, axis, keepdims))
    if a.op == "add" and not keepdims:  # sum(c + e) = count * c + sum(e) for a scalar c
        first, second = a.args
        for scalar, rest in ((first, second), (second, first)):
            if scalar.ndim == 0 and rest.shape == a.shape:
                count = size_of(a.shape, axes)
                return add(mul(const(count), scalar), sum_(rest, axis, keepdims))
    if a.op == "mul" and not keepdims:  # sum(c * e) = c * sum(e) for a scalar factor c
        first, second = a.args
        for factor, rest in ((first, second), (second, first)):
            if factor.ndim == 0 and rest.shape == a.shape:
                return mul(factor, sum_(rest, axis, keepdims))
    if a.op == "transpose" and not keepdims:
        return sum_(a.args[0], None if axis is None else 1 - axis)
    if a.op == "broadcast_to" and a.args[0].ndim == 0:
        return broadcast_to(mul(a.args[0], const(size_of(a.shape, axes))), shape)
    return make_node("sum", (a,), (axis, bool(keepdims)), shape)


def mean(a: Node, axis: Axes = None, keepdims: bool = False) -> Node:
    """Mean over all elements, one axis or a tuple of axes: sum / count."""
    if isinstance(axis, tuple):
        count = size_of(a.shape, axis_tuple(a, axis))
        return scale(1 / count, sum_(a, axis, keepdims))
    axis = _axis(a, axis)
    count = size_of(a.shape, None if axis is None else [axis])
    return scale(1 / count, sum_(a, axis, keepdims))


def broadcast_to(a: Node, shape: Shape) -> Node:
    """``a`` repeated to ``shape`` (the adjoint of a sum)."""
    shape = tuple(shape)
    if a.shape == shape:
        return a
    if broadcast_shape(a.shape, shape) != shape:
        raise ShapeMismatch(f"cannot broadcast {format_shape(a.shape)} to {format_shape(shape)}")
    if a.op == "broadcast_to":
        a = a.args[0]
    return make_node("broadcast_to", (a,), (shape,), shape)


def expand_dims(a: Node, axis: int) -> Node:
    """Insert an axis of length 1 at ``axis`` (NumPy ``a[:, None]`` for axis 1)."""
    if not 0 <= axis <= a.ndim:
        raise ShapeMismatch(f"axis {axis} is out of range for shape {format_shape(a.shape)}")
    if a.ndim == 0:
        return a
    shape = a.shape[:axis] + (1,) + a.shape[axis:]
    if a.op == "broadcast_to" and a.args[0].ndim == 0:
        return broadcast_to(a.args[0], shape)
    return make_node("expand_dims", (a,), (axis,), shape)


def unbroadcast(g: Node, shape: Shape) -> Node:
    """Sum ``g`` over the axes that broadcasting stretched, back to ``shape`` (bias gradients)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    for _ in range(lead):
        g = sum_(g, 0)
    for axis, dim in enumerate(shape):
        if dim == 1 and g.shape[axis] != 1:
            g = sum_(g, axis, keepdims=True)
    return g
