"""Options and helpers shared by every command (format, expression input, variable lists)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import InputError
from ..report import Report

F = TypeVar("F", bound=Callable[..., Any])


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
