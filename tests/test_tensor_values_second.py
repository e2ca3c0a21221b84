"""Values at a point with shapes: ``hessian --at`` (every block) and ``--direction`` (H u),
``grad --direction`` over some of the parameters, ``jacobian --direction`` (J u), against
PyTorch float64 autograd through real subprocesses; and the einsum forms ('...', an index
repeated within an operand) and ``reshape(A, (-1, d))`` against PyTorch and central
differences, through the generated module and the printed formula."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from process_support import run_symdiff
from test_tensor_second_order import CASES, Arrays, Case, _close, _direction, _torch_second

from symdiff.autodiff.reverse import reverse_mode
from symdiff.codegen.tensor import compile as compile_tensor
from symdiff.codegen.tensor import evaluate
from symdiff.errors import ShapeError
from symdiff.explanations.second_order import block_label
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.ir.nodes import var
from symdiff.ir.printing import to_text

BY_NAME = {case.name: case for case in CASES}
#: Losses whose Hessian at a point the CLI prints (the two-layer net and logistic regression).
HESSIAN_CASES = ["least_squares", "logistic", "two_layer_tanh", "softmax_regression", "ridge"]


def _shape_args(case: Case) -> list[str]:
    args = []
    for name, shape in case.shapes.items():
        args += ["--shape", f"{name}=" + ",".join(str(d) for d in shape)]
    return args


def _literal(arrays: Arrays) -> str:
    """NAME=VALUE,... with every float written exactly (repr round-trips)."""
    return ",".join(f"{name}={json.dumps(np.asarray(v).tolist())}" for name, v in arrays.items())


def _hessian_json(case: Case, values: Arrays, direction: Arrays, tmp_path: Path) -> dict:
    point = tmp_path / "point.npz"
    np.savez(point, **{n: values[n] for n in case.sizes})
    result = run_symdiff(
        "hessian", case.text, *_shape_args(case), "--wrt", ",".join(case.params),
        "--at", str(point), "--direction", _literal(direction), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", HESSIAN_CASES)
def test_cli_hessian_at_a_point_matches_torch(name: str, tmp_path: Path) -> None:
    case = BY_NAME[name]
    values, direction = case.values(11), _direction(case, 11)
    report = _hessian_json(case, values, direction, tmp_path)
    blocks, hvp = _torch_second(case, values, direction)
    got = report["values"]
    for i, p in enumerate(case.params):
        for j in range(i, len(case.params)):
            _close(np.array(got[block_label(p, case.params[j])]), blocks[i][j])
        _close(np.array(got[f"(Hu)_{p}"]), hvp[i])
    assert report["direction"] == {p: direction[p].tolist() for p in case.params}


def test_cli_hessian_at_a_point_prints_the_blocks(tmp_path: Path) -> None:
    result = run_symdiff(
        "hessian", "sum((X @ w - y)**2)", "--shape", "X=3,2", "--shape", "w=2", "--shape",
        "y=3", "--at", "X=[[1,2],[3,4],[5,6]],w=[1,-1],y=[1,2,3]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "  d2L/dw2   = [[70, 88], [88, 112]]  (2, 2)\n" in result.stdout
    assert "  d2L/dX2   = [2, -2, 0, 0, ..., -2, 2] (3, 2, 3, 2)\n" in result.stdout
    assert "  d2L/dy2   = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]  (3, 3)\n" in result.stdout
    latex = run_symdiff(
        "hessian", "sum((X @ w - y)**2)", "--shape", "X=3,2", "--shape", "w=2", "--shape",
        "y=3", "--wrt", "w", "--at", "X=[[1,2],[3,4],[5,6]],w=[1,-1],y=[1,2,3]",
        "--direction", "w=[1,0]", "--format", "latex",
    )  # fmt: skip
    assert latex.returncode == 0, latex.stderr
    assert r"\text{d2L/dw2} &= \begin{bmatrix} 70 & 88 \\ 88 & 112 \end{bmatrix}" in latex.stdout
    assert r"\text{(Hu)\_w} &= \begin{bmatrix} 70 \\ 88 \end{bmatrix}" in latex.stdout


def test_cli_grad_direction_over_some_parameters_matches_torch() -> None:
    case = BY_NAME["two_layer_tanh"]
    values = case.values(5)
    u = {"W1": np.random.default_rng(6).normal(size=(3, 4)), "w2": np.array([1.0, 0, -2, 0.5])}
    result = run_symdiff(
        "grad", case.text, *_shape_args(case), "--at", _literal(values),
        "--direction", _literal(u), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)["values"]
    leaves = {n: torch.tensor(values[n], requires_grad=True) for n in case.sizes}
    case.torch_loss(*leaves.values()).backward()
    terms = {n: float(np.sum(_grad(leaves[n]) * u[n])) for n in u}
    size = np.sqrt(sum(float(np.sum(v * v)) for v in u.values()))
    for name, term in terms.items():
        assert got[f"sum(dL/d{name} * u_{name})"] == pytest.approx(term, rel=1e-10)
    assert got["|u|"] == pytest.approx(size, rel=1e-12)
    assert got["D_u L"] == pytest.approx(sum(terms.values()) / size, rel=1e-10)


def test_cli_grad_direction_of_the_issue_is_term_by_term() -> None:
    result = run_symdiff(
        "grad", "sum((X @ w - y)**2)", "--shape", "X=3,2", "--shape", "w=2", "--shape", "y=3",
        "--at", "X=[[1,2],[3,4],[5,6]],w=[1,-1],y=[1,2,3]", "--direction", "w=[3,4]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "along u: u_w = [3, 4]\n" in result.stdout
    assert "  sum(dL/dw * u_w) = -506  ()\n" in result.stdout  # 3*(-62) + 4*(-80)
    assert "  |u|              = 5  ()\n" in result.stdout
    assert "  D_u L            = -101.2  ()\n" in result.stdout


def test_cli_jacobian_direction_is_torch_jvp() -> None:
    X = np.random.default_rng(8).normal(size=(4, 3))
    W = np.random.default_rng(9).normal(size=(3, 2))
    U = np.random.default_rng(10).normal(size=(3, 2))
    result = run_symdiff(
        "jacobian", "tanh(X @ W)", "--shape", "X=n,3", "--shape", "W=3,2", "--wrt", "W",
        "--at", _literal({"X": X, "W": W}), "--direction", _literal({"W": U}), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    _, expected = torch.autograd.functional.jvp(
        lambda w: torch.tanh(torch.tensor(X) @ w), torch.tensor(W), torch.tensor(U)
    )
    _close(np.array(report["jvp"]["value"]), expected.numpy())
    shapes = {"X": ("n", 3), "W": (3, 2), "u_W": (3, 2)}  # the printed J u parses back
    value = evaluate(parse_tensor(report["jvp"]["formula"], shapes), {"X": X, "W": W, "u_W": U})
    _close(value, expected.numpy())


def test_cli_steps_and_graph_with_shapes_at_a_point_still_work() -> None:
    args = ["sum(tanh(X @ w))", "--shape", "X=2,2", "--shape", "w=2", "--wrt", "w"]
    at = ["--at", "X=[[1,2],[3,4]],w=[1,0]"]
    for command in ("steps", "graph"):
        result = run_symdiff(command, *args, *at)
        assert result.returncode == 0, (command, result.stderr)
        assert "dL/dw" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hessian", "sum(w**2)", "--shape", "w=2", "--direction", "w=[1,0]"],
         "Error: --direction with --shape/--model needs --at (the point)"),
        (["hessian", "x**2", "--at", "x=1", "--direction", "1"],
         "Error: --direction goes with --shape/--model and --at"),
        (["jacobian", "tanh(X @ w)", "--shape", "X=2,2", "--shape", "w=2", "--wrt", "w",
          "--at", "X=[[1,2],[3,4]],w=[1,0]", "--direction", "X=[[1,0],[0,1]]"],
         "Error: --direction: 'X' is not a symbol here (expected: w)"),
        (["grad", "sum(w**2)", "--shape", "w=2", "--at", "w=[1,2]", "--direction", "w=[0,0]"],
         "Error: --direction must not be zero"),
        (["hessian", "sum(w**2)", "--shape", "w=2", "--at", "w=[1,2]", "--direction", "w=[1]"],
         "Error: --direction: 'w' needs shape (2,), got (1,)"),
        (["grad", "sum(reshape(A, (-1,))**2)", "--shape", "A=n,d"],
         "Error: shape error in 'reshape(A, (-1,))': cannot reshape (n, d) to (-1,): the -1 "
         "would be d*n, which is neither a whole number nor one declared dimension (write the "
         "shape out, or declare integer sizes) at column 5"),
        (["grad", "sum(einsum('ii->i', A))", "--shape", "A=2,3"],
         "Error: shape error in 'einsum('ii->i', A)': einsum 'ii->i': index i repeats within "
         "'ii' over axes of different sizes 2 and 3 at column 5"),
    ],
)  # fmt: skip
def test_errors_are_one_line(args: list[str], message: str) -> None:
    result = run_symdiff(*args)
    assert result.returncode == 2, result.stdout
    assert result.stderr.strip() == message


def test_hessian_values_are_refused_beyond_the_bound(tmp_path: Path) -> None:
    point = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    np.savez(point, X=rng.normal(size=(3, 2001)), w=rng.normal(size=2001))
    args = ["hessian", "sum((X @ w)**2)", "--shape", "X=3,d", "--shape", "w=d", "--wrt", "w"]
    result = run_symdiff(*args, "--at", str(point))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: the Hessian at the point is 2001 x 2001: its values are shown for at most 2000 "
        "parameter entries in all (--direction gives H v at any size)"
    )
    direction = tmp_path / "u.npz"
    u = rng.normal(size=2001)
    np.savez(direction, w=u)
    along = run_symdiff(*args, "--at", str(point), "--direction", str(direction), "--format",
                        "json")  # fmt: skip
    assert along.returncode == 0, along.stderr
    with np.load(point) as arrays:
        X = arrays["X"]
    _close(np.array(json.loads(along.stdout)["values"]["(Hu)_w"]), 2 * X.T @ (X @ u))


# --------------------------------------------------------------------------- einsum, reshape


@dataclass(frozen=True)
class Form:
    """A loss with a new einsum form or reshape(-1), its shapes, parameters and PyTorch form."""

    name: str
    loss: str
    shapes: dict[str, tuple[int, ...]]
    params: tuple[str, ...]
    reference: Callable[..., torch.Tensor]


FORMS = [
    Form("diagonal", "sum(tanh(einsum('ii->i', A @ B)) * w)",
         {"A": (3, 4), "B": (4, 3), "w": (3,)}, ("A", "B"),
         lambda A, B, w: (torch.tanh(torch.einsum("ii->i", A @ B)) * w).sum()),
    Form("trace-implicit-and-batched-trace", "einsum('ii', A @ A.T) + sum(einsum('bii->b', C)**2)",
         {"A": (3, 3), "C": (2, 3, 3)}, ("A", "C"),
         lambda A, C: torch.einsum("ii", A @ A.T) + (torch.einsum("bii->b", C) ** 2).sum()),
    Form("ellipsis-batched-matmul", "sum(sin(einsum('...ij,...jk->...ik', X, W)))",
         {"X": (2, 3, 4), "W": (4, 5)}, ("W", "X"),
         lambda X, W: torch.sin(torch.einsum("...ij,...jk->...ik", X, W)).sum()),
    Form("ellipsis-implicit-output", "sum(sigmoid(einsum('...d,d', X, w)) * y)",
         {"X": (2, 3, 4), "w": (4,), "y": (2, 3)}, ("w",),
         lambda X, w, y: (torch.sigmoid(torch.einsum("...d,d", X, w)) * y).sum()),
    Form("diagonal-with-another-operand", "sum(softmax(einsum('bii,bij->bij', A, B)) * Y)",
         {"A": (2, 3, 3), "B": (2, 3, 4), "Y": (2, 3, 4)}, ("A", "B"),
         lambda A, B, Y: (torch.softmax(torch.einsum("bii,bij->bij", A, B), -1) * Y).sum()),
    Form("reshape-infers-rows", "mean(tanh(reshape(X, (-1, 4)) @ W)**2)",
         {"X": (2, 3, 4), "W": (4, 2)}, ("W", "X"),
         lambda X, W: (torch.tanh(X.reshape(-1, 4) @ W) ** 2).mean()),
    Form("reshape-infers-last-then-diagonal", "sum(exp(einsum('ii->i', reshape(w, (3, -1)))))",
         {"w": (9,)}, ("w",),
         lambda w: torch.exp(torch.einsum("ii->i", w.reshape(3, -1))).sum()),
    Form("ellipsis-in-the-middle", "sum(einsum('i...j,j->...i', T, v)**2)",
         {"T": (2, 3, 4), "v": (4,)}, ("T", "v"),
         lambda T, v: (torch.einsum("i...j,j->...i", T, v) ** 2).sum()),
]  # fmt: skip


def _draw(form: Form, seed: int) -> Arrays:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) * 0.7 for name, shape in form.shapes.items()}


def _torch_grads(form: Form, values: Arrays) -> tuple[float, Arrays]:
    leaves = {n: torch.tensor(v, requires_grad=n in form.params) for n, v in values.items()}
    value = form.reference(*leaves.values())
    value.backward()
    return float(value.detach()), {p: _grad(leaves[p]) for p in form.params}


def _grad(leaf: torch.Tensor) -> np.ndarray:
    assert leaf.grad is not None
    return leaf.grad.numpy()


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_generated_module_matches_pytorch_and_differences(form: Form) -> None:
    module = compile_tensor(form.loss, form.shapes, list(form.params))
    values = _draw(form, 1)
    params = {p: values[p] for p in form.params}
    data = [values[n] for n in module.DATA]
    value, grads = module.loss_and_grad(params, *data)
    expected_value, expected = _torch_grads(form, values)
    assert value == pytest.approx(expected_value, rel=1e-12, abs=1e-12)
    for name in form.params:
        _close(grads[name], expected[name])
    flat = np.concatenate([np.ravel(params[name]) for name, _ in module.PARAMS])
    step = np.random.default_rng(2).normal(size=flat.shape)
    h = 1e-6
    numeric = (module.loss(flat + h * step, *data) - module.loss(flat - h * step, *data)) / (2 * h)
    assert numeric == pytest.approx(module.grad(flat, *data) @ step, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_printed_formula_matches_pytorch(form: Form) -> None:
    loss = parse_tensor(form.loss, form.shapes)
    gradient = reverse_mode(loss, [var(p, form.shapes[p]) for p in form.params])
    values = _draw(form, 3)
    _, expected = _torch_grads(form, values)
    for name, grad in zip(form.params, gradient.gradients, strict=True):
        text = to_text(grad)
        assert "..." not in text  # '...' became explicit letters
        reparsed = parse_tensor(text, form.shapes)
        assert reparsed.shape == tuple(form.shapes[name]), text
        _close(evaluate(reparsed, values), expected[name])


def test_diagonal_adjoint_is_scattered_to_the_diagonal() -> None:
    loss = parse_tensor("sum(einsum('ii->i', A) * w)", {"A": (3, 3), "w": (3,)})
    (grad,) = reverse_mode(loss, [var("A", (3, 3))]).gradients
    assert to_text(grad) == "einsum('i,ia->ia', w, eye(3))"  # eye(3) * w[:, None]
    w = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(evaluate(grad, {"w": w}), np.diag(w))


def test_reshape_infers_a_named_dimension_when_computable() -> None:
    node = parse_tensor("reshape(A, (n, -1))", {"A": ("n", "d")})
    assert node.shape == ("n", "d")
    node = parse_tensor("reshape(B, (-1, d))", {"B": ("n", "d", 1)})
    assert node.shape == ("n", "d")
    with pytest.raises(ShapeError, match="at most one -1"):
        parse_tensor("reshape(A, (-1, -1))", {"A": (2, 3)})
    with pytest.raises(ShapeError, match="would be 5/2"):
        parse_tensor("reshape(A, (-1, 2))", {"A": (5,)})
