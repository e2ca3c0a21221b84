"""Elementwise functions (every primitive of the table) and the tensor operations built on them.

``elementwise``/``binary``/``apply`` build primitive applications with the stabilising rewrites
(``log(sigmoid(z)) = -softplus(-z)``, ``log(softmax(Z)) = log_softmax(Z)``); softmax, log_softmax,
logsumexp, the fused cross-entropy, trace, outer, eye and the norms are the operations tensor
losses use. ``IR_FUNCTIONS`` is the namespace the primitives table's derivative formulas and the
composite functions are built with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import sympy as sp

from ..primitives import PRIMITIVES
from .nodes import (
    Axes,
    Dim,
    Node,
    Shape,
    ShapeMismatch,
    _axis,
    _broadcast,
    as_node,
    axis_tuple,
    broadcast_to,
    const,
    dim_expr,
    expand_dims,
    format_shape,
    is_const,
    make_node,
    matmul,
    mul,
    neg,
    note_rewrite,
    over_axes,
    power,
    scale,
    scaled,
    sub,
    sum_,
)

#: Elementwise functions of one argument: every one-argument primitive of the table.
ELEMENTWISE: tuple[str, ...] = tuple(name for name, row in PRIMITIVES.items() if row.arity == 1)
#: Elementwise functions of two arguments, with broadcasting (maximum, minimum, logaddexp).
BINARY_ELEMENTWISE: tuple[str, ...] = tuple(
    name for name, row in PRIMITIVES.items() if row.arity == 2
)


def elementwise(op: str, a: Node, at_zero: object = 0) -> Node:
    """f(a) applied to every element, with stabilising rewrites for log and exp.

    ``at_zero`` is heaviside's value at 0 (0 for relu', 1/2 for max/min at a tie).
    """
    if op not in ELEMENTWISE:
        raise ValueError(f"unknown elementwise function {op}")
    if op == "log":
        if a.op == "exp":
            return a.args[0]
        if a.op == "sigmoid":  # log(sigmoid(z)) = -softplus(-z)
            note_rewrite("log_sigmoid")
            return neg(elementwise("softplus", neg(a.args[0])))
        if a.op == "softmax":
            note_rewrite("log_softmax")
            return make_node("log_softmax", a.args, a.attrs, a.shape)
        if a.op == "add" and is_const(a.args[0], 1):  # log(1 - sigmoid(z)) = -softplus(z)
            c, x = scaled(a.args[1])
            if c == -1 and x.op == "sigmoid" and x.shape == a.shape:
                note_rewrite("log_one_minus_sigmoid")
                return neg(elementwise("softplus", x.args[0]))
    if op == "exp" and a.op == "log_softmax":
        return make_node("softmax", a.args, a.attrs, a.shape)
    attrs: tuple[Any, ...] = (_number(at_zero),) if op == "heaviside" else ()
    if is_const(a):
        folded = _fold(op, (a.value, *attrs))
        if folded is not None:
            return const(folded)
    return make_node(op, (a,), attrs, a.shape)


def _number(value: object) -> sp.Expr:
    """A SymPy number for heaviside's value at 0 (0, 1/2 or a parsed constant)."""
    if isinstance(value, sp.Expr):
        return value
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, float):
        return sp.Float(value)
    raise TypeError(f"heaviside's value at 0 must be a number, got {value!r}")


def _fold(op: str, values: tuple[sp.Expr, ...]) -> sp.Expr | None:
    """f(constants) when SymPy gives a finite real number, else None (kept as a node)."""
    builder = PRIMITIVES[op].sympy
    if builder is None or any(v.free_symbols for v in values):
        return None
    value = builder(*values)
    if value.is_real and value.is_finite and value.is_number:
        return value
    return None


def binary(op: str, a: Node, b: Node) -> Node:
    """An elementwise function of two arguments with broadcasting: maximum, minimum, logaddexp."""
    if op not in BINARY_ELEMENTWISE:
        raise ValueError(f"unknown elementwise function {op}")
    shape = _broadcast(a, b, op)
    if is_const(a) and is_const(b):
        folded = _fold(op, (a.value, b.value))
        if folded is not None:
            return const(folded)
    return make_node(op, (a, b), (), shape)


def apply(name: str, *args: Node) -> Node:
    """The primitive ``name`` applied elementwise to ``args``."""
    if len(args) == 1:
        return elementwise(name, args[0])
    return binary(name, *args)


