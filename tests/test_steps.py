"""Rule-by-rule derivations: every recorded step is a true derivative, the rendered forms are
well formed, the answer is what ``symdiff diff`` prints, and the seed examples match goldens."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from click.testing import CliRunner
from derivative_oracles import close, high_precision, sample_points
from golden_support import assert_golden, assert_valid_latex
from parse_back_support import unwrapped
from process_support import run_python, run_symdiff
from test_corpus import CORPUS
from test_graph import assert_whole_table

from symdiff.calculus.differentiate import differentiate
from symdiff.calculus.rules import RULE_FORMULAS
from symdiff.calculus.steps import Step
from symdiff.cli import cli
from symdiff.explanations.derivation import COMPOSITE_RULES, explain, rules_table
from symdiff.explanations.render import TEXT_WIDTH
from symdiff.frontend.parse import make_symbol, parse
from symdiff.functions import to_elementary
from symdiff.text import formula as formula_text

#: ML losses and activations beyond the shared corpus, each checked step by step.
ML_EXTRA = [
    "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))",
    "(w*x + b - y)**2/2",
    "abs(y - (w*x + b))",
    "log(1 + exp(-y*(w*x + b)))",
    "softplus(-y*w*x)",
    "relu(w*x + b)**2",
    "tanh(w*x)**2 + sigmoid(x)",
    "log(exp(x) + exp(2*x) + exp(y))",
    "x*sigmoid(x)",
    "-log(exp(x)/(exp(x) + exp(y)))",
]


def _check_steps(step: Step, substitution: dict, point: dict, checked: list[str]) -> None:
    """step.result == sympy.diff(step.expression, step.wrt), at the point, recursively.

    The outer step of a chain rule is in terms of u; there u = inner is substituted after
    differentiating, so it is checked at the same point.
    """
    ours = step.result.xreplace(substitution)
    theirs = sp.diff(step.expression, step.wrt).xreplace(substitution)
    a = high_precision(to_elementary(ours), point)
    b = high_precision(to_elementary(theirs), point)
    assert close(a, b, 1e-10), f"{step.rule}: d/d{step.wrt} {step.expression} = {step.result}"
    checked.append(step.rule)
    for index, sub in enumerate(step.substeps):
        inner = dict(substitution)
        if step.rule == "chain" and index == 0:
            inner[step.variable] = step.inner.xreplace(substitution)
        _check_steps(sub, inner, point, checked)


@pytest.mark.parametrize("case", CORPUS, ids=[c.text for c in CORPUS])
def test_every_step_of_the_corpus_is_a_true_derivative(case) -> None:
    expression = parse(case.text)
    symbols = sorted(expression.free_symbols, key=lambda s: s.name)
    for name in case.wrt:
        step = differentiate(expression, make_symbol(name))
        points = sample_points(symbols, case.domain, case.default, 2, f"steps:{case.text}")
        checked: list[str] = []
        for point in points:
            _check_steps(step, {}, point, checked)
        assert len(checked) == 2 * len(list(step.walk()))


@pytest.mark.parametrize("text", ML_EXTRA)
def test_every_step_of_ml_losses_is_a_true_derivative(text: str) -> None:
    expression = parse(text)
    symbols = sorted(expression.free_symbols, key=lambda s: s.name)
    domain = {"y": (0.1, 0.9)}
    for name in ("x", "w") if "w" in text else ("x",):
        derivation = explain(expression, name)
        checked: list[str] = []
        for point in sample_points(symbols, domain, (-1.5, 1.5), 2, text):
            for step in derivation.steps:
                _check_steps(step, {}, point, checked)
        assert len(checked) >= 3


def test_a_wrong_step_would_be_caught() -> None:
    """The step checker fails on a step whose result is not the derivative."""
    x = sp.Symbol("x", real=True)
    wrong = Step("power", x**3, x, 3 * x)
    with pytest.raises(AssertionError):
        _check_steps(wrong, {}, {x: 1.3}, [])


# --------------------------------------------------------------------------- structure


def test_chain_step_shows_the_substitution_outer_inner_and_product() -> None:
    derivation = explain("sin(x**2)", "x")
    (chain,) = derivation.steps
    assert chain.rule == "chain"
    text = derivation.text()
    assert "let u = x**2, so sin(x**2) = sin(u)" in text
    assert "1.1. outer, sin: d/du sin(u) = cos(u)" in text
    assert "1.2. inner, power: d/dx x**2 = 2*x" in text
    assert "multiply: cos(x**2)*(2*x) = 2*x*cos(x**2)" in text
    assert text.splitlines()[-1] == "Answer: d/dx sin(x**2) = 2*x*cos(x**2)"


def test_steps_are_numbered_and_nested() -> None:
    text = explain("x*sin(x)/(1 + x**2)", "x").text()
    numbers = re.findall(r"^\s*(\d+(?:\.\d+)*)\. ", text, flags=re.M)
    assert numbers[:3] == ["1", "1.1", "1.1.1"]
    assert "1.2.2" in numbers
    # each nested level is indented further than its parent
    indent = {
        n: len(line) - len(line.lstrip())
        for line in text.splitlines()
        for n in re.findall(r"^\s*(\d+(?:\.\d+)*)\. ", line)
    }
    assert indent["1"] < indent["1.1"] < indent["1.1.1"]


def test_simplify_step_states_raw_and_simplified_forms() -> None:
    derivation = explain("-y*log(sigmoid(x)) - (1 - y)*log(1 - sigmoid(x))", "x")
    assert derivation.raw != derivation.result
    assert sp.simplify(to_elementary(derivation.raw - derivation.result)) == 0
    text = " ".join(derivation.text().split())  # undo the wrapping
    assert f"2. simplify: {derivation.raw} = {derivation.result}" in text
    assert text.endswith(f"= {derivation.result}")


def test_rule_names_are_snake_case_and_include_the_required_ones() -> None:
    required = {
        "constant",
        "identity",
        "sum",
        "constant_multiple",
        "power",
        "product",
        "quotient",
        "chain",
        "exp",
        "log",
        "sigmoid",
        "relu",
        "softplus",
    }
    assert required <= set(RULE_FORMULAS)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in RULE_FORMULAS)
    table = rules_table()
    for name in required:
        assert re.search(rf"^{name}\s+\S", table, flags=re.M), name
    assert set(RULE_FORMULAS) >= COMPOSITE_RULES


#: What the letters of the published formulas stand for, written out from their textbook
#: definitions (not symdiff's): f and g are concrete functions of x with their derivatives by hand,
#: as expressions (``(f*g)'``) or as functions when applied (``f(g(x))``); c, n, a are constants.
_U, _X, _T = sp.symbols("u x t")
_FORMULA_NAMES = {
    "u": _U,
    "x": _X,
    "c": sp.Rational(13, 10),
    "n": sp.Rational(37, 10),
    "a": sp.Rational(5, 2),
    "H": sp.Heaviside,
    "max": sp.Max,
    "min": sp.Min,
    "sigmoid": sp.Lambda(_T, 1 / (1 + sp.exp(-_T))),
    "relu": sp.Lambda(_T, sp.Max(_T, 0)),
    "softplus": sp.Lambda(_T, sp.log(1 + sp.exp(_T))),
    "log1p": sp.Lambda(_T, sp.log(1 + _T)),
    "expm1": sp.Lambda(_T, sp.exp(_T) - 1),
}
_AS_EXPRESSIONS = {"f": _X**2 + 1, "fp": 2 * _X, "g": sp.sin(_X) + 2, "gp": sp.cos(_X)}
_AS_FUNCTIONS = {name: sp.Lambda(_T, expr.subs(_X, _T)) for name, expr in _AS_EXPRESSIONS.items()}


def _published_formula(formula: str) -> tuple[sp.Symbol, sp.Expr, sp.Expr]:
    """(variable, function, claimed derivative) of a rules-table formula such as
    ``d/du tan(u) = 1 + tan(u)**2``, ``(f/g)' = (f'*g - f*g')/g**2`` or ``d max(f, g) = ...``."""
    text = re.sub(r"\s+\(.*\)$", "", formula)  # a trailing note: "(0 at u = 0)"
    text = re.sub(r"\|(\w+)\|", r"Abs(\1)", text)
    text = re.sub(r"\b([fg])'", r"\1p", text)
    left, right = text.split(" = ")
    if match := re.fullmatch(r"d/d([ux]) (.+)", left):
        name, body = match.groups()
    elif match := re.fullmatch(r"d (.+)", left) or re.fullmatch(r"\((.+)\)'", left):
        name, body = "x", match.group(1)
    else:
        raise AssertionError(f"unrecognised formula {formula!r}")
    applied = re.search(r"\b[fg]p?\(", text)
    names = {**_FORMULA_NAMES, **(_AS_FUNCTIONS if applied else _AS_EXPRESSIONS)}
    function = sp.parse_expr(body, local_dict=names)
    claimed = sp.parse_expr(right, local_dict=names)
    return _FORMULA_NAMES[name], function, claimed


