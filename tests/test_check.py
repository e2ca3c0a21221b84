"""``symdiff check``: equivalent answers pass (symbolically or numerically), wrong ones fail with
a point where the two differ, and the exit codes say which."""

from __future__ import annotations

import json

import pytest
import sympy as sp
from click.testing import CliRunner
from golden_support import assert_golden, assert_valid_latex
from process_support import run_symdiff

from symdiff.cli import cli
from symdiff.errors import InputError
from symdiff.explanations.render import check_answer
from symdiff.frontend.parse import parse


@pytest.mark.parametrize(
    "expr,wrt,answer",
    [
        ("2*x**3 + 5", "x", "6*x**2"),
        ("2*x**3 + 5", "x", "3*x**2 + 3*x*x"),
        ("sin(x)**2", "x", "sin(2*x)"),
        ("log(sigmoid(x))", "x", "1 - sigmoid(x)"),
        ("softplus(x)", "x", "1/(1 + exp(-x))"),
        ("x**2*y", "y", "x**2"),
        ("tanh(x)", "x", "1/cosh(x)**2"),
        ("-y*log(sigmoid(w*x)) - (1 - y)*log(1 - sigmoid(w*x))", "w", "x*(sigmoid(w*x) - y)"),
    ],
)
def test_equivalent_answers_are_correct(expr: str, wrt: str, answer: str) -> None:
    result = check_answer(expr, wrt, answer)
    assert result.correct, result.text()
    assert result.counterexample is None
    assert result.to_dict()["correct"] is True


@pytest.mark.parametrize(
    "expr,wrt,answer",
    [
        ("2*x**3 + 5", "x", "6*x"),
        ("2*x**3 + 5", "x", "6*x**2 + 5"),
        ("sin(x**2)", "x", "cos(x**2)"),
        ("exp(-x)", "x", "exp(-x)"),
        ("x*y", "x", "x"),
        ("log(x)", "x", "1/x + 1e-3"),
    ],
)
def test_wrong_answers_come_with_a_counterexample(expr: str, wrt: str, answer: str) -> None:
    result = check_answer(expr, wrt, answer)
    assert not result.correct
    example = result.counterexample
    assert example is not None
    # the counterexample is real: the derivative and the answer differ at that point
    point = {sp.Symbol(k, real=True): v for k, v in example["point"].items()}
    expected = float(sp.diff(parse(expr), sp.Symbol(wrt, real=True)).evalf(30, subs=point))
    given = float(parse(answer).evalf(30, subs=point))
    assert expected == pytest.approx(example["expected"], rel=1e-12)
    assert given == pytest.approx(example["answer"], rel=1e-12)
    assert abs(expected - given) > 1e-7 * max(1.0, abs(expected))


def test_counterexample_prefers_small_integers() -> None:
    result = check_answer("2*x**3 + 5", "x", "6*x")
    assert result.counterexample == {"point": {"x": 2}, "expected": 24.0, "answer": 12.0}
    assert "at x=2: derivative = 24, your answer = 12" in result.text()


def test_answer_with_a_foreign_variable_is_bad_input() -> None:
    with pytest.raises(InputError, match="the answer uses z"):
        check_answer("x**2", "x", "2*z")


@pytest.mark.parametrize("fmt", ["text", "json", "latex", "markdown"])
def test_golden_check(fmt: str) -> None:
    ext = {"text": "txt", "markdown": "md", "latex": "tex", "json": "json"}[fmt]
    good = check_answer("2*x**3 + 5", "x", "6*x**2").render(fmt)
    bad = check_answer("2*x**3 + 5", "x", "6*x").render(fmt)
    assert_golden(f"check_correct.{ext}", good)
    assert_golden(f"check_wrong.{ext}", bad)
    if fmt == "latex":
        assert_valid_latex(good)
        assert_valid_latex(bad)


def test_cli_exit_codes_and_json() -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["check", "2*x**3 + 5", "--wrt", "x", "--answer", "6*x**2"])
    assert good.exit_code == 0 and "correct" in good.output
    bad = runner.invoke(
        cli, ["check", "2*x**3 + 5", "--wrt", "x", "--answer", "6*x", "--format", "json"]
    )
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert set(data) == {"correct", "expected", "answer", "counterexample"}
    assert data["correct"] is False and data["expected"] == "6*x**2"
    unparsable = runner.invoke(cli, ["check", "x**2", "--wrt", "x", "--answer", "2*x +"])
    assert unparsable.exit_code == 2 and unparsable.output.startswith("Error:")


def test_cli_check_in_a_real_subprocess() -> None:
    base = ["check", "2*x**3 + 5", "--wrt", "x", "--answer"]
    good = run_symdiff(*base, "6*x**2")
    bad = run_symdiff(*base, "6*x")
    assert good.returncode == 0 and "correct" in good.stdout
    assert bad.returncode == 1 and "incorrect" in bad.stdout


def test_numeric_fallback_when_simplify_cannot_decide() -> None:
    """sigmoid is opaque to simplify: equivalence is then shown at test points."""
    result = check_answer("sigmoid(x)", "x", "exp(-x)/(1 + exp(-x))**2")
    assert result.correct and result.how.startswith("numerically, at ")
    wrong = check_answer("sigmoid(x)", "x", "exp(-x)/(1 + exp(-x))**3")
    assert not wrong.correct and wrong.counterexample["point"] == {"x": 1}


def test_kinks_follow_the_subgradient_convention() -> None:
    """|x|' = sign(x) is 0 at 0; x/|x| is undefined there, so it is not accepted."""
    result = check_answer("abs(x)", "x", "x/abs(x)")
    assert not result.correct
    assert result.counterexample == {"point": {"x": 0}, "expected": 0.0, "answer": None}
    assert "your answer = undefined" in result.text()
