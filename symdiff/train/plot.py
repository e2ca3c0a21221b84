"""Pictures of training: the loss curve, and the path of the parameters over the loss surface.

matplotlib is an optional extra (``pip install "symdiff[plot]"``); it is imported only here.
Figures are drawn on their own Agg canvas, without pyplot, so plotting changes no global backend
or figure list (safe inside notebooks and servers). ``plot_training`` draws one or several runs
(several optimizers on one figure, to compare them):

* left: the loss at every step (log scale when all losses are positive and span a factor of
  ``LOG_SPAN`` or more, with plain decimal tick labels);
* right, for a model with one scalar parameter: the loss curve L(w) with the visited points
  (like figures 2.18 and 2.20 of the seed); with two: the path over the contours of L(w1, w2)
  (like figure 2.19). The right panel needs the runs' recorded paths (``fit(record_path=True)``).

Files are written atomically (a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, SymdiffError
from .data import check_folder, write_atomic
from .loop import FitResult, GeneratedModule, full_loss

#: points per axis of the grid the contours are drawn from
GRID = 60
#: how far the surface extends past the paths, as a fraction of their span
MARGIN = 0.25
#: mini-batch runs with at most this many steps per epoch also show their (noisy) batch losses
MAX_FAINT_STEPS = 50
#: the loss axis is logarithmic when all losses are positive and span at least this factor
LOG_SPAN = 10.0
#: a path with more points than this is drawn as a thin line without a dot per step
MAX_DOTTED = 250
#: the start and end markers are drawn above every path (and the contours)
MARKER_Z = 5


def new_figure(columns: int = 1) -> tuple[Any, list[Any]]:
    """A matplotlib Figure on an Agg canvas with ``columns`` axes side by side, or a SymdiffError
    saying how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SymdiffError(
            "plotting needs matplotlib, which is not installed: pip install 'symdiff[plot]'"
        ) from None
    figure = Figure(figsize=(6 * columns, 4.5))
    FigureCanvasAgg(figure)
    return figure, list(figure.subplots(1, columns, squeeze=False)[0])


def plot_training(
    runs: FitResult | Mapping[str, FitResult],
    path: str | Path,
    *,
    model: GeneratedModule | None = None,
    data: Sequence[np.ndarray] = (),
    title: str | None = None,
) -> Path:
    """Draw the loss curves (and, with ``model`` and recorded paths, the parameter paths)."""
    runs = {"": runs} if isinstance(runs, FitResult) else dict(runs)
    surface = _surface_kind(runs, model)
    figure, axes = new_figure(2 if surface else 1)
    draw_loss_curves(axes[0], runs)
    # (_surface_kind is 0 when there is no model)
    if model is not None and surface == 1:
        draw_curve_path(axes[1], runs, model, data)
    elif model is not None and surface == 2:
        draw_contour_path(axes[1], runs, model, data)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def draw_loss_curves(axis: Any, runs: Mapping[str, FitResult]) -> None:
    """Loss of each run: per step for full batches; with mini-batches, on an epoch axis, the
    per-epoch mean (and, up to ``MAX_FAINT_STEPS`` steps per epoch, the batch losses, faint)."""
    by_epoch = any(_steps_per_epoch(r) > 1 for r in runs.values())
    for label, result in runs.items():
        history = result.history
        per_epoch = _steps_per_epoch(result)
        steps = np.arange(len(history.loss)) / (per_epoch if by_epoch else 1)
        if per_epoch == 1:
            axis.plot(steps, history.loss, label=label or None, lw=1.2)
            continue
        mean = axis.plot(
            np.arange(1, len(history.epoch_loss) + 1) - 0.5,  # the middle of each epoch
            history.epoch_loss,
            "o-",
            ms=3,
            lw=1.8,
            label=f"{label}: epoch mean" if label else "epoch mean",
        )[0]
        if per_epoch <= MAX_FAINT_STEPS:
            axis.plot(steps, history.loss, lw=0.8, alpha=0.3, color=mean.get_color())
    _loss_scale(axis, np.concatenate([line.get_ydata() for line in axis.lines]))
    axis.set_xlabel("epoch" if by_epoch else "step")
    axis.set_ylabel("loss")
    axis.set_title("loss during training")
    if axis.get_legend_handles_labels()[1]:
        axis.legend()


def _loss_scale(axis: Any, drawn: np.ndarray) -> None:
    """A log axis when the drawn losses are positive and max/min >= ``LOG_SPAN``, labelled 0.3,
    1, 2 (not 3x10^-1), also between powers of ten over up to two decades; else a linear axis
    labelled with the values themselves (no '+2.6e-1' offset)."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        """matplotlib's choice of labelled ticks, written as plain numbers (%g)."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}" if super().__call__(x, pos) else ""

    finite = drawn[np.isfinite(drawn)]
    if finite.size and finite.min() > 0 and finite.max() >= LOG_SPAN * finite.min():
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
        axis.yaxis.set_minor_formatter(
            PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 1))
        )
    else:
        axis.ticklabel_format(axis="y", useOffset=False)


def _steps_per_epoch(result: FitResult) -> int:
    history = result.history
    return history.epoch_end[0] + 1 if history.epoch_end else max(1, len(history.loss))


