"""The tensor parser: text and declared shapes to an IR node, nothing evaluated.

Text is tokenized and checked by the shared front end :func:`symdiff.frontend.parse.parse_tree`;
a whitelisting builder walks its ``ast`` and calls the IR's smart constructors, so shape errors
name the sub-expression and its column. Every primitive of the table (and its aliases), the
composite functions and the tensor operations (``sum``, ``mean``, ``softmax``, ``@``, ``.T``, ...)
may be called.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import sympy as sp

from ..checks import check_name
from ..errors import InputError, ParseError, ShapeError
from ..ir.linalg import det, diag, frobenius, inv, kron, logdet, norm1, solve
from ..ir.nodes import (
    Node,
    Shape,
    ShapeMismatch,
    add,
    broadcast_to,
    const,
    dim_expr,
    div,
    expand_dims,
    is_const,
    matmul,
    mean,
    mul,
    neg,
    permute,
    power,
    reshape,
    sub,
    sum_,
    swapaxes,
    transpose,
    var,
)
from ..ir.ops import (
    BINARY_ELEMENTWISE,
    IR_FUNCTIONS,
    amax,
    binary,
    cross_entropy,
    dot,
    einsum,
    elementwise,
    eye,
    log_softmax,
    logsumexp,
    norm,
    outer,
    softmax,
    squared_norm,
    trace,
)
from ..names import canonical, did_you_mean
from ..primitives import BY_TYPED_NAME, COMPOSITES, Composite
from .parse import MAX_DEPTH, SourceTree, flatten_chain, parse_tree

# --------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class TensorFunction:
    """A function the tensor parser admits: its builder, arity and keyword options."""

    build: Callable[..., Node]
    arity: int = 1
    keywords: tuple[str, ...] = ()
    doc: str = ""


def _unary(op: str) -> TensorFunction:
    return TensorFunction(lambda a: elementwise(op, a), doc=f"elementwise {op}")


TENSOR_FUNCTIONS: dict[str, TensorFunction] = {
    **{typed: _unary(row.name) for typed, row in BY_TYPED_NAME.items() if row.arity == 1},
    "sum": TensorFunction(sum_, 1, ("axis", "keepdims"), "sum over all elements or an axis"),
    "mean": TensorFunction(mean, 1, ("axis", "keepdims"), "mean over all elements or an axis"),
    "softmax": TensorFunction(softmax, 1, ("axis",), "softmax over an axis (last by default)"),
    "log_softmax": TensorFunction(log_softmax, 1, ("axis",), "log of softmax, stable"),
    "logsumexp": TensorFunction(logsumexp, 1, ("axis", "keepdims"), "log(sum(exp(x))), stable"),
    "cross_entropy": TensorFunction(cross_entropy, 2, (), "mean over rows of -sum(Y*log(P))"),
    "dot": TensorFunction(dot, 2, (), "inner product of vectors (matmul otherwise)"),
    "outer": TensorFunction(outer, 2, (), "outer product of two vectors"),
    "max": TensorFunction(amax, 1, ("axis", "keepdims"), "largest element over all or axes"),
    "transpose": TensorFunction(transpose, 1, (), "same as .T; transpose(A, (0, 2, 1))"),
    "swapaxes": TensorFunction(swapaxes, 3, (), "swapaxes(A, -1, -2) exchanges two axes"),
    "reshape": TensorFunction(reshape, 2, (), "reshape(A, (b, t, d)); one -1 is inferred"),
    "einsum": TensorFunction(einsum, 2, (), "einsum('bij,bjk->bik', A, B)"),
    "broadcast_to": TensorFunction(broadcast_to, 2, (), "broadcast_to(A, (b, t, d))"),
    "trace": TensorFunction(trace, 1, (), "sum of the diagonal"),
    "norm2": TensorFunction(squared_norm, 1, (), "squared Euclidean norm sum(x**2)"),
    "sumsq": TensorFunction(squared_norm, 1, (), "same as norm2"),
    "norm": TensorFunction(norm, 1, (), "Euclidean norm sqrt(sum(x**2))"),
    "expand_dims": TensorFunction(expand_dims, 1, ("axis",), "insert an axis of length 1"),
    "det": TensorFunction(det, 1, (), "determinant of a square matrix"),
    "logdet": TensorFunction(logdet, 1, (), "log(det(A)), for det(A) > 0"),
    "inv": TensorFunction(inv, 1, (), "inverse of a square matrix"),
    "solve": TensorFunction(solve, 2, (), "inv(A) @ B, computed by np.linalg.solve"),
    "diag": TensorFunction(diag, 1, (), "vector -> diagonal matrix, square matrix -> diagonal"),
    "norm1": TensorFunction(norm1, 1, (), "entrywise 1-norm sum(abs(x))"),
    "frobenius": TensorFunction(frobenius, 1, (), "Frobenius norm sqrt(sum(x**2)), one node"),
    "kron": TensorFunction(kron, 2, (), "Kronecker product of two matrices"),
    **{
        name: TensorFunction(partial(binary, name), 2, (), f"elementwise {name}, as printed")
        for name in BINARY_ELEMENTWISE
    },
}

#: Functions with their own builder: eye(d) and broadcast_to(A, (d1, d2)).
_SPECIAL = ("eye", "broadcast_to")

#: every name the tensor parser can call (matched without regard to case)
_KNOWN = frozenset({*TENSOR_FUNCTIONS, *COMPOSITES, "heaviside", *_SPECIAL})

_CONSTANTS = {"pi": sp.pi, "e": sp.E}


class _TensorBuilder:
    """Builds tensor nodes from a checked ``ast``; anything not whitelisted is an error."""

    def __init__(self, source: SourceTree, shapes: Mapping[str, Shape]) -> None:
        self.source = source
        self.shapes = shapes
        self.dims = {d for shape in shapes.values() for d in shape if isinstance(d, str)}

    def build(self, node: ast.AST) -> Node:
        handler = getattr(self, f"_build_{type(node).__name__}", None)
        if handler is None:
            raise self.source.error(f"'{type(node).__name__}' is not allowed here", node)
        try:
            return handler(node)
        except ShapeMismatch as exc:
            raise self._shape_error(str(exc), node) from None

    def _shape_error(self, reason: str, node: ast.AST) -> ShapeError:
        if getattr(self, "_reported", False):
            return ShapeError(reason)
        self._reported = True
        column = self.source.column_of(node)
        return ShapeError(f"shape error in '{ast.unparse(node)}': {reason} at column {column}")

    def _build_Constant(self, node: ast.Constant) -> Node:
        literal = self.source.literals.get(node.col_offset)
        if isinstance(node.value, str):
            raise self.source.error("a string is allowed only as einsum's index string", node)
        if literal is None or isinstance(node.value, (bool, complex)):
            raise self.source.error("only real numbers are allowed as constants", node)
        return const(sp.Integer(literal) if literal.isdigit() else sp.Float(literal))

    def _build_Name(self, node: ast.Name) -> Node:
        name = node.id
        if name in self.shapes:
            return var(name, self.shapes[name])
        if name in _CONSTANTS:
            return const(_CONSTANTS[name])
        if name in TENSOR_FUNCTIONS:
            raise self.source.error(f"function '{name}' must be called, e.g. {name}(X)", node)
        if name in self.dims:  # a dimension stands for its size: sum(x) / n
            return const(dim_expr(name))
        check_name(name, self.source.text, self.source.column_of(node))
        return var(name, ())

    def _build_UnaryOp(self, node: ast.UnaryOp) -> Node:
        if isinstance(node.op, ast.USub):
            return neg(self.build(node.operand))
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand)
        raise self.source.error("only unary '+' and '-' are allowed", node)

    def _build_BinOp(self, node: ast.BinOp) -> Node:
        if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            items = flatten_chain(node)
            result = self.build(items[0][1])
            # keyed like flatten_chain's items; only the first item has op None, and it is skipped
            combine: dict[type[ast.operator] | None, Callable[[Node, Node], Node]] = {
                ast.Add: add,
                ast.Sub: sub,
                ast.Mult: mul,
                ast.Div: div,
            }
            for op, operand in items[1:]:
                right = self.build(operand)
                try:
                    result = combine[op](result, right)
                except ShapeMismatch as exc:
                    raise self._shape_error(str(exc), _span(node, operand)) from None
            return result
        if isinstance(node.op, ast.Pow):
            return power(self.build(node.left), self.build(node.right))
        if isinstance(node.op, ast.MatMult):
            return matmul(self.build(node.left), self.build(node.right))
        raise self.source.error(f"operator '{type(node.op).__name__}' is not supported", node)

    def _build_Attribute(self, node: ast.Attribute) -> Node:
        if node.attr != "T":
            raise self.source.error(
                f"only '.T' is allowed after an expression, not '.{node.attr}'", node
            )
        return transpose(self.build(node.value))

    def _build_Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            raise self.source.error("only named functions can be called", node)
        name = canonical(node.func.id, _KNOWN) or node.func.id
        spec = TENSOR_FUNCTIONS.get(name)
        if name == "eye":
            return self._eye(node)
        if name == "heaviside" and len(node.args) == 2 and not node.keywords:
            at_zero = self.build(node.args[1])
            if not is_const(at_zero):
                raise self.source.error("heaviside(u, c): c must be a constant", node.args[1])
            return elementwise("heaviside", self.build(node.args[0]), at_zero.value)
        literal_call = self._LITERAL_CALLS.get(name)
        if literal_call is not None and (name != "transpose" or len(node.args) == 2):
            return literal_call(self, node)
        composite = COMPOSITES.get(name)
        if composite is not None and (spec is None or len(node.args) != spec.arity):
            return self._composite(composite, node)
        if spec is None:
            hint = did_you_mean(name, _KNOWN) or f"known: {', '.join(sorted(_KNOWN))}"
            raise self.source.error(f"unknown function '{name}' ({hint})", node)
        if len(node.args) != spec.arity:
            plural = "s" if spec.arity != 1 else ""
            raise self.source.error(
                f"{name}() takes {spec.arity} argument{plural}, got {len(node.args)}", node
            )
        options: dict[str, int | tuple[int, ...]] = {}
        for keyword_node in node.keywords:
            key = keyword_node.arg
            if key not in spec.keywords:
                allowed = ", ".join(spec.keywords) or "none"
                raise self.source.error(
                    f"{name}() has no keyword '{key}' (allowed: {allowed})", keyword_node.value
                )
            options[key] = (
                self._axes(keyword_node.value)
                if key == "axis"
                else self._integer(keyword_node.value)
            )
        args = [self.build(arg) for arg in node.args]
        if "keepdims" in options:
            options["keepdims"] = bool(options["keepdims"])
        return spec.build(*args, **options)

    def _composite(self, composite: Composite, node: ast.Call) -> Node:
        """log(x, b), max(a, b, ...), logsumexp(a, b, ...), gelu(x) ... from the table."""
        count = len(node.args)
        most = composite.max_args
        if node.keywords or count < composite.min_args or (most is not None and count > most):
            bounds = (
                f"{composite.min_args}"
                if most == composite.min_args
                else (
                    f"at least {composite.min_args}"
                    if most is None
                    else f"{composite.min_args} to {most}"
                )
            )
            raise self.source.error(
                f"{composite.name}() takes {bounds} argument(s) ({composite.doc}), got {count}",
                node,
            )
        return composite.build(tuple(self.build(arg) for arg in node.args), IR_FUNCTIONS)

    def _axes(self, node: ast.AST) -> int | tuple[int, ...]:
        """An axis option: an integer or a tuple of integers, ``axis=(0, 2)``."""
        if isinstance(node, ast.Tuple):
            return tuple(self._integer(item) for item in node.elts)
        return self._integer(node)

    def _arguments(self, node: ast.Call, count: int, usage: str) -> list[ast.expr]:
        if len(node.args) != count or node.keywords:
            raise self.source.error(f"{usage} takes {count} arguments", node)
        return node.args

    def _transpose(self, node: ast.Call) -> Node:
        """transpose(A, (0, 2, 1)): NumPy's axes permutation."""
        first, axes = self._arguments(node, 2, "transpose(A, axes)")
        order = self._axes(axes)
        return permute(self.build(first), order if isinstance(order, tuple) else (order,))

    def _swapaxes(self, node: ast.Call) -> Node:
        """swapaxes(A, i, j)."""
        first, i, j = self._arguments(node, 3, "swapaxes(A, i, j)")
        return swapaxes(self.build(first), self._integer(i), self._integer(j))

    def _shape(self, target: ast.AST, infer: bool = False) -> Shape:
        """A shape literal (b, t, d): whole numbers and declared dimension names (with
        ``infer``, one -1: reshape's inferred size)."""
        items = target.elts if isinstance(target, ast.Tuple) else [target]
        shape: list[int | str] = []
        for item in items:
            if isinstance(item, ast.Name) and item.id in self.dims:
                shape.append(item.id)
            else:
                size = self._integer(item)
                if size < 1 and not (size == -1 and infer):
                    raise self.source.error("a shape needs positive sizes or dimensions", item)
                shape.append(size)
        return tuple(shape)

    def _reshape(self, node: ast.Call) -> Node:
        """reshape(A, (b, t, d)): the same elements, another shape of the same size."""
        first, target = self._arguments(node, 2, "reshape(A, shape)")
        return reshape(self.build(first), self._shape(target, infer=True))

    def _broadcast_to(self, node: ast.Call) -> Node:
        """broadcast_to(A, (b, t, d)): A repeated along stretched axes (printed gradients)."""
        first, target = self._arguments(node, 2, "broadcast_to(A, shape)")
        return broadcast_to(self.build(first), self._shape(target))

    def _einsum(self, node: ast.Call) -> Node:
        """einsum('bij,bjk->bik', A, B)."""
        if len(node.args) < 2 or node.keywords:
            raise self.source.error("einsum takes an index string and operands", node)
        spec = node.args[0]
        if not (isinstance(spec, ast.Constant) and isinstance(spec.value, str)):
            raise self.source.error("einsum's first argument is an index string 'ij,jk->ik'", spec)
        return einsum(spec.value, *(self.build(arg) for arg in node.args[1:]))

    _LITERAL_CALLS: dict[str, Callable[[_TensorBuilder, ast.Call], Node]] = {
        "transpose": _transpose,
        "swapaxes": _swapaxes,
        "reshape": _reshape,
        "einsum": _einsum,
        "broadcast_to": _broadcast_to,
    }

    def _eye(self, node: ast.Call) -> Node:
        if len(node.args) != 1 or node.keywords:
            raise self.source.error("eye() takes one dimension", node)
        arg = node.args[0]
        if isinstance(arg, ast.Name) and arg.id in self.dims:
            return eye(arg.id)
        return eye(self._integer(arg))

    def _integer(self, node: ast.AST) -> int:
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int)
            and not isinstance(node.value, bool)
            and abs(node.value) < 10**6
        ):
            return sign * node.value
        raise self.source.error("expected an integer constant", node)


def _span(parent: ast.BinOp, operand: ast.AST) -> ast.AST:
    """The sub-expression of a chain up to and including ``operand`` (for error messages)."""
    current: ast.AST = parent
    while isinstance(current, ast.BinOp) and current.right is not operand:
        current = current.left
    return current


def parse_tensor(text: str, shapes: Mapping[str, Shape]) -> Node:
    """Parse ``text`` with the declared ``shapes``; undeclared names are scalars.

    Raises ParseError for bad syntax and ShapeError (naming both shapes and the sub-expression)
    when shapes do not fit.
    """
    for name, shape in shapes.items():
        check_name(name)
        dims = {d for d in shape if isinstance(d, str)}
        if dims & set(shapes):
            raise InputError(f"dimension name {sorted(dims & set(shapes))[0]!r} is also a symbol")
    source = parse_tree(text, [*TENSOR_FUNCTIONS, *COMPOSITES, *_SPECIAL], index_strings=True)
    builder = _TensorBuilder(source, shapes)
    try:
        return builder.build(source.tree)
    except RecursionError:
        raise ParseError(f"expression is nested too deeply (limit {MAX_DEPTH})") from None


def is_integer_shape(shape: Shape) -> bool:
    return all(isinstance(d, int) for d in shape)
