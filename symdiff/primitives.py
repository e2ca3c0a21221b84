"""The primitives table: everything symdiff knows about one function, in one row.

Each :class:`Primitive` says how a function is typed (name, aliases, arity), what it is in SymPy,
its local derivatives, the IR operation, how generated NumPy code computes it (the stable form),
how the limit and graph explanations evaluate it in float64, and its LaTeX. The parser, the
derivative rules, the VJP rules, the NumPy printer and the float evaluators all read this table
(or are checked against it by ``tests/test_primitives.py``), so a function either works on every
path or is refused with a clear error when a module is generated — never inside one.

Derivatives are written once for both worlds: ``partials(args, y, f)`` returns d y / d arg for
each argument, where ``y`` is the function's own value and ``f`` is a namespace of functions —
SymPy's (:data:`SYMPY`) for printed derivatives, the IR's for generated code. Arithmetic on
either kind of expression uses Python operators.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import sympy as sp

from .functions import expm1, log1p, relu, sigmoid, softplus

Partials = Callable[[tuple[Any, ...], Any, Any], tuple[Any, ...]]


@dataclass(frozen=True)
class Primitive:
    """One function: its names, SymPy class, derivative, NumPy lowering and float64 evaluator.

    ``numpy`` is a format string over the printed arguments (``"np.sin({0})"``), always an atom
    (a call or a parenthesised expression), or None when generated code cannot compute it.
    ``flat`` marks a step function whose derivative is 0 almost everywhere (the IR's reverse
    mode sends nothing through it; SymPy keeps the DiracDelta).
    """

    name: str
    arity: int
    sympy: Any
    partials: Partials
    formula: str
    numpy: str | None
    evaluate: Callable[..., float]
    latex: str
    aliases: tuple[str, ...] = ()
    helper: str | None = None
    flat: bool = False


def _sigmoid_float(u: float) -> float:
    """1/(1 + exp(-u)), without overflow for large |u|."""
    if u >= 0:
        return 1.0 / (1.0 + math.exp(-u))
    z = math.exp(u)
    return z / (1.0 + z)


def _heaviside_float(u: float, at_zero: float = 0.0) -> float:
    return 1.0 if u > 0 else 0.0 if u < 0 else at_zero


def _logaddexp_float(a: float, b: float) -> float:
    top = max(a, b)
    if math.isinf(top):
        return top
    return top + math.log1p(math.exp(-abs(a - b)))


def _one(name: str, sympy: Any, derivative: Callable[[Any, Any, Any], Any], formula: str,
         numpy: str | None, evaluate: Callable[..., float], latex: str,
         **options: Any) -> Primitive:  # fmt: skip
    """A one-argument primitive; ``derivative(u, y, f)`` is f'(u)."""

    def partials(args: tuple[Any, ...], y: Any, f: Any) -> tuple[Any, ...]:
        return (derivative(args[0], y, f),)

    return Primitive(name, 1, sympy, partials, formula, numpy, evaluate, latex, **options)


