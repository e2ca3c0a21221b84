"""Array API source for IR nodes: the NumPy printer with the standard's names and formulations.

Generated array-API modules call ``xp``, the namespace ``array_api_compat.array_namespace`` finds
for the caller's arrays (NumPy, PyTorch, CuPy, JAX, array-api-strict). Every NumPy name the
printer emits goes through ``ARRAY_API_NAMES`` (one table, keyed by the NumPy name); the few
operations the standard lacks are printed as standard formulations by a method each: heaviside
as a comparison cast to float64, outer and kron by broadcasting, einsum as a broadcast product
summed over its contracted indices, diag through ``eye``/``linalg.diagonal``. Arrays a module
creates (``eye``, ``full``) are float64 on the data's device (the local ``device``).
"""

from __future__ import annotations

from ..ir.from_sympy import NoLowering
from ..ir.nodes import Node
from ..ir.printing import ATOM, MUL, POSTFIX, Printed
from .numpy_print import NumpyPrinter, _is_mask

#: NumPy name -> the array API standard's name (names not listed are the same in both).
#: ``None``: the standard has no such function; the printer formulates it (see its methods).
ARRAY_API_NAMES: dict[str, str | None] = {
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "power": "pow",
    "transpose": "permute_dims",
    "concatenate": "concat",
    "trace": "linalg.trace",
    "outer": "linalg.outer",
    "dot": "vecdot",
    "heaviside": None,
    "einsum": None,
    "kron": None,
    "diag": None,
    "column_stack": None,
}

#: float64 arrays on the data's device (the generated functions' locals ``xp`` and ``device``).
FLOAT64 = "dtype=xp.float64, device=device"


class ArrayApiPrinter(NumpyPrinter):
    """Code for the array API standard: ``xp.``-prefixed standard names, no NumPy-only calls."""

    def fn(self, name: str) -> str:
        """``xp.`` and the standard's name for the NumPy function ``name``."""
        standard = ARRAY_API_NAMES.get(name, name)
        if standard is None:
            raise NoLowering(f"internal error: '{name}' is not in the array API standard")
        return f"xp.{standard}"

    def block(self, array: str, start: str, size: str) -> str:
        """A slice must end inside the array in the standard (array-api-strict checks)."""
        return f"{array}[{start} : min({start} + BLOCK, {size})]"

    def product_operand(self, node: Node, parent: str, right: bool) -> str:
        """G * heaviside(u) multiplies by the mask (u > 0) cast to float64: the standard does
        not promote booleans in arithmetic."""
        if parent == "mul" and _is_mask(node) and node not in self.names:
            return self.op_heaviside(node)[0]
        return super().product_operand(node, parent, right)

    def op_heaviside(self, node: Node) -> Printed:
        """heaviside(u, a) = where(u == 0, a, float(u > 0))."""
        (at_zero,) = node.attrs or (0,)
        u = self.wrap(node.args[0], MUL)
        step = f"xp.astype({u} > 0, xp.float64)"
        if float(at_zero) == 0.0:
            return step, ATOM
        return f"xp.where({u} == 0, {float(at_zero)!r}, {step})", ATOM

    def op_eye(self, node: Node) -> Printed:
        return f"xp.eye({node.attrs[0]}, {FLOAT64})", ATOM

    def op_broadcast_to(self, node: Node) -> Printed:
        """A constant broadcast is ``xp.full`` (the standard broadcasts arrays, not numbers)."""
        (x,) = node.args
        if x.op == "const" and x not in self.names:
            shape = "(" + "".join(f"{d}, " for d in node.shape) + ")"
            return f"xp.full({shape}, {self.visit(x)[0]}, {FLOAT64})", ATOM
        return super().op_broadcast_to(node)

    def op_outer(self, node: Node) -> Printed:
        """outer(a, b) = a[:, None] * b."""
        a, b = node.args
        return f"{self.wrap(a, POSTFIX)}[:, None] * {self.wrap(b, MUL, True)}", MUL

    def op_diag(self, node: Node) -> Printed:
        """diag(v) = v[:, None] * eye(n); diag(A) = linalg.diagonal(A)."""
        (a,) = node.args
        if a.ndim == 2:
            return self.call("xp.linalg.diagonal", [self.visit(a)[0]]), ATOM
        eye = f"xp.eye({node.shape[0]}, {FLOAT64})"
        return f"{self.wrap(a, POSTFIX)}[:, None] * {eye}", MUL

    def op_kron(self, node: Node) -> Printed:
        """kron(A, B) = reshape(A[:, None, :, None] * B[None, :, None, :], (m*p, n*q))."""
        a, b = node.args
        left, right = self.wrap(a, POSTFIX), self.wrap(b, POSTFIX)
        product = f"{left}[:, None, :, None] * {right}[None, :, None, :]"
        rows, columns = node.shape
        return self.call("xp.reshape", [product, f"({rows}, {columns})"]), ATOM

    def op_einsum(self, node: Node) -> Printed:
        """einsum without einsum: each operand's axes are permuted into one order of all the
        indices (size-1 axes for those it lacks), the operands multiplied by broadcasting, the
        contracted indices summed, the result permuted into the output's order."""
        inputs, output = node.attrs[0].split("->")
        letters = [
            *output,
            *sorted({c for group in inputs.split(",") for c in group} - set(output)),
        ]
        factors = []
        for group, operand in zip(inputs.split(","), node.args, strict=True):
            code = self.wrap(operand, POSTFIX)
            order = sorted(range(len(group)), key=lambda i: letters.index(group[i]))
            if order != list(range(len(group))):
                code = self.call("xp.permute_dims", [code, str(tuple(order))])
            present = sorted(group, key=letters.index)
            if present != letters:
                index = ", ".join(":" if c in group else "None" for c in letters)
                code = f"{code}[{index}]"
            factors.append(code)
        product = " * ".join(factors)
        contracted = tuple(range(len(output), len(letters)))
        if not contracted:
            return (product, MUL) if len(factors) > 1 else (factors[0], POSTFIX)
        return self.call("xp.sum", [product], [f"axis={contracted}"]), ATOM

    def dot(self, a: Node, b: Node) -> str:
        """sum(a * b) over two vectors: ``xp.vecdot``."""
        return self.call("xp.vecdot", [self.visit(a)[0], self.visit(b)[0]])
