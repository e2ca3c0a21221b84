"""Benchmark: the generated logistic-regression module against hand-written NumPy and lambdify.

Run:  python benchmarks/bench_logistic.py [--samples 1000000] [--repeat 15]

Every ratio is measured in one run against a reference timed in the same run (median of
``--repeat`` timings of one call each, after a warm-up call). Targets from the project brief:
generated loss_and_grad / hand-written loss+grad <= 1.0, loss_and_grad / loss <= 2.5.
Two hand-written references: the obvious stable one (np.logaddexp) and a hand-tuned one that
uses the same softplus formula as the generated code.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import sympy as sp

import symdiff

LOSS = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"


def hand_written_loss_and_grad(params: np.ndarray, x: np.ndarray, y: np.ndarray):
    """What a careful person writes: stable loss via np.logaddexp, gradient via (p - y)."""
    b0, b1 = params
    z = b0 + b1 * x
    loss = np.mean(np.logaddexp(0, z) - y * z)
    residual = 1 / (1 + np.exp(-z)) - y
    return loss, np.array([residual.mean(), (residual * x).mean()])


def hand_tuned_loss_and_grad(params: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Faster by hand: softplus as max(z, 0) + log1p(exp(-|z|)) (np.logaddexp is slow)."""
    b0, b1 = params
    z = b0 + b1 * x
    loss = np.mean(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - y * z)
    residual = 1 / (1 + np.exp(-z)) - y
    return loss, np.array([residual.mean(), (residual * x).mean()])


def lambdify_loss_and_grad() -> Callable:
    """sympy.lambdify of the loss and of sympy.diff of it (sigmoid written out)."""
    b0, b1, x, y = sp.symbols("b0 b1 x y", real=True)
    p = 1 / (1 + sp.exp(-(b0 + b1 * x)))
    loss = -y * sp.log(p) - (1 - y) * sp.log(1 - p)
    f = sp.lambdify((b0, b1, x, y), [loss, sp.diff(loss, b0), sp.diff(loss, b1)], "numpy")

    def loss_and_grad(params: np.ndarray, xs: np.ndarray, ys: np.ndarray):
        value, g0, g1 = f(params[0], params[1], xs, ys)
        return np.mean(value), np.array([np.mean(g0), np.mean(g1)])

    return loss_and_grad


def median_times(functions: dict[str, Callable], *args: object, repeat: int) -> dict[str, float]:
    """Median seconds per call of each function; the calls are interleaved, round after round,
    so a change in machine load affects every function alike."""
    times: dict[str, list[float]] = {label: [] for label in functions}
    for function in functions.values():
        function(*args)
    for _ in range(repeat):
        for label, function in functions.items():
            start = time.perf_counter()
            function(*args)
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.samples)
    y = (rng.random(args.samples) < 1 / (1 + np.exp(-(0.5 + 2 * x)))).astype(np.float64)
    params = np.array([0.3, 1.7])

    model = symdiff.compile(LOSS, "b0,b1", "x,y", name="logistic")
    lambdified = lambdify_loss_and_grad()
    with np.errstate(all="ignore"):
        reference = hand_written_loss_and_grad(params, x, y)
        tuned = hand_tuned_loss_and_grad(params, x, y)
        check = lambdified(params, x, y)
    generated = model.loss_and_grad(params, x, y)
    assert np.allclose(generated[0], reference[0]) and np.allclose(generated[1], reference[1])
    assert np.allclose(check[0], reference[0]) and np.allclose(check[1], reference[1])
    assert np.allclose(tuned[0], reference[0]) and np.allclose(tuned[1], reference[1])

    with np.errstate(all="ignore"):
        timings = median_times(
            {
                "generated loss_and_grad": model.loss_and_grad,
                "generated loss": model.loss,
                "hand-written NumPy loss+grad": hand_written_loss_and_grad,
                "hand-tuned NumPy loss+grad": hand_tuned_loss_and_grad,
                "sympy.lambdify(sympy.diff) loss+grad": lambdified,
            },
            params,
            x,
            y,
            repeat=args.repeat,
        )
    print(
        f"logistic regression loss, {args.samples:,} samples, "
        f"median of {args.repeat} interleaved runs"
    )
    for label, seconds in timings.items():
        print(f"  {label:<38} {seconds * 1e3:8.2f} ms")
    ours = timings["generated loss_and_grad"]
    print("ratios:")
    print(
        f"  loss_and_grad / hand-written NumPy      "
        f"{ours / timings['hand-written NumPy loss+grad']:.2f}x  (target <= 1.0x)"
    )
    print(
        f"  loss_and_grad / hand-tuned NumPy        "
        f"{ours / timings['hand-tuned NumPy loss+grad']:.2f}x"
    )
    print(
        f"  loss_and_grad / loss alone              "
        f"{ours / timings['generated loss']:.2f}x  (target <= 2.5x)"
    )
    print(
        f"  loss_and_grad / lambdify(diff)          "
        f"{ours / timings['sympy.lambdify(sympy.diff) loss+grad']:.2f}x"
    )


if __name__ == "__main__":
    main()
