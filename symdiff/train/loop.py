"""The training loop: ``fit(model, data, optimizer, ...)`` -> ``FitResult``.

``model`` is anything with the generated-module interface (``symdiff.compile`` or a module
written by ``symdiff codegen``): ``PARAMS`` ((name, shape) pairs), ``DATA`` (names) and
``loss_and_grad(params, *data)`` taking the parameters as one flat float64 vector in ``PARAMS``
order. The loop works on that flat vector; the result gives the parameters back by name.

One step: take the next batch of samples, compute loss L(w; batch) and gradient g, stop if either is
not finite (divergence) or the gradient is small enough, else ``w, state = optimizer.update(...)``.
An epoch is one pass over the (shuffled) samples in batches of ``batch_size``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import sympy as sp

from ..errors import InputError
from ..outputs import check_output
from . import checkpoint as checkpoints
from .optimize import Optimizer, SciPyMethod, make_optimizer
from .sources import SourceFailure, feed_for, row_count

InitValues = Mapping[str, Any] | Sequence[float] | np.ndarray | None


class GeneratedModule(Protocol):
    """The interface of a generated module or a compiled model."""

    PARAMS: tuple[tuple[str, tuple[int, ...]], ...]
    DATA: tuple[str, ...]

    def loss_and_grad(self, params: np.ndarray, *data: np.ndarray) -> tuple[float, np.ndarray]: ...


@dataclass(frozen=True)
class ParamLayout:
    """Where each named parameter lives in the flat vector (PARAMS order)."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, model: GeneratedModule) -> ParamLayout:
        return cls(
            tuple(name for name, _ in model.PARAMS),
            tuple(tuple(int(n) for n in shape) for _, shape in model.PARAMS),
        )

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for shape in self.shapes)

    def flatten(self, values: InitValues) -> np.ndarray:
        """Dict (missing names = 0), flat sequence or None (all zeros) -> flat float64 vector."""
        if values is None:
            return np.zeros(self.size)
        if not isinstance(values, Mapping):
            flat = np.array(values, dtype=np.float64).reshape(-1)
            if flat.size != self.size:
                raise InputError(f"expected {self.size} initial parameter values, got {flat.size}")
            return flat
        unknown = sorted(set(values) - set(self.names))
        if unknown:
            raise InputError(
                f"unknown parameter '{unknown[0]}' (parameters: {', '.join(self.names)})"
            )
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            value = np.asarray(values.get(name, 0.0), dtype=np.float64)
            try:
                parts.append(np.broadcast_to(value, shape).reshape(-1))
            except ValueError:
                raise InputError(
                    f"parameter '{name}' has shape {shape}, got a value of shape {value.shape}"
                ) from None
        return np.concatenate(parts) if parts else np.zeros(0)

    def unflatten(self, flat: np.ndarray) -> dict[str, float | np.ndarray]:
        """Flat vector -> {name: float for scalars, array of the declared shape otherwise}."""
        result: dict[str, float | np.ndarray] = {}
        start = 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = math.prod(shape)
            piece = flat[start : start + size]
            result[name] = float(piece[0]) if shape == () else piece.reshape(shape).copy()
            start += size
        return result


@dataclass
class History:
    """What happened, step by step (``loss``, ``grad_norm``, ``lr``) and epoch by epoch.

    ``loss[t]`` is the batch loss at the parameters *before* update t; ``epoch_loss[e]`` is the
    sample-weighted mean of the batch losses of epoch e (for full batches: the step loss).
    ``epoch_end[e]`` is the index t of the last step of epoch e. ``path[t]`` holds the
    parameters of step t when the path was recorded, and ``path[-1]`` the returned parameters.
    """

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    epoch_end: list[int] = field(default_factory=list)
    path: list[np.ndarray] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        return {
            "loss": self.loss,
            "epoch_loss": self.epoch_loss,
            "epoch_end": self.epoch_end,
            "grad_norm": self.grad_norm,
            "lr": self.lr,
        }


#: an array parameter with more entries than this is summarised (shape, norm, a few entries)
SHOWN_ENTRIES = 8


