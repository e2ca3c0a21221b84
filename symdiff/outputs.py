"""Every file symdiff writes goes through here: ``check_output`` before the work, ``write_output``
after it (the CLI's ``-o``, ``--save``, ``--plot``, ``--checkpoint``, and the library's
``write_json``, ``plot_training`` and checkpoints).

The rules (README, "Files are never lost"):

* Only a regular file or a new name is written. A folder, a path ending in a separator, a FIFO, a
  device, a socket, a symbolic link to any of those and a dangling link are refused with an
  ``InputError`` naming the path: writing there would block, or replace ``/dev/null`` itself.
* A symbolic link to a regular file is written through: its target is replaced (atomically, as
  below) and the link is kept.
* An output that is one of the command's inputs (``os.path.samefile``: also through a link or a
  hard link) is refused, and so are two outputs of one command that name the same file.
* ``-`` is standard output where the command allows it (``dash="stdout"``), refused where it
  cannot be (``dash="refuse"``: an image, a checkpoint) and a file named ``-`` for the library.
* The content goes to a temporary file in the target's folder, is flushed to disk, and is renamed
  over the target: the path holds the old file or the whole new one, never a part, and an error
  or an interrupt removes the temporary file.
* The file gets the permissions ``open(path, "w")`` would give it: a new file 0666 minus the umask
  (and the folder's default ACL, as the kernel applies both), a replaced file keeps its mode (and
  its owner and group where the user may keep them).
* An operating-system failure is one line naming the path and the reason: an ``InputError``
  (exit 2) when the path is the problem (no permission, a read-only file system or folder, a
  missing folder), a ``SymdiffError`` (exit 1) otherwise (a full disk, an I/O error).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Literal, TypeAlias, overload

from .errors import InputError, SymdiffError

__all__ = ["STDOUT", "check_distinct", "check_output", "write_output"]

#: the name that means standard output where a command allows it
STDOUT = "-"

PathLike: TypeAlias = "str | os.PathLike[str]"
#: the files a command reads, by option: {"--input": "d.csv"} or [("--input", "d.csv"), ...]
Source: TypeAlias = "str | os.PathLike[str] | None"
Inputs: TypeAlias = "Mapping[str, Source] | Iterable[tuple[str, Source]]"
Dash: TypeAlias = Literal["file", "stdout", "refuse"]

#: errors that say the path itself is wrong (the user's input: exit 2); others exit 1
PATH_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.EEXIST,
        errno.EXDEV,
        errno.ETXTBSY,
    }
)


@overload
def check_output(
    path: PathLike, inputs: Inputs = (), *, option: str | None = None, dash: Literal["file"] = ...
) -> Path: ...


@overload
def check_output(
    path: PathLike, inputs: Inputs = (), *, option: str | None = None, dash: Dash
) -> Path | None: ...


def check_output(
    path: PathLike, inputs: Inputs = (), *, option: str | None = None, dash: Dash = "file"
) -> Path | None:
    """``Path(path)`` if symdiff may write there (None: standard output), else an InputError.

    Call it before the work, so that a bad path fails first; ``write_output`` checks again.
    ``option`` (e.g. ``"--save"``) starts the messages.
    """
    target = _target(path, inputs, option, dash)
    return None if target is None else Path(path)


@overload
def write_output(
    path: PathLike,
    content: bytes | str,
    inputs: Inputs = (),
    *,
    option: str | None = None,
    dash: Literal["file"] = ...,
) -> Path: ...


@overload
def write_output(
    path: PathLike,
    content: bytes | str,
    inputs: Inputs = (),
    *,
    option: str | None = None,
    dash: Dash,
) -> Path | None: ...


def write_output(
    path: PathLike,
    content: bytes | str,
    inputs: Inputs = (),
    *,
    option: str | None = None,
    dash: Dash = "file",
) -> Path | None:
    """Write ``content`` (str: UTF-8) to ``path`` by the rules above; ``Path(path)``, or None when
    it went to standard output."""
    target = _target(path, inputs, option, dash)
    data = content.encode("utf-8") if isinstance(content, str) else content
    if target is None:
        _to_stdout(data)
        return None
    _replace(target, data, _shown(path, option))
    return Path(path)


def check_distinct(outputs: Mapping[str, PathLike | None]) -> None:
    """An InputError when two of a command's outputs ({option: path}) name the same file."""
    seen: dict[str, tuple[str, str]] = {}
    for option, path in outputs.items():
        if path is None or os.fspath(path) == STDOUT:
            continue
        text = os.fspath(path)
        key = os.path.normcase(os.path.realpath(text))
        if key in seen:
            other, other_text = seen[key]
            raise InputError(
                f"{option} {text}: the same file as {other} {other_text}; "
                "give each output its own name"
            )
        seen[key] = (option, text)


