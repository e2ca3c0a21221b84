"""The derivative corpus: textbook rules and ML losses, each checked three ways.

For every (expression, variable):

(a) symdiff's own chain-rule engine (``differentiate(...).result``, unsimplified) and the simplified
    ``symdiff.derivative`` agree with ``sympy.diff`` of the same expression AND with ``sympy.diff``
    of ``to_elementary(expr)`` (which never calls symdiff's fdiff), at random points of the
    function's domain, evaluated with 30 digits;
(b) float64 central finite differences of the elementary form agree with our derivative.

Then second derivatives, mixed partials, gradient, Jacobian, Hessian, directional derivative and
exact evaluation, including the worked examples of the source documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
import sympy as sp
from derivative_oracles import (
    Interval,
    assert_matches_finite_differences,
    assert_same_function,
    high_precision,
    sample_points,
    sorted_symbols,
)

import symdiff
from symdiff.calculus.api import evaluate, unit_vector
from symdiff.calculus.differentiate import differentiate
from symdiff.errors import InputError
from symdiff.frontend.parse import make_symbol, parse
from symdiff.functions import to_elementary

POSITIVE: Interval = (0.2, 3.0)
UNIT: Interval = (-0.9, 0.9)
PROBABILITY: Interval = (0.05, 0.95)


@dataclass(frozen=True)
class Case:
    """An expression, the variables to differentiate by, and where it is defined."""

    text: str
    wrt: tuple[str, ...] = ("x",)
    default: Interval = (-2.0, 2.0)
    domain: Mapping[str, Interval] = field(default_factory=dict)


def case(text: str, *wrt: str, default: Interval = (-2.0, 2.0), **domain: Interval) -> Case:
    return Case(text, wrt or ("x",), default, domain)


TEXTBOOK = [
    # constants and linear functions
    case("5"),
    case("pi**2"),
    case("e"),
    case("y", default=(-2, 2), x=(-1, 1)),
    case("2*y**2 + sin(y)"),
    case("x"),
    case("-x"),
    case("3*x"),
    case("x + 1"),
    case("x/3"),
    case("2x + 3(x + 1)"),
    case("2 pi x"),
    # powers: positive, negative, fractional, symbolic exponents
    case("x**2"),
    case("x^3"),
    case("x**10"),
    case("2*x**3 + 5"),
    case("x**-1", default=POSITIVE),
    case("x**(-3)", default=POSITIVE),
    case("1/x**2", default=POSITIVE),
    case("x**(1/2)", default=POSITIVE),
    case("x**(3/2)", default=POSITIVE),
    case("x**(2/3)", default=POSITIVE),
    case("x**(-1/2)", default=POSITIVE),
    case("x**2.5", default=POSITIVE),
    case("x**pi", default=POSITIVE),
    case("x**e", default=POSITIVE),
    case("x**x", default=POSITIVE),
    case("x**y", "x", "y", default=POSITIVE),
    case("y**x", "x", "y", default=POSITIVE),
    case("2**x"),
    case("e**x"),
    case("10**(x**2)", default=(-1, 1)),
    case("x**(x**2)", default=POSITIVE),
    case("(x**2 + 1)**x"),
    case("x**sin(x)", default=POSITIVE),
    case("(1 + x)**(1/x)", default=POSITIVE),
    case("(2*x + 1)**5"),
    case("(x**2 - 3*x + 1)**3"),
    case("(x + 1)*(x - 1)"),
    # products and quotients
    case("x*(x + 1)*(x + 2)"),
    case("x*sin(x)"),
    case("x**2*exp(x)"),
    case("sin(x)*cos(x)"),
    case("exp(x)*log(x)", default=POSITIVE),
    case("x*exp(x)*sin(x)"),
    case("x*y", "x", "y"),
    case("1/x", default=POSITIVE),
    case("x/(x + 1)", default=POSITIVE),
    case("(x**2 + 1)/(x - 3)"),
    case("sin(x)/x", default=POSITIVE),
    case("exp(x)/(1 + exp(x))"),
    case("(x + y)/(x - y)", "x", "y", x=(-2, 2), y=(3, 5)),
    case("1/(1 + x**2)"),
    case("x/sqrt(1 + x**2)"),
    case("(x*y + 1)/(x**2*y**2 + 1)", "x", "y"),
    # chain rule
    case("sin(x**2)"),
    case("exp(-x**2)"),
    case("sin(cos(x))"),
    case("exp(sin(x))"),
    case("log(cos(x))", default=(-1.2, 1.2)),
    case("sqrt(1 + x**2)"),
    case("sin(x)**2"),
    case("cos(x)**3"),
    case("sin(exp(x))"),
    case("cos(2*x + 1)**2"),
    # exp and log
    case("exp(x)"),
    case("exp(2*x)"),
    case("exp(x*y)", "x", "y"),
    case("log(x)", default=POSITIVE),
    case("ln(x)", default=POSITIVE),
    case("log(2*x)", default=POSITIVE),
    case("log(x**2 + 1)"),
    case("log(x, 2)", default=POSITIVE),
    case("log(x, y)", "x", "y", x=POSITIVE, y=(1.5, 4)),
    case("log2(x)", default=POSITIVE),
    case("log10(x)", default=POSITIVE),
    case("log(log(x))", default=(1.5, 4)),
    case("x*log(x)", default=POSITIVE),
    case("log(abs(x))", default=(0.3, 3)),
    # trigonometric
    case("sin(x)"),
    case("cos(x)"),
    case("tan(x)", default=(-1.2, 1.2)),
    case("sec(x)", default=(-1.2, 1.2)),
    case("csc(x)", default=(0.2, 3)),
    case("cot(x)", default=(0.2, 3)),
    case("sin(2*x)"),
    case("tan(x**2)", default=(-1, 1)),
    case("sec(x)*tan(x)", default=(-1, 1)),
    case("cos(x)/(2 + sin(x))"),
    # hyperbolic
    case("sinh(x)"),
    case("cosh(x)"),
    case("tanh(x)"),
    case("sinh(x**2)"),
    case("tanh(2*x + 1)"),
    case("cosh(x)**2 - sinh(x)**2"),
    # inverse trigonometric and hyperbolic
    case("asin(x)", default=UNIT),
    case("acos(x)", default=UNIT),
    case("atan(x)"),
    case("asin(x/2)", default=(-1.8, 1.8)),
    case("acos(x**2)", default=UNIT),
    case("atan(1/x)", default=POSITIVE),
    case("atan(sqrt(1 + x**2))"),
    case("asinh(x)"),
    case("acosh(x)", default=(1.2, 4)),
    case("atanh(x)", default=UNIT),
    case("asinh(x**2 + y)", "x", "y"),
    # abs, sign, sqrt
    case("abs(x)"),
    case("abs(x - 1)"),
    case("abs(x**3 - 2)"),
    case("x*abs(x)"),
    case("abs(sin(x))"),
    case("sign(x)*x**2"),
    case("sqrt(x)", default=POSITIVE),
    case("1/sqrt(x)", default=POSITIVE),
    case("sqrt(sin(x)**2 + 1)"),
    case("sqrt(x**2 + y**2)", "x", "y", x=(0.5, 2), y=(0.5, 2)),
    # erf, log1p, expm1
    case("erf(x)"),
    case("erf(x**2)"),
    case("erf(2*x + 1)"),
    case("exp(-x**2)*erf(x)"),
    case("log1p(x)", default=(-0.5, 2)),
    case("expm1(x)"),
    case("log1p(exp(x))"),
    case("expm1(-x**2)"),
    case("log1p(x**2)"),
    case("expm1(sin(x))*log1p(x**2)"),
    # min and max
    case("max(x, 0)"),
    case("min(x, 1)"),
    case("max(x, y)", "x", "y"),
    case("max(x, x**2)", default=(-2, 2)),
    case("min(sin(x), cos(x))"),
    case("max(x, y, z)", "x", "y", "z"),
]

ML = [
    # sigmoid and binary cross-entropy
    case("sigmoid(x)"),
    case("logistic(x)"),
    case("sigmoid(w*x + b)", "w", "b"),
    case("sigmoid(x)**2"),
    case("log(sigmoid(x))"),
    case("log(1 - sigmoid(x))"),
    case("-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b))", "w", "b", y=(0, 1)),
    case("-y*log(p) - (1 - y)*log(1 - p)", "p", p=PROBABILITY, y=(0, 1)),
    case("-y*log(1/(1 + exp(-w*x))) - (1 - y)*log(1 - 1/(1 + exp(-w*x)))", "w", y=(0, 1)),
    case("-(1 - sigmoid(x))**2*log(sigmoid(x))"),
    case("-p*log(p) - (1 - p)*log(1 - p)", "p", p=PROBABILITY),
    # squared and absolute error
    case("(y - (w*x + b))**2", "w", "b"),
    case("(y - w*x)**2/2", "w"),
    case("(sigmoid(w*x) - y)**2", "w"),
    case("w**2 + (y - w*x)**2", "w"),
    case("abs(y - (w*x + b))", "w", "b"),
    case("abs(y - w*x)/(1 + abs(y))", "w", "y"),
    # softplus, logistic loss, log-sum-exp, hinge-like smooth losses
    case("softplus(x)"),
    case("softplus(w*x + b)", "w", "b"),
    case("softplus(-y*w*x)", "w", "y"),
    case("log(1 + exp(-y*w*x))", "w"),
    case("softplus(1 - y*w*x)", "w"),
    case("log(1 + exp(1 - y*w*x))", "w"),
    case("relu(1 - y*w*x)", "w"),
    case("relu(1 - y*w*x)**2", "w"),
    case("logsumexp(x, y)", "x", "y"),
    case("logsumexp(x, 2*x)"),
    case("logsumexp(w*x, b, 0)", "w", "b"),
    case("log(exp(x) + exp(y))", "x", "y"),
    case("-log(exp(a)/(exp(a) + exp(b)))", "a", "b"),
    # Poisson NLL, Gaussian NLL, KL
    case("exp(w*x) - y*w*x", "w", y=(0, 5)),
    case("lam - y*log(lam)", "lam", lam=POSITIVE, y=(0, 5)),
    case("log(s) + (y - m)**2/(2*s**2)", "m", "s", s=POSITIVE),
    case("p*log(p/q)", "p", "q", default=POSITIVE),
    # Huber-like pieces
    case("sqrt(1 + (y - w*x)**2) - 1", "w"),
    case("d**2*(sqrt(1 + ((y - x)/d)**2) - 1)", "x", "d", d=POSITIVE),
    case("log(cosh(y - w*x))", "w"),
    case("min(abs(x), 1)**2/2 + max(abs(x) - 1, 0)", default=(-3, 3)),
    # activations
    case("relu(x)"),
    case("relu(w*x + b)", "w", "b"),
    case("relu(x)**2"),
    case("max(x, 0.01*x)"),
    case("gelu(x)"),
    case("gelu(w*x + b)", "w"),
    case("silu(x)"),
    case("swish(x)"),
    case("x*sigmoid(x)"),
    case("0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))"),
    case("x*tanh(softplus(x))"),
    case("x/(1 + abs(x))"),
    case("softplus(x) - log(2)"),
    # nested compositions
    case("sigmoid(sigmoid(x))"),
    case("softplus(tanh(sigmoid(x)))"),
    case("log(1 + exp(sin(x**2)))"),
    case("exp(-softplus(x))"),
    case("tanh(v*tanh(w*x + b) + c)", "w", "b", "v", "c"),
    case("sigmoid(v*relu(w*x) + c)", "w", "v"),
    case("(sigmoid(v*tanh(w*x)) - y)**2", "w", "v"),
    case("log1p(exp(-abs(x))) + max(x, 0)"),
    case("expm1(softplus(x))/sigmoid(x)"),
    case("erf(sigmoid(x) - 1/2)*gelu(x)"),
    # several variables (the seeds)
    case("4*x**4*z**3", "x", "z"),
    case("x*y*z", "x", "y", "z"),
    case("x**2*y**3*z", "x", "y", "z"),
    case("exp(x*y*z)", "x", "y", "z", default=(-1, 1)),
    case("sin(x + y)*cos(x - y)", "x", "y"),
]

CORPUS = TEXTBOOK + ML
PAIRS = [(c, v) for c in CORPUS for v in c.wrt]


def _points(c: Case, expr: sp.Expr, count: int = 3) -> list[dict[sp.Symbol, float]]:
    symbols = sorted_symbols(expr)
    return sample_points(symbols, c.domain, c.default, count, seed=c.text)


def test_corpus_is_large_enough() -> None:
    assert len(PAIRS) >= 150
    assert len({c.text for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("c", "name"), PAIRS, ids=[f"{c.text} d/d{v}" for c, v in PAIRS])
def test_engine_agrees_with_sympy_and_finite_differences(c: Case, name: str) -> None:
    expr = parse(c.text)
    wrt = make_symbol(name)
    raw = differentiate(expr, wrt).result
    if wrt not in expr.free_symbols:
        # d/dx of a constant is 0; the API refuses to differentiate by an absent variable
        assert raw == 0
        with pytest.raises(InputError, match=f"variable '{name}' does not occur"):
            symdiff.derivative(expr, name)
        return
    simplified = symdiff.derivative(expr, name)
    assert not raw.has(sp.Derivative) and not simplified.has(sp.Derivative)
    points = _points(c, expr)
    reference = sp.diff(expr, wrt)
    independent = sp.diff(to_elementary(expr), wrt)
    assert_same_function(raw, reference, points, f"raw vs sympy.diff ({c.text})")
    assert_same_function(raw, independent, points, f"raw vs elementary sympy.diff ({c.text})")
    assert_same_function(simplified, reference, points, f"simplified ({c.text})")
    assert_matches_finite_differences(expr, raw, [wrt], points, 1e-6, c.text)


SECOND_ORDER = [
    case("x**5"),
    case("sin(x)*exp(x)"),
    case("sigmoid(x)"),
    case("softplus(w*x + b)", "w"),
    case("log(1 + x**2)"),
    case("x**x", default=POSITIVE),
    case("gelu(x)"),
    case("tanh(x)**2"),
    case("atan(x)/x", default=POSITIVE),
    case("-y*log(sigmoid(w*x)) - (1 - y)*log(1 - sigmoid(w*x))", "w", y=(0, 1)),
]


@pytest.mark.parametrize("c", SECOND_ORDER, ids=[c.text for c in SECOND_ORDER])
def test_second_derivative(c: Case) -> None:
    expr, wrt = parse(c.text), make_symbol(c.wrt[0])
    ours = symdiff.derivative(expr, c.wrt[0], order=2)
    raw = symdiff.derive(expr, c.wrt[0], order=2, simplify=False).raw
    points = _points(c, expr)
    assert_same_function(ours, sp.diff(expr, wrt, 2), points, c.text)
    assert_same_function(raw, sp.diff(to_elementary(expr), wrt, 2), points, c.text)
    assert_matches_finite_differences(expr, ours, [wrt, wrt], points, 1e-4, c.text)


def test_third_derivative_of_a_polynomial_is_exact() -> None:
    assert symdiff.derivative("x**5 - 2*x**3", "x", order=3) == 60 * make_symbol("x") ** 2 - 12
    assert symdiff.derivative("x**2", "x", order=3) == 0


MIXED = [
    case("x**2*y**3", "x", "y"),
    case("exp(x*y)", "x", "y"),
    case("sin(x)*cos(y) + x*y**2", "x", "y"),
    case("sigmoid(w*x + b)", "w", "b"),
    case("log(x**2 + y**2 + 1)", "x", "y"),
    case("softplus(x*y - z)", "x", "z"),
]


@pytest.mark.parametrize("c", MIXED, ids=[c.text for c in MIXED])
def test_mixed_partials(c: Case) -> None:
    expr = parse(c.text)
    first, second = (make_symbol(n) for n in c.wrt)
    ours = symdiff.derivative(expr, list(c.wrt))
    swapped = symdiff.derivative(expr, list(reversed(c.wrt)))
    points = _points(c, expr)
    assert_same_function(ours, sp.diff(expr, first, second), points, c.text)
    assert_same_function(swapped, ours, points, f"symmetry of {c.text}")
    assert_matches_finite_differences(expr, ours, [first, second], points, 1e-4, c.text)


def test_mixed_partial_from_the_cli_help() -> None:
    x, y = make_symbol("x"), make_symbol("y")
    assert symdiff.derivative("x**2*y**3", ["x", "y"]) == 6 * x * y**2
    assert symdiff.derive("x**2*y**3", "x,y").variables == (x, y)


def test_gradient_of_the_seed_example() -> None:
    """f(x, z) = 4 x^4 z^3: the gradient is (16 x^3 z^3, 12 x^4 z^2)."""
    x, z = make_symbol("x"), make_symbol("z")
    assert symdiff.gradient("4*x**4*z**3") == [16 * x**3 * z**3, 12 * x**4 * z**2]
    assert symdiff.gradient("4*x**4*z**3", "z") == [12 * x**4 * z**2]


def test_derivative_of_the_seed_cubic() -> None:
    """f(x) = 2x^3 + 5: f'(x) = 6x^2 (the limit definition worked in the source)."""
    x = make_symbol("x")
    assert symdiff.derivative("2*x**3 + 5", "x") == 6 * x**2
    h = sp.Symbol("h")
    f = parse("2*x**3 + 5")
    assert sp.limit((f.subs(x, x + h) - f) / h, h, 0) == symdiff.derivative(f, "x")


