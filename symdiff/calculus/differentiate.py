"""The chain-rule walker: look up the rule for a node, apply it once, record a ``Step``."""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from ..errors import SymdiffError, UnknownFunctionError
from .rules import NODE_RULES
from .steps import Step

#: A derivative of a higher order is refused once an intermediate result has this many nodes.
MAX_NODES = 20_000


def differentiate(expr: sp.Expr, wrt: sp.Symbol) -> Step:
    """d(expr)/d(wrt) by symdiff's own rules; ``step.result`` is the derivative (unsimplified).

    A sub-expression free of ``wrt`` is a constant (derivative 0); otherwise the rule registered
    for the node's class (or its nearest base class) applies. A node with no rule raises
    :class:`UnknownFunctionError`, never a silent 0.
    """
    if not expr.has(wrt):
        return Step("constant", expr, wrt, sp.Integer(0))
    for cls in type(expr).__mro__:
        rule = NODE_RULES.get(cls)
        if rule is not None:
            return rule(expr, wrt, differentiate)
    raise UnknownFunctionError(type(expr).__name__)


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
