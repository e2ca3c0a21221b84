"""A SymPy expression as an IR node: how a per-sample scalar loss joins the one code generator.

Symbols become ``var`` leaves of the declared shapes (parameters (), data (n,)), numbers become
constants, and every function application is looked up in the primitives table; anything else
is refused with an error that names it, before any code is generated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sympy as sp

from ..errors import InputError
from ..primitives import for_sympy
from .nodes import Node, Shape, add, const, div, mul, power, var
from .ops import apply, binary, elementwise


class NoLowering(InputError):
    """A function symdiff can differentiate but generated NumPy code cannot compute."""


def to_ir(expr: sp.Expr, shapes: Mapping[str, Shape]) -> Node:
    """``expr`` as an IR node; symbol ``s`` gets shape ``shapes[s.name]`` (() if undeclared)."""
    memo: dict[sp.Basic, Node] = {}

    def convert(e: sp.Basic) -> Node:
        if e not in memo:
            memo[e] = _convert(e, convert, shapes)
        return memo[e]

    return convert(expr)


def _chain(nodes: list[Node], combine: Callable[[Node, Node], Node]) -> Node:
    result = nodes[0]
    for node in nodes[1:]:
        result = combine(result, node)
    return result


def _convert(e: sp.Basic, convert: Callable[[sp.Basic], Node], shapes: Mapping[str, Shape]) -> Node:
    if isinstance(e, sp.Symbol):
        return var(e.name, tuple(shapes.get(e.name, ())))
    if e.is_number:
        return const(e)
    if isinstance(e, sp.Add):  # led by a positive term: a - b, not -b + a
        terms = list(e.args)
        leading = next((t for t in terms if not t.could_extract_minus_sign()), terms[0])
        terms.remove(leading)
        return _chain([convert(a) for a in [leading, *terms]], add)
    if isinstance(e, sp.Mul):
        return _chain([convert(a) for a in e.args], mul)
    if isinstance(e, sp.Pow):
        base, exponent = e.args
        if exponent == sp.Rational(1, 2):
            return elementwise("sqrt", convert(base))
        if exponent == -sp.Rational(1, 2):
            return div(const(1), elementwise("sqrt", convert(base)))
        if exponent.is_Integer and exponent < 0:
            return div(const(1), power(convert(base), const(-exponent)))
        return power(convert(base), convert(exponent))
    if isinstance(e, sp.Heaviside):
        at_zero = e.args[1] if len(e.args) > 1 else sp.Rational(1, 2)
        return elementwise("heaviside", convert(e.args[0]), at_zero)
    row = for_sympy(e)
    if row is None:
        raise NoLowering(f"generated code cannot compute '{type(e).__name__}'")
    args = [convert(a) for a in e.args]
    if row.arity == 2:  # Max/Min take any number of arguments: fold them pairwise
        return _chain(args, lambda a, b: binary(row.name, a, b))
    return apply(row.name, *args)
