"""Options and helpers shared by every command (format, expression input, variable lists)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import InputError
from ..names import canonical, unknown

if TYPE_CHECKING:
    from ..explanations.report import Report

F = TypeVar("F", bound=Callable[..., Any])


class ExpressionCommand(click.Command):
    """A command whose arguments may start with '-' (``symdiff diff "-y*log(p)" --wrt p``).

    A word that starts with a single '-' and is not one of the command's options (nor the value
    of one) is an expression, never a cluster of short options; unknown ``--long`` options are
    still errors.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value: dict[str, bool] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                for name in param.opts + param.secondary_opts:
                    takes_value[name] = not (param.is_flag or param.count)
        protected: list[str] = []
        expects_value = False
        for index, arg in enumerate(args):
            if arg == "--":
                protected.extend(args[index:])
                break
            is_expression = (
                not expects_value
                and arg.startswith("-")
                and not arg.startswith("--")
                and arg not in takes_value
                and arg != "-"
            )
            # a leading space keeps click from reading the expression as options; the parser
            # ignores it
            protected.append(" " + arg if is_expression else arg)
            expects_value = not expects_value and takes_value.get(arg, False)
        return super().parse_args(ctx, protected)


#: ``@cli.command(..., **EXPRESSION_FIRST)``: the command takes expressions that may start with '-'.
EXPRESSION_FIRST: dict[str, Any] = {"cls": ExpressionCommand}


class NameChoice(click.Choice):
    """A click.Choice matched without regard to case, a typo answered with a did-you-mean
    (``symdiff.names``): ``--format JSON`` is json, ``--format jsno`` suggests it."""

    def __init__(self, choices: Sequence[str], kind: str) -> None:
        super().__init__(choices)
        self.kind = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        name = str(value)
        choices = [str(choice) for choice in self.choices]
        match = canonical(name, choices)
        if match is None:
            self.fail(unknown(self.kind, name, choices), param, ctx)
        return match


def format_option(*choices: str) -> Callable[[F], F]:
    """--format with the given choices (text first, the default)."""
    options = choices or ("text", "markdown", "latex", "json")
    return click.option(
        "--format",
        "fmt",
        type=NameChoice(options, "format"),
        default=options[0],
        show_default=True,
        help="Output format.",
    )


def read_expression(text: str) -> str:
    """EXPR without surrounding blanks, or standard input when EXPR is '-' (at most 1 MiB,
    decoded strictly: bytes that are not text in its encoding are bad input)."""
    if text == "-":
        from ..inputs import TEXT_LIMIT, read_stdin_text  # NumPy: only when reading stdin

        data = read_stdin_text(TEXT_LIMIT)
        if not data.strip():
            raise InputError("no expression on standard input")
        return data.strip()
    return text.strip()


def split_names(values: tuple[str, ...]) -> list[str] | None:
    """('x,z', 'y') -> ['x', 'z', 'y']; empty -> None (meaning: all variables)."""
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return names or None


def emit(report: Report, fmt: str) -> None:
    """Print a report in the chosen format."""
    click.echo(report.render(fmt))
