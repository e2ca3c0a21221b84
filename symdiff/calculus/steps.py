"""Immutable records of a derivation: one ``Step`` per rule application, nested by substeps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy as sp

from ..text import formula, grouped
from . import display

if TYPE_CHECKING:
    from ..frontend.parse import TypedNode


@dataclass(frozen=True)
class Step:
    """d(expression)/d(wrt) = result, obtained by ``rule`` from ``substeps``.

    A chain-rule step also records the substitution ``u = inner`` (``variable``, ``inner``) and
    the outer derivative ``outer`` = f'(u), written in terms of ``variable``. ``typed``, where
    set, is the expression as the user typed it (operand order, subtraction, parentheses).
    """

    rule: str
    expression: sp.Expr
    wrt: sp.Symbol
    result: sp.Expr
    substeps: tuple[Step, ...] = ()
    variable: sp.Symbol | None = None
    inner: sp.Expr | None = None
    outer: sp.Expr | None = None
    note: str = field(default="", compare=False)
    typed: TypedNode | None = field(default=None, compare=False, repr=False)

    def text(self) -> str:
        """The expression as text: as typed where known, else ``formula(expression)``."""
        return formula(self.expression) if self.typed is None else self.typed.text()

    def latex(self) -> str:
        """The expression in LaTeX: as typed where known, else SymPy's LaTeX."""
        return sp.latex(self.expression) if self.typed is None else self.typed.latex()

    def operand_text(self) -> str:
        """The expression after d/dx or as a factor: bare unless an operator binds it wrongly."""
        if self.typed is None:
            return grouped(self.expression, "Mul")
        bare = self.typed.kind in ("symbol", "call", "power") or (
            self.typed.kind == "number" and not self.text().startswith("-")
        )
        return self.text() if bare else f"({self.text()})"

    def walk(self) -> Iterator[Step]:
        """This step and all its substeps, depth first."""
        yield self
        for sub in self.substeps:
            yield from sub.walk()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"rule", "expression", "wrt", "result", "substeps", ...}; formulas
        are text that symdiff's parser reads back (``symdiff.text.formula``)."""
        data: dict[str, Any] = {
            "rule": self.rule,
            "expression": self.text(),
            "wrt": self.wrt.name,
            "result": formula(self.result),
            "substeps": [sub.to_dict() for sub in self.substeps],
        }
        if self.variable is not None:
            inner = self.substeps[1].text() if len(self.substeps) > 1 else None
            data["substitution"] = {"variable": self.variable.name, "inner": inner}
            data["outer"] = formula(self.outer) if self.outer is not None else None
        if self.note:
            data["note"] = self.note
        return data

    def __repr__(self) -> str:
        return display.step_repr(self)

    def _repr_markdown_(self) -> str:
        return display.step_markdown(self)

    def _repr_latex_(self) -> str:
        return display.step_latex(self)
