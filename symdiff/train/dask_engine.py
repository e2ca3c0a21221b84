"""Training on Dask arrays (the ``dask`` extra): the data stay on the workers, parameters travel.

``DaskFeed(model, data)`` persists the Dask arrays once (on the ``dask.distributed`` cluster of the
default client, else with Dask's local scheduler), chunked alike along the samples. Each step sends
one task per chunk, which runs the generated module's ``loss_and_grad`` on its chunk (or on the rows
of a mini-batch that fall in it) and returns the partial sums (n_c * L_c, n_c * dL_c/dparams) for
``--reduce mean`` ((L_c, dL_c) for ``sum``): P + 1 numbers. The client adds them in chunk order, so
the full-batch step is the exact sum of the chunk results, as out of core. A worker that dies
(its share of the data lost with it) or a task that fails raises ``SourceFailure``: ``fit`` stops
and keeps the parameters reached.

``connect(address)`` gives a client of the scheduler at ``address`` (or of a new ``LocalCluster``)
and ``load(source)`` reads a block ``Source`` into persisted Dask arrays: each worker reads its own
blocks from the file (``.npy``, Parquet); a CSV file, which can only be streamed, is read once by
the client and its blocks scattered to the workers.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .sources import (
    CsvSource,
    Source,
    SourceFailure,
    is_dask_array,
    open_source,
    per_sample_reduce,
    require,
)

#: seconds to wait for a scheduler given by address
CONNECT_TIMEOUT = 5

#: the scheduler event topic on which a worker leaving the cluster is reported
WATCH = "symdiff-worker-watch"

_MODULES: dict[str, Any] = {}  # on each worker: generated modules by digest of their source
_SOURCES: dict[tuple[Any, ...], Source] = {}  # on each worker: opened sources by their spec


def _program(model: Any) -> tuple[str, Any]:
    """What the workers need to rebuild the model: the generated source, or the object."""
    source = getattr(model, "__source__", None)
    if isinstance(source, str):
        return "source", source
    if inspect.ismodule(model):
        return "source", inspect.getsource(model)
    return "object", model


def _model(program: tuple[str, Any]) -> Any:
    """The model on a worker (a generated module is built once per worker and kept)."""
    kind, value = program
    if kind == "object":
        return value
    key = hashlib.sha256(value.encode("utf-8")).hexdigest()
    if key not in _MODULES:
        from ..codegen.loading import load_generated

        _MODULES[key] = load_generated(value, "symdiff_dask_model")
    return _MODULES[key]


def partial_sums(
    program: tuple[str, Any], params: np.ndarray, rows: np.ndarray | None, mean: bool, *chunk: Any
) -> np.ndarray:
    """[w * L_c, w * dL_c/dparams] on one chunk (or its ``rows``), w = rows used (mean) or 1."""
    arrays = (
        [np.asarray(a) for a in chunk] if rows is None else [np.asarray(a)[rows] for a in chunk]
    )
    if not len(arrays[0]):
        return np.zeros(params.size + 1)
    with np.errstate(all="ignore"):
        loss, grad = _model(program).loss_and_grad(params, *arrays)
    weight = len(arrays[0]) if mean else 1
    return np.concatenate([[weight * float(loss)], weight * np.ravel(grad)])


def _as_list(model: Any, data: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    names = tuple(model.DATA)
    if isinstance(data, Mapping):
        missing = [name for name in names if name not in data]
        if missing:
            raise InputError(f"no data for '{missing[0]}' (data names: {', '.join(names)})")
        return [data[name] for name in names]
    if len(data) != len(names):
        raise InputError(f"expected {len(names)} data arrays ({', '.join(names)}), got {len(data)}")
    return list(data)


def _worker_watch() -> Any:
    """A scheduler plugin that reports each worker leaving the cluster on the topic WATCH."""
    plugin = require("distributed.diagnostics.plugin")

    class WorkerWatch(plugin.SchedulerPlugin):  # type: ignore[name-defined]
        def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
            scheduler.log_event(WATCH, {"action": "remove-worker", "worker": str(worker)})

    return WorkerWatch()


def _has_watch(dask_scheduler: Any) -> bool:
    """On the scheduler: whether the WorkerWatch plugin is there already."""
    return WATCH in dask_scheduler.plugins


def _flat_keys(keys: Any) -> list[Any]:
    """The chunk keys of a Dask array (nested lists of tuples) in chunk order."""
    if isinstance(keys, list):
        return [key for item in keys for key in _flat_keys(item)]
    return [keys]


def _client() -> Any:
    """The default ``distributed`` client, or None (Dask's local scheduler)."""
    try:
        from distributed import default_client
    except ImportError:  # Dask without distributed
        return None
    try:
        return default_client()
    except ValueError:  # no client started
        return None


class DaskFeed:
    """Loss and gradient of a per-sample model over Dask arrays, computed chunk by chunk on the
    workers, for the training loop. On a ``distributed`` cluster each step submits one task per
    chunk on the persisted chunks' futures; a worker that leaves the cluster stops the fit."""

    def __init__(self, model: Any, data: Sequence[Any] | Mapping[str, Any]) -> None:
        dask = require("dask")
        array = require("dask.array")
        self.mean = per_sample_reduce(model) == "mean"
        self.names = tuple(model.DATA)
        values = _as_list(model, data)
        first = next(value for value in values if is_dask_array(value))
        rows = first.shape[0]
        chunks = first.chunks[0]
        arrays = []
        for name, value in zip(model.DATA, values, strict=True):
            if not is_dask_array(value):
                value = array.from_array(np.asarray(value, dtype=np.float64), chunks=-1)
            if value.ndim == 0 or value.shape[0] != rows:
                raise InputError(
                    f"data '{name}' has shape {value.shape}, but '{model.DATA[0]}' has {rows} "
                    "samples (Dask data need one row per sample)"
                )
            rechunk = (chunks, *(-1 for _ in value.shape[1:]))
            arrays.append(value.astype(np.float64).rechunk(rechunk))
        self.bounds = np.cumsum([0, *chunks])
        self.rows = int(rows)
        self.steps = 0
        self.lost: list[str] = []
        self.client = _client()
        program = _program(model)
        if self.client is None:
            self.arrays = dask.persist(*arrays)
            self.chunks = [list(a.to_delayed().ravel()) for a in self.arrays]
            self.program: Any = program
        else:  # persisted once on the workers; each step names the chunks' futures
            from distributed import futures_of

            self.arrays = tuple(self.client.persist(arrays))
            futures = {f.key: f for f in futures_of(list(self.arrays))}
            self.chunks = [
                [futures[key] for key in _flat_keys(a.__dask_keys__())] for a in self.arrays
            ]
            self.program = self.client.scatter([program], broadcast=True)[0]
            if not self.client.run_on_scheduler(_has_watch):
                self.client.register_plugin(_worker_watch(), name=WATCH)
            self.client.subscribe_topic(WATCH, self._event)
        finite = [array.isfinite(a).all() for a in self.arrays]
        for name, ok in zip(model.DATA, self._run(lambda: dask.compute(*finite)), strict=True):
            if not ok:
                raise InputError(f"data '{name}' contains NaN or infinite values")

    def _event(self, event: tuple[float, Any]) -> None:
        """A scheduler event: remember a worker that left (its chunks are gone with it)."""
        message = event[1]
        if isinstance(message, dict) and message.get("action") == "remove-worker":
            self.lost.append(str(message.get("worker", "a worker")))

    def _run(self, compute: Any) -> list[Any]:
        """``compute()``; a failed task or a lost worker is a ``SourceFailure``."""
        if self.lost:
            raise SourceFailure(f"the Dask worker {self.lost[0]} died")
        try:
            results = list(compute())
        except InputError:
            raise
        except Exception as exc:  # any failure of the cluster: a killed worker, a lost chunk
            text = str(exc).strip().splitlines()
            raise SourceFailure(
                f"the Dask computation failed ({type(exc).__name__}"
                f"{': ' + text[0] if text else ''})"
            ) from None
        if self.lost:
            raise SourceFailure(f"the Dask worker {self.lost[0]} died")
        return results

    def _tasks(self, params: np.ndarray, rows: np.ndarray | None) -> list[Any]:
        """One task per chunk (with rows of the batch): its partial sums."""
        self.steps += 1
        if self.client is None:
            call = require("dask").delayed(partial_sums, pure=False)
        tasks = []
        block_of = None if rows is None else np.searchsorted(self.bounds, rows, "right") - 1
        for index in range(len(self.bounds) - 1):
            local = None
            if block_of is not None and rows is not None:
                local = rows[block_of == index] - self.bounds[index]
                if not len(local):
                    continue
            parts = [chunks[index] for chunks in self.chunks]
            if self.client is None:
                tasks.append(call(self.program, params, local, self.mean, *parts))
            else:
                key = f"symdiff-partial-{id(self)}-{self.steps}-{index}"
                tasks.append(
                    self.client.submit(
                        partial_sums, self.program, params, local, self.mean, *parts, key=key
                    )
                )
        return tasks

    def evaluate(self, params: np.ndarray, rows: np.ndarray | None) -> tuple[float, np.ndarray]:
        """(L, dL/dparams) over all rows or the given ones: the sum of the chunks' partial sums
        (added in chunk order)."""
        if self.client is None:
            tasks = self._tasks(params, rows)
            parts = self._run(lambda: require("dask").compute(*tasks))
        else:
            client = self.client
            parts = self._run(lambda: client.gather(self._tasks(params, rows)))
        total = np.sum(parts, axis=0)
        count = (self.rows if rows is None else len(rows)) if self.mean else 1
        return float(total[0]) / count, total[1:] / count

    def fingerprint(self) -> dict[str, str]:
        return {
            name: f"dask {a.shape} {a.name}"
            for name, a in zip(self.names, self.arrays, strict=True)
        }


def loss_and_grad(model: Any, params: np.ndarray, *data: Any) -> tuple[float, np.ndarray]:
    """A generated module's (L, dL/dparams) on Dask arrays (one per ``model.DATA`` name),
    computed chunk by chunk where the chunks are: the sum of the chunks' partial sums."""
    return DaskFeed(model, data).evaluate(np.asarray(params, dtype=np.float64), None)


def connect(address: str | None, workers: int | None = None) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``, or of a new ``LocalCluster`` of
    worker processes (one thread each) when ``address`` is None."""
    distributed = require("distributed")
    if address is None:
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        return distributed.Client(cluster)
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).strip().splitlines()
        raise InputError(
            f"cannot reach the Dask scheduler at {address}"
            f" ({reason[0] if reason else type(exc).__name__})"
        ) from None


def _read_block(spec: tuple[Any, ...], start: int, stop: int) -> list[np.ndarray]:
    """Rows start..stop-1 of the source ``spec`` describes, read on the worker."""
    if spec not in _SOURCES:
        path, names, columns, block_rows = spec
        _SOURCES[spec] = open_source(path, names, dict(columns), block_rows)
    return _SOURCES[spec].read(start, stop)


def load(source: Source, path: str, columns: Mapping[str, str], client: Any) -> dict[str, Any]:
    """The source's data as Dask arrays persisted on the cluster (one chunk per block)."""
    array = require("dask.array")
    delayed = require("dask").delayed
    shapes = source.row_shapes()
    parts: list[Any] = []
    spans: list[tuple[int, int]] = []
    if isinstance(source, CsvSource):  # streamed once by the client, each block scattered
        for start, block in source.blocks():
            parts.append(delayed(client.scatter(block)))
            spans.append((start, start + len(block[0])))
    else:
        spec = (path, source.names, tuple(sorted(columns.items())), source.block_rows)
        for start, stop in source.spans():
            parts.append(delayed(_read_block, pure=True)(spec, start, stop))
            spans.append((start, stop))
    result = {}
    for index, (name, shape) in enumerate(zip(source.names, shapes, strict=True)):
        pieces = [
            array.from_delayed(part[index], shape=(stop - start, *shape), dtype=np.float64)
            for part, (start, stop) in zip(parts, spans, strict=True)
        ]
        result[name] = array.concatenate(pieces)
    persisted = client.persist(list(result.values()))
    return dict(zip(result, persisted, strict=True))
