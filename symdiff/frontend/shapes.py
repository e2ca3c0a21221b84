"""Declared shapes: ``--shape NAME=DIMS`` options and TOML model files.

A shape is a tuple of dimensions, each a positive ``int`` (at most ``MAX_DIMENSION``) or a
symbolic name such as ``"n"`` (read from the data at run time). A model file holds
``loss = "..."`` and the ``[params]`` and ``[data]`` tables of name = shape; it is read through
``symdiff.inputs`` (a regular file of at most 1 MiB).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import check_name
from ..errors import InputError, ParseError
from ..inputs import TEXT_LIMIT, read_text_file
from ..ir.nodes import Dim, Shape

# --------------------------------------------------------------------------- declarations


_DIM_RE = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z_0-9]*))\s*")

#: The largest size of one dimension (two of them still multiply within a 64-bit integer).
MAX_DIMENSION = 1_000_000_000
#: Most axes a declared shape may have (NumPy's own limit).
MAX_RANK = 32
#: Names that read as numbers that are not finite; refused as dimension names.
_NOT_FINITE = {"inf", "infinity", "nan"}


def parse_dims(text: str | Sequence[object], where: str = "") -> Shape:
    """'n,d' or ['n', 64] -> ('n', 64); '' or [] is a scalar.

    A dimension is a whole number from 1 to MAX_DIMENSION or a name; booleans, floats (``3.0``,
    TOML's ``inf`` and ``nan``), the names inf/nan and anything else are refused.
    """
    items: Sequence[object] = text.split(",") if isinstance(text, str) else tuple(text)
    if isinstance(text, str) and not text.strip():
        items = []
    dims: list[Dim] = []
    for item in items:
        if isinstance(item, (bool, float)) or not isinstance(item, (int, str)):
            raise InputError(f"bad dimension {_shown(item)}{where}: use a whole number or a name")
        if isinstance(item, int):
            dims.append(_size(item, where))
            continue
        match = _DIM_RE.fullmatch(item)
        if match is None:
            raise InputError(f"bad dimension {_shown(item.strip())}{where}: use a number or a name")
        if match.group(1) is not None:
            digits = match.group(1).lstrip("0") or "0"
            if len(digits) > len(str(MAX_DIMENSION)):
                raise InputError(
                    f"dimension {_shown(digits)} is larger than {MAX_DIMENSION:,}{where}"
                )
            dims.append(_size(int(digits), where))
        elif match.group(2).lower() in _NOT_FINITE:
            raise InputError(
                f"bad dimension {match.group(2)!r}{where}: it reads as a number that is not "
                "finite; use a whole number or another name"
            )
        else:
            dims.append(check_name(match.group(2)))
    if len(dims) > MAX_RANK:
        raise InputError(
            f"at most {MAX_RANK} axes are supported (as in NumPy), got {len(dims)}{where}"
        )
    return tuple(dims)


def _size(item: int, where: str) -> int:
    if item < 1:
        raise InputError(f"dimension must be positive, got {_shown(item)}{where}")
    if item > MAX_DIMENSION:
        raise InputError(f"dimension {_shown(item)} is larger than {MAX_DIMENSION:,}{where}")
    return item


def _shown(item: object, limit: int = 40) -> str:
    """A value as it appears in a message, cut to ``limit`` characters."""
    if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 10**limit:
        return f"{'-' if item < 0 else ''}{str(abs(item))[:20]}... ({len(str(abs(item)))} digits)"
    text = repr(item) if isinstance(item, str) else str(item)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_shape_option(option: str) -> tuple[str, Shape]:
    """'X=n,d' -> ('X', ('n', 'd'))."""
    name, sep, dims = option.partition("=")
    if not sep:
        raise InputError(f"bad --shape {_shown(option)}: expected NAME=DIMS, e.g. X=n,d")
    name = name.strip()
    try:
        check_name(name)
    except ParseError as exc:
        raise InputError(f"bad --shape {_shown(option)}: {exc.reason}") from None
    return name, parse_dims(dims, f" in --shape {_shown(option)}")


@dataclass(frozen=True)
class TensorModel:
    """A tensor loss with its declared shapes: ``params`` are differentiated, ``data`` are not."""

    loss: str
    params: dict[str, Shape] = field(default_factory=dict)
    data: dict[str, Shape] = field(default_factory=dict)

    @property
    def shapes(self) -> dict[str, Shape]:
        return {**self.data, **self.params}


def shapes_from_options(options: Iterable[str]) -> dict[str, Shape]:
    """Repeated --shape NAME=DIMS options -> {name: shape}; a name declared twice is an error."""
    shapes: dict[str, Shape] = {}
    for option in options:
        name, shape = parse_shape_option(option)
        if name in shapes:
            raise InputError(f"shape of '{name}' declared twice")
        shapes[name] = shape
    return shapes


def load_model(path: str | Path, limit: int = TEXT_LIMIT) -> TensorModel:
    """Read a TOML model file: ``loss = "..."``, ``[params]`` and ``[data]`` name -> shape.

    The file must be a regular UTF-8 file of at most ``limit`` bytes (``symdiff.inputs``);
    nesting too deep for the TOML parser is refused like any other invalid TOML.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib
    path = Path(path)
    text = read_text_file(path, limit, "model file")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"model file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise InputError(f"model file {path} is not valid TOML: nested too deeply") from None
    loss = document.get("loss")
    if not isinstance(loss, str) or not loss.strip():
        raise InputError(f"model file {path} needs a 'loss = \"...\"' string")
    unknown = sorted(set(document) - {"loss", "params", "data"})
    if unknown:
        shown = ", ".join(key if len(key) <= 40 else key[:37] + "..." for key in unknown[:5])
        more = f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else ""
        raise InputError(f"model file {path}: unknown key(s) {shown}{more}")
    tables: dict[str, dict[str, Shape]] = {}
    for table in ("params", "data"):
        entries = document.get(table, {})
        if not isinstance(entries, dict):
            raise InputError(f"model file {path}: [{table}] must be a table of name = shape")
        tables[table] = {
            check_name(name): parse_dims(
                shape if isinstance(shape, (str, list)) else [shape],
                f" for '{name}' in {path}",
            )
            for name, shape in entries.items()
        }
    both = set(tables["params"]) & set(tables["data"])
    if both:
        raise InputError(
            f"model file {path}: {', '.join(sorted(both))} in both [params] and [data]"
        )
    return TensorModel(loss, tables["params"], tables["data"])
