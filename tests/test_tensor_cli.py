"""``symdiff grad | diff | jacobian | steps`` with --shape / --model, through a real subprocess."""

from __future__ import annotations

import json
import re

import pytest
from process_support import run_symdiff

LS = ["mean((X @ w - y)**2)", "--shape", "X=n,d", "--shape", "w=d", "--shape", "y=n"]


run = run_symdiff  # the real command, as a user runs it


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
        (["grad", "sum(X)", "--shape", "X=n", "--at", "X=1"], "'X' needs shape (n,), got ()"),
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
    assert row["vjp"] == "X.T @ (v * sigmoid(X @ w) * (1 - sigmoid(X @ w)))"
    assert row["jacobian"] == "X * expand_dims(sigmoid(X @ w) * (1 - sigmoid(X @ w)), axis=1)"


def test_stdin_expression():
    result = run("grad", "-", "--shape", "w=d", stdin="norm2(w)\n")
    assert "dL/dw = 2 * w  (d,)" in result.stdout


MLP = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"
MLP_SHAPES = [
    "--shape",
    "X=n,8",
    "--shape",
    "Y=n,3",
    "--shape",
    "W1=8,5",
    "--shape",
    "b1=5",
    "--shape",
    "W2=5,3",
    "--shape",
    "b2=3",
]


def test_codegen_writes_a_tensor_module_that_passes_gradcheck(tmp_path):
    path = tmp_path / "mlp.py"
    result = run("codegen", MLP, *MLP_SHAPES, "--params", "W1,b1,W2,b2", "-o", str(path))
    assert result.returncode == 0, result.stderr
    check = run("gradcheck", str(path))
    assert check.returncode == 0 and check.stdout.rstrip().endswith(": ok"), check.stdout
    namespace: dict = {}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    assert namespace["PARAMS"] == (("W1", (8, 5)), ("b1", (5,)), ("W2", (5, 3)), ("b2", (3,)))
    assert namespace["DATA"] == ("X", "Y") and namespace["TARGETS"] == ("Y",)
    import numpy as np

    params = {name: np.zeros(shape) for name, shape in namespace["PARAMS"]}
    with pytest.raises(ValueError, match="rows of probabilities summing to 1"):
        namespace["loss"](params, np.ones((4, 8)), np.ones((4, 3)))


def test_codegen_with_a_model_file_and_errors(tmp_path):
    model = tmp_path / "m.toml"
    model.write_text(
        'loss = "mean((X @ w - y)**2)"\n[params]\nw = [3]\n[data]\nX = ["n", 3]\ny = ["n"]\n',
        encoding="utf-8",
    )
    result = run("codegen", "--model", str(model))
    assert result.returncode == 0 and "PARAMS = (('w', (3,)),)" in result.stdout
    symbolic = run(
        "codegen",
        "sum(X @ w)",
        "--shape",
        "X=n,d",
        "--shape",
        "w=d",
        "--params",
        "w",
        "-o",
        str(tmp_path / "no.py"),
    )
    assert symbolic.returncode == 2 and "integer sizes" in symbolic.stderr
    assert not (tmp_path / "no.py").exists()
    assert run("codegen", "x**2").stderr.startswith("Error: Missing option '--params'")


def test_steps_shows_the_matrix_chain_rule_node_by_node_with_shapes():
    result = run("steps", MLP, *MLP_SHAPES, "--wrt", "W2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"  Z1 = X @ W1 +\(n, 5\)", out)
    assert "rule matmul: Y = A @ B:  dA = G @ B.T,  dB = A.T @ G" in out
    assert "rule softmax_cross_entropy" in out
    assert "dL/dW2 = H1.T @ (softmax(Z4) - Y) / n    (5, 3)" in out
    data = json.loads(run("steps", MLP, *MLP_SHAPES, "--wrt", "W2", "--format", "json").stdout)
    assert [step["rule"] for step in data["backward"]][:3] == [
        "softmax_cross_entropy",
        "add",
        "matmul",
    ]
    assert data["backward"][2]["sends"] == [
        {"to": "W2", "contribution": "H1.T @ (softmax(Z4) - Y) / n", "shape": [5, 3]}
    ]
    assert run("steps", "sum(X)", "--shape", "X=n", "--method", "limit").returncode == 2


def test_fit_trains_a_tensor_model_from_a_model_file_and_npz(tmp_path):
    import numpy as np
    from sklearn.datasets import load_iris

    iris = load_iris()
    data = tmp_path / "iris.npz"
    np.savez(data, X=iris.data / 8.0, Y=np.eye(3)[iris.target])
    model = tmp_path / "softmax.toml"
    model.write_text(
        'loss = "cross_entropy(Y, softmax(X @ W + b))"\n[params]\nW = [4, 3]\n'
        'b = [3]\n[data]\nX = ["n", 4]\nY = ["n", 3]\n',
        encoding="utf-8",
    )
    result = run(
        "fit",
        "--model",
        str(model),
        "--input",
        str(data),
        "--optimizer",
        "adam",
        "--lr",
        "0.1",
        "--epochs",
        "200",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert np.shape(out["params"]["W"]) == (4, 3) and np.shape(out["params"]["b"]) == (3,)
    assert out["loss"] < 0.25  # log(3) = 1.10 for uniform predictions
