"""The derivative rules, as data: one small function per node type, registered by a decorator.

Two tables:

- ``NODE_RULES`` maps a SymPy node class (Add, Mul, Pow, Function, ...) to a function
  ``rule(expr, wrt, recurse) -> Step`` that applies one rule and recurses into the operands;
- ``OUTER_RULES`` maps a one-argument function class (exp, sin, sigmoid, ...) to its outer
  derivative f'(u); the chain rule combines it with the inner derivative.

``RULE_FORMULAS`` names every rule with its formula (``symdiff steps --list-rules``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from ..errors import UnknownFunctionError
from ..primitives import PRIMITIVES, sympy_derivative
from .steps import Step

Recurse = Callable[[sp.Expr, sp.Symbol], Step]
NodeRule = Callable[[sp.Expr, sp.Symbol, Recurse], Step]

NODE_RULES: dict[type, NodeRule] = {}
RULE_FORMULAS: dict[str, str] = {
    "constant": "d/dx c = 0",
    "identity": "d/dx x = 1",
    "sum": "(f + g)' = f' + g'",
    "constant_multiple": "(c*f)' = c*f'",
    "product": "(f*g)' = f'*g + f*g'",
    "quotient": "(f/g)' = (f'*g - f*g')/g**2",
    "chain": "d/dx f(g(x)) = f'(g(x)) * g'(x)",
    "power": "d/du u**n = n*u**(n - 1)",
    "sqrt": "d/du sqrt(u) = 1/(2*sqrt(u))",
    "exponential": "d/du a**u = a**u*log(a)",
    "general_power": "(f**g)' = f**g*(g'*log(f) + g*f'/f)",
    "max": "d max(f, g) = H(f - g)*f' + H(g - f)*g'",
    "min": "d min(f, g) = H(g - f)*f' + H(f - g)*g'",
}


def node_rule(*classes: type) -> Callable[[NodeRule], NodeRule]:
    """Register ``rule`` for the given SymPy node classes."""

    def register(rule: NodeRule) -> NodeRule:
        for cls in classes:
            NODE_RULES[cls] = rule
        return rule

    return register


@dataclass(frozen=True)
class OuterRule:
    """f'(u) for a one-argument function f, under the rule name ``name``."""

    name: str
    formula: str
    derivative: Callable[[sp.Expr], sp.Expr]


OUTER_RULES: dict[type, OuterRule] = {}


def outer_rule(
    cls: type, name: str, formula: str, derivative: Callable[[sp.Expr], sp.Expr]
) -> None:
    """Register the outer derivative of the function class ``cls``."""
    OUTER_RULES[cls] = OuterRule(name, formula, derivative)
    RULE_FORMULAS[name] = formula


# --------------------------------------------------------------------------- functions

# One outer rule per one-argument primitive of the table (sqrt is the power rule, Heaviside has
# its own function rule below); the derivative is the table's, evaluated in SymPy.
for _row in PRIMITIVES.values():
    if _row.arity == 1 and isinstance(_row.sympy, type) and _row.sympy is not sp.Heaviside:
        outer_rule(_row.sympy, _row.name, _row.formula, functools.partial(sympy_derivative, _row))
outer_rule(
    sp.DiracDelta,
    "dirac_delta",
    "d/du DiracDelta(u) = DiracDelta(u, 1)",
    lambda u: sp.DiracDelta(u, 1),
)
RULE_FORMULAS["heaviside"] = "d/du Heaviside(u) = DiracDelta(u)"


# --------------------------------------------------------------------------- structural rules


def fresh_variable(expr: sp.Expr) -> sp.Symbol:
    """A name for the chain rule's ``u`` that the expression does not already use."""
    taken = {str(s) for s in expr.free_symbols}
    for name in ("u", "v", "w", "t", "s"):
        if name not in taken:
            return sp.Symbol(name, real=True)
    index = 1
    while f"u{index}" in taken:
        index += 1
    return sp.Symbol(f"u{index}", real=True)


def chain(
    expr: sp.Expr,
    wrt: sp.Symbol,
    inner: sp.Expr,
    rule: str,
    rebuild: Callable[[sp.Expr], sp.Expr],
    outer: Callable[[sp.Expr], sp.Expr],
    recurse: Recurse,
) -> Step:
    """d/dx f(g(x)) = f'(g(x)) g'(x); ``rebuild(u)`` is f(u) and ``outer(u)`` is f'(u).

    When the argument is the variable itself, the outer rule applies directly.
    """
    if inner == wrt:
        return Step(rule, expr, wrt, outer(wrt))
    u = fresh_variable(expr)
    outer_step = Step(rule, rebuild(u), u, outer(u))
    inner_step = recurse(inner, wrt)
    result = outer(inner) * inner_step.result
    return Step(
        "chain",
        expr,
        wrt,
        result,
        (outer_step, inner_step),
        variable=u,
        inner=inner,
        outer=outer(u),
    )


@node_rule(sp.Symbol)
def identity_rule(expr: sp.Symbol, wrt: sp.Symbol, recurse: Recurse) -> Step:
    """d/dx x = 1 (a different symbol is a constant, handled before dispatch)."""
    return Step("identity", expr, wrt, sp.Integer(1))


@node_rule(sp.Add)
def sum_rule(expr: sp.Add, wrt: sp.Symbol, recurse: Recurse) -> Step:
    """(f + g)' = f' + g', term by term in the order the sum is printed (as a student reads it)."""
    substeps = tuple(recurse(term, wrt) for term in expr.as_ordered_terms())
    return Step("sum", expr, wrt, sp.Add(*[s.result for s in substeps]), substeps)


