"""Checks every stage makes of what a user typed: names that may become code, sizes of powers."""

from __future__ import annotations

import contextlib
import keyword
import math
import re
import sys
import threading
from collections.abc import Callable, Iterator

import sympy as sp

from .errors import ParseError

#: Exact numbers are never built with more than this many digits (``9**9**9`` is refused). Kept
#: well below Python's default limit of 4,300 digits for ``str(int)`` (a product of two such
#: numbers still prints), so symdiff never changes that interpreter-wide setting.
MAX_EXACT_DIGITS = 2_000


def check_name(name: str, text: str = "", column: int | None = None) -> str:
    """Validate a user-chosen name: a plain ASCII identifier, no keyword, no leading '__'."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", name or ""):
        raise ParseError(f"'{name}' is not a valid name", text, column)
    if keyword.iskeyword(name):
        raise ParseError(f"Python keyword '{name}' is not allowed as a name", text, column)
    if name.startswith("__"):
        raise ParseError(f"names starting with '__' are not allowed ('{name}')", text, column)
    return name


def digits(number: sp.Rational) -> int:
    """Decimal digits of the larger of numerator and denominator (from the bit length)."""
    return int(max(int(number.p).bit_length(), int(number.q).bit_length()) * math.log10(2)) + 1


def check_power_size(base: sp.Expr, exponent: sp.Expr, error: Callable[[str], Exception]) -> None:
    """Refuse a numeric power whose value would have more than MAX_EXACT_DIGITS digits.

    Exact powers (``9**9**9``, also ``2**(10**9/3)``) are counted in digits of the numerator or
    denominator; decimal ones (``9.0**9.0**9.0**9.0``) by the size of their decimal exponent.
    """
    if not (base.is_Number and exponent.is_Number) or base == 0:
        return
    if base.is_Rational and exponent.is_Rational:
        magnitude = max(abs(int(base.p)), abs(int(base.q)))
        if magnitude <= 1 or exponent == 0:
            return
        log_digits = (
            math.log10(abs(int(exponent.p)))
            - math.log10(int(exponent.q))
            + math.log10(math.log10(magnitude))
        )
        digits = 10.0 ** min(log_digits, 300.0)
    else:
        digits = float(abs(sp.Float(exponent, 15) * sp.log(abs(sp.Float(base, 15)), 10)))
    if digits > MAX_EXACT_DIGITS:
        raise error(
            f"number too large: the power would have about {digits:.3g} digits "
            f"(limit {MAX_EXACT_DIGITS})"
        )


_RECURSION_LOCK = threading.Lock()
_RECURSION_USERS = 0
_RECURSION_SAVED = 0


@contextlib.contextmanager
def deep_recursion(limit: int) -> Iterator[None]:
    """Room for ``limit`` nested frames inside the block, restored exactly when the last block
    (of any thread) ends. Only for walks that cannot be iterative: CPython's own ``ast``
    construction counts against the recursion limit."""
    global _RECURSION_USERS, _RECURSION_SAVED
    with _RECURSION_LOCK:
        if _RECURSION_USERS == 0:
            _RECURSION_SAVED = sys.getrecursionlimit()
        _RECURSION_USERS += 1
        if sys.getrecursionlimit() < limit:
            sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        with _RECURSION_LOCK:
            _RECURSION_USERS -= 1
            if _RECURSION_USERS == 0:
                sys.setrecursionlimit(_RECURSION_SAVED)
