"""The time budget of ``simplify_within`` really bounds SymPy's simplify, and
``simplify=False`` keeps the raw chain-rule form."""

from __future__ import annotations

import signal
import sys
import threading

import sympy as sp
from derivative_oracles import assert_same_function, sample_points, sorted_symbols

import symdiff
from symdiff.calculus.differentiate import differentiate
from symdiff.calculus.simplify import simplify_within
from symdiff.frontend.parse import make_symbol, parse

#: d/dw of a three-layer tanh network: sympy.simplify needs about 30 s on it (measured once
#: while writing this test); symdiff must give up on that pass after the budget.
SLOW_TEXT = "tanh(v*tanh(u*tanh(w*x + b) + c) + d)"


def _slow_derivative() -> sp.Expr:
    return differentiate(parse(SLOW_TEXT), make_symbol("w")).result


def _in_a_thread(function, limit: float = 120.0):  # type: ignore[no-untyped-def]
    """Run ``function`` in a worker thread; fail (instead of hanging) if it never returns."""
    results: list = []
    worker = threading.Thread(target=lambda: results.append(function()), daemon=True)
    worker.start()
    worker.join(timeout=limit)
    assert not worker.is_alive(), "the budget did not stop the pass"
    return results[0]


def test_budget_bounds_a_pathological_simplify() -> None:
    raw = _slow_derivative()
    result = _in_a_thread(lambda: simplify_within(raw, budget=0.5))
    assert sp.count_ops(result) <= sp.count_ops(raw)
    points = sample_points(sorted_symbols(raw), {}, (-1.5, 1.5), 3, SLOW_TEXT)
    assert_same_function(result, raw, points, "budgeted simplify")


def test_a_pass_that_never_ends_is_stopped_and_the_cheap_result_kept(monkeypatch) -> None:
    import symdiff.calculus.simplify as simplify_module

    def forever(expr: sp.Expr) -> sp.Expr:
        while True:  # pure Python, like SymPy: the budget interrupts it between bytecodes
            pass

    passes = (("factor_terms", sp.factor_terms, True), ("forever", forever, False))
    monkeypatch.setattr(simplify_module, "PASSES", passes)
    x = make_symbol("x")
    expr = 2 * x + 2 * x**2
    result = _in_a_thread(lambda: simplify_within(expr, budget=0.2))
    assert result == sp.factor_terms(expr)


def test_budget_leaves_no_timer_handler_or_thread_behind() -> None:
    before = signal.getsignal(signal.SIGALRM)
    hook = sys.unraisablehook
    simplify_within(_slow_derivative(), budget=0.2)
    assert sys.unraisablehook is hook
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before
    assert not [t for t in threading.enumerate() if t.name == "symdiff-budget"]


def test_the_interrupt_never_escapes_the_budgeted_block() -> None:
    """Many short budgets, some ending just as the pass finishes: no stray exception."""
    x, y = make_symbol("x"), make_symbol("y")
    expr = sp.sin(x + y) ** 2 + sp.cos(x + y) ** 2 + sp.exp(x) * sp.exp(-x)
    for budget in [0.001, 0.003, 0.01, 0.03] * 5:
        result = simplify_within(expr, budget=budget)
        assert sp.count_ops(result) <= sp.count_ops(expr)
    assert simplify_within(expr, budget=5) == 2


def test_derive_passes_its_budget_on() -> None:
    derivation = _in_a_thread(lambda: symdiff.derive(SLOW_TEXT, "w", budget=0.3))
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
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        simplify_within(_slow_derivative(), budget=0.2)
        remaining, _interval = signal.getitimer(signal.ITIMER_REAL)
        assert 80.0 < remaining <= 100.0
        assert fired == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_four_threads_give_what_one_gives_even_past_the_budget() -> None:
    """The budget counts each thread's own CPU time, so competing threads change nothing."""
    cases = [(SLOW_TEXT, "w", 0.3), ("sin(x)**2*cos(x) + sin(x)**3", "x", 3.0)]
    alone = [str(symdiff.derive(text, wrt, budget=budget).result) for text, wrt, budget in cases]
    results: list[list[str]] = []

    def run() -> None:
        results.append(
            [str(symdiff.derive(text, wrt, budget=budget).result) for text, wrt, budget in cases]
        )

    workers = [threading.Thread(target=run, daemon=True) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert len(results) == 4
    assert all(result == alone for result in results)
