"""Benchmark: what ``symdiff.fit`` adds on top of the generated ``loss_and_grad`` calls.

Run:  python benchmarks/bench_fit.py [--samples 100000] [--steps 200] [--repeat 5]

Two cases on the logistic-regression loss, each against a reference timed in the same run:

* full batch: ``fit`` with gradient descent for ``--steps`` epochs, against a bare loop of the same
  number of ``loss_and_grad`` calls and ``w -= lr * g`` updates (ratio; the target is ~1.0: the
  loop's bookkeeping is negligible next to a pass over the data);
* SGD, one sample per step: the loop's own cost per step in microseconds (``fit`` time minus the
  bare loop's, over the number of steps), where the bookkeeping is what remains.

Medians of ``--repeat`` rounds after a warm-up; in each round the two alternate, and the ratio is
the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import symdiff

LOSS = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def compare(
    candidate: Callable[[], object], reference: Callable[[], object], repeat: int
) -> tuple[float, float, float]:
    """Median times of both and the median of per-round ratios; the two alternate in each round
    so that load from other processes hits both alike."""
    candidate(), reference()
    rounds = [(seconds(candidate), seconds(reference)) for _ in range(repeat)]
    return (
        statistics.median(c for c, _ in rounds),
        statistics.median(r for _, r in rounds),
        statistics.median(c / r for c, r in rounds),
    )


def bare_loop(model, batches: list[tuple[np.ndarray, ...]], lr: float) -> np.ndarray:
    """The minimum any training loop does: evaluate, step."""
    w = np.zeros(2)
    for batch in batches:
        _, g = model.loss_and_grad(w, *batch)
        w -= lr * g
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=args.samples)
    y = (rng.random(args.samples) < 1 / (1 + np.exp(-(0.5 + 2 * x)))).astype(float)
    model = symdiff.compile(LOSS, params=["b0", "b1"], data=["x", "y"])

    full, bare, ratio = compare(
        lambda: symdiff.fit(model, (x, y), "gd", lr=0.5, epochs=args.steps),
        lambda: bare_loop(model, [(x, y)] * args.steps, 0.5),
        args.repeat,
    )
    print(
        f"full batch, {args.samples} samples, {args.steps} steps: fit {full * 1e3:.1f} ms, "
        f"bare loop {bare * 1e3:.1f} ms, ratio {ratio:.3f}"
    )

    n = min(args.samples, 5_000)
    order = np.random.default_rng(0).permutation(n)
    singles = [(x[i : i + 1], y[i : i + 1]) for i in order]
    sgd, bare_sgd, ratio = compare(
        lambda: symdiff.fit(model, (x[:n], y[:n]), "sgd", lr=0.01, epochs=1),
        lambda: bare_loop(model, singles, 0.01),
        args.repeat,
    )
    own = (sgd - bare_sgd) / n * 1e6
    print(
        f"SGD, {n} steps of one sample: fit {sgd / n * 1e6:.1f} us/step, bare loop "
        f"{bare_sgd / n * 1e6:.1f} us/step, fit's own cost {own:.1f} us/step (ratio {ratio:.2f})"
    )


if __name__ == "__main__":
    main()
