"""How calculus results show themselves in a notebook and in a console: ``Derivation``, ``Step``
and the ``Gradient`` list of ``symdiff.gradient`` (symdiff/calculus/display.py), and the
objects of the README's library example."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from parse_back_support import assert_parses_back
from process_support import run_python

import symdiff
from symdiff.calculus.api import split_top_level
from symdiff.calculus.display import Gradient
from symdiff.errors import InputError
from symdiff.frontend.parse import parse
from symdiff.text import formula

x, y, z = sp.symbols("x y z", real=True)


def test_explain_is_callable() -> None:
    """``symdiff.explain(expr, wrt)`` is the function (the wing is ``symdiff.explanations``)."""
    result = run_python(
        "-c",
        "import symdiff; print(symdiff.explain('sin(x**2)', 'x').render('text'))",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Answer: d/dx sin(x**2) = 2*x*cos(x**2)" in result.stdout


# --------------------------------------------------------------------------- Gradient


def test_gradient_is_still_a_list() -> None:
    grad = symdiff.gradient("4*x**4*z**3")
    expected = [16 * x**3 * z**3, 12 * x**4 * z**2]
    assert isinstance(grad, list) and isinstance(grad, Gradient)
    assert grad == expected and expected == grad and list(grad) == expected
    assert grad[0] == expected[0] and grad[-1:] == expected[1:] and len(grad) == 2
    assert [str(g) for g in grad] == ["16*x**3*z**3", "12*x**4*z**2"]
    assert json.dumps([str(g) for g in grad]) == '["16*x**3*z**3", "12*x**4*z**2"]'
    assert grad.variables == (x, z) and grad.expression == 4 * x**4 * z**3
    for clone in (pickle.loads(pickle.dumps(grad)), copy.deepcopy(grad), copy.copy(grad)):
        assert clone == grad and clone.variables == (x, z) and isinstance(clone, Gradient)


def test_gradient_repr_is_the_list_of_formulas() -> None:
    assert repr(symdiff.gradient("4*x**4*z**3")) == "[16*x**3*z**3, 12*x**4*z**2]"
    # symdiff's spelling, not SymPy's: abs, not Abs; e, not E
    assert repr(symdiff.gradient("abs(x)*e**y")) == "[exp(y)*sign(x), exp(y)*abs(x)]"
    assert repr(Gradient()) == "[]"


def test_gradient_displays_as_nabla_f() -> None:
    grad = symdiff.gradient("4*x**4*z**3")
    assert grad._repr_latex_() == (
        r"$\displaystyle \nabla_{(x, z)}\left(4 x^{4} z^{3}\right) = "
        r"\begin{bmatrix} 16 x^{3} z^{3} \\ 12 x^{4} z^{2} \end{bmatrix}$"
    )
    assert grad._repr_markdown_().splitlines() == [
        r"- $\frac{\partial}{\partial x} 4 x^{4} z^{3} = 16 x^{3} z^{3}$",
        r"- $\frac{\partial}{\partial z} 4 x^{4} z^{3} = 12 x^{4} z^{2}$",
    ]
    bare = Gradient([2 * x])  # built by hand: no expression, no variables
    assert bare._repr_latex_() == r"$\displaystyle \nabla = \begin{bmatrix} 2 x \end{bmatrix}$"
    assert bare._repr_markdown_() == "- $2 x$"


ATOMS = st.sampled_from(["x", "y", "2", "3", "0.5", "pi"])


def _compose(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.sampled_from(["sin", "exp", "abs", "sigmoid", "relu", "tanh", "-"])
    binary = st.sampled_from(["+", "-", "*"])
    return st.one_of(
        st.tuples(unary, children).map(
            lambda t: f"-({t[1]})" if t[0] == "-" else f"{t[0]}({t[1]})"
        ),
        st.tuples(children, binary, children).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        st.tuples(children, st.integers(2, 3)).map(lambda t: f"({t[0]})**{t[1]}"),
        st.tuples(children, children).map(lambda t: f"max({t[0]}, {t[1]})"),
    )


EXPRESSIONS = st.recursive(ATOMS, _compose, max_leaves=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_gradient_repr_parses_back_to_its_entries(text: str) -> None:
    """Each entry of the repr, read by symdiff's own parser, is that entry of the gradient."""
    try:
        grad = symdiff.gradient(text, simplify=False)
    except InputError:  # no variables left (e.g. 'x - x' folds to 0)
        assume(False)
        return
    shown = repr(grad)
    assert shown.startswith("[") and shown.endswith("]")
    parts = split_top_level(shown[1:-1])
    assert len(parts) == len(grad)
    for part, entry in zip(parts, grad, strict=True):
        assert_parses_back(part.strip(), entry)


# --------------------------------------------------------------------------- Derivation, Step


def test_derivation_repr_is_one_short_line() -> None:
    d = symdiff.derive("2*x**3 + 5", "x")
    assert repr(d) == "Derivation(d/dx (2*x**3 + 5) = 6*x**2; 1 step)"
    mixed = symdiff.derive("x**2*y", "x,y")  # by x, then by y
    assert repr(mixed) == "Derivation(d/dy d/dx (x**2*y) = 2*x; 2 steps)"
    assert repr(symdiff.derive("x**3", "x", 0)) == "Derivation(x**3 = x**3; 0 steps)"
    # the formula after '=' reads back to the result
    long = symdiff.derive("-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))", "b0")
    assert parse(repr(long).split(" = ", 1)[1].rsplit(";", 1)[0]) == long.result
    # one line: the equation and a count, never the step records themselves
    assert "\n" not in repr(long) and "Step" not in repr(long)
    assert len(repr(long)) <= len(formula(long.expression)) + len(formula(long.result)) + 40


