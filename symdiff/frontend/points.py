"""Values of tensors at a point: ``--at`` and ``--direction`` with declared shapes.

A point is either an ``.npz`` archive (``--at values.npz``, one array per name) or assignments
``NAME=VALUE`` separated by commas outside brackets, each value a number or a nested list of
numbers (``--at "w=[1,2,3],X=[[1,0],[0,1]]"``). Lists are read by a small tokenizer of numbers,
brackets and commas (never ``eval``), bounded in size and depth. Every value is checked against
its declared shape; named dimensions are bound consistently across values (``d`` is one size).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_name
from ..errors import InputError, ParseError
from ..inputs import DATA_LIMIT, DATA_LIMIT_OPTION, NpzArchive
from ..ir.nodes import Shape, format_shape

#: Entries of one literal list, and its nesting depth.
MAX_LITERAL_ENTRIES = 10_000
MAX_LITERAL_DEPTH = 8
#: ``compact``: arrays with more entries than this are summarised.
SHOWN_ENTRIES = 16

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<open>\[)|(?P<close>\])|(?P<comma>,)"
    r"|(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))"
)


def parse_literal(text: str, where: str = "") -> np.ndarray:
    """'[[1, 2], [3, 4.5e-1]]' -> a float64 array; '3' -> a 0-d array.

    Grammar: value = number | '[' value (',' value)* ']'; siblings must have one shape.
    """
    tokens = _tokens(text, where)
    value, position = _value(tokens, 0, 0, where)
    if position != len(tokens):
        raise InputError(f"unexpected {tokens[position][1]!r} after the value{where}")
    array = np.array(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError(f"values must be finite numbers{where}")
    return array


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN_RE.match(stripped, position)
        if match is None or match.lastgroup is None:
            shown = stripped[position:].lstrip()[:20]
            raise InputError(
                f"bad value {shown!r}{where}: use numbers and brackets, e.g. [[1, 2], [3, 4]]"
            )
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        if len(tokens) > 4 * MAX_LITERAL_ENTRIES:
            raise InputError(f"the value is longer than {MAX_LITERAL_ENTRIES:,} entries{where}")
        position = match.end()
    if not tokens:
        raise InputError(f"missing value{where}")
    return tokens


def _value(tokens: list[tuple[str, str]], position: int, depth: int, where: str) -> tuple:
    """One value from ``position``: (float or list, next position)."""
    if position >= len(tokens):
        raise InputError(f"the value ends early{where}: a ']' or a number is missing")
    kind, text = tokens[position]
    if kind == "number":
        return float(text), position + 1
    if kind != "open":
        raise InputError(f"unexpected {text!r}{where}: expected a number or '['")
    if depth >= MAX_LITERAL_DEPTH:
        raise InputError(f"the value is nested deeper than {MAX_LITERAL_DEPTH} levels{where}")
    items: list[Any] = []
    position += 1
    while True:
        item, position = _value(tokens, position, depth + 1, where)
        items.append(item)
        if position >= len(tokens):
            raise InputError(f"the value ends early{where}: a ']' is missing")
        kind, text = tokens[position]
        position += 1
        if kind == "close":
            break
        if kind != "comma":
            raise InputError(f"unexpected {text!r}{where}: expected ',' or ']'")
    shapes = {np.shape(item) for item in items}
    if len(shapes) > 1:
        raise InputError(f"ragged list{where}: the items of one list must have the same shape")
    return items, position


def split_assignments(text: str, option: str) -> list[tuple[str, str]]:
    """'w=[1,2],b=3' -> [('w', '[1,2]'), ('b', '3')]: commas inside brackets stay."""
    parts: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    pairs: list[tuple[str, str]] = []
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(f"bad {option} {part.strip()[:40]!r}: expected NAME=VALUE")
        try:
            check_name(name)
        except ParseError as exc:
            raise InputError(f"bad {option} {part.strip()[:40]!r}: {exc.reason}") from None
        if name in dict(pairs):
            raise InputError(f"{option}: '{name}' given twice")
        pairs.append((name, value))
    return pairs


def read_point(
    text: str,
    shapes: Mapping[str, Shape],
    names: Sequence[str],
    option: str = "--at",
    dims: dict[str, int] | None = None,
    every: bool = True,
) -> dict[str, np.ndarray]:
    """{name: array} for every name in ``names`` from ``text`` (an .npz path or assignments),
    each checked against ``shapes`` (undeclared names are scalars); ``dims`` collects the sizes
    of named dimensions (pass the same dict to bind ``--at`` and ``--direction`` together).
    Without ``every``, some of the names suffice (at least one); the result holds those given."""
    dims = {} if dims is None else dims
    if "=" not in text:
        wanted = names if every else [n for n in names if n in npz_keys(text.strip(), option)]
        if not wanted:
            raise InputError(f"{option}: {text.strip()[:40]} has none of {', '.join(names)}")
        values = _read_npz(text.strip(), wanted, option)
    else:
        values = {
            name: parse_literal(value, f" for '{name}' in {option}")
            for name, value in split_assignments(text, option)
        }
        extra = [name for name in values if name not in names]
        if extra:
            raise InputError(
                f"{option}: '{extra[0]}' is not a symbol here (expected: {', '.join(names)})"
            )
        missing = [name for name in names if name not in values]
        if missing and every:
            raise InputError(f"{option}: no value for '{missing[0]}' (give {', '.join(names)})")
    given = [name for name in names if name in values]
    for name in given:
        check_shape(name, values[name], tuple(shapes.get(name, ())), dims, option)
    return {name: values[name] for name in given}


def npz_keys(path: str, option: str) -> list[str]:
    """The array names of an ``.npz`` archive (its members' headers are not read)."""
    if not path.endswith(".npz"):
        raise InputError(f"bad {option} {path[:40]!r}: use NAME=VALUE,... or a file.npz")
    with NpzArchive(Path(path), DATA_LIMIT, DATA_LIMIT_OPTION) as archive:
        return list(archive.keys)


def _read_npz(path: str, names: Sequence[str], option: str) -> dict[str, np.ndarray]:
    from ..train.data import load_npz

    if not path.endswith(".npz"):
        raise InputError(f"bad {option} {path[:40]!r}: use NAME=VALUE,... or a file.npz")
    return load_npz(Path(path), list(names), {}, DATA_LIMIT)


def check_shape(
    name: str, value: np.ndarray, declared: Shape, dims: dict[str, int], option: str = "--at"
) -> None:
    """``value`` has the declared shape; a named dimension takes the size it first had."""
    actual = value.shape
    wrong = f"{option}: '{name}' needs shape {format_shape(declared)}, got {format_shape(actual)}"
    if len(actual) != len(declared):
        raise InputError(wrong)
    for dim, size in zip(declared, actual, strict=True):
        if isinstance(dim, int):
            if dim != size:
                raise InputError(wrong)
        elif dims.setdefault(dim, size) != size:
            raise InputError(
                f"{option}: '{name}' has shape {format_shape(actual)}, "
                f"but {dim} = {dims[dim]} from an earlier value"
            )


def compact(value: object, digits: int = 6) -> str:
    """An array on one line, entries to ``digits`` significant digits; large arrays shortened
    to their first and last entries, with the shape: ``[[1, 2], [3, 4]]``, ``0.5``."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return _entry(float(array), digits)
    if array.size > SHOWN_ENTRIES:
        flat = array.ravel()
        head = ", ".join(_entry(float(x), digits) for x in flat[:4])
        tail = ", ".join(_entry(float(x), digits) for x in flat[-2:])
        return f"[{head}, ..., {tail}] {format_shape(array.shape)}"
    return _nested(array, digits)


def _nested(array: np.ndarray, digits: int) -> str:
    if array.ndim == 0:
        return _entry(float(array), digits)
    return "[" + ", ".join(_nested(item, digits) for item in array) + "]"


def _entry(x: float, digits: int) -> str:
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}"
