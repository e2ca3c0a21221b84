"""The ξ nodes of a computational graph: decomposition of an expression into nodes, their values
and local partials at a point, the forward / reverse sweeps over them, and the cost of each mode.

Decomposition follows the expression as typed (``typed_tree``), operands in typed order:

- a chain ``u + v - w`` is one sum node, a chain ``u*v/w`` one product node (``ξ4 = 1/ξ3``),
  ``u**v`` a power node, ``-u`` a negation node, ``f(u)`` a function node;
- variables, constants (numbers, pi, log(2), ...) and negated ones (``-W``) are folded into
  the node that uses them (``ξ1 = -W*X``);
- a function of a difference is one node, as a loss of a residual is written
  (``L = abs(y_true - ξ2)``); a sum such as ``w*x + b`` keeps its own node;
- equal subexpressions are one node, used by every parent (shared, not copied).

Local partial derivatives ∂ξ/∂input come from symdiff's own rules (``differentiate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from ..calculus.differentiate import differentiate
from ..calculus.rules import OUTER_RULES
from ..errors import InputError
from ..frontend.parse import FUNCTIONS, TypedNode, typed_text
from ..text import FormulaPrinter, formula

#: Exact values longer than this (characters) are carried as 30-digit floats instead.
MAX_EXACT_LENGTH = 60


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class GraphNode:
    """ξ = definition(inputs): one elementary operation, its local partials and its values.

    ``definition`` / ``partials`` are SymPy's forms (for evaluation); ``text`` /
    ``partial_texts`` the same as typed (operand order kept), ``typed`` / ``typed_partials``
    unevaluated SymPy in typed order (for LaTeX); ``source`` the typed subexpression.
    """

    symbol: sp.Symbol
    op: str
    definition: sp.Expr
    expression: sp.Expr
    inputs: tuple[sp.Symbol, ...]
    partials: tuple[sp.Expr, ...]
    value: sp.Expr
    partial_values: tuple[sp.Expr, ...]
    text: str
    partial_texts: tuple[str, ...]
    typed: sp.Expr
    typed_partials: tuple[sp.Expr, ...]
    source: str

    @property
    def id(self) -> str:
        """ASCII identifier (ξ3 -> xi3)."""
        return ascii_name(self.symbol)


def ascii_name(symbol: sp.Symbol) -> str:
    """ξ3 -> xi3; other names unchanged (user names are ASCII)."""
    return symbol.name.replace("ξ", "xi")


def _op_name(node: TypedNode) -> str:
    """add, multiply, divide, reciprocal, negate, power, exponential, general_power, or the
    function's rule name (exp, log, abs, sigmoid, ...)."""
    if node.kind == "sum":
        return "add"
    if node.kind == "product":
        if node.ops == ("*", "/") and node.operands[0].value == 1:
            return "reciprocal"
        return "divide" if "/" in node.ops else "multiply"
    if node.kind == "power":
        base, exponent = (operand.value for operand in node.operands)
        if not exponent.free_symbols:
            return "power"
        return "exponential" if not base.free_symbols else "general_power"
    if node.kind == "negate":
        return "negate"
    if node.kind != "call":
        return "identity"
    value = node.value
    if isinstance(value, sp.Pow) and value.exp == sp.Rational(1, 2):
        return "sqrt"
    rule = next((OUTER_RULES[c] for c in type(value).__mro__ if c in OUTER_RULES), None)
    return rule.name if rule is not None else node.name


def _folds(node: TypedNode) -> bool:
    """A function of a difference is one node: ``abs(y_true - ξ2)``."""
    if node.kind != "call" or len(node.operands) != 1:
        return False
    argument = node.operands[0]
    return argument.kind == "sum" and "-" in argument.ops and bool(argument.value.free_symbols)


class _Kept(sp.UnevaluatedExpr):
    """A function argument kept as typed (``abs(y - u)``, not ``abs(u - y)``); commutative."""

    is_commutative = True


def _combine(node: TypedNode, args: Sequence[sp.Expr], typed: bool) -> sp.Expr:
    """The operation of ``node`` on ``args``: SymPy's form, or (``typed``) unevaluated in typed
    order."""
    keep = {"evaluate": False} if typed else {}
    if node.kind == "sum":
        terms = [
            a if op == "+" else sp.Mul(-1, a, **keep) for op, a in zip(node.ops, args, strict=True)
        ]
        return sp.Add(*terms, **keep)
    if node.kind == "product":
        factors = [
            a if op == "*" else sp.Pow(a, -1, **keep)
            for op, a in zip(node.ops, args, strict=True)
            if not (typed and op == "*" and a == 1)  # 1/u, not 1*u**(-1)
        ]
        return sp.Mul(*factors, **keep)
    if node.kind == "power":
        return sp.Pow(args[0], args[1], **keep)
    if node.kind == "negate":
        return -args[0] if args[0].is_Number else sp.Mul(-1, args[0], **keep)
    if node.kind == "call":
        if typed:
            args = [a if a.is_Atom else _Kept(a) for a in args]
        return FUNCTIONS[node.name].build(*args)
    return node.value


def typed_sympy(node: TypedNode) -> sp.Expr:
    """``node`` as unevaluated SymPy in typed order (for LaTeX): ``y_true - (w*x + b)``."""
    if not node.operands:
        return node.value
    return _combine(node, [typed_sympy(o) for o in node.operands], True)


@dataclass(frozen=True)
class _Record:
    """A node before evaluation: its typed operation and what each operand stands for."""

    symbol: sp.Symbol
    node: TypedNode
    resolved: Mapping[int, sp.Expr]  # id(typed operand) -> variable, constant or ξ symbol


