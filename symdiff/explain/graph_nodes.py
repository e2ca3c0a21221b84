"""The ξ nodes of a computational graph: decomposition of an expression into nodes, their values
and local partials at a point, the forward / reverse sweeps over them, and the cost of each mode.

Decomposition (SymPy's canonical tree, read the way a person writes it):

- a sum is one node; numeric coefficients of its terms stay in the node (``y - b - ξ1``);
- a product is one node, its numeric coefficient included (``ξ1 = -W*X``);
- ``u**-1`` is a reciprocal node (``ξ4 = 1/ξ3``), ``u**n`` a power node, ``f(u)`` a function node;
- constants (numbers, pi, log(2), ...) are folded into the node that uses them;
- equal subexpressions are one node, used by every parent (shared, not copied).

Local partial derivatives ∂ξ/∂input come from symdiff's own rules (``differentiate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..calculus.differentiate import differentiate
from ..calculus.rules import OUTER_RULES
from ..errors import InputError

#: Exact values longer than this (characters) are carried as 30-digit floats instead.
MAX_EXACT_LENGTH = 60


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class GraphNode:
    """ξ = definition(inputs): one elementary operation, its local partials and its values."""

    symbol: sp.Symbol
    op: str
    definition: sp.Expr
    expression: sp.Expr
    inputs: tuple[sp.Symbol, ...]
    partials: tuple[sp.Expr, ...]
    value: sp.Expr
    partial_values: tuple[sp.Expr, ...]

    @property
    def id(self) -> str:
        """ASCII identifier (ξ3 -> xi3)."""
        return ascii_name(self.symbol)


def ascii_name(symbol: sp.Symbol) -> str:
    """ξ3 -> xi3; other names unchanged (user names are ASCII)."""
    return symbol.name.replace("ξ", "xi")


def _op_name(expr: sp.Expr) -> str:
    if isinstance(expr, sp.Add):
        return "add"
    if isinstance(expr, sp.Mul):
        return "multiply"
    if isinstance(expr, sp.Pow):
        base, exponent = expr.args
        if exponent == -1:
            return "reciprocal"
        if exponent == sp.Rational(1, 2):
            return "sqrt"
        if not exponent.free_symbols:
            return "power"
        return "exponential" if not base.free_symbols else "general_power"
    if isinstance(expr, sp.Symbol):
        return "identity"
    rule = next((OUTER_RULES[c] for c in type(expr).__mro__ if c in OUTER_RULES), None)
    return rule.name if rule is not None else type(expr).__name__.lower()


class _Builder:
    """Post-order walk that creates one node per distinct non-constant subexpression."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.memo: dict[sp.Expr, sp.Symbol] = {}
        self.records: list[tuple[sp.Symbol, str, sp.Expr, sp.Expr, tuple[sp.Symbol, ...]]] = []

    def operand(self, expr: sp.Expr) -> sp.Expr:
        """What a parent's definition uses for ``expr``: a constant, a variable or a node."""
        if not expr.free_symbols:
            return expr
        if isinstance(expr, sp.Symbol):
            return expr
        return self.node(expr)

    def node(self, expr: sp.Expr) -> sp.Symbol:
        if expr in self.memo:
            return self.memo[expr]
        if isinstance(expr, sp.Add):
            terms = []
            for term in expr.args:
                coefficient, rest = term.as_coeff_Mul()
                terms.append(term if not rest.free_symbols else coefficient * self.operand(rest))
            definition = sp.Add(*terms)
        elif isinstance(expr, sp.Symbol):
            definition = expr
        else:
            definition = expr.func(*[self.operand(arg) for arg in expr.args])
        inputs = tuple(dict.fromkeys(_ordered_symbols(definition)))
        symbol = sp.Symbol(f"ξ{len(self.records) + 1}", real=True)
        self.memo[expr] = symbol
        self.records.append((symbol, _op_name(expr), definition, expr, inputs))
        return symbol


def _ordered_symbols(expr: sp.Expr) -> Iterable[sp.Symbol]:
    """Free symbols in order of appearance (pre-order), for stable input lists."""
    for sub in sp.preorder_traversal(expr):
        if isinstance(sub, sp.Symbol):
            yield sub


def _exact_or_float(value: sp.Expr) -> sp.Expr:
    if not isinstance(value, sp.Float) and value.free_symbols == set() and not value.is_Number:
        value = min(value, sp.cancel(value), key=lambda v: (sp.count_ops(v), len(str(v))))
    if len(str(value)) > MAX_EXACT_LENGTH:
        return sp.Float(value.evalf(30), 30)
    return value


