"""Graph nodes follow the expression as typed: the seed's absolute-error graph (003_), the typed
tree of the parser, parse-back of every printed definition and local derivative, and the
Markdown / LaTeX / JSON / DOT renderings (titles, input rows, ``|`` in cells)."""

from __future__ import annotations

import json
import re

import pytest
import sympy as sp
from derivative_oracles import close, high_precision
from hypothesis import given, settings
from hypothesis import strategies as st
from process_support import run_symdiff

from symdiff.explanations.graph import Graph, build_graph
from symdiff.frontend.parse import parse, typed_tree
from symdiff.functions import to_elementary

ABS = "abs(y_true - (w*x + b))"
ABS_AT = "x=2,w=3,b=1,y_true=4"


def _real(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


# --------------------------------------------------------------------------- the seed (003_)


def test_absolute_error_graph_is_the_seed_graph() -> None:
    """003_: x1 = x*w = 6, x2 = x1 + b = 7, loss_val = abs(y_true - x2) = abs(4 - 7) = 3;
    grad(x1, w) = 2, grad(x2, x1) = 1, grad(x2, b) = 1, grad(loss_val, x2) = 1; the chain gives
    grad(loss_val, w) = 1 * 1 * 2 = 2 and grad(loss_val, b) = 1 * 1 = 1."""
    graph = build_graph(ABS, "w,b", ABS_AT, mode="reverse")
    rows = [(str(n.symbol), n.text, n.value) for n in graph.nodes]
    assert rows == [("ξ1", "w*x", 6), ("ξ2", "ξ1 + b", 7), ("L", "abs(y_true - ξ2)", 3)]
    local = {
        (str(n.symbol), str(i)): (t, v)
        for n in graph.nodes
        for i, t, v in zip(n.inputs, n.partial_texts, n.partial_values, strict=True)
    }
    assert local[("ξ1", "w")] == ("x", 2)
    assert local[("ξ2", "ξ1")] == ("1", 1)
    assert local[("ξ2", "b")] == ("1", 1)
    assert local[("L", "ξ2")] == ("-sign(y_true - ξ2)", 1)
    assert local[("L", "y_true")] == ("sign(y_true - ξ2)", -1)
    adjoint = graph.adjoints[graph.output_symbols[0]]
    assert [adjoint[n.symbol] for n in graph.nodes] == [1, 1, 1]
    assert (graph.derivative(0, "w"), graph.derivative(0, "b")) == (2, 1)


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "json", "dot"])
def test_absolute_error_renders_as_typed(fmt: str) -> None:
    rendered = build_graph(ABS, "w,b", ABS_AT, mode="reverse").render(fmt)
    assert "Abs" not in rendered and "b + ξ1 - y_true" not in rendered
    assert "b + xi1 - y_true" not in rendered
    typed = {
        "text": "L = abs(y_true - (w*x + b))",
        "markdown": r"\left\lvert {y_{true} - \left(w x + b\right)}\right\rvert",
        "latex": r"\left\lvert {y_{true} - \left(w x + b\right)}\right\rvert",
        "json": '"expression": [\n    "abs(y_true - (w*x + b))"',
        "dot": "L = abs(y_true - ξ2)",
    }[fmt]
    assert typed in rendered


def test_logistic_seed_nodes_keep_their_typed_text() -> None:
    graph = build_graph("-y*log(1/(1+exp(-W*X)))", "W", "X=3,y=1,W=3", mode="forward")
    assert [n.text for n in graph.nodes] == [
        "-W*X",
        "exp(ξ1)",
        "1 + ξ2",
        "1/ξ3",
        "log(ξ4)",
        "-y*ξ5",
    ]
    assert [n.op for n in graph.nodes] == [
        "multiply",
        "exp",
        "add",
        "reciprocal",
        "log",
        "multiply",
    ]
    assert f"{float(graph.derivative()):.11f}" == "-0.00037018373"


# --------------------------------------------------------------------------- the typed tree


def test_typed_tree_keeps_operand_order_and_orientation() -> None:
    tree = typed_tree("y - (w*x + b)")
    assert tree.kind == "sum" and tree.ops == ("+", "-")
    assert [o.kind for o in tree.operands] == ["symbol", "sum"]
    assert [o.text() for o in tree.operands[1].operands] == ["w*x", "b"]
    assert tree.value == parse("y - (w*x + b)")
    assert tree.text() == "y - (w*x + b)"
    assert str(tree.value) != tree.text()  # SymPy's form is -b - w*x + y