def value_text(value: float | np.ndarray) -> str:
    """A parameter value on one line: a scalar to 10 significant digits, an array of at most
    ``SHOWN_ENTRIES`` entries in full, a larger one as its shape, 2-norm ||W|| = sqrt(sum W_ij^2)
    and its first and last entries in row-major order."""
    if not isinstance(value, np.ndarray):
        return f"{value:.10g}"
    if value.size <= SHOWN_ENTRIES:
        return np.array2string(value, precision=8, max_line_width=10_000).replace("\n", "")
    flat = value.reshape(-1)
    entries = ", ".join(f"{v:.4g}" for v in flat[:3])
    shape = "(" + ", ".join(str(n) for n in value.shape) + (",)" if value.ndim == 1 else ")")
    return (
        f"array of shape {shape}, norm {np.linalg.norm(flat):.6g}, "
        f"entries [{entries}, ..., {flat[-1]:.4g}]"
    )


def _latex_number(value: float) -> str:
    """10 significant digits in LaTeX: 1.5e-11 -> 1.5 \\cdot 10^{-11}."""
    if not math.isfinite(value):
        return f"\\text{{{value}}}"
    mantissa, _, exponent = f"{value:.10g}".partition("e")
    if not exponent:
        return mantissa
    return f"{mantissa} \\cdot 10^{{{int(exponent)}}}"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class FitResult:
    """The trained parameters, the final full-data loss and how training ended.

    ``steps`` counts updates; ``epochs`` the epochs in which at least one update was made (a stop
    on ``gtol`` at the start of an epoch does not count that epoch). ``loss`` is over all the data
    at the returned parameters, ``grad_norm`` = ||dL/dw|| there (NaN when not computed).
    """

    params: dict[str, float | np.ndarray]
    flat: np.ndarray
    loss: float
    steps: int
    epochs: int
    converged: bool
    diverged: bool
    message: str
    history: History
    grad_norm: float = math.nan
    failed: bool = False  # the data could not be computed on (a Dask worker died)

    def param_lines(self) -> list[tuple[str, str]]:
        """(name, ``value_text``) of each parameter."""
        return [(name, value_text(value)) for name, value in self.params.items()]

    def __repr__(self) -> str:
        """One line: loss, gradient norm, steps, why training stopped, the parameters."""
        shown = ", ".join(f"{name}={text}" for name, text in self.param_lines())
        return (
            f"FitResult(loss={self.loss:.10g}, grad_norm={self.grad_norm:.3g}, "
            f"steps={self.steps}, epochs={self.epochs}, message={self.message!r}, "
            f"params={{{shown}}})"
        )

    def _repr_markdown_(self) -> str:
        """A table for notebooks: the stop reason, loss, gradient norm, steps, parameters."""
        rows = [
            ("loss", f"{self.loss:.10g}"),
            ("gradient norm", f"{self.grad_norm:.3g}"),
            ("steps", f"{self.steps} ({self.epochs} epochs)"),
            *((f"`{name}`", text) for name, text in self.param_lines()),
        ]
        table = "\n".join(f"| {key} | {_markdown_cell(text)} |" for key, text in rows)
        return f"**FitResult**: {self.message}\n\n| | |\n|---|---|\n{table}\n"

    def _repr_latex_(self) -> str:
        """The loss, gradient norm, steps and scalar parameters as a LaTeX array (array
        parameters by shape and norm)."""
        rows = [
            ("L", _latex_number(self.loss)),
            ("\\lVert \\nabla L \\rVert", _latex_number(self.grad_norm)),
            ("\\text{steps}", str(self.steps)),
        ]
        for name, value in self.params.items():
            symbol = sp.latex(sp.Symbol(name))
            if isinstance(value, np.ndarray):
                shape = "\\times".join(str(n) for n in value.shape) or "1"
                norm = _latex_number(float(np.linalg.norm(value)))
                size = f"\\in \\mathbb{{R}}^{{{shape}}}"
                rows.append((symbol, f"{size},\\ \\lVert {symbol} \\rVert = {norm}"))
            else:
                rows.append((symbol, _latex_number(value)))
        body = " \\\\ ".join(f"{key} & {text}" for key, text in rows)
        return f"$\\begin{{array}}{{ll}} {body} \\end{{array}}$"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"params", "loss", "grad_norm", "steps", "epochs", "converged",
        "diverged", "message", "history"} (a NaN or infinite number is null)."""
        return {
            "params": {
                name: value.tolist() if isinstance(value, np.ndarray) else value
                for name, value in self.params.items()
            },
            "loss": _finite_or_none(self.loss),  # JSON has no NaN/inf
            "grad_norm": _finite_or_none(self.grad_norm),
            "steps": self.steps,
            "epochs": self.epochs,
            "converged": self.converged,
            "diverged": self.diverged,
            "message": self.message,
            "history": self.history.to_dict(),
        }


@dataclass(frozen=True)
class StepInfo:
    """Given to callbacks after every step; a callback returning True stops training."""

    step: int
    epoch: int
    loss: float
    grad_norm: float
    lr: float
    params: np.ndarray
    epoch_done: bool


Callback = Callable[[StepInfo], bool | str | None]
BatchSize = int | None | Literal["auto"]


class _Stop(Exception):
    """Ends the loop; carries whether the stop means convergence and why."""

    def __init__(
        self,
        message: str,
        converged: bool = False,
        diverged: bool = False,
        boundary: bool = True,
        failed: bool = False,
    ) -> None:
        super().__init__(message)
        self.converged = converged
        self.diverged = diverged
        self.failed = failed
        self.boundary = boundary  # False: inside a step (gtol, divergence), not resumable there


def fit(
    model: GeneratedModule,
    data: Sequence[Any] | Mapping[str, Any] = (),
    optimizer: str | Optimizer = "gd",
    *,
    lr: float | None = None,
    init: InitValues = None,
    epochs: int = 100,
    batch_size: BatchSize = "auto",
    shuffle: bool = True,
    seed: int | None = 0,
    tol: float | None = None,
    gtol: float | None = None,
    max_steps: int | None = None,
    callbacks: Sequence[Callback] = (),
    record_path: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
) -> FitResult:
    """Train ``model``'s parameters on ``data`` and return a ``FitResult``.

    - ``data``: arrays in ``model.DATA`` order, or a dict name -> array; 1-D or more, samples along
      axis 0, all the same length (0-d arrays are constants, passed whole to every batch).
    - ``optimizer``: a name from ``symdiff.optimize.OPTIMIZERS`` (with ``lr``) or an ``Optimizer``.
    - ``batch_size``: None = all samples (gradient descent), 1 = SGD, k = mini-batches of k;
      "auto" = the optimizer's default (gd: all, sgd: 1, minibatch: 32, others: all).
    - ``shuffle``/``seed``: mini-batches are drawn from a permutation made by
      ``numpy.random.default_rng(seed)`` each epoch; the same seed gives the same result.
    - Stops when the epoch loss changes by at most ``tol * max(1, |previous|)`` (converged), when
      the batch gradient norm is at most ``gtol`` (converged), after ``max_steps`` updates or
      ``epochs`` epochs, when a callback returns True (or a string: the reason, e.g. "interrupted
      by SIGINT after step 7"), or when the loss or gradient is not finite (diverged: the last
      parameters with a finite loss and gradient are returned).
    - ``checkpoint``: a file to write the whole state of the run to (a NumPy ``.npz`` archive,
      atomically), every ``checkpoint_every`` steps (default 1000), when a callback stops
      training and when training ends at a step boundary (after its epochs, ``max_steps`` or
      ``tol``; not inside a step: ``gtol``, divergence). ``resume``: such a file; training goes
      on from the step where it was written and ends exactly (bit for bit) where the same run
      without a break ends. The checkpoint must have been made with the same model, data,
      initial values, optimizer and settings (else an InputError names the difference);
      ``resume`` and ``checkpoint`` may be the same file. A KeyboardInterrupt inside a step is
      not caught: the last checkpoint written stays whole.
    """
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer) if lr is None else make_optimizer(optimizer, lr=lr)
    elif lr is not None:
        raise InputError("give lr inside the Optimizer object, not next to it")
    _check_count("epochs", epochs)
    for name, value in (("tol", tol), ("gtol", gtol)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a number >= 0, got {value}")
    if max_steps is not None:
        _check_count("max_steps", max_steps)
    if checkpoint_every is not None:
        _check_count("checkpoint_every", checkpoint_every)
        if checkpoint is None:
            raise InputError("checkpoint_every needs a checkpoint file")
    if isinstance(optimizer, SciPyMethod):  # Newton-CG, L-BFGS: scipy runs the iterations
        from .second_order import fit_second_order

        return fit_second_order(
            model, data, optimizer, init=init, epochs=epochs, batch_size=batch_size, tol=tol,
            gtol=gtol, max_steps=max_steps, callbacks=callbacks, record_path=record_path,
            resumable=checkpoint is not None or resume is not None,
        )  # fmt: skip
    every = checkpoint_every or checkpoints.DEFAULT_EVERY
    if checkpoint is not None:
        check_output(checkpoint)  # fail before training, not at the first checkpoint
    layout = ParamLayout.of(model)
    feed = feed_for(model, data)  # data read block by block (a Source) or Dask arrays
    arrays = data_arrays(model, data) if feed is None else []
    n_samples = sample_count(model, arrays) if feed is None else feed.rows
    size = resolve_batch_size(batch_size, optimizer, n_samples)
    params = layout.flatten(init)
    if not np.all(np.isfinite(params)):
        raise InputError("initial parameter values must be finite")
    settings: dict[str, Any] = {}
    if checkpoint is not None or resume is not None:
        settings = checkpoints.settings_of(
            model, arrays if feed is None else feed.fingerprint(), optimizer, params,
            batch_size=size, shuffle=shuffle, seed=seed,
            epochs=epochs, tol=tol, gtol=gtol, max_steps=max_steps, record_path=record_path,
        )  # fmt: skip

    rng = np.random.default_rng(seed)
    if resume is not None:
        run = checkpoints.load(resume, settings, History())
    else:
        run = checkpoints.Snapshot(
            params=params,
            state=optimizer.init(params),
            finite_params=params,  # the last parameters with a finite loss and gradient
            finite_step=-1,
            step=0,
            epoch=0,
            index=0,
            updated_epochs=0,  # epochs in which an update was made
            weighted_loss=0.0,
            epoch_rng=None,
            history=History(),
        )
    history: History = run.history
    params, state, step = run.params, run.state, run.step
    saved_step = -1  # the step of the last checkpoint written by this call
    stop = _Stop(f"finished {epochs} epochs" + _tolerance_note(tol, gtol))
    try:
        if max_steps is not None and step >= max_steps:  # resumed where the run had ended
            raise _Stop(f"reached max_steps={max_steps}" + _tolerance_note(tol, gtol))
        for epoch in range(max(run.epoch, 1), epochs + 1):
            if epoch == run.epoch:  # resumed inside this epoch: draw its batches again
                if run.epoch_rng is not None:
                    rng.bit_generator.state = run.epoch_rng
                first, weighted_loss = run.index, run.weighted_loss
            else:
                run.epoch_rng = rng.bit_generator.state if checkpoint is not None else None
                first, weighted_loss = 0, 0.0
            batches = list(_batches(n_samples, size, shuffle, rng))
            for index in range(first, len(batches)):
                rows = batches[index]
                try:
                    loss, grad, grad_norm = _evaluate(
                        model, params, _take(arrays, rows), feed, rows
                    )
                except SourceFailure as failure:
                    raise _Stop(
                        f"{failure} in step {step} (epoch {epoch}); kept the parameters "
                        f"reached after {step} updates",
                        boundary=False,
                        failed=True,
                    ) from None
                _check_finite(loss, grad_norm, step, run.updated_epochs, optimizer, run.finite_step)
                run.finite_params, run.finite_step = params, step
                rate = optimizer.learning_rate(step)
                history.loss.append(loss)
                history.grad_norm.append(grad_norm)
                history.lr.append(rate)
                if record_path:
                    history.path.append(params.copy())
                weighted_loss += loss * (len(rows) if rows is not None else 1)
                if gtol is not None and grad_norm <= gtol:
                    _finish_epoch(history, weighted_loss, n_samples, index, size)
                    raise _Stop(
                        f"converged: gradient norm {grad_norm:.3g} <= gtol {gtol:g} after "
                        f"{_count(step, 'step')}",
                        converged=True,
                        boundary=False,
                    )
                with np.errstate(all="ignore"):
                    new_params, state = optimizer.update(params, grad, state, step)
                if not np.all(np.isfinite(new_params)):
                    _finish_epoch(history, weighted_loss, n_samples, index, size)
                    raise _Stop(
                        _divergence(
                            step,
                            run.updated_epochs,
                            "the parameters of the next update",
                            optimizer,
                            step,
                        ),
                        diverged=True,
                        boundary=False,
                    )
                params = new_params
                step += 1
                run.updated_epochs = epoch
                epoch_done = index == len(batches) - 1
                if epoch_done:
                    _finish_epoch(history, weighted_loss, n_samples, index, size)
                info = StepInfo(step, epoch, loss, grad_norm, rate, params, epoch_done)
                # a step boundary: what a checkpoint holds
                run.params, run.state, run.step = params, state, step
                run.epoch, run.index, run.weighted_loss = epoch, index + 1, weighted_loss
                stopped = _ask(callbacks, info)
                if checkpoint is not None and (stopped or step % every == 0):
                    checkpoints.save(checkpoint, settings, run)
                    saved_step = step
                if stopped:
                    raise _Stop(stopped)
                if max_steps is not None and step >= max_steps:
                    raise _Stop(f"reached max_steps={max_steps}" + _tolerance_note(tol, gtol))
            _check_loss_change(history.epoch_loss, tol)
    except _Stop as reason:
        stop = reason
    if checkpoint is not None and stop.boundary and saved_step != run.step:
        checkpoints.save(checkpoint, settings, run)  # the end: resuming it gives this result
    if stop.diverged:
        params = run.finite_params
    if record_path and (not history.path or not np.array_equal(history.path[-1], params)):
        history.path.append(params.copy())  # the path ends where training ended
    if feed is None:
        final_loss = full_loss(model, params, arrays)
        final_grad_norm = _evaluate(model, params, arrays)[2]
    else:  # one pass over the data for both; NaN when they cannot be computed on any more
        try:
            final_loss, _, final_grad_norm = _evaluate(model, params, arrays, feed, None)
        except SourceFailure:
            final_loss = final_grad_norm = math.nan
    message = str(stop)
    if not stop.converged and not stop.diverged and history.loss and final_loss > history.loss[0]:
        message += (
            f"; the loss grew from {history.loss[0]:.4g} to {final_loss:.4g}: "
            "try a smaller learning rate"
        )
    return FitResult(
        params=layout.unflatten(params),
        flat=params,
        loss=final_loss,
        steps=step,
        epochs=run.updated_epochs,
        converged=stop.converged,
        diverged=stop.diverged,
        message=message,
        history=history,
        grad_norm=final_grad_norm,
        failed=stop.failed,
    )


def _ask(callbacks: Sequence[Callback], info: StepInfo) -> str | None:
    """Why the first callback that wants to stop training does (None: go on)."""
    for callback in callbacks:
        answer = callback(info)
        if isinstance(answer, str) and answer:
            return answer
        if answer:
            return f"stopped by a callback after step {info.step}"
    return None


def _evaluate(
    model: GeneratedModule,
    params: np.ndarray,
    batch: Sequence[np.ndarray],
    feed: Any = None,
    rows: np.ndarray | None = None,
) -> tuple[float, np.ndarray, float]:
    """Loss, flat gradient and gradient norm on one batch (overflow shows up as inf/NaN); with a
    ``feed`` (``symdiff.train.sources``), on its ``rows`` (None: all, block by block)."""
    with np.errstate(all="ignore"):
        loss, grad = (
            model.loss_and_grad(params, *batch) if feed is None else feed.evaluate(params, rows)
        )
        grad = np.asarray(grad, dtype=np.float64).reshape(-1)
        return float(loss), grad, float(np.linalg.norm(grad))


def full_loss(model: GeneratedModule, params: np.ndarray, arrays: Sequence[np.ndarray]) -> float:
    """The loss over all the data (``model.loss`` when the model has it)."""
    with np.errstate(all="ignore"):
        if hasattr(model, "loss"):
            return float(model.loss(params, *arrays))
        return float(model.loss_and_grad(params, *arrays)[0])


def data_arrays(
    model: GeneratedModule, data: Sequence[Any] | Mapping[str, Any]
) -> list[np.ndarray]:
    """The data as float64 arrays in ``model.DATA`` order."""
    names = tuple(model.DATA)
    if isinstance(data, Mapping):
        missing = [name for name in names if name not in data]
        if missing:
            raise InputError(f"no data for '{missing[0]}' (data names: {', '.join(names)})")
        extra = sorted(set(data) - set(names))
        if extra:
            raise InputError(f"'{extra[0]}' is not a data name (data names: {', '.join(names)})")
        data = [data[name] for name in names]
    if len(data) != len(names):
        raise InputError(f"expected {len(names)} data arrays ({', '.join(names)}), got {len(data)}")
    arrays = []
    for name, values in zip(names, data, strict=True):
        array = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise InputError(f"data '{name}' contains NaN or infinite values")
        arrays.append(array)
    return arrays


def sample_count(model: GeneratedModule, arrays: Sequence[np.ndarray]) -> int | None:
    """The common length of the data arrays along axis 0 (None: no per-sample data)."""
    lengths = {name: len(a) for name, a in zip(model.DATA, arrays, strict=True) if a.ndim > 0}
    if not lengths:
        return None
    first = next(iter(lengths))
    for name, length in lengths.items():
        if length != lengths[first]:
            raise InputError(
                f"data '{first}' has {lengths[first]} samples but '{name}' has {length}"
            )
    if lengths[first] == 0:
        raise InputError("the data has no samples")
    return lengths[first]


def resolve_batch_size(batch_size: BatchSize, optimizer: Optimizer, n: int | None) -> int | None:
    """The batch size to use (None = all samples)."""
    if batch_size == "auto":
        batch_size = optimizer.batch_size
    if batch_size is None or n is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InputError(f"batch size must be a positive whole number, got {batch_size!r}")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    return None if batch_size >= n else int(batch_size)


def planned_steps(
    model: GeneratedModule,
    data: Sequence[Any] | Mapping[str, Any],
    optimizer: Optimizer,
    batch_size: BatchSize,
    epochs: int,
    max_steps: int | None = None,
) -> int:
    """How many updates ``fit`` makes at most: epochs * batches per epoch, capped by max_steps."""
    n = row_count(data)
    if n is None:
        n = sample_count(model, data_arrays(model, data))
    size = resolve_batch_size(batch_size, optimizer, n)
    per_epoch = 1 if size is None or n is None else -(-n // size)
    total = epochs * per_epoch
    return total if max_steps is None else min(total, max_steps)


def _batches(
    n: int | None, size: int | None, shuffle: bool, rng: np.random.Generator
) -> Iterator[np.ndarray | None]:
    """Row indices of each batch of one epoch (None = all rows, unshuffled)."""
    if size is None or n is None:
        yield None
        return
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, size):
        yield order[start : start + size]


def _take(arrays: Sequence[np.ndarray], rows: np.ndarray | None) -> list[np.ndarray]:
    if rows is None:
        return list(arrays)
    return [a[rows] if a.ndim > 0 else a for a in arrays]


def _finish_epoch(
    history: History, weighted_loss: float, n: int | None, index: int, size: int | None
) -> None:
    """Record the epoch loss: the batch losses weighted by batch size (full batch: the loss)."""
    history.epoch_end.append(len(history.loss) - 1)
    if size is None or n is None:
        history.epoch_loss.append(history.loss[-1])
        return
    seen = min(n, (index + 1) * size)
    history.epoch_loss.append(weighted_loss / seen)


def _check_finite(
    loss: float, grad_norm: float, step: int, epochs: int, optimizer: Optimizer, kept: int
) -> None:
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    what = "the loss" if not math.isfinite(loss) else "the gradient"
    raise _Stop(_divergence(step, epochs, what, optimizer, kept), diverged=True, boundary=False)


def _divergence(step: int, epochs: int, what: str, optimizer: Optimizer, kept: int) -> str:
    """When training diverged (after ``step`` updates made in ``epochs`` epochs, the counts
    ``FitResult`` reports), which parameters are kept (those after ``kept`` updates), and what
    to try."""
    when = f"after {_count(step, 'step')} ({_count(epochs, 'epoch')})" if step else "at the start"
    source = f"after {_count(kept, 'step')}" if kept > 0 else "of the initial values"
    return (
        f"diverged {when}: {what} became NaN or infinite; "
        f"kept the parameters {source}, the last with a finite loss and gradient; "
        f"try a smaller learning rate than {optimizer.learning_rate(step):g}"
    )


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _check_loss_change(epoch_loss: list[float], tol: float | None) -> None:
    if tol is None or len(epoch_loss) < 2:
        return
    previous, current = epoch_loss[-2], epoch_loss[-1]
    change = abs(current - previous)
    if change <= tol * max(1.0, abs(previous)):
        raise _Stop(
            f"converged: loss changed by {change:.3g} <= tol {tol:g} in epoch {len(epoch_loss)}",
            converged=True,
        )


def _tolerance_note(tol: float | None, gtol: float | None) -> str:
    if tol is None and gtol is None:
        return " (no tolerance set)"
    return " without meeting the tolerance"


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive whole number, got {value!r}")