def test_gradient_orders_variables_by_name_and_agrees_with_sympy() -> None:
    expr = parse("z*sin(y) + y*exp(x) + log(1 + w**2)")
    names = ["w", "x", "y", "z"]
    grad = symdiff.gradient(expr)
    assert len(grad) == 4
    points = sample_points(sorted_symbols(expr), {}, (-2, 2), 3, "gradient")
    for g, name in zip(grad, names, strict=True):
        assert_same_function(g, sp.diff(expr, make_symbol(name)), points, name)


def test_jacobian_agrees_with_sympy() -> None:
    texts = ["x*y", "x + y**2", "sigmoid(x - y)", "exp(x)*sin(y)"]
    exprs = [parse(t) for t in texts]
    x, y = make_symbol("x"), make_symbol("y")
    ours = symdiff.jacobian(texts)
    theirs = sp.Matrix(exprs).jacobian([x, y])
    assert ours.shape == (4, 2)
    points = sample_points([x, y], {}, (-2, 2), 3, "jacobian")
    for i in range(4):
        for j in range(2):
            assert_same_function(ours[i, j], theirs[i, j], points, f"J[{i},{j}]")
    assert symdiff.jacobian(["x*y", "x + y**2"])[:, :] == sp.Matrix([[y, x], [1, 2 * y]])


