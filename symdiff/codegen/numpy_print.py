"""NumPy source for IR nodes: the one printer every generated module uses.

Operators print as NumPy expressions with Python precedence; every primitive prints with the
lowering of the primitives table (its stable form); structural operations (sum, matmul,
logsumexp, ...) have a method each. The printer is strict: an operation it has no method or
lowering for raises :class:`NoLowering` while the module is generated, never a NameError inside
it. ``helpers`` collects the template helpers the printed code calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import sympy as sp

from ..ir.from_sympy import NoLowering
from ..ir.nodes import Node, const
from ..ir.printing import ATOM, MUL, NEG, POSTFIX, Printed, TextPrinter
from ..primitives import PRIMITIVES

#: A NumPy function named in a lowering of the primitives table (``np.log1p``, ``np.linalg.det``).
NUMPY_NAME = re.compile(r"\bnp\.([a-z_][a-z_0-9]*(?:\.[a-z_][a-z_0-9]*)?)")

#: Helpers of the template a structural operation needs (primitives name theirs in the table).
STRUCTURAL_HELPERS = {"logsumexp": "_logsumexp", "logdet": "_logdet"}


class NumpyPrinter(TextPrinter):
    """NumPy code for a node; shared nodes print as their temporary's name.

    ``dims`` maps a symbolic dimension to the code that holds its size (a local variable).
    """

    def __init__(self, names: Mapping[Node, str] | None = None) -> None:
        super().__init__(names)
        self.helpers: set[str] = set()

    def fn(self, name: str) -> str:
        """The code of the NumPy function ``name`` (``sum``, ``linalg.det``)."""
        return f"np.{name}"

    def block(self, array: str, start: str, size: str) -> str:
        """One block of BLOCK samples of a flat data array, starting at ``start``."""
        return f"{array}[{start} : {start} + BLOCK]"

    def __getattr__(self, name: str) -> Callable[[Node], Printed]:
        if name.startswith("op_"):
            op = name[3:]
            row = PRIMITIVES.get(op)
            if row is None:
                raise NoLowering(f"generated code cannot compute the operation '{op}'")
            lowering, helper = row.numpy, row.helper
            if lowering is None:
                raise NoLowering(
                    f"'{op}' has no NumPy equivalent, and generated modules use only NumPy "
                    "(symdiff can still differentiate and print it)"
                )
            return lambda node: self.primitive(node, lowering, helper)
        raise AttributeError(name)

    def primitive(self, node: Node, lowering: str, helper: str | None) -> Printed:
        if helper is not None:
            self.helpers.add(helper)
        code = NUMPY_NAME.sub(lambda match: self.fn(match[1]), lowering)
        return code.format(*(self.visit(a)[0] for a in node.args)), ATOM

    def product_operand(self, node: Node, parent: str, right: bool) -> str:
        """A step factor G * heaviside(u) prints as the comparison (u > 0): a 0/1 mask that
        NumPy multiplies 5x faster than np.heaviside computes it."""
        if parent == "mul" and _is_mask(node) and node not in self.names:
            return f"({self.wrap(node.args[0], MUL)} > 0)"
        return super().product_operand(node, parent, right)

    def op_mul(self, node: Node) -> Printed:
        if all(_is_mask(a) for a in node.args):  # a product of two masks stays arithmetic
            return (
                f"{self.op_heaviside(node.args[0])[0]} * {self.op_heaviside(node.args[1])[0]}",
                MUL,
            )
        return super().op_mul(node)

    def op_heaviside(self, node: Node) -> Printed:
        (at_zero,) = node.attrs or (0,)
        return f"{self.fn('heaviside')}({self.visit(node.args[0])[0]}, {float(at_zero)!r})", ATOM

    def scale(self, c: sp.Expr, x: Node) -> Printed:
        numerator, denominator = sp.fraction(c)
        inner, precedence = self.visit(x)
        if precedence < POSTFIX and not (precedence == MUL and c != -1):
            inner = f"({inner})"
        if c == -1:
            return f"-{inner}", NEG
        if abs(numerator) == 1 and denominator != 1:
            sign = "-" if numerator == -1 else ""
            return f"{sign}{inner} / {self.number(denominator, strict=True)}", MUL
        return f"{self.number(c)} * {inner}", MUL

    def number(self, value: sp.Expr, strict: bool = False) -> str:
        text, precedence = self.op_const(const(value))
        return f"({text})" if precedence < MUL or (strict and precedence == MUL) else text

    def op_const(self, node: Node) -> Printed:
        """Numbers as float literals; sizes such as n/2 or log(2)/n as arithmetic on dimensions."""
        value = node.value
        if not value.free_symbols:
            if value.is_Rational:
                return super().op_const(node)
            number = float(value)
            return repr(number), ATOM if number >= 0 else NEG
        coefficient, sizes = value.as_independent(*value.free_symbols, as_Add=False)
        if isinstance(sizes, sp.Add) or not sizes.free_symbols:
            raise NoLowering(f"internal error: cannot print the constant {value}")
        numerator, denominator = sp.fraction(sizes)
        text = str(numerator) if coefficient == 1 else f"{self.number(coefficient)} * {numerator}"
        if numerator == 1 and coefficient != 1:
            text = self.number(coefficient)
        if denominator != 1:
            bottom = str(denominator)
            bottom = bottom if denominator.is_Symbol else f"({bottom})"
            return f"{text} / {bottom}", MUL
        return text, MUL if not numerator.is_Symbol or coefficient != 1 else ATOM

    def op_sum(self, node: Node) -> Printed:
        axis, keepdims = node.attrs
        options = [] if axis is None else [f"axis={axis}"]
        options += ["keepdims=True"] if keepdims else []
        return self.call(self.fn("sum"), [self.visit(node.args[0])[0]], options), ATOM

    def op_logsumexp(self, node: Node) -> Printed:
        axis, keepdims = node.attrs
        self.helpers.add("_logsumexp")
        return self.call(
            "_logsumexp", [self.visit(node.args[0])[0]], [f"axis={axis}", f"keepdims={keepdims}"]
        ), ATOM

    def op_expand_dims(self, node: Node) -> Printed:
        return f"{self.fn('expand_dims')}({self.visit(node.args[0])[0]}, {node.attrs[0]})", ATOM

    def op_broadcast_to(self, node: Node) -> Printed:
        shape = "(" + "".join(f"{d}, " for d in node.shape) + ")"
        return f"{self.fn('broadcast_to')}({self.visit(node.args[0])[0]}, {shape})", ATOM

    def op_eye(self, node: Node) -> Printed:
        return f"{self.fn('eye')}({node.attrs[0]})", ATOM

    def op_amax(self, node: Node) -> Printed:
        axis, keepdims = node.attrs
        options = [] if axis is None else [f"axis={axis}"]
        options += ["keepdims=True"] if keepdims else []
        return self.call(self.fn("max"), [self.visit(node.args[0])[0]], options), ATOM

    def op_permute(self, node: Node) -> Printed:
        return self.call(
            self.fn("transpose"), [self.visit(node.args[0])[0], str(node.attrs[0])]
        ), ATOM

    def op_reshape(self, node: Node) -> Printed:
        shape = "(" + "".join(f"{d}, " for d in node.shape) + ")"
        return self.call(self.fn("reshape"), [self.visit(node.args[0])[0], shape]), ATOM

    def op_einsum(self, node: Node) -> Printed:
        """numpy.einsum with optimize=True: pairs contract through BLAS (tensordot)."""
        operands = [self.visit(a)[0] for a in node.args]
        return self.call(
            self.fn("einsum"), [repr(node.attrs[0]), *operands], ["optimize=True"]
        ), ATOM

    def op_outer(self, node: Node) -> Printed:
        return self.call(self.fn("outer"), [self.visit(a)[0] for a in node.args]), ATOM

    def op_trace(self, node: Node) -> Printed:
        return self.call(self.fn("trace"), [self.visit(node.args[0])[0]]), ATOM

    # -- linear algebra (symdiff.ir.linalg); products with inv are solves after lowering
    def op_det(self, node: Node) -> Printed:
        return self.call(self.fn("linalg.det"), [self.visit(node.args[0])[0]]), ATOM

    def op_logdet(self, node: Node) -> Printed:
        self.helpers.add("_logdet")
        return self.call("_logdet", [self.visit(node.args[0])[0]]), ATOM

    def op_inv(self, node: Node) -> Printed:
        return self.call(self.fn("linalg.inv"), [self.visit(node.args[0])[0]]), ATOM

    def op_solve(self, node: Node) -> Printed:
        return self.call(self.fn("linalg.solve"), [self.visit(a)[0] for a in node.args]), ATOM

    def op_diag(self, node: Node) -> Printed:
        return self.call(self.fn("diag"), [self.visit(node.args[0])[0]]), ATOM

    def op_norm1(self, node: Node) -> Printed:
        return f"{self.fn('sum')}({self.fn('abs')}({self.visit(node.args[0])[0]}))", ATOM

    def op_frobenius(self, node: Node) -> Printed:
        inner = self.visit(node.args[0])[0]
        return f"{self.fn('sqrt')}({self.fn('sum')}({self.fn('square')}({inner})))", ATOM

    def op_kron(self, node: Node) -> Printed:
        return self.call(self.fn("kron"), [self.visit(a)[0] for a in node.args]), ATOM

    def op_softmax(self, node: Node) -> Printed:
        raise NoLowering("internal error: softmax must be lowered before printing")

    op_log_softmax = op_softmax
    op_softmax_cross_entropy = op_softmax

    def dot(self, a: Node, b: Node) -> str:
        """sum(a * b) over two vectors in one pass, without the product array."""
        return self.call(self.fn("dot"), [self.visit(a)[0], self.visit(b)[0]])


def _is_mask(node: Node) -> bool:
    """heaviside(u) with value 0 at 0: the mask u > 0."""
    return node.op == "heaviside" and (node.attrs or (0,))[0] == 0


def print_numpy(node: Node, names: Mapping[Node, str] | None = None) -> str:
    """One node as NumPy source."""
    return NumpyPrinter(names)(node)


def format_names(names: Sequence[str]) -> str:
    """``(a, b)`` / ``(a,)`` as code."""
    return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"
