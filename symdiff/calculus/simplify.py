"""Simplification within a budget, as an ordered tuple of passes.

SymPy's ``simplify`` can run for minutes on modest expressions, so the expensive pass runs under
a budget: a watchdog thread measures the *calling thread's own CPU time* and, when the budget is
spent, raises :class:`BudgetExceeded` inside that thread (``PyThreadState_SetAsyncExc``, which
interrupts pure-Python code such as SymPy between two bytecodes). This works the same in the main
thread, a worker thread, a notebook kernel or a server; it changes no signal handler or timer;
and because it counts the thread's own CPU time, the same input and budget give the same result
when other threads compete for the processor. A pass that runs out of budget is skipped and the
best form found so far is kept; the cheap passes always run to the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sympy as sp

from ..errors import BudgetExceeded

#: Default budget, in seconds of the calling thread's CPU time, for simplifying one expression.
DEFAULT_BUDGET = 3.0
#: How often the watchdog looks at the thread's CPU time, in seconds.
POLL = 0.01
Pass = Callable[[sp.Expr], sp.Expr]


def _simplify_pass(expr: sp.Expr) -> sp.Expr:
    return sp.simplify(expr)


def _factor_terms_pass(expr: sp.Expr) -> sp.Expr:
    return sp.factor_terms(expr)


#: The passes, cheapest first, as (name, pass, cheap); each result competes on count_ops with
#: the best so far. Cheap passes run unbudgeted (they are polynomial in the expression's size).
PASSES: tuple[tuple[str, Pass, bool], ...] = (
    ("factor_terms", _factor_terms_pass, True),
    ("simplify", _simplify_pass, False),
)


def _cpu_clock(thread_id: int) -> Callable[[], float]:
    """A clock of ``thread_id``'s CPU time; wall time where the platform has no such clock."""
    try:
        clock = time.pthread_getcpuclockid(thread_id)
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return time.monotonic
    return lambda: time.clock_gettime(clock)


class _OutOfBudget(BaseException):
    """Raised inside a budgeted block: a BaseException, so SymPy's ``except Exception`` lets it
    through (as it does KeyboardInterrupt)."""


def _raise_in(thread_id: int, exception: type[BaseException] | None) -> None:
    """Schedule ``exception`` in the thread (None clears a scheduled one)."""
    target = ctypes.py_object(exception) if exception is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


_HOOK_LOCK = threading.Lock()
_HOOK_USERS = 0
_HOOK_SAVED: Callable[[Any], object] | None = None


def _drop_our_interrupt(unraisable: Any) -> None:
    """The interrupt can land in a garbage-collector or weakref callback, where Python reports
    it as "Exception ignored"; it is ours and the watchdog raises it again: drop the report."""
    if isinstance(unraisable.exc_value, _OutOfBudget):
        return
    if _HOOK_SAVED is not None:
        _HOOK_SAVED(unraisable)


@contextlib.contextmanager
def _quiet_interrupts() -> Iterator[None]:
    """Filter our interrupt out of ``sys.unraisablehook`` while any budget runs; restored exactly
    when the last one ends."""
    global _HOOK_USERS, _HOOK_SAVED
    with _HOOK_LOCK:
        if _HOOK_USERS == 0:
            _HOOK_SAVED = sys.unraisablehook
            sys.unraisablehook = _drop_our_interrupt
        _HOOK_USERS += 1
    try:
        yield
    finally:
        with _HOOK_LOCK:
            _HOOK_USERS -= 1
            if _HOOK_USERS == 0 and _HOOK_SAVED is not None:
                sys.unraisablehook = _HOOK_SAVED
                _HOOK_SAVED = None


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise BudgetExceeded inside the block once this thread has used ``seconds`` of CPU."""
    thread_id = threading.get_ident()
    clock = _cpu_clock(thread_id)
    deadline = clock() + seconds
    lock = threading.Lock()
    state = {"inside": True, "fired": False}
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(POLL):
            if clock() >= deadline:
                with lock:  # again at every poll, in case a bare ``except:`` swallowed it
                    if state["inside"]:
                        state["fired"] = True
                        _raise_in(thread_id, _OutOfBudget)

    watchdog = threading.Thread(target=watch, name="symdiff-budget", daemon=True)
    watchdog.start()
    try:
        yield
    except _OutOfBudget:
        raise BudgetExceeded(f"simplification used more than {seconds:g} s of CPU") from None
    finally:
        with lock:
            state["inside"] = False
            if state["fired"]:
                _raise_in(thread_id, None)  # not yet delivered: never let it escape the block
        finished.set()
        watchdog.join()


class Budget:
    """One budget shared by many simplifications (every entry of a gradient or Hessian): each
    spends the calling thread's CPU time it uses; once spent, only the cheap passes run."""

    def __init__(self, seconds: float = DEFAULT_BUDGET) -> None:
        self.left = seconds

    @contextlib.contextmanager
    def spending(self) -> Iterator[float]:
        """Yields what is left; charges the CPU time the block used."""
        started = time.thread_time()
        try:
            yield self.left
        finally:
            self.left -= time.thread_time() - started


def simplify_within(expr: sp.Expr, budget: float | Budget = DEFAULT_BUDGET) -> sp.Expr:
    """The simplest form of ``expr`` the passes reach within ``budget`` (never worse).

    ``budget`` is seconds of the calling thread's CPU time, or a shared :class:`Budget`.
    """
    if isinstance(budget, Budget):
        with budget.spending() as left:
            return simplify_within(expr, max(left, 0.0))
    best = expr
    best_ops = sp.count_ops(expr)
    for _name, run, cheap in PASSES:
        candidate = _run_pass(run, best, budget, cheap)
        if candidate is None:
            continue
        ops = sp.count_ops(candidate)
        if ops < best_ops or (ops == best_ops and len(str(candidate)) < len(str(best))):
            best, best_ops = candidate, ops
    return best


def _run_pass(run: Pass, expr: sp.Expr, budget: float, cheap: bool) -> sp.Expr | None:
    try:
        if cheap:
            return run(expr)
        if budget <= 0:
            return None
        with _quiet_interrupts(), time_budget(budget):
            return run(expr)
    except BudgetExceeded:
        return None
    except (RecursionError, MemoryError):
        return None
