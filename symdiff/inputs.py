"""Bounded reads of everything a user hands symdiff: model files, templates, standard input and
data files. Every reader goes through this module, so every read is checked the same way.

- A path must name a regular file (a folder, a FIFO, a device such as ``/dev/zero`` or a socket is
  refused without reading, and without waiting for a writer: the file is opened non-blocking and
  checked with ``fstat`` on the open descriptor, so nothing can swap it in between).
- Its size must be within a limit before a byte is read, and no more than ``limit + 1`` bytes are
  ever read (a file that grows, or one whose size the system does not report, is still bounded).
- A NumPy array's header (``.npy``, or each member of an ``.npz`` archive) is read and checked
  before its data: the dtype must be real numbers, the declared size within the limit and
  actually present in the file, so a small archive that declares a huge array is refused
  before anything is inflated.

Every refusal is an ``InputError`` (exit code 2) naming the file and the limit.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
import sys
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from .errors import InputError

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

#: Model files, templates and an expression on standard input: far more than any valid one
#: needs (the parser refuses a loss longer than 10,000 characters).
TEXT_LIMIT = 1 * MIB
#: Data files (``fit --input``): the file's size, and the float64 arrays read from it
#: (``fit --max-input-mb`` changes it).
DATA_LIMIT = 1 * GIB
#: The option that raises ``DATA_LIMIT``.
DATA_LIMIT_OPTION = "--max-input-mb"
#: Members of one ``.npz`` archive (each costs memory when the archive's directory is read).
NPZ_MEMBER_LIMIT = 10_000
#: Characters in one line of a CSV file.
CSV_LINE_LIMIT = 16 * MIB
#: Bytes of one ``.npy`` header (NumPy's own default ``max_header_size``).
NPY_HEADER_LIMIT = 10_000

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows
_NOCTTY = getattr(os, "O_NOCTTY", 0)


def format_size(size: int) -> str:
    """1073741824 -> '1 GiB'; 1536 -> '1.5 KiB'; 12 -> '12 bytes'; 2**44 -> '16,384 GiB'."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= scale:
            value = size / scale
            return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"
    return f"{size} bytes"


def _label(path: str | Path, what: str) -> str:
    return f"{what} {path}" if what else str(path)


def _too_big(label: str, size: str, limit: int, option: str) -> InputError:
    hint = f"; {option} raises the limit" if option else ""
    return InputError(f"{label}: {size}, more than the limit of {format_size(limit)}{hint}")


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular_file(path: str | Path, limit: int, what: str = "", option: str = "") -> IO[bytes]:
    """A binary stream of the regular file ``path`` whose size is at most ``limit`` bytes.

    Opened non-blocking (a FIFO is refused, not waited on) and checked with ``fstat`` on the open
    descriptor. ``option`` names the option that raises ``limit``, for the message.
    """
    label = _label(path, what)
    try:
        descriptor = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY | _NOCTTY)
    except FileNotFoundError:
        raise InputError(f"cannot read {label}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {label}: it is a folder, not a regular file") from None
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(
                f"cannot read {label}: it is {_kind(info.st_mode)}, not a regular file"
            )
        if info.st_size > limit:
            raise _too_big(label, f"the file is {format_size(info.st_size)}", limit, option)
        if _NONBLOCK:
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_bytes(stream: IO[bytes], limit: int, label: str, option: str = "") -> bytes:
    """At most ``limit`` bytes from ``stream``; more is an InputError (never read past limit+1)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        hint = f"; {option} raises the limit" if option else ""
        raise InputError(f"{label}: longer than the limit of {format_size(limit)}{hint}")
    return data


def _decode(data: bytes, label: str, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label}: not {encoding.upper()} text ({exc.reason} at byte {exc.start})"
        ) from None
    except LookupError:
        raise InputError(f"{label}: unknown text encoding '{encoding}'") from None


def read_text_file(
    path: str | Path,
    limit: int = TEXT_LIMIT,
    what: str = "",
    *,
    option: str = "",
    encoding: str = "utf-8",
) -> str:
    """The text of a regular file of at most ``limit`` bytes, strictly decoded."""
    label = _label(path, what)
    with open_regular_file(path, limit, what, option) as stream:
        try:
            data = read_bytes(stream, limit, label, option)
        except OSError as exc:
            raise InputError(f"cannot read {label}: {exc.strerror or exc}") from None
    return _decode(data, label, encoding)


def read_stdin_text(limit: int = TEXT_LIMIT, what: str = "standard input") -> str:
    """Standard input as text, at most ``limit`` bytes, decoded strictly with its encoding."""
    stream = sys.stdin
    if stream is None:
        raise InputError(f"no {what} (it is closed)")
    encoding = getattr(stream, "encoding", None) or "utf-8"
    buffer = getattr(stream, "buffer", None)
    try:
        if buffer is not None:
            return _decode(read_bytes(buffer, limit, what), what, encoding)
        text = stream.read(limit + 1)
    except UnicodeDecodeError as exc:
        raise InputError(f"{what}: not {encoding.upper()} text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}") from None
    if len(text) > limit:
        raise InputError(f"{what}: longer than the limit of {format_size(limit)}")
    return text


# --------------------------------------------------------------------------- NumPy arrays


@dataclass(frozen=True)
class ArrayHeader:
    """What an ``.npy`` header declares: shape, dtype, memory order, and where the data start."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize


