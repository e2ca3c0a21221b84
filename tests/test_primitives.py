"""Every registry of symdiff checked against the primitives table (``symdiff/primitives.py``).

The table holds one row per function: names, SymPy class, derivative (written once for SymPy and
the IR), NumPy lowering, float64 evaluator and LaTeX. Each registry derived from it is checked
here row by row — the scalar and tensor parsers, SymPy's derivative rules, the IR's reverse and
forward modes, the NumPy printer, the float evaluators, the SymPy -> IR converter and the two code
generators — so a new row is covered by every test without editing this file. A row whose
function needs a narrower domain than the default gets an entry in ``DOMAINS``; a row without a
SymPy class needs a reference definition in ``SYMPY_REFERENCES``; a typed name a parser lacks on
purpose is listed in ``SCALAR_PARSER_GAPS`` / ``TENSOR_PARSER_GAPS`` (a new gap fails).
"""

from __future__ import annotations

import ast
import math
import re
import zlib
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff import primitives
from symdiff.autodiff import forward, reverse
from symdiff.calculus import rules
from symdiff.codegen.numpy_print import NumpyPrinter
from symdiff.codegen.templating import template_source
from symdiff.codegen.tensor import evaluate as evaluate_tensor
from symdiff.errors import ParseError
from symdiff.explanations.limit import FLOAT_FUNCTIONS, float_value
from symdiff.frontend import parse as scalar_parser
from symdiff.frontend.tensor_parse import IR_FUNCTIONS, TENSOR_FUNCTIONS, parse_tensor
from symdiff.ir.from_sympy import NoLowering, to_ir
from symdiff.ir.nodes import Node, sum_, var

ROWS = tuple(primitives.PRIMITIVES.values())
UNARY = tuple(row for row in ROWS if row.arity == 1)
COMPOSITES = tuple(primitives.COMPOSITES.values())
TYPED_NAMES = tuple(primitives.BY_TYPED_NAME)


def _id(row: primitives.Primitive | primitives.Composite) -> str:
    return row.name


#: Typed names the scalar parser deliberately lacks: maximum, minimum and logaddexp are IR
#: operations, typed max, min, logsumexp.
SCALAR_PARSER_GAPS = frozenset({"maximum", "minimum", "logaddexp"})
#: Typed names the tensor parser lacks: none. The IR's two-argument operations (typed max, min,
#: logsumexp, which are composites) are also read by the names the printer writes
#: (maximum(A, B) in an index form's einsum parses back).
TENSOR_PARSER_GAPS: frozenset[str] = frozenset()

#: SymPy definitions of the rows that have no SymPy class (the independent reference).
SYMPY_REFERENCES: dict[str, Callable[..., sp.Expr]] = {
    "logaddexp": lambda a, b: sp.log(sp.exp(a) + sp.exp(b)),
}

#: Where each function is sampled (real, finite, away from poles); others use DEFAULT_DOMAIN.
DEFAULT_DOMAIN = (-2.5, 2.5)
DOMAINS: dict[str, tuple[float, float]] = {
    "log": (0.1, 5.0),
    "log2": (0.1, 5.0),
    "log10": (0.1, 5.0),
    "sqrt": (0.1, 5.0),
    "log1p": (-0.9, 5.0),
    "asin": (-0.95, 0.95),
    "acos": (-0.95, 0.95),
    "atanh": (-0.95, 0.95),
    "acosh": (1.1, 5.0),
    "tan": (-1.4, 1.4),
    "sec": (-1.4, 1.4),
    "csc": (0.1, 3.0),
    "cot": (0.1, 3.0),
}
#: Samples keep this far from the kinks of abs, sign, relu, heaviside (0) and of max/min (a = b).
KINK_GAP = 0.05

SYMBOLS = sp.symbols("a b", real=True)
U = sp.Symbol("u", real=True)


def sympy_form(row: primitives.Primitive) -> Callable[..., sp.Expr]:
    """The row's SymPy function, or the reference definition of a row without a SymPy class."""
    return row.sympy if row.sympy is not None else SYMPY_REFERENCES[row.name]


def samples(name: str, count: int, arity: int = 1) -> np.ndarray:
    """``count`` reproducible points (rows of ``arity`` values) in the domain of ``name``."""
    low, high = DOMAINS.get(name, DEFAULT_DOMAIN)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    points: list[np.ndarray] = []
    while len(points) < count:
        point = rng.uniform(low, high, arity)
        gaps = np.abs(point) if arity == 1 else np.abs(point[0] - point[1:])
        if np.all(gaps > KINK_GAP):
            points.append(point)
    return np.array(points)


