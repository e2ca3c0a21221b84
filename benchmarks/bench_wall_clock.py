"""Wall-clock times that the unit tests used to assert, measured here instead (never asserted).

Run (about 15 s on 2 cores; ``--quick`` runs each row once and skips the digits network):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_wall_clock.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_wall_clock.py --quick
    options: --repeat 3

A wall-clock bound in a unit test fails on a slow or busy machine and says nothing on a fast
one, so the tests keep only the functional facts (the result is right, the budget is handed on,
the budget stops the slow pass in any thread, ...) and this script prints the times. Each row is
the median of ``--repeat`` runs; "target" is the bound the test used to assert, and a row over
it is ``MISS`` (the script still exits 0). A wrong result is a ``FAIL`` line and exit 1.

Rows:

* ``simplify_within`` of d/dw of a three-layer tanh network (unbounded ``sympy.simplify`` needs
  about 30 s on it) with a budget of 0.5 s, and ``symdiff.derive`` of it with 0.3 s;
* the same ``simplify_within`` with a budget of 0.5 s in a worker thread (the budget works the
  same off the main thread);
* a gradient of eight entries sharing one budget of 0.5 s;
* ``symdiff diff sigmoid(sigmoid(x)) --wrt x --order 12`` in a subprocess, refused with exit 1;
* the slowest of a few hostile parser inputs (huge numbers, deep nesting, overlong text);
* ``examples/digits_mlp.py``: compiling and training the two-layer digits network, 30 epochs.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sympy as sp

import symdiff
from symdiff.calculus.differentiate import differentiate
from symdiff.calculus.simplify import PASSES, simplify_within
from symdiff.errors import ParseError
from symdiff.frontend.parse import MAX_DEPTH, MAX_LENGTH, make_symbol, parse

ROOT = Path(__file__).resolve().parents[1]
SLOW_TEXT = "tanh(v*tanh(u*tanh(w*x + b) + c) + d)"
HOSTILE = [
    "9**9**9",
    "2**10**10",
    "9.0**9.0**9.0**9.0",
    "10**9999*10**9999",
    "(" * 100_000 + "x" + ")" * 100_000,
    "(" * (MAX_DEPTH + 100) + "x" + ")" * (MAX_DEPTH + 100),
    "x**" * 1000 + "x",
    "sin(" * 1000 + "x" + ")" * 1000,
    "1" * 5000,
    "x" * (MAX_LENGTH + 1),
]


def timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def slow_derivative() -> sp.Expr:
    return differentiate(parse(SLOW_TEXT), make_symbol("w")).result


def budgeted_simplify() -> bool:
    raw = slow_derivative()
    return sp.count_ops(simplify_within(raw, budget=0.5)) <= sp.count_ops(raw)


def budgeted_derive() -> bool:
    derivation = symdiff.derive(SLOW_TEXT, "w", budget=0.3)
    return sp.count_ops(derivation.result) <= sp.count_ops(derivation.raw)


def off_main_thread() -> bool:
    raw = slow_derivative()
    results: list[sp.Expr] = []
    worker = threading.Thread(target=lambda: results.append(simplify_within(raw, budget=0.5)))
    worker.start()
    worker.join()
    return bool(results) and sp.count_ops(results[0]) <= sp.count_ops(raw)


def shared_budget() -> bool:
    grad = symdiff.gradient(SLOW_TEXT, ["w", "x", "b", "u", "c", "v", "d"], budget=0.5)
    return len(grad) == 7


def refused_order() -> bool:
    # an empty working directory: from the checkout, `python -m symdiff` would import ./symdiff
    with tempfile.TemporaryDirectory(prefix="symdiff-bench-") as folder:
        done = subprocess.run(
            [sys.executable, "-m", "symdiff", "diff", "sigmoid(sigmoid(x))", "--wrt", "x"]
            + ["--order", "12"],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )
    return done.returncode == 1 and done.stderr.startswith("Error: the derivative grew past")


def slowest_hostile() -> tuple[float, str]:
    worst, which = 0.0, ""
    for text in HOSTILE:
        start = time.perf_counter()
        try:
            parse(text)
        except ParseError:
            pass
        else:
            harness.fail(f"parse accepted the hostile input {text[:30]!r}")
        seconds = time.perf_counter() - start
        if seconds > worst:
            worst, which = seconds, text
    return worst, which


def digits_example():
    spec = importlib.util.spec_from_file_location("digits_mlp", ROOT / "examples" / "digits_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (median)")
    parser.add_argument("--quick", action="store_true", help="one run each, no digits network")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1

    harness.print_header("wall-clock times formerly asserted by the unit tests")
    cases: list[tuple[str, Callable[[], bool], float]] = [
        ("simplify_within(tanh net, budget=0.5)", budgeted_simplify, 0.5 * len(PASSES) + 5),
        ("derive(tanh net, budget=0.3)", budgeted_derive, 0.3 * len(PASSES) + 5),
        ("simplify_within(tanh net, budget=0.5), worker thread", off_main_thread, 6.0),
        ("gradient of the tanh net, 7 entries, one budget of 0.5 s", shared_budget, 10.0),
        ("symdiff diff sigmoid(sigmoid(x)) --order 12 (refused)", refused_order, 60.0),
    ]
    rows = []
    for label, function, target in cases:
        times = []
        for _ in range(args.repeat):
            outcome = harness.attempt(label, lambda function=function: timed(function))
            if outcome is None:
                break
            seconds, correct = outcome
            if not correct:
                harness.fail(f"{label}: wrong result")
            times.append(seconds)
        if times:
            median = statistics.median(times)
            rows.append(
                (label, f"{median:.3f} s", "", f"< {target:g} s", harness.verdict(median, target))
            )

    worst = [slowest_hostile() for _ in range(args.repeat)]
    seconds, which = max(worst)
    label = f"parse, slowest hostile input ({which[:12]!r}...)"
    rows.append((label, f"{seconds * 1e3:.2f} ms", "", "< 10 s", harness.verdict(seconds, 10.0)))

    if not args.quick:
        example = digits_example()
        times = []
        for _ in range(args.repeat):
            seconds, outcome = timed(lambda: example.run(hidden=64, epochs=30, seed=0))
            if outcome["accuracy"] < 0.95:
                harness.fail(f"digits network: held-out accuracy {outcome['accuracy']:.3f} < 0.95")
            times.append(seconds)
        median = statistics.median(times)
        label = "examples/digits_mlp.py run(hidden=64, epochs=30)"
        rows.append((label, f"{median:.3f} s", "", "< 60 s", harness.verdict(median, 60.0)))

    harness.table(
        f"median of {args.repeat} run(s); target = the bound the unit test used to assert",
        rows,
    )
    harness.finish()


if __name__ == "__main__":
    main()
