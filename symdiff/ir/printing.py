"""Printing tensor expressions: text in symdiff's own input syntax (so a printed gradient can be
parsed back), LaTeX (Xᵀ as ``X^{\\top}``, the Hadamard product as ``\\odot``), names for shared
sub-expressions (``Z1 = X @ W1 + b1``) and the ``symdiff grad --shape`` report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp

from ..checks import deep_recursion
from ..errors import SymdiffError
from ..text import formula, shortest_decimal
from .nodes import Node, const, format_shape, is_const, scale, scaled, walk

ADD, MUL, NEG, POW, POSTFIX, ATOM = 10, 20, 30, 40, 50, 60

Printed = tuple[str, int]


def _number(value: sp.Expr) -> tuple[sp.Expr, str]:
    """A constant and its text (``symdiff.text.formula``: floats as their shortest float64
    decimal, 0.2 not 0.200000000000000); in the returned constant each float is a symbol named
    by that decimal, so SymPy's LaTeX writes it the same way."""
    floats = value.atoms(sp.Float)
    text = formula(value)
    if floats:
        value = value.xreplace(
            {f: sp.sign(f) * sp.Symbol(shortest_decimal(abs(float(f)))) for f in floats}
        )
    return value, text


def _number_precedence(value: sp.Expr, text: str) -> int:
    if text.startswith("-"):
        return NEG
    if isinstance(value, sp.Add):
        return ADD
    if isinstance(value, sp.Pow):
        return POW
    if isinstance(value, (sp.Mul, sp.Rational)) and not value.is_Integer:
        return MUL
    return ATOM