def sympy_float(expr: sp.Expr, symbols: Sequence[sp.Symbol], values: Sequence[float]) -> float:
    """``expr`` at ``values`` with 30 significant digits (the exact binary inputs)."""
    exact = {s: sp.Float(float(v), 40) for s, v in zip(symbols, values, strict=True)}
    value = expr.subs(exact).evalf(30)
    assert value.is_number and value.is_real, f"{expr} at {values} is {value}"
    return float(value)


def close(got: float, expected: float, rel: float = 1e-12) -> bool:
    return math.isclose(got, expected, rel_tol=rel, abs_tol=rel * 1e-2)


def central_difference(function: Callable[..., float], point: Sequence[float], index: int) -> float:
    """d function / d point[index] by a central difference."""
    step = 1e-6
    upper, lower = list(point), list(point)
    upper[index] += step
    lower[index] -= step
    return (function(*upper) - function(*lower)) / (2 * step)


def scalar_typed_name(row: primitives.Primitive) -> str | None:
    """A name the scalar parser accepts for ``row`` (None for its documented gaps)."""
    return next(
        (n for n in (row.name, *row.aliases) if n in scalar_parser.FUNCTIONS),
        None,
    )


def numpy_namespace() -> dict[str, Any]:
    """numpy plus every helper the table's lowerings call, from the shipped helper templates."""
    namespace: dict[str, Any] = {"np": np}
    for helper in sorted({row.helper for row in ROWS if row.helper is not None}):
        # project-owned template text (plain Python), not user input
        exec(template_source(f"helpers/{helper}.py.jinja"), namespace)  # noqa: S102
    return namespace


NUMPY_NAMESPACE = numpy_namespace()


def ir_application(row: primitives.Primitive, shape: tuple[Any, ...]) -> tuple[Node, list[Node]]:
    """f(x) (or f(x, y)) in the IR for leaves of ``shape``, and the leaves."""
    leaves = [var(name, shape) for name in "xy"[: row.arity]]
    return getattr(IR_FUNCTIONS, row.name)(*leaves), leaves


# --------------------------------------------------------------------------- 1. parsers


def test_scalar_parser_names_come_from_the_table() -> None:
    # dirac is typed only to read back a printed derivative of a step (d/du heaviside(u))
    unknown = (
        set(scalar_parser.FUNCTIONS)
        - set(primitives.BY_TYPED_NAME)
        - set(primitives.COMPOSITES)
        - {"dirac"}
    )
    assert not unknown, f"scalar parser functions outside the primitives table: {unknown}"


def test_parser_gaps_are_exactly_the_documented_ones() -> None:
    typed = set(TYPED_NAMES) | set(primitives.COMPOSITES)
    assert typed - set(scalar_parser.FUNCTIONS) == SCALAR_PARSER_GAPS
    tensor_names = set(TENSOR_FUNCTIONS) | set(primitives.COMPOSITES)
    assert typed - tensor_names == TENSOR_PARSER_GAPS


@pytest.mark.parametrize("name", sorted(SCALAR_PARSER_GAPS | TENSOR_PARSER_GAPS))
def test_parser_gaps_are_refused_as_unknown(name: str) -> None:
    row = primitives.BY_TYPED_NAME[name]
    text = f"{name}({', '.join(['x'] * row.arity)})"
    if name in SCALAR_PARSER_GAPS:
        with pytest.raises(ParseError, match=f"unknown function '{name}'"):
            scalar_parser.parse(text)
    if name in TENSOR_PARSER_GAPS:
        with pytest.raises(ParseError, match=f"unknown function '{name}'"):
            parse_tensor(text, {"x": ("n",)})


@pytest.mark.parametrize("name", TYPED_NAMES)
def test_typed_name_builds_the_rows_function(name: str) -> None:
    row = primitives.BY_TYPED_NAME[name]
    args = ", ".join("xy"[: row.arity])
    if name not in SCALAR_PARSER_GAPS:
        x, y = (scalar_parser.make_symbol(n) for n in "xy")
        built = getattr(primitives.SYMPY, row.name)(*(x, y)[: row.arity])  # heaviside: H(0) = 0
        assert scalar_parser.parse(f"{name}({args})") == built
    if name not in TENSOR_PARSER_GAPS:
        shapes = {"x": ("n",), "y": ("n",)}
        expected = getattr(IR_FUNCTIONS, row.name)(*(var(n, ("n",)) for n in "xy"[: row.arity]))
        assert parse_tensor(f"{name}({args})", shapes) == expected
        assert expected.op == row.name


