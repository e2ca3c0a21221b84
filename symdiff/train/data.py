"""Training data from files: CSV with a header row, ``.npz`` archives, ``.npy`` arrays, Parquet.

``load_data(path, names, columns)`` returns {data name: float64 array}. Each data name is looked up
as a CSV column / ``.npz`` key of the same name, or of the name given in ``columns`` (the CLI's
``--column y=label``); ``--column X=x1:x5`` makes a matrix of the CSV columns x1 to x5.
Nothing is evaluated: CSV cells are read with the ``csv`` module and ``float``; NumPy files with
their headers checked first and no pickles (``symdiff/inputs.py``). Every read is bounded:
the file must be a regular file of at most ``limit`` bytes (1 GiB unless given) and the float64
arrays read from it must fit in ``limit`` bytes too; a CSV file is read row by row, keeping only
the columns asked for. Every problem is an ``InputError`` naming the file and, for CSV, the line,
data row and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inputs import (
    CSV_LINE_LIMIT,
    DATA_LIMIT,
    DATA_LIMIT_OPTION,
    NpzArchive,
    describe_shape,
    format_size,
    open_regular_file,
    read_npy,
)
from ..outputs import check_output, write_output

Loader = Callable[[Path, Sequence[str], Mapping[str, str], int], dict[str, np.ndarray]]
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
    path: str | Path,
    names: Sequence[str],
    columns: Mapping[str, str] | None = None,
    *,
    limit: int = DATA_LIMIT,
    shapes: Mapping[str, Sequence[int | str]] | None = None,
) -> dict[str, np.ndarray]:
    """{name: array} for each data name, read from a .csv, .npz or .npy file.

    ``limit`` bounds the file's size and the float64 arrays read from it (bytes). ``shapes``
    (name -> declared shape, dimensions ints or names) checks each array's dimensions.
    """
    path = Path(path)
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise InputError(
            f"--column maps '{unknown[0]}', which is not a data name "
            f"(data: {', '.join(names) or 'none'})"
        )
    suffix = ".parquet" if is_parquet_folder(path) else path.suffix.lower()
    if suffix not in LOADERS:
        raise InputError(
            f"{path}: unknown data format '{suffix}' (use .csv, .npz, .npy or .parquet)"
        )
    try:
        arrays = LOADERS[suffix](path, names, columns, limit)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    check_lengths(path, arrays)
    if shapes is not None:
        check_shapes(path, arrays, shapes)
    return arrays


def is_parquet_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding ``.parquet`` files (read as one data set)."""
    return path.is_dir() and any(path.glob("*.parquet"))


@loader(".csv")
def load_csv(
    path: Path, names: Sequence[str], columns: Mapping[str, str], limit: int = DATA_LIMIT
) -> dict[str, np.ndarray]:
    """Numbers from the named columns of a CSV file with a header row (blank lines skipped).

    Read row by row: only the cells of the named columns are converted and kept, in one compact
    float64 buffer, so memory is the size of the result, not of the file.
    """
    with open_regular_file(path, limit, "", DATA_LIMIT_OPTION) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        lines = _Lines(text, path)
        try:
            return _read_csv(path, csv.reader(lines), lines, names, columns, limit)
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 text file") from None
        except csv.Error as exc:
            raise InputError(f"{path}: not a valid CSV file: {exc}") from None


class _Lines:
    """The lines of a text stream for ``csv.reader``, each at most CSV_LINE_LIMIT characters;
    ``number`` is the physical line number of the last line given out."""

    def __init__(self, stream: io.TextIOWrapper, path: Path) -> None:
        self.stream = stream
        self.path = path
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        readline = self.stream.readline
        while True:
            line = readline(CSV_LINE_LIMIT + 1)
            if not line:
                return
            self.number += 1
            if len(line) > CSV_LINE_LIMIT:
                raise InputError(
                    f"{self.path}, line {self.number}: longer than {CSV_LINE_LIMIT:,} characters"
                )
            yield line


def _filled(row: Sequence[str]) -> bool:
    return any(cell.strip() for cell in row)