def _reduced_shape(a: Node, axis: int | None, keepdims: bool) -> Shape:
    """The shape of a reduction of ``a`` over one axis (None: all axes)."""
    if axis is None:
        return tuple(1 for _ in a.shape) if keepdims else ()
    return a.shape[:axis] + ((1,) if keepdims else ()) + a.shape[axis + 1 :]


def _softmax_family(op: str, a: Node, axis: Axes, keepdims: bool = False) -> Node:
    if a.ndim == 0:
        raise ShapeMismatch(f"{op} needs a vector or matrix, got a scalar")
    if isinstance(axis, tuple):  # over several axes: a - logsumexp(a, axes, keepdims)
        axes = axis_tuple(a, axis)
        if len(axes) == 1:
            return _softmax_family(op, a, axes[0], keepdims)
        if op == "logsumexp":
            return over_axes(logsumexp, a, axes, keepdims)[0]
        shifted = sub(a, logsumexp(a, axes, keepdims=True))
        return shifted if op == "log_softmax" else elementwise("exp", shifted)
    axis = _axis(a, axis)
    if axis is None and a.ndim == 1 and op != "logsumexp":
        axis = 0
    if op != "logsumexp":
        return make_node(op, (a,), (axis,), a.shape)
    return make_node(op, (a,), (axis, bool(keepdims)), _reduced_shape(a, axis, keepdims))


def softmax(a: Node, axis: Axes = -1) -> Node:
    """exp(a) / sum(exp(a), axis) (the last axis by default; None for all elements)."""
    return _softmax_family("softmax", a, axis)


def log_softmax(a: Node, axis: Axes = -1) -> Node:
    """a - logsumexp(a, axis, keepdims)."""
    return _softmax_family("log_softmax", a, axis)


def logsumexp(a: Node, axis: Axes = None, keepdims: bool = False) -> Node:
    """log(sum(exp(a), axis)), computed stably."""
    return _softmax_family("logsumexp", a, axis, keepdims)


def amax(a: Node, axis: Axes = None, keepdims: bool = False) -> Node:
    """max(a, axis): the largest element over all elements, an axis or a tuple of axes."""
    if a.ndim == 0:
        return a
    largest, done = over_axes(amax, a, axis, keepdims)
    if done:
        return largest
    assert not isinstance(axis, tuple)
    axis = _axis(a, axis)
    if a.ndim == 1 and not keepdims:
        axis = None
    c, x = scaled(a)
    if c != 1 and c.is_positive:  # max(c * x) = c * max(x) for c > 0
        return scale(c, amax(x, axis, keepdims))
    return make_node("amax", (a,), (axis, bool(keepdims)), _reduced_shape(a, axis, keepdims))


def einsum(spec: str, *operands: Node) -> Node:
    """numpy.einsum with an index string: "bij,bjk->bik" multiplies the operands elementwise
    over shared letters and sums the letters the output omits (implicit output: the letters
    used once, sorted). Each letter stands for one dimension. '...' stands for the axes the
    letters leave (explicit letters from each operand's rank, right-aligned as NumPy does); a
    letter repeated within one operand takes its diagonal: einsum('ii->i', A) is
    einsum('ij,ij->i', A, eye(n)), so A's adjoint G[i] lands on the diagonal, eye(n) * G[:, None].
    """
    text = _expand_ellipsis(spec.replace(" ", ""), operands)
    inputs, output = _einsum_spec(text, operands, spec)
    inputs, operands = _diagonals(inputs, operands, output, spec)
    sizes: dict[str, Dim] = {}
    for letters, operand in zip(inputs, operands, strict=True):
        for letter, dim in zip(letters, operand.shape, strict=True):
            if sizes.setdefault(letter, dim) != dim:
                shapes = ", ".join(format_shape(o.shape) for o in operands)
                raise ShapeMismatch(
                    f"einsum '{spec}': index {letter} is {sizes[letter]} in one operand and "
                    f"{dim} in another (shapes {shapes})"
                )
    scales = [scaled(o) for o in operands]
    coefficient = sp.Mul(*(c for c, _ in scales))
    normal = ",".join(inputs) + "->" + output
    if normal == f"{output}->{output}":  # einsum('ij->ij', A) = A
        return operands[0]
    if coefficient != 1:
        return scale(coefficient, einsum(normal, *(x for _, x in scales)))
    return make_node("einsum", operands, (normal,), tuple(sizes[x] for x in output))


