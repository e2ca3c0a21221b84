"""Computational graphs: the seed tables (001_ logistic loss at X=3, y=1, W=3; 003_ absolute
error), forward = reverse = sympy.diff over a corpus, shared nodes, operation counts, formats."""

from __future__ import annotations

import json
import re

import pytest
import sympy as sp
from click.testing import CliRunner
from derivative_oracles import close, high_precision, sample_points
from golden_support import assert_golden, assert_valid_latex
from hypothesis import given, settings
from hypothesis import strategies as st
from process_support import run_symdiff
from test_corpus import CORPUS

from symdiff.cli import cli
from symdiff.explanations.graph import build_graph
from symdiff.frontend.parse import parse
from symdiff.functions import sigmoid, softplus, to_elementary

SEED = "-y*log(1/(1+exp(-W*X)))"
SEED_AT = "X=3,y=1,W=3"
ABS = "abs(y_true - (w*x + b))"
ABS_AT = "x=2,w=3,b=1,y_true=4"
E9 = sp.exp(-9)


def test_seed_table_nodes_values_and_local_derivatives() -> None:
    graph = build_graph(SEED, "W", SEED_AT, mode="forward")
    definitions = [(str(n.symbol), sp.sstr(n.definition, order="none")) for n in graph.nodes]
    assert definitions == [
        ("ξ1", "-W*X"),
        ("ξ2", "exp(ξ1)"),
        ("ξ3", "1 + ξ2"),
        ("ξ4", "1/ξ3"),
        ("ξ5", "log(ξ4)"),
        ("L", "-y*ξ5"),
    ]
    values = [n.value for n in graph.nodes]
    expected_values = [-9, E9, 1 + E9, 1 / (1 + E9), sp.log(1 / (1 + E9)), -sp.log(1 / (1 + E9))]
    for ours, seed in zip(values, expected_values, strict=True):
        assert sp.simplify(ours - seed) == 0
    # the seed's "value of the derivative" column: dξ1/dW, dξ2/dξ1, dξ3/dξ2, dξ4/dξ3, ...
    on_path = [
        n.partial_values[n.inputs.index(i)]
        for n, i in zip(
            graph.nodes,
            [sp.Symbol("W", real=True)] + [m.symbol for m in graph.nodes[:-1]],
            strict=True,
        )
    ]
    expected_local = [-3, E9, 1, -((1 / (1 + E9)) ** 2), 1 + E9, -1]
    for ours, seed in zip(on_path, expected_local, strict=True):
        assert sp.simplify(ours - seed) == 0
    symbolic = [str(n.partials[0]) for n in graph.nodes[1:5]]
    assert symbolic == ["exp(ξ1)", "1", "-1/ξ3**2", "1/ξ4"]


def test_seed_forward_tangents_and_derivative() -> None:
    graph = build_graph(SEED, "W", SEED_AT, mode="forward")
    tangents = [graph.tangents[graph.wrt[0]][n.symbol] for n in graph.nodes]
    expected = [-3, -3 * E9, -3 * E9, 3 * E9 / (1 + E9) ** 2, 3 * E9 / (1 + E9), -3 * E9 / (1 + E9)]
    for ours, seed in zip(tangents, expected, strict=True):
        assert sp.simplify(ours - seed) == 0
    derivative = float(graph.derivative())
    assert f"{derivative:.10g}" == "-0.000370183728"
    assert abs(derivative - -0.00037018372) < 1e-11  # the seed prints 8 digits, truncated


def test_seed_reverse_adjoints_agree_with_forward() -> None:
    graph = build_graph(SEED, "W", SEED_AT, mode="reverse")
    adjoint = graph.adjoints[graph.output_symbols[0]]
    by_name = {str(n.symbol): adjoint[n.symbol] for n in graph.nodes}
    assert by_name["L"] == 1
    assert by_name["ξ5"] == -1
    assert sp.simplify(by_name["ξ4"] + 1 + E9) == 0
    assert sp.simplify(graph.derivative() - (-3 * E9 / (1 + E9))) == 0


def test_absolute_error_of_the_seed_in_reverse_mode() -> None:
    """003_: loss = |y_true - (w*x + b)| at x=2, w=3, b=1, y_true=4: grad w = 2, grad b = 1.

    The source document writes grad(loss_val, b) = 1 * 1 = 2; the product is 1 (a typo there).
    """
    graph = build_graph(ABS, "w,b", ABS_AT, mode="reverse")
    assert graph.derivative(0, "w") == 2
    assert graph.derivative(0, "b") == 1
    assert len(graph.nodes) == 3  # x1 = w*x, x2 = x1 + b, L = abs(y_true - x2)
    assert str(graph.nodes[0].definition) == "w*x"


