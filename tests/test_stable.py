"""The numerically stable rewrites: each one's result, and that it never changes the value."""

from __future__ import annotations

import random

import pytest
import sympy as sp

from symdiff.functions import expm1, log1p, sigmoid, softplus, to_elementary
from symdiff.parse import parse
from symdiff.reverse import inline, reverse_sweep
from symdiff.stable import (
    EVALUATION_PASSES,
    PASSES,
    REWRITE_FORMULAS,
    logaddexp,
    stabilize,
    stabilize_for_evaluation,
)

a, b, u, w, x, y = (sp.Symbol(n, real=True) for n in "abuwxy")
z = w * x + b


def value(expr: sp.Expr, point: dict) -> float:
    elementary = to_elementary(expr).replace(
        lambda e: isinstance(e, logaddexp), lambda e: sp.log(sp.exp(e.args[0]) + sp.exp(e.args[1]))
    )
    return float(elementary.xreplace(point).evalf(30))


@pytest.mark.parametrize(
    "text, expected, fired",
    [
        ("1/(1 + exp(-(w*x + b)))", sigmoid(z), ("sigmoid_explicit",)),
        ("log(1 + exp(w*x + b))", softplus(z), ("softplus_explicit",)),
        ("log(sigmoid(w*x + b))", -softplus(-z), ("log_sigmoid",)),
        ("log(1 - sigmoid(w*x + b))", -softplus(z), ("log_one_minus_sigmoid",)),
        ("log(exp(a) + exp(b))", logaddexp(a, b), ("logaddexp",)),
        ("log(exp(a) + exp(b) + exp(w))", logaddexp(logaddexp(a, b), w), ("logaddexp",)),
        ("log(1 + w**2)", log1p(w**2), ("log1p",)),
        ("exp(w*x) - 1 + y", expm1(w * x) + y, ("expm1",)),
        (
            "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))",
            softplus(z) - y * z,
            ("log_sigmoid", "log_one_minus_sigmoid", "softplus_reflection"),
        ),
        ("(w*x - y)**2", (w * x - y) ** 2, ()),
    ],
)
def test_each_rewrite(text: str, expected: sp.Expr, fired: tuple[str, ...]) -> None:
    symbols = {s.name: s for s in (a, b, w, x, y)}
    result, applied = stabilize(parse(text, symbols=symbols))
    assert sp.simplify(result - expected) == 0 and result.count_ops() <= expected.count_ops()
    assert applied == fired


def test_rewrites_preserve_the_value_at_random_points() -> None:
    rng = random.Random(7)
    texts = [
        "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))",
        "log(1 + exp(-y*w*x)) + log(1 + w**2) + exp(b) - 1",
        "log(exp(w*x) + exp(b) + 1)",
        "softplus(-w) + softplus(w) + y*sigmoid(-x)",
    ]
    for text in texts:
        expr = parse(text)
        stable, _ = stabilize(expr)
        evaluated, _ = stabilize_for_evaluation([stable])
        for _ in range(5):
            point = {s: sp.Float(rng.uniform(-2, 2), 30) for s in expr.free_symbols}
            expected = value(expr, point)
            assert value(stable, point) == pytest.approx(expected, rel=1e-12)
            assert value(evaluated[0], point) == pytest.approx(expected, rel=1e-12)


def test_evaluation_passes_share_softplus_between_loss_and_gradient() -> None:
    loss, _ = stabilize(-y * sp.log(sigmoid(z)) - (1 - y) * sp.log(1 - sigmoid(z)))
    gradient = inline(reverse_sweep(loss, [b]))[0]
    assert gradient == sigmoid(z) - y
    (loss_out, gradient_out), applied = stabilize_for_evaluation([loss, gradient])
    assert applied == ("sigmoid_via_softplus", "softplus_reflection")
    assert gradient_out.atoms(softplus) == loss_out.atoms(softplus) == {softplus(z)}
    assert not gradient_out.has(sigmoid)


def test_every_pass_is_documented() -> None:
    names = [name for name, _ in PASSES + EVALUATION_PASSES]
    assert set(names) == set(REWRITE_FORMULAS)
    assert len(set(n for n, _ in PASSES)) == len(PASSES)
