"""Benchmark: training on a 2-worker Dask LocalCluster, against dask-ml.

Run (a few minutes on 2 cores; needs the ``dask`` extra and dask-ml, from the ``bench`` extra):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_dask.py
    options: --rows 200000 --chunks 4 --steps 30 --repeat 5

1. Time per gradient step of the logistic loss on one persisted Dask array X (rows x 5) and y:
   ``symdiff.fit`` (full-batch gd, the columns X[:, j] as the data of the per-sample loss, each step
   one task per chunk returning P + 1 partial sums) against dask-ml's
   ``LogisticRegression(solver="gradient_descent")`` (dask-glm's gradient descent with its
   backtracking line search, ``tol=0`` so that it makes every step), each fit's time over its
   number of steps; interleaved rounds, medians (harness.py). Target: ratio <= 1.0.
2. The same optimum, on the first ``--optimum-rows`` rows (dask-ml's line search makes its steps
   slow): symdiff (Nesterov to gradient norm 1e-9) and dask-ml (gradient descent until its own
   tolerance 1e-14, at most 1000 steps) agree on every coefficient to 1e-6 (FAIL otherwise).
3. A loss dask-ml cannot express: a pseudo-Huber regression, sqrt(1 + r**2) - 1 with
   r = y - b0 - w.x, on data with 5% gross outliers, trained on the cluster; it must equal the
   in-memory fit to 1e-9, and lands near the true coefficients where least squares does not.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
import time
import warnings

import numpy as np

import symdiff

FEATURES = 5
NAMES = [f"x{i}" for i in range(1, FEATURES + 1)]
PARAMS = ["b0"] + [f"w{i}" for i in range(1, FEATURES + 1)]
LINEAR = " + ".join(["b0"] + [f"w{i}*x{i}" for i in range(1, FEATURES + 1)])
LOGISTIC = f"y*softplus(-({LINEAR})) + (1 - y)*softplus({LINEAR})"
PSEUDO_HUBER = f"sqrt(1 + (y - ({LINEAR}))**2) - 1"


def columns(X, y):
    return {**{name: X[:, j] for j, name in enumerate(NAMES)}, "y": y}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--optimum-rows", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2*10^4 rows, 3 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat, args.steps = 20_000, 3, 10
    harness.print_header("Dask: symdiff.fit against dask-ml's gradient descent, 2 workers")
    import dask
    import dask.array as da
    import dask_ml
    from dask_ml.linear_model import LogisticRegression
    from distributed import Client, LocalCluster

    print(f"  dask {dask.__version__}, dask-ml {dask_ml.__version__}")
    warnings.filterwarnings("ignore")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    client = Client(cluster)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(args.rows, FEATURES))
    truth = np.array([1.0, -2.0, 0.5, 0.0, 1.5])
    labels = (rng.random(args.rows) < 1 / (1 + np.exp(-(0.3 + features @ truth)))) * 1.0
    chunk = -(-args.rows // args.chunks)
    X = client.persist(da.from_array(features, chunks=(chunk, FEATURES)))
    y = client.persist(da.from_array(labels, chunks=chunk))
    model = symdiff.compile(LOGISTIC, params=PARAMS, data=[*NAMES, "y"])
    data = columns(X, y)

    def ours() -> float:
        start = time.perf_counter()
        symdiff.fit(model, data, "gd", lr=1.0, epochs=args.steps)
        return (time.perf_counter() - start) / args.steps

    def theirs() -> float:
        start = time.perf_counter()
        LogisticRegression(solver="gradient_descent", max_iter=args.steps, tol=0.0).fit(X, y)
        return (time.perf_counter() - start) / args.steps

    per_step = {"symdiff": [], "dask-ml": []}
    ours(), theirs()  # warm-up: the workers import what they need
    for _ in range(args.repeat):
        per_step["symdiff"].append(ours())
        per_step["dask-ml"].append(theirs())
    ratio = harness.ratio(per_step["symdiff"], per_step["dask-ml"])
    harness.table(
        f"time per full-batch gradient step, {args.rows:,} rows x {FEATURES}, "
        f"{args.chunks} chunks, {args.steps} steps a fit",
        [
            (
                "symdiff fit (gd)",
                harness.ms(harness.median(per_step["symdiff"])),
                f"{ratio:.3f}",
                "<= 1.0",
                harness.verdict(ratio, 1.0),
            ),
            (
                "dask-ml gradient_descent",
                harness.ms(harness.median(per_step["dask-ml"])),
                "1.000",
                "",
                "",
            ),
        ],  # fmt: skip
    )

    m = min(args.optimum_rows, args.rows)
    X_m = client.persist(da.from_array(features[:m], chunks=(-(-m // args.chunks), FEATURES)))
    y_m = client.persist(da.from_array(labels[:m], chunks=-(-m // args.chunks)))
    ours_fit = symdiff.fit(model, columns(X_m, y_m), "nesterov", lr=1.0, epochs=5000, gtol=1e-9)
    reference = LogisticRegression(solver="gradient_descent", max_iter=1000, tol=1e-14)
    reference.fit(X_m, y_m)
    theirs_flat = np.concatenate([[reference.intercept_], np.ravel(reference.coef_)])
    gap = float(np.max(np.abs(ours_fit.flat - theirs_flat)))
    print(f"same optimum ({m:,} rows): symdiff {ours_fit.steps} steps ({ours_fit.message}); "
          f"largest coefficient difference from dask-ml {gap:.2e} (tolerance 1e-6)")  # fmt: skip
    if not gap <= 1e-6:
        harness.fail(f"optimum differs by {gap:.3e}: {ours_fit.flat} vs {theirs_flat}")

    targets = 0.3 + features @ truth + 0.1 * rng.normal(size=args.rows)
    outliers = rng.random(args.rows) < 0.05
    targets[outliers] += rng.normal(scale=50, size=int(outliers.sum()))
    huber = symdiff.compile(PSEUDO_HUBER, params=PARAMS, data=[*NAMES, "y"])
    t = client.persist(da.from_array(targets, chunks=chunk))
    start = time.perf_counter()
    on_dask = symdiff.fit(huber, columns(X, t), "nesterov", lr=0.5, epochs=300)
    seconds = time.perf_counter() - start
    local = symdiff.fit(huber, {**{n: features[:, j] for j, n in enumerate(NAMES)}, "y": targets},
                        "nesterov", lr=0.5, epochs=300)  # fmt: skip
    exact = np.concatenate([[0.3], truth])
    least_squares = np.linalg.lstsq(np.column_stack([np.ones(args.rows), features]), targets,
                                    rcond=None)[0]  # fmt: skip
    print(f"pseudo-Huber regression on Dask: 300 Nesterov steps in {seconds:.1f} s "
          f"({seconds / 300 * 1e3:.1f} ms/step); largest error from the true coefficients "
          f"{np.max(np.abs(on_dask.flat - exact)):.3f} (least squares: "
          f"{np.max(np.abs(least_squares - exact)):.3f}); equal to the in-memory fit within "
          f"{np.max(np.abs(on_dask.flat - local.flat)):.1e}")  # fmt: skip
    if not np.allclose(on_dask.flat, local.flat, rtol=0, atol=1e-9):
        harness.fail(f"Dask {on_dask.flat} != in memory {local.flat}")
    client.close()
    cluster.close()
    harness.finish()


if __name__ == "__main__":
    main()
