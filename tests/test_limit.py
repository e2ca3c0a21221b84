"""Derivatives from the limit definition: the algebra for rational functions, honest standard
limits for the rest, and the difference-quotient table of the seed (x^2 at 3, h = 1e-4)."""

from __future__ import annotations

import json
import math

import pytest
import sympy as sp
from click.testing import CliRunner
from golden_support import assert_golden, assert_valid_latex
from hypothesis import given, settings
from hypothesis import strategies as st
from parse_back_support import unwrapped
from process_support import run_symdiff

from symdiff.cli import cli
from symdiff.explanations.limit import STEP_SIZES, float_value, limit_derivation
from symdiff.frontend.parse import make_symbol, parse
from symdiff.functions import to_elementary

x = make_symbol("x")


def test_cubic_of_the_seed() -> None:
    """000_: d/dx (2x^3 + 5) = 6x^2 via the difference quotient.

    The seed's own algebra slips (it writes h^3 twice and ends with 6x^2 + h^2 + 2xh); the
    correct quotient after cancelling h is 6x^2 + 6xh + 2h^2, which is what we print.
    """
    derivation = limit_derivation("2*x**3 + 5", "x")
    assert derivation.algebraic
    assert derivation.result == 6 * x**2
    notes = [line.note for line in derivation.lines]
    assert notes[0].startswith("substitute")
    assert notes[1].startswith("expand")
    assert notes[2].startswith("cancel h")
    assert notes[3] == "let h -> 0"
    texts = [line.text for line in derivation.lines]
    assert texts[0] == "((2*(h + x)**3 + 5) - (2*x**3 + 5))/h"
    assert texts[1] == "(2*h**3 + 6*h**2*x + 6*h*x**2)/h"
    assert texts[2] == "(2*h**2 + 6*h*x + 6*x**2)"
    assert texts[3] == "6*x**2"


def test_square_and_the_seed_quotient_at_three() -> None:
    """002_: getDeriv(x**2, 3) with h = 0.0001 gives 6.0001; the exact derivative is 6."""
    derivation = limit_derivation("x**2", "x", "x=3")
    assert derivation.result == 2 * x
    assert derivation.exact_value == 6
    rows = {row.h: row for row in derivation.table}
    assert [row.h for row in derivation.table] == list(STEP_SIZES)
    assert rows[1e-4].forward == pytest.approx(6.0001, abs=1e-9)
    # forward error of x^2 is exactly h in exact arithmetic; central is exact up to rounding
    for h in (1e-1, 1e-2, 1e-3, 1e-4):
        assert rows[h].error_forward == pytest.approx(h, rel=1e-6)
        assert rows[h].error_central < 1e-10
    # rounding error dominates at h = 1e-8: the forward quotient is no longer within h of 6
    assert rows[1e-8].error_forward > 1e-8


def test_table_converges_for_a_transcendental_function() -> None:
    derivation = limit_derivation("sin(x)", "x", "x=1")
    errors = [row.error_central for row in derivation.table]
    assert errors[0] > errors[2] > errors[4]  # O(h^2) until rounding takes over
    assert min(errors) < 1e-9
    assert derivation.table[3].forward == pytest.approx(math.cos(1), abs=1e-4)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("x/(1 + x)", "1/(1 + x)**2"),
        ("1/x", "-1/x**2"),
        ("(x**2 + 1)/(x - 3)", None),
        ("a*x**2 + b*x + c", "2*a*x + b"),
        ("(2*x + 1)**4", None),
    ],
)
def test_rational_functions_by_algebra(text: str, expected: str | None) -> None:
    expression = parse(text)
    derivation = limit_derivation(expression, "x")
    assert derivation.algebraic
    assert sp.simplify(derivation.result - sp.diff(expression, x)) == 0
    if expected is not None:
        assert sp.simplify(derivation.result - parse(expected)) == 0
    assert "cancel h" in derivation.text()


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=5),
    st.lists(st.integers(-3, 3), min_size=1, max_size=3),
)
def test_limit_of_any_rational_function_is_its_derivative(top: list[int], bottom: list[int]):
    denominator = sum(c * x**k for k, c in enumerate(bottom)) + x ** len(bottom)
    numerator = sum(c * x**k for k, c in enumerate(top))
    expression = numerator / denominator
    if not expression.has(x):
        return
    derivation = limit_derivation(expression, x)
    assert derivation.algebraic
    assert sp.cancel(derivation.result - sp.diff(expression, x)) == 0


