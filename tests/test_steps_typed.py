"""Rule-by-rule steps follow the expression as typed: operand order, subtraction, parentheses."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from parse_back_support import assert_parses_back
from process_support import run_symdiff

from symdiff.calculus.api import derive
from symdiff.explanations.applied import applied
from symdiff.explanations.derivation import explain
from symdiff.frontend.parse import parse, typed_tree
from symdiff.text import formula


def test_steps_follow_the_typed_order() -> None:
    """`w*x + b` is shown as typed, its sum rule lists w*x then b; the answer is diff's."""
    result = run_symdiff("steps", "w*x + b", "--wrt", "w")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Differentiate w*x + b with respect to w")
    assert "1. sum: ∂/∂w (w*x + b)" in lines
    first, second = (i for i, line in enumerate(lines) if line.startswith("   1."))
    assert "∂/∂w (w*x)" in lines[first] and lines[second] == "   1.2. constant: ∂/∂w b = 0"
    diff = run_symdiff("diff", "w*x + b", "--wrt", "w")
    assert lines[-1] == f"Answer: ∂/∂w (w*x + b) = {diff.stdout.strip().splitlines()[-1]}"


def test_steps_keep_a_typed_subtraction_and_its_parentheses() -> None:
    """`y_true - (w*x + b)` stays a difference of y_true and the sum in parentheses."""
    text = explain("(y_true - (w*x + b))**2", "w").text()
    assert "let u = y_true - (w*x + b), so (y_true - (w*x + b))**2 = u**2" in text
    assert "1.2. inner, sum: ∂/∂w (y_true - (w*x + b))" in text
    assert "so ∂/∂w (y_true - (w*x + b)) = 0 - x = -x" in text
    assert "-b - w*x + y_true" not in text


def test_a_sympy_expression_keeps_its_own_order() -> None:
    """derive(SymPy) records SymPy's order; derive(text) the typed one; same result."""
    typed, canonical = derive("w*x + b", "w"), derive(parse("w*x + b"), "w")
    assert [s.text() for s in typed.steps[0].substeps] == ["w*x", "b"]
    assert [s.text() for s in canonical.steps[0].substeps] == ["b", "w*x"]
    assert typed.result == canonical.result
    assert repr(typed.steps[0]) == "Step(sum: d/dw (w*x + b) = x; 2 substeps)"
    assert repr(canonical.steps[0]) == "Step(sum: d/dw (b + w*x) = x; 2 substeps)"


_NAMES = st.sampled_from(["a", "x", "x", "2", "3", "pi"])


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    two = st.tuples(children, children)
    return st.one_of(
        two.map(lambda p: f"{p[0]} + {p[1]}"),
        two.map(lambda p: f"{p[0]} - ({p[1]})"),
        two.map(lambda p: f"({p[0]})*({p[1]})"),
        two.map(lambda p: f"({p[0]})/(2 + ({p[1]})**2)"),
        children.map(lambda u: f"-({u})"),
        children.map(lambda u: f"({u})**3"),
        children.map(lambda u: f"sqrt(1 + ({u})**2)"),
        two.map(lambda p: f"abs({p[0]} - ({p[1]}))"),
        st.tuples(st.sampled_from(["exp", "sin", "tanh", "sigmoid"]), children).map(
            lambda p: f"{p[0]}({p[1]})"
        ),
    )


TEXTS = st.recursive(_NAMES, _grow, max_leaves=6).filter(
    lambda t: "x" in {s.name for s in parse(t).free_symbols}
)


def _spacing(text: str) -> str:
    return re.sub(r"\s+", "", text)


@settings(max_examples=25, deadline=None)
@given(TEXTS)
def test_steps_of_random_typed_expressions(text: str) -> None:
    """The first step is the typed text; every step's expression and applied rule parse back;
    the raw derivative equals the answer."""
    explanation = explain(text, "x")
    first = explanation.steps[0]
    assert _spacing(first.text()) == _spacing(typed_tree(text).text())
    for step in first.walk():
        assert_parses_back(step.text(), step.expression)
        assert_parses_back(step.operand_text(), step.expression)
        shown = applied(step)
        if shown is not None:
            assert_parses_back(shown.text, step.result)
    assert_parses_back(formula(first.result), explanation.result)


# --------------------------------------------------------------------------- LaTeX as typed

TYPED_LATEX = {
    "abs(y_true - (w*x + b))": r"\left|y_{true} - \left(w x + b\right)\right|",
    "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))": (
        r"-y \log\left(\sigma\left(b_{0} + b_{1} x\right)\right) - \left(1 - y\right) "
        r"\log\left(1 - \sigma\left(b_{0} + b_{1} x\right)\right)"
    ),
    "1/(1 + exp(-x))": r"\frac{1}{1 + e^{-x}}",
    "3/(2*x + 1)": r"\frac{3}{2 x + 1}",
    "(a + b)/(c - d)*(e + f)": r"\frac{\left(a + b\right) \left(e + f\right)}{c - d}",
    "sqrt(x)*sin(x)**2 + log(x, 10)": (
        r"\sqrt{x} \left(\sin\left(x\right)\right)^{2} + \log_{10}\left(x\right)"
    ),
    "2*3*x - (-x)": r"2 \cdot 3 x - \left(-x\right)",
}


def test_typed_latex_of_textbook_expressions() -> None:
    for text, latex in TYPED_LATEX.items():
        assert typed_tree(text).latex() == latex, text


def _first_appearances(text: str, names: list[str]) -> list[str]:
    found = {name: match.start() for name in names if (match := re.search(name, text))}
    return sorted(found, key=found.__getitem__)


_LETTERS = ["p", "q", "v", "w", "y", "z"]  # none is a letter of a LaTeX command used here
_OPS = st.lists(st.sampled_from(["+", "-", "*"]), min_size=5, max_size=5)


@settings(max_examples=60, deadline=None)
@given(st.permutations(_LETTERS), _OPS)
def test_typed_latex_keeps_the_typed_order_of_operands(letters: list[str], ops: list[str]) -> None:
    """Without divisions, each letter first appears in the LaTeX where it was typed, and the
    LaTeX steps and answer of `steps` show the expression so (not in SymPy's order)."""
    pairs = zip(ops, letters[1:], strict=True)
    text = letters[0] + "".join(f" {op} {letter}" for op, letter in pairs)
    latex = typed_tree(text).latex()
    assert _first_appearances(latex, _LETTERS) == letters
    derivation = explain(text, letters[-1])
    for rendered in (derivation.latex(), derivation.markdown()):
        assert latex in rendered
