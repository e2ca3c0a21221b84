"""Training on Dask (symdiff/train/dask_engine.py) with a real LocalCluster of 2 worker processes,
shared by the tests of this module (they run in one xdist worker: ``--dist loadfile``)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from process_support import run_symdiff
from test_outofcore import LOGISTIC, MODEL, breast_cancer_model, load_breast_cancer, logistic_data

import symdiff
from symdiff.train import dask_engine
from symdiff.train.sources import CsvSource, NpySource, ParquetSource

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.dask, pytest.mark.xdist_group("dask")]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster) as connection:
        yield connection
    cluster.close()


def test_breast_cancer_in_memory_out_of_core_and_dask_agree(client, tmp_path):
    """Full batch, the same 40 Nesterov steps: in memory, .npy and Parquet out of core, and
    on the 2-worker cluster (each worker reading its chunks of the .npy file) agree to 1e-9."""
    features, target = load_breast_cancer()
    names = [f"x{i}" for i in range(1, 6)] + ["y"]
    table = np.column_stack([features, target])
    np.save(tmp_path / "bc.npy", table)
    pq.write_table(pa.table(dict(zip(names, table.T, strict=True))), tmp_path / "bc.parquet",
                   row_group_size=100)  # fmt: skip
    model = breast_cancer_model()
    settings = {"lr": 0.5, "epochs": 40}
    memory = symdiff.fit(model, list(table.T), "nesterov", **settings)
    npy = NpySource(tmp_path / "bc.npy", names, block_rows=200)
    on_dask = dask_engine.load(npy, str(tmp_path / "bc.npy"), {}, client)
    assert len(on_dask["x1"].chunks[0]) == 3
    runs = {
        "npy": npy,
        "parquet": ParquetSource(tmp_path / "bc.parquet", names, block_rows=200),
        "dask": on_dask,
    }
    for name, data in runs.items():
        result = symdiff.fit(model, data, "nesterov", **settings)
        assert result.steps == memory.steps == 40
        np.testing.assert_allclose(result.flat, memory.flat, rtol=0, atol=1e-9, err_msg=name)
        assert result.loss == pytest.approx(memory.loss, rel=1e-12)


def test_dask_arrays_full_and_mini_batches(client):
    x, y = logistic_data(900, seed=4)
    X, Y = da.from_array(x, chunks=250), da.from_array(y, chunks=250)
    params = np.array([0.4, -1.3])
    loss, grad = dask_engine.loss_and_grad(MODEL, params, X, Y)
    expected = MODEL.loss_and_grad(params, x, y)
    assert loss == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(grad, expected[1], rtol=1e-12)
    mini = symdiff.fit(MODEL, {"x": X, "y": Y}, "minibatch", lr=0.2, epochs=2, batch_size=100)
    local = symdiff.fit(MODEL, {"x": x, "y": y}, "minibatch", lr=0.2, epochs=2, batch_size=100)
    assert mini.steps == local.steps == 18
    np.testing.assert_allclose(mini.flat, local.flat, rtol=1e-12)


def test_csv_blocks_are_scattered_to_the_workers(client, tmp_path):
    x, y = logistic_data(300, seed=6)
    path = tmp_path / "d.csv"
    rows = zip(x.tolist(), y.tolist(), strict=True)
    path.write_text("x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in rows))
    arrays = dask_engine.load(CsvSource(path, ["x", "y"], block_rows=128), str(path), {}, client)
    assert arrays["x"].chunks == ((128, 128, 44),)
    result = symdiff.fit(MODEL, arrays, "gd", lr=0.5, epochs=20)
    local = symdiff.fit(MODEL, (x, y), "gd", lr=0.5, epochs=20)
    np.testing.assert_allclose(result.flat, local.flat, rtol=1e-12)


def test_cli_engine_dask_on_the_cluster(client, tmp_path):
    x, y = logistic_data(500, seed=8)
    pq.write_table(pa.table({"x": x, "y": y}), tmp_path / "d.parquet", row_group_size=128)
    common = ["fit", LOGISTIC, "--params", "b0,b1", "--data", "x,y", "--lr", "0.5", "--epochs",
              "10", "--format", "json", "--input", str(tmp_path / "d.parquet")]  # fmt: skip
    _fits_as_in_memory(common, "--engine", "dask", "--scheduler", client.scheduler.address)


def test_cli_engine_dask_starts_its_own_local_cluster(tmp_path):
    """No --scheduler: the command starts a LocalCluster of 2 worker processes (--workers), trains
    on it, and closes it; the result is the in-memory one."""
    x, y = logistic_data(400, seed=10)
    np.save(tmp_path / "d.npy", np.column_stack([x, y]))
    common = ["fit", LOGISTIC, "--params", "b0,b1", "--data", "x,y", "--lr", "0.5", "--epochs",
              "8", "--format", "json", "--input", str(tmp_path / "d.npy"),
              "--block-rows", "150"]  # fmt: skip
    _fits_as_in_memory(common, "--engine", "dask", "--workers", "2")


def _fits_as_in_memory(common: list[str], *engine: str) -> None:
    """``symdiff fit COMMON ENGINE`` (JSON) gives the in-memory run's steps and parameters."""
    on_dask = run_symdiff(*common, *engine)
    in_memory = run_symdiff(*common)
    assert on_dask.returncode == 0, on_dask.stderr
    got, expected = json.loads(on_dask.stdout), json.loads(in_memory.stdout)
    assert got["steps"] == expected["steps"] == int(common[common.index("--epochs") + 1])
    for name in ("b0", "b1"):
        assert got["params"][name] == pytest.approx(expected["params"][name], rel=1e-12)