_ROWS: tuple[Primitive, ...] = (
    _one("exp", sp.exp, lambda u, y, f: y, "d/du exp(u) = exp(u)", "np.exp({0})", math.exp,
         r"\exp"),
    _one("log", sp.log, lambda u, y, f: 1 / u, "d/du log(u) = 1/u", "np.log({0})", math.log,
         r"\log", aliases=("ln",)),
    _one("sqrt", sp.sqrt, lambda u, y, f: 1 / (2 * y), "d/du sqrt(u) = 1/(2*sqrt(u))",
         "np.sqrt({0})", math.sqrt, r"\sqrt"),
    _one("abs", sp.Abs, lambda u, y, f: f.sign(u), "d/du |u| = sign(u)", "np.abs({0})", abs,
         r"\left|\cdot\right|"),
    _one("sign", sp.sign, lambda u, y, f: 2 * f.dirac(u), "d/du sign(u) = 2*DiracDelta(u)",
         "np.sign({0})", lambda u: float((u > 0) - (u < 0)), r"\operatorname{sign}", flat=True),
    _one("heaviside", sp.Heaviside, lambda u, y, f: f.dirac(u),
         "d/du Heaviside(u) = DiracDelta(u)", "np.heaviside({0}, 0.0)", _heaviside_float,
         r"\theta", flat=True),
    _one("sin", sp.sin, lambda u, y, f: f.cos(u), "d/du sin(u) = cos(u)", "np.sin({0})",
         math.sin, r"\sin"),
    _one("cos", sp.cos, lambda u, y, f: -f.sin(u), "d/du cos(u) = -sin(u)", "np.cos({0})",
         math.cos, r"\cos"),
    _one("tan", sp.tan, lambda u, y, f: 1 + y**2, "d/du tan(u) = 1 + tan(u)**2", "np.tan({0})",
         math.tan, r"\tan"),
    _one("sec", sp.sec, lambda u, y, f: y * f.tan(u), "d/du sec(u) = sec(u)*tan(u)",
         "(1.0 / np.cos({0}))", lambda u: 1 / math.cos(u), r"\sec"),
    _one("csc", sp.csc, lambda u, y, f: -y * f.cot(u), "d/du csc(u) = -csc(u)*cot(u)",
         "(1.0 / np.sin({0}))", lambda u: 1 / math.sin(u), r"\csc"),
    _one("cot", sp.cot, lambda u, y, f: -1 - y**2, "d/du cot(u) = -1 - cot(u)**2",
         "(1.0 / np.tan({0}))", lambda u: 1 / math.tan(u), r"\cot"),
    _one("sinh", sp.sinh, lambda u, y, f: f.cosh(u), "d/du sinh(u) = cosh(u)", "np.sinh({0})",
         math.sinh, r"\sinh"),
    _one("cosh", sp.cosh, lambda u, y, f: f.sinh(u), "d/du cosh(u) = sinh(u)", "np.cosh({0})",
         math.cosh, r"\cosh"),
    _one("tanh", sp.tanh, lambda u, y, f: 1 - y**2, "d/du tanh(u) = 1 - tanh(u)**2",
         "np.tanh({0})", math.tanh, r"\tanh"),
    _one("asin", sp.asin, lambda u, y, f: 1 / f.sqrt(1 - u**2), "d/du asin(u) = 1/sqrt(1 - u**2)",
         "np.arcsin({0})", math.asin, r"\operatorname{asin}"),
    _one("acos", sp.acos, lambda u, y, f: -1 / f.sqrt(1 - u**2),
         "d/du acos(u) = -1/sqrt(1 - u**2)", "np.arccos({0})", math.acos, r"\operatorname{acos}"),
    _one("atan", sp.atan, lambda u, y, f: 1 / (1 + u**2), "d/du atan(u) = 1/(1 + u**2)",
         "np.arctan({0})", math.atan, r"\operatorname{atan}"),
    _one("asinh", sp.asinh, lambda u, y, f: 1 / f.sqrt(u**2 + 1),
         "d/du asinh(u) = 1/sqrt(u**2 + 1)", "np.arcsinh({0})", math.asinh,
         r"\operatorname{asinh}"),
    _one("acosh", sp.acosh, lambda u, y, f: 1 / f.sqrt(u**2 - 1),
         "d/du acosh(u) = 1/sqrt(u**2 - 1)", "np.arccosh({0})", math.acosh,
         r"\operatorname{acosh}"),
    _one("atanh", sp.atanh, lambda u, y, f: 1 / (1 - u**2), "d/du atanh(u) = 1/(1 - u**2)",
         "np.arctanh({0})", math.atanh, r"\operatorname{atanh}"),
    _one("erf", sp.erf, lambda u, y, f: 2 * f.exp(-(u**2)) / f.sqrt(f.pi),
         "d/du erf(u) = 2*exp(-u**2)/sqrt(pi)", "_erf({0})", math.erf, r"\operatorname{erf}",
         helper="_erf"),
    _one("sigmoid", sigmoid, lambda u, y, f: y * (1 - y),
         "d/du sigmoid(u) = sigmoid(u)*(1 - sigmoid(u))", "_sigmoid({0})", _sigmoid_float,
         r"\sigma", aliases=("logistic",), helper="_sigmoid"),
    _one("relu", relu, lambda u, y, f: f.heaviside(u),
         "d/du relu(u) = Heaviside(u, 0)  (0 at u = 0)",
         "np.maximum({0}, 0.0)", lambda u: max(u, 0.0), r"\operatorname{relu}"),
    _one("softplus", softplus, lambda u, y, f: f.sigmoid(u), "d/du softplus(u) = sigmoid(u)",
         "_softplus({0})", lambda u: max(u, 0.0) + math.log1p(math.exp(-abs(u))),
         r"\operatorname{softplus}", helper="_softplus"),
    _one("log1p", log1p, lambda u, y, f: 1 / (1 + u), "d/du log1p(u) = 1/(1 + u)",
         "np.log1p({0})", math.log1p, r"\operatorname{log1p}"),
    _one("expm1", expm1, lambda u, y, f: f.exp(u), "d/du expm1(u) = exp(u)", "np.expm1({0})",
         math.expm1, r"\operatorname{expm1}"),
    Primitive("maximum", 2, sp.Max,
              lambda args, y, f: (f.heaviside(args[0] - args[1], f.half),
                                  f.heaviside(args[1] - args[0], f.half)),
              "d max(a, b) = H(a - b) da + H(b - a) db  (1/2 each at a tie)",
              "np.maximum({0}, {1})", max, r"\max"),
    Primitive("minimum", 2, sp.Min,
              lambda args, y, f: (f.heaviside(args[1] - args[0], f.half),
                                  f.heaviside(args[0] - args[1], f.half)),
              "d min(a, b) = H(b - a) da + H(a - b) db  (1/2 each at a tie)",
              "np.minimum({0}, {1})", min, r"\min"),
    Primitive("logaddexp", 2, None,
              lambda args, y, f: (f.sigmoid(args[0] - args[1]), f.sigmoid(args[1] - args[0])),
              "d logaddexp(a, b) = sigmoid(a - b) da + sigmoid(b - a) db",
              "np.logaddexp({0}, {1})", _logaddexp_float, r"\operatorname{logaddexp}"),
)  # fmt: skip

