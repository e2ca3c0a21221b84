"""Golden files for tensor output: the generated two-layer-network module and the grad / steps
reports (regenerate with SYMDIFF_REGEN_GOLDEN=1, then review the diff)."""

from __future__ import annotations

import pytest
from golden_support import assert_golden, assert_valid_latex

from symdiff.autodiff.reverse import tensor_gradient, vector_jacobian
from symdiff.codegen.tensor import generate
from symdiff.explanations.tensor_report import steps_report, tensor_gradient_report

MLP = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"
MLP_SHAPES = {
    "X": ("n", 64),
    "Y": ("n", 10),
    "W1": (64, 32),
    "b1": (32,),
    "W2": (32, 10),
    "b2": (10,),
}
PARAMS = ["W1", "b1", "W2", "b2"]


def test_generated_mlp_module_golden():
    source = generate(MLP, MLP_SHAPES, PARAMS, name="mlp")
    assert_golden("tensor_mlp_module.py.txt", source.rstrip("\n"))


@pytest.mark.parametrize("fmt", ["txt", "tex", "json"])
def test_mlp_gradient_report_golden(fmt):
    gradient = tensor_gradient(MLP, MLP_SHAPES, PARAMS)
    report = tensor_gradient_report(
        MLP, MLP_SHAPES, gradient.loss, gradient.as_dict(), gradient.adjoints
    )
    rendered = report.render({"txt": "text", "tex": "latex"}.get(fmt, fmt))
    assert_golden(f"tensor_mlp_grad.{fmt}", rendered)
    if fmt == "tex":
        assert_valid_latex(rendered)


@pytest.mark.parametrize("fmt", ["txt", "tex", "json"])
def test_least_squares_steps_golden(fmt):
    shapes = {"X": ("n", "d"), "w": ("d",), "y": ("n",)}
    gradient = tensor_gradient("mean((X @ w - y)**2)", shapes, ["w"])
    report = steps_report("mean((X @ w - y)**2)", shapes, gradient, ["w"])
    rendered = report.render({"txt": "text", "tex": "latex"}.get(fmt, fmt))
    assert_golden(f"tensor_steps_least_squares.{fmt}", rendered)
    if fmt == "tex":
        assert_valid_latex(rendered)


def test_jacobian_latex_is_valid():
    from symdiff.explanations.tensor_report import jacobian_report

    shapes = {"X": ("n", "d"), "w": ("d",)}
    report = jacobian_report("sigmoid(X @ w)", shapes, vector_jacobian("sigmoid(X @ w)", shapes))
    assert_valid_latex(report.latex())
