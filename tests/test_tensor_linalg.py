"""Matrix-calculus operations (det, inv, logdet, solve, trace, diag, norm1, frobenius, kron) and
erf/gelu in generated code: gradients against PyTorch float64 autograd and central differences,
through the gradient formulas (symdiff.tensor_gradient) and generated modules (compile_tensor)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symdiff
from symdiff.autodiff import forward
from symdiff.codegen.numpy_print import NumpyPrinter
from symdiff.codegen.templating import template_source
from symdiff.codegen.tensor import evaluate
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.ir.nodes import var

Arrays = dict[str, np.ndarray]


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d)


@dataclass(frozen=True)
class Case:
    """A tensor loss, its shapes, parameters, values and the same loss in PyTorch."""

    name: str
    text: str
    shapes: dict[str, tuple[Any, ...]]
    params: tuple[str, ...]
    values: Callable[[np.random.Generator], Arrays]
    torch_loss: Callable[..., torch.Tensor]


def _normal(**shapes: tuple[int, ...]) -> Callable[[np.random.Generator], Arrays]:
    return lambda rng: {name: rng.normal(size=shape) for name, shape in shapes.items()}


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x)  # the exact form x*(1 + erf(x/sqrt(2)))/2


CASES = [
    Case("det", "det(A)", {"A": (3, 3)}, ("A",), _normal(A=(3, 3)), lambda A: torch.linalg.det(A)),
    Case(
        "det_product",
        "det(A @ B) + det(2*A)",
        {"A": (3, 3), "B": (3, 3)},
        ("A", "B"),
        _normal(A=(3, 3), B=(3, 3)),
        lambda A, B: torch.linalg.det(A @ B) + torch.linalg.det(2 * A),
    ),
    Case(
        "inv",
        "sum(inv(A) * C)",
        {"A": (3, 3), "C": (3, 3)},
        ("A",),
        lambda rng: {"A": rng.normal(size=(3, 3)) + 3 * np.eye(3), "C": rng.normal(size=(3, 3))},
        lambda A, C: torch.sum(torch.linalg.inv(A) * C),
    ),
    Case(
        "logdet_spd",
        "logdet(A @ A.T + eye(3))",
        {"A": (3, 3)},
        ("A",),
        _normal(A=(3, 3)),
        lambda A: torch.logdet(A @ A.T + torch.eye(3, dtype=torch.float64)),
    ),
    Case(
        "logdet_nonsymmetric",
        "logdet(A) + logdet(A.T @ A)",
        {"A": (3, 3)},
        ("A",),
        lambda rng: {"A": rng.normal(size=(3, 3)) + 4 * np.eye(3)},
        lambda A: torch.logdet(A) + torch.logdet(A.T @ A),
    ),
    Case(
        "trace_inv",
        "trace(inv(S) @ M)",
        {"S": (3, 3), "M": (3, 3)},
        ("S", "M"),
        lambda rng: {"S": _spd(rng, 3), "M": rng.normal(size=(3, 3))},
        lambda S, M: torch.trace(torch.linalg.inv(S) @ M),
    ),
    Case(
        "gaussian_nll",
        "0.5*logdet(S) + 0.5*trace(inv(S) @ R.T @ R)/n",
        {"S": (3, 3), "R": ("n", 3)},
        ("S",),
        lambda rng: {"S": _spd(rng, 3), "R": rng.normal(size=(7, 3))},
        lambda S, R: 0.5 * torch.logdet(S) + 0.5 * torch.trace(torch.linalg.inv(S) @ R.T @ R) / 7,
    ),
    Case(
        "gaussian_nll_cholesky",
        "0.5*logdet(L @ L.T + eye(3)) + 0.5*trace(inv(L @ L.T + eye(3)) @ (X - m).T @ (X - m))/n",
        {"L": (3, 3), "m": (3,), "X": ("n", 3)},
        ("L", "m"),
        _normal(L=(3, 3), m=(3,), X=(6, 3)),
        lambda L, m, X: (
            0.5 * torch.logdet(L @ L.T + torch.eye(3, dtype=torch.float64))
            + 0.5
            * torch.trace(
                torch.linalg.inv(L @ L.T + torch.eye(3, dtype=torch.float64)) @ (X - m).T @ (X - m)
            )
            / 6
        ),
    ),
    Case(
        "solve",
        "sum(solve(A, B)**2) + sum(v @ inv(A))",
        {"A": (3, 3), "B": (3, 2), "v": (3,)},
        ("A", "B", "v"),
        lambda rng: {
            "A": rng.normal(size=(3, 3)) + 3 * np.eye(3),
            "B": rng.normal(size=(3, 2)),
            "v": rng.normal(size=3),
        },
        lambda A, B, v: (
            torch.sum(torch.linalg.solve(A, B) ** 2) + torch.sum(v @ torch.linalg.inv(A))
        ),
    ),
    Case(
        "kron",
        "sum(kron(A, B) * C)",
        {"A": (2, 3), "B": (3, 2), "C": (6, 6)},
        ("A", "B"),
        _normal(A=(2, 3), B=(3, 2), C=(6, 6)),
        lambda A, B, C: torch.sum(torch.kron(A, B) * C),
    ),
    Case(
        "kron_filled",
        "sum(kron(A, B)) + trace(kron(A, B) @ kron(A, B).T)",
        {"A": (2, 2), "B": (2, 3)},
        ("A", "B"),
        _normal(A=(2, 2), B=(2, 3)),
        lambda A, B: (
            torch.sum(torch.kron(A, B)) + torch.trace(torch.kron(A, B) @ torch.kron(A, B).T)
        ),
    ),
    Case(
        "norm1",
        "norm1(X @ w - y) + 0.1*norm1(w)",
        {"X": ("n", 3), "w": (3,), "y": ("n",)},
        ("w",),
        _normal(X=(8, 3), w=(3,), y=(8,)),
        lambda X, w, y: torch.sum(torch.abs(X @ w - y)) + 0.1 * torch.sum(torch.abs(w)),
    ),
    Case(
        "frobenius",
        "frobenius(X @ W - Y) + frobenius(-3*W)",
        {"X": ("n", 3), "W": (3, 2), "Y": ("n", 2)},
        ("W",),
        _normal(X=(8, 3), W=(3, 2), Y=(8, 2)),
        lambda X, W, Y: torch.linalg.norm(X @ W - Y) + torch.linalg.norm(-3 * W),
    ),
    Case(
        "diag",
        "sum(diag(v) @ A * C) + sum(diag(A) * v) + sum(diag(A @ A.T)**2)",
        {"v": (3,), "A": (3, 3), "C": (3, 3)},
        ("v", "A"),
        _normal(v=(3,), A=(3, 3), C=(3, 3)),
        lambda v, A, C: (
            torch.sum(torch.diag(v) @ A * C)
            + torch.sum(torch.diag(A) * v)
            + torch.sum(torch.diag(A @ A.T) ** 2)
        ),
    ),
    Case(
        "erf_gelu_network",
        "mean((gelu(X @ W1 + b1) @ w2 - y)**2) + sum(erf(b1))",
        {"X": ("n", 3), "W1": (3, 4), "b1": (4,), "w2": (4,), "y": ("n",)},
        ("W1", "b1", "w2"),
        _normal(X=(10, 3), W1=(3, 4), b1=(4,), w2=(4,), y=(10,)),
        lambda X, W1, b1, w2, y: (
            torch.mean((_gelu(X @ W1 + b1) @ w2 - y) ** 2) + torch.sum(torch.special.erf(b1))
        ),
    ),
    Case(
        "elementwise_table",
        "sum(sin(X @ W)) + sum(cos(W)) + sum(log(1 + W**2, 10)) + sum(max(X @ W, 0.5*X @ W))"
        " + sum(min(W, 0.25)) + sum(tanh(W) * log2(2 + W**2))",
        {"X": ("n", 3), "W": (3, 2)},
        ("W",),
        _normal(X=(5, 3), W=(3, 2)),
        lambda X, W: (
            torch.sum(torch.sin(X @ W))
            + torch.sum(torch.cos(W))
            + torch.sum(torch.log(1 + W**2) / math.log(10))
            + torch.sum(torch.maximum(X @ W, 0.5 * X @ W))
            + torch.sum(torch.minimum(W, torch.tensor(0.25, dtype=torch.float64)))
            + torch.sum(torch.tanh(W) * torch.log2(2 + W**2))
        ),
    ),
]


def _torch_reference(case: Case, values: Arrays) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and d loss / d param for each parameter by PyTorch float64 autograd."""
    tensors = {
        name: torch.tensor(values[name], dtype=torch.float64, requires_grad=name in case.params)
        for name in values
    }
    names = list(case.values(np.random.default_rng(0)))
    loss = case.torch_loss(*(tensors[name] for name in names))
    grads = torch.autograd.grad(loss, [tensors[p] for p in case.params])
    return float(loss.detach()), {p: g.numpy() for p, g in zip(case.params, grads, strict=True)}