def test_jacobian_with_chosen_variables_and_a_missing_one() -> None:
    x, y = make_symbol("x"), make_symbol("y")
    assert symdiff.jacobian(["x*y", "y"], "y,x") == sp.Matrix([[x, y], [1, 0]])


def test_hessian_agrees_with_sympy_and_is_symmetric() -> None:
    text = "x**3*y + y**2 + sigmoid(x*y)"
    expr = parse(text)
    x, y = make_symbol("x"), make_symbol("y")
    ours = symdiff.hessian(text)
    theirs = sp.hessian(expr, [x, y])
    points = sample_points([x, y], {}, (-2, 2), 3, "hessian")
    for i in range(2):
        for j in range(2):
            assert_same_function(ours[i, j], theirs[i, j], points, f"H[{i},{j}]")
            assert_matches_finite_differences(
                expr, ours[i, j], [[x, y][i], [x, y][j]], points, 1e-4, f"H[{i},{j}]"
            )
    assert ours == ours.T


def test_hessian_example_from_the_cli_help_at_a_point() -> None:
    h = symdiff.hessian("x**3*y + y**2")
    x, y = make_symbol("x"), make_symbol("y")
    assert h == sp.Matrix([[6 * x * y, 3 * x**2], [3 * x**2, 2]])
    values = h.applyfunc(lambda e: evaluate(e, "x=1,y=2"))
    assert values == sp.Matrix([[12, 3], [3, 2]])