def _is_denominator(factor: sp.Expr, wrt: sp.Symbol) -> bool:
    return (
        isinstance(factor, sp.Pow)
        and factor.exp.is_number
        and bool(factor.exp.is_negative)
        and factor.has(wrt)
    )


@node_rule(sp.Mul)
def multiplication_rule(expr: sp.Mul, wrt: sp.Symbol, recurse: Recurse) -> Step:
    """Dispatch a product to the constant-multiple, quotient or product rule."""
    constant, dependent = expr.as_independent(wrt, as_Add=False)
    if constant != 1:
        sub = recurse(dependent, wrt)
        return Step("constant_multiple", expr, wrt, constant * sub.result, (sub,))
    factors = tuple(dependent.as_ordered_factors())
    denominators = [f for f in factors if _is_denominator(f, wrt)]
    numerators = [f for f in factors if not _is_denominator(f, wrt)]
    if denominators and numerators:
        return quotient_rule(expr, sp.Mul(*numerators), 1 / sp.Mul(*denominators), wrt, recurse)
    return product_rule(expr, factors, wrt, recurse)


def product_rule(
    expr: sp.Expr, factors: tuple[sp.Expr, ...], wrt: sp.Symbol, recurse: Recurse
) -> Step:
    """(f1 f2 ... fn)' = sum_i f_i' prod_{j != i} f_j."""
    substeps = tuple(recurse(f, wrt) for f in factors)
    terms = [
        sp.Mul(*factors[:i], step.result, *factors[i + 1 :]) for i, step in enumerate(substeps)
    ]
    return Step("product", expr, wrt, sp.Add(*terms), substeps)


def quotient_rule(
    expr: sp.Expr, numerator: sp.Expr, denominator: sp.Expr, wrt: sp.Symbol, recurse: Recurse
) -> Step:
    """(f/g)' = (f' g - f g') / g**2."""
    top, bottom = recurse(numerator, wrt), recurse(denominator, wrt)
    result = (top.result * denominator - numerator * bottom.result) / denominator**2
    return Step("quotient", expr, wrt, result, (top, bottom))


@node_rule(sp.Pow)
def power_rule(expr: sp.Pow, wrt: sp.Symbol, recurse: Recurse) -> Step:
    """u**n (power, sqrt), a**u (exponential) or f**g (general power)."""
    base, exponent = expr.args
    if not exponent.has(wrt):
        if exponent == sp.Rational(1, 2):
            return chain(expr, wrt, base, "sqrt", sp.sqrt, lambda u: 1 / (2 * sp.sqrt(u)), recurse)
        return chain(
            expr,
            wrt,
            base,
            "power",
            lambda u: u**exponent,
            lambda u: exponent * u ** (exponent - 1),
            recurse,
        )
    if not base.has(wrt):
        return chain(
            expr,
            wrt,
            exponent,
            "exponential",
            lambda u: base**u,
            lambda u: base**u * sp.log(base),
            recurse,
        )
    f_step, g_step = recurse(base, wrt), recurse(exponent, wrt)
    result = expr * (g_step.result * sp.log(base) + exponent * f_step.result / base)
    return Step("general_power", expr, wrt, result, (f_step, g_step))


@node_rule(sp.Function)
def function_rule(expr: sp.Function, wrt: sp.Symbol, recurse: Recurse) -> Step:
    """f(u) for a registered one-argument function: the chain rule with f's outer derivative."""
    cls = type(expr)
    if isinstance(expr, sp.Heaviside):
        return chain(
            expr,
            wrt,
            expr.args[0],
            "heaviside",
            lambda u: sp.Heaviside(u, *expr.args[1:]),
            sp.DiracDelta,
            recurse,
        )
    if isinstance(expr, sp.DiracDelta) and len(expr.args) == 2:
        order = expr.args[1]
        return chain(
            expr,
            wrt,
            expr.args[0],
            "dirac_delta",
            lambda u: sp.DiracDelta(u, order),
            lambda u: sp.DiracDelta(u, order + 1),
            recurse,
        )
    rule = next((OUTER_RULES[c] for c in cls.__mro__ if c in OUTER_RULES), None)
    if rule is None or len(expr.args) != 1:
        raise UnknownFunctionError(getattr(cls, "__name__", str(cls)))
    return chain(expr, wrt, expr.args[0], rule.name, cls, rule.derivative, recurse)


@node_rule(sp.Max, sp.Min)
def extremum_rule(expr: sp.Expr, wrt: sp.Symbol, recurse: Recurse) -> Step:
    """d max(a_1..a_n) = sum_i H(a_i - max(others)) a_i'  (min alike with the signs swapped)."""
    cls = type(expr)
    name = "max" if cls is sp.Max else "min"
    substeps: list[Step] = []
    terms: list[sp.Expr] = []
    for i, arg in enumerate(expr.args):
        if not arg.has(wrt):
            continue
        others = cls(*(expr.args[:i] + expr.args[i + 1 :]))
        gap = arg - others if cls is sp.Max else others - arg
        step = recurse(arg, wrt)
        substeps.append(step)
        terms.append(sp.Heaviside(gap) * step.result)
    return Step(name, expr, wrt, sp.Add(*terms), tuple(substeps))