def _at(expr: sp.Expr, variable: sp.Symbol, where: sp.Float) -> sp.Float:
    return sp.N(expr.subs(variable, where), 50)


def test_every_published_rule_formula_is_a_true_derivative() -> None:
    """Each formula of ``symdiff steps --list-rules --format json`` is checked against a central
    difference of its own left-hand side at 50 digits, at points away from kinks and poles."""
    published = json.loads(rules_table("json"))
    assert set(published) == {line.split()[0] for line in rules_table().splitlines()}
    step = sp.Float("1e-15", 50)
    for name, formula in published.items():
        variable, function, claimed = _published_formula(formula)
        for point in (1.3, 1.8, 2.5) if name == "acosh" else (0.3, 0.55, 0.8):
            at = sp.Float(point, 50)
            slope = (_at(function, variable, at + step) - _at(function, variable, at - step)) / (
                2 * step
            )
            expected = _at(claimed, variable, at)
            assert abs(slope - expected) <= 1e-12 * (1 + abs(expected)), (
                f"{name}: {formula} is false at {variable} = {point} "
                f"(central difference {float(slope)!r}, formula {float(expected)!r})"
            )


def test_ml_functions_use_their_own_rules() -> None:
    for text, rule in (("sigmoid(x)", "sigmoid"), ("relu(x)", "relu"), ("softplus(x)", "softplus")):
        (step,) = explain(text, "x").steps
        assert step.rule == rule