def check_array_header(
    stream: IO[bytes],
    where: str,
    available: int,
    limit: int,
    option: str = "",
    *,
    array: str = "",
    used: int = 0,
) -> ArrayHeader:
    """Read and check the header of the ``.npy`` data at ``stream``'s position, before its data.

    ``where`` names the file and ``array`` the archive member ('' for a whole ``.npy`` file);
    ``available`` is the number of bytes from the start of the header to the end of the file
    (or member). Refused: a header that is not NumPy's (or longer than NPY_HEADER_LIMIT), a
    dtype that is not real numbers (objects, text, structures, complex), data shorter than the
    header declares, and an array whose float64 copy (or raw data, when larger) exceeds
    ``limit`` bytes, together with the ``used`` bytes of arrays read before it from the file.
    """
    subject = array or "the array"
    start = stream.tell()
    try:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported format version {version}")
        # the header's length is checked before the header is read (NumPy reads, then checks)
        length_format = "<H" if version == (1, 0) else "<I"
        length_bytes = stream.read(struct.calcsize(length_format))
        if len(length_bytes) < struct.calcsize(length_format):
            raise ValueError("the file ends inside the header")
        (length,) = struct.unpack(length_format, length_bytes)
        if length > NPY_HEADER_LIMIT:
            raise ValueError(
                f"the header declares {length:,} bytes, more than the limit of {NPY_HEADER_LIMIT:,}"
            )
        body = stream.read(length)
        if len(body) < length:
            raise ValueError("the file ends inside the header")
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(io.BytesIO(length_bytes + body))
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        what = f"{array} is not a readable .npy array" if array else "not a readable .npy file"
        raise InputError(f"{where}: {what} ({_one_line(exc)})") from None
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or dtype.hasobject:
        raise InputError(f"{where}: {subject} holds {dtype} values, not real numbers")
    header = ArrayHeader(tuple(int(d) for d in shape), dtype, bool(fortran), stream.tell())
    if any(d < 0 for d in header.shape):
        raise InputError(
            f"{where}: the header of {subject} declares a negative dimension {header.shape}"
        )
    data_bytes = available - (header.offset - start)
    if header.nbytes > data_bytes:
        raise InputError(
            f"{where}: the header of {subject} declares shape {header.shape} of {dtype} "
            f"({format_size(header.nbytes)}), but the {'member' if array else 'file'} holds "
            f"only {format_size(max(data_bytes, 0))} of data (truncated?)"
        )
    needed = header.count * max(8, dtype.itemsize)
    if needed + used > limit:
        before = f" (after {format_size(used)} of arrays before it)" if used else ""
        raise _too_big(
            where,
            f"{subject} of shape {header.shape} needs {format_size(needed)} as float64{before}",
            limit,
            option,
        )
    return header


