"""Benchmark: what ``symdiff.fit`` adds on top of the generated ``loss_and_grad`` calls.

Run (about half a minute on 2 cores; ``--quick`` is a smoke run):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_fit.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_fit.py --quick
    options: --samples 100000 --steps 200 --repeat 7

Two cases on the logistic-regression loss, each against a reference timed in the same run:

* full batch: ``fit`` with gradient descent for ``--steps`` epochs, against a bare loop of the same
  number of ``loss_and_grad`` calls and ``w -= lr * g`` updates (ratio; the target is ~1.0: the
  loop's bookkeeping is negligible next to a pass over the data);
* SGD, one sample per step: the loop's own cost per step in microseconds (``fit`` time minus the
  bare loop's, over the number of steps), where the bookkeeping is what remains.

Medians of ``--repeat`` rounds after a warm-up; in each round the two alternate, and the ratio is
the median of the per-round ratios (harness.py). Both must reach the same parameters.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
from collections.abc import Callable

import numpy as np

import symdiff

LOSS = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"


def compare(
    candidate: Callable[[], object], reference: Callable[[], object], repeat: int
) -> tuple[float, float, float]:
    """Median times of both and the median of per-round ratios (interleaved rounds)."""
    times = harness.interleaved({"candidate": candidate, "reference": reference}, repeat)
    return (
        harness.median(times["candidate"]),
        harness.median(times["reference"]),
        harness.ratio(times["candidate"], times["reference"]),
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
    parser.add_argument("--quick", action="store_true", help="smoke run: 10^4 samples, 20 steps")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.steps, args.repeat = 10_000, 20, 3
    harness.print_header("symdiff.fit against a bare loop of loss_and_grad calls")
    rng = np.random.default_rng(0)
    x = rng.normal(size=args.samples)
    y = (rng.random(args.samples) < 1 / (1 + np.exp(-(0.5 + 2 * x)))).astype(float)
    model = symdiff.compile(LOSS, params=["b0", "b1"], data=["x", "y"])
    trained = symdiff.fit(model, (x, y), "gd", lr=0.5, epochs=args.steps).flat
    by_loop = bare_loop(model, [(x, y)] * args.steps, 0.5)
    if not np.allclose(trained, by_loop, rtol=1e-10, atol=1e-12):
        harness.fail(f"fit reached {trained}, the bare loop {by_loop}")

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
    harness.finish()


if __name__ == "__main__":
    main()
