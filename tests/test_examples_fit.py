"""The training examples in examples/: each run, each checked against an independent reference."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from process_support import run_python, run_symdiff

from symdiff.train.data import load_data

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


def assert_two_panel_png(path: Path) -> None:
    """A real PNG of the two-panel figure (2 x 6 by 4.5 inches at 110 dpi), read back: not blank,
    and with the coloured marks of the paths (not only black lines on white)."""
    import matplotlib.image as mpimg

    assert path.read_bytes()[:4] == b"\x89PNG"
    image = mpimg.imread(path)[:, :, :3]
    assert image.shape[:2] == (495, 1320)
    spread = image.max(axis=2) - image.min(axis=2)  # 0 for white, black and greys
    assert np.count_nonzero(spread > 0.3) > 1000


def test_linear_regression_matches_lstsq(tmp_path):
    namespace = example("linear_regression")
    outcome = namespace["run"](tmp_path)
    x, y = namespace["make_data"]()
    expected, *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)
    assert set(outcome["runs"]) == {"gd", "momentum", "nesterov", "adam"}
    for name, result in outcome["runs"].items():
        assert result.converged, (name, result.message)
        got = [result.params["b0"], result.params["b1"]]
        assert got == pytest.approx(expected, abs=1e-9), name
    # stochastic runs end near the solution, not on it; mini-batches (20) nearer than SGD (1)
    sgd, minibatch = outcome["stochastic"]["sgd"], outcome["stochastic"]["minibatch"]
    sgd_error = np.max(np.abs(sgd.flat - expected))
    minibatch_error = np.max(np.abs(minibatch.flat - expected))
    assert minibatch_error < 1e-3 and sgd_error < 1e-2
    assert (sgd.steps, minibatch.steps) == (50 * 200, 200 * 10)
    for picture in ("linear_regression.png", "linear_regression_sgd.png"):
        assert_two_panel_png(tmp_path / picture)
    # the shipped CSV holds exactly these samples
    shipped = load_data(namespace["CSV"], ["x", "y"])
    assert np.array_equal(shipped["x"], x) and np.array_equal(shipped["y"], y)


def test_logistic_regression_matches_sklearn():
    namespace = example("logistic_breast_cancer")
    outcome = namespace["run"]()
    result = outcome["result"]
    assert result.converged, result.message
    ours = np.array([result.params[name] for name in namespace["PARAMS"]])
    # an independent reference, computed here rather than taken from the example
    from sklearn.linear_model import LogisticRegression

    features, target = namespace["load"]()
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(features, target)
    expected = np.r_[reference.intercept_, reference.coef_.ravel()]
    assert namespace["TOLERANCE"] == 1e-6
    assert np.max(np.abs(ours - expected)) < namespace["TOLERANCE"]
    assert features.shape == (569, 5)
    shipped = load_data(namespace["CSV"], namespace["DATA"], {"y": "benign"})
    assert np.allclose(np.c_[[shipped[n] for n in namespace["DATA"]]].T, np.c_[features, target])


def fit_breast_cancer_csv(namespace: dict, *args: str) -> tuple[dict, np.ndarray]:
    """``symdiff fit ... --input breast_cancer.csv --column y=benign`` with Nesterov to gradient
    norm 1e-10, in a subprocess; its JSON result and scikit-learn's b0, w1..w5."""
    done = run_symdiff(
        "fit", *args, "--input", str(namespace["CSV"]), "--column", "y=benign",
        "--optimizer", "nesterov:mu=0.9", "--lr", "0.5", "--epochs", "5000", "--gtol", "1e-10",
        "--format", "json", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    features, target = namespace["load"]()
    return json.loads(done.stdout), namespace["sklearn_coefficients"](features, target)


def test_logistic_regression_readme_command():
    """The README's symdiff fit command for the breast-cancer CSV (loss starts with '-')."""
    namespace = example("logistic_breast_cancer")
    result, expected = fit_breast_cancer_csv(
        namespace,
        namespace["loss_text"](),
        "--params", ",".join(namespace["PARAMS"]), "--data", ",".join(namespace["DATA"]),
    )  # fmt: skip
    ours = [result["params"][name] for name in namespace["PARAMS"]]
    assert ours == pytest.approx(expected, abs=1e-6)
    assert result["converged"] is True


def test_logistic_regression_as_a_tensor_loss_from_csv_columns():
    """The same fit written with a weight vector: X gathered from CSV columns x1..x5."""
    namespace = example("logistic_breast_cancer")
    result, expected = fit_breast_cancer_csv(
        namespace,
        "mean(softplus(X @ w + b) - y*(X @ w + b))",
        "--shape", "X=n,5", "--shape", "w=5", "--shape", "y=n", "--params", "w,b",
        "--data", "X,y", "--column", "X=x1:x5", "--init", "w=0,b=0",
    )  # fmt: skip
    ours = [result["params"]["b"], *result["params"]["w"]]
    assert ours == pytest.approx(expected, abs=1e-6)
    assert result["converged"] is True


def test_absolute_error_seed_numbers_and_lad_optimum():
    namespace = example("absolute_error")
    outcome = namespace["run"]()
    # the seed: loss = |4 - (3*2 + 1)| = 3, d/dw = 2 (= x), d/db = 1
    assert outcome["seed_loss"] == 3.0
    assert list(outcome["seed_grad"]) == [2.0, 1.0]
    x, y = outcome["data"]
    from scipy.optimize import linprog

    # least absolute deviations as a linear program: min sum(u + v), y - (w x + b) = u - v
    n = len(x)
    cost = np.r_[0.0, 0.0, np.ones(2 * n)]
    equality = np.c_[x, np.ones(n), np.eye(n), -np.eye(n)]
    bounds = [(None, None)] * 2 + [(0, None)] * (2 * n)
    exact = linprog(cost, A_eq=equality, b_eq=y, bounds=bounds, method="highs")
    optimum = exact.fun / n
    result = outcome["result"]
    assert result.loss == pytest.approx(
        np.mean(np.abs(y - (result.params["w"] * x + result.params["b"])))
    )
    assert (result.loss - optimum) / optimum < 1e-5
    assert [result.params["w"], result.params["b"]] == pytest.approx(exact.x[:2], abs=1e-3)


def test_momentum_escapes_the_local_minimum(tmp_path):
    done = run_python(str(EXAMPLES / "local_minimum.py"), "--plot", str(tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(maxsplit=1) for line in done.stdout.splitlines())
    assert lines["gd"].startswith("w = +1.1309  f(w) = -1.0702")
    assert lines["momentum"].startswith("w = -1.3008  f(w) = -3.5139")
    assert_two_panel_png(tmp_path / "local_minimum.png")
    # the two minima really are the local and the global one of w**4 - 3 w**2 + w
    roots = np.roots([4, 0, -6, 1])
    minima = sorted(r.real for r in roots if abs(r.imag) < 1e-12 and 12 * r.real**2 - 6 > 0)
    assert minima == pytest.approx([-1.3008, 1.1309], abs=1e-4)
