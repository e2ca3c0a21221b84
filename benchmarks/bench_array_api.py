"""Array-API modules (``--backend array-api``) against the NumPy modules, as ratios in one run.

Run (a few seconds on 2 cores; ``--quick`` is a smoke run):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_array_api.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_array_api.py --quick
    options: --rows 100000 --batch 32 --repeat 30

Two losses, each generated with both backends: the logistic regression loss (X of shape
(rows, 20)) and batched attention (benchmarks/bench_attention.py's loss, b = --batch, t = 64,
e = 64, d = 32). Timed: ``loss_and_grad`` with a dict of parameters, for the NumPy module on
NumPy arrays (the reference), the array-API module on the same NumPy arrays (its overhead) and
the array-API module on PyTorch CPU float64 tensors (one thread, as the BLAS). Every result is
checked against the NumPy module's before timing. Timing: see harness.py (interleaved rounds,
medians of per-round ratios).
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
from collections.abc import Callable

import numpy as np
from bench_attention import attention_loss

import symdiff

LOGISTIC = "mean(-y*log(sigmoid(X @ w + b)) - (1-y)*log(1-sigmoid(X @ w + b)))"


def cases(rows: int, batch: int) -> dict[str, tuple[str, dict, list[str], list[str], dict, tuple]]:
    """name -> (loss, shapes, params, data, parameter values, data arrays)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 20))
    y = (rng.random(rows) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    logistic = (
        LOGISTIC,
        {"X": ("n", 20), "w": (20,), "y": ("n",)},
        ["w", "b"],
        ["X", "y"],
        {"w": rng.normal(size=20) * 0.1, "b": np.float64(0.1)},
        (X, y),
    )
    t, e, d = 64, 64, 32
    names = ["Wq", "Wk", "Wv"]
    attention = (
        attention_loss(d),
        {"X": ("b", t, e), "Y": ("b", t, d), **{name: (e, d) for name in names}},
        names,
        ["X", "Y"],
        {name: rng.normal(size=(e, d)) / np.sqrt(e) for name in names},
        (rng.normal(size=(batch, t, e)), rng.normal(size=(batch, t, d))),
    )
    return {"logistic": logistic, "attention": attention}


def step(module: object, values: dict, data: tuple) -> Callable[[], object]:
    """One timed call: ``module.loss_and_grad(values, *data)``."""
    return lambda: module.loss_and_grad(values, *data)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="logistic rows (n)")
    parser.add_argument("--batch", type=int, default=32, help="attention sequences (b)")
    parser.add_argument("--repeat", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: small, 5 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.batch, args.repeat = 5_000, 4, 5

    harness.print_header("array-API modules vs NumPy modules (symdiff --backend array-api)")
    print(f"  {harness.framework_versions(torch=True, jax=False)}")
    torch = harness.torch_module()
    rows = []
    for label, (loss, shapes, params, data_names, values, data) in cases(
        args.rows, args.batch
    ).items():
        numpy_module = symdiff.compile_tensor(loss, shapes, params, data_names)
        array_module = symdiff.compile_tensor(loss, shapes, params, data_names, backend="array-api")
        reference = numpy_module.loss_and_grad(values, *data)
        runs: dict[str, Callable[[], object]] = {
            "numpy module, NumPy arrays": step(numpy_module, values, data),
            "array-api module, NumPy arrays": step(array_module, values, data),
        }
        if torch is not None:
            tensors = {k: torch.asarray(v) for k, v in values.items()}
            torch_data = tuple(torch.from_numpy(a) for a in data)
            runs["array-api module, PyTorch CPU"] = step(array_module, tensors, torch_data)
        else:
            print("  (PyTorch: not installed, skipped)")
        checked = {}
        for name, run in runs.items():
            result = harness.attempt(f"{label}: {name}", run)
            if result is None:
                continue
            value, gradient = result  # type: ignore[misc]
            as_numpy = (float(value), {k: np.asarray(g) for k, g in gradient.items()})
            if harness.check(f"{label}: {name}", as_numpy, reference, order=params):
                checked[name] = run
        times = harness.interleaved(checked, args.repeat)
        base = times["numpy module, NumPy arrays"]
        for name, seconds in times.items():
            r = harness.ratio(seconds, base)
            rows.append(
                (f"{label}: {name}", harness.ms(harness.median(seconds)), f"{r:.2f}x", "", "")
            )
    harness.table(
        f"loss_and_grad, logistic n={args.rows} d=20 and attention b={args.batch} t=64 e=64 "
        f"d=32, median of {args.repeat} interleaved rounds (ratio = per-round time / numpy module)",
        rows,
    )
    harness.finish()


if __name__ == "__main__":
    main()
