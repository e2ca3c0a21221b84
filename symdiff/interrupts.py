"""Interrupts of the command line: Ctrl-C (SIGINT) and SIGTERM.

Outside training, either signal ends the command at once with one line, ``Error: interrupted``
(exit 130) or ``Error: terminated`` (exit 143), and no traceback; an atomic write in progress
removes its temporary file on the way out (``symdiff.outputs``).

During ``symdiff fit`` the first signal only asks training to stop at the end of the current step
(``StopAtStep``): the parameters reached are reported and saved; a second signal ends the command
at once (``Interrupted``).

Only the command line installs handlers, and only in the main thread; the library never touches
them (a KeyboardInterrupt in a notebook stays a KeyboardInterrupt).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType, TracebackType
from typing import Any

__all__ = [
    "Interrupted",
    "StopAtStep",
    "deferred",
    "exit_code",
    "interruption",
    "raise_on_sigterm",
    "signal_name",
]

#: the signals a command stops on
SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: written to stderr when the first signal asks training to stop
NOTICE = "\nsymdiff: stopping after the current step (interrupt again to quit at once)\n"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """128 + the signal number, as a shell reports a process ended by it (SIGINT 130, SIGTERM
    143)."""
    return 128 + signum


class Interrupted(BaseException):
    """Ends the command at once (a BaseException, so ``except Exception`` lets it through, as it
    does KeyboardInterrupt); ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum
        self.exit_code = exit_code(signum)
        super().__init__("interrupted" if signum == signal.SIGINT else "terminated")


class _Deferral:
    """How many ``deferred`` blocks the main thread is in, and the signal that waits for them."""

    depth = 0
    pending: int | None = None


@contextmanager
def deferred() -> Iterator[None]:
    """A block that symdiff's own handlers do not cut: a signal that would end the command
    (``raise_on_sigterm``, a second signal under ``StopAtStep``) waits until the block ends,
    then raises ``Interrupted``. For short work that library code does not survive being cut in
    (building a zip archive in memory), not for long work. Only the main thread defers: signal
    handlers run there alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Deferral.depth += 1
    try:
        yield
    finally:
        _Deferral.depth -= 1
        signum, _Deferral.pending = _Deferral.pending, None
        if _Deferral.depth == 0 and signum is not None:
            raise Interrupted(signum)


def _end_now(signum: int) -> None:
    """Raise ``Interrupted``, or, inside a ``deferred`` block, when the block ends."""
    if _Deferral.depth > 0:
        _Deferral.pending = signum
        return
    raise Interrupted(signum)


def _raise(signum: int, frame: FrameType | None) -> None:
    _end_now(signum)


def interruption(exc: BaseException) -> BaseException | None:
    """The Interrupted or KeyboardInterrupt that ``exc`` was raised while handling (cleanup
    code that fails when it is cut short replaces the interrupt with its own error), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (Interrupted, KeyboardInterrupt)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def raise_on_sigterm() -> None:
    """Make SIGTERM raise ``Interrupted`` (so cleanup runs), as SIGINT raises KeyboardInterrupt.

    For the console entry point only: it changes the process's handler."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


class StopAtStep:
    """``with StopAtStep() as stop:`` -- SIGINT and SIGTERM set ``stop.signum`` (training then
    ends at the next step boundary: ``stop.reason()`` is not None); a second signal raises
    ``Interrupted`` at once. The previous handlers come back on exit. Outside the main thread
    (where no handler can be installed) it only ever reports no signal."""

    def __init__(self) -> None:
        self.signum: int | None = None
        #: whether a run was stopped by the signal (not: the signal came after training)
        self.stopped = False
        self._received = itertools.count()  # next() is one step: safe when handlers nest
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopAtStep:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Python may run a second signal's handler inside this one (between any two of its
        # steps): which signal is the first is decided by one indivisible step
        if next(self._received):
            _end_now(signum)
            return
        self.signum = signum
        # straight to the file descriptor: the main thread may be inside a write to sys.stderr
        with suppress(OSError):
            os.write(2, NOTICE.encode())

    def reason(self, step: int) -> str | None:
        """Why training stops after ``step`` (None: it goes on)."""
        if self.signum is None:
            return None
        self.stopped = True
        return f"interrupted by {signal_name(self.signum)} after step {step}"
