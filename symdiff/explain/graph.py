"""The computational graph of an expression: one ξ node per elementary operation, evaluated at a
point in forward mode (tangents dξ/dW, one sweep per input) and in reverse mode (adjoints
∂L/∂ξ, one sweep per output), as in the tables of the source documents.

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

from ..calculus.api import ExprLike, as_expr, parse_point, resolve_variables
from ..calculus.differentiate import differentiate
from ..calculus.rules import OUTER_RULES
from ..errors import InputError
from .render import Explained, latex_text, number_text, wrap

#: Exact values longer than this (characters) are carried as 30-digit floats instead.
MAX_EXACT_LENGTH = 60
#: Exact values at most this long are shown as such in text tables; longer ones as decimals.
TEXT_EXACT_LENGTH = 12
#: Significant digits of numbers in text tables (the final derivative is printed with 10).
TEXT_DIGITS = 7
#: Width of text output.
WIDTH = 80

MODES = ("forward", "reverse", "both")


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class Node:
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


# --------------------------------------------------------------------------- the graph


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


@dataclass(frozen=True)
class Graph(Explained):
    """Nodes in evaluation order, the point, and the forward / reverse sweeps at that point.

    ``tangents[v][s]`` = dξ_s/dv (forward sweep seeded with dv = 1);
    ``adjoints[o][s]`` = ∂o/∂ξ_s (reverse sweep seeded with ∂o/∂o = 1).
    """

    outputs: tuple[sp.Expr, ...]
    output_symbols: tuple[sp.Symbol, ...]
    nodes: tuple[Node, ...]
    variables: tuple[sp.Symbol, ...]
    point: dict[sp.Symbol, sp.Expr]
    wrt: tuple[sp.Symbol, ...]
    mode: str
    tangents: dict[sp.Symbol, dict[sp.Symbol, sp.Expr]]
    adjoints: dict[sp.Symbol, dict[sp.Symbol, sp.Expr]]

    formats = ("text", "markdown", "latex", "json", "dot")

    # ----------------------------------------------------------------- results

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

    def _latex_names(self) -> dict[sp.Symbol, str]:
        names = {}
        for node in self.nodes:
            name = node.symbol.name
            if name.startswith("ξ"):
                names[node.symbol] = rf"\xi_{{{name[1:]}}}"
            elif name.startswith("L"):
                names[node.symbol] = (
                    rf"\mathcal{{L}}_{{{name[1:]}}}" if name[1:] else r"\mathcal{L}"
                )
        return names

    def _latex(self, expr: sp.Expr) -> str:
        return sp.latex(expr, symbol_names=self._latex_names(), order="none")

    def _modes(self) -> list[str]:
        return ["forward", "reverse"] if self.mode == "both" else [self.mode]

    def _point_text(self) -> str:
        return ", ".join(f"{s}={v}" for s, v in self.point.items())

    # ----------------------------------------------------------------- text

    def text(self) -> str:
        out = wrap(
            "Computational graph of "
            + "; ".join(
                f"{s} = {e}" for s, e in zip(self.output_symbols, self.outputs, strict=True)
            )
            + f" at {self._point_text()}"
        )
        for mode in self._modes():
            for seed in self.wrt if mode == "forward" else self.output_symbols:
                out.append("")
                out += self._sweep_text(mode, seed)
        out.append("")
        out += self.cost().lines()
        return "\n".join(out)

    def _sweep_text(self, mode: str, seed: sp.Symbol) -> list[str]:
        if mode == "forward":
            title = f"Forward mode: tangents dξ/d{seed}, seeded with d{seed}/d{seed} = 1"
            column = f"dξ/d{seed}"
            order = list(self.nodes)
            carried = self.tangents[seed]
        else:
            title = f"Reverse mode: adjoints ∂{seed}/∂ξ, seeded with ∂{seed}/∂{seed} = 1"
            column = f"∂{seed}/∂ξ"
            order = list(reversed(self.nodes))
            carried = self.adjoints[seed]
        headers = ["node", "definition", "local partials", "value", "partial values", column]
        inputs = [
            [[str(v)], ["input"], [], [_short(self.point[v])], [], [_short(carried.get(v, 0))]]
            for v in self.wrt
        ]
        rows = inputs if mode == "forward" else []
        for node in order:
            partial_lines = [
                f"∂/∂{i} = {_str(p)}" for i, p in zip(node.inputs, node.partials, strict=True)
            ]
            rows.append(
                [
                    [str(node.symbol)],
                    [_str(node.definition)],
                    partial_lines,
                    [_short(node.value)],
                    [_short(v) for v in node.partial_values],
                    [_short(carried.get(node.symbol, sp.Integer(0)))],
                ]
            )
        rows += inputs if mode == "reverse" else []
        lines = wrap(title) + text_table(headers, rows)
        lines += self._result_lines(mode, seed)
        return lines

    def _result_lines(self, mode: str, seed: sp.Symbol) -> list[str]:
        pairs = (
            [(out, seed) for out in self.output_symbols]
            if mode == "forward"
            else [(seed, v) for v in self.wrt]
        )
        lines = []
        for out, var in pairs:
            value = self.derivative(self.output_symbols.index(out), var)
            lines += wrap(f"d{out}/d{var} = {number_text(value)}  (exact: {value})")
        return lines

    # ----------------------------------------------------------------- markdown / latex

    def _rows_math(self, mode: str, seed: sp.Symbol) -> tuple[list[str], list[list[str]]]:
        latex_seed = self._latex(seed)
        if mode == "forward":
            head = rf"\frac{{d\xi}}{{d{latex_seed}}}"
            order, carried = list(self.nodes), self.tangents[seed]
        else:
            head = rf"\frac{{\partial {latex_seed}}}{{\partial \xi}}"
            order, carried = list(reversed(self.nodes)), self.adjoints[seed]
        headers = ["node", "local partial derivatives", "value", "local derivative value", head]
        rows = []
        for node in order:
            sym = self._latex(node.symbol)
            partials = ", ".join(
                rf"\frac{{\partial {sym}}}{{\partial {self._latex(i)}}} = {self._latex(p)}"
                for i, p in zip(node.inputs, node.partials, strict=True)
            )
            rows.append(
                [
                    rf"{sym} = {self._latex(node.definition)}",
                    partials,
                    _latex_value(node.value),
                    ", ".join(_latex_value(v) for v in node.partial_values),
                    _latex_value(carried.get(node.symbol, sp.Integer(0))),
                ]
            )
        return headers, rows

    def _sweep_title(self, mode: str, seed: sp.Symbol) -> str:
        if mode == "forward":
            return f"Forward mode: tangents, seeded with d{seed}/d{seed} = 1"
        return f"Reverse mode: adjoints, seeded with ∂{seed}/∂{seed} = 1"

    def _latex_title(self, mode: str, seed: sp.Symbol) -> str:
        s = self._latex(seed)
        if mode == "forward":
            return rf"\text{{Forward mode: tangents, seeded with }} \frac{{d{s}}}{{d{s}}} = 1"
        return (
            rf"\text{{Reverse mode: adjoints, seeded with }} "
            rf"\frac{{\partial {s}}}{{\partial {s}}} = 1"
        )

    def _results_latex(self, mode: str, seed: sp.Symbol) -> list[str]:
        pairs = (
            [(out, seed) for out in self.output_symbols]
            if mode == "forward"
            else [(seed, v) for v in self.wrt]
        )
        return [
            rf"\frac{{\partial {self._latex(o)}}}{{\partial {self._latex(v)}}} = "
            + _latex_value(self.derivative(self.output_symbols.index(o), v), digits=10)
            for o, v in pairs
        ]

    def markdown(self) -> str:
        out = [f"**Computational graph** at {self._point_text()}", ""]
        for mode in self._modes():
            for seed in self.wrt if mode == "forward" else self.output_symbols:
                headers, rows = self._rows_math(mode, seed)
                out += [f"*{self._sweep_title(mode, seed)}*", ""]
                out.append("| " + " | ".join(f"${h}$" if "\\" in h else h for h in headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += ["| " + " | ".join(f"${c}$" for c in row) + " |" for row in rows]
                out += [""] + [f"${r}$" for r in self._results_latex(mode, seed)] + [""]
        out += ["```", *self.cost().lines(), "```"]
        return "\n".join(out)

    def latex(self) -> str:
        parts = []
        for mode in self._modes():
            for seed in self.wrt if mode == "forward" else self.output_symbols:
                headers, rows = self._rows_math(mode, seed)
                body = [
                    self._latex_title(mode, seed) + r" \\[2pt]",
                    r"\begin{array}{lllll}",
                    " & ".join(
                        f"\\text{{{latex_text(h)}}}" if "\\" not in h else h for h in headers
                    )
                    + r" \\ \hline",
                ]
                body += [" & ".join(row) + r" \\" for row in rows]
                body.append(r"\end{array} \\[4pt]")
                body += [r + r" \\" for r in self._results_latex(mode, seed)]
                parts.append("\n".join(body))
        return "\\begin{align*}\n&" + "\n&".join(parts).rstrip(" \\") + "\n\\end{align*}"

    # ----------------------------------------------------------------- json / dot

    def to_dict(self) -> dict[str, Any]:
        single = len(self.wrt) == 1 and len(self.outputs) == 1
        nodes = []
        for node in self.nodes:
            item: dict[str, Any] = {
                "id": node.id,
                "op": node.op,
                "definition": _ascii(node.definition),
                "expression": str(node.expression),
                "inputs": [ascii_name(i) for i in node.inputs],
                "value": _json_number(node.value),
                "exact_value": str(node.value),
                "local_derivatives": [
                    {"input": ascii_name(i), "symbolic": _ascii(p), "value": _json_number(v)}
                    for i, p, v in zip(node.inputs, node.partials, node.partial_values, strict=True)
                ],
            }
            if self.mode in ("forward", "both"):
                tangents = {
                    v.name: _json_number(self.tangents[v].get(node.symbol, sp.Integer(0)))
                    for v in self.wrt
                }
                item["tangent"] = tangents[self.wrt[0].name] if single else tangents
            if self.mode in ("reverse", "both"):
                adjoints = {
                    ascii_name(o): _json_number(self.adjoints[o].get(node.symbol, sp.Integer(0)))
                    for o in self.output_symbols
                }
                item["adjoint"] = (
                    adjoints[ascii_name(self.output_symbols[0])] if single else adjoints
                )
            nodes.append(item)
        derivatives = {
            ascii_name(o): {v.name: _json_number(self.derivative(k, v)) for v in self.wrt}
            for k, o in enumerate(self.output_symbols)
        }
        first = ascii_name(self.output_symbols[0])
        return {
            "expression": [str(e) for e in self.outputs] if not single else str(self.outputs[0]),
            "at": {s.name: str(v) for s, v in self.point.items()},
            "mode": self.mode,
            "nodes": nodes,
            "output": first if single else [ascii_name(o) for o in self.output_symbols],
            "wrt": self.wrt[0].name if single else [v.name for v in self.wrt],
            "derivative": derivatives[first][self.wrt[0].name] if single else derivatives,
            "exact_derivative": str(self.derivative()) if single else None,
            "cost": self.cost().to_dict(),
        }

    def dot(self) -> str:
        """Graphviz DOT text: variables as ellipses, ξ nodes as boxes, edges ∂ξ/∂input."""
        lines = [
            "digraph computational_graph {",
            "  rankdir=LR;",
            '  node [fontname="Helvetica"];',
        ]
        for variable in self.variables:
            label = f"{variable} = {number_text(self.point[variable])}"
            lines.append(f'  "v_{variable.name}" [shape=ellipse, label="{_dot(label)}"];')
        for node in self.nodes:
            label = [
                f"{node.symbol} = {_str(node.definition)}",
                f"value = {number_text(node.value)}",
            ]
            for var in self.wrt if self.mode in ("forward", "both") else ():
                tangent = self.tangents[var].get(node.symbol, sp.Integer(0))
                label.append(f"d{node.symbol}/d{var} = {number_text(tangent)}")
            for out in self.output_symbols if self.mode in ("reverse", "both") else ():
                adjoint = self.adjoints[out].get(node.symbol, sp.Integer(0))
                label.append(f"∂{out}/∂{node.symbol} = {number_text(adjoint)}")
            lines.append(f'  "{node.id}" [shape=box, label="{_dot(chr(10).join(label))}"];')
        known = {n.symbol for n in self.nodes}
        for node in self.nodes:
            for i, p, v in zip(node.inputs, node.partials, node.partial_values, strict=True):
                source = ascii_name(i) if i in known else f"v_{i.name}"
                edge = f"∂/∂{i} = {_str(p)} = {number_text(v)}"
                lines.append(f'  "{source}" -> "{node.id}" [label="{_dot(edge)}"];')
        lines.append("}")
        return "\n".join(lines)


def _str(expr: sp.Expr) -> str:
    """Text of ``expr`` with terms in SymPy's stored order (``1 + ξ2``, as people write it)."""
    return sp.sstr(expr, order="none")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _ascii(expr: sp.Expr) -> str:
    return _str(expr).replace("ξ", "xi")


