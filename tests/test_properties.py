"""Property tests: random expression trees (as text, through the parser) differentiated by
symdiff agree with ``sympy.diff`` at random points, and every chain-rule Step is consistent.

Domains are kept safe by construction: log and sqrt only see positive sub-expressions
(1 + u**2, exp(u)), divisions are by 1 + u**2, general powers have a positive base, and
exponentials see bounded arguments (exp(tanh(u)), 2^tanh(u*v)) so values stay moderate.
"""

from __future__ import annotations

import sympy as sp
from derivative_oracles import assert_same_function, sample_points
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symdiff.calculus.differentiate import differentiate
from symdiff.frontend.parse import make_symbol, parse
from symdiff.functions import to_elementary

X, Y = make_symbol("x"), make_symbol("y")

LEAVES = st.sampled_from(["x", "y", "x", "x", "2", "3", "0.5", "pi"])

UNARY = [
    "sin({})",
    "cos({})",
    "tanh({})",
    "atan({})",
    "asinh({})",
    "erf({})",
    "sigmoid({})",
    "softplus({})",
    "relu({})",
    "abs({})",
    "exp(tanh({}))",
    "log(1 + ({})**2)",
    "sqrt(1 + ({})**2)",
    "log(exp({}) + 1)",
    "log1p(({})**2)",
    "expm1(sin({}))",
    "gelu({})",
    "-({})",
    "({})**2",
    "({})**3",
]

BINARY = [
    "({}) + ({})",
    "({}) - ({})",
    "({})*({})",
    "({})/(1 + ({})**2)",
    "(1 + ({})**2)**(sin({}))",
    "max({}, {})",
    "min({}, {})",
    "logsumexp({}, {})",
    "2^(tanh(({})*({})))",
]


def _apply(parts: tuple[str, ...]) -> str:
    """(template, child, ...) -> the template filled in; a unary template repeats its child."""
    template, *children = parts
    if len(children) == 1:
        children *= template.count("{}")
    return template.format(*children)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.tuples(st.sampled_from(UNARY), children)
    binary = st.tuples(st.sampled_from(BINARY), children, children)
    return (unary | binary).map(_apply)


#: Trees at least two operations deep (hypothesis favours tiny trees otherwise).
EXPRESSIONS = _extend(_extend(st.recursive(LEAVES, _extend, max_leaves=6)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.sampled_from([X, Y]))
def test_random_trees_agree_with_sympy(text: str, wrt: sp.Symbol) -> None:
    expr = parse(text)
    ours = differentiate(expr, wrt).result
    points = sample_points([X, Y], {}, (-1.5, 1.5), 2, seed=text)
    assert_same_function(ours, sp.diff(expr, wrt), points, text)
    assert_same_function(ours, sp.diff(to_elementary(expr), wrt), points, f"elementary {text}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_every_step_is_consistent(text: str) -> None:
    """Each chain step's result is f'(inner) * (inner)'; a constant's derivative is 0."""
    expr = parse(text)
    top = differentiate(expr, X)
    assert top.expression == expr
    for step in top.walk():
        if step.rule == "chain":
            outer_step, inner_step = step.substeps
            assert inner_step.expression == step.inner
            assert sp.expand(step.outer.xreplace({step.variable: step.inner}) * inner_step.result
                             - step.result) == 0  # fmt: skip
            assert outer_step.result == step.outer
        if step.rule == "constant":
            assert step.result == 0 and not step.expression.has(step.wrt)
        assert not step.result.has(sp.Derivative)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, EXPRESSIONS)
def test_linearity(first: str, second: str) -> None:
    """d(a f + b g) = a df + b dg, here with a = 3, b = -2."""
    f, g = parse(first), parse(second)
    combined = differentiate(3 * f - 2 * g, X).result
    separate = 3 * differentiate(f, X).result - 2 * differentiate(g, X).result
    points = sample_points([X, Y], {}, (-1.5, 1.5), 2, seed=first + second)
    assert_same_function(combined, separate, points, f"{first} ; {second}")
