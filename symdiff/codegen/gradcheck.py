"""Gradient check: a generated module's gradient against central finite differences.

At random points (parameters and, unless given, data drawn from a seeded normal distribution)
each partial derivative is compared with

    fd_k = (L(p + h e_k) - L(p - h e_k)) / (2 h),   h = step * max(1, |p_k|)

and the error of component k is ``|g_k - fd_k| / max(1, |g_k|, |fd_k|)``: relative for large
gradients, absolute for small ones (where finite differences carry absolute noise). The check
passes when the largest error is at most ``tolerance``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["GradcheckResult", "gradcheck", "load_module"]

#: Default finite-difference step: the cube root of machine epsilon suits central differences.
DEFAULT_STEP = float(np.finfo(np.float64).eps ** (1 / 3))
#: Draws allowed per point until the loss and gradient are finite there.
MAX_DRAWS = 20
#: Parameters checked at most (each costs two loss evaluations per point); ``max_params`` of
#: ``gradcheck`` changes it.
MAX_PARAMS = 100_000

_loaded = itertools.count()


@dataclass(frozen=True)
class GradcheckResult:
    """Outcome of a gradient check: the worst error, where it occurred, and the verdict."""

    max_error: float
    worst_param: str
    points: int
    params: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(self.max_error <= self.tolerance)

    def summary(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"max relative error {self.max_error:.3g} (at {self.worst_param}) over "
            f"{self.points} points x {self.params} parameters, tolerance {self.tolerance:g}: "
            f"{verdict}"
        )


class _NoBytecodeLoader(importlib.machinery.SourceFileLoader):
    """Loads a source file without writing ``__pycache__/*.pyc`` next to it."""

    def set_data(self, path: str, data: Any, *, _mode: int = 0o666) -> None:
        """Called only to cache bytecode: write nothing."""


def load_module(path: str | Path) -> ModuleType:
    """Import a generated module from its file (the user's own file, run like ``python FILE``).

    Nothing is written next to it: no ``__pycache__`` folder, no ``.pyc`` file, whether the
    module is accepted or not.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    name = f"_symdiff_checked_{next(_loaded)}"
    spec = importlib.util.spec_from_file_location(
        name, path, loader=_NoBytecodeLoader(name, str(path))
    )
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise InputError(f"{path}: not valid Python (line {exc.lineno})") from None
    return module


def _interface(model: Any) -> Any:
    if isinstance(model, (str, Path)):
        model = load_module(model)
    missing = [n for n in ("PARAMS", "DATA", "loss", "grad") if not hasattr(model, n)]
    if missing:
        raise InputError(f"not a symdiff generated module: it has no {', '.join(missing)}")
    return model


@dataclass(frozen=True)
class _Layout:
    """The flat parameter vector's layout: (name, shape, size) in PARAMS order. Labels such as
    ``W[1, 2]`` are made for one index when needed, never for every parameter."""

    entries: tuple[tuple[str, tuple[int, ...], int], ...]

    @property
    def size(self) -> int:
        return sum(size for _, _, size in self.entries)

    def label(self, index: int) -> str:
        for name, shape, size in self.entries:
            if index < size:
                if shape == ():
                    return name
                position = np.unravel_index(index, shape)
                return f"{name}[{', '.join(str(int(i)) for i in position)}]"
            index -= size
        return "-"


def _layout(params: object, max_params: int) -> _Layout:
    """PARAMS checked ((name, shape) pairs, shapes of non-negative whole numbers) and counted;
    more than ``max_params`` parameters are refused before anything is allocated."""
    bad = InputError(
        "not a symdiff generated module: PARAMS must be (name, shape) pairs, "
        "a shape a tuple of whole numbers"
    )
    if not isinstance(params, (tuple, list)):
        raise bad
    entries = []
    for pair in params:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise bad
        name, shape = pair
        if not isinstance(name, str) or not isinstance(shape, (tuple, list)):
            raise bad
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise bad
        entries.append((name, tuple(shape), math.prod(shape)))
    layout = _Layout(tuple(entries))
    if layout.size > max_params:
        raise InputError(
            f"the module has {layout.size:,} parameters, more than the limit of {max_params:,} "
            "for a gradient check (two loss evaluations per parameter and point)"
        )
    return layout


def gradcheck(
    model: Any,
    data: Sequence[object] | None = None,
    *,
    points: int = 3,
    samples: int = 16,
    seed: int = 0,
    scale: float = 1.0,
    step: float = DEFAULT_STEP,
    tolerance: float = 1e-5,
    max_params: int = MAX_PARAMS,
) -> GradcheckResult:
    """Compare ``model.grad`` with central differences of ``model.loss`` at random points.

    ``model`` is a module object (e.g. from ``symdiff.compile``) or the path of a generated file.
    ``data`` are the data arrays (DATA order); by default ``samples`` standard-normal values
    each. Parameters are drawn as ``scale`` times standard normals. A module with more than
    ``max_params`` parameters is refused (an InputError) before anything is allocated.
    """
    module = _interface(model)
    if points < 1 or samples < 1:
        raise InputError("points and samples must be at least 1")
    layout = _layout(module.PARAMS, max_params)
    rng = np.random.default_rng(seed)
    worst, worst_index = 0.0, 0
    for _ in range(points):
        params, arrays = _finite_point(module, data, layout.size, samples, scale, rng)
        gradient = np.asarray(module.grad(params, *arrays), dtype=np.float64)
        for k in range(layout.size):
            h = step * max(1.0, abs(params[k]))
            up, down = params.copy(), params.copy()
            up[k] += h
            down[k] -= h
            estimate = (module.loss(up, *arrays) - module.loss(down, *arrays)) / (2 * h)
            error = abs(gradient[k] - estimate) / max(1.0, abs(gradient[k]), abs(estimate))
            if not np.isfinite(error) or error > worst:
                worst, worst_index = (float(error) if np.isfinite(error) else np.inf), k
    return GradcheckResult(worst, layout.label(worst_index), points, layout.size, tolerance)


def _finite_point(
    module: Any,
    data: Sequence[object] | None,
    size: int,
    samples: int,
    scale: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple]:
    """Parameters (and data) where loss and gradient are finite."""
    for _ in range(MAX_DRAWS):
        params = scale * rng.standard_normal(size)
        arrays: tuple[object, ...]
        if data is None:  # tensor modules declare DATA_SHAPES; str dimensions get `samples`
            shapes = dict(getattr(module, "DATA_SHAPES", ()))
            drawn = tuple(
                rng.standard_normal(
                    [samples if isinstance(d, str) else d for d in shapes.get(name, ("n",))]
                )
                for name in module.DATA
            )
            arrays = tuple(  # cross-entropy targets: rows of probabilities
                np.abs(a) / np.sum(np.abs(a), axis=-1, keepdims=True)
                if name in getattr(module, "TARGETS", ())
                else a
                for name, a in zip(module.DATA, drawn, strict=True)
            )
        else:
            arrays = tuple(data)
        with np.errstate(all="ignore"):
            value = module.loss(params, *arrays)
            gradient = np.asarray(module.grad(params, *arrays))
        if np.isfinite(value) and np.all(np.isfinite(gradient)):
            return params, arrays
    raise InputError(
        f"the loss is not finite at {MAX_DRAWS} random points; pass data or a smaller --scale"
    )
