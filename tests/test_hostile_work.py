"""Inputs that pass every parse limit but ask for too much work: each ends with a result or a
clear error (exit 1), bounded in time and memory, never minutes of SymPy or gigabytes.

Every command runs as a real subprocess with a timeout (a hang guard, not a speed test) and an
address-space limit of 2 GiB.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from process_support import limit_address_space, run_symdiff_bounded

import symdiff
from symdiff.calculus.api import MAX_RESULT_NODES
from symdiff.explain.graph import MAX_TABLE_CELLS
from symdiff.explain.report import gradient_report
from symdiff.frontend.parse import parse


def run_bounded(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m symdiff ARGS`` in an empty folder, under the time and address-space limits."""
    return run_symdiff_bounded(*args, timeout=timeout)


def product(count: int, prefix: str = "x") -> str:
    return "*".join(f"{prefix}{i}" for i in range(count))


def one_line_error(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert words in result.stderr


def test_hessian_of_a_long_product_shares_one_budget() -> None:
    result = run_bounded("hessian", product(50))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hessian with respect to (x0, x1,")


@pytest.mark.parametrize("count", [1000, 700])
def test_a_gradient_too_large_to_print_is_refused(count: int) -> None:
    result = run_bounded("grad", product(count), "--no-simplify")
    one_line_error(result, 1, "too large to print")
    assert f"{MAX_RESULT_NODES:,}" in result.stderr


def test_a_gradient_just_under_the_bound_prints() -> None:
    result = run_bounded("grad", product(200), "--no-simplify")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 200


def test_a_jacobian_of_many_long_products_finishes() -> None:
    exprs = [f"{product(60)} + {i}" for i in range(30)]
    result = run_bounded("jacobian", *exprs)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("power", [30, 200, 2000])
def test_a_limit_derivation_never_expands_a_huge_power(power: int) -> None:
    result = run_bounded("steps", f"(x+1)**{power}", "--wrt", "x", "--method", "limit")
    assert result.returncode == 0, result.stderr
    assert f"Answer: f'(x) = {power}*(x + 1)**{power - 1}" in result.stdout
    assert "would write up to" in result.stdout


def test_a_small_power_is_still_expanded_in_full() -> None:
    result = run_bounded("steps", "(x+1)**3", "--wrt", "x", "--method", "limit")
    assert result.returncode == 0, result.stderr
    assert "expand the numerator" in result.stdout


def test_a_graph_with_too_many_table_cells_is_refused() -> None:
    exprs = [f"x**{i} + y" for i in range(1, 300)]
    result = run_bounded("graph", *exprs, "--wrt", "x", "--at", "x=1,y=2")
    one_line_error(result, 1, "cells")
    assert f"{MAX_TABLE_CELLS:,}" in result.stderr


def test_a_graph_under_the_bound_is_drawn() -> None:
    exprs = [f"x**{i} + y" for i in range(1, 6)]
    result = run_bounded("graph", *exprs, "--wrt", "x", "--at", "x=1,y=2")
    assert result.returncode == 0, result.stderr


def test_a_hessian_module_of_600_parameters_emits_no_zero_entries() -> None:
    names = [f"p{i}" for i in range(600)]
    loss = "+".join(f"{n}**2" for n in names)
    result = run_bounded("codegen", loss, "--params", ",".join(names), "--hessian")
    assert result.returncode == 0, result.stderr
    source = result.stdout
    assert len(source) < 1_000_000
    assert "hess = np.zeros((600, 600))" in source
    assert source.count("hess[") == 600  # the diagonal only: zero entries are not emitted


def test_text_output_builds_no_latex() -> None:
    variables = [parse(f"x{i}") for i in range(3)]
    expression = parse("x0*x1*x2")
    grad = symdiff.gradient(expression, variables)
    report = gradient_report(expression, variables, grad, None, None)
    report.render("text")
    assert "formula" not in report.__dict__ and "data" not in report.__dict__
    assert r"\frac" in report.render("latex")
    assert "formula" in report.__dict__


def test_deep_nesting_and_long_input_are_parse_errors_not_work() -> None:
    deep = "(" * 150 + "x" + ")" * 150
    result = run_bounded("diff", deep, "--wrt", "x")
    one_line_error(result, 2, "nested too deeply")
    long = "+".join(["x"] * 6000)
    result = run_bounded("diff", long, "--wrt", "x")
    one_line_error(result, 2, "too long")


def test_the_address_space_limit_is_real() -> None:
    """The guard itself: a child that allocates 3 GiB under the limit fails."""
    code = "bytearray(3 * 1024**3)"
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_address_space(),
        check=False,
    )
    assert completed.returncode != 0 and "MemoryError" in completed.stderr


def _sum(count: int, term: str) -> str:
    return "+".join(term.format(i=i) for i in range(count))


#: (command line, exit codes allowed): each must end quickly with a result or one clear line.
CARELESS = [
    (["diff", "sin(" * 90 + "x" + ")" * 90, "--wrt", "x"], {0}),
    (["diff", "x**x**x**x**x", "--wrt", "x", "--order", "3"], {0, 1}),
    (["diff", _sum(300, "x**{i}"), "--wrt", "x", "--order", "4"], {0}),
    (["diff", "sigmoid(sigmoid(sigmoid(x)))", "--wrt", "x", "--order", "8"], {0, 1}),
    (["diff", "exp(exp(exp(exp(x))))", "--wrt", "x", "--at", "x=10"], {0, 2}),
    (["diff", "log(x)", "--wrt", "x", "--at", "x=0"], {0, 2}),
    (["diff", "x**(9**9)", "--wrt", "x", "--at", "x=3"], {0}),
    (["grad", _sum(400, "p{i}**2")], {0}),
    (["grad", product(150), "--at", ",".join(f"x{i}=1" for i in range(150))], {0}),
    (["hessian", _sum(120, "p{i}**2")], {0}),
    (["hessian", product(40)], {0}),
    (["jacobian", *[_sum(40, "x{i}*y") for _ in range(40)]], {0}),
    (["steps", "tanh(v*tanh(u*tanh(w*x + b) + c) + d)", "--wrt", "w"], {0}),
    (["steps", _sum(200, "x**{i}"), "--wrt", "x"], {0}),
    (["steps", "(x+1)**60/(x-1)**60", "--wrt", "x", "--method", "limit"], {0}),
    (["steps", "sqrt(x)**100", "--wrt", "x", "--method", "limit"], {0}),
    (
        ["graph", product(200), "--wrt", "x0", "--at", ",".join(f"x{i}=2" for i in range(200))],
        {0, 1},
    ),
    (
        [
            "graph",
            *[f"x*{i + 1}" for i in range(120)],
            "--wrt",
            "x",
            "--at",
            "x=1",
            "--mode",
            "reverse",
        ],
        {0, 1},
    ),
    (["check", _sum(60, "sin(x)**{i}"), "--wrt", "x", "--answer", "cos(x)"], {0, 1}),
    (
        [
            "codegen",
            _sum(300, "(p{i}*x - y)**2"),
            "--params",
            ",".join(f"p{i}" for i in range(300)),
            "--data",
            "x,y",
        ],
        {0},
    ),
    (
        [
            "codegen",
            product(300, "p") + "*t",
            "--params",
            ",".join(f"p{i}" for i in range(300)),
            "--data",
            "t",
        ],
        {0},
    ),
    (["codegen", "erf(w*x)", "--params", "w", "--data", "x"], {0}),
    (["codegen", "sin(" * 80 + "w*x" + ")" * 80, "--params", "w", "--data", "x"], {0}),
    (
        ["grad", "sum(relu(" * 40 + "X @ w" + "))" * 40, "--shape", "X=n,3", "--shape", "w=3"],
        {0, 1, 2},
    ),
    (
        [
            "codegen",
            "mean(" + "tanh(" * 60 + "X @ w" + ")" * 60 + ")",
            "--shape",
            "X=n,3",
            "--shape",
            "w=3",
            "--params",
            "w",
        ],
        {0},
    ),
]


@pytest.mark.parametrize("args, codes", CARELESS, ids=[" ".join(a)[:40] for a, _ in CARELESS])
def test_careless_inputs_end_quickly_with_a_result_or_one_line(
    args: list[str], codes: set[int]
) -> None:
    result = run_bounded(*args)
    assert result.returncode in codes, result.stderr[-500:]
    assert "Traceback" not in result.stderr
    if result.returncode != 0 and result.stderr.strip():  # check's "incorrect" is a report
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-500:]
