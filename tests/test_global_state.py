"""symdiff changes no interpreter-wide setting and keeps no memory between calls."""

from __future__ import annotations

import gc
import json
import sys
import textwrap

from process_support import run_python

import symdiff
from symdiff.ir.nodes import interned_count

SHAPES = {"X": ("n", 3), "w": (3,), "y": ("n",)}


def test_import_changes_no_interpreter_setting() -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        before = [sys.getrecursionlimit(), sys.get_int_max_str_digits()]
        import symdiff, symdiff.cli
        print(json.dumps([before, [sys.getrecursionlimit(), sys.get_int_max_str_digits()]]))
        """
    )
    result = run_python("-c", probe)
    assert result.returncode == 0, result.stderr
    before, after = json.loads(result.stdout)
    assert before == after


def test_public_calls_leave_the_settings_as_they_were() -> None:
    settings = (sys.getrecursionlimit(), sys.get_int_max_str_digits())
    chain = "+".join(["x"] * 4000)  # a flat chain: deep ast construction in CPython
    symdiff.derivative(chain, "x")
    symdiff.derivative("7**2000 * x", "x")
    symdiff.gradient("4*x**4*z**3")
    symdiff.compile("(w*x - y)**2", "w", "x,y")
    symdiff.compile_tensor("mean((X @ w - y)**2)", SHAPES, ["w"])
    symdiff.tensor_gradient("sum(sigmoid(X @ w))", SHAPES)
    assert (sys.getrecursionlimit(), sys.get_int_max_str_digits()) == settings


def _loss(i: int) -> str:
    return f"mean((X @ w - y)**2) + {i}*sum(w**2) + sum(sigmoid(X @ w + {i}))"


def test_a_thousand_tensor_gradients_leave_the_interning_table_flat() -> None:
    for i in range(100):
        symdiff.tensor_gradient(_loss(i), SHAPES)
    gc.collect()
    after_100 = interned_count()
    for i in range(100, 1000):
        symdiff.tensor_gradient(_loss(i), SHAPES)
    gc.collect()
    assert interned_count() <= after_100 + 50  # nodes live only while an expression uses them


def test_nodes_stay_interned_while_in_use() -> None:
    first = symdiff.tensor_gradient(_loss(7), SHAPES)
    second = symdiff.tensor_gradient(_loss(7), SHAPES)
    assert first.gradients[0] is second.gradients[0]