def _close(got: object, want: np.ndarray, rtol: float = 1e-10) -> None:
    got = np.broadcast_to(np.asarray(got, dtype=np.float64), want.shape)
    scale = max(float(np.max(np.abs(want))), 1e-300)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def _data(case: Case, values: Arrays) -> list[np.ndarray]:
    return [values[name] for name in values if name not in case.params]


def test_at_least_ten_losses() -> None:
    assert len(CASES) >= 10
    used = {op for case in CASES for op in ("det", "inv", "logdet", "kron", "norm1", "diag")
            if f"{op}(" in case.text}  # fmt: skip
    assert used == {"det", "inv", "logdet", "kron", "norm1", "diag"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("seed", [1, 2])
def test_gradient_formulas_agree_with_torch(case: Case, seed: int) -> None:
    values = case.values(np.random.default_rng(seed))
    gradient = symdiff.tensor_gradient(case.text, case.shapes, list(case.params))
    value, want = _torch_reference(case, values)
    _close(evaluate(gradient.loss, values), np.asarray(value))
    for name in case.params:
        _close(evaluate(gradient[name], values), want[name])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_generated_module_agrees_with_torch_and_differences(case: Case) -> None:
    values = case.values(np.random.default_rng(3))
    module = symdiff.compile_tensor(case.text, case.shapes, list(case.params))
    params = {name: values[name] for name in case.params}
    data = _data(case, values)
    value, want = _torch_reference(case, values)
    loss, grads = module.loss_and_grad(params, *data)
    _close(loss, np.asarray(value))
    for name in case.params:
        _close(grads[name], want[name])
    flat = np.concatenate([np.ravel(values[name]) for name in case.params])
    flat_grad = module.grad(flat, *data)
    step = 1e-6
    for index in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[index] += step
        down[index] -= step
        slope = (module.loss(up, *data) - module.loss(down, *data)) / (2 * step)
        assert flat_grad[index] == pytest.approx(slope, rel=1e-6, abs=1e-6), index


def test_products_with_an_inverse_are_solves_in_generated_code() -> None:
    source = symdiff.generate_tensor(
        "0.5*logdet(S) + 0.5*trace(inv(S) @ R.T @ R)/n", {"S": (3, 3), "R": ("n", 3)}, ["S"]
    )
    body = source.split("# ----")[0]
    assert "np.linalg.solve(S, R.T)" in body
    assert "np.linalg.inv(S) @" not in body and "@ np.linalg.inv" not in body
    assert "_logdet(S)" in body and "np.linalg.slogdet" in source


def test_logdet_of_a_non_positive_determinant_is_a_clear_value_error() -> None:
    module = symdiff.compile_tensor("logdet(S)", {"S": (2, 2)}, ["S"])
    assert module.loss({"S": np.diag([2.0, 3.0])}) == pytest.approx(math.log(6.0), rel=1e-15)
    with pytest.raises(ValueError, match=r"logdet\(A\) needs det\(A\) > 0.*negative"):
        module.loss({"S": np.diag([-2.0, 3.0])})
    with pytest.raises(ValueError, match=r"zero"):
        module.loss_and_grad({"S": np.zeros((2, 2))})


@pytest.mark.parametrize(
    "text, shapes, message",
    [
        ("det(A)", {"A": (2, 3)}, "det needs a square matrix, got (2, 3)"),
        ("sum(inv(v))", {"v": (3,)}, "inv needs a square matrix, got (3,)"),
        ("sum(diag(A))", {"A": (2, 3)}, "diag needs a vector or a square matrix"),
        ("sum(kron(A, B))", {"A": ("n", 2), "B": (2, 2)}, "kron needs numeric dimensions"),
        ("norm1(x)", {}, "norm1 needs a vector or matrix, got a scalar"),
    ],
)
def test_shape_errors_name_the_operation(text: str, shapes: dict, message: str) -> None:
    with pytest.raises(symdiff.ShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        symdiff.tensor_gradient(text, shapes)


def test_printed_gradients_are_matrix_formulas() -> None:
    gradient = symdiff.tensor_gradient(
        "0.5*logdet(S) + 0.5*trace(inv(S) @ R.T @ R)/n", {"S": ("d", "d"), "R": ("n", "d")}, ["S"]
    )
    from symdiff.ir.printing import to_text

    assert to_text(gradient["S"]) == "-0.5/n * inv(S).T @ (R.T @ R) @ inv(S).T + 0.5 * inv(S).T"
    det = symdiff.tensor_gradient("det(A) + norm1(A)", {"A": (3, 3)})
    assert to_text(det["A"]) == "sign(A) + det(A) * inv(A).T"


@pytest.mark.parametrize(
    "text, shapes, wrt, reference",
    [
        ("inv(A + t*B)", {"A": (3, 3), "B": (3, 3)}, "t",
         lambda A, B, t: torch.linalg.inv(A + t * B)),
        ("diag(t*v)", {"v": (3,)}, "t", lambda v, t: torch.diag(t * v)),
        ("kron(t*A, B)", {"A": (2, 2), "B": (1, 2)}, "t", lambda A, B, t: torch.kron(t * A, B)),
        ("v * (norm1(x) + frobenius(x))", {"v": (3,), "x": (3,)}, "x",
         lambda v, x: v * (torch.sum(torch.abs(x)) + torch.linalg.norm(x))),
        ("v * det(A + t*B)", {"v": (2,), "A": (2, 2), "B": (2, 2)}, "t",
         lambda v, A, B, t: v * torch.linalg.det(A + t * B)),
        ("v * logdet(A + t*eye(2)) + v * trace(t*A)", {"v": (2,), "A": (2, 2)}, "t",
         lambda v, A, t: v * torch.logdet(A + t * torch.eye(2, dtype=torch.float64))
         + v * torch.trace(t * A)),
    ],
)  # fmt: skip
def test_forward_jacobians_agree_with_torch(text, shapes, wrt, reference) -> None:
    rng = np.random.default_rng(5)
    values = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    values.update({"A": _spd(rng, len(values["A"]))} if "A" in values else {})
    values.setdefault(wrt, rng.normal(size=shapes.get(wrt, ())))
    expression = parse_tensor(text, shapes)
    jacobian = forward.jacobian(expression, var(wrt, tuple(shapes.get(wrt, ()))))
    assert jacobian is not None
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}
    order = list(reference.__code__.co_varnames[: reference.__code__.co_argcount])

    def function(point: torch.Tensor) -> torch.Tensor:
        return reference(*(point if k == wrt else tensors[k] for k in order))

    want = torch.autograd.functional.jacobian(function, tensors[wrt]).numpy()
    _close(evaluate(jacobian, values), want)


# --------------------------------------------------------------------------- erf without SciPy

_ERF: dict[str, Any] = {"np": np}
exec(template_source("helpers/_erf.py.jinja"), _ERF)  # noqa: S102 - the shipped helper's text
erf = _ERF["_erf"]


def _assert_erf(xs: np.ndarray) -> None:
    got = erf(xs)
    want = np.array([math.erf(float(x)) for x in xs])
    assert got.shape == xs.shape and got.dtype == np.float64
    error = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(float).tiny)
    worst = int(np.argmax(error))
    assert error[worst] <= 1e-15, (xs[worst], got[worst], want[worst])