def test_directional_derivative_along_2_3_minus_1() -> None:
    """D_u f = grad f . u with u = (2, 3, -1)/sqrt(14), as in the source's worked example."""
    text = "x**2*y + z"
    x, y, z = (make_symbol(n) for n in "xyz")
    unit = unit_vector([2, 3, -1])
    assert unit == [2 / sp.sqrt(14), 3 / sp.sqrt(14), -1 / sp.sqrt(14)]
    assert sp.simplify(sum(u**2 for u in unit)) == 1
    ours = symdiff.directional_derivative(text, [2, 3, -1])
    grad = [2 * x * y, x**2, sp.Integer(1)]
    expected = sum(g * u for g, u in zip(grad, unit, strict=True))
    assert sp.simplify(ours - expected) == 0
    value = evaluate(ours, "x=1,y=2,z=0")
    assert sp.simplify(value - 10 / sp.sqrt(14)) == 0
    assert float(value) == pytest.approx(2.6726124191242437, rel=1e-15)


def test_directional_derivative_matches_a_finite_difference_along_the_vector() -> None:
    expr = parse("sigmoid(x*y) + z**2*x")
    ours = symdiff.directional_derivative(expr, ["1", "-2", "1/2"])
    x, y, z = (make_symbol(n) for n in "xyz")
    point = {x: 0.3, y: -0.7, z: 1.1}
    norm = (1 + 4 + 0.25) ** 0.5
    direction = {x: 1 / norm, y: -2 / norm, z: 0.5 / norm}
    h = 1e-6
    f = sp.lambdify([x, y, z], to_elementary(expr))

    def along(t: float) -> float:
        return f(*(point[s] + t * direction[s] for s in (x, y, z)))

    estimate = (along(h) - along(-h)) / (2 * h)
    assert float(high_precision(ours, point).real) == pytest.approx(estimate, rel=1e-7)


