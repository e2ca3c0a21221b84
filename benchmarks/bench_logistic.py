"""Scalar logistic regression: the generated ``loss_and_grad`` against the textbook NumPy (time at
n = 10^6 and peak memory at n = 10^7), with JAX, hand-written variants and lambdify beside it.

Run (full size, about half a minute on 2 cores; ``--quick`` is a smoke run of a few seconds):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_logistic.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_logistic.py --quick
    options: --samples 1000000 --memory-samples 10000000 --repeat 25 [--no-jax] [--no-lambdify]

The loss is the per-sample ``-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))``,
params b0, b1, data x, y, compiled with ``symdiff.compile(..., reduce="mean")``. The reference is
the TEXTBOOK hand-written NumPy::

    p = 1/(1+np.exp(-z)); loss = np.mean(-y*np.log(p) - (1-y)*np.log(1-p))
    grad = [np.mean(p - y), np.mean((p - y)*x)]

Targets (DESIGN.md, "one engine"): generated loss_and_grad <= 0.5x textbook in time; peak memory
of one loss_and_grad call at n = 10^7 at most 10% of the textbook's (0.10x: per-sample work in
blocks); loss_and_grad <= 3x the generated loss alone. Times: medians of interleaved calls (see
harness.py). Memory: tracemalloc (NumPy reports its buffers to it) around one call each, the data
allocated before tracing starts; peak minus the traced memory at the start.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
import gc
import tracemalloc
from collections.abc import Callable

import numpy as np
import sympy as sp

import symdiff

LOSS = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"


def textbook(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """What the textbook writes: sigmoid, the two logs, the residual."""
    b0, b1 = params
    z = b0 + b1 * x
    p = 1 / (1 + np.exp(-z))
    loss = np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p))
    return loss, np.array([np.mean(p - y), np.mean((p - y) * x)])


def stable_by_hand(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """A careful person: stable loss via np.logaddexp, gradient via the residual."""
    b0, b1 = params
    z = b0 + b1 * x
    loss = np.mean(np.logaddexp(0, z) - y * z)
    residual = 1 / (1 + np.exp(-z)) - y
    return loss, np.array([residual.mean(), (residual * x).mean()])


def tuned_by_hand(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Faster by hand: softplus as max(z, 0) + log1p(exp(-|z|)) in one expression."""
    b0, b1 = params
    z = b0 + b1 * x
    loss = np.mean(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - y * z)
    residual = 1 / (1 + np.exp(-z)) - y
    return loss, np.array([residual.mean(), (residual * x).mean()])


def lambdified() -> Callable:
    """sympy.lambdify of the loss and of sympy.diff of it (sigmoid written out)."""
    b0, b1, x, y = sp.symbols("b0 b1 x y", real=True)
    p = 1 / (1 + sp.exp(-(b0 + b1 * x)))
    loss = -y * sp.log(p) - (1 - y) * sp.log(1 - p)
    f = sp.lambdify((b0, b1, x, y), [loss, sp.diff(loss, b0), sp.diff(loss, b1)], "numpy")

    def loss_and_grad(params: np.ndarray, xs: np.ndarray, ys: np.ndarray):
        value, g0, g1 = f(params[0], params[1], xs, ys)
        return np.mean(value), np.array([np.mean(g0), np.mean(g1)])

    return loss_and_grad


def jax_version(x: np.ndarray, y: np.ndarray) -> Callable | None:
    """jax.jit(jax.value_and_grad(textbook loss)) in float64, the data placed on the device once."""
    modules = harness.jax_modules()
    if modules is None:
        return None
    jax, jnp = modules

    def loss(params, xs, ys):
        p = 1 / (1 + jnp.exp(-(params[0] + params[1] * xs)))
        return jnp.mean(-ys * jnp.log(p) - (1 - ys) * jnp.log(1 - p))

    compiled = jax.jit(jax.value_and_grad(loss))
    xd, yd = jax.device_put(x), jax.device_put(y)

    def run(params: np.ndarray, _x: np.ndarray, _y: np.ndarray):
        value, grad = compiled(params, xd, yd)
        return float(value), np.asarray(grad.block_until_ready())

    return run


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.5 + 2 * x)))).astype(np.float64)
    return x, y