def test_erf_on_a_dense_grid_and_extremes() -> None:
    grid = np.linspace(-8.0, 8.0, 400_001)
    logs = np.geomspace(1e-300, 30.0, 100_001)
    extremes = np.array(
        [0.0, -0.0, 5e-324, 2.2e-308, 1.1e-16, 0.46875, -0.46875, 4.0, -4.0, 5.9, 26.5, 27.0,
         1e300, -1e300, np.finfo(float).max]
    )  # fmt: skip
    _assert_erf(np.concatenate([grid, logs, -logs, extremes]))
    assert erf(np.inf) == 1.0 and erf(-np.inf) == -1.0 and np.isnan(erf(np.nan))
    assert math.copysign(1.0, float(erf(-0.0))) == -1.0


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_erf_agrees_with_math_erf(x: float) -> None:
    _assert_erf(np.array([x]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=50))
def test_erf_is_vectorised(xs: list[float]) -> None:
    array = np.array(xs)
    assert np.array_equal(erf(array), np.array([erf(x) for x in xs]))


def test_erf_and_gelu_in_generated_scalar_and_tensor_modules() -> None:
    assert NumpyPrinter()(parse_tensor("erf(x)", {})) == "_erf(x)"
    scalar = symdiff.compile("gelu(w*x)", "w", "x")
    tensor = symdiff.compile_tensor("mean(gelu(w*x))", {"x": ("n",)}, ["w"], ["x"])
    x = np.linspace(-3, 3, 11)
    w = 0.7
    u = w * x
    want = np.mean([v * (1 + math.erf(v / math.sqrt(2))) / 2 for v in u])
    density = [math.exp(-v * v / 2) / math.sqrt(2 * math.pi) for v in u]
    cdf = [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in u]
    slope = np.mean([xi * (c + v * p) for xi, v, c, p in zip(x, u, cdf, density, strict=True)])
    for module in (scalar, tensor):
        value, gradient = module.loss_and_grad(np.array([w]), x)
        assert value == pytest.approx(want, rel=1e-14)
        assert gradient[0] == pytest.approx(slope, rel=1e-13)