def test_derivation_latex_and_markdown() -> None:
    d = symdiff.derive("sin(x**2)", "x")
    assert d._repr_latex_() == (
        r"$\displaystyle \frac{d}{d x} \sin{\left(x^{2} \right)} = 2 x \cos{\left(x^{2} \right)}$"
    )
    assert d._repr_markdown_().splitlines() == [
        r"**Derivative:** $\frac{d}{d x} \sin{\left(x^{2} \right)} = "
        r"2 x \cos{\left(x^{2} \right)}$",
        "",
        "1. differentiate by $x$:",
        r"   - *chain*: $\frac{d}{d x} \sin{\left(x^{2} \right)} = 2 x \cos{\left(x^{2} \right)}$",
        "     - let $u = x^{2}$",
        r"     - *sin*: $\frac{d}{d u} \sin{\left(u \right)} = \cos{\left(u \right)}$",
        r"     - *power*: $\frac{d}{d x} x^{2} = 2 x$",
    ]
    mixed = symdiff.derive("x**2*y", "x,y")
    assert r"\frac{\partial^{2}}{\partial y\partial x} x^{2} y = 2 x" in mixed._repr_latex_()
    assert "2. differentiate by $y$:" in mixed._repr_markdown_()


def test_derivation_markdown_shows_the_simplification() -> None:
    d = symdiff.derive("x*exp(x) + exp(x)", "x")
    assert d.raw != d.result
    last = d._repr_markdown_().splitlines()[-1]
    assert last == (rf"2. simplify: ${sp.latex(d.raw)} = {sp.latex(d.result)}$") and "e^{x}" in last
    unchanged = symdiff.derive("2*x**3 + 5", "x")
    assert "simplify" not in unchanged._repr_markdown_()


def test_step_displays() -> None:
    step = symdiff.derive("sin(x**2)", "x").steps[0]
    assert repr(step) == "Step(chain: d/dx sin(x**2) = 2*x*cos(x**2); 2 substeps)"
    assert repr(step.substeps[1]) == "Step(power: d/dx x**2 = 2*x; 0 substeps)"
    assert step._repr_latex_() == (
        r"$\displaystyle \frac{d}{d x} \sin{\left(x^{2} \right)} = "
        r"2 x \cos{\left(x^{2} \right)} \qquad \text{(chain)}$"
    )
    assert step._repr_markdown_().splitlines()[1:] == [
        "  - let $u = x^{2}$",
        r"  - *sin*: $\frac{d}{d u} \sin{\left(u \right)} = \cos{\left(u \right)}$",
        r"  - *power*: $\frac{d}{d x} x^{2} = 2 x$",
    ]
    multiple = symdiff.derive("3*x**2", "x").steps[0]
    assert multiple._repr_latex_().endswith(r"\qquad \text{(constant\_multiple)}$")
    assert multiple._repr_markdown_().startswith("- *constant multiple*: ")
    # the display methods change nothing about equality or hashing
    again = symdiff.derive("sin(x**2)", "x").steps[0]
    assert again == step and hash(again) == hash(step)


# --------------------------------------------------------------------------- the README's objects


def test_readme_library_results_display_in_a_notebook() -> None:
    """Every object the README's library example returns: a short repr (SymPy writes a matrix
    one row a line) and LaTeX for Jupyter (SymPy's own ``_repr_latex_`` for expressions and
    matrices)."""
    results = {
        "derivative": symdiff.derivative("2*x**3 + 5", "x"),
        "gradient": symdiff.gradient("4*x**4*z**3"),
        "hessian": symdiff.hessian("x**3*y + y**2"),
        "directional": symdiff.directional_derivative("x**2*y + z", [2, 3, -1]),
        "evaluate": symdiff.evaluate(symdiff.derivative("x**2", "x"), "x=3"),
        "derive": symdiff.derive("sin(x**2)", "x"),
        "step": symdiff.derive("sin(x**2)", "x").steps[0],
    }
    for name, value in results.items():
        shown = repr(value)
        lines = 3 if name == "hessian" else 1  # 'Matrix([' and one line per row
        assert len(shown) < 100 and len(shown.splitlines()) == lines, (name, shown)
        latex = value._repr_latex_()
        assert latex.startswith("$") and latex.endswith("$") and len(latex) > 2, name
    assert str(results["hessian"]) == "Matrix([[6*x*y, 3*x**2], [3*x**2, 2]])"  # as in the README
    assert results["evaluate"] == 6


@pytest.mark.parametrize(
    ("make", "start"),
    [
        (lambda: symdiff.explain("sin(x**2)", "x"), "<Explanation: Differentiate sin(x**2)"),
        (lambda: symdiff.limit_derivation("1/x", "x"), "<LimitDerivation: Differentiate 1/x"),
        (lambda: symdiff.build_graph("w*x", "w", at="w=2,x=3"), "<Graph: Computational graph of L"),
        (lambda: symdiff.check_answer("x**2", "x", "2*x"), "<CheckResult: d/dx"),
    ],
)
def test_explanations_have_a_one_line_repr(make, start: str) -> None:
    shown = repr(make())
    assert shown.startswith(start) and shown.endswith(">"), shown
    assert "\n" not in shown and len(shown) <= 130
