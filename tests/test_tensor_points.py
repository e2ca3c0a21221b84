"""Tensor points (symdiff.frontend.points) and --at/--direction with shapes, as subprocesses."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from process_support import run_symdiff

from symdiff.errors import InputError
from symdiff.frontend.points import compact, parse_literal, read_point

LINEAR = ["--shape", "X=n,d", "--shape", "w=d", "--shape", "y=n", "--wrt", "w"]
X = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, array_shapes(min_dims=0, max_dims=4, max_side=3),
              elements=st.floats(-1e6, 1e6, allow_nan=False)))  # fmt: skip
def test_literal_round_trips(array: np.ndarray) -> None:
    text = json.dumps(array.tolist())
    np.testing.assert_array_equal(parse_literal(text), array)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2", "a ']' is missing"),
        ("[[1, 2], [3]]", "ragged list"),
        ("[1, 2]]", "unexpected ']'"),
        ("__import__('os')", "use numbers and brackets"),
        ("[1,,2]", "unexpected ','"),
        ("[" * 9 + "1" + "]" * 9, "nested deeper than 8"),
        ("1e999", "finite"),
    ],
)
def test_bad_literals_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_literal(text)


def test_named_dimensions_are_bound_consistently() -> None:
    shapes = {"X": ("n", "d"), "w": ("d",)}
    with pytest.raises(InputError, match="but d = 2 from an earlier value"):
        read_point("X=[[1,2],[3,4]],w=[1,2,3]", shapes, ["X", "w"])
    with pytest.raises(InputError, match=r"'w' needs shape \(d,\), got \(\)"):
        read_point("X=[[1,2],[3,4]],w=3", shapes, ["X", "w"])
    with pytest.raises(InputError, match="no value for 'w'"):
        read_point("X=[[1,2],[3,4]]", shapes, ["X", "w"])


def test_compact_shows_small_arrays_whole_and_large_ones_short() -> None:
    assert compact(np.array([[1, 2.5], [3, 4]])) == "[[1, 2.5], [3, 4]]"
    assert compact(np.arange(100.0)) == "[0, 1, 2, 3, ..., 98, 99] (100,)"


def test_grad_at_a_point_matches_numpy() -> None:
    w, y = np.array([0.5, -1.0]), np.array([1.0, 0.0, 2.0])
    result = run_symdiff(
        "grad", "mean((X @ w - y)**2)", *LINEAR,
        "--at", f"X={X},w={w.tolist()},y={y.tolist()}", "--direction", "w=[3,4]",
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)["values"]
    residual = np.array(X) @ w - y
    gradient = 2 / 3 * np.array(X).T @ residual
    assert values["L"] == pytest.approx(np.mean(residual**2), rel=1e-12)
    np.testing.assert_allclose(values["dL/dw"], gradient, rtol=1e-12)
    assert values["D_u L"] == pytest.approx(gradient @ np.array([0.6, 0.8]), rel=1e-12)


def test_grad_at_a_point_from_npz() -> None:
    rng = np.random.default_rng(0)
    arrays_ = {"X": rng.normal(size=(4, 3)), "w": rng.normal(size=3), "y": rng.normal(size=4)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "values.npz"
        np.savez(path, **arrays_)
        result = run_symdiff("grad", "sum((X @ w - y)**2)", *LINEAR, "--at", str(path),
                             "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = 2 * arrays_["X"].T @ (arrays_["X"] @ arrays_["w"] - arrays_["y"])
    np.testing.assert_allclose(json.loads(result.stdout)["values"]["dL/dw"], expected, rtol=1e-12)


def test_wrong_shape_at_the_cli_is_one_line_exit_2() -> None:
    result = run_symdiff("grad", "sum(X @ w)", *LINEAR[:4], "--at", "X=[[1,2],[3,4]],w=[1,2,3]")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --at: 'w' has shape (3,), but d = 2 from an earlier value"
    ]
    assert "Traceback" not in result.stderr


def test_direction_needs_at() -> None:
    result = run_symdiff("grad", "sum(X @ w)", *LINEAR[:4], "--direction", "w=[1,2]")
    assert result.returncode == 2
    assert "--direction with --shape/--model needs --at" in result.stderr


def test_graph_and_steps_show_node_values() -> None:
    at = f"X={X},w=[0.5,-1],b=0.25"
    args = ["sum(sigmoid(X @ w + b))", "--shape", "X=n,d", "--shape", "w=d", "--wrt", "w,b"]
    graph = run_symdiff("graph", *args, "--at", at, "--format", "json")
    assert graph.returncode == 0, graph.stderr
    data = json.loads(graph.stdout)
    z = np.array(X) @ np.array([0.5, -1.0]) + 0.25
    s = 1 / (1 + np.exp(-z))
    forward = {row["node"]: row["value"] for row in data["forward"]}
    np.testing.assert_allclose(forward["H1"], s, rtol=1e-12)
    assert forward["L"] == pytest.approx(s.sum(), rel=1e-12)
    reverse = {row["node"]: row["value"] for row in data["reverse"]}
    np.testing.assert_allclose(reverse["dL/dw"], np.array(X).T @ (s * (1 - s)), rtol=1e-12)
    assert reverse["dL/db"] == pytest.approx(np.sum(s * (1 - s)), rel=1e-12)
    steps = run_symdiff("steps", *args[:-2], "--wrt", "w", "--at", at)
    assert steps.returncode == 0, steps.stderr
    assert "forward sweep (ξ = value of each node):" in steps.stdout
    assert f"H1 = sigmoid(Z1)  (n,)  {compact(s)}" in steps.stdout


def test_dimension_names_cannot_break_the_evaluation() -> None:
    """Values at a point are computed by generated code that names dimensions as typed: a name
    that is the code's own (np, a builtin) is one line, exit 2; any other name works."""
    common = ["grad", "sum(X @ w) / values", "--shape", "X=values,3", "--shape", "w=3",
              "--at", "X=[[1,2,3]],w=[1,1,1]"]  # fmt: skip
    works = run_symdiff(*common)
    assert works.returncode == 0, works.stderr
    assert "  dL/dw = [1, 2, 3]  (3,)" in works.stdout.splitlines()
    for name, reason in (("np", "is reserved"), ("sum", "would shadow the Python builtin")):
        shadow = run_symdiff(
            "grad", "sum(X @ w)", "--shape", f"X={name},3", "--shape", "w=3",
            "--at", "X=[[1,2,3]],w=[1,1,1]",
        )  # fmt: skip
        assert shadow.returncode == 2
        assert shadow.stderr.startswith(f"Error: dimension name '{name}' {reason}")
        assert shadow.stderr.count("\n") == 1