def _dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _short(value: sp.Expr) -> str:
    """Exact when short (``exp(-9)``), otherwise a decimal with TEXT_DIGITS digits."""
    text = str(value)
    if len(text) <= TEXT_EXACT_LENGTH and not isinstance(value, sp.Float):
        return text
    return number_text(value, TEXT_DIGITS)


def _latex_value(value: sp.Expr, digits: int = TEXT_DIGITS) -> str:
    if isinstance(value, (sp.Integer, sp.Float)):
        return number_text(value, digits)
    return rf"{sp.latex(value)} \approx {number_text(value, digits)}"


def _json_number(value: sp.Expr) -> float | int | str:
    if isinstance(value, sp.Integer):
        return int(value)
    text = number_text(value, 17)
    try:
        return float(text)
    except ValueError:
        return text


def text_table(headers: list[str], rows: list[list[list[str]]], width: int = WIDTH) -> list[str]:
    """A plain-text table of multi-line cells, wrapping the widest columns to fit ``width``."""
    columns = len(headers)
    natural = [
        max([len(headers[c])] + [len(line) for row in rows for line in row[c]])
        for c in range(columns)
    ]
    widths = list(natural)
    while sum(widths) + 2 * (columns - 1) > width:
        widest = max(range(columns), key=lambda c: widths[c])
        if widths[widest] <= 10:
            break
        widths[widest] -= 1
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("-" * min(width, sum(widths) + 2 * (columns - 1)))
    for row in rows:
        cells = [
            [piece for line in cell for piece in (wrap(line, "", w) if line else [""])]
            for cell, w in zip(row, widths, strict=True)
        ]
        height = max(len(cell) for cell in cells)
        for k in range(height):
            parts = [
                (cell[k] if k < len(cell) else "").ljust(w)
                for cell, w in zip(cells, widths, strict=True)
            ]
            out.append("  ".join(parts).rstrip())
    return out


