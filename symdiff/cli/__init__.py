"""The ``symdiff`` command line: a thin click adapter over the library.

Every command parses its options, calls the library, prints a Report. Errors become one line on
stderr beginning ``Error:`` with exit code 2 for bad input and 1 for other failures; a traceback
only with ``--debug`` (before or after the command). A bare ``symdiff`` prints the help (exit 0).
Ctrl-C is one line too, ``Error: interrupted``, exit 130 (SIGTERM under the console entry point:
``Error: terminated``, 143); ``symdiff fit`` first stops training at a step boundary and keeps
its results (``symdiff.interrupts``).

The commands load lazily: ``COMMANDS`` names the module that registers each one and its one-line
help, so ``symdiff --help`` and ``--version`` import neither SymPy nor NumPy, and ``symdiff diff``
imports only the calculus commands.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from ..errors import SymdiffError
from ..interrupts import Interrupted, interruption, raise_on_sigterm
from ..names import did_you_mean

#: command -> (the module under ``symdiff.cli`` that registers it, its one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": (
        "explain",
        "Check a derivative: exit 0 if ANSWER equals d EXPR/d WRT, else 1 and a counterexample.",
    ),
    "codegen": (
        "codegen",
        "Generate a standalone NumPy (or array API) module for the per-sample LOSS ('-' reads "
        "standard input).",
    ),
    "diff": ("calculus", "Derivative of EXPR ('-' reads standard input)."),
    "fit": ("fit", "Train the parameters of the per-sample LOSS on data by gradient descent."),
    "grad": ("calculus", "Gradient of EXPR: its partial derivatives ('-' reads standard input)."),
    "gradcheck": (
        "codegen",
        "Check MODULE's gradient against central finite differences; exit 1 when it fails.",
    ),
    "graph": (
        "explain",
        "Computational graph of EXPR(s), evaluated in forward and/or reverse mode.",
    ),
    "hessian": ("calculus", "Hessian of EXPR: H[i, j] = d2 EXPR / dx_i dx_j."),
    "jacobian": ("calculus", "Jacobian of several expressions: J[i, j] = d EXPR_i / d x_j."),
    "steps": ("explain", "Step-by-step derivative of EXPR ('-' reads standard input)."),
}


class SymdiffGroup(click.Group):
    """A click group that loads its commands on first use and maps every failure to one
    ``Error:`` line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing the module that registers it the first time."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f".{COMMANDS[cmd_name][0]}", __name__)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's resolution; an unknown command gets a did-you-mean."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            hint = did_you_mean(name, self.list_commands(ctx)) or "see 'symdiff --help'"
            raise click.UsageError(f"No such command '{name}' ({hint}).", ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``COMMANDS`` (a loaded command's own help wins), nothing
        imported."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is not None:
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append(
                    (name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
                )
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """A bare ``symdiff`` prints the help on standard output and exits 0, as pip, docker,
        kubectl and cargo do (click would make it an error, exit 2)."""
        if not args:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, args)

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
        argv, debug = _take_debug(list(sys.argv[1:] if args is None else args))
        debug = debug or os.environ.get("SYMDIFF_DEBUG") == "1"
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
                _print_traceback()
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
                _print_traceback()
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
                _print_traceback()
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


def _print_traceback() -> None:
    """``--debug``: the traceback of the exception being handled (``traceback`` is imported
    here, on the error path, not at start-up)."""
    import traceback

    traceback.print_exc()


def _take_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``--debug`` anywhere before ``--`` (before or after the command): (the other arguments,
    whether it was given)."""
    end = argv.index("--") if "--" in argv else len(argv)
    rest = [arg for arg in argv[:end] if arg != "--debug"] + argv[end:]
    return rest, len(rest) < len(argv)


def load_commands(library: bool = False) -> None:
    """Import every command now; with ``library``, every module of symdiff too, which the
    commands import when they run (a process that forks workers imports it all once, up front)."""
    for module in sorted({module for module, _help in COMMANDS.values()}):
        importlib.import_module(f".{module}", __name__)
    if library:
        import pkgutil

        root = importlib.import_module("symdiff")
        for found in pkgutil.walk_packages(root.__path__, "symdiff."):
            importlib.import_module(found.name)


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
@click.option(
    "--debug", is_flag=True, help="Show a Python traceback on errors (before or after the command)."
)
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
