"""End-to-end property: for random losses, the compiled module agrees with sympy.diff + lambdify."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import symdiff
from symdiff.frontend.parse import make_symbol, parse
from symdiff.functions import to_elementary

PARAMS = ("a", "b")
DATA = ("x", "y")
POINT = np.array([0.4, -0.3])
X = np.array([-1.5, -0.2, 0.7, 1.9])
Y = np.array([0.0, 1.0, 1.0, 0.0])

leaves = st.sampled_from(["a", "b", "x", "y", "2", "0.5", "(a*x + b)"])
UNARY = [
    "exp({})",
    "sin({})",
    "tanh({})",
    "sigmoid({})",
    "softplus({})",
    "log(1 + ({})**2)",
    "({})**2",
    "abs({} + 3)",
    "relu({})",
    "-({})",
    "log(sigmoid({}))",
    "log(1 - sigmoid({}))",
]
BINARY = ["{} + {}", "{} - {}", "{}*{}", "{}/(1 + ({})**2)", "logsumexp({}, {})", "max({}, {})"]


def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.tuples(st.sampled_from(UNARY), children).map(lambda t: t[0].format(t[1]))
    binary = st.tuples(st.sampled_from(BINARY), children, children).map(
        lambda t: t[0].format(t[1], t[2])
    )
    return unary | binary


losses = st.recursive(leaves, extend, max_leaves=7).map(lambda text: f"({text}) + a*b*x")


#: Max, Min and Heaviside element by element (lambdify's defaults reduce over a ragged list).
ELEMENTWISE = {
    "Max": lambda *args: functools.reduce(np.maximum, args),
    "Min": lambda *args: functools.reduce(np.minimum, args),
    "Heaviside": lambda u, at_zero=0.5: np.heaviside(u, at_zero),
}


def reference(text: str) -> tuple[float, np.ndarray]:
    symbols = {n: make_symbol(n) for n in PARAMS + DATA}
    expr = to_elementary(parse(text, symbols=symbols))
    params = [symbols[n] for n in PARAMS]
    exprs = [expr] + [sp.diff(expr, p) for p in params]
    exprs = [
        e.replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: sp.Integer(0)) for e in exprs
    ]
    with np.errstate(all="ignore"):
        values = sp.lambdify(list(symbols.values()), exprs, [ELEMENTWISE, "numpy"])(*POINT, X, Y)
    means = [float(np.mean(np.broadcast_to(v, X.shape))) for v in values]
    return means[0], np.array(means[1:])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(losses)
def test_compiled_module_agrees_with_sympy(text: str) -> None:
    # the appended a*b*x makes every parameter occur, unless the random part cancels it
    # ('(a - a*b*x) + a*b*x' parses to a), and compile refuses a parameter that does not occur
    symbols = {n: make_symbol(n) for n in PARAMS + DATA}
    assume(all(symbols[n] in parse(text, symbols=symbols).free_symbols for n in PARAMS))
    loss, gradient = reference(text)
    if not (np.isfinite(loss) and np.all(np.isfinite(gradient)) and np.all(np.abs(gradient) < 1e8)):
        return  # the oracle itself overflows; stability has its own tests
    model = symdiff.compile(text, PARAMS, DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = model.loss_and_grad(POINT, X, Y)
    assert np.isclose(value, loss, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grad, gradient, rtol=1e-8, atol=1e-10)
