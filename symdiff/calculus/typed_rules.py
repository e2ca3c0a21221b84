"""The chain-rule walker over the expression as typed (``frontend.parse.typed_tree``): the same
rules as ``rules.py``, but operands in the order and orientation the user wrote them, so that
``y - (w*x + b)`` is differentiated as a difference of ``y`` and ``w*x + b``.

Sums, differences, negations and products follow the typed tree (one rule per kind, in a
table); powers and calls apply the SymPy rule of their value, recursing into the typed operands.
Results are SymPy expressions, as in ``differentiate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import sympy as sp

from ..frontend.parse import TypedNode
from .differentiate import _differentiate, distinct_substitutions
from .rules import NODE_RULES
from .steps import Step

TypedRule = Callable[[TypedNode, sp.Symbol], Step]


def differentiate_typed(node: TypedNode, wrt: sp.Symbol) -> Step:
    """d(node)/d(wrt) by symdiff's rules, each step's expression as typed."""
    taken = {s.name for s in node.value.free_symbols} | {wrt.name}
    return distinct_substitutions(_typed(node, wrt), taken)


def _typed(node: TypedNode, wrt: sp.Symbol) -> Step:
    """One rule application: a constant, or the rule for the node's kind."""
    if not node.value.has(wrt):
        return Step("constant", node.value, wrt, sp.Integer(0), typed=node)
    return TYPED_RULES.get(node.kind, _by_value)(node, wrt)


def _by_value(node: TypedNode, wrt: sp.Symbol) -> Step:
    """The SymPy rule of the node's value, recursing into the typed operands where the rule's
    operand is one of them; a chain's outer step is the typed node with u for the operand."""
    operands = {operand.value: operand for operand in node.operands}

    def recurse(expr: sp.Expr, by: sp.Symbol) -> Step:
        operand = operands.get(expr)
        return _differentiate(expr, by) if operand is None else _typed(operand, by)

    step = _differentiate_value(node.value, wrt, recurse)
    if step.rule == "chain" and step.variable is not None and step.inner in operands:
        inner = operands[step.inner]
        letter = TypedNode("symbol", step.variable, name=step.variable.name)
        outer = replace(step.substeps[0], typed=_substitute(node, inner, letter))
        step = replace(step, substeps=(outer, *step.substeps[1:]))
    return replace(step, typed=node)


def _differentiate_value(
    expr: sp.Expr, wrt: sp.Symbol, recurse: Callable[[sp.Expr, sp.Symbol], Step]
) -> Step:
    """The registered rule for ``expr`` (as ``differentiate`` dispatches) with ``recurse``."""
    for cls in type(expr).__mro__:
        rule = NODE_RULES.get(cls)
        if rule is not None:
            return rule(expr, wrt, recurse)
    return _differentiate(expr, wrt)  # raises UnknownFunctionError


def _substitute(node: TypedNode, old: TypedNode, new: TypedNode) -> TypedNode:
    """``node`` with the operand ``old`` (by identity) replaced by ``new``."""
    if node is old:
        return new
    operands = tuple(_substitute(operand, old, new) for operand in node.operands)
    return replace(node, operands=operands)


def _sum(node: TypedNode, wrt: sp.Symbol) -> Step:
    """(f ± g ± ...)' = f' ± g' ± ...: term by term in typed order, signs kept."""
    substeps = tuple(_typed(operand, wrt) for operand in node.operands)
    signed = [
        -s.result if op == "-" else s.result for s, op in zip(substeps, node.ops, strict=True)
    ]
    return Step("sum", node.value, wrt, sp.Add(*signed), substeps, typed=node)


def _negate(node: TypedNode, wrt: sp.Symbol) -> Step:
    """(-f)' = -1*f': the constant multiple rule with c = -1."""
    sub = _typed(node.operands[0], wrt)
    return Step("constant_multiple", node.value, wrt, -sub.result, (sub,), typed=node)


def product_of(operands: Sequence[TypedNode], ops: Sequence[str]) -> TypedNode:
    """The typed product of some operands of a product (1 in front of a leading ``/``)."""
    if len(operands) == 1 and ops[0] == "*":
        return operands[0]
    items, signs = list(operands), list(ops)
    if signs[0] == "/":
        items.insert(0, TypedNode("number", sp.Integer(1)))
        signs.insert(0, "*")
    value = sp.Mul(
        *(o.value if op == "*" else 1 / o.value for o, op in zip(items, signs, strict=True))
    )
    return TypedNode("product", value, tuple(items), tuple(signs))


def _product(node: TypedNode, wrt: sp.Symbol) -> Step:
    """f*g/h ...: quotient rule when a divisor depends on the variable, else constant multiple
    (the constant operands), else the product rule over the typed factors."""
    pairs = list(zip(node.operands, node.ops, strict=True))
    if any(op == "/" and o.value.has(wrt) for o, op in pairs):
        top = product_of(*_unzip([(o, op) for o, op in pairs if op == "*"]))
        bottom = product_of(*_unzip([(o, "*") for o, op in pairs if op == "/"]))
        f, g = _typed(top, wrt), _typed(bottom, wrt)
        result = (f.result * g.expression - f.expression * g.result) / g.expression**2
        return Step("quotient", node.value, wrt, result, (f, g), typed=node)
    dependent = [(o, op) for o, op in pairs if o.value.has(wrt)]
    if len(dependent) < len(pairs):
        sub = _typed(product_of(*_unzip(dependent)), wrt)
        constant = node.value / sub.expression
        return Step("constant_multiple", node.value, wrt, constant * sub.result, (sub,), typed=node)
    substeps = tuple(_typed(o, wrt) for o in node.operands)
    factors = [o.value for o in node.operands]
    terms = [sp.Mul(*factors[:i], s.result, *factors[i + 1 :]) for i, s in enumerate(substeps)]
    return Step("product", node.value, wrt, sp.Add(*terms), substeps, typed=node)


def _unzip(pairs: list[tuple[TypedNode, str]]) -> tuple[list[TypedNode], list[str]]:
    return [o for o, _ in pairs], [op for _, op in pairs]


#: The rule for each kind of typed node; powers, calls and names use their value's rule.
TYPED_RULES: dict[str, TypedRule] = {"sum": _sum, "negate": _negate, "product": _product}
