"""Shared helpers of the benchmark scripts: one BLAS thread, interleaved median timing, checks of
every result against its reference, and the printed tables.

Import this module before NumPy (``import harness`` first in a script run as
``python benchmarks/SCRIPT.py``): it sets the thread counts of OpenBLAS, OpenMP, MKL and XLA
before any of them is loaded. Set ``OPENBLAS_NUM_THREADS`` (etc.) yourself to measure threaded.
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` change OpenBLAS's kernel choice; run benchmarks with
them unset (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/...``); the header
says whether they were.

Timing rules (the same in every script): each candidate and its reference are timed in the same
run, round-robin (A, B, C, A, B, C, ...) after one warm-up call each, so that load from other
processes hits all of them alike; a time is the median of the rounds, and a ratio is the median of
the per-round ratios. A wrong result is a ``FAIL`` line and makes the script exit 1; a missed
target is ``MISS`` (the script still exits 0: it measured what it was asked to).
"""

from __future__ import annotations

import os

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_variable, THREADS)
# XLA's CPU backend runs Eigen on a thread pool of its own; one thread, like the BLAS.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

FAILURES: list[str] = []


# --------------------------------------------------------------------------- environment


def blas_description() -> list[str]:
    """One line per thread pool loaded in this process (BLAS kernel, threads), by threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS kernel unknown"]
    lines = []
    for pool in threadpool_info():
        version = f" {pool['version']}" if pool.get("version") else ""
        kernel = f" kernel {pool['architecture']}," if pool.get("architecture") else ","
        lines.append(
            f"{pool.get('user_api')}: {pool.get('internal_api')}{version}{kernel} "
            f"{pool.get('num_threads')} thread(s) [{os.path.basename(pool.get('filepath', ''))}]"
        )
    return lines or ["no BLAS / OpenMP thread pool loaded"]


def print_header(title: str) -> None:
    """What was measured: machine, versions, BLAS kernel and thread counts, relevant variables."""
    import symdiff

    print(f"== {title}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"symdiff {symdiff.__version__} ({os.path.dirname(symdiff.__file__)}), "
        f"{os.cpu_count()} CPU(s), {platform.machine()}"
    )
    for line in blas_description():
        print(f"  {line}")
    shown = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    print("  " + ", ".join(f"{name}={os.environ.get(name, '<unset>')}" for name in shown))
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(f"  WARNING: {name} is set; run with `env -u {name}` for comparable numbers")


def torch_module():
    """PyTorch with one intra-op thread (as the BLAS), or None when not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(THREADS))
    return torch


