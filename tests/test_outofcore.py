"""Out-of-core training (symdiff/train/sources.py): data read block by block from .npy memory maps,
Parquet record batches and streamed CSV give the in-memory results, with memory bounded by the
block size (tested on a file 4x larger than the training process's address space)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from process_support import limit_address_space, run_symdiff

import symdiff
from symdiff.errors import InputError
from symdiff.train import sources
from symdiff.train.sources import ArraySource, BlockFeed, CsvSource, NpySource, ParquetSource

LOGISTIC = "y*softplus(-(b0 + b1*x)) + (1 - y)*softplus(b0 + b1*x)"
MODEL = symdiff.compile(LOGISTIC, params=["b0", "b1"], data=["x", "y"])
SUM_MODEL = symdiff.compile(LOGISTIC, params=["b0", "b1"], data=["x", "y"], reduce="sum")


def logistic_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.5 + 2 * x)))).astype(float)
    return x, y


def write_all(folder: Path, x: np.ndarray, y: np.ndarray, row_group: int) -> dict[str, Path]:
    """The same data as .npy (C and Fortran order), Parquet and CSV files."""
    files = {
        "npy": folder / "d.npy",
        "fortran": folder / "f.npy",
        "parquet": folder / "d.parquet",
        "csv": folder / "d.csv",
    }
    np.save(files["npy"], np.column_stack([x, y]))
    np.save(files["fortran"], np.asfortranarray(np.column_stack([x, y])))
    pq.write_table(pa.table({"x": x, "y": y}), files["parquet"], row_group_size=row_group)
    lines = ["x,y"] + [f"{float(a)!r},{float(b)!r}" for a, b in zip(x, y, strict=True)]
    files["csv"].write_text("\n".join(lines) + "\n")
    return files


def open_all(files: dict[str, Path], block_rows: int) -> dict[str, sources.Source]:
    names = ["x", "y"]
    return {
        "npy": NpySource(files["npy"], names, block_rows=block_rows),
        "fortran": NpySource(files["fortran"], names, block_rows=block_rows),
        "parquet": ParquetSource(files["parquet"], names, block_rows=block_rows),
        "csv": CsvSource(files["csv"], names, block_rows=block_rows),
    }


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(1, 400),
    block_rows=st.integers(1, 150),
    row_group=st.integers(1, 120),
    seed=st.integers(0, 2**16),
    b=st.tuples(st.floats(-3, 3), st.floats(-3, 3)),
)
def test_full_batch_is_the_exact_sum_of_blocks(n, block_rows, row_group, seed, b):
    """Loss and gradient over every source equal the in-memory ones to 1e-12 relative, for mean
    and sum, whatever the block and row-group sizes."""
    x, y = logistic_data(n, seed)
    params = np.array(b)
    with tempfile.TemporaryDirectory() as folder:
        files = write_all(Path(folder), x, y, row_group)
        opened = {
            **open_all(files, block_rows),
            "array": ArraySource((x, y), ["x", "y"], block_rows),
        }
        for model in (MODEL, SUM_MODEL):
            loss, grad = model.loss_and_grad(params, x, y)
            for name, source in opened.items():
                assert source.rows == n, name
                got_loss, got_grad = BlockFeed(model, source).evaluate(params, None)
                assert got_loss == pytest.approx(loss, rel=1e-12, abs=1e-300), name
                np.testing.assert_allclose(got_grad, grad, rtol=1e-12, atol=1e-15, err_msg=name)


def test_fit_out_of_core_matches_in_memory(tmp_path):
    """Full batch to 1e-12; mini-batches take the same rows for the same seed (equal results)."""
    x, y = logistic_data(700, seed=3)
    opened = open_all(write_all(tmp_path, x, y, row_group=97), block_rows=64)
    full = symdiff.fit(MODEL, (x, y), "nesterov", lr=0.5, epochs=40)
    mini = symdiff.fit(MODEL, (x, y), "minibatch", lr=0.2, epochs=3, batch_size=50, seed=11)
    for name, source in opened.items():
        result = symdiff.fit(MODEL, source, "nesterov", lr=0.5, epochs=40)
        np.testing.assert_allclose(result.flat, full.flat, rtol=1e-12, err_msg=name)
        assert result.loss == pytest.approx(full.loss, rel=1e-12)
        batches = symdiff.fit(MODEL, source, "minibatch", lr=0.2, epochs=3, batch_size=50, seed=11)
        assert batches.steps == mini.steps == 42
        np.testing.assert_array_equal(batches.flat, mini.flat, err_msg=name)
        assert batches.history.loss == mini.history.loss


@given(rows=st.lists(st.integers(0, 299), min_size=1, max_size=40))
@settings(max_examples=15, deadline=None)
def test_take_returns_the_rows_asked_for(rows):
    table = np.arange(600.0).reshape(300, 2)
    with tempfile.TemporaryDirectory() as folder:
        files = write_all(Path(folder), table[:, 0], table[:, 1], row_group=37)
        for name, source in open_all(files, block_rows=29).items():
            got = source.take(np.array(rows))
            np.testing.assert_array_equal(got[0], table[rows, 0], err_msg=name)
            np.testing.assert_array_equal(got[1], table[rows, 1], err_msg=name)


def test_checkpoint_and_resume_out_of_core(tmp_path):
    x, y = logistic_data(300, seed=5)
    source = NpySource(write_all(tmp_path, x, y, 50)["npy"], ["x", "y"], block_rows=70)
    whole = symdiff.fit(MODEL, source, "adam", lr=0.1, epochs=6, batch_size=40, seed=2)
    checkpoint = tmp_path / "run.npz"
    stop = [lambda info: info.step == 13]
    stopped = symdiff.fit(MODEL, source, "adam", lr=0.1, epochs=6, batch_size=40, seed=2,
                          checkpoint=checkpoint, callbacks=stop)  # fmt: skip
    assert stopped.steps == 13
    resumed = symdiff.fit(MODEL, source, "adam", lr=0.1, epochs=6, batch_size=40, seed=2,
                          checkpoint=checkpoint, resume=checkpoint)  # fmt: skip
    np.testing.assert_array_equal(resumed.flat, whole.flat)


def test_breast_cancer_in_memory_parquet_and_npy_agree(tmp_path):
    """The breast-cancer logistic model, full batch: out of core (Parquet, .npy) = in memory."""
    features, target = load_breast_cancer()
    names = [f"x{i}" for i in range(1, 6)] + ["y"]
    table = np.column_stack([features, target])
    np.save(tmp_path / "bc.npy", table)
    pq.write_table(pa.table(dict(zip(names, table.T, strict=True))), tmp_path / "bc.parquet",
                   row_group_size=100)  # fmt: skip
    model = breast_cancer_model()
    settings_ = {"lr": 0.5, "epochs": 5000, "gtol": 1e-10}
    memory = symdiff.fit(model, list(table.T), "nesterov", **settings_)
    assert memory.converged
    for source in (
        NpySource(tmp_path / "bc.npy", names, block_rows=256),
        ParquetSource(tmp_path / "bc.parquet", names, block_rows=256),
    ):
        result = symdiff.fit(model, source, "nesterov", **settings_)
        assert result.steps == memory.steps
        np.testing.assert_allclose(result.flat, memory.flat, rtol=0, atol=1e-9)


def load_breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """The five standardised features of examples/logistic_breast_cancer.py and the target."""
    from sklearn.datasets import load_breast_cancer as load

    features = ["mean radius", "mean texture", "mean smoothness", "mean concave points",
                "mean symmetry"]  # fmt: skip
    bunch = load()
    names = list(bunch.feature_names)
    data = bunch.data[:, [names.index(f) for f in features]]
    return (data - data.mean(axis=0)) / data.std(axis=0), bunch.target.astype(float)


def breast_cancer_model():
    z = " + ".join(["b0"] + [f"w{i}*x{i}" for i in range(1, 6)])
    loss = f"-y*log(sigmoid({z})) - (1 - y)*log(1 - sigmoid({z}))"
    params = ["b0"] + [f"w{i}" for i in range(1, 6)]
    return symdiff.compile(loss, params=params, data=[f"x{i}" for i in range(1, 6)] + ["y"])


# --------------------------------------------------------------------------- bounded memory

#: ``symdiff ARGS`` that writes its peak RSS (VmHWM: this process's, since exec; ru_maxrss of a
#: child would count the pytest process it was forked from) to $PEAK_FILE when it exits
REPORT_PEAK = """
import atexit, os, runpy, sys