def draw_curve_path(
    axis: Any, runs: Mapping[str, FitResult], model: GeneratedModule, data: Sequence[np.ndarray]
) -> None:
    """L(w) for a single parameter w, with the points each run visited."""
    name = model.PARAMS[0][0]
    low, high = _span([r.history.path for r in runs.values()], axis_index=0)
    grid = np.linspace(low, high, 400)
    curve = np.array([_loss(model, [w], data) for w in grid])
    axis.plot(grid, curve, color="black", lw=1.5, label="loss")
    highest = -np.inf
    ends = []
    for label, result in runs.items():
        visited = np.array(result.history.path)[:, 0]
        losses = [_loss(model, [w], data) for w in visited]
        highest = max(highest, *losses)
        axis.plot(visited, losses, "o-", ms=3, lw=0.8, alpha=0.8, label=label or "path")
        ends.append((axis.lines[-1].get_color(), visited[-1], losses[-1]))
    for colour, w, loss in ends:  # after every path, so that no path hides an end
        _marker(axis, "*", w, loss, colour)
    lowest = float(np.nanmin(curve))
    if np.isfinite(highest) and highest > lowest:  # show the visited part, not the far tails
        pad = 0.08 * (highest - lowest)
        axis.set_ylim(lowest - pad, highest + pad)
    axis.set_xlabel(name)
    axis.set_ylabel("loss")
    axis.set_title(f"loss as a function of {name} (star: end)")
    axis.legend()


def draw_contour_path(
    axis: Any, runs: Mapping[str, FitResult], model: GeneratedModule, data: Sequence[np.ndarray]
) -> None:
    """Contours of L(w1, w2) with the path each run took."""
    paths = [np.array(r.history.path) for r in runs.values()]
    (x_low, x_high), (y_low, y_high) = _span(paths, 0), _span(paths, 1)
    xs, ys = np.linspace(x_low, x_high, GRID), np.linspace(y_low, y_high, GRID)
    surface = np.array([[_loss(model, [x, y], data) for x in xs] for y in ys])
    finite = surface[np.isfinite(surface)]
    levels = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, 25))) if finite.size else 10
    contour = axis.contour(xs, ys, surface, levels=levels, cmap="viridis", linewidths=0.8)
    axis.figure.colorbar(contour, ax=axis, label="loss")
    colours = []
    for (label, _result), path in zip(runs.items(), paths, strict=True):
        axis.plot(path[:, 0], path[:, 1], **_path_style(len(path)), label=label or "path")
        colours.append(axis.lines[-1].get_color())
    for colour, path in zip(colours, paths, strict=True):  # above every path
        _marker(axis, "o", path[0, 0], path[0, 1], colour)
        _marker(axis, "*", path[-1, 0], path[-1, 1], colour)
    names = [name for name, _ in model.PARAMS]
    axis.set_xlabel(names[0])
    axis.set_ylabel(names[1])
    axis.set_title("path over the loss contours (o: start, *: end)")
    axis.legend()


def _path_style(points: int) -> dict[str, Any]:
    """A dot per step for a short path; a thin, half-transparent line for a long (SGD) one."""
    if points <= MAX_DOTTED:
        return {"marker": ".", "ms": 4, "lw": 1.0, "alpha": 0.9}
    return {"lw": 0.8, "alpha": 0.7}


def _marker(axis: Any, shape: str, x: float, y: float, colour: Any) -> None:
    """A start ('o') or end ('*') marker, outlined in black, above the paths."""
    size = 16 if shape == "*" else 8
    axis.plot(x, y, shape, color=colour, ms=size, mec="black", mew=1.0, zorder=MARKER_Z)


def check_plot_path(path: str | Path) -> Path:
    """Fail early (before training) when matplotlib is missing or the file cannot be written."""
    figure, _ = new_figure()
    path = Path(path)
    _check_format(figure, path)
    return check_folder(path)


def save_figure(figure: Any, path: Path) -> Path:
    """Write the figure to ``path`` atomically; the format follows the suffix (.png, .svg, .pdf)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=_check_format(figure, path), dpi=110)
    return write_atomic(path, buffer.getvalue())


def _check_format(figure: Any, path: Path) -> str:
    """The image format named by the suffix, if the canvas can write it."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in figure.canvas.get_supported_filetypes():
        raise InputError(f"{path}: unknown image format '{suffix}' (use .png, .svg or .pdf)")
    return suffix


def draws_path(model: GeneratedModule) -> bool:
    """True when the model has one or two scalar parameters: only then is the path drawn (so
    only then is it worth recording)."""
    shapes = [tuple(shape) for _, shape in model.PARAMS]
    return len(shapes) in (1, 2) and not any(shapes)


def _surface_kind(runs: Mapping[str, FitResult], model: GeneratedModule | None) -> int:
    """1 or 2 when the right panel can be drawn (scalar parameters, paths recorded), else 0."""
    if model is None or not runs or not draws_path(model):
        return 0
    if not all(r.history.path for r in runs.values()):
        return 0
    return len(model.PARAMS)


def _span(paths: Sequence[Any], axis_index: int) -> tuple[float, float]:
    values = np.concatenate([np.asarray(p)[:, axis_index] for p in paths])
    low, high = float(values.min()), float(values.max())
    margin = max(high - low, 1e-3 * max(1.0, abs(high))) * MARGIN
    return low - margin, high + margin


def _loss(model: GeneratedModule, params: Sequence[float], data: Sequence[np.ndarray]) -> float:
    return full_loss(model, np.asarray(params, dtype=np.float64), data)