@pytest.mark.parametrize("composite", COMPOSITES, ids=_id)
def test_composite_is_accepted_by_both_parsers(composite: primitives.Composite) -> None:
    for count in sorted({composite.min_args, composite.max_args or composite.min_args + 1}):
        args = ["x", "2", "3"][:count] if composite.name == "log" else ["x"] * count
        text = f"{composite.name}({', '.join(args)})"
        x = scalar_parser.make_symbol("x")
        built = composite.build(
            tuple(x if a == "x" else sp.Integer(a) for a in args), primitives.SYMPY
        )
        assert scalar_parser.parse(text) == built
        leaf = var("x", ("n",))
        node = composite.build(tuple(leaf if a == "x" else int(a) for a in args), IR_FUNCTIONS)
        assert parse_tensor(text, {"x": ("n",)}) == node


# --------------------------------------------------------------------------- 2. SymPy derivatives


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_every_row_has_a_sympy_definition(row: primitives.Primitive) -> None:
    assert (row.sympy is None) == (row.name in SYMPY_REFERENCES)
    args = SYMBOLS[: row.arity]
    assert isinstance(sympy_form(row)(*args), sp.Expr)


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_sympy_derivative_is_the_derivative(row: primitives.Primitive) -> None:
    args = SYMBOLS[: row.arity]
    value = sympy_form(row)(*args)
    if row.arity == 1:
        partials = (primitives.sympy_derivative(row, args[0]),)
    else:
        partials = row.partials(args, value, primitives.SYMPY)
    assert len(partials) == row.arity
    assert row.flat == any(p.has(sp.DiracDelta) for p in partials)
    points = samples(row.name, 6, row.arity)
    for arg, partial in zip(args, partials, strict=True):
        expected = sp.diff(value, arg)
        if row.flat:  # a step: DiracDelta in SymPy, 0 almost everywhere
            for point in points:
                assert sympy_float(partial, args, point) == 0.0
                assert sympy_float(expected, args, point) == 0.0
            continue
        if sp.simplify(partial - expected) == 0:
            continue
        for point in points:  # SymPy cannot decide (acosh): compare with 30 digits
            got, want = sympy_float(partial, args, point), sympy_float(expected, args, point)
            assert close(got, want), f"d{row.name}/d{arg} at {point}: {partial} = {got}, {want}"


@pytest.mark.parametrize("row", [r for r in UNARY if r.sympy is not None], ids=_id)
def test_outer_rule_is_the_tables(row: primitives.Primitive) -> None:
    if row.sympy is sp.Heaviside:  # its own function rule: the chain rule with DiracDelta
        assert sp.Heaviside not in rules.OUTER_RULES
        assert rules.RULE_FORMULAS["heaviside"] == row.formula
        return
    assert isinstance(row.sympy, type) or row.name == "sqrt", row.sympy
    if not isinstance(row.sympy, type):  # sqrt is Pow: the power rule
        return
    rule = rules.OUTER_RULES[row.sympy]
    assert (rule.name, rule.formula) == (row.name, row.formula)
    assert rules.RULE_FORMULAS[row.name] == row.formula
    assert rule.derivative(U) == primitives.sympy_derivative(row, U)


@pytest.mark.parametrize("row", [r for r in UNARY if scalar_typed_name(r) is not None], ids=_id)
def test_public_derivative_uses_the_table(row: primitives.Primitive) -> None:
    x = scalar_parser.make_symbol("x")
    got = symdiff.derivative(f"{scalar_typed_name(row)}(x)", "x")
    want = primitives.sympy_derivative(row, x)
    if sp.simplify(got - want) == 0:
        return
    for (point,) in samples(row.name, 6):
        assert close(sympy_float(got, [x], [point]), sympy_float(want, [x], [point])), point


# --------------------------------------------------------------------------- 3. float64, NumPy


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_float_evaluator_matches_sympy(row: primitives.Primitive) -> None:
    args = SYMBOLS[: row.arity]
    value = sympy_form(row)(*args)
    for point in samples(row.name, 8, row.arity):
        got = row.evaluate(*(float(v) for v in point))
        assert isinstance(got, float | int)
        want = sympy_float(value, args, point)
        assert close(got, want), f"{row.name}{tuple(point)}: evaluate {got}, SymPy {want}"


