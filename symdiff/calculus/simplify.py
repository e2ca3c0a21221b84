"""Simplification within a budget, as an ordered tuple of passes.

SymPy's ``simplify`` can run for minutes on modest expressions, so the expensive pass runs under
a budget: a watchdog thread measures the *calling thread's own CPU time* and, when the budget is
spent, raises :class:`BudgetExceeded` inside that thread (``PyThreadState_SetAsyncExc``, which
interrupts pure-Python code such as SymPy between two bytecodes). This works the same in the main
thread, a worker thread, a notebook kernel or a server; it changes no signal handler or timer;
and because it counts the thread's own CPU time, the same input and budget give the same result
when other threads compete for the processor. A pass that runs out of budget is skipped and the
best form found so far is kept; the cheap passes always run to the end.

Which form is printed is a rule (README, "Design decisions"): the candidates are the chain-rule
result and what each pass makes of the best form so far; a candidate that uses a function the
chain-rule result does not use is rejected (``1/cosh(x)**2`` for ``1 - tanh(x)**2``), except the
ML forms of :data:`ML_FORMS` (``sigmoid(u)`` for ``1/(1 + exp(-u))``); of the rest the one with
the fewest operations wins, then the shortest text.
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
from ..functions import sigmoid
from ..text import formula

#: Default budget, in seconds of the calling thread's CPU time, for simplifying one expression.
DEFAULT_BUDGET = 3.0
#: How often the watchdog looks at the thread's CPU time, in seconds.
POLL = 0.01
Pass = Callable[[sp.Expr], sp.Expr]


def _simplify_pass(expr: sp.Expr) -> sp.Expr:
    return sp.simplify(expr)


def _factor_terms_pass(expr: sp.Expr) -> sp.Expr:
    return sp.factor_terms(expr)


def _sigmoid_arguments(expr: sp.Expr) -> set[sp.Expr]:
    """The u of every ``1/(1 + exp(-u))`` (a power of ``1 + exp(-u)`` with a negative exponent)."""
    found: set[sp.Expr] = set()
    for power in expr.atoms(sp.Pow):
        base = power.base
        if power.exp.is_negative and isinstance(base, sp.Add) and len(base.args) == 2:
            one, other = sorted(base.args, key=lambda a: a != 1)
            if one == 1 and isinstance(other, sp.exp):
                found.add(-other.args[0])
    return found


def _ml_factored(expr: sp.Expr) -> sp.Expr:
    """``expr`` factored, each factor with a negative constant term turned round
    (``-(s - 1)*s`` -> ``(1 - s)*s``, as an ML text writes ``σ(1 - σ)``)."""
    numerator, denominator = sp.fraction(sp.cancel(expr))
    coefficient, factors = sp.factor_list(numerator)
    pieces: list[sp.Expr] = []
    for base, power in factors:
        if isinstance(base, sp.Add) and base.as_coeff_Add()[0] < 0:
            base = sp.expand(-base)
            coefficient = coefficient * (-1) ** power
        pieces.append(base**power)
    return sp.Mul(coefficient, *pieces) / denominator


def _sigmoid_pass(expr: sp.Expr) -> sp.Expr:
    """Write ``exp(-u)`` as ``(1 - σ(u))/σ(u)`` where ``1/(1 + exp(-u))`` occurs, when that
    leaves a polynomial in σ (``exp(-x)/(1 + exp(-x))**2`` -> ``(1 - σ(x))*σ(x)``); σ(-v)
    is written ``1 - σ(v)``, so ``exp(x)/(1 + exp(x))`` becomes ``σ(x)``."""
    arguments = _sigmoid_arguments(expr)
    if not arguments:
        return expr
    replacements: dict[sp.Expr, sp.Expr] = {}
    used: list[sp.Expr] = []
    for u in arguments:
        if u.could_extract_minus_sign():
            used.append(sigmoid(-u))
            s = 1 - used[-1]
        else:
            used.append(sigmoid(u))
            s = used[-1]
        for power in expr.atoms(sp.exp):
            k = sp.cancel(power.args[0] / -u)
            if k.is_Integer:  # exp(-k*u) = ((1 - σ(u))/σ(u))**k
                replacements[power] = ((1 - s) / s) ** k
    rewritten = sp.cancel(expr.xreplace(replacements))
    _, denominator = sp.fraction(rewritten)
    if rewritten.has(sp.exp) or any(denominator.has(s) for s in used):
        return expr
    return _ml_factored(rewritten)


#: The passes, cheapest first, as (name, pass, cheap); each result competes with the best so
#: far by :func:`_better`. Cheap passes run unbudgeted (polynomial in the expression's size).
PASSES: tuple[tuple[str, Pass, bool], ...] = (
    ("sigmoid", _sigmoid_pass, False),
    ("factor_terms", _factor_terms_pass, True),
    ("simplify", _simplify_pass, False),
)

#: ML forms: a function a candidate may use although the chain-rule result does not, and the
#: function the chain-rule result must use instead (σ(u) = 1/(1 + exp(-u))).
ML_FORMS: dict[type[sp.Basic], type[sp.Basic]] = {sigmoid: sp.exp}


def _functions(expr: sp.Expr) -> set[type[sp.Basic]]:
    """The function classes ``expr`` uses (exp, cosh, sigmoid, ...)."""
    return {type(f) for f in expr.atoms(sp.Function)}


def admissible(candidate: sp.Expr, raw: sp.Expr) -> bool:
    """Whether ``candidate`` uses only functions of ``raw`` (or the ML forms of :data:`ML_FORMS`
    whose source function ``raw`` uses)."""
    allowed = _functions(raw)
    allowed |= {form for form, source in ML_FORMS.items() if source in allowed}
    return _functions(candidate) <= allowed


def _better(candidate: sp.Expr, best: sp.Expr) -> bool:
    """Fewer operations, then shorter text."""
    ops, best_ops = sp.count_ops(candidate), sp.count_ops(best)
    return ops < best_ops or (ops == best_ops and len(formula(candidate)) < len(formula(best)))


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
    started = time.thread_time()
    for _name, run, cheap in PASSES:
        left = budget - (time.thread_time() - started)
        candidate = _run_pass(run, best, left, cheap)
        if candidate is not None and admissible(candidate, expr) and _better(candidate, best):
            best = candidate
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
