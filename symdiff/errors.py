"""Errors a user can act on. Every message is one line that says what is wrong and where."""

from __future__ import annotations


class SymdiffError(Exception):
    """Base class: a failure symdiff explains to the user (CLI exit code ``exit_code``)."""

    exit_code: int = 1


class InputError(SymdiffError):
    """The user's input is wrong (bad option value, unknown name, bad point): exit code 2."""

    exit_code = 2


class ParseError(InputError):
    """An expression could not be parsed; ``column`` is 1-based in the user's text."""

    def __init__(self, message: str, text: str = "", column: int | None = None) -> None:
        self.reason = message
        self.text = text
        self.column = column
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"{message}{where}")

    def pointer(self) -> str:
        """Two lines: the input and a caret under the offending column."""
        if self.column is None or not self.text or len(self.text) > 200:
            return ""
        return f"  {self.text}\n  {' ' * (self.column - 1)}^"


class UnknownFunctionError(SymdiffError):
    """No derivative rule is registered for a function (never silently 0)."""

    exit_code = 2

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no derivative rule for function '{name}'")


class ShapeError(InputError):
    """Tensor shapes do not fit together."""


class BudgetExceeded(SymdiffError):
    """A symbolic computation ran past its time budget."""