class TextPrinter:
    """Prints a node in symdiff's input syntax; ``names`` replaces shared nodes by a name."""

    def __init__(self, names: Mapping[Node, str] | None = None) -> None:
        self.names = dict(names or {})

    # -- entry points
    def __call__(self, node: Node) -> str:
        try:
            with deep_recursion(20_000):
                return self.visit(node, top=True)[0]
        except RecursionError:
            raise SymdiffError("the expression is nested too deeply to print") from None

    def visit(self, node: Node, top: bool = False) -> Printed:
        if not top and node in self.names:
            return self.symbol(self.names[node]), ATOM
        c, x = scaled(node)
        if c != 1:
            return self.scale(c, x)
        return getattr(self, f"op_{node.op}")(node)

    def wrap(self, node: Node, minimum: int, strict: bool = False) -> str:
        text, precedence = self.visit(node)
        if precedence < minimum or (strict and precedence == minimum):
            return self.parens(text)
        return text

    # -- tokens (overridden by the LaTeX printer)
    def parens(self, text: str) -> str:
        return f"({text})"

    def symbol(self, name: str) -> str:
        return name

    def call(self, name: str, args: Sequence[str], options: Sequence[str] = ()) -> str:
        return f"{name}({', '.join([*args, *options])})"

    # -- leaves
    def op_var(self, node: Node) -> Printed:
        return self.symbol(node.name), ATOM

    def op_const(self, node: Node) -> Printed:
        value, text = _number(node.value)
        return text, _number_precedence(value, text)

    def op_eye(self, node: Node) -> Printed:
        return self.call("eye", [str(node.attrs[0])]), ATOM

    # -- arithmetic
    def scale(self, c: sp.Expr, x: Node) -> Printed:
        numerator, denominator = sp.fraction(c)
        if c == -1:
            return "-" + self.wrap(x, MUL), NEG
        if abs(numerator) == 1 and denominator != 1:
            sign = "-" if numerator == -1 else ""
            return (
                f"{sign}{self.wrap(x, MUL)} / {self.wrap(const_node(denominator), MUL, True)}",
                MUL,
            )
        return f"{self.wrap(const_node(c), MUL)} * {self.wrap(x, MUL)}", MUL

    def op_add(self, node: Node) -> Printed:
        terms = _flatten_add(node, self.names)
        parts = [self.wrap(terms[0], ADD)]
        for term in terms[1:]:
            c, x = scaled(term)
            if c.is_number and c < 0:
                positive = x if c == -1 else _scaled_node(-c, x)
                parts.append(f"- {self.wrap(positive, ADD, True)}")
            elif is_const(term) and term.value.is_number and term.value < 0:
                parts.append(f"- {self.visit(const_node(-term.value))[0]}")
            else:
                parts.append(f"+ {self.wrap(term, ADD, True)}")
        return " ".join(parts), ADD

    def product_operand(self, node: Node, parent: str, right: bool) -> str:
        """Parenthesise mixed elementwise/matrix products for the reader, not the parser."""
        mixed = (parent == "matmul" and node.op in ("mul", "div") and scaled(node)[0] == 1) or (
            parent != "matmul" and node.op == "matmul"
        )
        if mixed and node not in self.names:
            return self.parens(self.visit(node)[0])
        return self.wrap(node, MUL, strict=right)

    def product(self, node: Node, operator: str) -> Printed:
        """``a <operator> b`` for the products * / @ (all at one, left-associative level).

        A left-leaning chain of the same product (x1 * x2 * ... * x2000) is printed in a loop.
        """
        operands = [node.args[1]]
        current = node.args[0]
        while current.op == node.op and current not in self.names and scaled(current)[0] == 1:
            operands.append(current.args[1])
            current = current.args[0]
        parts = [self.product_operand(current, node.op, False)]
        for operand in reversed(operands):
            parts += [operator, self.product_operand(operand, node.op, True)]
        return " ".join(part for part in parts if part), MUL

    def op_mul(self, node: Node) -> Printed:
        return self.product(node, "*")

    def op_div(self, node: Node) -> Printed:
        return self.product(node, "/")

    def op_matmul(self, node: Node) -> Printed:
        return self.product(node, "@")

    def op_pow(self, node: Node) -> Printed:
        a, b = node.args
        return f"{self.wrap(a, POW, True)}**{self.wrap(b, POW)}", POW

    def op_transpose(self, node: Node) -> Printed:
        return f"{self.wrap(node.args[0], POSTFIX)}.T", POSTFIX

    # -- functions
    def function(self, node: Node, name: str, options: Sequence[str] = ()) -> Printed:
        return self.call(name, [self.visit(a)[0] for a in node.args], options), ATOM

    def axis_options(self, node: Node, default: int | None) -> list[str]:
        axis = node.attrs[0]
        options = [] if axis == default else [f"axis={axis}"]
        if len(node.attrs) > 1 and node.attrs[1]:
            options.append("keepdims=1")
        return options

    def op_sum(self, node: Node) -> Printed:
        return self.function(node, "sum", self.axis_options(node, None))

    def op_logsumexp(self, node: Node) -> Printed:
        return self.function(node, "logsumexp", self.axis_options(node, None))

    def op_softmax(self, node: Node) -> Printed:
        return self.function(node, "softmax", self.axis_options(node, node.ndim - 1))

    def op_log_softmax(self, node: Node) -> Printed:
        return self.function(node, "log_softmax", self.axis_options(node, node.ndim - 1))

    def op_expand_dims(self, node: Node) -> Printed:
        return self.function(node, "expand_dims", [f"axis={node.attrs[0]}"])

    def op_amax(self, node: Node) -> Printed:
        return self.function(node, "max", self.axis_options(node, None))

    def op_permute(self, node: Node) -> Printed:
        """swapaxes(A, i, j) for one exchange of axes, else transpose(A, (k, ...))."""
        (axes,) = node.attrs
        moved = [i for i, axis in enumerate(axes) if axis != i]
        if len(moved) == 2:
            return self.function(node, "swapaxes", [str(m) for m in moved])
        return self.function(node, "transpose", ["(" + ", ".join(map(str, axes)) + ")"])

    def op_reshape(self, node: Node) -> Printed:
        return self.function(node, "reshape", [format_shape(node.shape)])

    def op_einsum(self, node: Node) -> Printed:
        spec = "'" + node.attrs[0] + "'"
        return self.call("einsum", [spec, *(self.visit(a)[0] for a in node.args)]), ATOM

    def op_broadcast_to(self, node: Node) -> Printed:
        """broadcast_to(A, (n, 4)): A repeated to the shape (n, 4), as NumPy writes it."""
        inner = self.visit(node.args[0])[0]
        return self.call("broadcast_to", [inner, format_shape(node.shape)]), ATOM

    def op_heaviside(self, node: Node) -> Printed:
        """heaviside(u) is 0 at u = 0; another value at 0 is written heaviside(u, 1/2)."""
        (at_zero,) = node.attrs or (0,)
        options = [] if at_zero == 0 else [str(at_zero)]
        return self.function(node, "heaviside", options)

    def op_softmax_cross_entropy(self, node: Node) -> Printed:
        targets, logits = (self.visit(a)[0] for a in node.args)
        return self.call("cross_entropy", [targets, self.call("softmax", [logits])]), ATOM

    def __getattr__(self, name: str) -> Any:
        if name.startswith("op_"):  # elementwise functions, trace, outer: plain calls
            op = name[3:]
            return lambda node: self.function(node, op)
        raise AttributeError(name)


