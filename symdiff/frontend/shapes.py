"""Declared shapes: ``--shape NAME=DIMS`` options and TOML model files.

A shape is a tuple of dimensions, each a positive ``int`` or a symbolic name such as ``"n"``
(read from the data at run time). A model file holds ``loss = "..."`` and the ``[params]`` and
``[data]`` tables of name = shape.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import check_name
from ..errors import InputError, ParseError
from ..ir.nodes import Dim, Shape

# --------------------------------------------------------------------------- declarations


_DIM_RE = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z_0-9]*))\s*")


def parse_dims(text: str | Sequence[object], where: str = "") -> Shape:
    """'n,d' or ['n', 64] -> ('n', 64); '' or [] is a scalar."""
    items: Sequence[object] = text.split(",") if isinstance(text, str) else tuple(text)
    if isinstance(text, str) and not text.strip():
        items = []
    dims: list[Dim] = []
    for item in items:
        if isinstance(item, bool):
            raise InputError(f"bad dimension {item!r}{where}")
        if isinstance(item, int):
            if item < 1:
                raise InputError(f"dimension must be positive, got {item}{where}")
            dims.append(item)
            continue
        match = _DIM_RE.fullmatch(str(item))
        if match is None:
            raise InputError(f"bad dimension {str(item).strip()!r}{where}: use a number or a name")
        if match.group(1) is not None:
            dims.append(parse_dims([int(match.group(1))], where)[0])
        else:
            dims.append(check_name(match.group(2)))
    if len(dims) > 2:
        raise InputError(
            f"only scalars, vectors and matrices are supported, got {len(dims)} dims{where}"
        )
    return tuple(dims)


def parse_shape_option(option: str) -> tuple[str, Shape]:
    """'X=n,d' -> ('X', ('n', 'd'))."""
    name, sep, dims = option.partition("=")
    if not sep:
        raise InputError(f"bad --shape {option!r}: expected NAME=DIMS, e.g. X=n,d")
    name = name.strip()
    try:
        check_name(name)
    except ParseError as exc:
        raise InputError(f"bad --shape {option!r}: {exc.reason}") from None
    return name, parse_dims(dims, f" in --shape {option!r}")


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


def load_model(path: str | Path) -> TensorModel:
    """Read a TOML model file: ``loss = "..."``, ``[params]`` and ``[data]`` name -> shape."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read model file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"model file {path} is not valid TOML: {exc}") from None
    loss = document.get("loss")
    if not isinstance(loss, str) or not loss.strip():
        raise InputError(f"model file {path} needs a 'loss = \"...\"' string")
    unknown = set(document) - {"loss", "params", "data"}
    if unknown:
        raise InputError(f"model file {path}: unknown key(s) {', '.join(sorted(unknown))}")
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
