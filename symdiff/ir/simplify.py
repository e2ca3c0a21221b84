"""Algebraic tidying of tensor gradients, one elementwise block at a time.

A maximal block of elementwise arithmetic (``+ - * /`` and constant powers) is an ordinary
polynomial-like expression in its *atoms* (everything else: symbols, matrix products,
``sigmoid(z)``, sums...). Each block is handed to SymPy with one real symbol per atom; if
expanding (and then pulling common factors out) gives fewer operations, the shorter form is
rebuilt as tensor nodes. So ``(1 - y) * sigmoid(z) - y * (1 - sigmoid(z))`` becomes
``sigmoid(z) - y``. Elementwise arithmetic commutes with broadcasting, so reordering is safe; a
rewrite that would change the block's shape (a cancelled term that carried a broadcast) is
dropped. Blocks with more than ``MAX_BLOCK`` operations are left alone (time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp

from .nodes import Node, add, const, div, is_const, make_node, mul, power, scale, scaled, walk
from .ops import elementwise

#: Largest block (operations) given to SymPy.
MAX_BLOCK = 40

_ARITHMETIC = frozenset({"add", "mul", "div", "pow"})


def _is_block_op(node: Node) -> bool:
    return node.op in _ARITHMETIC and (node.op != "pow" or is_const(node.args[1]))


class _Block:
    """The SymPy image of one elementwise block; atoms are mapped to fresh real symbols.

    Nodes in ``keep`` are atoms even when they are arithmetic (they are computed anyway).
    """

    def __init__(self, visit: Callable[[Node], Node], keep: frozenset[Node] = frozenset()) -> None:
        self.visit = visit
        self.keep = keep
        self.root: Node | None = None
        self.atoms: dict[Node, sp.Symbol] = {}
        self.nodes: dict[sp.Symbol, Node] = {}

    def to_sympy(self, node: Node) -> sp.Expr:
        if node.op == "const":
            return node.value
        if node.op == "sigmoid" and scaled(node.args[0])[0] == -1:  # sigmoid(-z) = 1 - sigmoid(z)
            return 1 - self.to_sympy(elementwise("sigmoid", scaled(node.args[0])[1]))
        if not _is_block_op(node) or (node in self.keep and node is not self.root):
            atom = self.visit(node)
            if atom not in self.atoms:
                symbol = sp.Symbol(f"a{len(self.atoms)}", real=True)
                self.atoms[atom], self.nodes[symbol] = symbol, atom
            return self.atoms[atom]
        a, b = (self.to_sympy(arg) for arg in node.args)
        return {
            "add": lambda: a + b,
            "mul": lambda: a * b,
            "div": lambda: a / b,
            "pow": lambda: a**b,
        }[node.op]()

    def to_node(self, expr: sp.Expr) -> Node:
        if not expr.free_symbols & set(self.nodes):
            return const(expr)
        if isinstance(expr, sp.Symbol):
            return self.nodes[expr]
        if isinstance(expr, sp.Add):
            terms = sorted(expr.args, key=lambda t: t.could_extract_minus_sign())
            result = self.to_node(terms[0])
            for term in terms[1:]:
                result = add(result, self.to_node(term))
            return result
        if isinstance(expr, sp.Mul):
            coefficient, rest = expr.as_independent(*self.nodes, as_Add=False)
            numerator, denominator = sp.fraction(rest)
            top = _product([self.to_node(f) for f in sp.Mul.make_args(numerator)])
            if denominator != 1:
                top = div(top, _product([self.to_node(f) for f in sp.Mul.make_args(denominator)]))
            return scale(coefficient, top)
        if isinstance(expr, sp.Pow):
            base, exponent = expr.args
            if exponent.is_negative:
                return div(const(1), self.to_node(base**-exponent))
            return power(self.to_node(base), const(exponent))
        raise ValueError(f"unexpected {type(expr).__name__} in an elementwise block")


def _product(factors: list[Node]) -> Node:
    result = factors[0]
    for factor in factors[1:]:
        result = mul(result, factor)
    return result


def tidy(root: Node, keep: frozenset[Node] = frozenset()) -> Node:
    """``root`` with every elementwise block replaced by its shortest found equivalent.

    Nodes in ``keep`` stay whole (atoms of the blocks around them): they are computed anyway.
    """
    return tidy_all([root], keep)[0]


def tidy_all(roots: Sequence[Node], keep: frozenset[Node] = frozenset()) -> list[Node]:
    """``tidy`` of several roots at once: a block they share is simplified once."""
    memo: dict[Node, Node] = {}

    def visit(node: Node) -> Node:
        if node in memo:
            return memo[node]
        if _is_block_op(node):
            result = _tidy_block(node, visit, keep)
        elif node.args:
            args = tuple(visit(a) for a in node.args)
            result = node if args == node.args else make_node(node.op, args, node.attrs, node.shape)
        else:
            result = node
        memo[node] = result
        return result

    order = walk(list(roots))
    size: dict[Node, int] = {}
    for node in order:  # operations in the block under a node, capped
        inner = sum(size.get(a, 0) for a in node.args if _is_block_op(a) and a not in keep)
        size[node] = min(1 + inner, MAX_BLOCK + 1) if _is_block_op(node) else 0
    points = set(roots) | set(keep)
    for node in order:  # a block is simplified from its top: where a non-block or big node uses it
        if not _is_block_op(node) or size[node] > MAX_BLOCK:
            points.update(node.args)
    for node in order:  # children first: no deep recursion
        if not _is_block_op(node) or node in points:
            visit(node)
    return [visit(root) for root in roots]


def _block_operations(node: Node) -> int:
    """How many arithmetic operations the block rooted at ``node`` has (counted iteratively)."""
    count, stack = 0, [node]
    while stack and count <= MAX_BLOCK:
        current = stack.pop()
        if _is_block_op(current):
            count += 1
            stack.extend(current.args)
    return count


def _tidy_block(node: Node, visit: Callable[[Node], Node], keep: frozenset[Node]) -> Node:
    if _block_operations(node) > MAX_BLOCK:
        return _rebuild_args(node, visit)
    block = _Block(visit, keep)
    block.root = node
    expr = block.to_sympy(node)
    rebuilt_original = block.to_node(expr)
    if rebuilt_original.shape != node.shape:
        return _rebuild_args(node, visit)
    original_ops = _block_operations(node)
    best, best_ops = None, original_ops
    expanded, together = sp.expand(expr), sp.together(expr)
    candidates = (expr, expanded, sp.factor_terms(expanded), together, sp.factor_terms(together))
    for candidate in candidates:
        operations = sp.count_ops(candidate)
        if operations < best_ops:
            rebuilt = rebuilt_original if candidate is expr else block.to_node(candidate)
            if rebuilt.shape == node.shape:
                best, best_ops = rebuilt, operations
    return best if best is not None else _rebuild_args(node, visit)


def _rebuild_args(node: Node, visit: Callable[[Node], Node]) -> Node:
    args = tuple(visit(a) for a in node.args)
    return node if args == node.args else make_node(node.op, args, node.attrs, node.shape)


def computed_anyway(root: Node) -> frozenset[Node]:
    """Arithmetic nodes that a non-arithmetic operation needs (``z`` in ``softplus(z)``)."""
    return frozenset(
        arg
        for node in walk(root)
        if not _is_block_op(node)
        for arg in node.args
        if _is_block_op(arg)
    )