class LatexPrinter(TextPrinter):
    """LaTeX: Xᵀ as X^{\\top}, matrix products by juxtaposition, ⊙ for elementwise products."""

    FUNCTION_NAMES = {"exp": r"\exp", "log": r"\log", "tanh": r"\tanh", "sum": r"\sum"}

    def parens(self, text: str) -> str:
        return rf"\left({text}\right)"

    def symbol(self, name: str) -> str:
        return sp.latex(sp.Symbol(name))

    def call(self, name: str, args: Sequence[str], options: Sequence[str] = ()) -> str:
        escaped = name.replace("_", r"\_")
        head = self.FUNCTION_NAMES.get(name, rf"\operatorname{{{escaped}}}")
        if options:
            head += "_{" + r",\,".join(r"\text{" + o.replace("=", " ") + "}" for o in options) + "}"
        return head + self.parens(", ".join(args))

    def op_eye(self, node: Node) -> Printed:
        return f"I_{{{node.attrs[0]}}}", ATOM

    def op_const(self, node: Node) -> Printed:
        value, text = _number(node.value)
        return sp.latex(value), _number_precedence(value, text)

    def scale(self, c: sp.Expr, x: Node) -> Printed:
        if c == -1:
            return "-" + self.wrap(x, MUL), NEG
        coefficient = sp.latex(c) if not isinstance(c, sp.Add) else self.parens(sp.latex(c))
        return f"{coefficient} {self.wrap(x, MUL)}", MUL

    def op_mul(self, node: Node) -> Printed:
        a, b = node.args
        return self.product(node, r"\odot" if a.ndim and b.ndim else r"\cdot")

    def op_div(self, node: Node) -> Printed:
        a, b = node.args
        return rf"\frac{{{self.visit(a)[0]}}}{{{self.visit(b)[0]}}}", ATOM

    def op_matmul(self, node: Node) -> Printed:
        return self.product(node, "")  # juxtaposition

    def op_pow(self, node: Node) -> Printed:
        a, b = node.args
        return f"{{{self.wrap(a, POSTFIX)}}}^{{{self.visit(b)[0]}}}", POW

    def op_transpose(self, node: Node) -> Printed:
        return f"{{{self.wrap(node.args[0], POSTFIX)}}}^{{\\top}}", POSTFIX

    def op_sqrt(self, node: Node) -> Printed:
        return rf"\sqrt{{{self.visit(node.args[0])[0]}}}", ATOM

    def op_abs(self, node: Node) -> Printed:
        return rf"\left|{self.visit(node.args[0])[0]}\right|", ATOM

    def op_broadcast_to(self, node: Node) -> Printed:
        return self.visit(node.args[0])[0] + r"\,\mathbf{1}", MUL


