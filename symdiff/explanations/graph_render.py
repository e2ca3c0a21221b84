"""Rendering of a computational graph: the ``GraphRendering`` mixin of ``Graph`` (text tables,
Markdown, LaTeX, JSON and Graphviz DOT of the forward / reverse sweeps) and its formatting helpers.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ..calculus.api import json_number
from ..frontend.parse import TypedNode
from ..text import formula, number
from .graph_nodes import Cost, GraphNode, ascii_name, typed_sympy
from .render import Explained, latex_text, number_text, wrap

#: Exact values at most this long are shown as such in text tables; longer ones as decimals.
TEXT_EXACT_LENGTH = 12
#: Significant digits of numbers in text tables (the final derivative is printed with 10).
TEXT_DIGITS = 7


class GraphRendering(Explained):
    """Text / Markdown / LaTeX / JSON / DOT output of ``Graph``, which supplies these fields."""

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

    formats = ("text", "markdown", "latex", "json", "dot")

    def derivative(self, output: int = 0, wrt: str | sp.Symbol | None = None) -> sp.Expr:
        raise NotImplementedError  # pragma: no cover - Graph overrides

    def cost(self) -> Cost:
        raise NotImplementedError  # pragma: no cover - Graph overrides

    # ----------------------------------------------------------------- helpers

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
        """LaTeX in stored (typed) order, ``|`` written as ``\\lvert`` / ``\\rvert`` (a bare
        ``|`` ends a Markdown table cell)."""
        text = sp.latex(expr, symbol_names=self._latex_names(), order="none")
        text = text.replace(r"\left|", r"\left\lvert ").replace(r"\right|", r"\right\rvert ")
        return text.replace("|", r"\vert ")

    def _modes(self) -> list[str]:
        return ["forward", "reverse"] if self.mode == "both" else [self.mode]

    def _seeds(self, mode: str) -> tuple[sp.Symbol, ...]:
        return self.wrt if mode == "forward" else self.output_symbols

    def _point_text(self) -> str:
        return ", ".join(f"{s}={number(v)}" for s, v in self.point.items())

    def _title(self) -> str:
        """Computational graph of L = abs(y_true - (w*x + b)) at b=1, w=3, x=2, y_true=4"""
        definitions = "; ".join(
            f"{s} = {t.text()}" for s, t in zip(self.output_symbols, self.trees, strict=True)
        )
        return f"Computational graph of {definitions} at {self._point_text()}"

    def _latex_title(self) -> tuple[str, str]:
        """The outputs' definitions and the point, in LaTeX."""
        definitions = ", ".join(
            f"{self._latex(s)} = {self._latex(typed_sympy(t))}"
            for s, t in zip(self.output_symbols, self.trees, strict=True)
        )
        point = ", ".join(
            f"{self._latex(s)} = {number(v) if v.is_Float else self._latex(v)}"
            for s, v in self.point.items()
        )
        return definitions, point

    # ----------------------------------------------------------------- text

    def text(self) -> str:
        out = wrap(self._title())
        for mode in self._modes():
            for seed in self._seeds(mode):
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
                f"∂/∂{i} = {t}" for i, t in zip(node.inputs, node.partial_texts, strict=True)
            ]
            rows.append(
                [
                    [str(node.symbol)],
                    [node.text],
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
            lines += wrap(f"d{out}/d{var} = {number_text(value)}  (exact: {formula(value)})")
        return lines

    # ----------------------------------------------------------------- markdown / latex

    def _rows_math(self, mode: str, seed: sp.Symbol) -> tuple[list[str], list[list[str]]]:
        """Header and rows (LaTeX cells) of one sweep: inputs first (forward) or last (reverse)."""
        latex_seed = self._latex(seed)
        if mode == "forward":
            head = rf"\frac{{d\xi}}{{d{latex_seed}}}"
            order, carried = list(self.nodes), self.tangents[seed]
        else:
            head = rf"\frac{{\partial {latex_seed}}}{{\partial \xi}}"
            order, carried = list(reversed(self.nodes)), self.adjoints[seed]
        headers = ["node", "local partial derivatives", "value", "local derivative value", head]
        inputs = [
            [
                rf"{self._latex(v)} \ \text{{(input)}}",
                "",
                _latex_value(self.point[v]),
                "",
                _latex_value(carried.get(v, sp.Integer(0))),
            ]
            for v in self.wrt
        ]
        rows = inputs if mode == "forward" else []
        for node in order:
            sym = self._latex(node.symbol)
            partials = ", ".join(
                rf"\frac{{\partial {sym}}}{{\partial {self._latex(i)}}} = {self._latex(p)}"
                for i, p in zip(node.inputs, node.typed_partials, strict=True)
            )
            rows.append(
                [
                    rf"{sym} = {self._latex(node.typed)}",
                    partials,
                    _latex_value(node.value),
                    ", ".join(_latex_value(v) for v in node.partial_values),
                    _latex_value(carried.get(node.symbol, sp.Integer(0))),
                ]
            )
        rows += inputs if mode == "reverse" else []
        return headers, rows

    def _sweep_title(self, mode: str, seed: sp.Symbol) -> str:
        if mode == "forward":
            return f"Forward mode: tangents, seeded with d{seed}/d{seed} = 1"
        return f"Reverse mode: adjoints, seeded with ∂{seed}/∂{seed} = 1"

    def _sweep_title_latex(self, mode: str, seed: sp.Symbol) -> str:
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
        definitions, point = self._latex_title()
        out = [f"**Computational graph** of ${definitions}$ at ${point}$"]
        for mode in self._modes():
            for seed in self._seeds(mode):
                headers, rows = self._rows_math(mode, seed)
                out += ["", f"*{self._sweep_title(mode, seed)}*", ""]
                out.append("| " + " | ".join(f"${h}$" if "\\" in h else h for h in headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += [
                    "| " + " | ".join(f"${c}$" if c else "" for c in row) + " |" for row in rows
                ]
                for result in self._results_latex(mode, seed):
                    out += ["", f"${result}$"]
        out += ["", "```", *self.cost().lines(), "```"]
        return "\n".join(out)

    def latex(self) -> str:
        definitions, point = self._latex_title()
        parts = [rf"\text{{Computational graph of }} {definitions} \text{{ at }} {point} \\[4pt]"]
        for mode in self._modes():
            for seed in self._seeds(mode):
                headers, rows = self._rows_math(mode, seed)
                body = [
                    self._sweep_title_latex(mode, seed) + r" \\[2pt]",
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
                "definition": _ascii(node.text),
                "expression": node.source,
                "inputs": [ascii_name(i) for i in node.inputs],
                "value": json_number(node.value),
                "exact_value": formula(node.value),
                "local_derivatives": [
                    {"input": ascii_name(i), "symbolic": _ascii(t), "value": json_number(v)}
                    for i, t, v in zip(
                        node.inputs, node.partial_texts, node.partial_values, strict=True
                    )
                ],
            }
            if self.mode in ("forward", "both"):
                tangents = {
                    v.name: json_number(self.tangents[v].get(node.symbol, sp.Integer(0)))
                    for v in self.wrt
                }
                item["tangent"] = tangents[self.wrt[0].name] if single else tangents
            if self.mode in ("reverse", "both"):
                adjoints = {
                    ascii_name(o): json_number(self.adjoints[o].get(node.symbol, sp.Integer(0)))
                    for o in self.output_symbols
                }
                item["adjoint"] = (
                    adjoints[ascii_name(self.output_symbols[0])] if single else adjoints
                )
            nodes.append(item)
        derivatives = {
            ascii_name(o): {v.name: json_number(self.derivative(k, v)) for v in self.wrt}
            for k, o in enumerate(self.output_symbols)
        }
        first = ascii_name(self.output_symbols[0])
        return {
            "expression": [t.text() for t in self.trees] if not single else self.trees[0].text(),
            "at": {s.name: number(v) for s, v in self.point.items()},
            "mode": self.mode,
            "nodes": nodes,
            "output": first if single else [ascii_name(o) for o in self.output_symbols],
            "wrt": self.wrt[0].name if single else [v.name for v in self.wrt],
            "derivative": derivatives[first][self.wrt[0].name] if single else derivatives,
            "exact_derivative": formula(self.derivative()) if single else None,
            "inputs": [self._input_dict(v) for v in self.wrt],
            "cost": self.cost().to_dict(),
        }

    def _input_dict(self, variable: sp.Symbol) -> dict[str, Any]:
        """An input's value, its tangent per input (forward) and adjoint per output (reverse)."""
        item: dict[str, Any] = {
            "id": variable.name,
            "value": json_number(self.point[variable]),
            "exact_value": formula(self.point[variable]),
        }
        if self.mode in ("forward", "both"):
            item["tangent"] = {
                v.name: json_number(self.tangents[v].get(variable, sp.Integer(0))) for v in self.wrt
            }
        if self.mode in ("reverse", "both"):
            item["adjoint"] = {
                ascii_name(o): json_number(self.adjoints[o].get(variable, sp.Integer(0)))
                for o in self.output_symbols
            }
        return item

    def _carried_lines(self, symbol: sp.Symbol) -> list[str]:
        """dξ/dW per input (forward) and ∂L/∂ξ per output (reverse) of a node or an input."""
        lines = []
        for var in self.wrt if self.mode in ("forward", "both") else ():
            tangent = self.tangents[var].get(symbol, sp.Integer(0))
            lines.append(f"d{symbol}/d{var} = {number_text(tangent)}")
        for out in self.output_symbols if self.mode in ("reverse", "both") else ():
            adjoint = self.adjoints[out].get(symbol, sp.Integer(0))
            lines.append(f"∂{out}/∂{symbol} = {number_text(adjoint)}")
        return lines

    def dot(self) -> str:
        """Graphviz DOT text, top-down: variables as ellipses, ξ nodes as boxes, edges
        labelled with the local partial ∂ξ/∂input and its value."""
        lines = [
            "digraph computational_graph {",
            "  rankdir=TB;",
            '  node [fontname="Helvetica"];',
            '  edge [fontname="Helvetica", fontsize=10];',
        ]
        for variable in self.variables:
            label_lines = [f"{variable} = {number(self.point[variable])}"]
            label_lines += self._carried_lines(variable) if variable in self.wrt else []
            label = "\n".join(label_lines)
            lines.append(f'  "v_{variable.name}" [shape=ellipse, label="{_dot(label)}"];')
        for node in self.nodes:
            label_lines = [f"{node.symbol} = {node.text}", f"value = {number_text(node.value)}"]
            label = "\n".join(label_lines + self._carried_lines(node.symbol))
            lines.append(f'  "{node.id}" [shape=box, label="{_dot(label)}"];')
        known = {n.symbol for n in self.nodes}
        for node in self.nodes:
            for i, t, v in zip(node.inputs, node.partial_texts, node.partial_values, strict=True):
                source = ascii_name(i) if i in known else f"v_{i.name}"
                value = number_text(v)
                edge = f"∂{node.symbol}/∂{i} = {t}" + ("" if t == value else f" = {value}")
                lines.append(f'  "{source}" -> "{node.id}" [label="{_dot(edge)}"];')
        lines.append("}")
        return "\n".join(lines)


def _ascii(text: str) -> str:
    return text.replace("ξ", "xi")


def _dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _short(value: sp.Expr) -> str:
    """Exact when short (``exp(-9)``), otherwise a decimal with TEXT_DIGITS digits."""
    text = formula(value)
    if len(text) <= TEXT_EXACT_LENGTH and not isinstance(value, sp.Float):
        return text
    return number_text(value, TEXT_DIGITS)


def _latex_value(value: sp.Expr, digits: int = TEXT_DIGITS) -> str:
    if isinstance(value, (sp.Integer, sp.Float)):
        return number_text(value, digits)
    return rf"{sp.latex(value)} \approx {number_text(value, digits)}"


def text_table(headers: list[str], rows: list[list[list[str]]]) -> list[str]:
    """A plain-text table of multi-line cells (the k-th lines of a row's cells on one output
    line: a local partial beside its value), each column as wide as its widest line. A formula
    is never broken inside a cell (it stays whole to read and to copy), so a table with long
    formulas is wider than a terminal rather than wrapped; the rule under the headers spans it.
    """
    columns = len(headers)
    widths = [
        max([len(headers[c])] + [len(line) for row in rows for line in row[c]])
        for c in range(columns)
    ]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("-" * (sum(widths) + 2 * (columns - 1)))
    for row in rows:
        for k in range(max(len(cell) for cell in row)):
            parts = [
                (cell[k] if k < len(cell) else "").ljust(w)
                for cell, w in zip(row, widths, strict=True)
            ]
            out.append("  ".join(parts).rstrip())
    return out