@pytest.mark.parametrize("row", [r for r in ROWS if r.sympy is not None], ids=_id)
def test_float_functions_table(row: primitives.Primitive) -> None:
    if isinstance(row.sympy, type):
        assert FLOAT_FUNCTIONS[row.sympy] is row.evaluate
    args = SYMBOLS[: row.arity]
    expr = row.sympy(*args)
    for point in samples(row.name, 4, row.arity):
        got = float_value(expr, dict(zip(args, (float(v) for v in point), strict=True)))
        assert close(got, sympy_float(expr, args, point)), point


def test_float_functions_cover_every_sympy_class() -> None:
    classes = {row.sympy for row in ROWS if isinstance(row.sympy, type)}
    assert classes <= set(FLOAT_FUNCTIONS)


@pytest.mark.parametrize("row", [r for r in ROWS if r.numpy is not None], ids=_id)
def test_numpy_lowering_matches_evaluate(row: primitives.Primitive) -> None:
    names = ["a", "b"][: row.arity]
    code = row.numpy.format(*names)
    tree = ast.parse(code, mode="eval").body
    assert isinstance(tree, ast.Call) or (code.startswith("(") and code.endswith(")")), code
    called = set(re.findall(r"(?<![\w.])(_\w+)\(", code))
    assert called == ({row.helper} if row.helper else set()), code
    points = samples(row.name, 16, row.arity)
    function = eval(f"lambda {', '.join(names)}: {code}", NUMPY_NAMESPACE)  # noqa: S307
    got = function(*points.T)
    assert isinstance(got, np.ndarray) and got.shape == (len(points),)
    for value, point in zip(got, points, strict=True):
        want = row.evaluate(*(float(v) for v in point))
        assert close(float(value), want), f"{code} at {point}: {value}, evaluate {want}"


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_numpy_printer_prints_the_lowering(row: primitives.Primitive) -> None:
    node, leaves = ir_application(row, (5,))
    printer = NumpyPrinter()
    if row.numpy is None:
        with pytest.raises(NoLowering, match=rf"\b{row.name}\b"):
            printer(node)
        return
    assert printer(node) == row.numpy.format(*(leaf.name for leaf in leaves))
    assert printer.helpers == ({row.helper} if row.helper else set())


@pytest.mark.parametrize("row", [r for r in ROWS if r.sympy is not None], ids=_id)
def test_to_ir_converts_the_sympy_class(row: primitives.Primitive) -> None:
    args = SYMBOLS[: row.arity]
    node = to_ir(row.sympy(*args), {})
    assert node.op == row.name
    assert node.args == tuple(var(s.name, ()) for s in args)


# --------------------------------------------------------------------------- 4. IR autodiff


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_reverse_mode_gradient(row: primitives.Primitive) -> None:
    assert row.name in reverse.VJP_RULES
    assert row.name in reverse.VJP_FORMULAS and reverse.VJP_FORMULAS[row.name]
    node, leaves = ir_application(row, (5,))
    loss = sum_(node)
    gradient = reverse.reverse_mode(loss, leaves)
    points = samples(row.name, 5, row.arity)
    values = {leaf.name: points[:, i] for i, leaf in enumerate(leaves)}
    if row.numpy is None:
        with pytest.raises(NoLowering):
            evaluate_tensor(loss, values)
    else:
        total = sum(row.evaluate(*(float(v) for v in p)) for p in points)
        assert close(float(evaluate_tensor(loss, values)), total, 1e-11)
    for index, grad in enumerate(gradient.gradients):
        got = np.broadcast_to(evaluate_tensor(grad, values), (5,))
        if row.flat:
            assert np.all(got == 0.0), got
            continue
        want = [central_difference(row.evaluate, [float(v) for v in p], index) for p in points]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=row.name)


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_forward_mode_jacobian(row: primitives.Primitive) -> None:
    node, leaves = ir_application(row, (3,))
    if row.name not in forward.JVP_RULES:  # two-argument functions fall back to the VJP
        assert row.arity == 2, f"no forward rule for the one-argument primitive {row.name}"
        assert forward.jacobian(node, leaves[0]) is None
        return
    jacobian = forward.jacobian(node, leaves[0])
    assert jacobian is not None and jacobian.shape == (3, 3)
    points = samples(row.name, 3, row.arity)
    values = {leaf.name: points[:, i] for i, leaf in enumerate(leaves)}
    got = np.broadcast_to(evaluate_tensor(jacobian, values), (3, 3))
    slopes = [central_difference(row.evaluate, [float(v) for v in p], 0) for p in points]
    want = np.diag(np.zeros(3) if row.flat else slopes)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=row.name)


