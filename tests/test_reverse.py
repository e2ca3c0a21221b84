"""Reverse mode over the expression DAG against sympy.diff, on random expressions (hypothesis)."""

from __future__ import annotations

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symdiff.functions import relu, sigmoid, softplus, to_elementary
from symdiff.reverse import LONG_PRODUCT, inline, reverse_sweep
from symdiff.stable import logaddexp

a, b, c, x = (sp.Symbol(n, real=True) for n in "abcx")
PARAMS = [a, b, c]
POINT = {
    a: sp.Rational(3, 10),
    b: sp.Rational(-7, 10),
    c: sp.Rational(11, 10),
    x: sp.Rational(13, 10),
}

leaves = st.sampled_from([a, b, c, x, sp.Integer(2), sp.Rational(1, 3)])
UNARY = [sp.exp, sp.sin, sp.tanh, sigmoid, softplus, lambda e: sp.log(1 + e**2), lambda e: e**3]
BINARY = [
    lambda p, q: p + q,
    lambda p, q: p * q,
    lambda p, q: p - 2 * q,
    lambda p, q: p / (1 + q**2),
    logaddexp,
]


def extend(children: st.SearchStrategy) -> st.SearchStrategy:
    unary = st.tuples(st.sampled_from(UNARY), children).map(lambda t: t[0](t[1]))
    binary = st.tuples(st.sampled_from(BINARY), children, children).map(lambda t: t[0](t[1], t[2]))
    return unary | binary


expressions = st.recursive(leaves, extend, max_leaves=8)


def numeric(expr: sp.Expr) -> float:
    elementary = to_elementary(expr).replace(
        lambda e: isinstance(e, logaddexp), lambda e: sp.log(sp.exp(e.args[0]) + sp.exp(e.args[1]))
    )
    return complex(elementary.xreplace(POINT).evalf(30)).real


@settings(max_examples=60, deadline=None)
@given(expressions)
def test_reverse_sweep_agrees_with_sympy_diff(expr: sp.Expr) -> None:
    gradient = inline(reverse_sweep(expr, PARAMS))
    for param, ours in zip(PARAMS, gradient, strict=True):
        theirs = sp.diff(to_elementary(expr).rewrite(sp.log), param)
        expected = complex(theirs.xreplace(POINT).evalf(30)).real
        assert abs(numeric(ours) - expected) <= 1e-12 * max(1.0, abs(expected))


def test_relu_and_max_partials_are_steps() -> None:
    gradient = inline(reverse_sweep(relu(a * x) + sp.Max(a, b), [a, b]))
    assert gradient[0] == x * sp.Heaviside(a * x, 0) + sp.Heaviside(a - b)
    assert gradient[1] == sp.Heaviside(b - a)


def test_long_products_share_prefix_and_suffix_products() -> None:
    symbols = sp.symbols("w1:41", real=True)
    sweep = reverse_sweep(sp.Mul(*symbols), list(symbols))
    assert len(symbols) > LONG_PRODUCT
    roles = [s.role for s in sweep.statements]
    assert roles.count("prefix") == roles.count("suffix") == len(symbols) - 2
    assert all(len(sp.Mul.make_args(g)) <= 2 for g in sweep.gradients)
    assert all(len(sp.Mul.make_args(s.value)) <= 2 for s in sweep.statements)
    explicit = inline(sweep)
    assert explicit[4] == sp.Mul(*symbols) / symbols[4]


def test_shared_nodes_get_one_adjoint_each() -> None:
    shared = sp.sin(a * x + b)
    expr = shared**2 + 3 * shared + sp.exp(shared)
    sweep = reverse_sweep(expr, [a, b])
    adjoint_nodes = [s.node for s in sweep.statements if s.role == "adjoint"]
    assert len(adjoint_nodes) == len(set(adjoint_nodes))
    assert sp.simplify(inline(sweep)[1] - sp.diff(expr, b)) == 0
