"""High orders stay bounded: intermediate results are simplified, and a derivative that grows
past the node limit is refused quickly instead of running for minutes."""

from __future__ import annotations

import pytest
import sympy as sp
from process_support import run_symdiff

import symdiff
from symdiff.calculus.differentiate import MAX_NODES, exceeds_size
from symdiff.errors import InputError, SymdiffError
from symdiff.frontend.parse import make_symbol


def test_exploding_order_is_refused_with_exit_1() -> None:
    # how long the refusal takes is measured (not asserted) by benchmarks/bench_wall_clock.py
    result = run_symdiff("diff", "sigmoid(sigmoid(x))", "--wrt", "x", "--order", "12")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: the derivative grew past")
    assert result.stderr.count("\n") == 1


def test_moderate_orders_still_work_and_agree_with_sympy() -> None:
    x = make_symbol("x")
    ours = symdiff.derivative("sin(x)*exp(x)", "x", order=6)
    assert sp.simplify(ours - sp.diff(sp.sin(x) * sp.exp(x), x, 6)) == 0
    assert ours == -8 * sp.exp(x) * sp.cos(x)


def test_raw_higher_orders_match_sympy_too() -> None:
    x = make_symbol("x")
    ours = symdiff.derivative("x**7*log(x)", "x", order=4, simplify=False)
    assert sp.simplify(ours - sp.diff(x**7 * sp.log(x), x, 4)) == 0


def test_size_check_stops_counting_at_the_limit() -> None:
    x = make_symbol("x")
    small = sp.sin(x) + x**2
    assert not exceeds_size(small, 10)
    big = sp.Add(*[sp.Symbol(f"a{i}") * x**i for i in range(1, 200)])
    assert exceeds_size(big, 100)
    assert not exceeds_size(big, 10 * MAX_NODES)


def test_too_large_is_a_symdiff_error() -> None:
    with pytest.raises(SymdiffError, match="grew past"):
        symdiff.derivative("sigmoid(sigmoid(x))", "x", order=12, simplify=False)


def test_constant_has_nothing_to_differentiate() -> None:
    with pytest.raises(InputError, match="no variables"):
        symdiff.gradient("5")
