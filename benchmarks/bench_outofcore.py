"""Benchmark: full-batch gradient throughput (rows/s) out of core against in memory.

Run (about a minute on 2 cores; ``--quick`` is a smoke run):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_outofcore.py
    options: --rows 2000000 --block-rows 65536 --repeat 7

The logistic loss over five features (the breast-cancer model's form) on generated data, one
full-batch ``loss_and_grad`` per call: in memory (``model.loss_and_grad`` on the arrays), and
through ``symdiff.train.sources.BlockFeed`` on an ``.npy`` file (memory-map windows) and a
Parquet file (pyarrow record batches), block by block. The files are in the page cache after
the warm-up, so this measures symdiff's block machinery, not the disk. Rounds interleaved,
medians, ratios of the per-round times (harness.py); every result must equal the in-memory one
to 1e-12.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
import tempfile
from pathlib import Path

import numpy as np

import symdiff
from symdiff.train.sources import BlockFeed, NpySource, ParquetSource

NAMES = [f"x{i}" for i in range(1, 6)] + ["y"]


def model():
    z = " + ".join(["b0"] + [f"w{i}*x{i}" for i in range(1, 6)])
    loss = f"y*softplus(-({z})) + (1 - y)*softplus({z})"
    return symdiff.compile(loss, params=["b0"] + [f"w{i}" for i in range(1, 6)], data=NAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--block-rows", type=int, default=65_536)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke run: 10^5 rows, 3 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 100_000, 3
    harness.print_header("full-batch gradient: out of core (.npy, Parquet) against in memory")
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    features = rng.normal(size=(args.rows, 5))
    y = (rng.random(args.rows) < 1 / (1 + np.exp(-features @ [1.0, -2.0, 0.5, 0.0, 1.5]))) * 1.0
    table = np.column_stack([features, y])
    columns = list(table.T.copy())
    logistic = model()
    params = np.linspace(-0.5, 0.5, 6)
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "d.npy", table)
        pq.write_table(pa.table(dict(zip(NAMES, columns, strict=True))),
                       Path(folder) / "d.parquet", row_group_size=args.block_rows)  # fmt: skip
        feeds = {
            ".npy": BlockFeed(
                logistic, NpySource(Path(folder) / "d.npy", NAMES, block_rows=args.block_rows)
            ),  # fmt: skip
            "Parquet": BlockFeed(
                logistic,
                ParquetSource(Path(folder) / "d.parquet", NAMES, block_rows=args.block_rows),
            ),  # fmt: skip
        }
        expected = logistic.loss_and_grad(params, *columns)
        for name, feed in feeds.items():
            loss, grad = feed.evaluate(params, None)
            if not (np.isclose(loss, expected[0], rtol=1e-12)
                    and np.allclose(grad, expected[1], rtol=1e-12, atol=0)):  # fmt: skip
                harness.fail(f"{name}: ({loss}, {grad}) != in memory {expected}")
        calls = {"in memory": lambda: logistic.loss_and_grad(params, *columns)}
        for name, feed in feeds.items():
            calls[name] = lambda feed=feed: feed.evaluate(params, None)
        times = harness.interleaved(calls, args.repeat)
    memory = times["in memory"]
    rows = []
    for name, measured in times.items():
        rate = args.rows / harness.median(measured)
        rows.append((name, f"{rate / 1e6:.2f} M rows/s", f"{harness.ratio(measured, memory):.3f}",
                     "", ""))  # fmt: skip
    harness.table(
        f"{args.rows:,} rows x 6 float64 columns, blocks of {args.block_rows:,} rows "
        "(ratio: time / in-memory time)",
        rows,
    )
    harness.finish()


if __name__ == "__main__":
    main()