#: Letters '...' expands to, taken in order among those the index string does not use.
_SPARE_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _expand_ellipsis(text: str, operands: tuple[Node, ...]) -> str:
    """'...ij,...jk->...ik' with explicit letters for the '...' axes of each operand (an
    operand with fewer such axes takes the last ones, like NumPy's broadcasting); an implicit
    output puts the '...' axes first."""
    if "..." not in text:
        return text
    left, arrow, output = text.partition("->")
    inputs = left.split(",")
    if len(inputs) != len(operands):
        raise ShapeMismatch(
            f"einsum '{text}' names {len(inputs)} operand(s) but gets {len(operands)}"
        )
    counts = []
    for letters, operand in zip(inputs, operands, strict=True):
        named = len(letters.replace("...", ""))
        if letters.count("...") > 1 or named > operand.ndim:
            raise ShapeMismatch(
                f"einsum '{text}': '{letters}' does not fit an operand of shape "
                f"{format_shape(operand.shape)} ('...' at most once per operand)"
            )
        counts.append(operand.ndim - named if "..." in letters else 0)
    spare = [x for x in _SPARE_LETTERS if x not in text][: max(counts)]
    inputs = [
        letters.replace("...", "".join(spare[len(spare) - k :]) if k else "")
        for letters, k in zip(inputs, counts, strict=True)
    ]
    if arrow:
        output = output.replace("...", "".join(spare))
    else:
        used = "".join(inputs)
        once = sorted(x for x in set(used) if used.count(x) == 1 and x not in spare)
        output = "".join(spare) + "".join(once)
    return ",".join(inputs) + "->" + output


def _diagonals(
    inputs: list[str], operands: tuple[Node, ...], output: str, spec: str
) -> tuple[list[str], tuple[Node, ...]]:
    """Each repeat of a letter within one operand renamed to a fresh letter, with an identity
    eye(n) over (letter, fresh letter) as one more operand: the operand's diagonal."""
    taken = set("".join(inputs)) | set(output)
    fresh = iter(x for x in _SPARE_LETTERS if x not in taken)
    renamed: list[str] = []
    extra: list[tuple[str, Node]] = []
    for letters, operand in zip(inputs, operands, strict=True):
        seen: dict[str, int] = {}
        new = ""
        for axis, letter in enumerate(letters):
            if letter not in seen:
                seen[letter] = axis
                new += letter
                continue
            first = operand.shape[seen[letter]]
            if operand.shape[axis] != first:
                raise ShapeMismatch(
                    f"einsum '{spec}': index {letter} repeats within '{letters}' over axes of "
                    f"different sizes {first} and {operand.shape[axis]}"
                )
            other = next(fresh, None)
            if other is None:
                raise ShapeMismatch(f"einsum '{spec}': too many indices")
            new += other
            extra.append((letter + other, eye(first)))
        renamed.append(new)
    if not extra:
        return inputs, operands
    return renamed + [x for x, _ in extra], (*operands, *(e for _, e in extra))


def _einsum_spec(text: str, operands: tuple[Node, ...], spec: str) -> tuple[list[str], str]:
    """The index letters of each operand and of the output, checked against the operands."""
    left, arrow, output = text.partition("->")
    inputs = left.split(",")
    if not operands or "." in text or not all(p.isalpha() and p.isascii() for p in inputs):
        raise ShapeMismatch(
            f"einsum '{spec}': write one group of index letters per operand, like 'ij,jk->ik' "
            "or '...ij->...ji'"
        )
    if len(inputs) != len(operands):
        raise ShapeMismatch(
            f"einsum '{spec}' names {len(inputs)} operand(s) but gets {len(operands)}"
        )
    for letters, operand in zip(inputs, operands, strict=True):
        if len(letters) != operand.ndim:
            raise ShapeMismatch(
                f"einsum '{spec}': '{letters}' has {len(letters)} indices but the operand has "
                f"shape {format_shape(operand.shape)}"
            )
    used = "".join(inputs)
    if not arrow:
        output = "".join(sorted(x for x in set(used) if used.count(x) == 1))
    if not (output == "" or output.isalpha() and output.isascii()) or len(set(output)) != len(
        output
    ):
        raise ShapeMismatch(f"einsum '{spec}': the output '{output}' must be distinct letters")
    if set(output) - set(used):
        raise ShapeMismatch(
            f"einsum '{spec}': output index {sorted(set(output) - set(used))[0]} is in no operand"
        )
    return inputs, output