@pytest.mark.parametrize(
    "text,typed,kind,operands",
    [
        ("-(a + b)/c", "-(a + b)/c", "product", ("negate", "symbol")),
        ("x^2*3", "x**2*3", "product", ("power", "number")),
        ("2x(x+1)", "2*x*(x + 1)", "product", ("number", "symbol", "sum")),
        ("a - -b", "a - (-b)", "sum", ("symbol", "negate")),
        ("+x", "x", "symbol", ()),
        ("x**-1", "x**(-1)", "power", ("symbol", "negate")),
        ("heaviside(x, 1/2)", "heaviside(x, 1/2)", "call", ("symbol", "product")),
        ("-x**2", "-x**2", "negate", ("power",)),
        ("(a*b)*c/(d/e)", "a*b*c/(d/e)", "product", ("symbol", "symbol", "symbol", "product")),
        ("a*(b*c)", "a*(b*c)", "product", ("symbol", "product")),
    ],
)
def test_typed_tree_kinds_and_text(
    text: str, typed: str, kind: str, operands: tuple[str, ...]
) -> None:
    tree = typed_tree(text)
    assert tree.text() == typed
    assert (tree.kind, tuple(o.kind for o in tree.operands)) == (kind, operands)
    assert parse(typed) == parse(text) == tree.value


def test_typed_tree_reports_errors_like_parse() -> None:
    from symdiff.errors import ParseError

    for bad in ["x +", "foo(x)", "x % 2", "log(0)"]:
        with pytest.raises(ParseError) as typed_error:
            typed_tree(bad)
        with pytest.raises(ParseError) as parse_error:
            parse(bad)
        assert str(typed_error.value) == str(parse_error.value)


_NAMES = st.sampled_from(["a", "b", "c", "2", "0.5", "pi"])


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    two = st.tuples(children, children)
    return st.one_of(
        two.map(lambda p: f"{p[0]} + {p[1]}"),
        two.map(lambda p: f"{p[0]} - ({p[1]})"),
        two.map(lambda p: f"({p[0]})*({p[1]})"),
        two.map(lambda p: f"({p[0]})/(2 + ({p[1]})**2)"),
        children.map(lambda u: f"-({u})"),
        children.map(lambda u: f"-{u}" if u.isalpha() else f"-({u})"),
        children.map(lambda u: f"({u})**2"),
        two.map(lambda p: f"abs({p[0]} - ({p[1]}))"),
        st.tuples(st.sampled_from(["exp", "sin", "tanh", "sigmoid", "softplus"]), children).map(
            lambda p: f"{p[0]}({p[1]})"
        ),
        children.map(lambda u: f"log(1 + ({u})**2)"),
    )


TEXTS = st.recursive(_NAMES, _grow, max_leaves=7)


@settings(max_examples=60, deadline=None)
@given(TEXTS)
def test_typed_text_parses_back_and_is_a_fixed_point(text: str) -> None:
    tree = typed_tree(text)
    assert parse(tree.text()) == tree.value == parse(text)
    assert typed_tree(tree.text()).text() == tree.text()


# --------------------------------------------------------------------------- parse-back


def _text_table_cells(rendered: str) -> list[tuple[str, str, list[str]]]:
    """(node, definition, local partial lines) of every row of every text table, wrapped
    cells joined again."""
    rows: list[tuple[str, str, list[str]]] = []
    starts: list[int] = []
    for line in rendered.splitlines():
        if line.startswith("node  definition"):
            starts = [line.index(h) for h in ("definition", "local partials", "value")]
            continue
        if not starts or not line.strip() or line.startswith("-"):
            if not line.strip():
                starts = []
            continue
        if re.match(r"[d∂]\S*/[d∂]\S* = ", line):
            starts = []  # the result lines below the table (a long one wraps): the table ended
            continue
        node = line[: starts[0]].strip()
        definition = line[starts[0] : starts[1]].strip()
        partial = line[starts[1] : starts[2]].strip()
        if node:
            rows.append((node, definition, [partial] if partial else []))
            continue
        name, joined, partials = rows[-1]
        joined = f"{joined} {definition}".strip()
        if partial.startswith("∂/∂"):
            partials.append(partial)
        elif partial:
            partials[-1] = f"{partials[-1]} {partial}"
        rows[-1] = (name, joined, partials)
    return rows


