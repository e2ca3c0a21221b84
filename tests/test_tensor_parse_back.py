"""Every tensor formula a report prints parses back with the tensor parser to what it stands for.

A family of tensor losses (linear and logistic regression, softmax cross-entropy, a two-layer
network; with subtraction both ways, scaling by decimals, transposes) goes through ``grad``'s
report (its ``where`` block and ``dL/dW`` lines), ``steps`` (forward rows, adjoints, what each
node sends, gradients) and ``jacobian`` (J and vᵀJ). Each printed formula is parsed with the
names before it declared as shaped symbols, evaluated at random inputs, and compared with the
IR node it was printed from.
"""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from symdiff.autodiff.forward import jacobian
from symdiff.autodiff.reverse import tensor_gradient, vector_jacobian
from symdiff.codegen.tensor import evaluate
from symdiff.explanations.tensor_report import (
    jacobian_report,
    node_names,
    steps_report,
    taken_names,
    tensor_gradient_report,
)
from symdiff.frontend.tensor_parse import parse_tensor

N = 6
SHAPES: dict[str, tuple] = {
    "X": ("n", 3),
    "y": ("n",),
    "w": (3,),
    "Y": ("n", 4),
    "W": (3, 4),
    "c": (4,),
    "W1": (3, 5),
    "b1": (5,),
    "W2": (5, 4),
    "b2": (4,),
}
#: The steps report's forward rows include L = T / n, which fixes no dimension when evaluated:
#: that test uses a number of rows.
FIXED = {name: tuple(N if d == "n" else d for d in shape) for name, shape in SHAPES.items()}
SCALES = ["", "0.5 * ", "2 * ", "0.1 * ", "1e-3 * ", "3 / 7 * "]


@st.composite
def tensor_losses(draw: st.DrawFn) -> tuple[str, list[str]]:
    """(loss, parameters): one of the four models, with its variations drawn."""
    kind = draw(st.sampled_from(["linear", "logistic", "softmax", "mlp"]))
    scale = draw(st.sampled_from(SCALES))
    flip = draw(st.booleans())
    transposed = draw(st.booleans())
    penalty = draw(st.sampled_from(["", " + 0.01 * sum(PARAM**2)", " - 0.25 * sum(PARAM**2)"]))
    if kind == "linear":
        xw = "(w.T @ X.T).T" if transposed else "X @ w"
        residual = f"y - {xw}" if flip else f"{xw} - y"
        loss, params = f"{scale}mean(({residual})**2)", ["w", "b"]
        loss = loss.replace(" - y", " - y + b") if not flip else loss.replace("y - ", "y - b - ")
    elif kind == "logistic":
        z = "X @ w + b" if not transposed else "b + (w.T @ X.T).T"
        p = f"sigmoid({z})"
        loss = f"-{scale}mean(y * log({p}) + (1 - y) * log(1 - {p}))"
        if flip:
            loss = f"{scale}mean((y - {p})**2)"
        params = ["w", "b"]
    elif kind == "softmax":
        xw = "(W.T @ X.T).T" if transposed else "X @ W"
        logits = f"{xw} + c" if not flip else f"{xw} - c"
        loss, params = f"{scale}cross_entropy(Y, softmax({logits}))", ["W", "c"]
    else:
        act = draw(st.sampled_from(["relu", "tanh", "sigmoid", "softplus"]))
        hidden = f"{act}(X @ W1 + b1)" if not transposed else f"{act}((W1.T @ X.T).T + b1)"
        logits = f"{hidden} @ W2 + b2" if not flip else f"{hidden} @ W2 - b2"
        loss, params = f"{scale}cross_entropy(Y, softmax({logits}))", ["W1", "b1", "W2", "b2"]
    return loss + penalty.replace("PARAM", params[0]), params


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = {
        name: rng.normal(size=tuple(N if d == "n" else d for d in shape))
        for name, shape in SHAPES.items()
    }
    values["Y"] = np.eye(4)[rng.integers(0, 4, size=N)]  # one-hot rows
    values["y"] = rng.uniform(0.1, 0.9, size=N)
    values["b"] = np.asarray(rng.normal())
    return values


