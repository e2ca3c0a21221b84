"""Second order for tensor losses: Hessian blocks (matrix formulas), Hessian-vector products
(formulas and the generated hvp/hessian) against PyTorch float64 autograd
(torch.autograd.functional.hessian / hvp) and central differences of the gradient; the
``symdiff hessian --shape`` report; ``symdiff fit --optimizer newton-cg | lbfgs``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from process_support import run_symdiff

import symdiff
from symdiff.autodiff.second import tensor_hessian
from symdiff.codegen.tensor import evaluate
from symdiff.frontend.tensor_parse import parse_tensor

Arrays = dict[str, np.ndarray]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class Case:
    """A scalar tensor loss, its shapes and parameters, random values, the loss in PyTorch."""

    name: str
    text: str
    shapes: dict[str, tuple[Any, ...]]
    params: tuple[str, ...]
    sizes: dict[str, tuple[int, ...]]
    torch_loss: Callable[..., torch.Tensor]

    def values(self, seed: int) -> Arrays:
        rng = np.random.default_rng(seed)
        out = {name: rng.normal(size=shape) for name, shape in self.sizes.items()}
        for name in ("y", "Y", "R"):  # targets in range for the loss that uses them
            if name in out and "cross_entropy" in self.text:
                out[name] = np.eye(self.sizes[name][1])[rng.integers(0, self.sizes[name][1], 7)]
            elif name in out and ("sigmoid" in self.text or "softplus" in self.text):
                out[name] = (rng.random(self.sizes[name]) < 0.5).astype(float)
            elif name in out and "exp(" in self.text:
                out[name] = rng.poisson(2.0, self.sizes[name]).astype(float)
        if "S" in out:
            a = rng.normal(size=self.sizes["S"])
            out["S"] = a @ a.T + 3 * np.eye(len(a))
        return out


def _softmax_ce(Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    return -torch.sum(Y * torch.log_softmax(Z, dim=1)) / Z.shape[0]


CASES = [
    Case(
        "least_squares",
        "mean((X @ w - y)**2)",
        {"X": ("n", "d"), "w": ("d",), "y": ("n",)},
        ("w",),
        {"X": (7, 3), "w": (3,), "y": (7,)},
        lambda X, w, y: torch.mean((X @ w - y) ** 2),
    ),
    Case(
        "ridge",
        "mean((X @ w + b - y)**2) + 0.1*sum(w**2)",
        {"X": ("n", 3), "w": (3,), "y": ("n",)},
        ("w", "b"),
        {"X": (7, 3), "w": (3,), "b": (), "y": (7,)},
        lambda X, w, b, y: torch.mean((X @ w + b - y) ** 2) + 0.1 * torch.sum(w**2),
    ),
    Case(
        "logistic",
        "mean(-y*log(sigmoid(X @ w)) - (1-y)*log(1 - sigmoid(X @ w)))",
        {"X": ("n", "d"), "w": ("d",), "y": ("n",)},
        ("w",),
        {"X": (7, 3), "w": (3,), "y": (7,)},
        lambda X, w, y: torch.mean(
            -y * torch.log(torch.sigmoid(X @ w)) - (1 - y) * torch.log(1 - torch.sigmoid(X @ w))
        ),
    ),
    Case(
        "logistic_softplus_bias",
        "mean(softplus(X @ w + b) - y*(X @ w + b))",
        {"X": ("n", 3), "w": (3,), "y": ("n",)},
        ("w", "b"),
        {"X": (7, 3), "w": (3,), "b": (), "y": (7,)},
        lambda X, w, b, y: torch.mean(torch.nn.functional.softplus(X @ w + b) - y * (X @ w + b)),
    ),
    Case(
        "softmax_regression",
        "cross_entropy(Y, softmax(X @ W + b))",
        {"X": ("n", 3), "Y": ("n", 4), "W": (3, 4), "b": (4,)},
        ("W", "b"),
        {"X": (7, 3), "Y": (7, 4), "W": (3, 4), "b": (4,)},
        lambda X, Y, W, b: _softmax_ce(X @ W + b, Y),
    ),
    Case(
        "two_layer_tanh",
        "mean((tanh(X @ W1 + b1) @ w2 - y)**2)",
        {"X": ("n", 3), "W1": (3, 4), "b1": (4,), "w2": (4,), "y": ("n",)},
        ("W1", "b1", "w2"),
        {"X": (7, 3), "W1": (3, 4), "b1": (4,), "w2": (4,), "y": (7,)},
        lambda X, W1, b1, w2, y: torch.mean((torch.tanh(X @ W1 + b1) @ w2 - y) ** 2),
    ),
    Case(
        "poisson",
        "mean(exp(X @ w) - y*(X @ w))",
        {"X": ("n", "d"), "w": ("d",), "y": ("n",)},
        ("w",),
        {"X": (7, 3), "w": (3,), "y": (7,)},
        lambda X, w, y: torch.mean(torch.exp(X @ w) - y * (X @ w)),
    ),
    Case(
        "pseudo_huber",
        "mean(sqrt(1 + (X @ w - y)**2) - 1)",
        {"X": ("n", 3), "w": (3,), "y": ("n",)},
        ("w",),
        {"X": (7, 3), "w": (3,), "y": (7,)},
        lambda X, w, y: torch.mean(torch.sqrt(1 + (X @ w - y) ** 2) - 1),
    ),
    Case(
        "matrix_factorisation",
        "sum((U @ V.T - R)**2) / 2 + 0.05*(sum(U**2) + sum(V**2))",
        {"U": (4, 2), "V": (5, 2), "R": (4, 5)},
        ("U", "V"),
        {"U": (4, 2), "V": (5, 2), "R": (4, 5)},
        lambda U, V, R: (
            torch.sum((U @ V.T - R) ** 2) / 2 + 0.05 * (torch.sum(U**2) + torch.sum(V**2))
        ),
    ),
    Case(
        "gaussian_nll",
        "0.5*logdet(S) + 0.5*trace(inv(S) @ E.T @ E)/n",
        {"S": (3, 3), "E": ("n", 3)},
        ("S",),
        {"S": (3, 3), "E": (7, 3)},
        lambda S, E: 0.5 * torch.logdet(S) + 0.5 * torch.trace(torch.linalg.inv(S) @ E.T @ E) / 7,
    ),
    Case(
        "parameter_named_v",  # the generated hvp(params, v, *data) reads its direction first
        "mean(log(1 + exp(X @ v)) - y*(X @ v)) + sum(v**4)",
        {"X": ("n", 3), "v": (3,), "y": ("n",)},
        ("v",),
        {"X": (7, 3), "v": (3,), "y": (7,)},
        lambda X, v, y: torch.mean(torch.log(1 + torch.exp(X @ v)) - y * (X @ v)) + torch.sum(v**4),
    ),
]


def _torch_second(case: Case, values: Arrays, direction: Arrays) -> tuple[list, tuple]:
    """torch.autograd.functional.hessian blocks and hvp in ``direction``, as NumPy arrays."""
    names = list(case.sizes)
    data = {n: torch.tensor(values[n], dtype=torch.float64) for n in names}

    def loss(*params: torch.Tensor) -> torch.Tensor:
        given = dict(zip(case.params, params, strict=True))
        return case.torch_loss(*(given.get(n, data[n]) for n in names))

    inputs = tuple(data[p] for p in case.params)
    vs = tuple(torch.tensor(direction[p], dtype=torch.float64) for p in case.params)
    hessian = torch.autograd.functional.hessian(loss, inputs)
    _, hvp = torch.autograd.functional.hvp(loss, inputs, vs)
    blocks = [[np.asarray(block.numpy()) for block in row] for row in hessian]
    return blocks, tuple(np.asarray(h.numpy()) for h in hvp)


def _close(got: object, want: np.ndarray, rtol: float = 1e-10) -> None:
    got = np.broadcast_to(np.asarray(got, dtype=np.float64), want.shape)
    scale = max(float(np.max(np.abs(want))), 1e-300)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def _direction(case: Case, seed: int) -> Arrays:
    rng = np.random.default_rng(seed + 100)
    return {p: rng.normal(size=case.sizes[p]) for p in case.params}


def _flat(case: Case, arrays: Arrays) -> np.ndarray:
    return np.concatenate([np.ravel(arrays[p]) for p in case.params])


def _data(case: Case, values: Arrays) -> list[np.ndarray]:
    return [values[n] for n in case.sizes if n not in case.params]


def test_ten_losses_cover_the_named_models() -> None:
    assert len(CASES) >= 10
    assert {"least_squares", "ridge", "logistic", "softmax_regression", "two_layer_tanh",
            "poisson"} <= {c.name for c in CASES}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_formulas_agree_with_torch_hessian_and_hvp(case: Case) -> None:
    values, direction = case.values(1), _direction(case, 1)
    blocks, hvp = _torch_second(case, values, direction)
    second = tensor_hessian(case.text, case.shapes, list(case.params))
    seeds = {d.name: direction[p] for d, p in zip(second.directions, case.params, strict=True)}
    for product, want in zip(second.products, hvp, strict=True):
        _close(evaluate(product, {**values, **seeds}), want)
    explicit = 0
    for i, j, block in second.blocks:
        if block is not None:
            explicit += 1
            _close(evaluate(block, values), blocks[i][j])
    if case.name in ("least_squares", "logistic", "poisson", "pseudo_huber", "ridge"):
        assert explicit == len(second.blocks)  # vector parameters: every block is a matrix


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_generated_hvp_and_hessian_agree_with_torch_and_differences(case: Case) -> None:
    values, direction = case.values(2), _direction(case, 2)
    blocks, hvp = _torch_second(case, values, direction)
    module = _module(case.name)
    params = {p: values[p] for p in case.params}
    data = _data(case, values)
    got = module.hvp(params, direction, *data)  # dict in, dict out
    for name, want in zip(case.params, hvp, strict=True):
        _close(got[name], want)
    flat, v = _flat(case, values), _flat(case, direction)
    _close(module.hvp(flat, v, *data), np.concatenate([np.ravel(h) for h in hvp]))
    size = flat.size
    counts = [int(np.prod(case.sizes[p], dtype=int)) for p in case.params]
    want_matrix = np.block(
        [[blocks[i][j].reshape(counts[i], counts[j]) for j in range(len(counts))]
         for i in range(len(counts))]
    )  # fmt: skip
    matrix = module.hessian(params, *data)
    assert matrix.shape == (size, size)
    _close(matrix, want_matrix)
    h = 1e-5  # central differences of the generated gradient along v
    difference = (module.grad(flat + h * v, *data) - module.grad(flat - h * v, *data)) / (2 * h)
    _close(module.hvp(flat, v, *data), difference, rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_hvp_is_linear_and_symmetric(seed: int) -> None:
    case = CASES[5]  # the two-layer tanh network: every block is non-trivial
    module = _module(case.name)
    values = case.values(seed)
    flat, data = _flat(case, values), _data(case, values)
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=flat.size), rng.normal(size=flat.size)
    hu, hv = module.hvp(flat, u, *data), module.hvp(flat, v, *data)
    _close(module.hvp(flat, 2 * u - 3 * v, *data), 2 * hu - 3 * hv, rtol=1e-9)
    assert abs(u @ hv - v @ hu) <= 1e-9 * max(1.0, abs(u @ hv))


_MODULES: dict[str, Any] = {}


def _module(name: str) -> Any:
    case = next(c for c in CASES if c.name == name)
    if name not in _MODULES:
        shapes = {  # integer sizes but the number of samples n
            name: tuple(d if d == "n" else k for d, k in zip(dims, case.sizes[name], strict=True))
            for name, dims in case.shapes.items()
        }
        _MODULES[name] = symdiff.compile_tensor(case.text, shapes, list(case.params), hessian=True)
    return _MODULES[name]


def test_modules_without_hessian_keep_their_interface() -> None:
    case = CASES[1]
    module = symdiff.compile_tensor(case.text, case.shapes, list(case.params))
    assert not hasattr(module, "hvp") and not hasattr(module, "hessian")
    second = _module(case.name)
    assert {"hvp", "hessian"} <= set(second.__all__)
    assert "hvp(params, v, *data)" in second.__doc__


def test_hessian_is_left_out_for_many_parameters() -> None:
    module = symdiff.compile_tensor("sum((X @ W)**2)", {"X": ("n", 50), "W": (50, 50)}, ["W"],
                                    hessian=True)  # fmt: skip
    assert hasattr(module, "hvp") and not hasattr(module, "hessian")  # 2500 > 2000 parameters


# --------------------------------------------------------------------------- the CLI

LOGISTIC = "mean(-y*log(sigmoid(X @ w)) - (1-y)*log(1 - sigmoid(X @ w)))"
LOGISTIC_ARGS = [LOGISTIC, "--shape", "X=n,d", "--shape", "w=d", "--shape", "y=n", "--wrt", "w"]


def test_cli_prints_the_logistic_hessian_as_a_matrix_formula() -> None:
    result = run_symdiff("hessian", *LOGISTIC_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"loss: {LOGISTIC}\n"
        "shapes: X (n, d), w (d,), y (n,)\n"
        "where\n"
        "  Z1    = X @ w                                               (n,)\n"
        "  H1    = sigmoid(Z1)                                         (n,)\n"
        "d2L/dw2 = X.T @ (X * expand_dims(H1 * (1 - H1), axis=1)) / n  (d, d)\n"
    )


def test_cli_hessian_formula_parses_back_and_evaluates_to_torch() -> None:
    result = run_symdiff("hessian", *LOGISTIC_ARGS, "--format", "json")
    report = json.loads(result.stdout)
    case = CASES[2]
    values = case.values(4)
    shapes = dict(case.shapes)
    known = dict(values)
    for name, entry in report["where"].items():  # Z1, H1 in order, each parsed back
        shapes[name] = tuple(entry["shape"])
        known[name] = evaluate(parse_tensor(entry["formula"], shapes), known)
    (block,) = report["hessian"]
    assert block["shape"] == ["d", "d"]
    blocks, _ = _torch_second(case, values, _direction(case, 4))
    _close(evaluate(parse_tensor(block["formula"], shapes), known), blocks[0][0])
    assert report["hvp"]["w"]["direction"] == "v_w"


def test_cli_shows_hvp_and_index_form_when_a_block_has_no_matrix_formula() -> None:
    result = run_symdiff(
        "hessian", "cross_entropy(Y, softmax(X @ W + b))", "--shape", "X=n,3", "--shape",
        "Y=n,4", "--shape", "W=3,4", "--shape", "b=4", "--wrt", "W,b",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "direction v: v_W (3, 4), v_b (4,)" in result.stdout
    assert "(Hv)_W = X.T @ G2 / n" in result.stdout
    # the (3, 4, 3, 4) block has no matrix formula: it is printed in index notation
    assert (
        "d2L/dW2: ∂²L/∂W[i,j]∂W[k,l] = (1/n) Σ_m X[m,k] P1[m,j] X[m,i] δ[j,l] "
        "- (1/n) Σ_m X[m,k] P1[m,j] P1[m,l] X[m,i]\n"
    ) in result.stdout
    assert 'einsum("mk,mj,mi,jl->ijkl", X, softmax(X @ W + b), X, eye(4))' in result.stdout


def test_cli_hessian_errors_are_one_line() -> None:
    result = run_symdiff("hessian", *LOGISTIC_ARGS, "--at", "w=1")
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: --at: no value for 'y' (give y, X, w)"
    unused = run_symdiff("hessian", *LOGISTIC_ARGS[:-1], "q")
    assert unused.returncode == 2 and "'q'" in unused.stderr and "Traceback" not in unused.stderr


def test_cli_codegen_hessian_with_shapes_writes_hvp(tmp_path: Path) -> None:
    target = tmp_path / "logistic.py"
    result = run_symdiff(
        "codegen", LOGISTIC, "--shape", "X=n,3", "--shape", "w=3", "--shape", "y=n",
        "--params", "w", "--data", "X,y", "--hessian", "-o", str(target),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    source = target.read_text(encoding="utf-8")
    assert "def hvp(params, v, *data):" in source and "def hessian(params, *data):" in source


# --------------------------------------------------------------------------- fit

BREAST = [
    "--shape", "X=n,5", "--shape", "w=5", "--shape", "y=n", "--params", "w,b", "--data", "X,y",
    "--input", str(EXAMPLES / "data" / "breast_cancer.csv"), "--column", "X=x1:x5",
    "--column", "y=benign", "--init", "w=0,b=0", "--format", "json",
]  # fmt: skip
BREAST_LOSS = "mean(softplus(X @ w + b) - y*(X @ w + b))"


def _breast_optimum() -> np.ndarray:
    """Newton's method written out in NumPy: (w, b) of the unpenalised logistic regression."""
    table = np.genfromtxt(EXAMPLES / "data" / "breast_cancer.csv", delimiter=",", skip_header=1)
    A = np.column_stack([table[:, :5], np.ones(len(table))])
    y = table[:, 5]
    theta = np.zeros(6)
    for _ in range(40):
        s = 1 / (1 + np.exp(-(A @ theta)))
        theta -= np.linalg.solve(A.T @ (A * (s * (1 - s))[:, None]), A.T @ (s - y))
    return theta


