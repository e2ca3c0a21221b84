"""The ``symdiff`` command line: a thin click adapter over the library.

Every command parses its options, calls the library, prints a Report. Errors become one line on
stderr beginning ``Error:`` with exit code 2 for bad input and 1 for other failures; a traceback
only with ``symdiff --debug``. Ctrl-C is one line too, ``Error: interrupted``, exit 130 (SIGTERM
under the console entry point: ``Error: terminated``, 143); ``symdiff fit`` first stops training
at a step boundary and keeps its results (``symdiff.interrupts``).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from ..errors import SymdiffError
from ..interrupts import Interrupted, interruption, raise_on_sigterm


class SymdiffGroup(click.Group):
    """A click group that maps every failure to one ``Error:`` line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C becomes ``Interrupted`` (click would print a blank line and
        turn it into a plain Abort, exit 1)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("SYMDIFF_DEBUG") == "1"
        code = 0
        try:
            result = super().main(
                args=argv, prog_name=prog_name or "symdiff", standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except Interrupted as exc:
            if debug:
                traceback.print_exc()
            code = _report_interrupt(exc)
        except click.exceptions.Abort as exc:
            interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
            click.echo(f"Error: {'interrupted' if interrupted else 'aborted'}", err=True)
            code = 130 if interrupted else 1
        except click.ClickException as exc:
            click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        except SymdiffError as exc:
            if debug:
                traceback.print_exc()
            cut = interruption(exc)  # an interrupt that this error replaced on its way out
            if cut is not None:
                code = _report_interrupt(cut)
            else:
                click.echo(f"Error: {_one_line(str(exc))}", err=True)
                pointer = getattr(exc, "pointer", None)
                if debug and pointer is not None and pointer():
                    click.echo(pointer(), err=True)
                code = exc.exit_code
        except KeyboardInterrupt as exc:
            code = _report_interrupt(exc)
        except BrokenPipeError:
            code = 1
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks
            if debug:
                traceback.print_exc()
            cut = interruption(exc)  # cleanup code that failed while an interrupt passed
            if cut is not None:
                code = _report_interrupt(cut)
            else:
                click.echo(
                    f"Error: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                    "(run 'symdiff --debug ...' for details)",
                    err=True,
                )
                code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _report_interrupt(exc: BaseException) -> int:
    """One line for an interrupt (Interrupted or KeyboardInterrupt); the exit code, 128+signal."""
    if isinstance(exc, Interrupted):
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    click.echo("Error: interrupted", err=True)
    return 130


def _one_line(message: str) -> str:
    return " ".join(message.split())


@click.group(cls=SymdiffGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="symdiff")
@click.option("--debug", is_flag=True, help="Show a Python traceback on errors.")
def cli(debug: bool) -> None:
    """symdiff: derivatives of ML losses, explained step by step, and fast NumPy code.

    \b
    Examples:
      symdiff diff "2*x**3 + 5" --wrt x
      symdiff grad "4*x**4*z**3"
      symdiff hessian "x**2*y + y**3" --at x=1,y=2
    """


def main() -> None:
    """Run the command line (``symdiff.__main__.main``, the console script, calls it after the
    imports, which it guards against Ctrl-C): SIGTERM raises ``Interrupted`` like Ctrl-C, so
    cleanup runs and the exit code is 143."""
    raise_on_sigterm()
    cli.main()


# Commands register themselves on ``cli`` when their modules are imported.
from . import calculus as _calculus  # noqa: E402,F401
from . import codegen as _codegen  # noqa: E402,F401
from . import explain as _explain  # noqa: E402,F401
from . import fit as _fit  # noqa: E402,F401