def test_json_shape() -> None:
    data = json.loads(explain("sin(x**2)", "x").render("json"))
    assert {"expression", "wrt", "result", "steps"} <= data.keys()
    assert data["result"] == "2*x*cos(x**2)"
    step = data["steps"][0]
    assert {"rule", "expression", "result", "substeps"} <= step.keys()
    assert step["substitution"] == {"variable": "u", "inner": "x**2"}
    assert [s["rule"] for s in step["substeps"]] == ["sin", "power"]


# --------------------------------------------------------------------------- formats


FORMAT_SAMPLES = [
    "2*x**3 + 5",
    "sin(x**2)",
    "x*sin(x)/(1 + x**2)",
    *ML_EXTRA[:4],
    "exp(-x**2)*cos(3*x)**2",
    "sqrt(1 + x**2)",
    "x**x",
]


@pytest.mark.parametrize("text", FORMAT_SAMPLES)
def test_text_fits_80_columns_and_latex_is_valid(text: str) -> None:
    derivation = explain(text, "x")
    assert max(len(line) for line in derivation.text().splitlines()) <= TEXT_WIDTH
    assert_valid_latex(derivation.latex())
    assert "\\begin{align*}" in derivation.latex()
    markdown = derivation.markdown()
    assert markdown.count("$") % 2 == 0
    assert derivation._repr_latex_() == derivation.latex()
    assert derivation._repr_markdown_() == markdown


def test_latex_checker_rejects_broken_latex() -> None:
    with pytest.raises(AssertionError):
        assert_valid_latex("\\begin{align*} x^{2 \\end{align*}")
    with pytest.raises(AssertionError):
        assert_valid_latex("\\begin{align*} x \\end{array}")


# --------------------------------------------------------------------------- goldens

SEED_STEPS = {
    "cubic": "2*x**3 + 5",
    "square": "x**2",
    "chain": "sin(x**2)",
    "logistic": "-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))",
}


@pytest.mark.parametrize("name", SEED_STEPS)
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "json"])
def test_golden_steps(name: str, fmt: str) -> None:
    wrt = "w" if name == "logistic" else "x"
    ext = {"text": "txt", "markdown": "md", "latex": "tex", "json": "json"}[fmt]
    assert_golden(f"steps_{name}.{ext}", explain(SEED_STEPS[name], wrt).render(fmt))


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "text,wrt",
    [
        ("2*x**3 + 5", "x"),
        ("sin(x**2)", "x"),
        ("x*exp(x)/(1 + x)", "x"),
        ("-y*log(sigmoid(w*x)) - (1 - y)*log(1 - sigmoid(w*x))", "w"),
        ("abs(x - 3)**2", "x"),
    ],
)
def test_final_answer_equals_symdiff_diff(text: str, wrt: str) -> None:
    runner = CliRunner()
    diff = runner.invoke(cli, ["diff", "--wrt", wrt, "--", text])
    steps = runner.invoke(cli, ["steps", "--wrt", wrt, "--format", "json", "--", text])
    assert diff.exit_code == 0 and steps.exit_code == 0, steps.output
    assert json.loads(steps.output)["result"] == diff.output.strip()
    text_steps = runner.invoke(cli, ["steps", "--wrt", wrt, "--", text])
    unwrapped = " ".join(text_steps.output.split())
    assert unwrapped.endswith(f"= {diff.output.strip()}")