def test_evaluation_is_exact_for_exact_inputs() -> None:
    value = evaluate(symdiff.derivative("x**2", "x"), "x=3")
    assert value == 6 and isinstance(value, sp.Integer)
    assert evaluate("x**2*y", {"x": sp.Rational(1, 2), "y": 3}) == sp.Rational(3, 4)
    assert evaluate(symdiff.derivative("sin(x)", "x"), "x=pi/3") == sp.Rational(1, 2)
    assert evaluate(symdiff.derivative("log(x)", "x"), "x=1/7") == 7
    assert evaluate("sqrt(x)", "x=2") == sp.sqrt(2)
    assert evaluate(symdiff.derivative("sigmoid(x)", "x"), "x=0") == sp.Rational(1, 4)


def test_evaluation_with_a_decimal_gives_a_float() -> None:
    value = evaluate(symdiff.derivative("x**2", "x"), "x=0.5")
    assert value.is_Float and float(value) == 1.0


def test_seed_backprop_table_value() -> None:
    """-y log(1/(1 + e^{-W X})) at X = 3, y = 1, W = 3: dL/dW = -3e^-9/(1 + e^-9)."""
    loss = "-y*log(1/(1 + exp(-W*X)))"
    value = evaluate(symdiff.derivative(loss, "W"), "X=3,y=1,W=3")
    assert sp.simplify(to_elementary(value) + 3 * sp.exp(-9) / (1 + sp.exp(-9))) == 0
    assert f"{float(value):.11f}" == "-0.00037018373"  # the source truncates: -0.00037018372
    assert abs(float(value) - -0.00037018372) < 1e-11


