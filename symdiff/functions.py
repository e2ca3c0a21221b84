"""ML primitives as SymPy functions, each with its derivative, numeric value and LaTeX.

- sigmoid(x) = 1 / (1 + exp(-x)),          sigmoid'(x) = sigmoid(x) (1 - sigmoid(x))
- relu(x)    = max(x, 0),                  relu'(x)    = Heaviside(x, 0) (0 at x = 0, as PyTorch)
- softplus(x) = log(1 + exp(x)),           softplus'(x) = sigmoid(x)
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

__all__ = ["sigmoid", "relu", "softplus", "log1p", "expm1", "RELU_AT_ZERO"]

#: relu'(0) is a subgradient choice; symdiff picks 0, like PyTorch and JAX.
RELU_AT_ZERO = sp.Integer(0)


def _power_latex(call: str, exp: str | None) -> str:
    """LaTeX of f(u), or of f(u)**exp when the printer asks for a power."""
    return call if exp is None else rf"\left({call}\right)^{{{exp}}}"


class sigmoid(sp.Function):  # noqa: N801 - SymPy functions are lower-case by convention
    """Logistic function sigma(x) = 1 / (1 + exp(-x))."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.Rational(1, 2)
        if x.is_Float:
            return sp.Float(1) / (1 + sp.exp(-x))
        if x is sp.oo:
            return sp.Integer(1)
        if x is sp.S.NegativeInfinity:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        return _power_latex(rf"\sigma\left({printer._print(self.args[0])}\right)", exp)


class relu(sp.Function):  # noqa: N801
    """Rectified linear unit relu(x) = max(x, 0)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_nonnegative:
            return x
        if x.is_negative:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Heaviside(self.args[0], RELU_AT_ZERO)

    def _eval_rewrite_as_Max(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Max(x, 0)

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Max(x, 0)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return sp.Max(self.args[0], 0)._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_nonnegative(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        return _power_latex(
            rf"\operatorname{{relu}}\left({printer._print(self.args[0])}\right)", exp
        )


class softplus(sp.Function):  # noqa: N801
    """Smooth relu softplus(x) = log(1 + exp(x))."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.log(2)
        if x.is_Float:
            return sp.log(1 + sp.exp(x))
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(x))

    def _eval_rewrite_as_log(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(x))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return sp.log(1 + sp.exp(self.args[0]))._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        return _power_latex(
            rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)", exp
        )


def to_elementary(expr: sp.Expr) -> sp.Expr:
    """Rewrite symdiff's ML functions in terms of exp, log and Max (for independent checks)."""
    return expr.replace(
        lambda e: isinstance(e, (sigmoid, softplus, relu, log1p, expm1)),
        _elementary_form,
    )


def _elementary_form(e: sp.Expr) -> sp.Expr:
    x = e.args[0]
    forms = {
        sigmoid: lambda: 1 / (1 + sp.exp(-x)),
        softplus: lambda: sp.log(1 + sp.exp(x)),
        relu: lambda: sp.Max(x, 0),
        log1p: lambda: sp.log(1 + x),
        expm1: lambda: sp.exp(x) - 1,
    }
    return forms[type(e)]()
