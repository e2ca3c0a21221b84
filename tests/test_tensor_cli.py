"""``symdiff grad | diff | jacobian | steps`` with --shape / --model, through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LS = ["mean((X @ w - y)**2)", "--shape", "X=n,d", "--shape", "w=d", "--shape", "y=n"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "symdiff", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_grad_prints_the_matrix_formula_and_its_shape():
    result = run("grad", *LS, "--wrt", "w")
    assert result.returncode == 0, result.stderr
    assert "dL/dw = 2/n * X.T @ (X @ w - y)  (d,)" in result.stdout


def test_grad_json_and_latex():
    data = json.loads(run("grad", *LS, "--wrt", "w", "--format", "json").stdout)
    assert data["gradient"]["w"]["formula"] == "2/n * X.T @ (X @ w - y)"
    assert data["gradient"]["w"]["shape"] == ["d"]
    latex = run("grad", *LS, "--wrt", "w", "--format", "latex").stdout
    assert r"\frac{2}{n} {X}^{\top} \left(X w - y\right)" in latex


def test_diff_with_shapes_is_the_gradient_by_one_tensor():
    result = run("diff", *LS, "--wrt", "w")
    assert result.returncode == 0 and "2/n * X.T @ (X @ w - y)" in result.stdout


def test_scalar_path_is_unchanged():
    assert run("grad", "4*x**4*z**3").stdout.split("\n")[0] == "d/dx = 16*x**3*z**3"
    missing = run("grad")
    assert missing.returncode == 2 and "Missing argument" in missing.stderr


def test_model_file(tmp_path):
    path = tmp_path / "softmax.toml"
    path.write_text(
        'loss = "cross_entropy(Y, softmax(X @ W + b))"\n'
        '[params]\nW = ["d", "k"]\nb = ["k"]\n[data]\nX = ["n", "d"]\nY = ["n", "k"]\n',
        encoding="utf-8",
    )
    result = run("grad", "--model", str(path))
    assert result.returncode == 0, result.stderr
    assert "dL/dW = X.T @ G1 / n" in result.stdout
    assert "G1  = softmax(Z1) - Y" in result.stdout
    assert "dL/dX" not in result.stdout  # data is not differentiated


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["grad", "X @ w", "--shape", "X=n,d", "--shape", "w=k"],
            "shape error in 'X @ w': (n, d) @ (k,): inner dimensions d and k differ at column 1",
        ),
        (
            ["grad", "sum(A + B)", "--shape", "A=n,10", "--shape", "B=n,64"],
            "shapes (n, 10) + (n, 64) do not broadcast",
        ),
        (["grad", "X @ w", "--shape", "X=n,d", "--shape", "w=d"], "the loss must be a scalar"),
        (["grad", "sum(X)", "--shape", "X=n,d", "--wrt", "q"], "'q' does not appear"),
        (["grad", "sum(X)", "--shape", "X=n;d"], "bad dimension"),
        (["grad", "sum(X)", "--model", "/nonexistent/m.toml"], "cannot read model file"),
        (["grad", "sum(X)", "--shape", "X=n", "--at", "X=1"], "--at is not supported"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_jacobian_of_a_vector_valued_expression():
    result = run(
        "jacobian",
        "sigmoid(X @ w)",
        "--shape",
        "X=n,d",
        "--shape",
        "w=d",
        "--wrt",
        "w",
        "--format",
        "json",
    )
    data = json.loads(result.stdout)
    assert data["shape"] == ["n"]
    (row,) = data["jacobian"]
    assert row["jacobian_shape"] == ["n", "d"]
    assert row["vjp"] == "X.T @ (v * (sigmoid(X @ w) * (1 - sigmoid(X @ w))))"


def test_stdin_expression():
    result = run("grad", "-", "--shape", "w=d", stdin="norm2(w)\n")
    assert "dL/dw = 2 * w  (d,)" in result.stdout