def test_seed_absolute_error_graph() -> None:
    """loss = abs(y_true - (x*w + b)) at x = 2, w = 3, b = 1, y_true = 4: grads 2 (w), 1 (b)."""
    loss = "abs(y_true - (x*w + b))"
    point = "x=2,w=3,b=1,y_true=4"
    assert evaluate(loss, point) == 3
    grad = symdiff.gradient(loss, "w,b")
    assert [evaluate(g, point) for g in grad] == [2, 1]


def test_seed_bce_gradient_matches_the_chain_rule_formula() -> None:
    """dL/dbeta_1 = -X sigma(h)(1 - sigma(h)) [y/p - (1 - y)/(1 - p)], p = sigma(h)."""
    loss = parse("-y*log(sigmoid(b0 + b1*X)) - (1 - y)*log(1 - sigmoid(b0 + b1*X))")
    b0, b1, big_x, y = (make_symbol(n) for n in ("b0", "b1", "X", "y"))
    p = symdiff.sigmoid(b0 + b1 * big_x)
    bracket = y / p - (1 - y) / (1 - p)
    expected = {b1: -big_x * p * (1 - p) * bracket, b0: -p * (1 - p) * bracket}
    points = sample_points([b0, b1, big_x, y], {"y": (0, 1)}, (-2, 2), 3, "bce")
    for variable, formula in expected.items():
        ours = symdiff.derivative(loss, variable)
        assert_same_function(ours, formula, points, str(variable))
    assert symdiff.derivative(loss, "b0") == p - y
