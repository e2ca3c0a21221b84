"""Reverse mode over a SymPy expression DAG: every adjoint computed once, shared by all inputs.

``reverse_sweep(expr, wrt)`` walks the expression's unique sub-expressions from the output to
the inputs, accumulating dL/d(node) = sum over parents p of dL/dp * dp/d(node). The local
partials dp/d(arg) are data: one small rule per node class in ``PARTIALS`` (one-argument
functions reuse symdiff's derivative table ``rules.OUTER_RULES``). An adjoint used by more than one
child is bound to a symbol, and a long product f1*f2*...*fn gets prefix and suffix products, so
the gradient program grows linearly with the expression (the gradient of x1*x2*...*x80 is not
80 products of 79 factors).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import sympy as sp
from sympy.codegen.numpy_nodes import logaddexp

from .errors import UnknownFunctionError
from .functions import sigmoid
from .rules import OUTER_RULES

PartialRule = Callable[[sp.Expr, int], sp.Expr]

#: Node class -> rule(node, i) giving d node / d node.args[i] in terms of the node's arguments.
PARTIALS: dict[type, PartialRule] = {}

#: Products with more non-constant factors than this use prefix and suffix products.
LONG_PRODUCT = 3


def partial_rule(*classes: type) -> Callable[[PartialRule], PartialRule]:
    """Register ``rule`` as the local partial derivative of the given node classes."""

    def register(rule: PartialRule) -> PartialRule:
        for cls in classes:
            PARTIALS[cls] = rule
        return rule

    return register


@partial_rule(sp.Add)
def _sum_partial(node: sp.Add, index: int) -> sp.Expr:
    """d(a + b)/da = 1."""
    return sp.Integer(1)


@partial_rule(sp.Mul)
def _product_partial(node: sp.Mul, index: int) -> sp.Expr:
    """d(a*b*c)/da = b*c."""
    return sp.Mul(*(node.args[:index] + node.args[index + 1 :]))


@partial_rule(sp.Pow)
def _power_partial(node: sp.Pow, index: int) -> sp.Expr:
    """d(b**e)/db = e*b**(e - 1);  d(b**e)/de = b**e*log(b)."""
    base, exponent = node.args
    if index == 0:
        return exponent * base ** (exponent - 1)
    return node * sp.log(base)


@partial_rule(logaddexp)
def _logaddexp_partial(node: sp.Expr, index: int) -> sp.Expr:
    """d logaddexp(a, b)/da = sigmoid(a - b)  (never overflows, unlike 1/(1 + exp(b - a)))."""
    this, other = node.args[index], node.args[1 - index]
    return sigmoid(this - other)


@partial_rule(sp.Max, sp.Min)
def _extremum_partial(node: sp.Expr, index: int) -> sp.Expr:
    """d max(a, b, ...)/da = H(a - max(b, ...));  min alike with the difference reversed."""
    cls = type(node)
    others = cls(*(node.args[:index] + node.args[index + 1 :]))
    arg = node.args[index]
    return sp.Heaviside(arg - others if cls is sp.Max else others - arg)


@partial_rule(sp.Heaviside)
def _heaviside_partial(node: sp.Expr, index: int) -> sp.Expr:
    """d H(u)/du = DiracDelta(u) (0 almost everywhere)."""
    return sp.DiracDelta(node.args[0])


@partial_rule(sp.Function)
def _function_partial(node: sp.Expr, index: int) -> sp.Expr:
    """f'(u) from symdiff's outer-derivative table; SymPy's own fdiff as a last resort."""
    cls = type(node)
    rule = next((OUTER_RULES[c] for c in cls.__mro__ if c in OUTER_RULES), None)
    if rule is not None and len(node.args) == 1:
        return rule.derivative(node.args[0])
    try:
        return node.fdiff(index + 1)
    except (sp.ArgumentIndexError, AttributeError, NotImplementedError):
        raise UnknownFunctionError(getattr(cls, "__name__", str(cls))) from None


