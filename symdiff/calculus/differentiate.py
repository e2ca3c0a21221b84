"""The chain-rule walker: look up the rule for a node, apply it once, record a ``Step``."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace

import sympy as sp

from ..errors import SymdiffError, UnknownFunctionError
from ..frontend.parse import TypedNode
from .rules import NODE_RULES
from .steps import Step

#: A derivative of a higher order is refused once an intermediate result has this many nodes.
MAX_NODES = 20_000


def differentiate(expr: sp.Expr, wrt: sp.Symbol) -> Step:
    """d(expr)/d(wrt) by symdiff's own rules; ``step.result`` is the derivative (unsimplified).

    Every chain-rule substitution of the record gets its own letter (u, v, s, ...), none of them
    a name of ``expr``: see :func:`distinct_substitutions`.
    """
    taken = {s.name for s in expr.free_symbols} | {wrt.name}
    return distinct_substitutions(_differentiate(expr, wrt), taken)


def _differentiate(expr: sp.Expr, wrt: sp.Symbol) -> Step:
    """One rule application, recursing into the operands.

    A sub-expression free of ``wrt`` is a constant (derivative 0); otherwise the rule registered
    for the node's class (or its nearest base class) applies. A node with no rule raises
    :class:`UnknownFunctionError`, never a silent 0.
    """
    if not expr.has(wrt):
        return Step("constant", expr, wrt, sp.Integer(0))
    for cls in type(expr).__mro__:
        rule = NODE_RULES.get(cls)
        if rule is not None:
            return rule(expr, wrt, _differentiate)
    raise UnknownFunctionError(type(expr).__name__)


#: Letters for the chain rule's substitutions, in order of use; then u1, u2, ...
SUBSTITUTION_LETTERS = ("u", "v", "w", "s", "t", "r", "q", "p")


def substitution_letters(taken: set[str]) -> Iterator[str]:
    """Fresh names for substitutions: the letters not in ``taken``, then u1, u2, ... likewise."""
    yield from (name for name in SUBSTITUTION_LETTERS if name not in taken)
    yield from (f"u{k}" for k in itertools.count(1) if f"u{k}" not in taken)


def distinct_substitutions(step: Step, taken: set[str]) -> Step:
    """The record with chain-rule variable number k (depth first) renamed to the k-th fresh letter.

    The rules pick ``u`` locally; renaming afterwards (a pure pass) makes nested and sibling
    substitutions distinct and keeps them clear of the user's names.
    """
    letters = substitution_letters(taken)

    def rename(node: Step) -> Step:
        if node.variable is None:
            return replace(node, substeps=tuple(rename(sub) for sub in node.substeps))
        fresh = sp.Symbol(next(letters), real=True)
        swap = {node.variable: fresh}
        outer, *rest = node.substeps
        outer = replace(
            outer,
            expression=outer.expression.xreplace(swap),
            wrt=fresh,
            result=outer.result.xreplace(swap),
            typed=None if outer.typed is None else renamed(outer.typed, swap),
        )
        substeps = (outer, *(rename(sub) for sub in rest))
        derivative = None if node.outer is None else node.outer.xreplace(swap)
        return replace(node, substeps=substeps, variable=fresh, outer=derivative)

    return rename(step)


def renamed(node: TypedNode, swap: dict[sp.Symbol, sp.Symbol]) -> TypedNode:
    """The typed node with its symbols renamed by ``swap`` (values and names alike)."""
    fresh = swap.get(node.value) if node.kind == "symbol" else None
    return replace(
        node,
        value=node.value.xreplace(swap),
        operands=tuple(renamed(operand, swap) for operand in node.operands),
        name=node.name if fresh is None else fresh.name,
    )


def derivative_steps(
    expr: sp.Expr,
    variables: list[sp.Symbol],
    tidy: Callable[[sp.Expr], sp.Expr] | None = None,
) -> tuple[Step, ...]:
    """One top-level Step per differentiation, in order: d/dv_k ... d/dv_1 expr.

    ``tidy`` (e.g. a budgeted simplify) is applied between differentiations, so that high
    orders differentiate a simplified form instead of a raw one that grows exponentially.
    """
    steps: list[Step] = []
    current = expr
    for index, variable in enumerate(variables):
        if index > 0 and tidy is not None:
            current = tidy(current)
        step = differentiate(current, variable)
        steps.append(step)
        current = step.result
        if index + 1 < len(variables) and exceeds_size(current, MAX_NODES):
            raise SymdiffError(
                f"the derivative grew past {MAX_NODES:,} nodes after {index + 1} "
                f"differentiation{'s' if index else ''}; ask for a lower order"
            )
    return tuple(steps)


def exceeds_size(expr: sp.Expr, limit: int) -> bool:
    """Whether the expression tree has more than ``limit`` nodes (stops counting at the limit)."""
    stack, seen = [expr], 0
    while stack:
        seen += 1
        if seen > limit:
            return True
        stack.extend(stack.pop().args)
    return False