def einsum_adjoint(node: Node, g: Node, index: int) -> Node:
    """d(sum(G * einsum(...)))/d(operand i): einsum of G with the other operands, back to
    operand i's letters; letters found nowhere else are spread by broadcasting."""
    inputs, output = node.attrs[0].split("->")
    letters = inputs.split(",")
    others = [(x, o) for k, (x, o) in enumerate(zip(letters, node.args, strict=True)) if k != index]
    available = set(output).union(*(set(x) for x, _ in others))
    target = "".join(x for x in letters[index] if x in available)
    operand = node.args[index]
    factors = ([(output, g)] if g.ndim else []) + others  # a scalar G just scales
    if factors:
        spec = ",".join(x for x, _ in factors) + "->" + target
        result = (
            mul(g, einsum(spec, *(o for _, o in factors)))
            if not g.ndim
            else einsum(spec, *(o for _, o in factors))
        )
    else:
        result = g
    for axis, letter in enumerate(letters[index]):
        if letter not in available and result.ndim:  # a scalar broadcasts as it is
            result = expand_dims(result, axis)
    return broadcast_to(result, operand.shape)


def cross_entropy(targets: Node, probabilities: Node) -> Node:
    """Mean over rows of -sum(Y * log(P)); rows of Y are probability vectors (e.g. one-hot).

    ``cross_entropy(Y, softmax(Z))`` with a symbol Y becomes one fused node whose gradient is
    (softmax(Z) - Y)/n, which holds because the rows of Y sum to 1 (generated modules check it).
    """
    if targets.shape != probabilities.shape or targets.ndim not in (1, 2):
        raise ShapeMismatch(
            "cross_entropy(Y, P) needs Y and P of the same vector or matrix shape, got "
            f"{format_shape(targets.shape)} and {format_shape(probabilities.shape)}"
        )
    last = probabilities.ndim - 1
    fusable = probabilities.op == "softmax" and probabilities.attrs == (last,)
    if fusable and targets.op == "var":  # generated code checks that Y's rows sum to 1
        logits = probabilities.args[0]
        note_rewrite("softmax_cross_entropy")
        return make_node("softmax_cross_entropy", (targets, logits), (), ())
    rows = dim_expr(targets.shape[0]) if targets.ndim == 2 else sp.Integer(1)
    return scale(-1 / rows, sum_(mul(targets, elementwise("log", probabilities))))


def trace(a: Node) -> Node:
    """Sum of the diagonal of a square matrix."""
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeMismatch(f"trace needs a square matrix, got {format_shape(a.shape)}")
    c, x = scaled(a)
    if c != 1:
        return scale(c, trace(x))
    return make_node("trace", (a,), (), ())


def outer(a: Node, b: Node) -> Node:
    """Outer product of two vectors: (m,) x (p,) -> (m, p)."""
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeMismatch(
            f"outer needs two vectors, got {format_shape(a.shape)} and {format_shape(b.shape)}"
        )
    (ca, xa), (cb, xb) = scaled(a), scaled(b)
    if ca != 1 or cb != 1:
        return scale(ca * cb, outer(xa, xb))
    return make_node("outer", (a, b), (), (a.shape[0], b.shape[0]))


def eye(dim: Dim) -> Node:
    """The identity matrix of size dim x dim (only the gradient of a trace needs it)."""
    return make_node("eye", (), (dim,), (dim, dim))


def dot(a: Node, b: Node) -> Node:
    """Inner product of vectors; matrix product otherwise (like numpy.dot)."""
    return matmul(a, b)


def squared_norm(a: Node) -> Node:
    """sum(a**2): the squared Euclidean (Frobenius) norm."""
    return sum_(power(a, const(2)))


def norm(a: Node) -> Node:
    """sqrt(sum(a**2))."""
    return elementwise("sqrt", squared_norm(a))


def _ir_function(name: str) -> Callable[..., Node]:
    return lambda *args: apply(name, *as_nodes(args))


def as_nodes(values: Iterable[object]) -> tuple[Node, ...]:
    return tuple(as_node(v) for v in values)


#: The IR namespace of primitives (for ``Primitive.partials`` and ``Composite.build``).
IR_FUNCTIONS = SimpleNamespace(
    **{
        **{name: _ir_function(name) for name in PRIMITIVES},
        "heaviside": lambda u, at_zero=0: elementwise("heaviside", as_node(u), at_zero),
        "pi": const(sp.pi),
        "half": sp.Rational(1, 2),
    }
)


#: Functions a tensor expression may call, by the name typed.