def read_array_data(
    stream: IO[bytes], header: ArrayHeader, where: str, array: str = ""
) -> np.ndarray:
    """The array whose (checked) header was just read: exactly ``header.nbytes`` bytes."""
    raw = np.empty(header.nbytes, dtype=np.uint8)
    view = raw.data
    filled = 0
    while filled < header.nbytes:
        got = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            raise InputError(
                f"{where}: the data of {array or 'the array'} end after {format_size(filled)}, "
                f"the header declares {format_size(header.nbytes)}"
            )
        filled += got
    order: Literal["C", "F"] = "F" if header.fortran_order else "C"
    return raw.view(header.dtype).reshape(header.shape, order=order)


def read_npy(path: str | Path, limit: int = DATA_LIMIT, option: str = "") -> np.ndarray:
    """An ``.npy`` array, its header checked (``check_array_header``) before its data are read."""
    where = str(path)
    with open_regular_file(path, limit + 64 * KIB, "", option) as stream:
        size = os.fstat(stream.fileno()).st_size
        try:
            header = check_array_header(stream, where, size, limit, option)
            return read_array_data(stream, header, where)
        except OSError as exc:
            raise InputError(f"cannot read {where}: {exc.strerror or exc}") from None


class NpzArchive:
    """An ``.npz`` archive opened for bounded reads: ``keys`` lists its arrays (names without
    ``.npy``, as ``numpy.load`` gives them); ``read(key)`` checks the member's header first."""

    def __init__(self, path: str | Path, limit: int = DATA_LIMIT, option: str = "") -> None:
        self.label = str(path)
        self.limit = limit
        self.option = option
        self._stream = open_regular_file(path, limit, "", option)
        try:
            self._check_directory()
            self._zip = zipfile.ZipFile(self._stream)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
            self._stream.close()
            raise InputError(f"{self.label}: not a readable .npz file ({_one_line(exc)})") from None
        except BaseException:
            self._stream.close()
            raise
        self.members = {info.filename: info for info in self._zip.infolist()}
        self.keys = [name[:-4] if name.endswith(".npy") else name for name in self.members]

    def _check_directory(self) -> None:
        """Refuse an archive that lists more than NPZ_MEMBER_LIMIT members, before reading its
        directory (each member listed costs memory)."""
        end_record = getattr(zipfile, "_EndRecData", None)
        if end_record is None:  # pragma: no cover - every CPython has it
            return
        record = end_record(self._stream)
        if record is None:
            raise zipfile.BadZipFile("File is not a zip file")
        entries = int(record[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)])
        if entries > NPZ_MEMBER_LIMIT:
            raise InputError(
                f"{self.label}: the archive lists {entries:,} members, "
                f"more than the limit of {NPZ_MEMBER_LIMIT:,}"
            )
        self._stream.seek(0)

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._stream.close()

    def read(self, key: str, used: int = 0) -> np.ndarray:
        """The array ``key``, its header checked first; ``used`` bytes of the limit are taken."""
        name = key if key in self.members else f"{key}.npy"
        info = self.members[name]
        array = f"array '{key}'"
        if info.flag_bits & 0x1:
            raise InputError(f"{self.label}: {array} is encrypted")
        try:
            with self._zip.open(info) as stream:
                header = check_array_header(
                    stream,
                    self.label,
                    info.file_size,
                    self.limit,
                    self.option,
                    array=array,
                    used=used,
                )
                return read_array_data(stream, header, self.label, array)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise InputError(f"{self.label}: {array} cannot be read ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def describe_shape(shape: Sequence[Any]) -> str:
    """(5, 'n') -> '(5, n)'; ('n',) -> '(n,)'."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"
