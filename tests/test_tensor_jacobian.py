"""Generalized Jacobians (symdiff.explanations.index_notation): index notation, einsum, values.

Every Jacobian of rank > 2 is evaluated from its index form (one np.einsum per term) and
compared with torch.autograd.functional.jacobian in float64; the CLI runs as a subprocess."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from process_support import run_symdiff

from symdiff.explanations.index_notation import (
    JACOBIAN_LIMIT,
    evaluate_jacobian,
    index_jacobian,
)
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.ir.nodes import variables

SHAPES = {"X": ("n", "d"), "W": ("d", "m"), "w": ("d",), "b": ("m",), "A": ("n", "m")}
DIMS = {"n": 3, "d": 2, "m": 4}

#: (expression, parameter, the same function in torch of a dict of tensors)
CASES = [
    ("X @ W", "W", lambda t: t["X"] @ t["W"]),
    ("X @ W", "X", lambda t: t["X"] @ t["W"]),
    ("sigmoid(X @ W)", "W", lambda t: torch.sigmoid(t["X"] @ t["W"])),
    ("tanh(X @ W + b)", "W", lambda t: torch.tanh(t["X"] @ t["W"] + t["b"])),
    ("tanh(X @ W + b)", "X", lambda t: torch.tanh(t["X"] @ t["W"] + t["b"])),
    ("(X @ W).T", "W", lambda t: (t["X"] @ t["W"]).T),
    ("exp(X @ W) / (1 + A**2)", "W", lambda t: torch.exp(t["X"] @ t["W"]) / (1 + t["A"] ** 2)),
    ("A * (X @ W) - 3 * A", "A", lambda t: t["A"] * (t["X"] @ t["W"]) - 3 * t["A"]),
    ("X.T @ A", "A", lambda t: t["X"].T @ t["A"]),
    ("X.T @ A", "X", lambda t: t["X"].T @ t["A"]),
    ("log(1 + exp(X @ W)) * b", "W", lambda t: torch.log(1 + torch.exp(t["X"] @ t["W"])) * t["b"]),
]
RANK_OVER_2 = CASES


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.uniform(-1, 1, [DIMS[d] for d in s]) for n, s in SHAPES.items()}


@pytest.mark.parametrize(("text", "param", "function"), RANK_OVER_2)
def test_rank_over_2_agrees_with_torch(text: str, param: str, function) -> None:
    expression = parse_tensor(text, SHAPES)
    node = next(v for v in variables(expression) if v.name == param)
    jac = index_jacobian(expression, node)
    assert len(jac.shape) > 2
    point = _arrays(1)
    used = {v.name: point[v.name] for v in variables(expression)}
    ours = evaluate_jacobian(jac, used, DIMS)
    tensors = {n: torch.tensor(a, dtype=torch.float64) for n, a in point.items()}

    def of(value: torch.Tensor) -> torch.Tensor:
        return function({**tensors, param: value})

    theirs = torch.autograd.functional.jacobian(of, tensors[param]).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_matmul_index_form_is_the_textbook_one() -> None:
    expression = parse_tensor("X @ W", SHAPES)
    w = next(v for v in variables(expression) if v.name == "W")
    jac = index_jacobian(expression, w)
    assert jac.index_text() == "∂f[i,j]/∂W[k,l] = X[i,k] δ[j,l]"
    assert jac.einsum_text() == 'einsum("ik,jl->ijkl", X, eye(m))'
    assert jac.shape == ("n", "m", "d", "m")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(-3, 3))
def test_sum_of_squares_matches_finite_differences(seed: int, scale: float) -> None:
    """A rank-1 Jacobian of (X @ w)**2 * c against central differences, at random points."""
    expression = parse_tensor(f"(X @ w)**2 * {scale!r}", SHAPES)
    w = next(v for v in variables(expression) if v.name == "w")
    point = _arrays(seed)
    values = {"X": point["X"], "w": point["w"]}
    ours = evaluate_jacobian(index_jacobian(expression, w), values, DIMS)
    h = 1e-6
    columns = []
    for k in range(DIMS["d"]):
        step = np.zeros(DIMS["d"])
        step[k] = h
        up = scale * (point["X"] @ (point["w"] + step)) ** 2
        down = scale * (point["X"] @ (point["w"] - step)) ** 2
        columns.append((up - down) / (2 * h))
    np.testing.assert_allclose(ours, np.stack(columns, axis=1), rtol=1e-6, atol=1e-8)


def test_size_bound_is_refused_with_one_line() -> None:
    expression = parse_tensor("X @ W", {"X": (40, 40), "W": (40, 40)})
    w = next(v for v in variables(expression) if v.name == "W")
    jac = index_jacobian(expression, w)
    with pytest.raises(Exception, match=f"more than the limit of {JACOBIAN_LIMIT:,}"):
        evaluate_jacobian(jac, {"X": np.ones((40, 40)), "W": np.ones((40, 40))}, {})


def test_cli_prints_index_form_einsum_and_value() -> None:
    result = run_symdiff(
        "jacobian", "X @ W", "--shape", "X=2,2", "--shape", "W=2,2", "--wrt", "W",
        "--at", "X=[[1,2],[3,4]],W=[[1,0],[0,1]]", "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    (row,) = data["index_form"]
    assert row["index"] == "∂f[i,j]/∂W[k,l] = X[i,k] δ[j,l]"
    expected = np.einsum("ik,jl->ijkl", np.array([[1.0, 2], [3, 4]]), np.eye(2))
    np.testing.assert_array_equal(np.array(row["value"]), expected)