def const_node(value: sp.Expr) -> Node:
    return const(value)


def _scaled_node(c: sp.Expr, x: Node) -> Node:
    return scale(c, x)


def _flatten_add(node: Node, names: Mapping[Node, str]) -> list[Node]:
    terms: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.op == "add" and (current is node or current not in names):
            stack.extend(reversed(current.args))
        else:
            terms.append(current)
    return terms


#: Largest tree (nodes counted with repetition) printed without shared names.
MAX_EXPANDED = 5_000


def tree_size(root: Node) -> int:
    """Number of nodes of ``root`` written out as a tree (shared nodes counted each time)."""
    sizes: dict[Node, int] = {}
    for node in walk(root):
        sizes[node] = min(1 + sum(sizes[a] for a in node.args), 10 * MAX_EXPANDED)
    return sizes[root]


def to_text(node: Node, names: Mapping[Node, str] | None = None) -> str:
    """The node in symdiff's input syntax (parseable back with the same shapes)."""
    return TextPrinter(names)(node)


def to_latex(node: Node, names: Mapping[Node, str] | None = None) -> str:
    return LatexPrinter(names)(node)


# --------------------------------------------------------------------------- shared names

_UNNAMED = frozenset(
    {"var", "const", "eye", "transpose", "permute", "reshape", "broadcast_to", "expand_dims"}
    | {"heaviside", "sign"}
)
_LETTERS = {"add": "Z", "matmul": "Z", "softmax": "P", "log_softmax": "P"}
_ACTIVATIONS = frozenset({"relu", "sigmoid", "tanh", "softplus", "exp"})


def shared_names(
    forward: Node,
    roots: Sequence[Node],
    adjoints: Mapping[Node, Node] | None = None,
    taken: frozenset[str] = frozenset(),
    preactivations: bool = False,
) -> dict[Node, str]:
    """Names for the sub-expressions the ``roots`` share (Z1 = X @ W1 + b1, H1 = relu(Z1), ...).

    With ``preactivations``, the argument of every activation or softmax is named too
    (``softmax(Z2) - Y`` reads better than the whole layer inline).

    A forward node is named by its kind (Z for pre-activations, H for activations, P for
    softmax, T otherwise); a shared gradient node that is the adjoint of a named node is
    ``d`` + that name, any other shared gradient node G1, G2, ...
    """
    parents: dict[Node, set[int]] = {}
    for index, root in enumerate(roots):
        parents.setdefault(root, set()).add(-1 - index)
        for node in walk(root):
            for arg in node.args:
                parents.setdefault(arg, set()).add(id(node))
    forward_nodes = set(walk(forward))
    adjoint_of = {g: f for f, g in (adjoints or {}).items()}
    squashing = _ACTIVATIONS | {"softmax", "log_softmax", "heaviside", "softmax_cross_entropy"}
    inputs_of_activations = {
        arg
        for node in walk(list(roots))
        if preactivations and node.op in squashing
        for arg in node.args
        if arg.op in ("add", "matmul") and arg in forward_nodes
    }
    names: dict[Node, str] = {}
    counters: dict[str, int] = {}
    used = set(taken)

    def fresh(letter: str) -> str:
        while True:
            counters[letter] = counters.get(letter, 0) + 1
            candidate = f"{letter}{counters[letter]}"
            if candidate not in used:
                used.add(candidate)
                return candidate

    for node in walk(list(roots)):
        shared = len(parents.get(node, ())) >= 2 or node in inputs_of_activations
        if node.op in _UNNAMED or not shared or scaled(node)[0] != 1:
            continue
        if node in forward_nodes:
            letter = "H" if node.op in _ACTIVATIONS else _LETTERS.get(node.op, "T")
            names[node] = fresh(letter)
        elif node in adjoint_of and adjoint_of[node] in names:
            candidate = "d" + names[adjoint_of[node]]
            names[node] = candidate if candidate not in used else fresh("G")
            used.add(candidate)
        else:
            names[node] = fresh("G")
    return names
