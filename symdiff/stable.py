"""Numerically stable rewrites, applied before generated code is printed.

Two ordered tuples of passes. ``PASSES`` rewrite the per-sample loss before it is differentiated
(so the derivative is taken of the stable form); ``EVALUATION_PASSES`` rewrite the loss and its
gradient together just before they are printed (a pass may look at what the other expressions
already compute). Every pass returns expressions equal to its input, in exact arithmetic:

1. ``sigmoid_explicit``       1/(1 + exp(-u))       -> sigmoid(u)
2. ``softplus_explicit``      log(1 + exp(u))       -> softplus(u)
3. ``log_sigmoid``            log(sigmoid(u))       -> -softplus(-u)
4. ``log_one_minus_sigmoid``  log(1 - sigmoid(u))   -> -softplus(u)
5. ``logaddexp``              log(exp(a) + exp(b))  -> logaddexp(a, b)  (nested for more terms)
6. ``log1p``                  log(1 + x)            -> log1p(x)
7. ``expm1``                  exp(x) - 1            -> expm1(x)
8. ``softplus_reflection``    softplus(-u)          -> softplus(u) - u, when softplus(u) is also
                                                        computed (one logaddexp instead of two)
9. ``sigmoid_via_softplus``   sigmoid(u)            -> exp(-softplus(-u))  (evaluation only:
                                                        never overflows; shares softplus with l)

The printer evaluates softplus(u) as ``max(u, 0) + log1p(exp(-|u|))``, which never overflows, so
the logistic loss and its gradient stay finite and accurate at z = +-1000.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp
from sympy.codegen.numpy_nodes import logaddexp

from .functions import expm1, log1p, sigmoid, softplus

__all__ = [
    "PASSES",
    "EVALUATION_PASSES",
    "REWRITE_FORMULAS",
    "logaddexp",
    "stabilize",
    "stabilize_for_evaluation",
]

Exprs = tuple[sp.Expr, ...]
Pass = Callable[[Exprs], Exprs]

#: Rewrite name -> the identity it applies (documented in every generated module).
REWRITE_FORMULAS: dict[str, str] = {
    "sigmoid_explicit": "1/(1 + exp(-u)) -> sigmoid(u)",
    "softplus_explicit": "log(1 + exp(u)) -> softplus(u)",
    "log_sigmoid": "log(sigmoid(u)) -> -softplus(-u)",
    "log_one_minus_sigmoid": "log(1 - sigmoid(u)) -> -softplus(u)",
    "logaddexp": "log(exp(a) + exp(b)) -> logaddexp(a, b)",
    "log1p": "log(1 + x) -> log1p(x)",
    "expm1": "exp(x) - 1 -> expm1(x)",
    "softplus_reflection": "softplus(-u) -> softplus(u) - u  (when softplus(u) is computed too)",
    "sigmoid_via_softplus": "sigmoid(u) -> exp(-softplus(-u))",
}


def _each(rewrite: Callable[[sp.Expr], sp.Expr]) -> Pass:
    """Lift a one-expression rewrite to a pass over a tuple of expressions."""

    def run(exprs: Exprs) -> Exprs:
        return tuple(rewrite(e) for e in exprs)

    run.__doc__ = rewrite.__doc__
    return run


def _replace(expr: sp.Expr, match: Callable[[sp.Expr], bool], build: Callable) -> sp.Expr:
    return expr.replace(lambda e: isinstance(e, sp.Basic) and match(e), build)


def _exp_argument(term: sp.Expr) -> sp.Expr | None:
    """a for exp(a), 0 for the number 1, else None."""
    if isinstance(term, sp.exp):
        return term.args[0]
    if term == 1:
        return sp.Integer(0)
    return None


# --------------------------------------------------------------------------- one-expression rules


def sigmoid_explicit(expr: sp.Expr) -> sp.Expr:
    """1/(1 + exp(-u)) -> sigmoid(u)."""

    def match(e: sp.Expr) -> bool:
        return (
            isinstance(e, sp.Pow)
            and e.exp == -1
            and isinstance(e.base, sp.Add)
            and len(e.base.args) == 2
            and sp.Integer(1) in e.base.args
            and any(isinstance(t, sp.exp) for t in e.base.args)
        )

    def build(e: sp.Pow) -> sp.Expr:
        term = next(t for t in e.base.args if isinstance(t, sp.exp))
        return sigmoid(-term.args[0])

    return _replace(expr, match, build)


def softplus_explicit(expr: sp.Expr) -> sp.Expr:
    """log(1 + exp(u)) -> softplus(u)."""

    def match(e: sp.Expr) -> bool:
        if not isinstance(e, sp.log) or not isinstance(e.args[0], sp.Add):
            return False
        terms = e.args[0].args
        return (
            len(terms) == 2 and sp.Integer(1) in terms and any(isinstance(t, sp.exp) for t in terms)
        )

    def build(e: sp.log) -> sp.Expr:
        term = next(t for t in e.args[0].args if isinstance(t, sp.exp))
        return softplus(term.args[0])

    return _replace(expr, match, build)


def log_sigmoid(expr: sp.Expr) -> sp.Expr:
    """log(sigmoid(u)) -> -softplus(-u)."""
    return _replace(
        expr,
        lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sigmoid),
        lambda e: -softplus(-e.args[0].args[0]),
    )


def _one_minus_sigmoid(arg: sp.Expr) -> sp.Expr | None:
    """u when ``arg`` is 1 - sigmoid(u), else None."""
    if not isinstance(arg, sp.Add) or len(arg.args) != 2 or sp.Integer(1) not in arg.args:
        return None
    other = next(t for t in arg.args if t != 1)
    coefficient, rest = other.as_coeff_Mul()
    if coefficient == -1 and isinstance(rest, sigmoid):
        return rest.args[0]
    return None


def log_one_minus_sigmoid(expr: sp.Expr) -> sp.Expr:
    """log(1 - sigmoid(u)) -> -softplus(u)."""
    return _replace(
        expr,
        lambda e: isinstance(e, sp.log) and _one_minus_sigmoid(e.args[0]) is not None,
        lambda e: -softplus(_one_minus_sigmoid(e.args[0])),
    )


def logaddexp_rewrite(expr: sp.Expr) -> sp.Expr:
    """log(exp(a) + exp(b) + ...) -> logaddexp(logaddexp(a, b), ...)."""

    def match(e: sp.Expr) -> bool:
        return (
            isinstance(e, sp.log)
            and isinstance(e.args[0], sp.Add)
            and all(_exp_argument(t) is not None for t in e.args[0].args)
        )

    def build(e: sp.log) -> sp.Expr:
        arguments = [_exp_argument(t) for t in e.args[0].args]
        result = arguments[0]
        for argument in arguments[1:]:
            result = logaddexp(result, argument)
        return result

    return _replace(expr, match, build)


def log1p_rewrite(expr: sp.Expr) -> sp.Expr:
    """log(1 + x) -> log1p(x)."""
    return _replace(
        expr,
        lambda e: (
            isinstance(e, sp.log)
            and isinstance(e.args[0], sp.Add)
            and sp.Integer(1) in e.args[0].args
        ),
        lambda e: log1p(e.args[0] - 1),
    )


def expm1_rewrite(expr: sp.Expr) -> sp.Expr:
    """exp(x) - 1 -> expm1(x) (inside any sum that holds both terms)."""

    def match(e: sp.Expr) -> bool:
        return (
            isinstance(e, sp.Add)
            and sp.Integer(-1) in e.args
            and any(isinstance(t, sp.exp) for t in e.args)
        )

    def build(e: sp.Add) -> sp.Expr:
        term = next(t for t in e.args if isinstance(t, sp.exp))
        rest = [t for t in e.args if t is not term and t != -1]
        return sp.Add(expm1(term.args[0]), *rest)

    return _replace(expr, match, build)


def sigmoid_via_softplus(expr: sp.Expr) -> sp.Expr:
    """sigmoid(u) -> exp(-softplus(-u)): at most exp(0), so it never overflows."""
    return _replace(expr, lambda e: isinstance(e, sigmoid), lambda e: sp.exp(-softplus(-e.args[0])))


# --------------------------------------------------------------------------- whole-set rules


def softplus_reflection(exprs: Exprs) -> Exprs:
    """softplus(-u) -> softplus(u) - u wherever softplus(u) is computed as well.

    The argument u is kept as one unit while like terms are collected, so
    ``y*softplus(-z) + (1 - y)*softplus(z)`` becomes ``softplus(z) - y*z``.
    """
    calls = sorted({f for e in exprs for f in e.atoms(softplus)}, key=sp.default_sort_key)
    present = set(calls)
    pairs = [f for f in calls if f.args[0].could_extract_minus_sign()]
    pairs = [f for f in pairs if softplus(-f.args[0]) in present]
    if not pairs:
        return exprs
    units = sorted({-f.args[0] for f in pairs}, key=sp.default_sort_key)
    placeholders = {u: sp.Dummy(f"u{i}", real=True) for i, u in enumerate(units)}
    forward: dict[sp.Expr, sp.Expr] = {}
    for u, d in placeholders.items():
        forward[softplus(-u)] = softplus(d) - d
        forward[-u] = -d
        forward[u] = d
    back = {d: u for u, d in placeholders.items()}
    result = []
    for e in exprs:
        changed = e.xreplace(forward)
        if any(softplus(-u) in e.atoms(softplus) for u in units):
            changed = sp.expand(
                changed, mul=True, multinomial=False, power_exp=False, power_base=False, log=False
            )
        result.append(changed.xreplace(back))
    return tuple(result)


#: Rewrites of the loss before it is differentiated, in order.
PASSES: tuple[tuple[str, Pass], ...] = (
    ("sigmoid_explicit", _each(sigmoid_explicit)),
    ("softplus_explicit", _each(softplus_explicit)),
    ("log_sigmoid", _each(log_sigmoid)),
    ("log_one_minus_sigmoid", _each(log_one_minus_sigmoid)),
    ("logaddexp", _each(logaddexp_rewrite)),
    ("log1p", _each(log1p_rewrite)),
    ("expm1", _each(expm1_rewrite)),
    ("softplus_reflection", softplus_reflection),
)

#: Rewrites of loss and gradient together, just before printing, in order.
EVALUATION_PASSES: tuple[tuple[str, Pass], ...] = (
    ("sigmoid_via_softplus", _each(sigmoid_via_softplus)),
    ("softplus_reflection", softplus_reflection),
)


def _run(passes: tuple[tuple[str, Pass], ...], exprs: Sequence[sp.Expr]) -> tuple[Exprs, tuple]:
    current = tuple(exprs)
    applied: list[str] = []
    for name, run in passes:
        rewritten = run(current)
        if rewritten != current:
            applied.append(name)
        current = rewritten
    return current, tuple(applied)


def stabilize(expr: sp.Expr) -> tuple[sp.Expr, tuple[str, ...]]:
    """The loss rewritten by ``PASSES``, and the names of the passes that changed it."""
    (result,), applied = _run(PASSES, (expr,))
    return result, applied


def stabilize_for_evaluation(exprs: Sequence[sp.Expr]) -> tuple[Exprs, tuple[str, ...]]:
    """Loss and gradient expressions rewritten by ``EVALUATION_PASSES`` (jointly)."""
    return _run(EVALUATION_PASSES, exprs)