def test_unreachable_scheduler_is_one_line(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((3, 2)))
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    data = str(tmp_path / "d.npy")
    result = run_symdiff("fit", LOGISTIC, "--params", "b0,b1", "--data", "x,y", "--input", data,
                         "--engine", "dask", "--scheduler", address)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: cannot reach the Dask scheduler at {address} (")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--scheduler", "tcp://127.0.0.1:1"], "Error: --scheduler needs --engine dask\n"),
        (["--workers", "2"], "Error: --workers sets the size of the LocalCluster of --engine "
                             "dask without --scheduler\n"),
        (["--engine", "dask", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
         "Error: --workers sets the size of the LocalCluster of --engine dask without "
         "--scheduler\n"),
    ],
)  # fmt: skip
def test_cluster_options_without_their_engine_are_one_line(tmp_path, options, message):
    np.save(tmp_path / "d.npy", np.ones((3, 2)))
    result = run_symdiff("fit", LOGISTIC, "--params", "b0,b1", "--data", "x,y", "--input",
                         str(tmp_path / "d.npy"), *options)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == message


def test_a_worker_dying_mid_fit_stops_with_the_parameters_reached(client):
    """The last test of the module: it kills a worker (the nanny starts a new one)."""
    x, y = logistic_data(600, seed=9)
    X, Y = da.from_array(x, chunks=150), da.from_array(y, chunks=150)

    def kill_a_worker(info):
        if info.step != 3:
            return None
        victim = sorted(client.scheduler_info()["workers"])[0]
        with contextlib.suppress(Exception):  # the worker never answers: it is gone
            client.run(os._exit, 1, workers=[victim])
        deadline = time.monotonic() + 30
        while victim in client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.05)
        return None

    result = symdiff.fit(MODEL, (X, Y), "gd", lr=0.5, epochs=20, callbacks=[kill_a_worker])
    assert result.failed and not result.converged
    assert result.steps == 3
    assert result.message.startswith("the Dask worker tcp://127.0.0.1:")
    assert result.message.endswith(
        "died in step 3 (epoch 4); kept the parameters reached after 3 updates"
    )
    local = symdiff.fit(MODEL, (x, y), "gd", lr=0.5, max_steps=3)
    np.testing.assert_allclose(result.flat, local.flat, rtol=1e-12)
