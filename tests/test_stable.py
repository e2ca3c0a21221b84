"""The numerically stable rewrites of the IR: each one's result, and that none changes a value."""

from __future__ import annotations

import numpy as np
import pytest

from symdiff.autodiff.reverse import reverse_mode
from symdiff.codegen.tensor import evaluate
from symdiff.frontend.parse import parse
from symdiff.ir.from_sympy import to_ir
from symdiff.ir.nodes import recording_rewrites, var, walk
from symdiff.ir.printing import to_text
from symdiff.ir.rewrites import REWRITE_FORMULAS, STABLE_RULES, stabilize, stabilize_for_evaluation

NAMES = ("a", "b", "w", "x", "y")


def stable_form(text: str) -> tuple[str, list[str], object, object]:
    """(printed stable IR, rewrites fired, original node, stable node) of a scalar loss."""
    with recording_rewrites() as applied:
        node = to_ir(parse(text), {})
        (stable,), fired = stabilize([node])
    return to_text(stable), [*applied, *fired], node, stable


@pytest.mark.parametrize(
    "text, expected, fired",
    [
        ("1/(1 + exp(-(w*x + b)))", "sigmoid(b + w * x)", ["sigmoid_explicit"]),
        ("log(1 + exp(w*x + b))", "softplus(b + w * x)", ["softplus_explicit"]),
        ("log(sigmoid(w*x + b))", "-softplus(-(b + w * x))", ["log_sigmoid"]),
        ("log(1 - sigmoid(w*x + b))", "-softplus(b + w * x)", ["log_one_minus_sigmoid"]),
        ("log(exp(a) + exp(b))", "logaddexp(a, b)", ["logaddexp"]),
        ("log(exp(a) + exp(b) + exp(w))", "logaddexp(logaddexp(a, b), w)", ["logaddexp"]),
        ("log(1 + w**2)", "log1p(w**2)", ["log1p"]),
        ("exp(w*x) - 1 + y", "expm1(w * x) + y", ["expm1"]),
        ("(w*x - y)**2", "(w * x - y)**2", []),
    ],
)
def test_each_rewrite(text: str, expected: str, fired: list[str]) -> None:
    printed, applied, _, _ = stable_form(text)
    assert printed == expected
    assert applied == fired
    assert set(applied) <= set(REWRITE_FORMULAS)


def test_logistic_loss_shares_one_softplus() -> None:
    printed, applied, _, stable = stable_form(
        "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))"
    )
    assert applied == ["log_sigmoid", "log_one_minus_sigmoid", "softplus_reflection"]
    assert [n for n in walk(stable) if n.op == "softplus"] == [
        n for n in walk(stable) if n.op == "softplus"
    ][:1]


@pytest.mark.parametrize(
    "text",
    [
        "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))",
        "log(1 + exp(-y*w*x)) + log(1 + w**2) + exp(b) - 1",
        "log(exp(w*x) + exp(b) + 1)",
        "softplus(-w) + softplus(w) + y*sigmoid(-x)",
    ],
)
def test_rewrites_preserve_the_value_at_random_points(text: str) -> None:
    rng = np.random.default_rng(7)
    _, _, node, stable = stable_form(text)
    (evaluated,), _ = stabilize_for_evaluation([stable])
    for _ in range(5):
        point = {name: rng.uniform(-2, 2) for name in NAMES}
        expected = evaluate(node, {v.name: point[v.name] for v in walk(node) if v.op == "var"})
        for other in (stable, evaluated):
            values = {v.name: point[v.name] for v in walk(other) if v.op == "var"}
            assert evaluate(other, values) == pytest.approx(expected, rel=1e-12)


def test_evaluation_passes_share_softplus_between_loss_and_gradient() -> None:
    _, _, _, loss = stable_form("-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))")
    (gradient,) = reverse_mode(loss, [var("b")]).gradients
    assert to_text(gradient) == "sigmoid(b + w * x) - y"
    (loss_out, gradient_out), applied = stabilize_for_evaluation([loss, gradient])
    assert applied == ["sigmoid_via_softplus", "softplus_reflection"]
    softplus_of = {n for n in walk([loss_out, gradient_out]) if n.op == "softplus"}
    assert len(softplus_of) == 1 and not any(n.op == "sigmoid" for n in walk(gradient_out))


def test_generated_logistic_module_is_exact_at_extremes() -> None:
    import symdiff

    module = symdiff.compile(
        "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))", "w,b", "x,y"
    )
    loss, grad = module.loss_and_grad([1.0, 0.0], np.array([1000.0, -1000.0]), np.array([0.0, 1.0]))
    assert loss == pytest.approx(1000.0, rel=1e-15)  # softplus(1000) = 1000, not inf
    assert np.all(np.isfinite(grad)) and grad == pytest.approx([1000.0, 0.0], rel=1e-15)


def test_every_rule_is_documented() -> None:
    names = {name for rules in STABLE_RULES.values() for name, _ in rules}
    assert names <= set(REWRITE_FORMULAS)
