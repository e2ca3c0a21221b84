"""Every text formula symdiff prints for diff, grad (with --direction), hessian, jacobian and
check, and every value line, parses back with symdiff's own parser to what it stands for
(hypothesis over random expressions built from the parser's function table); values at a
point are numbers whenever they are finite and real; the printed forms follow the rule of
``symdiff/calculus/simplify.py``.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from parse_back_support import (
    after,
    assert_parses_back,
    exact_part,
    matrix_cells,
    point_values,
    tuple_items,
    unwrapped,
)
from process_support import run_symdiff, run_symdiff_cases

import symdiff
from symdiff.calculus import api
from symdiff.calculus.simplify import admissible, simplify_within
from symdiff.errors import SymdiffError
from symdiff.explanations.render import check_answer, number_text
from symdiff.explanations.report import diff_report, gradient_report, matrix_report
from symdiff.frontend.parse import FUNCTIONS, make_symbol, parse

X, Y = make_symbol("x"), make_symbol("y")

#: Every function of the parser's table, called with its fewest arguments (heaviside and dirac
#: take a second, numeric one: they get their first only).
CALLS = sorted(FUNCTIONS.items())
#: heaviside(u, a) and dirac(u, k) take a number second (dirac(x, pi) is a ValueError in the
#: parser today, reported); they get their first argument only.
MAX_ARGS = {"heaviside": 1, "dirac": 1}
LEAVES = st.sampled_from(["x", "y", "x", "2", "3", "0.5", "1/3", "pi", "e"])


def _call(parts: tuple[str, list[str]]) -> str:
    name, children = parts
    return f"{name}({', '.join(children)})"


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    calls = st.sampled_from(CALLS).flatmap(
        lambda item: st.tuples(
            st.just(item[0]),
            st.lists(children, min_size=item[1].min_args, max_size=MAX_ARGS.get(item[0], 2)),
        )
    )
    operators = st.tuples(st.sampled_from(["+", "-", "*", "/", "**"]), children, children).map(
        lambda t: f"({t[1]}) {t[0]} ({t[2]})"
    )
    return calls.filter(lambda c: len(c[1]) <= (FUNCTIONS[c[0]].max_args or 2)).map(_call) | (
        operators
    )


EXPRESSIONS = st.recursive(LEAVES, _extend, max_leaves=4).filter(lambda t: "x" in t)
#: Exact and decimal coordinates of a point.
COORDINATES = st.sampled_from(["1/3", "2", "-1/2", "0.5", "0.1", "3/7", "1.25"])
FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def _parsed(text: str) -> sp.Expr:
    """The expression, or the example is dropped (a constant sub-expression outside its domain,
    such as ``acosh(0)``, is a parse error by design)."""
    try:
        expression = parse(text)
    except SymdiffError:
        assume(False)
        raise
    assume(expression.has(X))
    return expression


def _derive(expression: sp.Expr, wrt: sp.Symbol, order: int = 1) -> api.Derivation:
    try:
        return api.derive(expression, wrt, order, budget=0.3)
    except SymdiffError:  # a function without a rule (dirac), or a result too large
        assume(False)
        raise


def _point(expression: sp.Expr, coordinates: list[str]) -> dict[str, sp.Expr]:
    names = sorted(s.name for s in expression.free_symbols)
    return api.parse_point(",".join(f"{n}={c}" for n, c in zip(names, coordinates, strict=False)))


def _check_value_line(line: str, point: dict[str, sp.Expr], value: sp.Expr | None) -> None:
    """``at x=1/3, y=0.5: VALUE`` (or ``  at ...``): the point and the value parse back."""
    head, shown = line.strip()[len("at ") :].split(": ", 1)
    for name, text in point_values(head).items():
        assert_parses_back(text, point[name])
    if value is None:
        assert shown.startswith("undefined (")
    else:
        assert_parses_back(exact_part(shown), value)


@FAST
@given(EXPRESSIONS, st.lists(COORDINATES, min_size=2, max_size=2))
def test_diff_text_and_json_parse_back(text: str, coordinates: list[str]) -> None:
    expression = _parsed(text)
    derivation = _derive(expression, X)
    point = _point(expression, coordinates)
    value, reason = api.try_evaluate(derivation.result, point)
    report = diff_report(expression, (X,), 1, derivation.result, value, point, reason)
    first, second = report.text().splitlines()
    assert_parses_back(first, derivation.result)
    _check_value_line(second, point, value)
    data = report.to_dict()
    assert_parses_back(data["expression"], expression)
    assert_parses_back(data["derivative"], derivation.result)
    if value is None:
        assert data["value"] is None and data["reason"] == reason
    else:
        assert isinstance(data["value"], (int, float)), data["value"]
        assert_parses_back(data["exact_value"], value)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(EXPRESSIONS, st.lists(st.integers(-3, 3), min_size=2, max_size=2))
def test_grad_and_directional_derivative_parse_back(text: str, direction: list[int]) -> None:
    expression = _parsed(text + " + y")
    assume(any(direction))
    variables = [X, Y]
    try:
        grad = api.gradient(expression, variables, budget=0.3)
        directional = api.directional_derivative(expression, direction, variables)

    except SymdiffError:
        assume(False)
        raise
    unit = api.unit_vector(direction)
    lines = gradient_report(expression, variables, grad, None, None, directional, None, unit)
    lines = lines.text().splitlines()
    for line, entry in zip(lines, grad, strict=False):
        assert_parses_back(after(line), entry)
    header = next(i for i, line in enumerate(lines) if line.startswith("directional"))
    shown_unit = tuple_items(after(lines[header])[: -len(":")])
    for item, component in zip(shown_unit, unit, strict=True):
        assert_parses_back(item, component)
    for item, component in zip(tuple_items(after(lines[header + 1])), grad, strict=True):
        assert_parses_back(item, component)
    dot = sum((g * u for g, u in zip(grad, unit, strict=True)), sp.Integer(0))
    assert_parses_back(after(lines[header + 2]), dot)
    assert_parses_back(after(lines[header + 3]), directional)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(EXPRESSIONS, st.lists(COORDINATES, min_size=2, max_size=2))
def test_hessian_and_jacobian_cells_parse_back(text: str, coordinates: list[str]) -> None:
    expression = _parsed(text)
    variables = [X]
    try:
        hessian = api.hessian(expression, variables, budget=0.3)
        jacobian = api.jacobian([expression, X * expression], variables, budget=0.3)
    except SymdiffError:
        assume(False)
        raise
    point = _point(expression, coordinates)
    for kind, matrix, sources in (
        ("hessian", hessian, [expression]),
        ("jacobian", jacobian, [expression, X * expression]),
    ):
        pairs = [api.try_evaluate(entry, point) for entry in matrix]
        values = [
            [pairs[i * matrix.cols + j][0] for j in range(matrix.cols)] for i in range(matrix.rows)
        ]
        reasons = [
            [pairs[i * matrix.cols + j][1] for j in range(matrix.cols)] for i in range(matrix.rows)
        ]
        lines = matrix_report(kind, sources, variables, matrix, values, point, reasons).text()
        lines = lines.splitlines()
        for i in range(matrix.rows):
            for j, cell in enumerate(matrix_cells(lines[1 + i])):
                assert_parses_back(cell, matrix[i, j])
            for j, cell in enumerate(matrix_cells(lines[2 + matrix.rows + i])):
                if values[i][j] is None:
                    assert cell.startswith("undefined (")
                else:
                    assert_parses_back(exact_part(cell), values[i][j])


@FAST
@given(EXPRESSIONS, EXPRESSIONS)
def test_check_texts_parse_back(text: str, answer_text: str) -> None:
    expression = _parsed(text)
    try:  # replacing y by x can make a constant that is undefined, such as atanh(1)
        answer = parse(answer_text.replace("y", "x"))
        result = check_answer(expression, "x", answer)
    except SymdiffError:
        assume(False)
        raise
    lines = unwrapped(result.text())  # a long first line is wrapped
    assert lines[0].startswith("d/dx ")
    left, right = lines[0][len("d/dx ") :].split(" = ", 1)
    assert_parses_back(left, expression)
    assert_parses_back(right, result.expected)
    verdict = lines[1].split(": ", 1)[1]
    shown = verdict.split(" is equivalent")[0].split(" differs from")[0]
    assert_parses_back(shown, answer)
    data = result.to_dict()
    assert_parses_back(data["expected"], result.expected)
    assert_parses_back(data["answer"], answer)
    if result.counterexample is not None:
        where = lines[-1].strip()[len("at ") :].split(": ")[0]
        for name, value in point_values(where).items():
            assert_parses_back(value, result.counterexample["point"][name])


# --------------------------------------------------------------------------- values are numbers

KINKY = st.sampled_from(
    [
        "abs({})",
        "sign({})",
        "relu({})",
        "heaviside({})",
        "max({}, x*y)",
        "min({}, 1/3)",
        "abs({})*{}",
    ]
)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    KINKY,
    st.sampled_from(["sin(x) - cos(y)", "exp(x) - 3*y", "log(2 + x**2) - tanh(y)", "x - y**3"]),
    st.fractions(Fraction(-3), Fraction(3), max_denominator=9999),
    st.fractions(Fraction(-3), Fraction(3), max_denominator=9999),
)
def test_a_finite_value_at_a_point_is_a_number(
    template: str, inner: str, x: Fraction, y: Fraction
) -> None:
    """Steps and kinks of arguments SymPy cannot decide exactly are decided numerically: the
    second derivative (DiracDelta terms included) is a number equal to a 60-digit evaluation."""
    expression = parse(template.format(inner, inner))
    second = symdiff.derivative(expression, "x", 2, simplify=False)
    point = {
        "x": sp.Rational(x.numerator, x.denominator),
        "y": sp.Rational(y.numerator, y.denominator),
    }
    value, reason = api.try_evaluate(second, point)
    oracle = sp.N(second.xreplace({X: sp.Float(point["x"], 80), Y: sp.Float(point["y"], 80)}), 30)
    if value is None:
        undecided = oracle.has(sp.DiracDelta) or not oracle.is_finite or oracle.is_real is False
        assert undecided, (reason, oracle)
        return
    number = api.json_number(value)
    assert isinstance(number, (int, float)), number
    assert number == pytest.approx(float(oracle), rel=1e-12, abs=1e-300)


def test_the_issue_value_is_a_number() -> None:
    text = "acosh(2 + (min((expm1(z))*(cot(1 + sigmoid(z))), ln((0.5 + (sec(tanh(x)))^2))))**2)"
    result = symdiff.derivative(text, "z", 2)
    value = api.evaluate(result, "x=3306/9973,z=-9080/9973")
    assert api.json_number(value) == pytest.approx(0.07203757060672206, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "point", "reason"),
    [("log(x)", "x=0", "division by zero"), ("sqrt(x)", "x=-1", "not a real number")],
)
def test_an_undefined_value_says_why(text: str, point: str, reason: str) -> None:
    derivative = symdiff.derivative(text, "x")
    assert api.try_evaluate(derivative, api.parse_point(point)) == (None, reason)
    with pytest.raises(api.UndefinedValue, match=reason):
        api.evaluate(derivative, point)


# --------------------------------------------------------------------------- printed forms


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(EXPRESSIONS)
def test_the_printed_form_follows_the_rule(text: str) -> None:
    """Never more operations than the chain-rule result, never a function it does not use
    (except sigmoid for 1/(1 + exp(-u)))."""
    expression = _parsed(text)
    raw = _derive(expression, X).raw
    chosen = simplify_within(raw, 0.3)
    assert sp.count_ops(chosen) <= sp.count_ops(raw)
    assert admissible(chosen, raw)


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("1/(1+exp(-x))", "(1 - sigmoid(x))*sigmoid(x)"),
        ("sigmoid(x)", "(1 - sigmoid(x))*sigmoid(x)"),
        ("1/(1 + exp(-w*x - b))", "w*(1 - sigmoid(b + w*x))*sigmoid(b + w*x)"),
        ("log(1 + exp(x))", "sigmoid(x)"),
        ("tanh(x)", "1 - tanh(x)**2"),
        ("tanh(w*x)**2", "2*w*(1 - tanh(w*x)**2)*tanh(w*x)"),
    ],
)
def test_ml_forms(text: str, printed: str) -> None:
    assert symdiff.text.formula(symdiff.derivative(text, "x")) == printed


def test_number_text_falls_back_to_a_formula_that_parses_back() -> None:
    assert number_text(sp.Integer(7)) == "7"
    assert number_text(sp.Rational(1, 3)) == "0.3333333333"
    value = sp.Max(X, 1) + sp.E + sp.Heaviside(X - 1, 0)
    assert number_text(value) == "heaviside(x - 1, 0) + max(1, x) + e"
    assert_parses_back(number_text(value), value)


# --------------------------------------------------------------------------- the real CLI

CLI_CASES = {
    "sigmoid": ["diff", "1/(1+exp(-x))", "--wrt", "x"],
    "tanh": ["diff", "tanh(x)", "--wrt", "x"],
    "e": ["diff", "exp(x)", "--wrt", "x", "--at", "x=1"],
    "decimal": ["diff", "x**2", "--wrt", "x", "--at", "x=0.5"],
    "undefined": ["diff", "log(x)", "--wrt", "x", "--at", "x=0"],
    "undefined_json": ["diff", "log(x)", "--wrt", "x", "--at", "x=0", "--format", "json"],
    "kink_json": [
        "diff",
        "abs(sin(x) - 1/3)*max(x, cos(x))",
        "--wrt",
        "x",
        "--order",
        "2",
        "--at",
        "x=3306/9973",
        "--format",
        "json",
    ],
    "grad": ["grad", "x**2*y + z", "--at", "x=0.5,y=2,z=0", "--direction", "2,3,-1"],
    "hessian": ["hessian", "abs(x)*y**3 + exp(x*y)", "--at", "x=1,y=0.25"],
    "jacobian": ["jacobian", "max(x, y)", "x*sigmoid(y)", "--at", "x=1/2,y=2"],
    "check": ["check", "2*x**3 + 5", "--wrt", "x", "--answer", "6*x"],
}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):  # type: ignore[no-untyped-def]
    cases = {key: (args, None) for key, args in CLI_CASES.items()}
    return run_symdiff_cases(cases, tmp_path_factory.mktemp("parse-back"))


def test_cli_issue_examples(cli_results) -> None:  # type: ignore[no-untyped-def]
    out = {key: result.stdout for key, result in cli_results.items()}
    codes = {key: result.returncode for key, result in cli_results.items()}
    assert codes == {**{key: 0 for key in CLI_CASES}, "check": 1}
    assert out["sigmoid"] == "(1 - sigmoid(x))*sigmoid(x)\n"
    assert out["tanh"] == "1 - tanh(x)**2\n"
    assert out["e"] == "exp(x)\nat x=1: e ≈ 2.71828182846\n"
    assert out["decimal"] == "2*x\nat x=0.5: 1.0\n"
    assert out["undefined"] == "1/x\nat x=0: undefined (division by zero)\n"
    data = json.loads(out["undefined_json"])
    assert (data["derivative"], data["value"], data["reason"]) == ("1/x", None, "division by zero")
    kink = json.loads(out["kink_json"])
    assert isinstance(kink["value"], float) and math.isfinite(kink["value"])
    expected = sp.diff(sp.Abs(sp.sin(X) - sp.Rational(1, 3)) * sp.Max(X, sp.cos(X)), X, 2).xreplace(
        {X: sp.Float(sp.Rational(3306, 9973), 60)}
    )
    assert kink["value"] == pytest.approx(float(sp.N(expected, 30)), rel=1e-12)


def test_cli_text_outputs_parse_back(cli_results) -> None:  # type: ignore[no-untyped-def]
    x, y = X, Y
    lines = cli_results["grad"].stdout.splitlines()
    assert_parses_back(after(lines[0]), 2 * x * y)
    assert lines[3] == "at x=0.5, y=2, z=0:"
    assert_parses_back(after(lines[4]), 2)
    unit = [2 / sp.sqrt(14), 3 / sp.sqrt(14), -1 / sp.sqrt(14)]
    assert lines[7].startswith("directional derivative along u = (")
    for item, component in zip(tuple_items(after(lines[7])[:-1]), unit, strict=True):
        assert_parses_back(item, component)
    grad = [2 * x * y, x**2, sp.Integer(1)]
    assert [parse(item) for item in tuple_items(after(lines[8]))] == grad
    dot = sum((g * u for g, u in zip(grad, unit, strict=True)), sp.Integer(0))
    assert_parses_back(after(lines[9]), dot)
    assert_parses_back(after(lines[10]), dot)
    point = api.parse_point("x=0.5,y=2,z=0")
    _check_value_line(lines[11], point, api.evaluate(parse(after(lines[10])), point))
    hessian = cli_results["hessian"].stdout.splitlines()
    f = sp.Abs(x) * y**3 + sp.exp(x * y)
    for i, a in enumerate((x, y)):
        for j, b in enumerate((x, y)):
            assert_parses_back(matrix_cells(hessian[1 + i])[j], sp.diff(f, a, b))
            exact = sp.diff(f, a, b).subs({x: 1, y: sp.Float(0.25)})
            assert float(parse(exact_part(matrix_cells(hessian[4 + i])[j]))) == pytest.approx(
                float(exact), rel=1e-12
            )
    jacobian = cli_results["jacobian"].stdout.splitlines()
    assert jacobian[3] == "at x=1/2, y=2:"
    check = cli_results["check"].stdout.splitlines()
    assert_parses_back(check[0].split(" = ")[1], 6 * x**2)
    assert check[2] == "  at x=2: derivative = 24, your answer = 12"


def test_an_undefined_derivative_is_one_line_not_a_formula_with_zoo() -> None:
    """d/dx 0**x comes out of SymPy as 0**x*zoo, which no parser reads back: refused, exit 2."""
    done = run_symdiff("diff", "0**x", "--wrt", "x")
    assert done.returncode == 2
    assert done.stderr == (
        "Error: the derivative of 0**x by x is undefined: it comes out as 0**x*zoo (zoo is a "
        "complex infinity, nan not a number)\n"
    )
    assert done.stdout == ""