def _read_csv(
    path: Path,
    reader: Iterator[list[str]],
    lines: _Lines,
    names: Sequence[str],
    columns: Mapping[str, str],
    limit: int,
) -> dict[str, np.ndarray]:
    wanted, picked, header = csv_header(path, reader, names, columns)
    max_rows = max(limit // (8 * max(len(picked), 1)), 0)
    values = array("d")
    extend = values.extend
    rows = 0
    for numbers in csv_numbers(path, reader, lines, header, picked):
        rows += 1
        if rows > max_rows:
            raise InputError(
                f"{path}: more than {max_rows:,} data rows of {len(picked)} column(s), "
                f"over the limit of {format_size(limit)} of float64 data; "
                f"{DATA_LIMIT_OPTION} raises the limit"
            )
        extend(numbers)
    if rows == 0:
        raise InputError(f"{path}: the header has no data rows under it")
    table = np.frombuffer(values, dtype=np.float64).reshape(rows, len(picked))
    return split_table(table, wanted)


def csv_header(
    path: Path, reader: Iterator[list[str]], names: Sequence[str], columns: Mapping[str, str]
) -> tuple[dict[str, tuple[list[int], bool]], list[int], list[str]]:
    """Read the header row: ({name: (header positions, is a matrix)}, the positions read in
    order, the header)."""
    header_row = next((row for row in reader if _filled(row)), None)
    if header_row is None:
        raise InputError(f"{path}: the file is empty (expected a header row, then data rows)")
    header = [cell.strip() for cell in header_row]
    wanted = {name: csv_columns(path, header, name, columns) for name in names}
    picked = [index for positions, _matrix in wanted.values() for index in positions]
    return wanted, picked, header


def csv_numbers(
    path: Path,
    reader: Iterator[list[str]],
    lines: _Lines,
    header: Sequence[str],
    picked: Sequence[int],
) -> Iterator[list[float]]:
    """The picked cells of each data row as finite floats, row by row (blank rows skipped);
    a short row, a bad cell or a non-finite number is an InputError naming line and row."""
    width = len(header)
    isfinite = math.isfinite
    rows = 0
    for row in reader:
        if len(row) != width:
            if not _filled(row):
                continue
            where = f"{path}, line {lines.number} (data row {rows + 1})"
            raise InputError(f"{where}: {len(row)} cells, but the header has {width}")
        try:
            numbers = [float(row[index]) for index in picked]
        except ValueError:
            if not _filled(row):
                continue
            _diagnose(row, picked, header, f"{path}, line {lines.number} (data row {rows + 1})")
            raise  # pragma: no cover - _diagnose raises
        rows += 1
        if not all(map(isfinite, numbers)):
            _diagnose(row, picked, header, f"{path}, line {lines.number} (data row {rows})")
        yield numbers


def split_table(
    table: np.ndarray, wanted: Mapping[str, tuple[list[int], bool]]
) -> dict[str, np.ndarray]:
    """The columns of ``table`` (in ``wanted``'s order) as {name: vector, or matrix}."""
    result: dict[str, np.ndarray] = {}
    start = 0
    for name, (positions, matrix) in wanted.items():
        block = table[:, start : start + len(positions)]
        result[name] = block.copy() if matrix else block[:, 0].copy()
        start += len(positions)
    return result


def _diagnose(row: Sequence[str], picked: Sequence[int], header: Sequence[str], where: str) -> None:
    """Raise the error for the first picked cell of ``row`` that is not a finite number."""
    for index in picked:
        _number(row[index], where, header[index])
    raise InputError(f"{where}: a cell is not a finite number")  # pragma: no cover


def csv_columns(
    path: Path, header: list[str], name: str, columns: Mapping[str, str]
) -> tuple[list[int], bool]:
    """The header positions a data name reads, and whether it is a matrix: ``--column y=label``
    names one column, ``--column X=x1:x5`` the columns x1 to x5 (inclusive) in header order.
    A column named twice in the header is refused when a data name refers to it."""
    spec = columns.get(name, name)
    positions: dict[str, int] = {}
    twice: dict[str, tuple[int, int]] = {}
    for index, column in enumerate(header):
        if column in positions:
            twice.setdefault(column, (positions[column], index))
        elif column:
            positions[column] = index
    first, colon, last = spec.partition(":")
    for column in (first, last) if colon else (spec,):
        if column not in positions:
            hint = "" if name in columns else f"; map one with --column {name}=COLUMN"
            raise InputError(
                f"{path}: no column '{column}' for data '{name}' "
                f"(columns: {', '.join(header)}){hint}"
            )
        if column in twice:
            one, other = twice[column]
            raise InputError(
                f"{path}: the header names column '{column}' twice (columns {one + 1} and "
                f"{other + 1}), so data '{name}' is ambiguous; rename one of them"
            )
    if not colon:
        return [positions[spec]], False
    start, stop = positions[first], positions[last]
    if stop < start:
        raise InputError(f"{path}: column '{last}' comes before '{first}' in '{spec}'")
    return list(range(start, stop + 1)), True


@loader(".npz")
def load_npz(
    path: Path, names: Sequence[str], columns: Mapping[str, str], limit: int = DATA_LIMIT
) -> dict[str, np.ndarray]:
    """Arrays stored under the data names (or the keys given in ``columns``); each member's
    header is checked before its data are inflated, and together they stay within ``limit``."""
    with NpzArchive(path, limit, DATA_LIMIT_OPTION) as archive:
        keys = archive.keys
        if not keys:
            raise InputError(f"{path}: the archive is empty")
        result = {}
        used = 0
        for name in names:
            key = columns.get(name, name)
            if key not in keys:
                raise InputError(
                    f"{path}: no array '{key}' for data '{name}' (arrays: {', '.join(keys)})"
                )
            array = archive.read(key, used)
            used += array.size * max(8, array.itemsize)
            result[name] = _numeric_array(path, array, f"array '{key}'")
    return result


@loader(".npy")
def load_npy(
    path: Path, names: Sequence[str], columns: Mapping[str, str], limit: int = DATA_LIMIT
) -> dict[str, np.ndarray]:
    """One array: the whole array for a single data name; otherwise 2-D with one column per data
    name, in order (or the column index given in ``columns``). The header is checked first."""
    array = _numeric_array(path, read_npy(path, limit, DATA_LIMIT_OPTION), "the array")
    if len(names) == 1 and not columns:
        return {names[0]: array}
    if array.ndim != 2:
        raise InputError(
            f"{path}: expected a 2-D array with one column per data name, got shape {array.shape}"
        )
    result = {}
    for default, name in enumerate(names):
        index_text = columns.get(name, str(default))
        if not index_text.isdigit() or len(index_text) > 18 or int(index_text) >= array.shape[1]:
            raise InputError(
                f"{path}: no column {index_text} for data '{name}' "
                f"(the array has {array.shape[1]} columns, numbered from 0)"
            )
        result[name] = array[:, int(index_text)]
    return result


@loader(".parquet")
def load_parquet(
    path: Path, names: Sequence[str], columns: Mapping[str, str], limit: int = DATA_LIMIT
) -> dict[str, np.ndarray]:
    """The named columns of a Parquet file (or a folder of them), read whole with pyarrow (the
    ``parquet`` extra); ``symdiff.train.sources.ParquetSource`` reads them block by block."""
    from .sources import ParquetSource  # pyarrow is an extra: imported only for Parquet files

    return ParquetSource(path, names, columns).read_all(limit)


def check_shapes(
    path: Path, arrays: Mapping[str, np.ndarray], shapes: Mapping[str, Sequence[int | str]]
) -> None:
    """Each array has its declared number of dimensions and fixed sizes, and a named dimension
    (``n``) has one size across the arrays. A single number (0-d) may stand for every sample of
    a per-sample name (declared ``(n,)``), as the training loop allows."""
    sizes: dict[str, tuple[int, str]] = {}
    for name, value in arrays.items():
        if name not in shapes:
            continue
        declared = tuple(shapes[name])
        if value.ndim == 0 and declared == ("n",):
            continue
        wrong = value.ndim != len(declared) or any(
            isinstance(d, int) and d != actual
            for d, actual in zip(declared, value.shape, strict=False)
        )
        if wrong:
            kind = " (one value per sample)" if declared == ("n",) else ""
            raise InputError(
                f"{path}: data '{name}' has shape {value.shape}, but it is declared "
                f"{describe_shape(declared)}{kind}"
            )
        for dim, actual in zip(declared, value.shape, strict=True):
            if isinstance(dim, str):
                seen = sizes.setdefault(dim, (actual, name))
                if seen[0] != actual:
                    raise InputError(
                        f"{path}: dimension {dim} is {seen[0]} in '{seen[1]}' "
                        f"but {actual} in '{name}'"
                    )


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
    result = array.astype(np.float64, copy=False)
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
