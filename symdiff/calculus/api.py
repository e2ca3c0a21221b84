"""The calculus API: derivatives of any order, gradients, Jacobians, Hessians, directional
derivatives and evaluation at a point. Every function accepts text (parsed safely) or SymPy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import sympy as sp

from ..errors import InputError, SymdiffError
from ..frontend.parse import parse, parse_number, typed_tree
from ..text import formula
from . import display
from .differentiate import derivative_steps
from .simplify import DEFAULT_BUDGET, Budget, simplify_within
from .steps import Step
from .typed_rules import differentiate_typed

ExprLike: TypeAlias = str | sp.Expr
Names: TypeAlias = str | sp.Symbol | Iterable[str | sp.Symbol] | None
PointLike: TypeAlias = Mapping[str | sp.Symbol, object]

#: Exact evaluation is skipped when a value would have more digits than this.
MAX_EXACT_EXPONENT = 10_000
#: Digits used to decide the sign of an argument SymPy cannot decide exactly (``sign``,
#: ``Heaviside``, ``DiracDelta``, ``Abs``, ``Max``, ``Min`` at a point).
SIGN_DIGITS = 60


class UndefinedValue(InputError):
    """The value at a point is not a finite real number (``1/x`` at 0, ``sqrt(x)`` at -1).

    ``reason`` is the short explanation printed after "undefined" ("division by zero").
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def as_expr(expr: ExprLike) -> sp.Expr:
    """Parse text safely; pass SymPy expressions through."""
    if isinstance(expr, str):
        return parse(expr)
    if isinstance(expr, sp.Expr):
        return expr
    if isinstance(expr, (int, float)):
        return sp.Float(expr) if isinstance(expr, float) else sp.Integer(expr)
    raise InputError(f"expected an expression, got {type(expr).__name__}")


def free_symbols_sorted(*exprs: sp.Expr) -> list[sp.Symbol]:
    """All free symbols of the expressions, sorted by name."""
    symbols: set[sp.Symbol] = set()
    for expr in exprs:
        symbols |= expr.free_symbols
    return sorted(symbols, key=lambda s: s.name)


def _split_names(names: Names) -> list[str | sp.Symbol]:
    if names is None:
        return []
    if isinstance(names, (str, sp.Symbol)):
        names = [names]
    result: list[str | sp.Symbol] = []
    for name in names:
        if isinstance(name, str):
            result.extend(part.strip() for part in name.split(",") if part.strip())
        else:
            result.append(name)
    return result


def resolve_variables(names: Names, *exprs: sp.Expr) -> list[sp.Symbol]:
    """Map variable names to the expressions' symbols (all free symbols, sorted, when None)."""
    available = {s.name: s for s in free_symbols_sorted(*exprs)}
    requested = _split_names(names)
    if not requested:
        if not available:
            raise InputError("the expression has no variables to differentiate by")
        return list(available.values())
    variables: list[sp.Symbol] = []
    for name in requested:
        key = name.name if isinstance(name, sp.Symbol) else name
        if key not in available:
            where = ", ".join(available) or "none"
            raise InputError(
                f"variable '{key}' does not occur in the expression (variables: {where})"
            )
        variables.append(available[key])
    return variables


def finish(expr: sp.Expr, simplify: bool, budget: float | Budget = DEFAULT_BUDGET) -> sp.Expr:
    """Simplify within the budget, or keep the raw chain-rule form."""
    return simplify_within(expr, budget) if simplify else expr


@dataclass(frozen=True)
class Derivation:
    """A derivative with its record: ``steps`` holds one top-level Step per differentiation."""

    expression: sp.Expr
    variables: tuple[sp.Symbol, ...]
    steps: tuple[Step, ...]
    raw: sp.Expr
    result: sp.Expr

    def __repr__(self) -> str:
        return display.derivation_repr(self.expression, self.variables, self.steps, self.result)

    def _repr_markdown_(self) -> str:
        return display.derivation_markdown(
            self.expression, self.variables, self.steps, self.raw, self.result
        )

    def _repr_latex_(self) -> str:
        return display.derivation_latex(self.expression, self.variables, self.result)