@pytest.mark.parametrize("optimizer, most", [("newton-cg", 12), ("lbfgs", 40)])
def test_fit_second_order_reaches_the_breast_cancer_optimum(optimizer: str, most: int) -> None:
    result = run_symdiff("fit", BREAST_LOSS, *BREAST, "--optimizer", optimizer, "--gtol", "1e-10")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    got = np.r_[report["params"]["w"], report["params"]["b"]]
    assert np.max(np.abs(got - _breast_optimum())) <= 1e-8
    assert report["converged"] and report["steps"] <= most
    assert report["message"].startswith("converged: gradient norm")


def test_fit_newton_cg_on_a_per_sample_loss_uses_its_hessian() -> None:
    z = "(b0 + w1*x1 + w2*x2 + w3*x3 + w4*x4 + w5*x5)"
    loss = f"log(1 + exp{z}) - y*{z}"
    result = run_symdiff(
        "fit", loss, "--params", "b0,w1,w2,w3,w4,w5", "--data", "x1,x2,x3,x4,x5,y",
        "--column", "y=benign", "--input", str(EXAMPLES / "data" / "breast_cancer.csv"),
        "--optimizer", "newton-cg", "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = ["w1", "w2", "w3", "w4", "w5", "b0"]
    got = np.array([report["params"][n] for n in names])
    assert np.max(np.abs(got - _breast_optimum())) <= 1e-8 and report["steps"] <= 15


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch-size", "32"], "newton-cg uses all the samples in every step"),
        (["--checkpoint", "run.npz"], "newton-cg runs inside scipy.optimize"),
        (["--clip-norm", "1"], "newton-cg takes whole Newton/quasi-Newton steps"),
    ],
)
def test_fit_newton_cg_refuses_what_does_not_apply(
    extra: list[str], message: str, tmp_path: Path
) -> None:
    args = [a if a != "run.npz" else str(tmp_path / "run.npz") for a in extra]
    result = run_symdiff("fit", BREAST_LOSS, *BREAST, "--optimizer", "newton-cg", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