@pytest.mark.parametrize(
    "text,limits",
    [
        ("exp(x)", ["lim h->0 (exp(h) - 1)/h = 1"]),
        ("sin(x)", ["lim h->0 sin(h)/h = 1", "lim h->0 (cos(h) - 1)/h = 0"]),
        ("cos(x)", ["lim h->0 sin(h)/h = 1", "lim h->0 (cos(h) - 1)/h = 0"]),
        ("log(x)", ["lim t->0 log(1 + t)/t = 1"]),
    ],
)
def test_single_functions_name_their_standard_limit(text: str, limits: list[str]) -> None:
    expression = parse(text)
    derivation = limit_derivation(expression, "x")
    assert not derivation.algebraic
    assert derivation.result == sp.diff(expression, x)
    data = derivation.to_dict()
    assert data["standard_limits"] == limits
    assert "apply the standard limits" in derivation.text()


def test_composite_functions_say_algebra_cannot_cancel_h() -> None:
    derivation = limit_derivation("log(1 + exp(-x))", "x")
    text = " ".join(derivation.text().split())
    assert "algebra alone cannot cancel h here" in text
    assert "standard limits (log, exp)" in text
    assert (
        sp.simplify(to_elementary(derivation.result) - sp.diff(parse("log(1 + exp(-x))"), x)) == 0
    )
    atan = " ".join(limit_derivation("atan(x)", "x").text().split())
    assert "for atan symdiff uses the known derivative from its rule table" in atan
    power = limit_derivation("x**2.5", "x").to_dict()
    assert power["standard_limits"] == ["lim t->0 ((1 + t)**a - 1)/t = a"]


def test_step_variable_avoids_a_user_h() -> None:
    derivation = limit_derivation("h*x**2", "x")
    assert derivation.result == 2 * make_symbol("h") * x
    assert "dh -> 0" in derivation.text()


@pytest.mark.parametrize(
    "text",
    [
        "exp(x)",
        "log(x)",
        "sin(x)",
        "tanh(x)",
        "sigmoid(x)",
        "softplus(x)",
        "relu(x)",
        "abs(x)",
        "sqrt(x)",
        "x**2.5",
        "erf(x)",
        "atan(x)",
        "log1p(x)",
        "expm1(x)",
        "cosh(x)",
    ],
)
def test_float64_evaluator_agrees_with_sympy(text: str) -> None:
    expression = parse(text)
    for value in (0.3, 1.7):
        expected = float(expression.evalf(30, subs={x: value}))
        assert float_value(expression, {x: value}) == pytest.approx(expected, rel=1e-13)
    assert math.isnan(float_value(parse("log(x)"), {x: -1.0}))


# --------------------------------------------------------------------------- formats and CLI

LIMIT_SEEDS = {
    "cubic": ("2*x**3 + 5", None, None),
    "square_at_3": ("x**2", "x=3", None),
    "square_at_3_h": ("x**2", "x=3", "0.0001"),
    "exp": ("exp(x)", None, None),
    "sqrt": ("sqrt(x)", None, None),
    "sigmoid_2x": ("sigmoid(2*x)", None, None),
}


@pytest.mark.parametrize("name", LIMIT_SEEDS)
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "json"])
def test_golden_limit(name: str, fmt: str) -> None:
    text, at, step = LIMIT_SEEDS[name]
    ext = {"text": "txt", "markdown": "md", "latex": "tex", "json": "json"}[fmt]
    rendered = limit_derivation(text, "x", at, step).render(fmt)
    assert_golden(f"limit_{name}.{ext}", rendered)
    if fmt == "text":
        assert max(len(line) for line in rendered.splitlines()) <= 80
    if fmt == "latex":
        for block in rendered.split("\n\n"):
            assert_valid_latex(block)


def test_json_table_shape() -> None:
    data = json.loads(limit_derivation("x**2", "x", "x=3").render("json"))
    assert len(data["table"]) == 8
    assert set(data["table"][0]) == {"h", "forward", "central", "error_forward", "error_central"}
    assert data["result"] == "2*x"
    assert data["exact_value"] == 6.0


def test_cli_limit_and_errors() -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["steps", "x**2", "--wrt", "x", "--method", "limit", "--at", "x=3"])
    assert done.exit_code == 0
    assert "6.00010000001" in done.output
    rules_at = runner.invoke(cli, ["steps", "x**2", "--wrt", "x", "--at", "x=3"])
    assert rules_at.exit_code == 2 and "--at goes with --method limit" in rules_at.output
    bad_point = runner.invoke(
        cli, ["steps", "x**2", "--wrt", "x", "--method", "limit", "--at", "q=3"]
    )
    assert bad_point.exit_code == 2 and bad_point.output.startswith("Error:")