def test_shared_subexpressions_are_one_node() -> None:
    loss = "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))"
    graph = build_graph(loss, "w", "w=0.5,x=2,b=-1,y=1")
    sigmoids = [n for n in graph.nodes if n.op == "sigmoid"]
    assert len(sigmoids) == 1
    consumers = [n for n in graph.nodes if sigmoids[0].symbol in n.inputs]
    assert len(consumers) == 2
    expected = sp.diff(parse(loss), sp.Symbol("w", real=True))
    point = {sp.Symbol(k, real=True): v for k, v in (("w", 0.5), ("x", 2), ("b", -1), ("y", 1))}
    assert float(graph.derivative()) == pytest.approx(float(expected.subs(point)), rel=1e-12)


GRAPH_CASES = [c for c in CORPUS if parse(c.text).free_symbols]


@pytest.mark.parametrize("case", GRAPH_CASES, ids=[c.text for c in GRAPH_CASES])
def test_forward_and_reverse_equal_sympy_diff(case) -> None:
    expression = parse(case.text)
    symbols = sorted(expression.free_symbols, key=lambda s: s.name)
    (point,) = sample_points(symbols, case.domain, case.default, 1, f"graph:{case.text}")
    at = {s.name: round(v, 6) for s, v in point.items()}
    exact_point = {s: sp.Float(at[s.name], 30) for s in symbols}
    wrt = [w for w in case.wrt if w in at]
    if not wrt:
        return
    graph = build_graph(expression, wrt, at, mode="both")
    for name in wrt:
        variable = sp.Symbol(name, real=True)
        expected = high_precision(to_elementary(sp.diff(expression, variable)), exact_point)
        forward = graph.tangents[variable][graph.output_symbols[0]]
        reverse = graph.adjoints[graph.output_symbols[0]].get(variable, sp.Integer(0))
        assert close(complex(forward), expected, 1e-9), (name, forward, expected)
        assert close(complex(reverse), expected, 1e-9), (name, reverse, expected)


# --------------------------------------------------------------------------- forward vs reverse


def test_cost_reverse_wins_with_many_inputs() -> None:
    graph = build_graph(
        "sigmoid(w1*x1 + w2*x2 + w3*x3 + b)", "w1,w2,w3,b", "w1=1,w2=2,w3=3,b=0,x1=1,x2=1,x3=1"
    )
    cost = graph.cost()
    assert (cost.forward_sweeps, cost.reverse_sweeps) == (4, 1)
    # active edges: w_i -> ξ_i (3), b, ξ1, ξ2, ξ3 -> ξ4 (4), ξ4 -> L (1) = 8 multiplies;
    # forward adds 3 at the sum node, reverse adds none (each source has one consumer)
    assert (cost.forward_per_sweep, cost.reverse_per_sweep) == (11, 8)
    assert cost.forward_total == 44 and cost.reverse_total == 8
    assert "reverse mode is cheaper" in cost.verdict()


def test_cost_forward_wins_with_many_outputs() -> None:
    graph = build_graph(["sin(x)", "cos(x)", "x**2*exp(x)"], "x", "x=1")
    cost = graph.cost()
    assert (cost.inputs, cost.outputs) == (1, 3)
    assert (cost.forward_sweeps, cost.reverse_sweeps) == (1, 3)
    assert cost.forward_total < cost.reverse_total
    assert "forward mode is cheaper" in cost.verdict()
    # all three derivatives from one forward sweep
    x = sp.Symbol("x", real=True)
    for k, expected in enumerate([sp.cos(1), -sp.sin(1), 3 * sp.E]):
        assert sp.simplify(graph.derivative(k, x) - expected) == 0


def test_cost_of_the_seed() -> None:
    cost = build_graph(SEED, "W", SEED_AT).cost()
    assert (cost.nodes, cost.edges) == (6, 8)
    assert cost.forward_total == cost.reverse_total == 6


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", ["seed", "abs"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "json", "dot"])
def test_golden_graph(name: str, fmt: str) -> None:
    graph = (
        build_graph(SEED, "W", SEED_AT)
        if name == "seed"
        else build_graph(ABS, "w,b", ABS_AT, mode="reverse")
    )
    ext = {"text": "txt", "markdown": "md", "latex": "tex", "json": "json", "dot": "dot"}[fmt]
    rendered = graph.render(fmt)
    assert_golden(f"graph_{name}.{ext}", rendered)
    if fmt == "text":
        assert_whole_table(rendered)
    if fmt == "latex":
        assert_valid_latex(rendered)


@pytest.mark.parametrize(
    "text,wrt,at",
    [
        (
            "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))",
            "w,b",
            "w=0.5,x=2,b=-1,y=1",
        ),
        (
            "(w1*x1 + w2*x2 + w3*x3 + b - y)**2/2 + relu(w1 - 1)",
            "w1,w2,w3,b",
            "w1=1,w2=2,w3=3,b=0,x1=1,x2=1,x3=1,y=2",
        ),
        ("log(exp(a) + exp(b) + exp(c)) - a", "a,b,c", "a=1,b=2,c=3"),
    ],
)
def test_formats_are_well_formed(text: str, wrt: str, at: str) -> None:
    graph = build_graph(text, wrt, at)
    assert_whole_table(graph.text())
    assert_valid_latex(graph.latex())
    assert graph._repr_latex_() == graph.latex()
    assert graph._repr_markdown_().count("$") % 2 == 0
    dot = graph.dot()
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    edges = re.findall(r'^  "(\w+)" -> "(\w+)"', dot, flags=re.M)
    assert len(edges) == sum(len(n.inputs) for n in graph.nodes)
    data = json.loads(graph.render("json"))
    assert {"nodes", "output", "wrt", "derivative"} <= data.keys()
    node = data["nodes"][0]
    assert {
        "id",
        "expression",
        "op",
        "inputs",
        "value",
        "local_derivatives",
        "tangent",
        "adjoint",
    } <= node.keys()