# --------------------------------------------------------------------------- 5. generated code

FLOAT = SimpleNamespace(
    **{row.name: row.evaluate for row in ROWS},
    pi=math.pi,
    half=0.5,
)

#: What the two generators compile: every one-argument primitive and every composite.
GENERATED = [row.name for row in UNARY] + [c.name for c in COMPOSITES]


def _arguments(name: str) -> int:
    return 1 if name in primitives.PRIMITIVES else primitives.COMPOSITES[name].min_args


def _reference(name: str) -> Callable[[float], float]:
    """f(u) in float64 from the table: the row's evaluator, or the composite built from them."""
    if name in primitives.PRIMITIVES:
        return primitives.PRIMITIVES[name].evaluate
    composite = primitives.COMPOSITES[name]
    if _arguments(name) == 1:
        return lambda u: composite.build((u,), FLOAT)
    return lambda u: composite.build((u, -u), FLOAT)  # max(u, -u), logsumexp(u, -u) ...


def _missing_lowering(name: str) -> str | None:
    """The primitive without a NumPy lowering that f uses, if any."""
    if name in primitives.PRIMITIVES:
        row = primitives.PRIMITIVES[name]
        return None if row.numpy is not None else row.name
    built = primitives.COMPOSITES[name].build((U,) * _arguments(name), primitives.SYMPY)
    used = [primitives.for_sympy(f) for f in built.atoms(sp.Function)]
    return next((r.name for r in used if r is not None and r.numpy is None), None)


@pytest.mark.parametrize("name", GENERATED)
def test_generated_modules(name: str) -> None:
    """mean(f(w*x)) by symdiff.compile and sum(f(X @ w)) by symdiff.compile_tensor agree with
    the table's evaluator and its central differences, or are refused while generating."""
    row = primitives.PRIMITIVES.get(name)
    scalar_name = name if row is None else scalar_typed_name(row)  # None: a parser gap

    def call(function: str, inner: str) -> str:
        if _arguments(name) == 1:
            return f"{function}({inner})"
        return f"{function}({inner}, -({inner}))"

    tensor_text = f"sum({call(name, 'X @ w')})"
    shapes = {"X": ("n", 2), "w": (2,)}
    missing = _missing_lowering(name)
    if missing is not None:  # refused while generating, naming the function
        if scalar_name is not None:
            with pytest.raises(symdiff.InputError, match=rf"\b{missing}\b") as caught:
                symdiff.compile(call(scalar_name, "w*x"), "w", "x")
            assert isinstance(caught.value, NoLowering)
        with pytest.raises(symdiff.InputError, match=rf"\b{missing}\b") as caught:
            symdiff.compile_tensor(tensor_text, shapes, ["w"])
        assert isinstance(caught.value, NoLowering)
        return
    f = _reference(name)
    u = samples(name, 7)[:, 0]
    if scalar_name is not None:  # the per-sample generator: mean of f(w*x) over the samples
        w0 = 0.8
        x = u / w0
        module = symdiff.compile(call(scalar_name, "w*x"), "w", "x")
        loss, grad = module.loss_and_grad(np.array([w0]), x)

        def scalar_loss(w: float) -> float:
            return float(np.mean([f(float(w * xi)) for xi in x]))

        assert close(float(loss), scalar_loss(w0), 1e-11), (loss, scalar_loss(w0))
        want = [central_difference(scalar_loss, [w0], 0)]
        np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-8, err_msg=name)
    w = np.array([0.5, 0.25])  # the tensor generator: sum(f(X @ w)), with X @ w = u
    second = np.random.default_rng(7).uniform(-1.0, 1.0, len(u))
    data = np.column_stack([(u - w[1] * second) / w[0], second])
    module = symdiff.compile_tensor(tensor_text, shapes, ["w"])
    loss, grad = module.loss_and_grad(w.copy(), data)

    def tensor_loss(*weights: float) -> float:
        return float(sum(f(float(value)) for value in data @ np.array(weights)))

    assert close(float(loss), tensor_loss(*w), 1e-11), (loss, tensor_loss(*w))
    want = [central_difference(tensor_loss, list(w), i) for i in range(2)]
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-8, err_msg=name)


# --------------------------------------------------------------------------- 6. LaTeX


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_latex(row: primitives.Primitive) -> None:
    assert isinstance(row.latex, str) and row.latex.strip()
    text = sp.latex(sympy_form(row)(*SYMBOLS[: row.arity]))
    assert isinstance(text, str) and text.strip()
