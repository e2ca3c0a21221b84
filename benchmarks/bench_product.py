"""The product loss ``t*x0*x1*...*x79``: generated gradient against the hand-written LOSS.

Run (full size, a few seconds on 2 cores; ``--quick`` is a smoke run):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_product.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_product.py --quick
    options: --params 80 --samples 100000 --repeat 25

D scalar parameters x0..x{D-1} and one data array t of n samples, compiled with
``symdiff.compile("t*x0*...*x{D-1}", "x0,...", "t", reduce="mean")``. The reference is the
hand-written loss ``np.mean(t*np.prod(p))``: the parameter-only product is a scalar, so a good
generator does the per-sample work once, not D times. Target (the cheap-gradient principle):
generated loss_and_grad <= 4x the hand-written loss. Also printed: the generated loss alone and a
hand-written loss+grad (mean(t) times the exclusive prefix/suffix products), against the same
reference. Every result is checked against the hand-written one before it is timed.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
from collections.abc import Callable

import numpy as np

import symdiff


def product_loss(d: int) -> tuple[str, str]:
    """(loss text, comma-separated parameter names) of the product of d parameters."""
    names = [f"x{i}" for i in range(d)]
    return "t*" + "*".join(names), ",".join(names)


def hand_loss(p: np.ndarray, t: np.ndarray) -> float:
    return np.mean(t * np.prod(p))


def hand_loss_and_grad(p: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """d/dx_i mean(t * prod(p)) = mean(t) * prod(p without p_i): exclusive prefix/suffix products,
    no division (so a zero parameter is fine)."""
    prefix = np.concatenate(([1.0], np.cumprod(p[:-1])))
    suffix = np.concatenate((np.cumprod(p[:0:-1])[::-1], [1.0]))
    mean_t = np.mean(t)
    return mean_t * prefix[-1] * p[-1], mean_t * prefix * suffix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=80, help="D, the number of factors")
    parser.add_argument("--samples", type=int, default=100_000, help="n, the length of t")
    parser.add_argument("--repeat", type=int, default=25, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: n = 10^4, 5 rounds")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.repeat = 10_000, 5

    harness.print_header(f"product of {args.params} parameters: symdiff.compile vs by hand")
    rng = np.random.default_rng(0)
    p = rng.uniform(0.95, 1.05, args.params)
    t = rng.standard_normal(args.samples)
    loss_text, names = product_loss(args.params)
    model = harness.attempt(
        f"symdiff.compile(product of {args.params})",
        lambda: symdiff.compile(loss_text, names, "t", reduce="mean", name="product"),
    )
    reference = hand_loss_and_grad(p, t)
    if not np.isclose(hand_loss(p, t), reference[0], rtol=1e-12):
        harness.fail("the two hand-written losses disagree")
    candidates: dict[str, Callable[[], object]] = {
        "hand-written loss np.mean(t*np.prod(p))": lambda: hand_loss(p, t),
        "hand-written loss+grad (prefix/suffix)": lambda: hand_loss_and_grad(p, t),
    }
    if model is not None:
        harness.admit(
            candidates, "symdiff loss_and_grad", lambda: model.loss_and_grad(p, t), reference
        )
        value = harness.attempt("symdiff loss", lambda: model.loss(p, t))
        if value is not None and harness.check("symdiff loss", (value, None), reference):
            candidates["symdiff loss alone"] = lambda: model.loss(p, t)
    times = harness.interleaved(candidates, args.repeat)
    rows = harness.ratio_rows(
        times, "hand-written loss np.mean(t*np.prod(p))", {"symdiff loss_and_grad": 4.0}
    )
    harness.table(
        f"[3] D = {args.params} parameters, n = {args.samples:,} samples, median of "
        f"{args.repeat} interleaved rounds (ratio = per-round time / hand-written loss)",
        rows,
    )
    harness.finish()


if __name__ == "__main__":
    main()