# ---------------------------------------------------------------------------------------------


def _shown(path: PathLike, option: str | None) -> str:
    text = os.fspath(path)
    return f"{option} {text}" if option else text


def _target(path: PathLike, inputs: Inputs, option: str | None, dash: Dash) -> Path | None:
    """The file that will be replaced or created (a link's target), None for standard output."""
    text = os.fspath(path)
    shown = _shown(path, option)
    if text == STDOUT and dash != "file":
        if dash == "stdout":
            return None
        raise InputError(f"{shown}: cannot go to standard output; give a file name")
    if not text:
        raise InputError(f"{option + ': ' if option else ''}the file name is empty")
    if text.endswith(os.sep) or (os.altsep and text.endswith(os.altsep)):
        raise InputError(f"{shown}: names a folder (it ends in '{text[-1]}'); give a file name")
    if os.path.basename(text) in (os.curdir, os.pardir):
        raise InputError(f"{shown}: names a folder; give a file name")
    link = _lstat(text, shown)
    target = Path(text)
    if link is not None:
        info = link
        if stat.S_ISLNK(link.st_mode):
            info = _follow(text, shown, dash)
            target = Path(os.path.realpath(text))
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{shown}: is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            via = " (through a symbolic link)" if info is not link else ""
            hint = "; '-' is standard output" if dash == "stdout" else ""
            raise InputError(
                f"{shown}: is {_kind(info.st_mode)}{via}, not a regular file; symdiff writes "
                f"only to a regular file or a new name{hint}"
            )
    _check_folder(target.parent, shown)
    if link is not None:
        _check_inputs(text, shown, inputs)
        if not os.access(target, os.W_OK):  # open(path, "w") would refuse it too
            raise InputError(
                f"{shown}: cannot write it: {_why_not(target)} (the file is read-only)"
            )
    return target


def _lstat(text: str, shown: str) -> os.stat_result | None:
    try:
        return os.lstat(text)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise InputError(f"{shown}: '{_not_a_folder(text)}' is not a folder") from None
    except OSError as exc:
        raise _os_error(shown, exc, "cannot look at it") from None


def _not_a_folder(text: str) -> str:
    """The first folder on the way to ``text`` that is something else (e.g. a file)."""
    parts = Path(text).parts
    for end in range(1, len(parts)):
        step = os.path.join(*parts[:end])
        if os.path.exists(step) and not os.path.isdir(step):
            return step
    return os.path.dirname(text)


def _follow(text: str, shown: str, dash: Dash) -> os.stat_result:
    """What a symbolic link points to; a dangling link or a loop is refused."""
    try:
        return os.stat(text)
    except FileNotFoundError:
        raise InputError(
            f"{shown}: is a symbolic link to '{os.readlink(text)}', which does not exist; "
            "symdiff writes only to a regular file or a new name"
        ) from None
    except OSError as exc:
        raise _os_error(shown, exc, "cannot follow the symbolic link") from None


def _check_folder(folder: Path, shown: str) -> None:
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        raise InputError(f"{shown}: the folder '{folder}' does not exist") from None
    except OSError as exc:
        raise _os_error(shown, exc, f"cannot use the folder '{folder}'") from None
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"{shown}: '{folder}' is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{shown}: cannot write to the folder '{folder}': {_why_not(folder)}")


