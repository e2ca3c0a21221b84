"""Checkpoints of a training run: everything ``fit`` needs to go on exactly where it stopped.

A checkpoint is a NumPy ``.npz`` archive (read back with ``allow_pickle=False``) written atomically
(``symdiff.outputs``) at a step boundary. It holds the parameters, the optimizer's state, the last
parameters with a finite loss, the history, the step and epoch counters, the state of the random
generator at the start of the epoch in progress (the epoch's shuffle is drawn again from it, so
the batches are the same) and the run's *settings*: the model, a digest of the data and of the
initial values, the optimizer and its hyperparameters, the batch size, the seed and the stopping
rules. ``fit(resume=...)`` refuses a checkpoint whose settings differ from the run's, naming the
first difference, so a resumed run ends bit for bit where the uninterrupted run ends.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..interrupts import deferred
from ..outputs import write_output

FORMAT = "symdiff-checkpoint"
VERSION = 1
#: with a checkpoint file and no interval, one is written every this many steps
DEFAULT_EVERY = 1000

HISTORY_FLOATS = ("loss", "grad_norm", "lr", "epoch_loss")


@dataclass
class Snapshot:
    """The loop's state at a step boundary: ``index`` batches of epoch ``epoch`` are done (0 before
    the first epoch); ``epoch_rng`` is the generator's state when that epoch drew its batches."""

    params: np.ndarray
    state: dict[str, np.ndarray]
    finite_params: np.ndarray
    finite_step: int
    step: int
    epoch: int
    index: int
    updated_epochs: int
    weighted_loss: float
    epoch_rng: Mapping[str, Any] | None
    history: Any  # loop.History (not imported: loop imports this module)


def settings_of(
    model: Any,
    arrays: Sequence[np.ndarray] | Mapping[str, str],
    optimizer: Any,
    init: np.ndarray,
    **rules: Any,
) -> dict[str, Any]:
    """The settings a checkpoint must share with the run that resumes it, JSON-normalised."""
    doc = getattr(model, "__doc__", None)
    source = doc if isinstance(doc, str) else type(model).__qualname__
    settings = {
        "model": {
            "params": [[name, list(shape)] for name, shape in model.PARAMS],
            "data": list(model.DATA),
            "reduce": getattr(model, "REDUCE", None),
            "definition": _digest(source.encode("utf-8")),
        },
        "data": dict(arrays)  # data read block by block: what identifies it (sources.py)
        if isinstance(arrays, Mapping)
        else {
            name: f"{array.shape} {_digest(np.ascontiguousarray(array).tobytes())}"
            for name, array in zip(model.DATA, arrays, strict=True)
        },
        "init": _digest(np.ascontiguousarray(init).tobytes()),
        "optimizer": {"name": optimizer.name, **optimizer.hyperparameters()},
        **rules,
    }
    normalised: dict[str, Any] = json.loads(json.dumps(settings, default=_plain))
    return normalised


def save(path: str | os.PathLike[str], settings: Mapping[str, Any], snapshot: Snapshot) -> None:
    """Write the checkpoint atomically (the old one stays whole until the new one is complete)."""
    history = snapshot.history
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "settings": settings,
        "step": snapshot.step,
        "epoch": snapshot.epoch,
        "index": snapshot.index,
        "updated_epochs": snapshot.updated_epochs,
        "finite_step": snapshot.finite_step,
        "epoch_rng": snapshot.epoch_rng,
        "state": sorted(snapshot.state),
    }
    arrays: dict[str, Any] = {  # Any: numpy's stubs type savez's keywords as its options
        "meta": np.array(json.dumps(meta)),
        "params": snapshot.params,
        "finite_params": snapshot.finite_params,
        "weighted_loss": np.array(snapshot.weighted_loss, dtype=np.float64),
        "history.epoch_end": np.array(history.epoch_end, dtype=np.int64),
        "history.path": (
            np.array(history.path, dtype=np.float64)
            if history.path
            else np.zeros((0, snapshot.params.size))
        ),
    }
    for name in HISTORY_FLOATS:
        arrays[f"history.{name}"] = np.array(getattr(history, name), dtype=np.float64)
    for key, value in snapshot.state.items():
        arrays[f"state.{key}"] = np.asarray(value)
    buffer = io.BytesIO()
    with deferred():  # zipfile does not survive being cut: a signal waits for the archive
        np.savez(buffer, **arrays)
    write_output(path, buffer.getvalue())


def load(path: str | os.PathLike[str], settings: Mapping[str, Any], history: Any) -> Snapshot:
    """The snapshot in ``path``, or an InputError when it is not a checkpoint or was made with
    other settings. ``history`` is an empty History to fill."""
    where = os.fspath(path)
    if not Path(where).is_file():
        raise InputError(f"{where}: no such checkpoint file")
    try:
        with np.load(where, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"][()]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("no symdiff checkpoint header")
            if meta.get("version") != VERSION:
                raise ValueError(f"version {meta.get('version')}, this symdiff reads {VERSION}")
            _same_settings(where, meta["settings"], settings)
            for name in HISTORY_FLOATS:
                getattr(history, name).extend(float(v) for v in archive[f"history.{name}"])
            history.epoch_end.extend(int(v) for v in archive["history.epoch_end"])
            history.path.extend(np.array(row) for row in archive["history.path"])
            return Snapshot(
                params=np.array(archive["params"], dtype=np.float64),
                state={key: np.array(archive[f"state.{key}"]) for key in meta["state"]},
                finite_params=np.array(archive["finite_params"], dtype=np.float64),
                finite_step=int(meta["finite_step"]),
                step=int(meta["step"]),
                epoch=int(meta["epoch"]),
                index=int(meta["index"]),
                updated_epochs=int(meta["updated_epochs"]),
                weighted_loss=float(archive["weighted_loss"]),
                epoch_rng=meta["epoch_rng"],
                history=history,
            )
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{where}: cannot read the checkpoint: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{where}: not a symdiff checkpoint ({exc})") from None


def _same_settings(where: str, saved: Any, current: Mapping[str, Any]) -> None:
    saved_flat, current_flat = _flatten(saved), _flatten(current)
    # in the run's own order (the model, the data, ..., an optimizer's name before its settings)
    for key in [*current_flat, *(k for k in saved_flat if k not in current_flat)]:
        was, now = saved_flat.get(key, "(unset)"), current_flat.get(key, "(unset)")
        if was != now:
            raise InputError(
                f"{where}: the checkpoint was made with {key} = {_show(was)}, this run "
                f"has {_show(now)}; resume with the settings of the interrupted run"
            )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]


def _plain(value: Any) -> Any:
    """NumPy scalars (and anything else) in settings, for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
