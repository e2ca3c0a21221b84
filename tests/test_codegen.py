"""Generated modules against independent oracles: sympy.diff + lambdify and finite differences.

Every loss is generated twice: by the ``symdiff codegen`` command in a real subprocess (written
to a file, then imported) and by ``symdiff.compile``; both must be byte-identical and both must
match the oracles.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff.codegen.gradcheck import load_module
from symdiff.frontend.parse import make_symbol, parse
from symdiff.functions import to_elementary

SAMPLES = 9


@dataclass(frozen=True)
class Case:
    """A per-sample loss, its parameters with a test point, and how to draw its data."""

    name: str
    loss: str
    params: dict[str, float]
    data: dict[str, tuple[float, float]] = field(default_factory=dict)
    labels: tuple[str, ...] = ()  # data names drawn as 0/1 labels
    signs: tuple[str, ...] = ()  # data names drawn as -1/+1 labels


PRODUCT_80 = {f"w{i}": 1 + 0.01 * i for i in range(1, 81)}

CASES = [
    Case(
        "squared_error", "(b0 + b1*x - y)**2", {"b0": 0.3, "b1": -1.2}, {"x": (-2, 2), "y": (-1, 1)}
    ),
    Case(
        "absolute_error", "abs(b0 + b1*x - y)", {"b0": 0.3, "b1": 0.7}, {"x": (-1, 1), "y": (4, 6)}
    ),
    Case(
        "bce_sigmoid",
        "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))",
        {"b0": 0.2, "b1": 1.4},
        {"x": (-3, 3)},
        labels=("y",),
    ),
    Case(
        "bce_explicit",
        "-y*log(1/(1 + exp(-(w*x + b)))) - (1 - y)*log(1 - 1/(1 + exp(-(w*x + b))))",
        {"w": -0.8, "b": 0.1},
        {"x": (-3, 3)},
        labels=("y",),
    ),
    Case(
        "smooth_hinge",
        "softplus(1 - y*(w*x + b))",
        {"w": 0.9, "b": -0.2},
        {"x": (-2, 2)},
        signs=("y",),
    ),
    Case(
        "squared_hinge",
        "relu(1 - y*(w*x + b))**2",
        {"w": 0.4, "b": 0.1},
        {"x": (-2, 2)},
        signs=("y",),
    ),
    Case("softplus", "softplus(w*x - y)", {"w": 1.3}, {"x": (-2, 2), "y": (-1, 1)}),
    Case(
        "poisson_nll",
        "exp(b0 + b1*x) - y*(b0 + b1*x)",
        {"b0": 0.1, "b1": 0.5},
        {"x": (-1, 1), "y": (0, 4)},
    ),
    Case(
        "pseudo_huber",
        "2.25*(sqrt(1 + ((w*x + b - y)/1.5)**2) - 1)",
        {"w": 0.7, "b": -0.3},
        {"x": (-2, 2), "y": (-2, 2)},
    ),
    Case("log_cosh", "log(cosh(w*x + b - y))", {"w": 1.1, "b": 0.2}, {"x": (-2, 2), "y": (-1, 1)}),
    Case(
        "polynomial_regression",
        "(a + b*x + c*x**2 + d*x**3 - y)**2",
        {"a": 0.1, "b": -0.4, "c": 0.3, "d": 0.05},
        {"x": (-2, 2), "y": (-3, 3)},
    ),
    Case("logsumexp", "log(exp(a*x) + exp(b*x))", {"a": 0.6, "b": -0.9}, {"x": (-2, 2)}),
    Case("logistic_log1p", "log(1 + exp(-y*w*x))", {"w": 0.8}, {"x": (-2, 2)}, signs=("y",)),
    Case("expm1", "exp(w*x) - 1 + w**2", {"w": 0.35}, {"x": (-1, 1)}),
    Case("log1p", "log(1 + w**2*x**2)", {"w": 0.9}, {"x": (-2, 2)}),
    Case("leaky_max", "max(w*x, 0.1*w*x)", {"w": 1.2}, {"x": (-2, 2)}),
    Case(
        "sigmoid_squared",
        "(sigmoid(w*x + b) - y)**2",
        {"w": 1.5, "b": -0.5},
        {"x": (-2, 2)},
        labels=("y",),
    ),
    Case(
        "trig_mix",
        "tanh(w*x)*y + sin(w)*cos(b*x)",
        {"w": 0.4, "b": 1.3},
        {"x": (-2, 2), "y": (-1, 1)},
    ),
    Case(
        "ridge",
        "(w*x + b - y)**2 + 0.1*(w**2 + b**2)",
        {"w": 0.5, "b": 0.2},
        {"x": (-2, 2), "y": (-1, 1)},
    ),
    Case(
        "pinball",
        "0.3*relu(y - w*x) + 0.7*relu(w*x - y)",
        {"w": 0.6},
        {"x": (0.5, 2), "y": (-3, 3)},
    ),
    Case(
        "cauchy",
        "log(1 + ((w*x + b - y)/2)**2)",
        {"w": 1.1, "b": 0.0},
        {"x": (-2, 2), "y": (-2, 2)},
    ),
    Case(
        "gaussian_nll",
        "log(s) + (y - m)**2/(2*s**2)",
        {"m": 0.3, "s": 1.7},
        {"y": (-2, 2)},
    ),
    Case(
        "exponential_loss", "exp(-y*(w*x + b))", {"w": 0.5, "b": 0.2}, {"x": (-1, 1)}, signs=("y",)
    ),
    Case("product_80", "*".join(PRODUCT_80), PRODUCT_80),
]

HESSIAN_CASES = {
    "squared_error",
    "bce_sigmoid",
    "poisson_nll",
    "polynomial_regression",
    "gaussian_nll",
    "trig_mix",
}


def draw_data(case: Case, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for name in data_names(case):
        if name in case.labels:
            arrays.append(rng.integers(0, 2, SAMPLES).astype(float))
        elif name in case.signs:
            arrays.append(rng.choice([-1.0, 1.0], SAMPLES))
        else:
            low, high = case.data[name]
            arrays.append(rng.uniform(low, high, SAMPLES))
    return arrays


def data_names(case: Case) -> list[str]:
    return [*case.data, *case.labels, *case.signs]


def cli_args(case: Case, output: Path) -> list[str]:
    args = [sys.executable, "-m", "symdiff", "codegen", "--params", ",".join(case.params)]
    if data_names(case):
        args += ["--data", ",".join(data_names(case))]
    args += ["--name", case.name, "--hessian" if case.name in HESSIAN_CASES else "--reduce=mean"]
    return [*args, "-o", str(output), "--", case.loss]


#: Runs ``symdiff codegen`` once per argument list, in one interpreter, like the console script.
CLI_DRIVER = """
import json, sys
from symdiff.cli import cli
for args in json.loads(sys.stdin.read()):
    code = cli.main(args, standalone_mode=False)
    if code:
        sys.exit(f"exit {code} for {args}")
