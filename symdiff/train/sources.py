"""Block sources: training data read a block of rows at a time, so memory follows the block size,
not the size of the data.

A source has ``names`` (the data names, in the model's order), ``rows`` (the number of samples n),
``blocks()`` (every row in order, at most ``block_rows`` at a time, as (first row, [one float64
array per name])) and ``take(rows)`` (the given rows in the given order: a mini-batch). Every
value is checked to be a finite number as it is read.

* ``ArraySource``: arrays already in memory (sliced, never copied whole);
* ``NpySource``: an ``.npy`` file, each block a window of a memory map (only that window is mapped,
  so a file larger than the address space can be read; C or Fortran order);
* ``ParquetSource``: a Parquet file or a folder of them, through pyarrow (the ``parquet`` extra):
  record batches of the needed columns only; a mini-batch reads only the row groups it touches;
* ``CsvSource``: a CSV file with a header row, streamed (one pass counts and checks the rows;
  a mini-batch is one more streamed pass, so prefer ``.npy`` or Parquet for mini-batches).

``BlockFeed`` evaluates a per-sample loss over a source for ``symdiff.fit``: the full-batch loss
and gradient are the exact sums of the generated module's block results,
L = (1/n) * sum_b n_b * L_b for ``--reduce mean`` and L = sum_b L_b for ``sum`` (n_b rows in block
b), and a mini-batch is ``loss_and_grad`` on ``take(rows)``, the same rows as in memory.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import math
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import InputError, SymdiffError
from ..inputs import check_array_header, format_size, open_regular_file
from .data import csv_columns, csv_header, csv_numbers, is_parquet_folder, split_table

#: rows per block unless ``block_rows`` says otherwise (a multiple of the generated BLOCK)
DEFAULT_BLOCK_ROWS = 65_536
#: files read block by block have no size limit: the blocks bound the memory
UNBOUNDED = 1 << 62
#: the install command of each extra, for the one-line error when its package is missing
EXTRAS = {"pyarrow": "parquet", "dask": "dask", "distributed": "dask"}

Block = list[np.ndarray]


class SourceFailure(SymdiffError):
    """The data could not be read or computed on during training (e.g. a Dask worker died):
    the fit stops and keeps the parameters reached."""


def require(module: str) -> ModuleType:
    """Import an optional package, or one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = EXTRAS.get(top, top)
        raise InputError(
            f"this needs the package '{top}': pip install \"symdiff[{extra}]\""
        ) from None


def _finite(values: np.ndarray, where: str, name: str, start: int) -> np.ndarray:
    """``values`` as float64, or an InputError naming the first row that is not finite."""
    result = np.ascontiguousarray(values, dtype=np.float64)  # a strided column is slow to use
    finite = np.isfinite(result)
    if not finite.all():
        bad = np.argwhere(~finite)[0][0]
        raise InputError(
            f"{where}: data '{name}' has a NaN or infinite value in row {start + int(bad) + 1}"
        )
    return result


def _spans(rows: int, block_rows: int) -> list[tuple[int, int]]:
    return [(start, min(start + block_rows, rows)) for start in range(0, rows, block_rows)]


def _check_block_rows(block_rows: int) -> int:
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)):
        raise InputError(f"block rows must be a whole number, got {block_rows!r}")
    if block_rows < 1:
        raise InputError(f"block rows must be at least 1, got {block_rows}")
    return int(block_rows)


