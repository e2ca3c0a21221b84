"""Training data from files: CSV with a header row, ``.npz`` archives and ``.npy`` arrays.

``load_data(path, names, columns)`` returns {data name: float64 array}. Each data name is looked up
as a CSV column / ``.npz`` key of the same name, or of the name given in ``columns`` (the CLI's
``--column y=label``); ``--column X=x1:x5`` makes a matrix of the CSV columns x1 to x5.
Nothing is evaluated: CSV cells are read with the ``csv`` module and ``float``; NumPy files with
``allow_pickle=False``. Every problem is an ``InputError`` naming the file and, for CSV, the line,
data row and column.
"""

from __future__ import annotations

import csv
import json
import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..outputs import check_output, write_output

Loader = Callable[[Path, Sequence[str], Mapping[str, str]], dict[str, np.ndarray]]
LOADERS: dict[str, Loader] = {}


def loader(*suffixes: str) -> Callable[[Loader], Loader]:
    """Register a loader for files ending in ``suffixes``."""

    def add(function: Loader) -> Loader:
        for suffix in suffixes:
            LOADERS[suffix] = function
        return function

    return add


def parse_columns(specs: Sequence[str]) -> dict[str, str]:
    """``("y=label", "x=age,z=h")`` -> {"y": "label", "x": "age", "z": "h"}."""
    mapping: dict[str, str] = {}
    for spec in specs:
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, column = item.partition("=")
            if not sep or not name.strip() or not column.strip():
                raise InputError(f"expected --column NAME=COLUMN, got '{item}'")
            mapping[name.strip()] = column.strip()
    return mapping