class _Builder:
    """Post-order walk of typed trees: one node per distinct non-constant operation."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.memo: dict[sp.Expr, sp.Symbol] = {}
        self.records: list[_Record] = []

    def operand(self, node: TypedNode) -> sp.Expr:
        """What a parent's definition uses for ``node``: a constant, a (negated) variable or a
        node."""
        if not node.value.free_symbols or node.kind == "symbol":
            return node.value
        if node.kind == "negate" and node.operands[0].kind in ("symbol", "number"):
            return node.value
        return self.node(node)

    def node(self, node: TypedNode) -> sp.Symbol:
        if node.value in self.memo:
            return self.memo[node.value]
        resolved: dict[int, sp.Expr] = {}
        for operand in node.operands:
            parts = operand.operands if _folds(node) else (operand,)
            for part in parts:
                resolved[id(part)] = self.operand(part)
        symbol = sp.Symbol(f"ξ{len(self.records) + 1}", real=True)
        self.memo[node.value] = symbol
        self.records.append(_Record(symbol, node, resolved))
        return symbol


class _ArgumentPrinter(FormulaPrinter):
    """``formula`` text in which ``placeholder`` prints as the typed argument ``argument``."""

    def __init__(self, placeholder: sp.Symbol, argument: str, e_name: str) -> None:
        super().__init__({"order": None}, e_name=e_name)
        self.placeholder = placeholder
        self.argument = argument

    def _print_Dummy(self, expr: sp.Dummy) -> str:
        return self.argument if expr == self.placeholder else super()._print_Dummy(expr)

    def parenthesize(self, item: Any, level: int, strict: bool = False) -> str:
        if item == self.placeholder and PRECEDENCE["Add"] <= level:
            return f"({self.argument})"
        return super().parenthesize(item, level, strict)


def _definition(record: _Record, renames: Mapping[sp.Symbol, sp.Symbol]) -> dict[str, Any]:
    """Definition, inputs and local partials of a record, as SymPy and as typed text."""
    node = record.node
    resolved = {k: v.xreplace(dict(renames)) for k, v in record.resolved.items()}

    def leaf(n: TypedNode) -> str | None:
        value = resolved.get(id(n))
        return formula(value) if isinstance(value, sp.Symbol) and n is not node else None

    def args(n: TypedNode, typed: bool) -> list[sp.Expr]:
        return [
            resolved[id(o)]
            if id(o) in resolved
            else _combine(o, args(o, typed), typed)  # a folded argument
            for o in n.operands
        ]

    definition = _combine(node, args(node, False), False) if node.operands else node.value
    typed = _combine(node, args(node, True), True) if node.operands else node.value
    inputs = tuple(dict.fromkeys(s for value in resolved.values() for s in _ordered_symbols(value)))
    if not node.operands:  # an output that is a variable
        inputs = (node.value,)
    text = typed_text(node, leaf)
    if _folds(node):
        argument = node.operands[0]
        inner = _combine(argument, args(argument, False), False)
        placeholder = sp.Dummy("u", real=True)
        outer = differentiate(FUNCTIONS[node.name].build(placeholder), placeholder).result
        e_name = "exp(1)" if "e" in {str(s) for s in definition.free_symbols} else "e"
        printer = _ArgumentPrinter(placeholder, typed_text(argument, leaf), e_name)
        typed_argument = _Kept(_combine(argument, args(argument, True), True))
        slopes = [differentiate(inner, i).result for i in inputs]
        partial_texts = tuple(printer.doprint(c * outer) for c in slopes)
        partials = tuple(c * outer.xreplace({placeholder: inner}) for c in slopes)
        typed_partials = tuple(c * outer.xreplace({placeholder: typed_argument}) for c in slopes)
    else:
        partials = tuple(differentiate(definition, i).result for i in inputs)
        partial_texts = tuple(formula(p) for p in partials)
        typed_partials = partials
    return {
        "definition": definition,
        "inputs": inputs,
        "partials": partials,
        "text": text,
        "partial_texts": partial_texts,
        "typed": typed,
        "typed_partials": typed_partials,
    }


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


def _value(expr: sp.Expr, values: Mapping[sp.Symbol, sp.Expr], text: str) -> sp.Expr:
    value = expr.xreplace(dict(values))
    value = value.doit() if isinstance(value, sp.Basic) else value
    if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or value.is_real is False:
        raise InputError(f"{text} is undefined at this point ({formula(value)})")
    return _exact_or_float(value)


# --------------------------------------------------------------------------- sweeps


def _evaluate(
    records: Sequence[_Record],
    renames: Mapping[sp.Symbol, sp.Symbol],
    point: Mapping[sp.Symbol, sp.Expr],
) -> tuple[GraphNode, ...]:
    values: dict[sp.Symbol, sp.Expr] = dict(point)
    nodes = []
    for record in records:
        symbol = renames.get(record.symbol, record.symbol)
        parts = _definition(record, renames)
        value = _value(parts["definition"], values, f"{symbol} = {parts['text']}")
        partial_values = tuple(
            _value(p, values, f"∂{symbol}/∂{i} = {t}")
            for i, p, t in zip(
                parts["inputs"], parts["partials"], parts["partial_texts"], strict=True
            )
        )
        values[symbol] = value
        op = _op_name(record.node)
        nodes.append(
            GraphNode(
                symbol=symbol,
                op=op,
                expression=record.node.value,
                value=value,
                partial_values=partial_values,
                source=record.node.text(),
                **parts,
            )
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