def derive(
    expr: ExprLike,
    wrt: Names = None,
    order: int = 1,
    *,
    simplify: bool = True,
    budget: float | Budget = DEFAULT_BUDGET,
) -> Derivation:
    """d^order f / dx^order (each listed variable ``order`` times, in turn), with its steps.

    With ``simplify`` each intermediate derivative is simplified too (sharing the budget), so
    higher orders stay small; ``simplify=False`` keeps every step in raw chain-rule form.

    ``wrt=None`` needs an expression in exactly one variable. Text gets its first
    differentiation recorded as typed (operand order, subtraction, parentheses); the result is
    the same as for the parsed SymPy expression (what ``symdiff diff`` prints).
    """
    expression = as_expr(expr)
    if not isinstance(order, int) or order < 0:
        raise InputError(f"order must be a whole number >= 0, got {order!r}")
    variables = resolve_variables(wrt, expression)
    if wrt is None and len(variables) != 1:
        names = ", ".join(v.name for v in variables) or "none"
        raise InputError(f"say which variable to differentiate by (variables: {names})")
    sequence = [v for v in variables for _ in range(order)]
    shared = budget if isinstance(budget, Budget) else Budget(budget)
    tidy = (lambda e: simplify_within(e, shared)) if simplify else None
    steps = derivative_steps(expression, sequence, tidy)
    result = finish(steps[-1].result if steps else expression, simplify, shared)
    if isinstance(expr, str) and steps:
        steps = (differentiate_typed(typed_tree(expr), sequence[0]), *steps[1:])
    raw = steps[-1].result if steps else expression
    if result.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        by = ", ".join(v.name for v in sequence)
        raise InputError(
            f"the derivative of {formula(expression)} by {by} is undefined: it comes out as "
            f"{formula(result)} (zoo is a complex infinity, nan not a number)"
        )
    return Derivation(expression, tuple(sequence), steps, raw, result)


def derivative(
    expr: ExprLike, wrt: Names = None, order: int = 1, *, simplify: bool = True
) -> sp.Expr:
    """d^order f / dx^order; several variables give the mixed partial, e.g. d2f/dy dx."""
    return derive(expr, wrt, order, simplify=simplify).result


#: Largest result, in expression-tree nodes summed over its entries, that symdiff builds and
#: prints (the gradient of a product of 1,000 variables has a million: refused, exit 1).
MAX_RESULT_NODES = 200_000


def check_result_size(entries: Sequence[sp.Expr], what: str) -> None:
    """Refuse a result too large to print or read (a SymdiffError, exit 1)."""
    total = 0
    for entry in entries:
        total += _tree_size(entry, MAX_RESULT_NODES - total + 1)
        if total > MAX_RESULT_NODES:
            raise SymdiffError(
                f"the {what} has more than {MAX_RESULT_NODES:,} terms in its {len(entries)} "
                "entries: too large to print; differentiate by fewer variables"
            )


def _tree_size(expr: sp.Basic, cap: int) -> int:
    """Nodes of ``expr`` as a tree, counted up to ``cap`` (no recursion)."""
    count, stack = 0, [expr]
    while stack and count < cap:
        node = stack.pop()
        count += 1
        stack.extend(node.args)
    return count


def gradient(
    expr: ExprLike, wrt: Names = None, *, simplify: bool = True, budget: float = DEFAULT_BUDGET
) -> display.Gradient:
    """[df/dx_1, ..., df/dx_n], by default over all free symbols in sorted order.

    All entries share one simplification ``budget``. The result is a list (``Gradient``) that
    also knows its variables and displays itself as ∇f in a notebook.
    """
    expression = as_expr(expr)
    variables = resolve_variables(wrt, expression)
    shared = Budget(budget)
    raw = [_partial(expression, v, False, shared) for v in variables]
    check_result_size(raw, "gradient")
    entries = [finish(g, simplify, shared) for g in raw]
    return display.Gradient(entries, variables, expression)


def jacobian(
    exprs: Sequence[ExprLike],
    wrt: Names = None,
    *,
    simplify: bool = True,
    budget: float = DEFAULT_BUDGET,
) -> sp.Matrix:
    """J[i, j] = d f_i / d x_j for the expressions f_i and variables x_j (one shared budget)."""
    expressions = [as_expr(e) for e in exprs]
    if not expressions:
        raise InputError("jacobian needs at least one expression")
    variables = resolve_variables(wrt, *expressions)
    shared = Budget(budget)
    raw = [[_partial(f, v, False, shared) for v in variables] for f in expressions]
    check_result_size([e for row in raw for e in row], "jacobian")
    return sp.Matrix([[finish(e, simplify, shared) for e in row] for row in raw])