def load_data(
    path: str | Path, names: Sequence[str], columns: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """{name: array} for each data name, read from a .csv, .npz or .npy file."""
    path = Path(path)
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise InputError(
            f"--column maps '{unknown[0]}', which is not a data name "
            f"(data: {', '.join(names) or 'none'})"
        )
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        raise InputError(f"{path}: unknown data format '{suffix}' (use .csv, .npz or .npy)")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        arrays = LOADERS[suffix](path, names, columns)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    check_lengths(path, arrays)
    return arrays


@loader(".csv")
def load_csv(path: Path, names: Sequence[str], columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Numbers from the named columns of a CSV file with a header row (blank lines skipped)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV file: {exc}") from None
    if not rows:
        raise InputError(f"{path}: the file is empty (expected a header row, then data rows)")
    header = [cell.strip() for cell in rows[0][1]]
    wanted = {name: _csv_columns(path, header, name, columns) for name in names}
    if len(rows) == 1:
        raise InputError(f"{path}: the header has no data rows under it")
    values = {
        name: np.empty((len(rows) - 1, len(picked)) if matrix else len(rows) - 1)
        for name, (picked, matrix) in wanted.items()
    }
    for row_number, (line, row) in enumerate(rows[1:], start=1):
        where = f"{path}, line {line} (data row {row_number})"
        if len(row) != len(header):
            raise InputError(f"{where}: {len(row)} cells, but the header has {len(header)}")
        for name, (picked, _matrix) in wanted.items():
            numbers = [_number(row[index], where, header[index]) for index in picked]
            values[name][row_number - 1] = numbers if len(numbers) > 1 else numbers[0]
    return values


def _csv_columns(
    path: Path, header: list[str], name: str, columns: Mapping[str, str]
) -> tuple[list[int], bool]:
    """The header positions a data name reads, and whether it is a matrix: ``--column y=label``
    names one column, ``--column X=x1:x5`` the columns x1 to x5 (inclusive) in header order."""
    spec = columns.get(name, name)
    positions = {column: index for index, column in enumerate(header) if column}
    first, colon, last = spec.partition(":")
    for column in (first, last) if colon else (spec,):
        if column not in positions:
            hint = "" if name in columns else f"; map one with --column {name}=COLUMN"
            raise InputError(
                f"{path}: no column '{column}' for data '{name}' "
                f"(columns: {', '.join(header)}){hint}"
            )
    if not colon:
        return [positions[spec]], False
    start, stop = positions[first], positions[last]
    if stop < start:
        raise InputError(f"{path}: column '{last}' comes before '{first}' in '{spec}'")
    return list(range(start, stop + 1)), True


@loader(".npz")
def load_npz(path: Path, names: Sequence[str], columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Arrays stored under the data names (or the keys given in ``columns``)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: not an .npz archive")
    with archive:
        keys = list(archive.files)
        if not keys:
            raise InputError(f"{path}: the archive is empty")
        result = {}
        for name in names:
            key = columns.get(name, name)
            if key not in keys:
                raise InputError(
                    f"{path}: no array '{key}' for data '{name}' (arrays: {', '.join(keys)})"
                )
            try:
                array = archive[key]
            except ValueError as exc:  # e.g. an object array, refused without pickle
                raise InputError(f"{path}: cannot read array '{key}': {exc}") from None
            result[name] = _numeric_array(path, array, f"array '{key}'")
    return result


@loader(".npy")
def load_npy(path: Path, names: Sequence[str], columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """One array: the whole array for a single data name; otherwise 2-D with one column per data
    name, in order (or the column index given in ``columns``)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy file ({exc})") from None
    array = _numeric_array(path, array, "the array")
    if len(names) == 1 and not columns:
        return {names[0]: array}
    if array.ndim != 2:
        raise InputError(
            f"{path}: expected a 2-D array with one column per data name, got shape {array.shape}"
        )
    result = {}
    for default, name in enumerate(names):
        index_text = columns.get(name, str(default))
        if not index_text.isdigit() or int(index_text) >= array.shape[1]:
            raise InputError(
                f"{path}: no column {index_text} for data '{name}' "
                f"(the array has {array.shape[1]} columns, numbered from 0)"
            )
        result[name] = array[:, int(index_text)]
    return result


def check_lengths(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Every per-sample array must have the same number of samples (axis 0)."""
    lengths = {name: len(a) for name, a in arrays.items() if a.ndim > 0}
    if not lengths:
        return
    first, count = next(iter(lengths.items()))
    if count == 0:
        raise InputError(f"{path}: '{first}' has no samples")
    for name, length in lengths.items():
        if length != count:
            raise InputError(f"{path}: '{first}' has {count} samples but '{name}' has {length}")


def parse_float(text: str, where: str) -> float:
    """A finite float from text (``float``, never evaluated), or an InputError naming ``where``."""
    shown = _short(text.strip())
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: '{shown}' is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: '{shown}' is not a finite number")
    return value


def _number(cell: str, where: str, column: str) -> float:
    """The cell as a finite float, or an error naming the place."""
    where = f"{where}, column '{column}'"
    if not cell.strip():
        raise InputError(f"{where}: the cell is empty")
    return parse_float(cell, where)


def _numeric_array(path: Path, array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise InputError(f"{path}: {what} holds {array.dtype} values, not real numbers")
    result = array.astype(np.float64)
    if not np.all(np.isfinite(result)):
        raise InputError(f"{path}: {what} contains NaN or infinite values")
    return result


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_folder(path: str | Path) -> Path:
    """``Path(path)`` if symdiff may write a file there (``symdiff.outputs.check_output``: a new
    name or a regular file, in an existing folder), else an InputError."""
    return check_output(path)


def write_atomic(path: str | Path, content: bytes) -> Path:
    """Write ``content`` to ``path`` via a temporary file in the same folder and a rename, so
    the file is either the old one or the whole new one, never half written
    (``symdiff.outputs.write_output``: the same rules and permissions for every file written)."""
    return write_output(path, content)


def write_json(path: str | Path, value: object) -> Path:
    """Atomically write ``value`` as indented JSON (with a final newline)."""
    return write_atomic(path, json_bytes(value))


def json_bytes(value: object) -> bytes:
    """``value`` as indented JSON with a final newline, UTF-8 (what ``write_json`` writes)."""
    return (json.dumps(value, indent=2) + "\n").encode("utf-8")
