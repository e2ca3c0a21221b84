"""Simplification within a time budget, as an ordered tuple of passes.

SymPy's ``simplify`` can run for minutes on modest expressions, so each pass runs under a
wall-clock budget (``signal.setitimer`` in the main thread). A pass that runs out of time is
skipped and the best form found so far is kept. The budget covers all passes together.
Off the main thread, where no timer can interrupt SymPy, only the cheap passes run (a small
expression can keep ``simplify`` busy for minutes, so "small" is no guarantee).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator

import sympy as sp

from ..errors import BudgetExceeded

#: Default wall-clock budget, in seconds, for simplifying one expression.
DEFAULT_BUDGET = 3.0
Pass = Callable[[sp.Expr], sp.Expr]


def _simplify_pass(expr: sp.Expr) -> sp.Expr:
    return sp.simplify(expr)


def _factor_terms_pass(expr: sp.Expr) -> sp.Expr:
    return sp.factor_terms(expr)


#: The passes, cheapest first, as (name, pass, cheap); each result competes on count_ops with
#: the best so far. Only cheap passes run where no timer can interrupt.
PASSES: tuple[tuple[str, Pass, bool], ...] = (
    ("factor_terms", _factor_terms_pass, True),
    ("simplify", _simplify_pass, False),
)


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[bool]:
    """Raise BudgetExceeded inside the block after ``seconds``; yields False if no timer works."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield False
        return

    def expire(signum: int, frame: object) -> None:
        raise BudgetExceeded(f"simplification took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    if 0 < outer_delay < seconds:  # a caller's own timer is due first: stop by then
        signal.setitimer(signal.ITIMER_REAL, outer_delay)
    started = time.monotonic()
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # re-arm the caller's timer with what is left of it
            left = max(outer_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def simplify_within(expr: sp.Expr, budget: float = DEFAULT_BUDGET) -> sp.Expr:
    """The simplest form of ``expr`` the passes reach within ``budget`` seconds (never worse)."""
    best = expr
    best_ops = sp.count_ops(expr)
    deadline = time.monotonic() + budget
    for _name, run, cheap in PASSES:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        candidate = _run_pass(run, best, left, cheap)
        if candidate is None:
            continue
        ops = sp.count_ops(candidate)
        if ops < best_ops or (ops == best_ops and len(str(candidate)) < len(str(best))):
            best, best_ops = candidate, ops
    return best


def _run_pass(run: Pass, expr: sp.Expr, budget: float, cheap: bool) -> sp.Expr | None:
    try:
        with time_budget(budget) as timed:
            if not timed and not cheap:
                return None
            return run(expr)
    except BudgetExceeded:
        return None
    except (RecursionError, MemoryError):
        return None