def _reads_back(text: str, names: dict[str, sp.Symbol]) -> sp.Expr:
    """``text`` through symdiff's parser, ξ names (as xi) and outputs read as their symbols."""
    return parse(
        text.replace("ξ", "xi"), symbols={k.replace("ξ", "xi"): v for k, v in names.items()}
    )


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    """Equal, or (with float64 constants, printed as their shortest decimals) equal to 1e-12
    at two points."""
    if a == b or sp.simplify(a - b) == 0:
        return True
    if not (a.has(sp.Float) or b.has(sp.Float)):
        return False
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    for shift in (0.25, 0.75):
        point = {s: sp.Float(shift + k / 7, 30) for k, s in enumerate(symbols)}
        x, y = complex(a.evalf(30, subs=point)), complex(b.evalf(30, subs=point))
        if abs(x - y) > 1e-12 * max(1.0, abs(x)):
            return False
    return True


def _check_parse_back(graph: Graph) -> None:
    names = {str(n.symbol): n.symbol for n in graph.nodes}
    by_name = {str(n.symbol): n for n in graph.nodes}
    squeeze = "".join
    cells = _text_table_cells(graph.text())
    shown = [c for c in cells if c[1] != "input"]
    assert {c[0] for c in shown} == set(by_name)
    for name, definition, partial_lines in shown:
        node = by_name[name]
        assert squeeze(definition.split()) == squeeze(node.text.split())
        assert _same(_reads_back(node.text, names), node.definition), (node.text, node.definition)
        assert len(partial_lines) == len(node.inputs)
        for line, i, t, p in zip(
            partial_lines, node.inputs, node.partial_texts, node.partials, strict=True
        ):
            assert squeeze(line.split()) == squeeze(f"∂/∂{i} = {t}".split())
            assert _same(_reads_back(t, names), p), (t, p)
    data = json.loads(graph.render("json"))
    for item, node in zip(data["nodes"], graph.nodes, strict=True):
        assert item["definition"] == node.text.replace("ξ", "xi")
        symbolic = [d["symbolic"] for d in item["local_derivatives"]]
        assert symbolic == [t.replace("ξ", "xi") for t in node.partial_texts]


