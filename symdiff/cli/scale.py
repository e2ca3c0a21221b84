"""The ``--out-of-core`` / ``--engine dask`` path of ``symdiff fit``: data read block by block
(``symdiff.train.sources``) or persisted on a Dask cluster (``symdiff.train.dask_engine``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import InputError
from ..train.data import parse_columns
from ..train.sources import DEFAULT_BLOCK_ROWS, open_source, per_sample_reduce

F = TypeVar("F", bound=Callable[..., Any])


def scale_options(function: F) -> F:
    """Add --out-of-core, --block-rows, --engine, --scheduler and --workers to a command."""
    options = [
        click.option(
            "--workers",
            type=click.IntRange(min=1, max=256),
            default=None,
            help="--engine dask without --scheduler: worker processes of the LocalCluster "
            "(default: one per CPU core).",
        ),
        click.option(
            "--scheduler",
            default=None,
            help="--engine dask: the address of a running scheduler, e.g. tcp://host:8786 "
            "(default: a LocalCluster of worker processes on this machine).",
        ),
        click.option(
            "--engine",
            type=click.Choice(["numpy", "dask"]),
            default="numpy",
            show_default=True,
            help="numpy: train in this process; dask: on a dask.distributed cluster "
            '(pip install "symdiff[dask]"), the data read and kept by the workers.',
        ),
        click.option(
            "--block-rows",
            type=click.IntRange(min=1),
            default=DEFAULT_BLOCK_ROWS,
            show_default=True,
            help="Rows per block (and per Dask chunk) with --out-of-core or --engine dask.",
        ),
        click.option(
            "--out-of-core",
            is_flag=True,
            help="Read --input (.npy, .parquet or a folder of them, .csv) block by block "
            "instead of loading it: memory follows --block-rows, not the file.",
        ),
    ]
    for option in options:
        function = option(function)
    return function


def wants_blocks(
    out_of_core: bool, engine: str, scheduler: str | None, workers: int | None
) -> bool:
    """Whether the data are read as blocks (--out-of-core, --engine dask); the cluster options
    go only with --engine dask."""
    if scheduler is not None and engine != "dask":
        raise InputError("--scheduler needs --engine dask")
    if workers is not None and (engine != "dask" or scheduler is not None):
        raise InputError("--workers sets the size of the LocalCluster of --engine dask "
                         "without --scheduler")  # fmt: skip
    return out_of_core or engine == "dask"


def read_blocks(
    model: Any,
    path: str | None,
    names: list[str],
    column: tuple[str, ...],
    block_rows: int,
    engine: str,
    scheduler: str | None,
    plot_path: str | None,
    workers: int | None = None,
) -> Any:
    """The --input data as a block ``Source`` (``--out-of-core``) or as Dask arrays persisted on
    the cluster (``--engine dask``; the client closes when the command ends)."""
    if path is None:
        raise InputError("--out-of-core and --engine dask read an --input file")
    if plot_path is not None:
        raise InputError("--plot needs the data in memory: it cannot go with "
                         "--out-of-core or --engine dask")  # fmt: skip
    per_sample_reduce(model)
    columns = parse_columns(column)
    source = open_source(path, names, columns, block_rows)
    if engine != "dask":
        return source
    # distributed's log lines (a worker removed at the end, a port in use) are not for the user:
    # failures reach them as one line; set before Dask loads, so its worker processes inherit it
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    from ..train import dask_engine  # Dask is an extra: imported only for --engine dask

    client = dask_engine.connect(scheduler, workers)
    context = click.get_current_context()
    if scheduler is None:  # closed last (the callbacks run last-in, first-out)
        context.call_on_close(client.cluster.close)
    context.call_on_close(client.close)
    return dask_engine.load(source, path, columns, client)
