"""The time budget of ``simplify_within`` really bounds SymPy's simplify, and
``simplify=False`` keeps the raw chain-rule form."""

from __future__ import annotations

import signal
import time

import sympy as sp
from derivative_oracles import assert_same_function, sample_points, sorted_symbols

import symdiff
from symdiff.calculus.differentiate import differentiate
from symdiff.calculus.simplify import PASSES, simplify_within
from symdiff.frontend.parse import make_symbol, parse

#: d/dw of a three-layer tanh network: sympy.simplify needs about 30 s on it (measured once
#: while writing this test); symdiff must give up on that pass after the budget.
SLOW_TEXT = "tanh(v*tanh(u*tanh(w*x + b) + c) + d)"


def _slow_derivative() -> sp.Expr:
    return differentiate(parse(SLOW_TEXT), make_symbol("w")).result


def test_budget_bounds_a_pathological_simplify() -> None:
    # how long this takes (against ~30 s unbounded) is measured by benchmarks/bench_wall_clock.py
    raw = _slow_derivative()
    result = simplify_within(raw, budget=0.5)
    assert sp.count_ops(result) <= sp.count_ops(raw)
    points = sample_points(sorted_symbols(raw), {}, (-1.5, 1.5), 3, SLOW_TEXT)
    assert_same_function(result, raw, points, "budgeted simplify")


def test_budget_leaves_no_timer_or_handler_behind() -> None:
    before = signal.getsignal(signal.SIGALRM)
    simplify_within(_slow_derivative(), budget=0.2)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_derive_passes_its_budget_on(monkeypatch) -> None:
    import symdiff.calculus.api as api

    budgets: list[float] = []

    def recording(expr: sp.Expr, budget: float = -1.0) -> sp.Expr:
        budgets.append(budget)
        return simplify_within(expr, budget)

    monkeypatch.setattr(api, "simplify_within", recording)
    derivation = symdiff.derive(SLOW_TEXT, "w", budget=0.3)
    assert budgets and budgets[-1] == 0.3  # the final simplify gets the caller's budget
    assert all(0 < budget <= 0.3 for budget in budgets)
    points = sample_points(sorted_symbols(derivation.raw), {}, (-1.5, 1.5), 2, "derive")
    assert_same_function(derivation.result, derivation.raw, points, "derive")


def test_simplify_never_makes_things_worse_and_does_simplify() -> None:
    x = make_symbol("x")
    assert simplify_within(sp.sin(x) ** 2 + sp.cos(x) ** 2) == 1
    assert simplify_within(2 * x * (x + 1) - 2 * x**2) == 2 * x
    already = sp.exp(x) * sp.sin(x)
    assert simplify_within(already) == already


def test_no_simplify_keeps_the_raw_chain_rule_form() -> None:
    text = "(x**2 + 1)**2 - x**4"
    x = make_symbol("x")
    raw = symdiff.derivative(text, "x", simplify=False)
    assert raw == differentiate(parse(text), x).result
    assert str(raw) == "-4*x**3 + 2*x*(2*x**2 + 2)"  # 2*u*u' with u = x**2 + 1, unexpanded
    assert symdiff.derivative(text, "x") == 4 * x
    assert symdiff.gradient("sigmoid(w*x)", "w", simplify=False) == [
        differentiate(parse("sigmoid(w*x)"), make_symbol("w")).result
    ]
    hessian = symdiff.hessian("x**2*y", simplify=False)
    assert hessian[0, 0] == 2 * make_symbol("y")


def test_derivation_records_raw_and_result() -> None:
    derivation = symdiff.derive("log(exp(x))", "x")
    assert derivation.raw == differentiate(parse("log(exp(x))"), make_symbol("x")).result
    assert derivation.result == 1
    assert derivation.steps[0].result == derivation.raw


def test_a_callers_own_timer_survives_a_budgeted_simplify() -> None:
    """The caller's 100 s timer runs on through the call: afterwards it has 100 s less the time
    since it was armed, give or take the bookkeeping (neither restarted nor cut short), however
    long the call took (two clocks compared, no bound on the call's own duration)."""
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        before_arming = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        after_arming = time.monotonic()
        simplify_within(_slow_derivative(), budget=0.2)
        before_reading = time.monotonic()
        remaining, _interval = signal.getitimer(signal.ITIMER_REAL)
        after_reading = time.monotonic()
        assert remaining >= 100.0 - (after_reading - before_arming) - 1e-3  # not cut short
        assert remaining <= 100.0 - (before_reading - after_arming) + 0.1  # not restarted
        assert fired == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_off_the_main_thread_only_cheap_passes_run(monkeypatch) -> None:
    """No timer can interrupt SymPy in a worker thread, so the slow pass must not start there."""
    import threading

    import symdiff.calculus.simplify as simplify_module

    started: list[str] = []

    def recorded(name: str, run):
        def wrapper(expr: sp.Expr) -> sp.Expr:
            started.append(name)
            return run(expr)

        return wrapper

    passes = tuple((name, recorded(name, run), cheap) for name, run, cheap in PASSES)
    monkeypatch.setattr(simplify_module, "PASSES", passes)
    raw = _slow_derivative()
    results: list[sp.Expr] = []
    worker = threading.Thread(target=lambda: results.append(simplify_within(raw, budget=60)))
    worker.start()
    worker.join(timeout=30)  # bounds a hang only; the time it takes is in bench_wall_clock.py
    assert not worker.is_alive(), "simplify ran unbounded off the main thread"
    assert started == [name for name, _run, cheap in PASSES if cheap]
    assert "simplify" not in started
    assert sp.count_ops(results[0]) <= sp.count_ops(raw)


def test_the_budget_covers_all_passes_together(monkeypatch) -> None:
    """Two passes that would each take 2 s share one budget of 0.5 s (not 0.5 s each): the
    timers the passes run under add up to at most 0.5 s, and neither pass runs to its end."""
    import symdiff.calculus.simplify as simplify_module

    finished: list[str] = []
    granted: list[float] = []
    real_time_budget = simplify_module.time_budget

    def recording_time_budget(seconds: float):
        granted.append(seconds)
        return real_time_budget(seconds)

    def slow(name: str):
        def run(expr: sp.Expr) -> sp.Expr:
            time.sleep(2)  # interrupted by the budget's timer
            finished.append(name)
            return expr

        return run

    passes = (("slow1", slow("slow1"), True), ("slow2", slow("slow2"), True))
    monkeypatch.setattr(simplify_module, "PASSES", passes)
    monkeypatch.setattr(simplify_module, "time_budget", recording_time_budget)
    x = make_symbol("x")
    assert simplify_within(x + 1, budget=0.5) == x + 1
    assert finished == []
    assert granted and 0 < granted[0] <= 0.5
    assert sum(granted) <= 0.5