def test_cli_list_rules_and_errors() -> None:
    runner = CliRunner()
    listing = runner.invoke(cli, ["steps", "--list-rules"])
    assert listing.exit_code == 0 and "chain" in listing.output
    missing = runner.invoke(cli, ["steps"])
    assert missing.exit_code == 2 and missing.output.startswith("Error: missing EXPR")
    bad = runner.invoke(cli, ["steps", "x**2", "--wrt", "z"])
    assert bad.exit_code == 2 and "Error: variable 'z'" in bad.output
    assert "Traceback" not in bad.output


def test_cli_in_a_real_subprocess() -> None:
    done = run_symdiff("steps", "sin(x**2)", "--wrt", "x")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "Answer: d/dx sin(x**2) = 2*x*cos(x**2)"


def test_seed_walkthrough_example_runs_and_shows_the_seed_numbers() -> None:
    script = Path(__file__).parent.parent / "examples" / "seed_walkthrough.py"
    done = run_python(str(script))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Answer: d/dx (2*x**3 + 5) = 6*x**2" in out
    assert "Answer: f'(x) = 6*x**2" in out and "Answer: f'(x) = 2*x" in out
    assert "6.00010000001" in out  # getDeriv(x**2, 3) with h = 1e-4
    assert "= 16*x**3*z**3" in out and "= 12*x**4*z**2" in out
    assert "dL/dW = -0.000370183728" in out
    assert "dL/dw = 2" in out and "dL/db = 1" in out
    assert "incorrect: 6*x differs" in out
    assert_whole_table(out)  # graph tables as wide as their formulas, never wrapped
    markdown = subprocess.run(
        [sys.executable, str(script), "--format", "markdown"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert markdown.returncode == 0 and "\\mathcal{L}" in markdown.stdout


def test_partial_derivative_says_which_variables_are_held_constant() -> None:
    """001_/000_: d/dz 4x^4 z^3 = 12 x^4 z^2 with x treated as a constant."""
    derivation = explain("4*x**4*z**3", "z")
    assert "rule by rule (x held constant)." in derivation.text().splitlines()[0]
    assert str(derivation.result) == "12*x**4*z**2"
    assert "held constant" not in explain("x**2", "x").text()


# --------------------------------------------------------------------------- teaching quality


def _chain_steps(step: Step) -> list[Step]:
    return [s for s in step.walk() if s.rule == "chain"]


def test_nested_chain_rules_use_distinct_letters() -> None:
    """sin(exp(x**2)): two substitutions, two letters (u and v), never u twice."""
    derivation = explain("sin(exp(x**2))", "x")
    chains = _chain_steps(derivation.steps[0])
    assert [str(c.variable) for c in chains] == ["u", "v"]
    text = derivation.text()
    assert "let u = exp(x**2), so sin(exp(x**2)) = sin(u)" in text
    assert "let v = x**2, so exp(x**2) = exp(v)" in text
    assert "d/dv exp(v) = exp(v)" in text


@pytest.mark.parametrize(
    "text,wrt",
    [
        ("sin(u*x**2) + v", "x"),
        ("log(sigmoid(w*x + b)) + u*v*s", "w"),
        ("exp(sin(cos(t*x)))*(u + v + w + s + r + q + p)", "x"),
        ("-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))", "w"),
    ],
)
def test_substitution_letters_never_clash(text: str, wrt: str) -> None:
    expression = parse(text)
    derivation = explain(expression, wrt)
    users = {s.name for s in expression.free_symbols}
    letters = [str(c.variable) for step in derivation.steps for c in _chain_steps(step)]
    assert letters, text
    assert len(set(letters)) == len(letters), letters
    assert not users & set(letters), letters
    symbols = sorted(expression.free_symbols, key=lambda s: s.name)
    for point in sample_points(symbols, {"y": (0.1, 0.9)}, (0.2, 0.9), 1, text):
        for step in derivation.steps:
            _check_steps(step, {}, point, [])


def test_chain_rule_is_written_in_the_variable_of_the_step() -> None:
    text = explain("sin(w**2)", "w").text()
    assert "rule: d/dw f(g(w)) = f'(g(w)) * g'(w)" in text
    assert "d/dx" not in text


def test_partial_derivatives_use_the_partial_sign() -> None:
    """001_: d/dz 4x^4z^3 is a partial derivative: ∂/∂z, and ∂ in the rules shown."""
    text = explain("4*x**4*z**3", "z").text()
    assert "∂/∂z" in text and "d/dz" not in text
    assert text.splitlines()[-1] == "Answer: ∂/∂z (4*x**4*z**3) = 12*x**4*z**2"
    chain = explain("sin(x*y)", "y").text()
    assert "rule: ∂f(g)/∂y = f'(g) * ∂g/∂y" in chain
    assert "d/du sin(u) = cos(u)" in chain  # the outer derivative is by u alone
    assert "∂" not in explain("sin(x**2)", "x").text()
    assert json.loads(explain("x*y", "x").render("json"))["partial"] is True
    assert "\\partial" in explain("x*y", "x").latex()


def test_product_and_quotient_show_the_substituted_rule() -> None:
    product = explain("x*sin(x)", "x").text()
    assert "so d/dx (x*sin(x)) = 1*sin(x) + x*cos(x) = x*cos(x) + sin(x)" in product
    quotient = " ".join(explain("sin(x)/x", "x").text().split())
    assert "so d/dx (sin(x)/x) = (cos(x)*x - sin(x)*1)/x**2 =" in quotient


def test_indentation_is_three_columns_per_level() -> None:
    text = explain("-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))", "w").text()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)(\d+(?:\.\d+)*)\. ", line)
        if not match or line.startswith(("2. simplify",)):
            continue
        depth = match.group(2).count(".")
        assert len(match.group(1)) == 3 * depth, line
        body = lines[index + 1] if index + 1 < len(lines) else ""
        if body.lstrip().startswith(("rule:", "let ")):
            assert len(body) - len(body.lstrip()) == 3 * (depth + 1), body


def _formulas_agree(left: str, right: str, point: dict) -> None:
    a, b = parse(left), parse(right)
    va = high_precision(to_elementary(a), point)
    vb = high_precision(to_elementary(b), point)
    assert close(va, vb, 1e-10), f"{left} != {right}"


@pytest.mark.parametrize("text", FORMAT_SAMPLES + ["sin(exp(x**2))", "x**3/(x + 1)**2"])
def test_every_formula_of_a_derivation_parses_back(text: str) -> None:
    """Each 'd/dx E = R', 'so d/dx E = A = R', 'multiply: A = R', 'let u = I, so E = F' line
    parses back with symdiff's parser to formulas that agree; the JSON formulas too."""
    expression = parse(text)
    derivation = explain(expression, "x")
    symbols = sorted(expression.free_symbols, key=lambda s: s.name)
    (point,) = sample_points(symbols, {"y": (0.1, 0.9)}, (0.3, 0.9), 1, f"parse:{text}")
    checked = 0
    for line in unwrapped(derivation.text()):
        body = re.sub(r"^(\d+(?:\.\d+)*\. [^:]*: |so |multiply: )", "", line)
        if body.startswith("let "):
            letter, inner = body.removeprefix("let ").split(" = ", 1)
            inner, same = inner.split(", so ")
            before, after = same.split(" = ")
            substituted = parse(after).subs(make_symbol(letter), parse(inner))
            _formulas_agree(before, formula_text(substituted), point)
            checked += 1
            continue
        match = re.match(r"^[d∂]/[d∂](\w+) ", body)
        if match is None and not line.startswith("multiply: "):
            continue
        parts = body.split(" = ")
        if match is not None:
            parts[0] = parts[0][match.end() :]
            parse(parts[0])
            parts = parts[1:]
        if match is not None and match.group(1) not in {s.name for s in symbols}:
            for part in parts:
                parse(part)  # an outer step, in its own letter
            continue
        for left, right in zip(parts, parts[1:], strict=False):
            _formulas_agree(left, right, point)
            checked += 1
    assert checked >= 1

    def walk(data: dict) -> None:
        parse(data["expression"])
        parse(data["result"])
        if "applied" in data and data["wrt"] in {s.name for s in symbols}:
            _formulas_agree(data["applied"], data["result"], point)
        for sub in data["substeps"]:
            walk(sub)

    for step in json.loads(derivation.render("json"))["steps"]:
        walk(step)