"""


@pytest.fixture(scope="module")
def cli_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case written to a file by the CLI in a real subprocess.

    Two cases go through ``python -m symdiff codegen`` itself; the rest run the same click
    command in one subprocess (one interpreter start instead of twenty).
    """
    folder = tmp_path_factory.mktemp("generated")
    paths = {case.name: folder / f"{case.name}.py" for case in CASES}
    commands = [cli_args(case, paths[case.name]) for case in CASES]
    for args in commands[:2]:
        subprocess.run(args, check=True, capture_output=True, timeout=300, cwd=folder)
    batch = json.dumps([args[3:] for args in commands[2:]])
    subprocess.run(
        [sys.executable, "-c", CLI_DRIVER],
        input=batch,
        text=True,
        check=True,
        timeout=600,
        cwd=folder,
    )
    return paths


def reference(case: Case, arrays: list[np.ndarray]) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss, gradient and Hessian by sympy.diff + lambdify of the elementary form (mean)."""
    symbols = {n: make_symbol(n) for n in [*case.params, *data_names(case)]}
    expr = to_elementary(parse(case.loss, symbols=symbols))
    order = list(symbols.values())
    values = [*case.params.values(), *arrays]
    params = [symbols[n] for n in case.params]

    gradient = [sp.diff(expr, p) for p in params[:: checked_every(case)]]
    second = [sp.diff(g, q) for g in gradient for q in params] if case.name in HESSIAN_CASES else []
    exprs = [
        e.replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: sp.Integer(0))
        for e in [expr, *gradient, *second]
    ]
    if arrays:
        results = sp.lambdify(order, exprs, "numpy")(*values)
        means = [float(np.mean(np.broadcast_to(v, (SAMPLES,)))) for v in results]
    else:  # no data: evaluate exactly (lambdify of 80 products of 79 factors is slow)
        point = {symbols[n]: sp.Float(v, 30) for n, v in case.params.items()}
        means = [float(e.xreplace(point)) for e in exprs]
    size = len(gradient)
    hessian = np.array(means[1 + size :]).reshape(size, size) if second else None
    return means[0], np.array(means[1 : 1 + size]), hessian


def checked_every(case: Case) -> int:
    """sympy.diff of a product of n factors costs O(n**2): check every 10th of 80 parameters."""
    return 1 if len(case.params) <= 10 else 10


def finite_differences(module, point: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    estimate = np.empty_like(point)
    for k in range(point.size):
        h = 1e-6 * max(1.0, abs(point[k]))
        up, down = point.copy(), point.copy()
        up[k] += h
        down[k] -= h
        estimate[k] = (module.loss(up, *arrays) - module.loss(down, *arrays)) / (2 * h)
    return estimate


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_generated_module_matches_sympy_and_finite_differences(case: Case, cli_modules) -> None:
    from_file = load_module(cli_modules[case.name])
    compiled = symdiff.compile(
        case.loss,
        list(case.params),
        data_names(case),
        name=case.name,
        hessian=case.name in HESSIAN_CASES,
    )
    assert cli_modules[case.name].read_text(encoding="utf-8") == compiled.__source__
    arrays = draw_data(case)
    point = np.array(list(case.params.values()))
    loss, gradient, hessian = reference(case, arrays)
    for module in (from_file, compiled):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value, grad = module.loss_and_grad(point, *arrays)
            assert module.loss(point, *arrays) == pytest.approx(value, rel=1e-12, abs=1e-14)
            np.testing.assert_allclose(module.grad(point, *arrays), grad, rtol=1e-12, atol=1e-14)
        assert value == pytest.approx(loss, rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(grad[:: checked_every(case)], gradient, rtol=1e-9, atol=1e-11)
        fd = finite_differences(module, point, arrays)
        assert np.max(np.abs(fd - grad) / np.maximum(1, np.abs(grad))) < 1e-6
        if hessian is not None:
            np.testing.assert_allclose(
                module.hessian(point, *arrays), hessian, rtol=1e-8, atol=1e-10
            )


def test_generated_code_passes_ruff(cli_modules) -> None:
    paths = [str(p) for p in cli_modules.values()]
    for options in (
        ["--isolated"],
        ["--isolated", "--select", "E,F,W,I,B,UP,SIM", "--line-length", "100"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", "check", *options, *paths],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