class Reader:
    """Parses printed formulas one after another; a name defined by one is a shaped symbol
    (with its value) for the next."""

    def __init__(self, values: dict[str, np.ndarray], shapes: dict[str, tuple] = SHAPES) -> None:
        self.shapes: dict[str, tuple] = dict(shapes)
        self.values = dict(values)

    def value(self, text: str, shape: list | tuple) -> np.ndarray:
        node = parse_tensor(text, self.shapes)
        assert list(node.shape) == list(shape), text
        return np.asarray(evaluate(node, self.values))

    def define(self, name: str, text: str, shape: list | tuple) -> np.ndarray:
        value = self.value(text, shape)
        self.shapes[name] = tuple(shape)
        self.values[name] = value
        return value


def _same(printed: np.ndarray, meant: object, text: str) -> None:
    np.testing.assert_allclose(printed, np.asarray(meant), rtol=1e-10, atol=1e-12, err_msg=text)


@settings(max_examples=30, deadline=None)
@given(tensor_losses(), st.integers(0, 2**16))
def test_grad_report_parses_back(case: tuple[str, list[str]], seed: int) -> None:
    text, params = case
    gradient = tensor_gradient(text, SHAPES, params)
    grads = gradient.as_dict()
    data = tensor_gradient_report(text, SHAPES, gradient.loss, grads, gradient.adjoints).data
    reader = Reader(_inputs(seed))
    for name, row in data["where"].items():  # each where name is a shaped symbol for the next
        reader.define(name, row["formula"], row["shape"])
    for param, row in data["gradient"].items():
        printed = reader.value(row["formula"], row["shape"])
        _same(printed, evaluate(grads[param], reader.values), f"dL/d{param} = {row['formula']}")


@settings(max_examples=30, deadline=None)
@given(tensor_losses(), st.integers(0, 2**16))
def test_steps_report_parses_back(case: tuple[str, list[str]], seed: int) -> None:
    text, params = case
    gradient = tensor_gradient(text, FIXED, params)
    data = steps_report(text, FIXED, gradient, params).data
    names = node_names(
        gradient.loss, gradient.gradients, gradient.adjoints, taken_names(FIXED, gradient.loss)
    )
    by_name = {name: node for node, name in names.items()}
    adjoints = {step.node: step.adjoint for step in gradient.steps}
    reader = Reader(_inputs(seed), FIXED)
    for row in data["forward"]:
        printed = reader.define(row["node"], row["formula"], row["shape"])
        _same(printed, evaluate(by_name[row["node"]], reader.values), row["formula"])
    for row in data["backward"]:
        printed = reader.value(row["adjoint"], row["shape"])
        _same(printed, evaluate(adjoints[by_name[row["node"]]], reader.values), row["adjoint"])
        for sent in row["sends"]:
            reader.value(sent["contribution"], sent["shape"])
    for param, formula in data["gradient"].items():
        printed = reader.value(formula, FIXED.get(param, ()))
        _same(printed, evaluate(gradient[param], reader.values), formula)


@settings(max_examples=20, deadline=None)
@given(tensor_losses(), st.integers(0, 2**16))
def test_jacobian_report_parses_back(case: tuple[str, list[str]], seed: int) -> None:
    text, params = case
    product = vector_jacobian(text, SHAPES, params)
    explicit = [jacobian(product.expression, p) for p in product.wrt]
    data = jacobian_report(text, SHAPES, product, explicit).data
    reader = Reader(_inputs(seed))
    reader.shapes[data["seed"]] = tuple(data["shape"])
    reader.values[data["seed"]] = np.asarray(1.7)
    for row, matrix, value in zip(data["jacobian"], explicit, product.products, strict=True):
        if matrix is not None:
            printed = reader.value(row["jacobian"], row["jacobian_shape"])
            _same(printed, evaluate(matrix, reader.values), row["jacobian"])
        printed = reader.value(row["vjp"], row["vjp_shape"])
        _same(printed, evaluate(value, reader.values), row["vjp"])


def test_reports_write_numbers_as_shortest_decimals() -> None:
    """0.1 * 2 is printed 0.2, never SymPy's 0.200000000000000."""
    text = "0.1 * sum(w**2) + 1e-3 * sum(X @ w)"
    gradient = tensor_gradient(text, SHAPES, ["w"])
    grad = tensor_gradient_report(text, SHAPES, gradient.loss, gradient.as_dict()).plain
    steps = steps_report(text, SHAPES, gradient, ["w"]).plain
    assert "0.2 * w" in grad
    for report in (grad, steps):
        assert not re.search(r"\d\.\d{8,}", report), report
