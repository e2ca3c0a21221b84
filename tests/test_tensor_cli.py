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
    assert re.search(r"  Z1 = T1 \+ b1 +\(n, 5\)", out)
    # the rule in the node's own names: no letter of the table (Y = A @ B) next to the user's Y
    assert "rule matmul: dL/dW2 = H1.T @ G  (outer products for vectors)" in out
    assert "rule softmax_cross_entropy: dL/dZ2 = G * (softmax(Z2) - Y) / n" in out
    assert "dL/dW2 = H1.T @ (softmax(Z2) - Y) / n    (5, 3)" in out
    data = json.loads(run("steps", MLP, *MLP_SHAPES, "--wrt", "W2", "--format", "json").stdout)
    assert [step["rule"] for step in data["backward"]][:3] == [
        "softmax_cross_entropy",
        "add",
        "matmul",
    ]
    assert data["backward"][2]["sends"] == [
        {"to": "W2", "contribution": "H1.T @ (softmax(Z2) - Y) / n", "shape": [5, 3]}
    ]
    assert run("steps", "sum(X)", "--shape", "X=n", "--method", "limit").returncode == 2


def test_steps_names_the_nodes_of_grads_where_block_alike():
    """Z1, H1, Z2 of grad's where block are the same nodes in steps; the other nodes are T1,
    T2, ... in forward order."""
    grad = json.loads(run("grad", MLP, *MLP_SHAPES, "--format", "json").stdout)
    steps = json.loads(run("steps", MLP, *MLP_SHAPES, "--format", "json").stdout)
    forward = {row["node"]: row["formula"] for row in steps["forward"]}
    assert grad["where"]["Z1"]["formula"] == "X @ W1 + b1"
    assert forward["T1"] == "X @ W1" and forward["Z1"] == "T1 + b1"
    assert grad["where"]["H1"]["formula"] == forward["H1"] == "relu(Z1)"
    assert grad["where"]["Z2"]["formula"] == "H1 @ W2 + b2"
    assert forward["T2"] == "H1 @ W2" and forward["Z2"] == "T2 + b2"
    assert list(forward) == ["T1", "Z1", "H1", "T2", "Z2", "L"]


def test_steps_explains_a_subtraction_with_its_minus_sign():
    result = run("steps", *LS, "--wrt", "w,y")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "  Z1 = T1 - y   (n,)" in out
    assert "rule sub: dL/dT1 = unbroadcast(G),  dL/dy = -unbroadcast(G)" in out
    assert "      dL/dy += -2/n * Z1    (n,)" in out
    assert "rule mul" not in out and "rule add" not in out
    assert "rule scale: dL/dT3 = G / n" in out


def test_steps_follows_the_operands_as_typed():
    result = run("steps", "sum(y - X @ w) + sum(b + X @ w)", *LS[1:], "--shape", "b=n")
    assert result.returncode == 0, result.stderr
    assert "  T2 = y - T1 " in result.stdout and "  T4 = b + T1 " in result.stdout
    assert "rule sub: dL/dy = unbroadcast(G),  dL/dT1 = -unbroadcast(G)" in result.stdout


def test_steps_never_reuses_the_users_names():
    """A user's L and G are symbols: the loss becomes L1 and the adjoint Gbar (no endless loop)."""
    shapes = ["--shape", "L=n,d", "--shape", "w=d", "--shape", "G=n"]
    result = run("steps", "sum(L @ w - G)", *shapes, "--wrt", "w,G", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "  L1 = sum(T2)  ()" in out
    assert "dL1/dG += broadcast_to(-1, (n,))    (n,)" in out
    assert "rule matmul: dL1/dw = L.T @ Gbar" in out


def test_jacobian_prints_one_line_per_matrix(tmp_path):
    model = tmp_path / "mlp.toml"
    model.write_text(
        f'loss = "{MLP}"\n[params]\nW1 = [8, 5]\nb1 = [5]\nW2 = [5, 3]\nb2 = [3]\n'
        '[data]\nX = ["n", 8]\nY = ["n", 3]\n'
    )
    result = run("jacobian", "--model", str(model))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for param in ("W1", "b1", "W2", "b2"):
        assert sum(line.startswith(f"J_{param} = ") for line in lines) == 1
        assert sum(line.startswith(f"vᵀ J_{param} = ") for line in lines) == 1
    wide = run("jacobian", "X @ A", "--shape", "X=n,d", "--shape", "A=d,d", "--wrt", "A")
    assert "J_A: df/dA of shape (n, d, d, d), not written as a matrix" in wide.stdout
    assert "vᵀ J_A = X.T @ v    (d, d)" in wide.stdout


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
