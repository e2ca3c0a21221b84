"""``symdiff check --shape``: matrix answers (explanations/tensor_check.py), as subprocesses."""

from __future__ import annotations

import json

import pytest
from process_support import run_symdiff

from symdiff.explanations.tensor_check import check_tensor_answer

LOGISTIC = "sum(log(1 + exp(X @ w)) - y * (X @ w))"
SHAPES = {"X": ("n", "d"), "w": ("d",), "y": ("n",)}
ARGS = ["--shape", "X=n,d", "--shape", "w=d", "--shape", "y=n", "--wrt", "w"]


@pytest.mark.parametrize(
    "answer",
    [
        "X.T @ (sigmoid(X @ w) - y)",
        "(sigmoid(X @ w) - y) @ X",
        "X.T @ sigmoid(X @ w) - X.T @ y",
        "X.T @ (1 / (1 + exp(-(X @ w))) - y)",
    ],
)
def test_correct_answers_written_differently(answer: str) -> None:
    result = run_symdiff("check", LOGISTIC, *ARGS, "--answer", answer)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"correct: {answer} agrees numerically, at 6 random points" in result.stdout


def test_symdiffs_own_form_agrees_symbolically() -> None:
    check = check_tensor_answer("mean((X @ w - y)**2)", SHAPES, "w", "2/n * X.T @ (X @ w - y)")
    assert check.correct
    assert check.how == "is the same matrix formula (symbolically)"


def test_wrong_shape_is_named() -> None:
    result = run_symdiff("check", LOGISTIC, *ARGS, "--answer", "sigmoid(X @ w) - y")
    assert result.returncode == 1
    assert (
        "incorrect: sigmoid(X @ w) - y has the wrong shape: (n,), "
        "but dL/dw has the shape of w, (d,)" in result.stdout
    )


def test_transposed_shape_gets_a_hint() -> None:
    check = check_tensor_answer("sum(X @ W)", {"X": ("n", "d"), "W": ("d", "m")}, "W",
                                "sum(X, axis=0) @ W.T @ W @ W.T")  # fmt: skip
    assert not check.correct
    assert "(d,)" in check.how  # a vector where a matrix is due
    check = check_tensor_answer("sum((X @ W) * C)", {"X": ("n", "d"), "W": ("d", "m"),
                                "C": ("n", "m")}, "W", "C.T @ X")  # fmt: skip
    assert not check.correct
    assert check.how.endswith("(the transposed shape: transpose your answer?)")


def test_transposed_square_answer_has_a_counterexample() -> None:
    result = run_symdiff(
        "check", "sum((X @ W) * C)", "--shape", "X=d,d", "--shape", "W=d,d", "--shape", "C=d,d",
        "--wrt", "W", "--answer", "C.T @ X", "--format", "json",
    )  # fmt: skip
    assert result.returncode == 1
    data = json.loads(result.stdout)
    example = data["counterexample"]
    assert example["hint"] == "your answer is the transpose of dL/dW"
    assert example["expected"] != pytest.approx(example["answer"])
    import numpy as np

    point = {k: np.array(v) for k, v in example["point"].items()}
    row, column = example["entry"]
    assert example["expected"] == pytest.approx((point["X"].T @ point["C"])[row, column])
    assert example["answer"] == pytest.approx((point["C"].T @ point["X"])[row, column])


def test_off_by_a_factor() -> None:
    result = run_symdiff("check", LOGISTIC, *ARGS, "--answer", "2 * X.T @ (sigmoid(X @ w) - y)")
    assert result.returncode == 1
    assert "your answer is 2 times dL/dw" in result.stdout
    assert "entry dL/dw[" in result.stdout


def test_ill_shaped_answer_and_unknown_symbols() -> None:
    result = run_symdiff("check", LOGISTIC, *ARGS, "--answer", "X @ X")
    assert result.returncode == 1
    assert "has no shape" in result.stdout
    result = run_symdiff("check", LOGISTIC, *ARGS, "--answer", "X.T @ y + z")
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: the answer uses z, which the loss does not"
