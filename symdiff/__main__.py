"""``python -m symdiff`` and the ``symdiff`` console script.

The heavy imports (SymPy, NumPy, the commands) happen inside ``main``, so that a Ctrl-C or a
SIGTERM while they load ends with one line and exit 130 (143), never a traceback: the ``symdiff``
package imports nothing heavy until one of its names is used, and this module only the
standard library's ``signal``.
"""

from __future__ import annotations

import signal
import sys

from .interrupts import Interrupted, raise_on_sigterm


def main() -> None:
    """Console-script entry point: the ``symdiff`` command."""
    try:
        raise_on_sigterm()
        from .cli import main as run

        run()
    except SystemExit:  # the command has ended: a signal now would only cut the exit short
        _ignore_signals()
        raise
    except KeyboardInterrupt:
        _quit("interrupted", 128 + signal.SIGINT)
    except Interrupted as exc:
        _quit(str(exc), exc.exit_code)


def _ignore_signals() -> None:
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)


def _quit(what: str, code: int) -> None:
    _ignore_signals()
    try:
        sys.stderr.write(f"Error: {what}\n")
        sys.stderr.flush()
    finally:
        sys.exit(code)


if __name__ == "__main__":
    main()