def hessian(
    expr: ExprLike, wrt: Names = None, *, simplify: bool = True, budget: float = DEFAULT_BUDGET
) -> sp.Matrix:
    """H[i, j] = d2 f / dx_i dx_j (symmetric: each entry computed once; one shared budget)."""
    expression = as_expr(expr)
    variables = resolve_variables(wrt, expression)
    shared = Budget(budget)
    first = [derive(expression, v, simplify=False).result for v in variables]
    check_result_size(first, "gradient")
    size = len(variables)
    raw: dict[tuple[int, int], sp.Expr] = {}
    for i in range(size):
        for j in range(i, size):
            raw[i, j] = _partial(first[i], variables[j], False, shared)
    check_result_size(list(raw.values()), "hessian")
    matrix = sp.zeros(size, size)
    for (i, j), entry in raw.items():
        matrix[i, j] = matrix[j, i] = finish(entry, simplify, shared)
    return matrix


def _partial(expr: sp.Expr, variable: sp.Symbol, simplify: bool, budget: Budget) -> sp.Expr:
    if not expr.has(variable):
        return sp.Integer(0)
    return derive(expr, variable, simplify=simplify, budget=budget).result


def unit_vector(direction: Sequence[object]) -> list[sp.Expr]:
    """v / |v| (exact when the components are exact)."""
    components = [_as_number(c) for c in direction]
    norm = sp.sqrt(sum(c**2 for c in components))
    if norm == 0:
        raise InputError("the direction must not be the zero vector")
    return [sp.nsimplify(c / norm) if c.is_Rational else c / norm for c in components]


def directional_derivative(
    expr: ExprLike, direction: Sequence[object], wrt: Names = None, *, simplify: bool = True
) -> sp.Expr:
    """D_v f = grad f . v/|v|, the slope of f along the unit vector of ``direction``."""
    expression = as_expr(expr)
    variables = resolve_variables(wrt, expression)
    if len(direction) != len(variables):
        names = ", ".join(v.name for v in variables)
        raise InputError(
            f"direction has {len(direction)} components but there are {len(variables)} "
            f"variables ({names})"
        )
    grad = gradient(expression, variables, simplify=simplify)
    value = sp.Add(*[g * u for g, u in zip(grad, unit_vector(direction), strict=True)])
    return finish(value, simplify)


def _as_number(value: object) -> sp.Expr:
    if isinstance(value, str):
        return parse_number(value)
    if isinstance(value, bool):
        raise InputError("expected a number, got a boolean")
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, float):
        return sp.Float(value)
    if isinstance(value, sp.Expr) and not value.free_symbols:
        return value
    raise InputError(f"expected a number, got {value!r}")


def parse_point(point: str | PointLike) -> dict[str, sp.Expr]:
    """'x=3,y=1/2' or {'x': 3} -> {'x': 3, 'y': 1/2}; values are exact where written exactly."""
    if isinstance(point, str):
        pairs: dict[str, object] = {}
        for item in split_top_level(point):
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise InputError(f"expected name=value in '{item.strip()}'")
            if name.strip() in pairs:
                raise InputError(f"'{name.strip()}' is given twice in '{point}'")
            pairs[name.strip()] = value.strip()
        point = pairs
    return {
        (k.name if isinstance(k, sp.Symbol) else str(k)): _as_number(v) for k, v in point.items()
    }


def split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += char in "(["
        depth -= char in ")]"
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def evaluate(expr: ExprLike, at: str | PointLike) -> sp.Expr:
    """The value of ``expr`` at the point: exact when the inputs are exact, else a Float.

    Steps and kinks (sign, Heaviside, DiracDelta, Abs, Max, Min) whose argument SymPy cannot
    decide exactly are decided numerically at ``SIGN_DIGITS`` digits, so a finite real value
    is always a number. Raises :class:`UndefinedValue` when it is not a finite real number.
    """
    expression = as_expr(expr)
    values = parse_point(at)
    symbols = {s.name: s for s in expression.free_symbols}
    missing = sorted(set(symbols) - set(values))
    if missing:
        raise InputError(f"no value given for {', '.join(missing)} (use --at name=value)")
    substitution = {symbols[name]: value for name, value in values.items() if name in symbols}
    where = format_point(values)
    if _has_huge_power(expression, substitution):
        return _defined(expression.evalf(subs=substitution), where)
    try:
        value = expression.xreplace(substitution)
        value = value.doit() if isinstance(value, sp.Basic) else value
        value = resolve_kinks(value)
    except (ValueError, TypeError, ArithmeticError) as exc:  # SymPy refusing a complex argument
        reason = "not a real number" if "omplex" in str(exc) else "cannot be evaluated"
        raise UndefinedValue(f"the value at {where} is undefined ({reason})", reason) from None
    if value.is_Rational and len(str(abs(value.p)) + str(value.q)) > MAX_EXACT_EXPONENT:
        value = value.evalf()
    return _defined(value, where)


