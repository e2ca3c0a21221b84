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

import os
import signal
import threading
from contextlib import suppress
from types import FrameType, TracebackType
from typing import Any

__all__ = ["Interrupted", "StopAtStep", "exit_code", "raise_on_sigterm", "signal_name"]

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


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


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
        if self.signum is not None:
            raise Interrupted(signum)
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