#: Every primitive by its canonical name (the IR operation's name).
PRIMITIVES: dict[str, Primitive] = {row.name: row for row in _ROWS}

#: Every name a user may type for a primitive (canonical names and aliases).
BY_TYPED_NAME: dict[str, Primitive] = {
    name: row for row in _ROWS for name in (row.name, *row.aliases)
}

#: SymPy function class -> primitive (for converting SymPy trees and evaluating them).
BY_SYMPY_CLASS: dict[type, Primitive] = {
    row.sympy: row for row in _ROWS if isinstance(row.sympy, type)
}


def lookup(name: str) -> Primitive:
    """The primitive typed as ``name``; KeyError when there is none."""
    return BY_TYPED_NAME[name]


def for_sympy(expr: sp.Basic) -> Primitive | None:
    """The primitive of a SymPy function application (by class, subclasses included)."""
    for cls in type(expr).__mro__:
        row = BY_SYMPY_CLASS.get(cls)
        if row is not None:
            return row
    return None


def _sympy_heaviside(u: sp.Expr, at_zero: sp.Expr | int = 0) -> sp.Expr:
    return sp.Heaviside(u, at_zero)


#: The SymPy namespace for ``Primitive.partials``: printed derivatives use it.
SYMPY = SimpleNamespace(
    **{
        **{row.name: row.sympy for row in _ROWS if row.sympy is not None},
        "heaviside": _sympy_heaviside,
        "dirac": sp.DiracDelta,
        "pi": sp.pi,
        "half": sp.Rational(1, 2),
    }
)


def sympy_derivative(row: Primitive, u: sp.Expr) -> sp.Expr:
    """f'(u) of a one-argument primitive, as SymPy."""
    return row.partials((u,), row.sympy(u), SYMPY)[0]


@dataclass(frozen=True)
class Composite:
    """A function typed by users that is defined by primitives: ``build(args, f)``.

    ``f`` is a namespace of primitives (:data:`SYMPY`, or the IR's), so one definition serves
    the SymPy parser and the tensor parser alike.
    """

    name: str
    min_args: int
    max_args: int | None
    build: Callable[[tuple[Any, ...], Any], Any]
    doc: str


def _fold(function: str) -> Callable[[tuple[Any, ...], Any], Any]:
    def build(args: tuple[Any, ...], f: Any) -> Any:
        result = args[0]
        for arg in args[1:]:
            result = getattr(f, function)(result, arg)
        return result

    return build


def _log_base(args: tuple[Any, ...], f: Any) -> Any:
    return f.log(args[0]) if len(args) == 1 else f.log(args[0]) / f.log(args[1])


def _log_sum_exp(args: tuple[Any, ...], f: Any) -> Any:
    total = f.exp(args[0])
    for arg in args[1:]:
        total = total + f.exp(arg)
    return f.log(total)


_COMPOSITE_ROWS: tuple[Composite, ...] = (
    Composite("log", 1, 2, _log_base, "natural log; log(x, b) is log base b"),
    Composite("log2", 1, 1, lambda a, f: f.log(a[0]) / f.log(2), "log base 2"),
    Composite("log10", 1, 1, lambda a, f: f.log(a[0]) / f.log(10), "log base 10"),
    Composite("silu", 1, 1, lambda a, f: a[0] * f.sigmoid(a[0]), "x*sigmoid(x)"),
    Composite("swish", 1, 1, lambda a, f: a[0] * f.sigmoid(a[0]), "x*sigmoid(x)"),
    Composite(
        "gelu", 1, 1, lambda a, f: a[0] * (1 + f.erf(a[0] / f.sqrt(2))) / 2,
        "x*(1 + erf(x/sqrt(2)))/2",
    ),
    Composite("logsumexp", 2, None, _log_sum_exp, "log(exp(a) + exp(b) + ...)"),
    Composite("max", 2, None, _fold("maximum"), "largest argument"),
    Composite("min", 2, None, _fold("minimum"), "smallest argument"),
)  # fmt: skip

#: Functions typed by users that are built from primitives, by typed name.
COMPOSITES: dict[str, Composite] = {row.name: row for row in _COMPOSITE_ROWS}