@settings(max_examples=40, deadline=None)
@given(TEXTS, st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_every_printed_definition_and_partial_parses_back(text: str, values) -> None:
    tree = typed_tree(text)
    if not tree.value.free_symbols:
        return
    used = sorted(s.name for s in tree.value.free_symbols)
    at = {name: round(v, 3) for name, v in zip("abc", values, strict=True) if name in used}
    graph = build_graph(text, used, at, mode="both")
    _check_parse_back(graph)
    point = {_real(k): sp.Float(v, 30) for k, v in at.items()}
    out = graph.output_symbols[0]
    for name in used:
        expected = high_precision(to_elementary(sp.diff(tree.value, _real(name))), point)
        assert close(complex(graph.tangents[_real(name)][out]), expected, 1e-9)
        assert close(complex(graph.adjoints[out].get(_real(name), 0)), expected, 1e-9)


@pytest.mark.parametrize(
    "exprs,wrt,at",
    [
        ([ABS], "w,b", ABS_AT),
        (["-y*log(1/(1+exp(-W*X)))"], "W", "X=3,y=1,W=3"),
        (["x**2", "sin(x**2)", "x**2/(1 - x)"], "x", "x=0.5"),
        (["-(x + y)*z/(1 - x)"], "x,y,z", "x=0.5,y=2,z=3"),
        (["log(1 - sigmoid(w*x + b)) - y*log(sigmoid(w*x + b))"], "w,b", "w=0.5,x=2,b=-1,y=1"),
        (["x*e + exp(1)"], "x", "x=1"),
    ],
)
def test_printed_graphs_parse_back(exprs: list[str], wrt: str, at: str) -> None:
    _check_parse_back(build_graph(exprs, wrt, at))


# --------------------------------------------------------------------------- shared nodes, outputs


def test_common_subexpressions_multi_outputs_and_unary_minus() -> None:
    graph = build_graph(["x**2", "sin(x**2)", "-(x**2)"], "x", "x=1")
    assert [(str(n.symbol), n.text) for n in graph.nodes] == [
        ("L1", "x**2"),
        ("L2", "sin(L1)"),
        ("L3", "-L1"),
    ]
    assert [graph.derivative(k, "x") for k in (0, 2)] == [2, -2]
    assert sp.simplify(graph.derivative(1, "x") - 2 * sp.cos(1)) == 0
    shared = build_graph("sigmoid(w*x + b) + log(sigmoid(b + x*w))", "w", "w=1,x=2,b=0")
    assert len([n for n in shared.nodes if n.op == "sigmoid"]) == 1
    assert [n.text for n in shared.nodes][:2] == ["w*x", "ξ1 + b"]


def test_division_and_powers_as_typed() -> None:
    graph = build_graph("(a - b)**2/(2*c)", "a", "a=3,b=1,c=2", mode="forward")
    assert [n.text for n in graph.nodes] == ["a - b", "ξ1**2", "2*c", "ξ2/ξ3"]
    assert [n.op for n in graph.nodes] == ["add", "power", "multiply", "divide"]
    assert graph.derivative() == 1  # (a - b)/c


# --------------------------------------------------------------------------- renderings


def test_titles_use_shortest_decimals() -> None:
    graph = build_graph("w*x", "w", "w=0.5,x=2")
    assert graph.text().splitlines()[0] == "Computational graph of L = w*x at w=0.5, x=2"
    assert "at $w = 0.5, x = 2$" in graph.markdown()
    assert r"\text{ at } w = 0.5, x = 2" in graph.latex()
    assert json.loads(graph.render("json"))["at"] == {"w": "0.5", "x": "2"}
    assert 'label="w = 0.5' in graph.dot()
    for fmt in graph.formats:
        assert "0.500000" not in graph.render(fmt)


def _table_rows(markdown: str) -> list[list[str]]:
    return [line.split("|")[1:-1] for line in markdown.splitlines() if line.startswith("|")]


def test_markdown_cells_hold_no_bare_bar_and_tables_have_input_rows() -> None:
    graph = build_graph(ABS, "w,b", ABS_AT, mode="both")
    markdown = graph.markdown()
    rows = _table_rows(markdown)
    assert rows and all(len(row) == 5 for row in rows)
    inputs = [row for row in rows if r"\text{(input)}" in row[0]]
    # forward tables (one per input) and the reverse table each list w and b
    assert len(inputs) == 3 * 2
    reverse_inputs = [row[4].strip() for row in inputs[-2:]]
    assert reverse_inputs == ["$2$", "$1$"]
    assert "|" not in graph.latex()


def test_markdown_results_are_separate_paragraphs_under_a_title() -> None:
    markdown = build_graph(ABS, "w,b", ABS_AT, mode="reverse").markdown()
    lines = markdown.splitlines()
    assert lines[0].startswith("**Computational graph** of $\\mathcal{L} = ")
    results = [k for k, line in enumerate(lines) if line.startswith("$\\frac{\\partial")]
    assert len(results) == 2
    for k in results:
        assert lines[k - 1] == "" and lines[k + 1] == ""


def test_json_and_dot_carry_the_input_rows() -> None:
    graph = build_graph(ABS, "w,b", ABS_AT, mode="both")
    data = json.loads(graph.render("json"))
    inputs = {item["id"]: item for item in data["inputs"]}
    assert inputs["w"]["adjoint"] == {"L": 2} and inputs["b"]["adjoint"] == {"L": 1}
    assert inputs["w"]["tangent"] == {"w": 1, "b": 0}
    dot = graph.dot()
    assert "rankdir=TB" in dot
    assert '"v_w" [shape=ellipse, label="w = 3\\ndw/dw = 1\\ndw/db = 0\\n∂L/∂w = 2"]' in dot


def test_cli_graph_markdown_in_a_real_subprocess() -> None:
    done = run_symdiff(
        "graph", ABS, "--wrt", "w,b", "--at", "x=2,w=3,b=1,y_true=0.5", "--format", "markdown"
    )
    assert done.returncode == 0, done.stderr
    assert "y_{true} = 0.5$" in done.stdout.splitlines()[0]
    assert all(len(row) == 5 for row in _table_rows(done.stdout))


def test_text_table_keeps_formulas_whole_and_partials_level_with_their_values() -> None:
    from symdiff.explanations.graph import text_table

    rows = [[["L"], ["a_long_partial_that_would_wrap here", "short"], ["-1", "1"]]]
    table = text_table(["node", "partials", "values"], rows)
    assert table == [
        "node  partials                             values",
        "-------------------------------------------------",
        "L     a_long_partial_that_would_wrap here  -1",
        "      short                                1",
    ]