def local_partial(node: sp.Expr, index: int) -> sp.Expr:
    """d node / d node.args[index], by the rule registered for the node's class."""
    for cls in type(node).__mro__:
        rule = PARTIALS.get(cls)
        if rule is not None:
            return rule(node, index)
    raise UnknownFunctionError(type(node).__name__)


@dataclass(frozen=True)
class Statement:
    """``symbol = value``; ``role``: 'adjoint', 'prefix' or 'suffix'; ``node``: what it is about."""

    symbol: sp.Symbol
    value: sp.Expr
    role: str
    node: sp.Expr


@dataclass
class Sweep:
    """The statements of a reverse pass (in evaluation order) and d expr / d wrt_k per input."""

    statements: list[Statement] = field(default_factory=list)
    gradients: tuple[sp.Expr, ...] = ()


def unique_postorder(expr: sp.Expr) -> list[sp.Expr]:
    """Each distinct sub-expression once, every node after all of its arguments (no recursion)."""
    order: list[sp.Expr] = []
    seen: set[sp.Expr] = set()
    stack: list[tuple[sp.Expr, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            if node not in seen:
                seen.add(node)
                order.append(node)
            continue
        if node in seen:
            continue
        stack.append((node, True))
        stack.extend((arg, False) for arg in reversed(node.args) if arg not in seen)
    return order


def _symbols(prefix: str) -> Iterator[sp.Dummy]:
    for index in itertools.count():
        yield sp.Dummy(f"{prefix}{index}", real=True)


def reverse_sweep(expr: sp.Expr, wrt: Sequence[sp.Symbol], *, prefix: str = "rev") -> Sweep:
    """Reverse-mode derivative of ``expr`` by every symbol in ``wrt``, as a shared program."""
    inputs = set(wrt)
    order = unique_postorder(expr)
    depends: dict[sp.Expr, bool] = {}
    for node in order:
        depends[node] = node in inputs or any(depends[a] for a in node.args)
    names = _symbols(f"_{prefix}")
    sweep = Sweep()
    contributions: dict[sp.Expr, list[sp.Expr]] = {expr: [sp.Integer(1)]}
    for node in reversed(order):
        if not depends[node] or node in inputs:
            continue
        adjoint = sp.Add(*contributions.pop(node, []))
        varying = [i for i, a in enumerate(node.args) if depends[a]]
        if len(varying) > 1 and not adjoint.is_Atom:
            symbol = next(names)
            sweep.statements.append(Statement(symbol, adjoint, "adjoint", node))
            adjoint = symbol
        partials = _partials(node, varying, sweep, names)
        for index in varying:
            contributions.setdefault(node.args[index], []).append(adjoint * partials[index])
    sweep.gradients = tuple(sp.Add(*contributions.get(v, [])) for v in wrt)
    return sweep


def _partials(
    node: sp.Expr, varying: list[int], sweep: Sweep, names: Iterator[sp.Dummy]
) -> dict[int, sp.Expr]:
    """Local partials; a long product shares prefix/suffix products instead of n*(n-1) factors."""
    factors = node.args
    if not isinstance(node, sp.Mul) or len(varying) <= LONG_PRODUCT:
        return {i: local_partial(node, i) for i in varying}
    count = len(factors)
    prefix: list[sp.Expr] = [sp.Integer(1), factors[0]]
    for j in range(2, count):
        symbol = next(names)
        sweep.statements.append(Statement(symbol, prefix[-1] * factors[j - 1], "prefix", node))
        prefix.append(symbol)
    suffix: list[sp.Expr] = [sp.Integer(1), factors[-1]]  # suffix[k] = product of the last k
    for k in range(2, count):
        symbol = next(names)
        sweep.statements.append(Statement(symbol, factors[count - k] * suffix[-1], "suffix", node))
        suffix.append(symbol)
    return {i: prefix[i] * suffix[count - 1 - i] for i in varying}


def inline(sweep: Sweep) -> tuple[sp.Expr, ...]:
    """The gradient as explicit expressions (statements substituted; may grow large)."""
    values: dict[sp.Expr, sp.Expr] = {}
    for statement in sweep.statements:
        values[statement.symbol] = statement.value.xreplace(values)
    return tuple(g.xreplace(values) for g in sweep.gradients)