def _why_not(path: Path) -> str:
    """Why the folder cannot be written (for the message)."""
    try:
        read_only = bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):
        read_only = False
    return os.strerror(errno.EROFS if read_only else errno.EACCES)


def _check_inputs(text: str, shown: str, inputs: Inputs) -> None:
    pairs = inputs.items() if isinstance(inputs, Mapping) else inputs
    for option, source in pairs:
        if source is None or os.fspath(source) == STDOUT:
            continue
        try:
            same = os.path.samefile(text, source)
        except OSError:  # the input does not exist (yet): it cannot be this file
            continue
        if same:
            raise InputError(
                f"{shown}: is the same file as {option} {os.fspath(source)}; symdiff never "
                "writes over its input: choose another name"
            )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _os_error(shown: str, exc: OSError, doing: str) -> SymdiffError:
    """One line naming the path and the reason; exit 2 when the path is the problem."""
    reason = exc.strerror or type(exc).__name__
    message = f"{shown}: {doing}: {reason}"
    if exc.errno in PATH_ERRNOS:
        return InputError(message)
    return SymdiffError(message)


def _to_stdout(data: bytes) -> None:
    stream = sys.stdout
    stream.flush()
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        binary.write(data)
        binary.flush()
    else:  # a text-only stream (an embedding application's): decode what we encoded
        stream.write(data.decode("utf-8"))
        stream.flush()


def _replace(target: Path, data: bytes, shown: str) -> None:
    """Write ``data`` to a temporary file next to ``target``, flush it to disk, rename it.

    Whatever stops it (an OSError, an interrupt raised by a signal handler between any two
    steps), the temporary file is removed: its name is known before it is created.
    """
    folder = target.parent
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise _os_error(shown, exc, "cannot look at it") from None
    # 0666 for a new file: the kernel takes off the umask (and applies a default ACL) exactly as
    # for open(path, "w"); a replaced file gets its old mode below
    mode = 0o666 if old is None else 0o600
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    temporary: str | None = None
    doing = f"cannot create a file in the folder '{folder}'"
    try:
        for _attempt in range(100):
            temporary = os.path.join(folder, f".{target.name[:200]}.{secrets.token_hex(4)}.tmp")
            try:
                descriptor = os.open(temporary, flags, mode)
                break
            except FileExistsError:  # another file's name: not ours to remove
                temporary = None
        else:
            raise SymdiffError(f"{shown}: no free temporary name in the folder '{folder}'")
        doing = "cannot write it"
        with os.fdopen(descriptor, "wb") as stream:
            if old is not None:
                _keep_owner_and_mode(stream.fileno(), old)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        _remove(temporary)
        raise _os_error(shown, exc, doing) from None
    except BaseException:  # an interrupt, a signal turned into an exception: leave nothing
        _remove(temporary)  # (after the rename there is nothing left to remove)
        raise
    _sync_folder(folder)


def _keep_owner_and_mode(descriptor: int, old: os.stat_result) -> None:
    """The replaced file's owner and group where allowed (as open(path, "w") keeps them), and
    its permission bits (after chown, which may clear set-id bits)."""
    if hasattr(os, "fchown"):
        mine = os.fstat(descriptor)
        if (mine.st_uid, mine.st_gid) != (old.st_uid, old.st_gid):
            # not permitted: the new file is the writer's own, as a copy would be
            with suppress(OSError):
                os.fchown(descriptor, old.st_uid, old.st_gid)
    if hasattr(os, "fchmod"):
        os.fchmod(descriptor, stat.S_IMODE(old.st_mode))


def _remove(temporary: str | None) -> None:
    if temporary is not None:
        with suppress(OSError):
            os.unlink(temporary)


def _sync_folder(folder: Path) -> None:
    """Flush the rename to disk where the platform allows (best effort: the file is written)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        descriptor = os.open(folder, flags)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