def jax_modules():
    """(jax, jax.numpy) in float64, or None when not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax, jnp


def framework_versions(torch: bool = True, jax: bool = True) -> str:
    """Versions and thread settings of the frameworks asked for (importing them)."""
    parts = []
    if torch:
        module = torch_module()
        parts.append(
            f"torch {module.__version__}, {module.get_num_threads()} thread(s)"
            if module
            else "torch: not installed"
        )
    if jax:
        modules = jax_modules()
        if modules:
            device = modules[0].devices()[0].platform
            flags = os.environ.get("XLA_FLAGS", "")
            parts.append(f"jax {modules[0].__version__} on {device}, XLA_FLAGS={flags}")
        else:
            parts.append("jax: not installed")
    return "; ".join(parts)


# --------------------------------------------------------------------------- timing


def interleaved(
    functions: Mapping[str, Callable[[], object]], repeat: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds of each of ``repeat`` calls per function, taken round-robin after ``warmup``
    calls each (which also JIT-compile what needs it)."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times: dict[str, list[float]] = {label: [] for label in functions}
    for _ in range(repeat):
        for label, function in functions.items():
            start = time.perf_counter()
            function()
            times[label].append(time.perf_counter() - start)
    return times


def median(times: Sequence[float]) -> float:
    return statistics.median(times)


def ratio(times: Sequence[float], reference: Sequence[float]) -> float:
    """Median of the per-round ratios (the rounds were interleaved)."""
    return statistics.median(t / r for t, r in zip(times, reference, strict=True))


# --------------------------------------------------------------------------- checks


def fail(message: str) -> None:
    FAILURES.append(message)
    print(f"FAIL: {message}", flush=True)


def attempt(what: str, function: Callable[[], object]) -> object | None:
    """``function()``, or None after a FAIL line quoting the exception (symdiff's own errors are
    recorded, not raised, so the other cases still run)."""
    try:
        return function()
    except Exception as error:  # noqa: BLE001 - any error is a result to report
        last = traceback.extract_tb(error.__traceback__)[-1]
        fail(
            f"{what} raised {type(error).__module__}.{type(error).__name__}: {error} "
            f"(at {os.path.basename(last.filename)}:{last.lineno})"
        )
        return None


def as_flat(gradient: object, order: Sequence[str] | None = None) -> np.ndarray:
    """A gradient (flat array, dict name -> array, or sequence) as one flat float64 array."""
    if isinstance(gradient, Mapping):
        keys = order if order is not None else list(gradient)
        return np.concatenate([np.ravel(np.asarray(gradient[k], dtype=float)) for k in keys])
    if isinstance(gradient, (list, tuple)):
        return np.concatenate([np.ravel(np.asarray(g, dtype=float)) for g in gradient])
    return np.ravel(np.asarray(gradient, dtype=float))


def check(
    label: str,
    result: tuple[object, object],
    reference: tuple[object, object],
    *,
    order: Sequence[str] | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-12,
) -> bool:
    """``(loss, gradient)`` against the reference's by np.allclose; a FAIL line if they differ."""
    loss, grad = result
    want_loss, want_grad = reference
    ok = bool(np.allclose(float(loss), float(want_loss), rtol=rtol, atol=atol))
    if not ok:
        fail(f"{label}: loss {float(loss)!r} != reference {float(want_loss)!r}")
    if grad is None or want_grad is None:
        return ok
    got, want = as_flat(grad, order), as_flat(want_grad, order)
    if got.shape != want.shape:
        fail(f"{label}: gradient has {got.size} numbers, reference {want.size}")
        return False
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        worst = int(np.argmax(np.abs(got - want) - rtol * np.abs(want)))
        fail(
            f"{label}: gradient differs from the reference "
            f"(element {worst}: {got[worst]!r} vs {want[worst]!r})"
        )
        return False
    return ok


def admit(
    candidates: dict[str, Callable[[], object]],
    label: str,
    call: Callable[[], object],
    reference: tuple[object, object],
    **options: Any,
) -> bool:
    """Run ``call`` once; add it to ``candidates`` (to be timed) only when it runs and its
    ``(loss, gradient)`` agrees with ``reference`` (``check``'s options)."""
    result = attempt(label, call)
    if result is None or not check(label, result, reference, **options):  # type: ignore[arg-type]
        return False
    candidates[label] = call
    return True


# --------------------------------------------------------------------------- output


def ratio_rows(
    times: Mapping[str, Sequence[float]], base: str, targets: Mapping[str, float] | None = None
) -> list[tuple[str, str, str, str, str]]:
    """``table`` rows: each function's median and its median per-round ratio to ``base``,
    with its target ratio (if any) and whether it met it."""
    rows = []
    for label, seconds in times.items():
        r = ratio(seconds, times[base])
        target = (targets or {}).get(label)
        rows.append(
            (
                label,
                ms(median(seconds)),
                f"{r:.2f}x",
                f"<= {target:g}x" if target else "",
                verdict(r, target),
            )
        )
    return rows


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "ok" if value <= target else "MISS"


def table(title: str, rows: Sequence[tuple[str, str, str, str, str]]) -> None:
    """Rows of (label, measured, ratio, target, verdict), printed aligned under ``title``."""
    header = ("", "measured", "ratio", "target", "")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(5)]
    print(title)
    for row in (header, *rows):
        right = zip(row[1:4], widths[1:4], strict=True)
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{cell:>{width}}" for cell, width in right]
        print(("  " + "  ".join(cells) + f"  {row[4]}").rstrip())


def ms(seconds: float) -> str:
    """A time in ms, or in us below a millisecond."""
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"


def finish() -> None:
    """Exit 1 when any result was wrong or any call raised, else 0."""
    if FAILURES:
        print(f"{len(FAILURES)} FAIL(s): {'; '.join(FAILURES)}")
        sys.exit(1)
    print("all results agree with their references")
