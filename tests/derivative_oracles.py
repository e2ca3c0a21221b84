"""Independent checks of a derivative: SymPy at high precision and float64 finite differences.

Shared by the corpus and the property tests. Nothing here uses symdiff's own rules: the float
functions are built from ``to_elementary(expr)`` (exp/log/Max only) with SciPy/NumPy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

import mpmath
import sympy as sp

from symdiff.functions import to_elementary

Interval = tuple[float, float]
Point = dict[sp.Symbol, float]

#: Digits used to evaluate both sides of a symbolic comparison.
DIGITS = 30
#: Relative agreement demanded between two symbolic derivatives evaluated at DIGITS digits.
SYMBOLIC_RTOL = 1e-12


def sorted_symbols(*exprs: sp.Expr) -> list[sp.Symbol]:
    """Free symbols of the expressions, by name."""
    return sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name)


def sample_points(
    symbols: Sequence[sp.Symbol],
    domain: Mapping[str, Interval],
    default: Interval,
    count: int,
    seed: str,
) -> list[Point]:
    """``count`` points, each coordinate uniform in its interval (deterministic per ``seed``)."""
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        point = {}
        for symbol in symbols:
            low, high = domain.get(symbol.name, default)
            point[symbol] = rng.uniform(low, high)
        points.append(point)
    return points


def high_precision(expr: sp.Expr, point: Point) -> mpmath.mpc:
    """The value of ``expr`` at ``point``, computed with DIGITS digits (mpmath: no overflow)."""
    exact_point = {s: sp.Float(v, DIGITS + 10) for s, v in point.items()}
    value = sp.N(expr.xreplace(exact_point), DIGITS)
    if not value.is_number or value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return mpmath.mpc(mpmath.nan)
    real, imag = (sp.N(part, DIGITS) for part in value.as_real_imag())
    with mpmath.workdps(DIGITS + 5):
        return mpmath.mpc(mpmath.mpf(str(real)), mpmath.mpf(str(imag)))


def close(a: complex | mpmath.mpc, b: complex | mpmath.mpc, rtol: float, atol: float = 0.0) -> bool:
    """|a - b| <= atol + rtol * max(1, |a|, |b|), and both finite."""
    a, b = mpmath.mpc(a), mpmath.mpc(b)
    if not all(mpmath.isfinite(part) for part in (a.real, a.imag, b.real, b.imag)):
        return False
    return abs(a - b) <= atol + rtol * max(1, abs(a), abs(b))


def assert_same_function(
    ours: sp.Expr, theirs: sp.Expr, points: Sequence[Point], label: str = ""
) -> None:
    """``ours`` and ``theirs`` agree (to SYMBOLIC_RTOL) at every point, and are finite there."""
    for point in points:
        a, b = high_precision(ours, point), high_precision(theirs, point)
        where = {s.name: v for s, v in point.items()}
        assert close(a, b, SYMBOLIC_RTOL), f"{label}: {ours} = {a} but {theirs} = {b} at {where}"


def float_function(expr: sp.Expr, symbols: Sequence[sp.Symbol]) -> Callable[..., float]:
    """``expr`` as a float64 function of ``symbols`` (elementary form, SciPy/NumPy)."""
    return sp.lambdify(list(symbols), to_elementary(expr), modules=["scipy", "numpy"])


def _step(value: float, scale: float) -> float:
    return scale * max(1.0, abs(value))


def central_difference(
    f: Callable[..., float], symbols: Sequence[sp.Symbol], point: Point, wrt: sp.Symbol
) -> float:
    """(f(x + h) - f(x - h)) / 2h along ``wrt``, h = 1e-5 * max(1, |x|)."""
    h = _step(point[wrt], 1e-5)

    def at(shift: float) -> float:
        args = [point[s] + (shift if s == wrt else 0.0) for s in symbols]
        return float(f(*args))

    return (at(h) - at(-h)) / (2 * h)


def second_difference(
    f: Callable[..., float],
    symbols: Sequence[sp.Symbol],
    point: Point,
    first: sp.Symbol,
    second: sp.Symbol,
) -> float:
    """Central second difference d2f / d(first) d(second) with h = 1e-4 * max(1, |x|)."""
    h1, h2 = _step(point[first], 1e-4), _step(point[second], 1e-4)

    def at(s1: float, s2: float) -> float:
        args = [
            point[s] + (s1 if s == first else 0.0) + (s2 if s == second else 0.0) for s in symbols
        ]
        return float(f(*args))

    if first == second:
        return (at(h1, 0) - 2 * at(0, 0) + at(-h1, 0)) / h1**2
    return (at(h1, h2) - at(h1, -h2) - at(-h1, h2) + at(-h1, -h2)) / (4 * h1 * h2)


def assert_matches_finite_differences(
    expr: sp.Expr,
    derivative: sp.Expr,
    wrt: Sequence[sp.Symbol],
    points: Sequence[Point],
    rtol: float,
    label: str = "",
) -> None:
    """``derivative`` (of order len(wrt) <= 2) agrees with float64 central differences of expr."""
    symbols = sorted_symbols(expr, derivative, *wrt)
    f = float_function(expr, symbols)
    for point in points:
        full = {s: point.get(s, 0.5) for s in symbols}
        if len(wrt) == 1:
            estimate = central_difference(f, symbols, full, wrt[0])
        else:
            estimate = second_difference(f, symbols, full, wrt[0], wrt[1])
        exact = high_precision(derivative, full)
        where = {s.name: v for s, v in full.items()}
        assert math.isfinite(estimate), f"{label}: f is not finite near {where}"
        assert close(exact, estimate, rtol, rtol), (
            f"{label}: derivative {derivative} = {exact} but finite differences give "
            f"{estimate} at {where}"
        )
