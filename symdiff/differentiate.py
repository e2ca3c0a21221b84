"""The chain-rule walker: look up the rule for a node, apply it once, record a ``Step``."""

from __future__ import annotations

import sympy as sp

from .errors import UnknownFunctionError
from .rules import NODE_RULES
from .steps import Step


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


def derivative_steps(expr: sp.Expr, variables: list[sp.Symbol]) -> tuple[Step, ...]:
    """One top-level Step per differentiation, in order: d/dv_k ... d/dv_1 expr."""
    steps: list[Step] = []
    current = expr
    for variable in variables:
        step = differentiate(current, variable)
        steps.append(step)
        current = step.result
    return tuple(steps)
