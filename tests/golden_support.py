"""Golden-file comparison for the explanation renderers.

Set ``SYMDIFF_REGEN_GOLDEN=1`` to rewrite the files under ``tests/golden/`` from the current
output (then review the diff by hand before committing: the goldens are the specification).
A regenerating run passes by construction, so it is refused when ``CI`` is set (to anything but
empty, ``0`` or ``false``): every golden comparison then fails, naming the variable.
JSON goldens are compared as data, floats to a relative 1e-9, so the last bit of a libm result
does not matter.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
REGEN_VARIABLE = "SYMDIFF_REGEN_GOLDEN"


def regenerating() -> bool:
    """Whether ``SYMDIFF_REGEN_GOLDEN=1`` asks to rewrite the goldens; under ``CI`` the request
    fails the calling test instead (read at each call, so the environment of the run decides)."""
    if os.environ.get(REGEN_VARIABLE) != "1":
        return False
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(
            f"{REGEN_VARIABLE}=1 is refused because CI is set: regenerating the goldens would "
            "make every golden comparison pass by construction",
            pytrace=False,
        )
    return True


def assert_golden(name: str, actual: str) -> None:
    """``actual`` equals the stored golden file ``name`` (text exactly, JSON as data)."""
    path = GOLDEN / name
    if regenerating():
        path.write_text(actual + "\n", encoding="utf-8")
    expected = path.read_text(encoding="utf-8").rstrip("\n")
    if name.endswith(".json"):
        assert_same_data(json.loads(actual), json.loads(expected), name)
    else:
        assert actual == expected, f"{name} differs from its golden file"


def assert_same_data(actual: Any, expected: Any, where: str) -> None:
    """Equal JSON data; floats equal to a relative 1e-9."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, (int, float)) and isinstance(expected, (int, float)), where
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-300), where
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            assert_same_data(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_data(a, e, f"{where}[{k}]")
    else:
        assert actual == expected, where


def assert_valid_latex(latex: str) -> None:
    """Balanced braces, matched environments and \\left/\\right pairs (no TeX installed)."""
    depth = 0
    for char in re.sub(r"\\[{}]", "", latex):
        depth += char == "{"
        depth -= char == "}"
        assert depth >= 0, "a '}' closes nothing"
    assert depth == 0, "unbalanced braces"
    stack: list[str] = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+\*?)\}", latex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"\\end{{{name}}} closes the wrong environment"
    assert not stack, f"unclosed environment {stack}"
    assert re.match(r"\s*\\begin\{(align\*?|tabular|array)\}", latex), "no environment"
    assert len(re.findall(r"\\left\b", latex)) == len(re.findall(r"\\right\b", latex))
    assert not re.search(r"[^\x00-\x7f]", latex), "non-ASCII character in LaTeX"