def test_cli_limit_in_a_real_subprocess() -> None:
    done = run_symdiff("steps", "2*x**3 + 5", "--wrt", "x", "--method", "limit", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == "6*x**2"


# --------------------------------------------------------------------------- formulas parse back

h = make_symbol("h")
TYPED_QUOTIENTS = ["1/x", "x/(x+1)", "1/x**2", "3/(2*x+1)"]
ROUTES = ["exp(2*x)", "exp(-3*x + 1)", "exp(x)", "sqrt(x)", "sqrt(x**2 + 1)", "sigmoid(x)"]
ROUTES += ["sigmoid(2*x - 1)", "sin(x)", "cos(x)", "log(x)", "2*x**3 + 5", "x**2"]


def _limit_bodies(rendered: str, fmt: str) -> list[str]:
    """Every formula after 'lim h->0' in the text or JSON output."""
    if fmt == "json":
        steps = json.loads(rendered)["steps"]
        return [step["expression"] for step in steps if step["limit"]]
    return [
        line.strip().removeprefix("lim h->0 ")
        for line in unwrapped(rendered)
        if line.strip().startswith("lim h->0 ")
    ]


def _same_function(a: sp.Expr, b: sp.Expr, points: list[tuple[sp.Rational, sp.Rational]]) -> bool:
    """a == b as functions of x and h, at points where both are defined (high precision)."""
    compared = 0
    for xv, hv in points:
        va = sp.N(a.subs({x: xv, h: hv}), 30)
        vb = sp.N(b.subs({x: xv, h: hv}), 30)
        if not (va.is_finite and vb.is_finite):
            continue
        if abs(va - vb) > 1e-20 * (1 + abs(vb)):
            return False
        compared += 1
    return compared >= 2


POINTS = [
    (sp.Rational(a), sp.Rational(b))
    for a, b in (("0.7", "0.3"), ("1.9", "-0.2"), ("2.6", "0.05"), ("0.45", "0.011"))
]


def _assert_lines_parse_back(expression: sp.Expr) -> int:
    """Each 'lim h->0' formula of text and JSON parses back to (f(x + h) - f(x))/h."""
    difference = (expression.subs(x, x + h) - expression) / h
    derivation = limit_derivation(expression, "x")
    count = 0
    for fmt in ("text", "json"):
        bodies = _limit_bodies(derivation.render(fmt), fmt)
        assert bodies, fmt
        for body in bodies:
            parsed = parse(body)
            assert parsed.free_symbols <= {x, h}, body
            assert _same_function(parsed, difference, POINTS), f"{fmt}: {body}"
            count += 1
    final = parse(derivation.to_dict()["result"])
    assert _same_function(final, sp.diff(expression, x), POINTS)
    return count


@pytest.mark.parametrize("text", TYPED_QUOTIENTS + ROUTES)
def test_every_limit_formula_parses_back_to_the_difference_quotient(text: str) -> None:
    assert _assert_lines_parse_back(parse(text)) >= 2


def test_the_issue_quotient_is_no_longer_ambiguous() -> None:
    """'(-h)/h*x*(h + x)' read back as (-h/h)*x*(h + x); the denominator is now grouped."""
    text = limit_derivation("1/x", "x").text()
    assert "(-h)/h*x" not in text
    assert "(-h)/(h*x*(h + x))" in text


@settings(max_examples=15, deadline=None)
@given(
    st.integers(-4, 4).filter(bool),
    st.integers(-3, 3),
    st.integers(1, 3),
    st.integers(-3, 3).filter(bool),
)
def test_rational_formulas_parse_back(numerator: int, shift: int, power: int, scale: int):
    """c/(a*x + b)**n and x/(a*x + b): every printed quotient parses back."""
    for expression in (
        numerator / (scale * x + shift) ** power,
        x / (scale * x + shift) + numerator * x**power,
    ):
        _assert_lines_parse_back(expression)


@settings(max_examples=10, deadline=None)
@given(st.integers(-3, 3).filter(bool), st.integers(-2, 2))
def test_routes_for_linear_arguments_parse_back(k: int, b: int) -> None:
    for expression in (sp.exp(k * x + b), parse(f"sigmoid({k}*x + {b})")):
        _assert_lines_parse_back(expression)


# --------------------------------------------------------------------------- textbook routes


def test_exp_of_kx_uses_the_standard_limit_with_the_chain_factor() -> None:
    derivation = limit_derivation("exp(2*x)", "x")
    notes = " ".join(line.note for line in derivation.lines)
    assert "algebra alone" not in derivation.text()
    assert "t = 2*h" in notes and "inner derivative 2" in notes
    assert derivation.to_dict()["standard_limits"] == ["lim h->0 (exp(h) - 1)/h = 1"]
    assert derivation.result == 2 * sp.exp(2 * x)


def test_sqrt_uses_the_conjugate_and_needs_no_standard_limit() -> None:
    derivation = limit_derivation("sqrt(x)", "x")
    text = derivation.text()
    assert "conjugate" in text and "algebra alone" not in text
    assert "lim h->0 1/(sqrt(x) + sqrt(h + x))" in text
    assert derivation.algebraic and derivation.standard_limits == ()
    assert sp.simplify(derivation.result - 1 / (2 * sp.sqrt(x))) == 0


def test_sigmoid_goes_through_exps_standard_limit() -> None:
    derivation = limit_derivation("sigmoid(x)", "x")
    text = " ".join(derivation.text().split())
    assert "subtract the fractions" in text and "algebra alone" not in text
    assert derivation.to_dict()["standard_limits"] == ["lim h->0 (exp(h) - 1)/h = 1"]
    assert "exp(-x)/(1 + exp(-x))**2" in text


def test_the_seed_cubic_stays_exact() -> None:
    """000_: the limit derivation of 2x^3 + 5 keeps integers (no decimals creep in)."""
    data = limit_derivation("2*x**3 + 5", "x").to_dict()
    bodies = [step["expression"] for step in data["steps"]]
    assert bodies == [
        "((2*(h + x)**3 + 5) - (2*x**3 + 5))/h",
        "(2*h**3 + 6*h**2*x + 6*h*x**2)/h",
        "(2*h**2 + 6*h*x + 6*x**2)",
        "6*x**2",
    ]
    assert "." not in "".join(bodies)


# --------------------------------------------------------------------------- --h


def test_the_seed_get_deriv_at_h_0_0001() -> None:
    """002_: getDeriv(xSquared, 3) with h = 0.0001 is 6.0001 and the actual derivative is 6.

    The decimal 0.0001 is taken as written (1/10000), so the quotient is exactly 6.0001, which
    the seed prints; float64 arithmetic would give 6.000100000012054.
    """
    derivation = limit_derivation("x**2", "x", "x=3", h="0.0001")
    step = derivation.at_step
    assert step is not None
    assert step.value == sp.Float(6.0001) and float(step.value) == 6.0001
    assert derivation.exact_value == 6
    text = derivation.text()
    assert "(f(x + h) - f(x))/h = 2*x + 0.0001" in text
    assert "at x=3: 6.0001 (the limit: 6)" in text
    assert json.loads(derivation.render("json"))["at_h"] == {
        "h": "0.0001",
        "quotient": "2*x + 0.0001",
        "value": "6.0001",
    }


def test_h_is_exact_when_the_inputs_are_exact() -> None:
    derivation = limit_derivation("x**2", "x", "x=3", h="1/10000")
    assert derivation.at_step is not None
    assert derivation.at_step.value == sp.Rational(60001, 10000)
    assert "60001/10000 = 6.0001" in derivation.text()
    exp = limit_derivation("exp(2*x)", "x", "x=0", h="1/2")
    assert exp.at_step is not None and exp.at_step.value is not None
    assert sp.simplify(exp.at_step.value - 2 * (sp.E - 1)) == 0


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 400), st.integers(-5, 5), st.integers(0, 3))
def test_h_quotient_is_the_difference_quotient(denominator: int, at: int, degree: int) -> None:
    expression = x**degree + 3 * x
    step = sp.Rational(1, denominator)
    derivation = limit_derivation(expression, "x", f"x={at}", h=f"1/{denominator}")
    assert derivation.at_step is not None
    want = (expression.subs(x, at + step) - expression.subs(x, at)) / step
    assert derivation.at_step.value == want
    assert parse(derivation.to_dict()["at_h"]["quotient"]).subs(x, at) == want


def test_cli_h_option_and_errors() -> None:
    done = run_symdiff(
        "steps", "x**2", "--wrt", "x", "--method", "limit", "--at", "x=3", "--h", "0.0001"
    )
    assert done.returncode == 0, done.stderr
    assert "at x=3: 6.0001 (the limit: 6)" in done.stdout
    runner = CliRunner()
    rules = runner.invoke(cli, ["steps", "x**2", "--wrt", "x", "--h", "0.1"])
    assert rules.exit_code == 2 and "--h goes with --method limit" in rules.output
    zero = runner.invoke(cli, ["steps", "x**2", "--wrt", "x", "--method", "limit", "--h", "0"])
    assert zero.exit_code == 2 and zero.output.startswith("Error: --h must not be 0")
    word = runner.invoke(cli, ["steps", "x**2", "--wrt", "x", "--method", "limit", "--h", "q"])
    assert word.exit_code == 2 and word.output.startswith("Error:")
    assert "Traceback" not in word.output