def test_json_of_the_seed_has_scalar_tangents() -> None:
    data = json.loads(build_graph(SEED, "W", SEED_AT, mode="forward").render("json"))
    assert data["output"] == "L" and data["wrt"] == "W"
    assert data["derivative"] == pytest.approx(-0.000370183727958695, rel=1e-12)
    assert [n["id"] for n in data["nodes"]] == ["xi1", "xi2", "xi3", "xi4", "xi5", "L"]
    assert data["nodes"][0]["tangent"] == -3
    assert "adjoint" not in data["nodes"][0]


# --------------------------------------------------------------------------- CLI


def test_cli_graph_and_errors() -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["graph", ABS, "--wrt", "w,b", "--at", ABS_AT, "--mode", "reverse"])
    assert done.exit_code == 0
    assert "dL/dw = 2" in done.output and "dL/db = 1" in done.output
    missing = runner.invoke(cli, ["graph", SEED, "--wrt", "W", "--at", "X=3,W=3"])
    assert missing.exit_code == 2 and missing.output.startswith("Error: no value given for y")
    constant = runner.invoke(cli, ["graph", "2 + 3", "--at", "x=1"])
    assert constant.exit_code == 2 and "constant" in constant.output
    unknown = runner.invoke(cli, ["graph", "x**2", "--wrt", "q", "--at", "x=1"])
    assert unknown.exit_code == 2 and "Traceback" not in unknown.output


def test_cli_graph_in_a_real_subprocess() -> None:
    done = run_symdiff("graph", SEED, "--wrt", "W", "--at", SEED_AT, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert f"{json.loads(done.stdout)['derivative']:.10g}" == "-0.000370183728"


# --------------------------------------------------------------------------- properties

_a, _b, _c = (sp.Symbol(n, real=True) for n in "abc")
_LEAVES = st.sampled_from([_a, _b, _c, sp.Integer(2), sp.Rational(1, 2)])
_UNARY = [sp.exp, sp.sin, sp.cos, sp.tanh, sigmoid, softplus, lambda u: sp.log(1 + u**2)]


def _grow(children):
    return st.one_of(
        st.tuples(children, children).map(lambda p: p[0] + p[1]),
        st.tuples(children, children).map(lambda p: p[0] * p[1]),
        st.tuples(children, children).map(lambda p: p[0] / (2 + p[1] ** 2)),
        st.tuples(children, st.sampled_from([2, 3, -1])).map(lambda p: (1 + p[0] ** 2) ** p[1]),
        st.tuples(st.sampled_from(_UNARY), children).map(lambda p: p[0](p[1])),
    )


EXPRESSIONS = st.recursive(_LEAVES, _grow, max_leaves=8)


@settings(max_examples=40, deadline=None)
@given(EXPRESSIONS, st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_forward_equals_reverse_equals_sympy_on_random_trees(expr, values) -> None:
    if not expr.free_symbols:
        return
    at = {name: round(v, 3) for name, v in zip("abc", values, strict=True)}
    at = {k: v for k, v in at.items() if sp.Symbol(k, real=True) in expr.free_symbols}
    wrt = sorted(at)
    graph = build_graph(expr, wrt, at, mode="both")
    point = {sp.Symbol(k, real=True): sp.Float(v, 30) for k, v in at.items()}
    out = graph.output_symbols[0]
    for name in wrt:
        variable = sp.Symbol(name, real=True)
        expected = high_precision(to_elementary(sp.diff(expr, variable)), point)
        assert close(complex(graph.tangents[variable][out]), expected, 1e-9)
        assert close(complex(graph.adjoints[out].get(variable, 0)), expected, 1e-9)
    # every distinct non-constant subexpression is exactly one node
    assert len({n.expression for n in graph.nodes}) == len(graph.nodes)


def test_output_name_avoids_a_user_variable_named_l() -> None:
    graph = build_graph("L*x**2", "x", "L=2,x=3")
    assert [str(n.symbol) for n in graph.nodes] == ["ξ1", "ξ2"]
    assert graph.derivative() == 12


def assert_whole_table(rendered: str) -> None:
    """No line of a graph table is wider than its rule: cells are never wrapped, so the widest
    row sets the rule's width."""
    lines = rendered.splitlines()
    for k, line in enumerate(lines):
        if line and set(line) == {"-"}:
            end = lines.index("", k) if "" in lines[k:] else len(lines)
            assert max(len(row) for row in lines[k + 1 : end]) <= len(line)
