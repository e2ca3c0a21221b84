"""The seed's absolute-error model, ``loss = abs(y_true - (w*x + b))``, differentiated and trained.

1. The seed's worked example (figures 2.22-2.24): x = 2, y_true = 4, w = 3, b = 1 gives
   x1 = x*w = 6, x2 = x1 + b = 7, loss = |4 - 7| = 3, grad(loss, w) = 1*1*2 = 2 and
   grad(loss, b) = 1*1 = 1 (the seed prints 2 for b, a slip: the path from b has no factor x).
   symdiff's generated gradient gives the same numbers.
2. Least absolute deviations on 200 noisy points with 10% outliers: full-batch (sub)gradient
   descent with an inverse-time decaying learning rate. The reference is the exact optimum from
   scikit-learn's ``QuantileRegressor(quantile=0.5, alpha=0)`` (a linear program). Least squares
   is printed too: the outliers pull it away, the absolute error hardly moves.

    python examples/absolute_error.py
"""

from __future__ import annotations

import numpy as np

from symdiff.codegen.scalar import compile as compile_loss
from symdiff.train.loop import fit
from symdiff.train.optimize import make_optimizer

LOSS = "abs(y - (w*x + b))"


def make_data(n: int = 200, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """y = 2x + 1 + Laplace noise; 10% of the points get an outlier of +5..+15."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 5.0, n)
    y = 2.0 * x + 1.0 + rng.laplace(0.0, 0.3, n)
    outliers = rng.random(n) < 0.1
    y[outliers] += rng.uniform(5.0, 15.0, outliers.sum())
    return x, y


def least_absolute_deviations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(w, b) minimising mean |y - (w x + b)| exactly, by linear programming (scikit-learn)."""
    from sklearn.linear_model import QuantileRegressor

    reference = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(x[:, None], y)
    return np.r_[reference.coef_, reference.intercept_]


def run() -> dict[str, object]:
    model = compile_loss(LOSS, params=["w", "b"], data=["x", "y"])
    seed_point = np.array([3.0, 1.0])
    seed_x, seed_y = np.array([2.0]), np.array([4.0])
    x, y = make_data()
    optimizer = make_optimizer("gd", lr=0.5, schedule="inverse:decay=0.05")
    result = fit(model, (x, y), optimizer, epochs=3000)
    return {
        "seed_loss": model.loss(seed_point, seed_x, seed_y),
        "seed_grad": model.grad(seed_point, seed_x, seed_y),
        "result": result,
        "lad": least_absolute_deviations(x, y),
        "least_squares": np.polyfit(x, y, 1),
        "data": (x, y),
    }


def main() -> None:
    outcome = run()
    grad_w, grad_b = outcome["seed_grad"]
    print(
        f"seed example: loss = {outcome['seed_loss']:g}, "
        f"grad(loss, w) = {grad_w:g}, grad(loss, b) = {grad_b:g}"
    )
    result, lad = outcome["result"], outcome["lad"]
    x, y = outcome["data"]
    optimum = np.mean(np.abs(y - (lad[0] * x + lad[1])))
    print(
        f"symdiff gd      w = {result.params['w']:.6f}  b = {result.params['b']:.6f}  "
        f"mean |error| = {result.loss:.8f}  ({result.steps} steps)"
    )
    print(f"linear program  w = {lad[0]:.6f}  b = {lad[1]:.6f}  mean |error| = {optimum:.8f}")
    w_ls, b_ls = outcome["least_squares"]
    print(f"least squares   w = {w_ls:.6f}  b = {b_ls:.6f}  (pulled by the outliers)")
    print(f"relative gap to the optimum: {(result.loss - optimum) / optimum:.1e}")


if __name__ == "__main__":
    main()
