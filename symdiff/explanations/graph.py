"""The computational graph of an expression: one ξ node per elementary operation, evaluated at a
point in forward mode (tangents dξ/dW, one sweep per input) and in reverse mode (adjoints
∂L/∂ξ, one sweep per output), as in the tables of the source documents.

This module holds ``Graph`` and ``build_graph``; the nodes and sweeps are in ``graph_nodes``,
the text / Markdown / LaTeX / JSON / DOT output in ``graph_render`` (both re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from ..calculus.api import ExprLike, as_expr, parse_point, resolve_variables
from ..errors import InputError, SymdiffError
from ..frontend.parse import TypedNode, typed_tree
from ..text import formula
from .graph_nodes import (
    MAX_EXACT_LENGTH,
    Cost,
    GraphNode,
    _Builder,
    _evaluate,
    _forward,
    _reverse,
    ascii_name,
)
from .graph_render import TEXT_DIGITS, TEXT_EXACT_LENGTH, GraphRendering, text_table

__all__ = [
    "MAX_EXACT_LENGTH",
    "MODES",
    "TEXT_DIGITS",
    "TEXT_EXACT_LENGTH",
    "Cost",
    "Graph",
    "GraphRendering",
    "GraphNode",
    "ascii_name",
    "build_graph",
    "text_table",
]

MODES = ("forward", "reverse", "both")


@dataclass(frozen=True, repr=False)
class Graph(GraphRendering):
    """Nodes in evaluation order, the point, and the forward / reverse sweeps at that point.

    ``tangents[v][s]`` = dξ_s/dv (forward sweep seeded with dv = 1);
    ``adjoints[o][s]`` = ∂o/∂ξ_s (reverse sweep seeded with ∂o/∂o = 1).
    """

    outputs: tuple[sp.Expr, ...]
    trees: tuple[TypedNode, ...]
    output_symbols: tuple[sp.Symbol, ...]
    nodes: tuple[GraphNode, ...]
    variables: tuple[sp.Symbol, ...]
    point: dict[sp.Symbol, sp.Expr]
    wrt: tuple[sp.Symbol, ...]
    mode: str
    tangents: dict[sp.Symbol, dict[sp.Symbol, sp.Expr]]
    adjoints: dict[sp.Symbol, dict[sp.Symbol, sp.Expr]]

    def derivative(self, output: int = 0, wrt: str | sp.Symbol | None = None) -> sp.Expr:
        """d(output)/d(wrt) at the point (exact where the inputs are exact)."""
        variable = self._variable(wrt)
        out = self.output_symbols[output]
        if variable in self.tangents:
            return self.tangents[variable].get(out, sp.Integer(0))
        return self.adjoints[out].get(variable, sp.Integer(0))

    def _variable(self, wrt: str | sp.Symbol | None) -> sp.Symbol:
        if wrt is None:
            return self.wrt[0]
        name = wrt.name if isinstance(wrt, sp.Symbol) else wrt
        return next(v for v in self.wrt if v.name == name)

    def cost(self) -> Cost:
        """Sweeps and derivative operations per mode: each active edge is one multiply, each
        extra term of a sum one add (forward: fan-in - 1 per node; reverse: fan-out - 1)."""
        active = {n.symbol for n in self.nodes} | set(self.wrt)
        edges = [(i, n.symbol) for n in self.nodes for i in n.inputs if i in active]
        fan_in: dict[sp.Symbol, int] = {}
        fan_out: dict[sp.Symbol, int] = {}
        for source, target in edges:
            fan_in[target] = fan_in.get(target, 0) + 1
            fan_out[source] = fan_out.get(source, 0) + 1
        forward = len(edges) + sum(k - 1 for k in fan_in.values())
        reverse = len(edges) + sum(k - 1 for k in fan_out.values())
        every_edge = sum(len(n.inputs) for n in self.nodes)
        return Cost(len(self.wrt), len(self.outputs), len(self.nodes), every_edge, forward, reverse)


# --------------------------------------------------------------------------- building


#: Largest number of table cells (ξ nodes times sweeps) a graph explanation builds.
MAX_TABLE_CELLS = 20_000


def build_graph(
    exprs: ExprLike | Sequence[ExprLike],
    wrt: str | sp.Symbol | Iterable[str | sp.Symbol] | None,
    at: str | Mapping[str, object],
    mode: str = "both",
) -> Graph:
    """Decompose the expression(s) into ξ nodes and run the sweeps at the point ``at``.

    Nodes follow the expression as typed (a SymPy expression: as ``text.formula`` prints it).

    ``mode`` is forward (one sweep per variable in ``wrt``), reverse (one sweep per output)
    or both. Every variable of the expressions needs a value in ``at``.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}' (choose from {', '.join(MODES)})")
    items = [exprs] if isinstance(exprs, (str, sp.Expr)) else list(exprs)
    trees = tuple(typed_tree(e if isinstance(e, str) else formula(as_expr(e))) for e in items)
    if not trees:
        raise InputError("graph needs at least one expression")
    outputs = tuple(tree.value for tree in trees)
    for tree in trees:
        if not tree.value.free_symbols:
            raise InputError(f"{tree.text()} is a constant: it has no computational graph")
    variables = tuple(resolve_variables(None, *outputs))
    wrt_symbols = tuple(resolve_variables(wrt, *outputs))
    point = _point(at, variables)
    taken = {v.name for v in variables}
    builder = _Builder(taken)
    output_symbols = [builder.node(tree) for tree in trees]
    names = _output_names(len(outputs), taken)
    renames: dict[sp.Symbol, sp.Symbol] = {}
    for old, name in zip(output_symbols, names, strict=True):
        if name is not None and old not in renames:
            renames[old] = sp.Symbol(name, real=True)
    sweeps = (len(wrt_symbols) if mode != "reverse" else 0) + (
        len(outputs) if mode != "forward" else 0
    )
    cells = len(builder.records) * sweeps
    if cells > MAX_TABLE_CELLS:
        raise SymdiffError(
            f"the graph has {len(builder.records)} nodes and {sweeps} sweeps: its tables would "
            f"have {cells:,} cells (limit {MAX_TABLE_CELLS:,}); use fewer outputs, fewer --wrt "
            "inputs or one --mode"
        )
    nodes = _evaluate(builder.records, renames, point)
    final_outputs = tuple(renames.get(s, s) for s in output_symbols)
    tangents = {v: _forward(nodes, v) for v in wrt_symbols} if mode != "reverse" else {}
    adjoints = {o: _reverse(nodes, o) for o in final_outputs} if mode != "forward" else {}
    return Graph(
        outputs,
        trees,
        final_outputs,
        nodes,
        variables,
        point,
        wrt_symbols,
        mode,
        tangents,
        adjoints,
    )


def _point(at: str | Mapping[str, object], variables: Sequence[sp.Symbol]) -> dict:
    values = parse_point(at)
    names = {v.name for v in variables}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"--at names {', '.join(unknown)}, which the expression does not use")
    missing = [v.name for v in variables if v.name not in values]
    if missing:
        raise InputError(f"no value given for {', '.join(missing)} (use --at name=value)")
    return {v: values[v.name] for v in variables}


def _output_names(count: int, taken: set[str]) -> list[str | None]:
    """'L' for one output, 'L1', 'L2', ... for several; None where the name is taken."""
    names = ["L"] if count == 1 else [f"L{k}" for k in range(1, count + 1)]
    return [None if name in taken else name for name in names]