def peak_bytes(function: Callable[[], object]) -> tuple[int, object]:
    """Peak traced bytes of one call above what was traced when it started (and its result)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        result = function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start, result


def time_section(model, args, params: np.ndarray) -> None:
    n = args.samples
    x, y = data(n)
    reference = textbook(params, x, y)
    candidates: dict[str, Callable] = {
        "symdiff loss_and_grad": model.loss_and_grad,
        "symdiff loss alone": lambda p, a, b: (model.loss(p, a, b), None),
        "stable by hand (logaddexp)": stable_by_hand,
        "tuned by hand (softplus)": tuned_by_hand,
    }
    if not args.no_lambdify:
        candidates["sympy.lambdify(sympy.diff)"] = lambdified()
    if not args.no_jax:
        jax_run = harness.attempt("JAX setup", lambda: jax_version(x, y))
        if jax_run is not None:
            candidates["JAX jit value_and_grad"] = jax_run
    verified: dict[str, Callable[[], object]] = {
        "textbook NumPy (reference)": lambda: textbook(params, x, y)
    }
    for label, function in candidates.items():
        harness.admit(verified, label, lambda f=function: f(params, x, y), reference)
    times = harness.interleaved(verified, args.repeat)
    rows = harness.ratio_rows(times, "textbook NumPy (reference)", {"symdiff loss_and_grad": 0.5})
    if "symdiff loss_and_grad" in times and "symdiff loss alone" in times:
        r = harness.ratio(times["symdiff loss_and_grad"], times["symdiff loss alone"])
        rows.append(
            (
                "symdiff loss_and_grad / symdiff loss",
                "",
                f"{r:.2f}x",
                "<= 3x",
                harness.verdict(r, 3.0),
            )
        )
    harness.table(
        f"[1] time, n = {n:,}, median of {args.repeat} interleaved rounds "
        "(ratio = per-round time / textbook NumPy)",
        rows,
    )


def memory_section(model, args, params: np.ndarray) -> None:
    n = args.memory_samples
    x, y = data(n, seed=1)
    data_mib = (x.nbytes + y.nbytes) / 2**20
    # Warm-up on a slice, outside tracing: first-call costs are not per-call memory.
    model.loss_and_grad(params, x[:1000], y[:1000])
    textbook(params, x[:1000], y[:1000])
    hand, reference = peak_bytes(lambda: textbook(params, x, y))
    measured = harness.attempt(
        "symdiff loss_and_grad (memory run)",
        lambda: peak_bytes(lambda: model.loss_and_grad(params, x, y)),
    )
    rows = [("textbook NumPy (reference)", f"{hand / 2**20:.1f} MiB", "1.00x", "", "")]
    if measured is not None:
        generated, result = measured
        if harness.check(f"symdiff loss_and_grad at n = {n:,}", result, reference):
            r = generated / hand
            rows.insert(
                0,
                (
                    "symdiff loss_and_grad",
                    f"{generated / 2**20:.1f} MiB",
                    f"{r:.3f}x",
                    "<= 0.10x",
                    harness.verdict(r, 0.10),
                ),
            )
    harness.table(
        f"[2] peak memory of one loss_and_grad call, n = {n:,} (tracemalloc; the data, "
        f"{data_mib:.0f} MiB, allocated beforehand and excluded)",
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="n of the time section")
    parser.add_argument(
        "--memory-samples", type=int, default=10_000_000, help="n of the peak-memory section"
    )
    parser.add_argument("--repeat", type=int, default=25, help="interleaved rounds")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 10^5 / 10^6 samples, 5 rounds"
    )
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out")
    parser.add_argument("--no-lambdify", action="store_true", help="leave lambdify out")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.memory_samples, args.repeat = 100_000, 1_000_000, 5

    harness.print_header("scalar logistic regression: symdiff.compile vs textbook NumPy")
    if not args.no_jax:
        print(f"  {harness.framework_versions(torch=False)}")
    params = np.array([0.3, 1.7])
    model = harness.attempt(
        "symdiff.compile(logistic)",
        lambda: symdiff.compile(LOSS, "b0,b1", "x,y", reduce="mean", name="logistic"),
    )
    if model is not None:
        time_section(model, args, params)
        memory_section(model, args, params)
    harness.finish()


if __name__ == "__main__":
    main()
