"""Linear regression by least squares, trained with symdiff and checked against numpy.linalg.lstsq.

The per-sample loss ``(b0 + b1*x - y)**2`` is compiled to NumPy by ``symdiff.compile``
(mean over the samples) and trained from b0 = b1 = 0 by several full-batch optimizers; each
reaches the least-squares solution. Then (true) SGD, one sample per step, and mini-batch SGD,
20 samples per step, both with an inverse-time decaying learning rate: their noisy steps end near
the solution, not on it. With ``--plot DIR`` it draws the paths over the loss contours (figure
2.19 of the seed) into ``DIR/linear_regression.png`` and ``DIR/linear_regression_sgd.png``.

    python examples/linear_regression.py --plot .
    symdiff fit "(b0 + b1*x - y)**2" --params b0,b1 --data x,y \\
        --input examples/data/linear.csv --lr 0.1 --tol 1e-12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from symdiff.codegen.scalar import compile as compile_loss
from symdiff.train.loop import FitResult, fit
from symdiff.train.optimize import make_optimizer
from symdiff.train.plot import plot_training

LOSS = "(b0 + b1*x - y)**2"
CSV = Path(__file__).parent / "data" / "linear.csv"
#: optimizer name -> settings; each converges from (0, 0) on this data
OPTIMIZERS = {
    "gd": {"lr": 0.1},
    "momentum": {"lr": 0.05, "mu": 0.8},
    "nesterov": {"lr": 0.05, "mu": 0.8},
    "adam": {"lr": 0.2},
}

#: name -> (optimizer, settings, batch size, epochs) of the stochastic runs
STOCHASTIC = {
    "sgd": ("sgd", {"lr": 0.02, "schedule": "inverse:decay=0.001"}, 1, 50),
    "minibatch": ("minibatch", {"lr": 0.05, "schedule": "inverse:decay=0.01"}, 20, 200),
}


def make_data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = 1.5 + 0.8 x + noise, x uniform on [-3, 3] (the same numbers as data/linear.csv)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, n)
    return x, 1.5 + 0.8 * x + rng.normal(0.0, 0.5, n)


def write_csv(path: Path = CSV) -> None:
    x, y = make_data()
    np.savetxt(path, np.c_[x, y], delimiter=",", header="x,y", comments="", fmt="%.17g")


def run(plot_dir: Path | None = None) -> dict[str, object]:
    """Fit with each optimizer; return the results and numpy's least-squares solution."""
    model = compile_loss(LOSS, params=["b0", "b1"], data=["x", "y"])
    x, y = make_data()
    lstsq, *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)
    runs: dict[str, FitResult] = {
        name: fit(
            model,
            (x, y),
            make_optimizer(name, **settings),
            epochs=2000,
            gtol=1e-10,
            record_path=plot_dir is not None,
        )
        for name, settings in OPTIMIZERS.items()
    }
    stochastic: dict[str, FitResult] = {
        name: fit(
            model,
            (x, y),
            make_optimizer(optimizer, **settings),
            batch_size=batch_size,
            epochs=epochs,
            seed=0,
            record_path=plot_dir is not None,
        )
        for name, (optimizer, settings, batch_size, epochs) in STOCHASTIC.items()
    }
    if plot_dir is not None:
        title = f"least squares: {LOSS}"
        plot_training(
            runs, Path(plot_dir) / "linear_regression.png", model=model, data=(x, y), title=title
        )
        plot_training(
            {"gd": runs["gd"], **stochastic},
            Path(plot_dir) / "linear_regression_sgd.png",
            model=model,
            data=(x, y),
            title=f"{title}: batch sizes 200 (gd), 1 (sgd), 20 (minibatch)",
        )
    return {"lstsq": lstsq, "runs": runs, "stochastic": stochastic}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, help="folder for linear_regression.png")
    parser.add_argument("--write-csv", action="store_true", help=f"(re)write {CSV}")
    args = parser.parse_args()
    if args.write_csv:
        write_csv()
    result = run(args.plot)
    b0, b1 = result["lstsq"]
    print(f"numpy.linalg.lstsq      b0 = {b0:.10f}  b1 = {b1:.10f}")
    for name, fitted in {**result["runs"], **result["stochastic"]}.items():
        error = max(abs(fitted.params["b0"] - b0), abs(fitted.params["b1"] - b1))
        print(
            f"{name:<10} {fitted.steps:5d} steps  b0 = {fitted.params['b0']:.10f}  "
            f"b1 = {fitted.params['b1']:.10f}  max |diff| = {error:.1e}  ({fitted.message})"
        )


if __name__ == "__main__":
    main()