def _value(expr: sp.Expr, values: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr:
    value = expr.xreplace(dict(values))
    value = value.doit() if isinstance(value, sp.Basic) else value
    if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or value.is_real is False:
        raise InputError(f"{expr} is undefined at this point ({value})")
    return _exact_or_float(value)


# --------------------------------------------------------------------------- sweeps


def _evaluate(
    records: list, renames: Mapping[sp.Symbol, sp.Symbol], point: Mapping[sp.Symbol, sp.Expr]
) -> tuple[GraphNode, ...]:
    values: dict[sp.Symbol, sp.Expr] = dict(point)
    nodes = []
    for symbol, op, definition, expression, inputs in records:
        symbol = renames.get(symbol, symbol)
        definition = definition.xreplace(dict(renames))
        inputs = tuple(renames.get(i, i) for i in inputs)
        partials = tuple(differentiate(definition, i).result for i in inputs)
        value = _value(definition, values)
        partial_values = tuple(_value(p, values) for p in partials)
        values[symbol] = value
        nodes.append(
            GraphNode(symbol, op, definition, expression, inputs, partials, value, partial_values)
        )
    return tuple(nodes)


def _forward(nodes: Sequence[GraphNode], variable: sp.Symbol) -> dict[sp.Symbol, sp.Expr]:
    """dξ/dv for every node: ξ' = sum_k ∂ξ/∂input_k * input_k' (inputs' tangents 1 or 0)."""
    tangent: dict[sp.Symbol, sp.Expr] = {variable: sp.Integer(1)}
    for node in nodes:
        total = sp.Add(
            *[
                v * tangent.get(i, sp.Integer(0))
                for i, v in zip(node.inputs, node.partial_values, strict=True)
            ]
        )
        tangent[node.symbol] = _exact_or_float(total)
    return tangent


def _reverse(nodes: Sequence[GraphNode], output: sp.Symbol) -> dict[sp.Symbol, sp.Expr]:
    """∂o/∂ξ for every node and variable: input_k_bar += ξ_bar * ∂ξ/∂input_k, last node first."""
    adjoint: dict[sp.Symbol, sp.Expr] = {output: sp.Integer(1)}
    for node in reversed(nodes):
        bar = adjoint.get(node.symbol)
        if bar is None:
            adjoint[node.symbol] = sp.Integer(0)
            continue
        for i, v in zip(node.inputs, node.partial_values, strict=True):
            adjoint[i] = _exact_or_float(adjoint.get(i, sp.Integer(0)) + bar * v)
    return adjoint


# --------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class Cost:
    """Work to get every derivative of m outputs by n inputs, per mode (edge-count model)."""

    inputs: int
    outputs: int
    nodes: int
    edges: int
    forward_per_sweep: int
    reverse_per_sweep: int

    @property
    def forward_sweeps(self) -> int:
        return self.inputs

    @property
    def reverse_sweeps(self) -> int:
        return self.outputs

    @property
    def forward_total(self) -> int:
        return self.forward_sweeps * self.forward_per_sweep

    @property
    def reverse_total(self) -> int:
        return self.reverse_sweeps * self.reverse_per_sweep

    def verdict(self) -> str:
        n, m = self.inputs, self.outputs
        if self.forward_total < self.reverse_total:
            return f"forward mode is cheaper here (m = {m} outputs > n = {n} inputs)"
        if self.reverse_total < self.forward_total:
            return f"reverse mode is cheaper here (n = {n} inputs > m = {m} outputs)"
        return f"both modes cost the same here (n = {n}, m = {m})"

    def lines(self) -> list[str]:
        return [
            f"Cost of all derivatives of {_plural(self.outputs, 'output')} by "
            f"{_plural(self.inputs, 'input')}",
            "(one multiply per active edge, one add per extra term of a sum):",
            f"  evaluation: {_plural(self.nodes, 'node')}, {_plural(self.edges, 'local partial')}"
            " (once, both modes)",
            f"  forward mode: {_plural(self.forward_sweeps, 'sweep')} (one per input) x "
            f"{self.forward_per_sweep} = {_plural(self.forward_total, 'operation')}",
            f"  reverse mode: {_plural(self.reverse_sweeps, 'sweep')} (one per output) x "
            f"{self.reverse_per_sweep} = {_plural(self.reverse_total, 'operation')}",
            f"  {self.verdict()}",
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "outputs": self.outputs,
            "nodes": self.nodes,
            "edges": self.edges,
            "forward": {
                "sweeps": self.forward_sweeps,
                "operations_per_sweep": self.forward_per_sweep,
                "operations": self.forward_total,
            },
            "reverse": {
                "sweeps": self.reverse_sweeps,
                "operations_per_sweep": self.reverse_per_sweep,
                "operations": self.reverse_total,
            },
            "verdict": self.verdict(),
        }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