def _defined(value: sp.Expr, where: str) -> sp.Expr:
    """``value`` if it is a finite real number, else raise UndefinedValue saying why."""
    if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        reason = "division by zero"
    elif value.has(sp.DiracDelta):
        reason = "a Dirac delta at its kink"
    elif value.is_real is False or (value.is_number and numeric(value) is None):
        reason = "not a real number"
    else:
        return value
    raise UndefinedValue(f"the value at {where} is undefined ({reason})", reason)


def try_evaluate(expr: sp.Expr, at: PointLike) -> tuple[sp.Expr | None, str | None]:
    """(value, None) at the point, or (None, reason) where the value is undefined there."""
    try:
        return evaluate(expr, at), None
    except UndefinedValue as undefined:
        return None, undefined.reason


def _sign_of(argument: sp.Expr) -> int | None:
    """-1, 0 or 1 for a constant argument: exact when SymPy can decide, else at SIGN_DIGITS
    digits (None when it is not a real number or too close to 0 to tell)."""
    if argument.is_zero:
        return 0
    if argument.is_positive:
        return 1
    if argument.is_negative:
        return -1
    approx = argument.evalf(SIGN_DIGITS)
    if not (approx.is_Number and approx.is_real) or abs(approx) < sp.Float(10) ** (
        10 - SIGN_DIGITS
    ):
        return None
    return 1 if approx > 0 else -1


def _resolve_kink(node: sp.Expr) -> sp.Expr:
    """One step or kink with a constant argument, by the sign of its argument."""
    args = node.args
    if any(a.free_symbols or not a.is_number for a in args):
        return node
    if isinstance(node, (sp.Max, sp.Min)):
        best = args[0]
        for other in args[1:]:
            sign = _sign_of(other - best)
            if sign is None:
                return node
            if (sign > 0) == isinstance(node, sp.Max) and sign != 0:
                best = other
        return best
    sign = _sign_of(args[0])
    if sign is None:
        return node
    if isinstance(node, sp.Abs):
        return sign * args[0]
    if isinstance(node, sp.sign):
        return sp.Integer(sign)
    if isinstance(node, sp.Heaviside):
        at_zero = args[1] if len(args) > 1 else sp.S.Half
        return at_zero if sign == 0 else sp.Integer(1 if sign > 0 else 0)
    if isinstance(node, sp.DiracDelta):
        return node if sign == 0 else sp.Integer(0)
    return node


#: The functions whose value at a point depends only on the sign of (differences of) their
#: arguments.
KINKS = (sp.sign, sp.Heaviside, sp.DiracDelta, sp.Abs, sp.Max, sp.Min)


def resolve_kinks(value: sp.Expr) -> sp.Expr:
    """``value`` with every kink of a constant argument decided (innermost first)."""
    if not isinstance(value, sp.Basic) or not value.has(*KINKS):
        return value
    return value.replace(lambda node: isinstance(node, KINKS), _resolve_kink)


def check_point_names(at: str | PointLike, *exprs: sp.Expr) -> dict[str, sp.Expr]:
    """Parse a point and check every name in it occurs in one of the expressions."""
    values = parse_point(at)
    known = {s.name for e in exprs for s in e.free_symbols}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"--at names {', '.join(unknown)}, which the expression does not use")
    return values


def _has_huge_power(expr: sp.Expr, substitution: Mapping[sp.Symbol, sp.Expr]) -> bool:
    """Whether a power would get more than MAX_EXACT_EXPONENT digits at the point (estimated
    in floating point, so ``x**9999`` at ``x=2**9999`` is never built exactly)."""
    for power in expr.atoms(sp.Pow):
        base = abs(power.base.evalf(15, subs=substitution))
        exponent = abs(power.exp.evalf(15, subs=substitution))
        if not (base.is_Number and exponent.is_Number) or base == 0:
            continue
        if exponent * abs(sp.log(base, 10).evalf(15)) > MAX_EXACT_EXPONENT:
            return True
    return False


def json_number(value: sp.Expr) -> int | float | str:
    """A value for JSON: an int when exact and whole, else a float, else its text (1/0, nan)."""
    if isinstance(value, sp.Integer):
        return int(value)
    number = numeric(value)
    return number if number is not None else formula(value)


def format_point(values: Mapping[str, sp.Expr]) -> str:
    """{'x': 3, 'y': 0.5} -> 'x=3, y=0.5' (each value as the parser reads it back)."""
    return ", ".join(f"{k}={formula(v)}" for k, v in values.items())


def numeric(value: sp.Expr) -> float | None:
    """A float for JSON, or None when the value is not a finite real number."""
    try:
        number = float(sp.N(value, 17))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None
