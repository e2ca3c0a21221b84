"""Options and helpers shared by every command (format, expression input, variable lists)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import InputError
from ..report import Report

F = TypeVar("F", bound=Callable[..., Any])


class ExpressionCommand(click.Command):
    """A command whose arguments may start with '-' (``symdiff diff "-y*log(p)" --wrt p``).

    An unknown ``--long`` option is still an error; a single-dash word that is no option is an
    expression.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = dict(kwargs.pop("context_settings", None) or {})
        settings["ignore_unknown_options"] = True
        super().__init__(*args, context_settings=settings, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        known = {
            name for param in self.get_params(ctx) for name in param.opts + param.secondary_opts
        }
        for arg in args:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if arg.startswith("--") and name not in known:
                raise click.NoSuchOption(name, ctx=ctx)
        return super().parse_args(ctx, args)


#: ``@cli.command(..., **EXPRESSION_FIRST)``: the command takes expressions that may start with '-'.
EXPRESSION_FIRST: dict[str, Any] = {"cls": ExpressionCommand}


def format_option(*choices: str) -> Callable[[F], F]:
    """--format with the given choices (text first, the default)."""
    options = choices or ("text", "latex", "json")
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(options),
        default=options[0],
        show_default=True,
        help="Output format.",
    )


def read_expression(text: str) -> str:
    """EXPR as given, or standard input when EXPR is '-'."""
    if text == "-":
        data = sys.stdin.read()
        if not data.strip():
            raise InputError("no expression on standard input")
        return data.strip()
    return text


def split_names(values: tuple[str, ...]) -> list[str] | None:
    """('x,z', 'y') -> ['x', 'z', 'y']; empty -> None (meaning: all variables)."""
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return names or None


def emit(report: Report, fmt: str) -> None:
    """Print a report in the chosen format."""
    click.echo(report.render(fmt))