# --------------------------------------------------------------------------- building


def build_graph(
    exprs: ExprLike | Sequence[ExprLike],
    wrt: str | sp.Symbol | Iterable[str | sp.Symbol] | None,
    at: str | Mapping[str, object],
    mode: str = "both",
) -> Graph:
    """Decompose the expression(s) into ξ nodes and run the sweeps at the point ``at``.

    ``mode`` is forward (one sweep per variable in ``wrt``), reverse (one sweep per output)
    or both. Every variable of the expressions needs a value in ``at``.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}' (choose from {', '.join(MODES)})")
    items = [exprs] if isinstance(exprs, (str, sp.Expr)) else list(exprs)
    outputs = tuple(as_expr(e) for e in items)
    if not outputs:
        raise InputError("graph needs at least one expression")
    for out in outputs:
        if not out.free_symbols:
            raise InputError(f"{out} is a constant: it has no computational graph")
    variables = tuple(resolve_variables(None, *outputs))
    wrt_symbols = tuple(resolve_variables(wrt, *outputs))
    point = _point(at, variables)
    taken = {v.name for v in variables}
    builder = _Builder(taken)
    output_symbols = [builder.node(out) for out in outputs]
    names = _output_names(len(outputs), taken)
    renames: dict[sp.Symbol, sp.Symbol] = {}
    for old, name in zip(output_symbols, names, strict=True):
        if name is not None and old not in renames:
            renames[old] = sp.Symbol(name, real=True)
    nodes = _evaluate(builder.records, renames, point)
    final_outputs = tuple(renames.get(s, s) for s in output_symbols)
    tangents = {v: _forward(nodes, v) for v in wrt_symbols} if mode != "reverse" else {}
    adjoints = {o: _reverse(nodes, o) for o in final_outputs} if mode != "forward" else {}
    return Graph(
        outputs, final_outputs, nodes, variables, point, wrt_symbols, mode, tangents, adjoints
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


def _evaluate(
    records: list, renames: Mapping[sp.Symbol, sp.Symbol], point: Mapping[sp.Symbol, sp.Expr]
) -> tuple[Node, ...]:
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
            Node(symbol, op, definition, expression, inputs, partials, value, partial_values)
        )
    return tuple(nodes)


def _forward(nodes: Sequence[Node], variable: sp.Symbol) -> dict[sp.Symbol, sp.Expr]:
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


def _reverse(nodes: Sequence[Node], output: sp.Symbol) -> dict[sp.Symbol, sp.Expr]:
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