class Source:
    """Rows of named data read in blocks; subclasses give ``spans()`` and ``read(start, stop)``
    (random access) or override ``blocks()`` and ``take()``."""

    names: tuple[str, ...]
    rows: int
    block_rows: int
    where: str

    def __init__(self, where: str, names: Sequence[str], block_rows: int) -> None:
        self.where = where
        self.names = tuple(names)
        self.block_rows = _check_block_rows(block_rows)

    def spans(self) -> list[tuple[int, int]]:
        """(first row, end row) of each block, in order."""
        return _spans(self.rows, self.block_rows)

    def read(self, start: int, stop: int) -> Block:
        """Rows start..stop-1 as one float64 array per name."""
        raise NotImplementedError

    def blocks(self) -> Iterator[tuple[int, Block]]:
        """Every row in order: (first row, arrays) per block."""
        for start, stop in self.spans():
            yield start, self.read(start, stop)

    def take(self, rows: np.ndarray) -> Block:
        """The given rows (any order, repeats allowed), reading only the blocks they fall in."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.rows):
            raise InputError(f"{self.where}: row index out of range 0..{self.rows - 1}")
        out = [np.empty((len(rows), *shape)) for shape in self.row_shapes()]
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        bounds = np.array([start for start, _ in self.spans()] + [self.rows])
        block_of = np.searchsorted(bounds, ordered, side="right") - 1
        for block in np.unique(block_of):
            picked = block_of == block
            local = ordered[picked]
            part = self._pick(int(bounds[block]), int(bounds[block + 1]), local)
            for target, values in zip(out, part, strict=True):
                target[order[picked]] = values
        return out

    def _pick(self, start: int, stop: int, rows: np.ndarray) -> Block:
        """The sorted ``rows`` (global indices) of the block start..stop-1."""
        return [values[rows - start] for values in self.read(start, stop)]

    def row_shapes(self) -> list[tuple[int, ...]]:
        """The shape of one row of each name (() for one value per sample)."""
        return [tuple(values.shape[1:]) for values in self.read(0, min(1, self.rows))]

    def fingerprint(self) -> dict[str, str]:
        """What identifies the data for a checkpoint, without reading it all."""
        return {name: f"{self.where} rows={self.rows}" for name in self.names}

    def read_all(self, limit: int) -> dict[str, np.ndarray]:
        """Everything in memory, refused beyond ``limit`` bytes of float64."""
        shapes = self.row_shapes()
        needed = 8 * self.rows * sum(math.prod(shape) for shape in shapes)
        if needed > limit:
            raise InputError(
                f"{self.where}: {self.rows:,} rows need {format_size(needed)} as float64, over "
                f"the limit of {format_size(limit)}; --max-input-mb raises the limit, "
                "--out-of-core reads the data block by block"
            )
        parts: list[list[np.ndarray]] = [[] for _ in self.names]
        for _start, block in self.blocks():
            for part, values in zip(parts, block, strict=True):
                part.append(values)
        return {name: np.concatenate(part) for name, part in zip(self.names, parts, strict=True)}


class ArraySource(Source):
    """Arrays in memory (one per name, samples along axis 0), served in blocks of rows."""

    def __init__(
        self,
        arrays: Sequence[Any] | Mapping[str, Any],
        names: Sequence[str],
        block_rows: int = DEFAULT_BLOCK_ROWS,
    ) -> None:
        super().__init__("the data", names, block_rows)
        if isinstance(arrays, Mapping):
            arrays = [arrays[name] for name in names]
        self.arrays = [np.asarray(values) for values in arrays]
        lengths = {len(values) for values in self.arrays}
        if len(lengths) != 1:
            raise InputError(f"the data arrays have different lengths {sorted(lengths)}")
        self.rows = lengths.pop()

    def read(self, start: int, stop: int) -> Block:
        return [
            _finite(values[start:stop], self.where, name, start)
            for name, values in zip(self.names, self.arrays, strict=True)
        ]

    def fingerprint(self) -> dict[str, str]:
        marks = {}
        for name, values in zip(self.names, self.arrays, strict=True):
            digest = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
            marks[name] = f"{values.shape} {digest}"
        return marks


class NpySource(Source):
    """An ``.npy`` array read through windows of a memory map: the whole array for one data name,
    else 2-D with one column per name (or the column number given in ``columns``)."""

    def __init__(
        self,
        path: str | Path,
        names: Sequence[str],
        columns: Mapping[str, str] | None = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
    ) -> None:
        self.path = Path(path)
        super().__init__(str(path), names, block_rows)
        columns = dict(columns or {})
        with open_regular_file(path, UNBOUNDED) as stream:
            size = os.fstat(stream.fileno()).st_size
            self.header = check_array_header(stream, self.where, size, UNBOUNDED)
            self.stat = os.fstat(stream.fileno())
        shape = self.header.shape
        if not shape:
            raise InputError(f"{path}: a 0-d array holds no samples")
        self.rows = shape[0]
        self.whole = len(self.names) == 1 and not columns
        self.columns: list[int] = []
        if not self.whole:
            if len(shape) != 2:
                raise InputError(
                    f"{path}: expected a 2-D array with one column per data name, got shape {shape}"
                )
            for default, name in enumerate(self.names):
                text = columns.get(name, str(default))
                if not text.isdigit() or len(text) > 18 or int(text) >= shape[1]:
                    raise InputError(
                        f"{path}: no column {text} for data '{name}' "
                        f"(the array has {shape[1]} columns, numbered from 0)"
                    )
                self.columns.append(int(text))
        if self.rows == 0:
            raise InputError(f"{path}: the array has no samples")

    def _window(self, start: int, stop: int, column: int | None) -> np.ndarray:
        """A memory map of rows start..stop-1 (of one column, in Fortran order)."""
        header = self.header
        item = header.dtype.itemsize
        tail = header.shape[1:]
        if header.fortran_order and column is not None:
            offset = header.offset + (column * self.rows + start) * item
            return np.memmap(self.path, header.dtype, "r", offset, (stop - start,))
        if header.fortran_order and tail:
            raise InputError(f"{self.where}: a Fortran-order array of shape {header.shape} "
                             "can be read block by block only by column")  # fmt: skip
        row_bytes = item * math.prod(tail)
        offset = header.offset + start * row_bytes
        return np.memmap(self.path, header.dtype, "r", offset, (stop - start, *tail))

    def read(self, start: int, stop: int) -> Block:
        return self._pick(start, stop, None)

    def _pick(self, start: int, stop: int, rows: np.ndarray | None) -> Block:
        local = slice(None) if rows is None else rows - start
        if self.whole:
            whole = self._window(start, stop, None)
            return [_finite(whole[local], self.where, self.names[0], start)]
        result = []
        window = None if self.header.fortran_order else self._window(start, stop, None)
        for name, column in zip(self.names, self.columns, strict=True):
            values = (
                self._window(start, stop, column)[local]
                if window is None
                else window[local, column]
            )
            result.append(_finite(values, self.where, name, start))
        return result

    def fingerprint(self) -> dict[str, str]:
        mark = f"{self.where} {self.stat.st_size} {self.stat.st_mtime_ns} rows={self.rows}"
        return {name: mark for name in self.names}


def parquet_files(path: Path) -> list[Path]:
    """The files of a Parquet data set: a file, the ``*.parquet`` files of a folder, or the
    files matching a pattern such as ``parts/*.parquet``, in name order."""
    if is_parquet_folder(path):
        return sorted(path.glob("*.parquet"))
    if not any(mark in path.name for mark in "*?["):
        return [path]
    files = sorted(file for file in path.parent.glob(path.name) if file.is_file())
    if not files:
        raise InputError(f"{path}: no file matches")
    return files


class ParquetSource(Source):
    """Parquet data (a file, or several: ``parquet_files``, read in name order as one table)
    through pyarrow: only the needed columns are read, a record batch or row group at a time.
    ``--column X=x1:x5`` gathers the columns x1 to x5 (schema order) into a matrix."""

    def __init__(
        self,
        path: str | Path,
        names: Sequence[str],
        columns: Mapping[str, str] | None = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
    ) -> None:
        parquet = require("pyarrow.parquet")
        pyarrow = require("pyarrow")
        super().__init__(str(path), names, block_rows)
        self.files = parquet_files(Path(path))
        self.handles: list[Any] = []
        self.picked: list[str] = []
        columns = dict(columns or {})
        first: dict[str, Any] = {}
        for file in self.files:
            with open_regular_file(file, UNBOUNDED):
                pass  # a regular file (not a FIFO, device or folder)
            try:
                handle = parquet.ParquetFile(file)
            except (pyarrow.ArrowException, OSError) as exc:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise InputError(f"{file}: not a readable Parquet file ({message})") from None
            schema = handle.schema_arrow
            header = list(schema.names)
            wanted = {name: csv_columns(file, header, name, columns) for name in self.names}
            picked = [header[i] for positions, _ in wanted.values() for i in positions]
            for column in picked:
                kind = schema.field(column).type
                if not (pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind)
                        or pyarrow.types.is_boolean(kind)):  # fmt: skip
                    raise InputError(f"{file}: column '{column}' holds {kind} values, "
                                     "not real numbers")  # fmt: skip
                seen = first.setdefault(column, (kind, file))
                if seen[0] != kind:
                    raise InputError(
                        f"{file}: column '{column}' is {kind}, but it is {seen[0]} in "
                        f"{seen[1]} (the files' schemas differ)"
                    )
            if self.handles and picked != self.picked:
                raise InputError(
                    f"{file}: the data read columns {', '.join(picked)}, but "
                    f"{', '.join(self.picked)} in {self.files[0]} (the files' schemas differ)"
                )
            self.wanted, self.picked, self.header = wanted, picked, header
            self.handles.append(handle)
        self.groups: list[tuple[int, int, int, int]] = []  # (start, stop, file, row group)
        start = 0
        for index, handle in enumerate(self.handles):
            for group in range(handle.num_row_groups):
                count = handle.metadata.row_group(group).num_rows
                if count:
                    self.groups.append((start, start + count, index, group))
                    start += count
        self.rows = start
        if self.rows == 0:
            raise InputError(f"{path}: the Parquet data have no rows")

    def _arrays(self, table: Any, start: int) -> Block:
        """A pyarrow table of the picked columns as one float64 array per name."""
        values = {}
        for column in self.picked:
            data = table.column(column)
            if data.null_count:
                raise InputError(
                    f"{self.where}: column '{column}' has empty (null) cells near row {start + 1}"
                )
            values[column] = np.asarray(data, dtype=np.float64)
        result = []
        for name, (positions, matrix) in self.wanted.items():
            parts = [values[self.header[i]] for i in positions]
            block = np.column_stack(parts) if matrix else parts[0]
            result.append(_finite(block, self.where, name, start))
        return result

    def spans(self) -> list[tuple[int, int]]:
        return [(start, stop) for start, stop, _, _ in self.groups]

    def read(self, start: int, stop: int) -> Block:
        for first, last, file, group in self.groups:
            if (first, last) == (start, stop):
                table = self.handles[file].read_row_group(group, columns=self.picked)
                return self._arrays(table, start)
        raise ValueError(f"not a row group: rows {start}..{stop - 1}")  # pragma: no cover

    def blocks(self) -> Iterator[tuple[int, Block]]:
        start = 0
        for handle in self.handles:
            for batch in handle.iter_batches(batch_size=self.block_rows, columns=self.picked):
                count = batch.num_rows
                if count:
                    yield start, self._arrays(batch, start)
                    start += count

    def row_shapes(self) -> list[tuple[int, ...]]:
        return [() if not matrix else (len(p),) for p, matrix in self.wanted.values()]

    def fingerprint(self) -> dict[str, str]:
        marks = []
        for file in self.files:
            info = file.stat()
            marks.append(f"{file} {info.st_size} {info.st_mtime_ns}")
        mark = "; ".join(marks) + f" rows={self.rows}"
        return {name: mark for name in self.names}


class CsvSource(Source):
    """A CSV file with a header row, streamed: only the named columns are converted, a block of
    rows at a time. Opening it reads it once to count and check the rows."""

    def __init__(
        self,
        path: str | Path,
        names: Sequence[str],
        columns: Mapping[str, str] | None = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
    ) -> None:
        self.path = Path(path)
        super().__init__(str(path), names, block_rows)
        self.columns = dict(columns or {})
        self.rows = sum(len(block[0]) for _, block in self.blocks())
        if self.rows == 0:
            raise InputError(f"{path}: the header has no data rows under it")
        self.stat = self.path.stat()

    def _tables(self) -> Iterator[tuple[np.ndarray, dict[str, tuple[list[int], bool]]]]:
        """Tables of at most ``block_rows`` rows of the picked columns."""
        from .data import _Lines  # the line reader of the in-memory CSV loader

        with open_regular_file(self.path, UNBOUNDED) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            lines = _Lines(text, self.path)
            reader = csv.reader(lines)
            try:
                wanted, picked, header = csv_header(self.path, reader, self.names, self.columns)
                values = array("d")
                for numbers in csv_numbers(self.path, reader, lines, header, picked):
                    values.extend(numbers)
                    if len(values) >= self.block_rows * len(picked):
                        yield np.frombuffer(values).reshape(-1, len(picked)), wanted
                        values = array("d")
                if values:
                    yield np.frombuffer(values).reshape(-1, len(picked)), wanted
            except UnicodeDecodeError:
                raise InputError(f"{self.path}: not a UTF-8 text file") from None
            except csv.Error as exc:
                raise InputError(f"{self.path}: not a valid CSV file: {exc}") from None

    def blocks(self) -> Iterator[tuple[int, Block]]:
        start = 0
        for table, wanted in self._tables():
            split = split_table(table, wanted)
            yield start, [split[name] for name in self.names]
            start += len(table)

    def take(self, rows: np.ndarray) -> Block:
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        out: Block = []
        for start, block in self.blocks():
            stop = start + len(block[0])
            if not out:
                out = [np.empty((len(rows), *values.shape[1:])) for values in block]
            low, high = np.searchsorted(ordered, [start, stop])
            for target, values in zip(out, block, strict=True):
                target[order[low:high]] = values[ordered[low:high] - start]
            if high == len(ordered):
                break
        return out

    def row_shapes(self) -> list[tuple[int, ...]]:
        for _start, block in self.blocks():
            return [tuple(values.shape[1:]) for values in block]
        return [() for _ in self.names]  # pragma: no cover - a source has rows

    def fingerprint(self) -> dict[str, str]:
        mark = f"{self.where} {self.stat.st_size} {self.stat.st_mtime_ns} rows={self.rows}"
        return {name: mark for name in self.names}


#: source class by file suffix
SOURCES: dict[str, type[NpySource] | type[ParquetSource] | type[CsvSource]] = {
    ".npy": NpySource,
    ".parquet": ParquetSource,
    ".csv": CsvSource,
}


def open_source(
    path: str | Path,
    names: Sequence[str],
    columns: Mapping[str, str] | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Source:
    """The block source for a ``.npy``, ``.parquet`` (file or folder) or ``.csv`` file."""
    path = Path(path)
    suffix = ".parquet" if is_parquet_folder(path) else path.suffix.lower()
    if suffix not in SOURCES:
        raise InputError(
            f"{path}: '{suffix}' cannot be read block by block (use .npy, .parquet or .csv)"
        )
    unknown = sorted(set(columns or {}) - set(names))
    if unknown:
        raise InputError(
            f"--column maps '{unknown[0]}', which is not a data name (data: {', '.join(names)})"
        )
    try:
        return SOURCES[suffix](path, names, columns, block_rows)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- the training loop


def per_sample_reduce(model: Any) -> str:
    """The model's fold of per-sample losses, 'mean' or 'sum'; other models cannot be summed
    block by block (a tensor loss may combine samples in any way)."""
    reduce = getattr(model, "REDUCE", None)
    if reduce not in ("mean", "sum"):
        raise InputError(
            "data read block by block (out of core or on Dask) needs a per-sample loss "
            "(symdiff.compile / symdiff fit LOSS --params ...), not a tensor loss"
        )
    return str(reduce)


class BlockFeed:
    """Loss and gradient of a per-sample model over a ``Source``, for the training loop."""

    def __init__(self, model: Any, source: Source) -> None:
        self.model = model
        self.source = source
        self.mean = per_sample_reduce(model) == "mean"
        if tuple(source.names) != tuple(model.DATA):
            raise InputError(
                f"the source has data {', '.join(source.names)}, the model {', '.join(model.DATA)}"
            )
        self.rows = source.rows

    def evaluate(self, params: np.ndarray, rows: np.ndarray | None) -> tuple[float, np.ndarray]:
        """(L, dL/dparams) over all rows (the sum of the block results) or over ``rows``."""
        if rows is not None:
            loss, grad = self.model.loss_and_grad(params, *self.source.take(rows))
            return float(loss), np.asarray(grad, dtype=np.float64).reshape(-1)
        total = 0.0
        gradient = np.zeros(params.size)
        for _start, block in self.source.blocks():
            loss, grad = self.model.loss_and_grad(params, *block)
            weight = len(block[0]) if self.mean else 1
            total += weight * float(loss)
            gradient += weight * np.asarray(grad, dtype=np.float64).reshape(-1)
        scale = self.rows if self.mean else 1
        return total / scale, gradient / scale

    def fingerprint(self) -> dict[str, str]:
        return self.source.fingerprint()


def is_dask_array(value: object) -> bool:
    """Whether ``value`` is a Dask array (checked without importing Dask)."""
    return type(value).__module__.split(".")[0] == "dask" and hasattr(value, "chunks")


def row_count(data: Any) -> int | None:
    """The number of samples of a ``Source`` or of Dask arrays (None for other data)."""
    if isinstance(data, Source):
        return data.rows
    values = list(data.values()) if isinstance(data, Mapping) else list(data)
    lengths = [value.shape[0] for value in values if is_dask_array(value) and value.ndim]
    return int(lengths[0]) if lengths else None


def feed_for(model: Any, data: Any) -> Any:
    """A feed for data that is not plain in-memory arrays: a ``Source`` (read block by block)
    or Dask arrays (``symdiff.train.dask_engine``); None for arrays in memory."""
    if isinstance(data, Source):
        return BlockFeed(model, data)
    values = list(data.values()) if isinstance(data, Mapping) else list(data)
    if any(is_dask_array(value) for value in values):
        from .dask_engine import DaskFeed  # Dask is an extra: imported only for Dask arrays

        return DaskFeed(model, data)
    return None