def report():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")))

atexit.register(report)
sys.argv = ["symdiff", *sys.argv[1:]]
runpy.run_module("symdiff", run_name="__main__", alter_sys=True)
"""
LIMIT = 192 << 20  # the training process's address space (Python, NumPy, SymPy: ~155 MB)


def test_fit_on_data_four_times_the_address_space(tmp_path):
    """An .npy file of 4.25x a 192 MiB address-space limit: the fit completes, its
    one full-batch step is the exact one (sums kept while writing), and peak RSS stays under."""
    rows = (LIMIT * 17 // 4) // 16  # two float64 columns: 4.25 x the limit
    path = tmp_path / "big.npy"
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, 2)}
    rng = np.random.default_rng(7)
    sum_y = sum_xy = 0.0
    with open(path, "wb") as stream:
        np.lib.format.write_array_header_1_0(stream, header)
        for start in range(0, rows, 1 << 22):
            count = min(1 << 22, rows - start)
            x = rng.normal(size=count)
            y = 2.0 * x + 1.0 + 0.1 * rng.normal(size=count)
            sum_y += y.sum()
            sum_xy += x @ y
            stream.write(np.column_stack([x, y]).tobytes())
    assert path.stat().st_size > 4 * LIMIT
    args = ["fit", "(b0 + b1*x - y)**2", "--params", "b0,b1", "--data", "x,y", "--input",
            str(path), "--out-of-core", "--lr", "0.1", "--max-steps", "1",
            "--format", "json"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as out:
        peak_file = Path(folder) / "peak"
        process = subprocess.Popen(
            [sys.executable, "-c", REPORT_PEAK, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PEAK_FILE": str(peak_file)},
            preexec_fn=limit_address_space(LIMIT),
        )
        process.wait(timeout=600)
        out.seek(0)
        text = out.read().decode()
        assert process.returncode == 0, text
        peak = int(peak_file.read_text().split()[1]) * 1024  # "VmHWM:  80000 kB"
    assert peak < LIMIT, f"peak RSS {peak} bytes"
    result = json.loads(text)
    # from zero: b0 = -lr * 2*mean(b0 + b1*x - y) = 0.2*mean(y); b1 = 0.2*mean(x*y)
    assert result["params"]["b0"] == pytest.approx(0.2 * sum_y / rows, rel=1e-9)
    assert result["params"]["b1"] == pytest.approx(0.2 * sum_xy / rows, rel=1e-9)
    assert result["steps"] == 1


# --------------------------------------------------------------------------- errors


def fit_args(path: Path, *extra: str) -> list[str]:
    return ["fit", LOGISTIC, "--params", "b0,b1", "--data", "x,y", "--input", str(path),
            "--out-of-core", "--epochs", "2", *extra]  # fmt: skip


def test_parquet_missing_a_column_is_one_line(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0], "label": [0.0, 1.0]}), path)
    for out_of_core in (True, False):
        args = fit_args(path) if out_of_core else fit_args(path)[:-3]
        result = run_symdiff(*args)
        assert result.returncode == 2
        assert result.stderr == (
            f"Error: {path}: no column 'y' for data 'y' (columns: x, label); "
            "map one with --column y=COLUMN\n"
        )


def test_schema_mismatch_between_files_is_one_line(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [0.0, 1.0]}), folder / "a.parquet")
    pq.write_table(pa.table({"x": ["1", "2"], "y": [0.0, 1.0]}), folder / "b.parquet")
    result = run_symdiff(*fit_args(folder / "*.parquet"))
    assert result.returncode == 2
    assert (
        result.stderr
        == f"Error: {folder / 'b.parquet'}: column 'x' holds string values, not real numbers\n"
    )
    pq.write_table(pa.table({"x": [1, 2], "y": [0.0, 1.0]}), folder / "b.parquet")
    result = run_symdiff(*fit_args(folder / "*.parquet"))
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: {folder / 'b.parquet'}: column 'x' is int64, but it is double in "
        f"{folder / 'a.parquet'} (the files' schemas differ)\n"
    )
    pq.write_table(pa.table({"x": [3.0], "y": [1.0]}), folder / "b.parquet")
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 1.0])
    whole = symdiff.fit(MODEL, (x, y), "gd", lr=0.5, epochs=5)
    parts = symdiff.fit(MODEL, ParquetSource(folder, ["x", "y"]), "gd", lr=0.5, epochs=5)
    np.testing.assert_allclose(parts.flat, whole.flat, rtol=1e-13)


def test_bad_values_name_the_row(tmp_path):
    table = np.column_stack([np.arange(10.0), np.ones(10)])
    table[6, 0] = np.nan
    np.save(tmp_path / "d.npy", table)
    with pytest.raises(InputError, match=r"d.npy: data 'x' has a NaN or infinite value in row 7$"):
        symdiff.fit(MODEL, NpySource(tmp_path / "d.npy", ["x", "y"], block_rows=4), "gd")
    result = run_symdiff(*fit_args(tmp_path / "d.npy"))
    assert result.returncode == 2
    assert result.stderr.endswith("data 'x' has a NaN or infinite value in row 7\n")
    assert result.stderr.count("\n") == 1


def test_tensor_losses_and_plots_are_refused_out_of_core(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((4, 2)))
    result = run_symdiff(*fit_args(tmp_path / "d.npy", "--plot", str(tmp_path / "p.png")))
    assert result.returncode == 2
    assert result.stderr == (
        "Error: --plot needs the data in memory: it cannot go with --out-of-core or --engine dask\n"
    )
    shapes = {"X": ("n", 2), "w": (2,), "y": ("n",)}
    tensor = symdiff.compile_tensor("mean((X @ w - y)**2)", shapes, ["w"], ["X", "y"])
    with pytest.raises(InputError, match="needs a per-sample loss"):
        symdiff.fit(tensor, ArraySource([np.ones((3, 2)), np.ones(3)], ["X", "y"]), "gd")


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InputError) as error:
        ParquetSource("d.parquet", ["x"])
    assert str(error.value) == "this needs the package 'pyarrow': pip install \"symdiff[parquet]\""


def test_the_cli_imports_no_extra():
    code = (
        "import sys; import symdiff.cli.fit, symdiff.train.loop; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed', 'pyarrow'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tempfile.gettempdir(), check=True)  # fmt: skip
    assert result.stdout == "[]\n"
