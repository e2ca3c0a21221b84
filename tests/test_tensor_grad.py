"""Tensor gradients checked against an independent AD library (HIPS autograd) and finite
differences, through the generated NumPy module and through the printed matrix formula."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symdiff.autodiff.reverse import reverse_mode
from symdiff.codegen.tensor import compile as compile_tensor
from symdiff.codegen.tensor import evaluate
from symdiff.errors import InputError
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.ir.nodes import var, walk
from symdiff.ir.printing import to_text

N, D, K, H = 7, 4, 3, 5


def _lse(z, axis):
    top = anp.max(z, axis=axis, keepdims=True)
    return anp.log(anp.sum(anp.exp(z - top), axis=axis, keepdims=True)) + top


def _softmax(z, axis=-1):
    return anp.exp(z - _lse(z, axis))


def _ce(Y, Z):
    return -anp.sum(Y * (Z - _lse(Z, 1))) / Y.shape[0]


def _sigmoid(z):
    return 1 / (1 + anp.exp(-z))


def _softplus(z):
    return anp.logaddexp(0.0, z)


@dataclass(frozen=True)
class Case:
    """A tensor loss, its shapes, which symbols are parameters, and an autograd reference."""

    name: str
    loss: str
    shapes: dict
    params: tuple[str, ...]
    reference: Callable[[dict, dict], object]
    positive: tuple[str, ...] = ()  # data drawn in (0, 1)
    onehot: tuple[str, ...] = ()  # data rows one-hot


CASES = [
    Case(
        "least_squares",
        "mean((X @ w - y)**2)",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w",),
        lambda p, d: anp.mean((d["X"] @ p["w"] - d["y"]) ** 2),
    ),
    Case(
        "ridge",
        "mean((X @ w - y)**2) + lam * norm2(w)",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w",),
        lambda p, d: anp.mean((d["X"] @ p["w"] - d["y"]) ** 2) + d["lam"] * anp.sum(p["w"] ** 2),
    ),
    Case(
        "logistic_bce",
        "mean(-y*log(sigmoid(X @ w + b)) - (1 - y)*log(1 - sigmoid(X @ w + b)))",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w", "b"),
        lambda p, d: anp.mean(
            -d["y"] * anp.log(_sigmoid(d["X"] @ p["w"] + p["b"]))
            - (1 - d["y"]) * anp.log(1 - _sigmoid(d["X"] @ p["w"] + p["b"]))
        ),
        positive=("y",),
    ),
    Case(
        "logistic_softplus",
        "mean(softplus(X @ w) - y * (X @ w))",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w",),
        lambda p, d: anp.mean(_softplus(d["X"] @ p["w"]) - d["y"] * (d["X"] @ p["w"])),
        positive=("y",),
    ),
    Case(
        "softmax_regression",
        "cross_entropy(Y, softmax(X @ W + c))",
        {"X": ("n", D), "W": (D, K), "c": (K,), "Y": ("n", K)},
        ("W", "c"),
        lambda p, d: _ce(d["Y"], d["X"] @ p["W"] + p["c"]),
        onehot=("Y",),
    ),
    Case(
        "two_layer",
        "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))",
        {"X": ("n", D), "W1": (D, H), "b1": (H,), "W2": (H, K), "b2": (K,), "Y": ("n", K)},
        ("W1", "b1", "W2", "b2"),
        lambda p, d: _ce(d["Y"], anp.maximum(d["X"] @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]),
        onehot=("Y",),
    ),
    Case(
        "three_layer",
        "cross_entropy(Y, softmax(tanh(sigmoid(X @ W1 + b1) @ W2 + b2) @ W3 + b3))",
        {
            "X": ("n", D),
            "W1": (D, H),
            "b1": (H,),
            "W2": (H, H),
            "b2": (H,),
            "W3": (H, K),
            "b3": (K,),
            "Y": ("n", K),
        },
        ("W1", "b1", "W2", "b2", "W3", "b3"),
        lambda p, d: _ce(
            d["Y"],
            anp.tanh(_sigmoid(d["X"] @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]) @ p["W3"] + p["b3"],
        ),
        onehot=("Y",),
    ),
    Case(
        "pseudo_huber",
        "mean(sqrt(1 + (X @ w - y)**2) - 1)",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w",),
        lambda p, d: anp.mean(anp.sqrt(1 + (d["X"] @ p["w"] - d["y"]) ** 2) - 1),
    ),
    Case(
        "trace_form",
        "trace(A.T @ B @ A)",
        {"A": (D, K), "B": (D, D)},
        ("A",),
        lambda p, d: anp.trace(p["A"].T @ d["B"] @ p["A"]),
    ),
    Case(
        "quadratic_form",
        "x.T @ A @ x + dot(c, x)",
        {"x": (D,), "A": (D, D), "c": (D,)},
        ("x", "A"),
        lambda p, d: p["x"] @ p["A"] @ p["x"] + d["c"] @ p["x"],
    ),
    Case(
        "row_logsumexp",
        "mean(logsumexp(X @ W, axis=1) - sum(Y * (X @ W), axis=1))",
        {"X": ("n", D), "W": (D, K), "Y": ("n", K)},
        ("W",),
        lambda p, d: anp.mean(
            _lse(d["X"] @ p["W"], 1)[:, 0] - anp.sum(d["Y"] * (d["X"] @ p["W"]), axis=1)
        ),
    ),
    Case(
        "matrix_factorisation",
        "norm2(M - U @ V.T) / 2",
        {"M": (N, D), "U": (N, 2), "V": (D, 2)},
        ("U", "V"),
        lambda p, d: anp.sum((d["M"] - p["U"] @ p["V"].T) ** 2) / 2,
    ),
    Case(
        "mean_absolute",
        "mean(abs(X @ w - y))",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w",),
        lambda p, d: anp.mean(anp.abs(d["X"] @ p["w"] - d["y"])),
    ),
    Case(
        "poisson",
        "mean(exp(X @ w) - y * (X @ w))",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w",),
        lambda p, d: anp.mean(anp.exp(d["X"] @ p["w"]) - d["y"] * (d["X"] @ p["w"])),
        positive=("y",),
    ),
    Case(
        "soft_label_log_softmax",
        "-mean(sum(Y * log(softmax(X @ W)), axis=1))",
        {"X": ("n", D), "W": (D, K), "Y": ("n", K)},
        ("W",),
        lambda p, d: -anp.mean(anp.sum(d["Y"] * anp.log(_softmax(d["X"] @ p["W"])), axis=1)),
        positive=("Y",),
    ),
    Case(
        "gaussian_bump",
        "sum(exp(-(X @ w)**2 / 2)) / n",
        {"X": ("n", D), "w": (D,)},
        ("w",),
        lambda p, d: anp.sum(anp.exp(-((d["X"] @ p["w"]) ** 2) / 2)) / d["X"].shape[0],
    ),
    Case(
        "quotient",
        "sum((X @ w) / (1 + exp(X @ w)))",
        {"X": ("n", D), "w": (D,)},
        ("w",),
        lambda p, d: anp.sum((d["X"] @ p["w"]) / (1 + anp.exp(d["X"] @ p["w"]))),
    ),
    Case(
        "column_softmax",
        "sum(softmax(X @ W, axis=0) * Y)",
        {"X": ("n", D), "W": (D, K), "Y": ("n", K)},
        ("W",),
        lambda p, d: anp.sum(_softmax(d["X"] @ p["W"], 0) * d["Y"]),
    ),
    Case(
        "vector_matrix",
        "norm2(v @ A - c) + norm(v)",
        {"v": (D,), "A": (D, K), "c": (K,)},
        ("v", "A"),
        lambda p, d: anp.sum((p["v"] @ p["A"] - d["c"]) ** 2) + anp.sqrt(anp.sum(p["v"] ** 2)),
    ),
    Case(
        "row_bias_keepdims",
        "mean((X @ W + r - Y)**2) + sum(mean(X @ W, axis=1, keepdims=1))",
        {"X": ("n", D), "W": (D, K), "r": (1, K), "Y": ("n", K)},
        ("W", "r"),
        lambda p, d: (
            anp.mean((d["X"] @ p["W"] + p["r"] - d["Y"]) ** 2)
            + anp.sum(anp.mean(d["X"] @ p["W"], axis=1))
        ),
    ),
    Case(
        "sigmoid_cross_entropy",
        "cross_entropy(Y, sigmoid(X @ W))",
        {"X": ("n", D), "W": (D, K), "Y": ("n", K)},
        ("W",),
        lambda p, d: -anp.sum(d["Y"] * anp.log(_sigmoid(d["X"] @ p["W"]))) / d["X"].shape[0],
        positive=("Y",),
    ),
    Case(
        "tensor_exponent",
        "sum(sigmoid(X @ w) ** (1 + q**2 * y))",
        {"X": ("n", D), "w": (D,), "y": ("n",)},
        ("w", "q"),
        lambda p, d: anp.sum(_sigmoid(d["X"] @ p["w"]) ** (1 + p["q"] ** 2 * d["y"])),
    ),
    Case(
        "vector_softmax",
        "cross_entropy(t, softmax(W @ x + softplus(u)))",
        {"W": (K, D), "x": (D,), "t": (K,), "u": (K,)},
        ("W", "u"),
        lambda p, d: -anp.sum(d["t"] * anp.log(_softmax(p["W"] @ d["x"] + _softplus(p["u"])))),
        onehot=("t",),
    ),
    Case(
        "scaled_inverse",
        "sum(1 / (2 + X**2) @ w) - sum(w / (1 + w**2))",
        {"X": ("n", D), "w": (D,)},
        ("w",),
        lambda p, d: anp.sum(1 / (2 + d["X"] ** 2) @ p["w"]) - anp.sum(p["w"] / (1 + p["w"] ** 2)),
    ),
]


def _concrete(shape, n=N):
    return tuple(n if d == "n" else d for d in shape)


def _draw(case: Case, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    loss = parse_tensor(case.loss, case.shapes)
    names = {v.name: v.shape for v in walk(loss) if v.op == "var"}
    params, data = {}, {}
    for name, shape in names.items():
        shape = _concrete(shape)
        if name in case.onehot:
            value = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1] or None)]
        elif name in case.positive:
            value = rng.uniform(0.1, 0.9, shape)
        else:
            value = rng.normal(size=shape) * (0.7 if name in case.params else 1.0)
        (params if name in case.params else data)[name] = np.asarray(value, dtype=np.float64)
    return params, data


def _relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300))


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def compiled(request):
    case = request.param
    return case, compile_tensor(case.loss, case.shapes, list(case.params))


def test_gradient_matches_autograd(compiled):
    case, module = compiled
    params, data = _draw(case)
    value, grads = module.loss_and_grad(params, *[data[n] for n in module.DATA])
    reference_grads = autograd.grad(lambda p: case.reference(p, data))(params)
    assert abs(value - case.reference(params, data)) <= 1e-12 * max(1.0, abs(value))
    for name in case.params:
        assert _relative_error(grads[name], reference_grads[name]) < 1e-10, name


def test_gradient_matches_central_differences(compiled):
    case, module = compiled
    params, data = _draw(case, seed=1)
    flat = np.concatenate([np.ravel(params[name]) for name, _ in module.PARAMS])
    arrays = [data[n] for n in module.DATA]
    gradient = module.grad(flat, *arrays)
    direction = np.random.default_rng(2).normal(size=flat.shape)
    h = 1e-6
    numeric = (
        module.loss(flat + h * direction, *arrays) - module.loss(flat - h * direction, *arrays)
    ) / (2 * h)
    assert numeric == pytest.approx(gradient @ direction, rel=1e-6, abs=1e-8)


def test_loss_grad_and_loss_and_grad_agree(compiled):
    case, module = compiled
    params, data = _draw(case, seed=3)
    arrays = [data[n] for n in module.DATA]
    value, grads = module.loss_and_grad(params, *arrays)
    assert value == module.loss(params, *arrays)
    separate = module.grad(params, *arrays)
    for name in case.params:
        np.testing.assert_array_equal(grads[name], separate[name])
        assert grads[name].shape == params[name].shape


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_printed_formula_parses_back_to_the_same_values(case):
    loss = parse_tensor(case.loss, case.shapes)
    wrt = [var(p, case.shapes.get(p, ())) for p in case.params]
    gradient = reverse_mode(loss, wrt)
    params, data = _draw(case, seed=4)
    for param, grad in zip(case.params, gradient.gradients, strict=True):
        text = to_text(grad)
        reparsed = parse_tensor(text, case.shapes)
        assert reparsed.shape == grad.shape
        np.testing.assert_allclose(
            evaluate(reparsed, {**params, **data}),
            evaluate(grad, {**params, **data}),
            rtol=1e-12,
            atol=1e-14,
            err_msg=f"{param}: {text}",
        )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_sample_by_sample_matrix_and_no_diagonal(case):
    loss = parse_tensor(case.loss, case.shapes)
    gradient = reverse_mode(loss, [var(p, case.shapes.get(p, ())) for p in case.params])
    for node in walk(list(gradient.gradients)):
        assert node.shape != ("n", "n")
        assert node.op not in ("diag",)


def test_least_squares_formula_is_the_textbook_one():
    shapes = {"X": ("n", "d"), "w": ("d",), "y": ("n",)}
    loss = parse_tensor("mean((X @ w - y)**2)", shapes)
    (grad,) = reverse_mode(loss, [var("w", ("d",))]).gradients
    assert to_text(grad) == "2/n * X.T @ (X @ w - y)"
    assert grad.shape == ("d",)


def test_softmax_cross_entropy_is_fused():
    shapes = {"X": ("n", "d"), "W": ("d", "k"), "b": ("k",), "Y": ("n", "k")}
    loss = parse_tensor("cross_entropy(Y, softmax(X @ W + b))", shapes)
    gradient = reverse_mode(loss, [var("W", ("d", "k")), var("b", ("k",))])
    assert to_text(gradient["W"]) == "X.T @ (softmax(X @ W + b) - Y) / n"
    assert to_text(gradient["b"]) == "sum(softmax(X @ W + b) - Y, axis=0) / n"


def test_unused_parameter_is_bad_input_even_with_a_declared_shape():
    # the rule of --wrt (README, "Unknown names are errors"): never a silent zero gradient
    with pytest.raises(InputError, match="parameter 'v' does not appear in the expression"):
        compile_tensor("sum(X @ w)", {"X": ("n", 3), "w": (3,), "v": (2, 2)}, ["w", "v"])


_ACTIVATIONS = {
    "tanh": anp.tanh,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "exp": anp.exp,
    "sqrt1p": None,
}


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(["tanh", "sigmoid", "softplus"]), min_size=1, max_size=4),
    st.sampled_from(["sum", "mean"]),
    st.integers(0, 2**16),
)
def test_random_elementwise_chains_match_autograd(chain, reduction, seed):
    text = "X @ W + b"
    for name in chain:
        text = f"{name}({text}) @ V" if name == "tanh" else f"{name}({text})"
    text = f"{reduction}(({text}) * Y)"
    shapes = {"X": ("n", 3), "W": (3, 3), "b": (3,), "V": (3, 3), "Y": ("n", 3)}
    module = compile_tensor(text, shapes, ["W", "b"])

    def reference(p):
        z = data["X"] @ p["W"] + p["b"]
        for name in chain:
            z = _ACTIVATIONS[name](z) @ data["V"] if name == "tanh" else _ACTIVATIONS[name](z)
        return getattr(anp, reduction)(z * data["Y"])

    rng = np.random.default_rng(seed)
    data = {
        "X": rng.normal(size=(5, 3)),
        "V": rng.normal(size=(3, 3)),
        "Y": rng.normal(size=(5, 3)),
    }
    params = {"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3)}
    grads = module.grad(params, *[data[n] for n in module.DATA])
    expected = autograd.grad(reference)(params)
    for name in params:
        assert _relative_error(grads[name], expected[name]) < 1e-10


def test_logistic_log_likelihood_gradient_is_tidied_to_the_textbook_form():
    shapes = {"X": ("n", "d"), "w": ("d",), "y": ("n",)}
    text = "mean(-y*log(sigmoid(X @ w)) - (1 - y)*log(1 - sigmoid(X @ w)))"
    (grad,) = reverse_mode(parse_tensor(text, shapes), [var("w", ("d",))]).gradients
    assert to_text(grad) == "X.T @ (sigmoid(X @ w) - y) / n"


def test_tidying_never_changes_values_or_shapes():
    from symdiff.ir.simplify import tidy

    shapes = {"Z": ("n", 3), "b": (3,), "y": ("n", 1)}
    node = parse_tensor(
        "(1 - y) * sigmoid(Z + b) - y * sigmoid(-(Z + b)) + 0 * Z + b * b / b", shapes
    )
    tidied = tidy(node)
    assert tidied.shape == node.shape
    rng = np.random.default_rng(5)
    values = {"Z": rng.normal(size=(4, 3)), "b": rng.normal(size=3), "y": rng.random((4, 1))}
    np.testing.assert_allclose(evaluate(tidied, values), evaluate(node, values), rtol=1e-12)


JACOBIAN_CASES = [
    ("sigmoid(X @ w)", "w", lambda p, d: _sigmoid(d["X"] @ p)),
    ("softmax(W @ x)", "x", lambda p, d: _softmax(d["W"] @ p)),
    (
        "log_softmax(W @ x) + logsumexp(x)",
        "x",
        lambda p, d: d["W"] @ p - _lse(d["W"] @ p, 0) + _lse(p, 0),
    ),
    (
        "relu(A @ x) / (1 + norm2(x))",
        "x",
        lambda p, d: anp.maximum(d["A"] @ p, 0) / (1 + anp.sum(p**2)),
    ),
    ("tanh(x) * x - x / (2 + exp(x))", "x", lambda p, d: anp.tanh(p) * p - p / (2 + anp.exp(p))),
    ("X @ w + b**2 * (X @ w)", "b", lambda p, d: d["X"] @ d["w"] + p**2 * (d["X"] @ d["w"])),
    ("sigmoid(X @ V) * b", "b", lambda p, d: _sigmoid(d["X"] @ d["V"]) * p),
    ("sum(X, axis=0) * x + w @ A", "x", lambda p, d: anp.sum(d["X"], axis=0) * p + d["w"] @ d["A"]),
]
JACOBIAN_SHAPES = {"X": ("n", D), "w": (D,), "W": (K, D), "x": (D,), "A": (D, D), "V": (D, K)}


@pytest.mark.parametrize(
    "text, param, reference", JACOBIAN_CASES, ids=[c[0] for c in JACOBIAN_CASES]
)
def test_explicit_jacobian_matches_autograd(text, param, reference):
    from symdiff.autodiff.forward import jacobian

    shapes = JACOBIAN_SHAPES
    expression = parse_tensor(text, shapes)
    node = var(param, shapes.get(param, ()))
    matrix = jacobian(expression, node)
    assert matrix is not None and matrix.shape == expression.shape + node.shape
    rng = np.random.default_rng(8)
    values = {name: rng.normal(size=_concrete(shape)) for name, shape in shapes.items()}
    values["b"] = 0.7
    data = {k: v for k, v in values.items() if k != param}
    expected = autograd.jacobian(lambda p: reference(p, data))(np.asarray(values[param]))
    actual = evaluate(matrix, values)
    assert _relative_error(np.broadcast_to(actual, expected.shape), expected) < 1e-10
    reparsed = parse_tensor(to_text(matrix), shapes)  # broadcast_to(A, (n, d)) included
    np.testing.assert_allclose(evaluate(reparsed, values), actual, rtol=1e-12)


def test_jacobian_without_a_matrix_form_is_none():
    from symdiff.autodiff.forward import jacobian

    shapes = {"X": ("n", "d"), "A": ("d", "d"), "w": ("d",)}
    assert jacobian(parse_tensor("X @ A", shapes), var("A", ("d", "d"))) is None
    assert jacobian(parse_tensor("outer(w, w)", shapes), var("w", ("d",))) is None
