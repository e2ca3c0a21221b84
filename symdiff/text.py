"""Formulas and numbers as plain text that symdiff's own parser reads back to the same thing.

Every text renderer prints SymPy expressions through :func:`formula` and numbers through
:func:`number`, never through ``str``: SymPy's own names (``Abs``, ``E``, ``Max``,
``Heaviside``, ``DiracDelta``) are not what a user types, and its decimals carry 15 digits of
padding (``0.500000000000000``). The printer writes the names of the parser's function table
(``abs``, ``e``, ``max``, ``heaviside(u, 0)``, ``dirac(u)``) and the shortest decimal that
round-trips in float64 (``0.5``, ``1e-05``).
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

#: Bits of a float64 mantissa: a SymPy Float with at most this precision is a float64 value.
FLOAT64_BITS = 53


def shortest_decimal(value: float) -> str:
    """The shortest decimal that reads back as the same float64 (``repr``): 0.5, 1e-05, 2.0."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


class FormulaPrinter(StrPrinter):
    """SymPy's text printer with the names and numbers of symdiff's parser."""

    printmethod = "_symdiff_text"

    def __init__(self, settings: dict[str, Any] | None = None, e_name: str = "e") -> None:
        super().__init__(settings)
        self._e_name = e_name

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return self._e_name

    def _print_Float(self, expr: sp.Float) -> str:
        if expr._prec <= FLOAT64_BITS:
            return shortest_decimal(float(expr))
        return super()._print_Float(expr)

    def _print_Abs(self, expr: sp.Expr) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Max(self, expr: sp.Expr) -> str:
        return f"max({self.stringify(expr.args, ', ')})"

    def _print_Min(self, expr: sp.Expr) -> str:
        return f"min({self.stringify(expr.args, ', ')})"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        u = self._print(expr.args[0])
        at_zero = expr.args[1] if len(expr.args) > 1 else sp.S.Half
        return f"heaviside({u}, {self._print(at_zero)})"

    def _print_DiracDelta(self, expr: sp.Expr) -> str:
        if len(expr.args) == 1 or expr.args[1] == 0:
            return f"dirac({self._print(expr.args[0])})"
        return f"dirac({self._print(expr.args[0])}, {self._print(expr.args[1])})"


def _printer(expr: sp.Basic) -> FormulaPrinter:
    """A printer for ``expr``: Euler's number is ``exp(1)`` where a variable is named ``e``."""
    names = {str(symbol) for symbol in getattr(expr, "free_symbols", ())}
    return FormulaPrinter({"order": None}, e_name="exp(1)" if "e" in names else "e")


def formula(expr: sp.Basic | int | float) -> str:
    """``expr`` as text the parser reads back to it: ``abs(x)``, ``e``, ``0.5*x``."""
    if isinstance(expr, float):
        return shortest_decimal(expr)
    value = sp.Integer(expr) if isinstance(expr, int) else expr
    return _printer(value).doprint(value)


def grouped(expr: sp.Basic, level: str = "Mul") -> str:
    """``formula(expr)``, in parentheses unless it is safe as an operand at ``level``.

    ``level="Mul"``: a factor or a denominator written after ``/`` (``a/(h*x)``, never
    ``a/h*x``): only a name, a non-negative integer, a constant or a function call goes bare.
    ``level="Add"``: a numerator written before ``/``: sums and differences get parentheses.
    """
    text = formula(expr)
    if level == "Add":
        needs = precedence(expr) <= PRECEDENCE["Add"]
    else:
        bare = (
            expr.is_Symbol
            or (expr.is_Integer and expr >= 0)
            or expr in (sp.E, sp.pi)
            or isinstance(expr, sp.Function)
            or (expr.is_Pow and expr.exp.is_positive and "/" not in text)
        )
        needs = not bare
    return f"({text})" if needs else text


def quotient(numerator: sp.Basic | str, denominator: sp.Basic) -> str:
    """``numerator/denominator`` as text with the parentheses precedence needs."""
    top = numerator if isinstance(numerator, str) else grouped(numerator, "Add")
    return f"{top}/{grouped(denominator)}"


def number(value: sp.Basic | int | float, digits: int | None = None) -> str:
    """A value as text: integers and fractions exact, a float64 as its shortest decimal.

    With ``digits``, a value that is not an exact rational is rounded to that many significant
    digits instead (the ``≈`` column of a table).
    """
    if isinstance(value, (int, float)):
        value = sp.Float(value) if isinstance(value, float) else sp.Integer(value)
    if isinstance(value, sp.Rational):
        return formula(value)
    if digits is not None and value.is_number:
        approx = value.evalf(digits + 2)
        if approx.is_real and approx.is_finite:
            return f"{float(approx):.{digits}g}"
    return formula(value)
