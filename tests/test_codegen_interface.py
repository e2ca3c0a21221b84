"""The generated module's interface, safety, stability, determinism, templates and golden files."""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
from golden_support import assert_golden
from process_support import run_symdiff

import symdiff
from symdiff.codegen.scalar import escape_docstring, template_dir
from symdiff.errors import InputError, ParseError

LOGISTIC = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_symdiff(*args, env=env, timeout=300)


@pytest.fixture(scope="module")
def logistic():
    return symdiff.compile(LOGISTIC, "b0,b1", "x,y", name="logistic", hessian=True)


# --------------------------------------------------------------------------- golden files, bytes


def test_golden_logistic_module() -> None:
    assert_golden(
        "codegen/logistic.py",
        symdiff.generate(LOGISTIC, "b0,b1", "x,y", name="logistic").rstrip("\n"),
    )


def test_golden_polynomial_module_with_hessian() -> None:
    source = symdiff.generate(
        "(a + b*x + c*x**2 - y)**2", "a,b,c", "x,y", reduce="sum", name="quadratic", hessian=True
    )
    assert_golden("codegen/quadratic_sum_hessian.py", source.rstrip("\n"))


def test_same_input_gives_the_same_bytes_across_processes(tmp_path: Path) -> None:
    first = symdiff.generate(LOGISTIC, "b0,b1", "x,y")
    assert symdiff.generate(LOGISTIC, "b0,b1", "x,y") == first
    outputs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = run_cli("codegen", "--params", "b0,b1", "--data", "x,y", "--", LOGISTIC, env=env)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] == first


def test_cli_writes_the_file_atomically_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    ok = run_cli("codegen", "--params", "w", "--data", "x,y", "-o", str(target), "(w*x - y)**2")
    assert ok.returncode == 0, ok.stderr
    written = target.read_text(encoding="utf-8")
    assert written == symdiff.generate("(w*x - y)**2", "w", "x,y")
    bad = run_cli("codegen", "--params", "w", "--data", "x,y", "-o", str(target), "(w*x - y)**")
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: ") and "Traceback" not in bad.stderr
    assert target.read_text(encoding="utf-8") == written  # the old file, untouched
    fresh = tmp_path / "fresh.py"
    assert (
        run_cli("codegen", "--params", "np", "--data", "x", "-o", str(fresh), "np*x").returncode
        == 2
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]  # no temporary left


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "params, data",
    [
        ("np", "x"),
        ("loss", "x"),
        ("w", "grad"),
        ("w", "PARAMS"),
        ("w", "shape"),
        ("float", "x"),
        ("__import__", "x"),
        ("class", "x"),
        ("_w", "x"),
        ("w;import os", "x"),
        ("w", "x y"),
        ("1w", "x"),
        ("w", "w"),
    ],
)
def test_hostile_names_are_rejected(params: str, data: str) -> None:
    with pytest.raises(InputError):
        symdiff.generate("w*x", params, data)


@pytest.mark.parametrize("text", ['w*x + """', "w*x \\ 2", "w*x # comment", "__import__('os')"])
def test_hostile_loss_text_is_rejected_by_the_parser(text: str) -> None:
    with pytest.raises(ParseError):
        symdiff.generate(text, "w", "x")


def test_every_primitive_has_a_numpy_lowering() -> None:
    """erf was the last function generated code refused; it now has a float64 helper."""
    from symdiff.primitives import PRIMITIVES

    assert [name for name, row in PRIMITIVES.items() if row.numpy is None] == []
    module = symdiff.compile("erf(w*x)", "w", "x")
    assert module.loss([0.5], np.array([1.0, 2.0])) == pytest.approx(
        (math.erf(0.5) + math.erf(1.0)) / 2, rel=1e-15
    )


def test_module_name_must_be_an_identifier() -> None:
    with pytest.raises(InputError):
        symdiff.generate("w*x", "w", "x", name='m"""; import os; """')


@pytest.mark.parametrize(
    "text",
    ['"""; import os; """', "\\", "a\\nb", "line\nbreak\ttab", "\x00\x1b", "é σ", '"', "\\'"],
)
def test_docstring_escaping_round_trips(text: str) -> None:
    escaped = escape_docstring(text)
    assert "\n" not in escaped and '"' not in escaped.replace('\\"', "")
    assert ast.literal_eval(f'"""{escaped}"""') == text


def test_whitespace_in_the_loss_text_cannot_change_the_code() -> None:
    model = symdiff.compile("(w*x\n - y)**2\t", "w", "x,y")
    tree = ast.parse(model.__source__)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions[:3] == ["loss", "grad", "loss_and_grad"]
    assert "(w*x - y)**2" in ast.get_docstring(tree)


def test_e_and_pi_can_be_data_names() -> None:
    model = symdiff.compile("(b*e - pi)**2", "b", "e,pi")
    e, pi = np.array([1.0, 2.0]), np.array([3.0, 1.0])
    assert model.loss([2.0], e, pi) == pytest.approx(np.mean((2 * e - pi) ** 2))


# --------------------------------------------------------------------------- interface


def test_params_as_dict_give_a_dict_gradient(logistic) -> None:
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 1.0])
    flat_loss, flat_grad = logistic.loss_and_grad(np.array([0.1, 0.7]), x, y)
    dict_loss, dict_grad = logistic.loss_and_grad({"b1": 0.7, "b0": 0.1}, x, y)
    assert dict_loss == flat_loss
    assert set(dict_grad) == {"b0", "b1"}
    assert np.shape(dict_grad["b0"]) == ()
    assert [float(dict_grad["b0"]), float(dict_grad["b1"])] == list(flat_grad)
    assert isinstance(logistic.grad([0.1, 0.7], x, y), np.ndarray)
    assert logistic.PARAMS == (("b0", ()), ("b1", ()))
    assert logistic.DATA == ("x", "y")


@pytest.mark.parametrize(
    "params, data, message",
    [
        (np.zeros(3), (np.ones(2), np.ones(2)), "flat 1-D array of 2"),
        (np.zeros((2, 1)), (np.ones(2), np.ones(2)), "flat 1-D array of 2"),
        (np.array(["a", "b"]), (np.ones(2), np.ones(2)), "real numbers"),
        ({"b0": 0.0}, (np.ones(2), np.ones(2)), "missing ['b1']"),
        ({"b0": 0.0, "b1": 0.0, "c": 1.0}, (np.ones(2), np.ones(2)), "unknown ['c']"),
        ({"b0": [0.0], "b1": 0.0}, (np.ones(2), np.ones(2)), "shape (1,)"),
        (np.zeros(2), (np.ones(2),), "expected 2 data arrays"),
        (np.zeros(2), (np.ones(2), np.ones(3)), "do not broadcast"),
        (np.zeros(2), (np.ones(2) * 1j, np.ones(2)), "real numbers"),
        (np.zeros(2), (np.ones(0), np.ones(0)), "no samples"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(logistic, params, data, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        logistic.loss_and_grad(params, *data)


def test_data_arrays_broadcast(logistic) -> None:
    x = np.linspace(-1, 1, 4).reshape(4, 1)
    y = np.array([[0.0, 1.0, 1.0]])
    broadcast = [np.broadcast_to(a, (4, 3)).ravel() for a in (x, y)]
    value, gradient = logistic.loss_and_grad([0.2, -0.4], x, y)
    expected_value, expected_gradient = logistic.loss_and_grad([0.2, -0.4], *broadcast)
    assert value == pytest.approx(expected_value, rel=1e-14)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-14)
    assert logistic.loss([0.2, -0.4], [1, 2], [0, 1]) == pytest.approx(
        logistic.loss([0.2, -0.4], [1.0, 2.0], [0.0, 1.0])
    )  # integer data is accepted as float64


def test_sum_reduction_counts_constant_terms_once_per_sample() -> None:
    model = symdiff.compile("(w*x - y)**2 + w**2", "w", "x,y", reduce="sum")
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 1.0])
    value, gradient = model.loss_and_grad([0.5], x, y)
    assert value == pytest.approx(np.sum((0.5 * x - y) ** 2 + 0.25))
    assert gradient[0] == pytest.approx(np.sum(2 * (0.5 * x - y) * x + 2 * 0.5))


def test_a_loss_without_data_minimises_with_scipy() -> None:
    model = symdiff.compile("(a - 1)**2 + 10*(b + 2)**4 + a*b/10", "a,b")
    assert model.DATA == ()
    result = scipy.optimize.minimize(model.loss_and_grad, np.zeros(2), jac=True, method="BFGS")
    assert result.success
    assert np.linalg.norm(model.grad(result.x)) < 1e-5


def test_hessian_is_symmetric_and_matches_differences_of_the_gradient(logistic) -> None:
    x, y = np.array([0.5, -1.0, 2.0, 0.1]), np.array([1.0, 0.0, 1.0, 0.0])
    point = np.array([0.3, -0.6])
    hessian = logistic.hessian(point, x, y)
    h = 1e-6
    columns = [
        (logistic.grad(point + h * e, x, y) - logistic.grad(point - h * e, x, y)) / (2 * h)
        for e in np.eye(2)
    ]
    np.testing.assert_allclose(hessian, np.array(columns).T, rtol=1e-6, atol=1e-9)
    assert hessian[0, 1] == hessian[1, 0]


# --------------------------------------------------------------------------- stability


def test_logistic_loss_and_gradient_are_exact_at_z_plus_minus_1000(logistic) -> None:
    x = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value, gradient = logistic.loss_and_grad([0.0, 1.0], x, y)
        hessian = logistic.hessian([0.0, 1.0], x, y)
    # per sample: softplus(z) - y*z = 1000, 1000, 0, 0; dl/dz = sigmoid(z) - y = 1, -1, 0, 0
    assert value == 500.0
    np.testing.assert_array_equal(gradient, [0.0, 500.0])
    np.testing.assert_array_equal(hessian, np.zeros((2, 2)))


@pytest.mark.parametrize(
    "loss, point, expected_loss, expected_grad",
    [
        ("softplus(w*x)", [1.0], 1000.0 / 2, 1000.0 / 2),  # x = +-1000: softplus 1000 and 0
        ("log(1 + exp(w*x))", [1.0], 1000.0 / 2, 1000.0 / 2),
        ("log(exp(w*x) + exp(-w*x))", [1.0], 1000.0, 1000.0),  # d/dw = x*tanh(w*x)
        ("-log(sigmoid(w*x))", [1.0], 1000.0 / 2, 1000.0 / 2),  # d/dw = -x*sigmoid(-w*x)
    ],
)
def test_stable_rewrites_keep_extreme_values_finite(
    loss, point, expected_loss, expected_grad
) -> None:
    model = symdiff.compile(loss, "w", "x")
    x = np.array([1000.0, -1000.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value, gradient = model.loss_and_grad(point, x)
    assert value == pytest.approx(expected_loss, abs=1e-9)
    assert gradient[0] == pytest.approx(expected_grad, abs=1e-9)


def test_small_arguments_keep_their_precision() -> None:
    model = symdiff.compile("log(1 + w*x) + exp(w*x) - 1", "w", "x")
    value = model.loss([1e-12], np.array([1.0]))
    assert value == pytest.approx(2e-12, rel=1e-10)  # log and exp-1 would lose every digit


# --------------------------------------------------------------------------- optimisation


def test_scipy_minimize_reaches_the_sklearn_logistic_regression_optimum() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.linear_model import LogisticRegression

    features, target = sklearn_datasets.load_breast_cancer(return_X_y=True)
    chosen = (features[:, [0, 1]] - features[:, [0, 1]].mean(0)) / features[:, [0, 1]].std(0)
    x1, x2, y = chosen[:, 0], chosen[:, 1], target.astype(float)
    model = symdiff.compile(
        "-y*log(sigmoid(b0 + b1*x1 + b2*x2)) - (1 - y)*log(1 - sigmoid(b0 + b1*x1 + b2*x2))",
        "b0,b1,b2",
        "x1,x2,y",
    )
    result = scipy.optimize.minimize(
        model.loss_and_grad, np.zeros(3), args=(x1, x2, y), jac=True, method="BFGS", tol=1e-12
    )
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(chosen, y)
    expected = np.concatenate([reference.intercept_, reference.coef_[0]])
    np.testing.assert_allclose(result.x, expected, rtol=1e-4, atol=1e-5)
    assert np.linalg.norm(model.grad(result.x, x1, x2, y)) < 1e-6


# --------------------------------------------------------------------------- size


def _product_source(count: int) -> str:
    names = [f"w{i}" for i in range(1, count + 1)]
    return symdiff.generate("*".join(names), names)


def test_gradient_code_grows_linearly_with_a_long_product() -> None:
    sizes = {}
    for count in (20, 40, 80):
        source = _product_source(count)
        body = source[source.index("def loss_and_grad") : source.index("def _as_real")]
        statements = [line for line in body.splitlines() if " = " in line and "#" not in line]
        assert max(line.count("*") for line in statements) <= 4  # no product of 79 factors
        sizes[count] = (len(source), len(body))
    for which in (0, 1):
        growth_small = sizes[40][which] - sizes[20][which]
        growth_large = sizes[80][which] - sizes[40][which]
        assert growth_large < 2.6 * growth_small  # quadratic growth would be about 4x


# --------------------------------------------------------------------------- templates


def test_templates_directory_overrides_the_shipped_template(tmp_path: Path) -> None:
    shipped = (template_dir() / "module.py.jinja").read_text(encoding="utf-8")
    (tmp_path / "module.py.jinja").write_text("# house style header\n" + shipped, encoding="utf-8")
    source = symdiff.generate("(w*x - y)**2", "w", "x,y", templates=tmp_path)
    assert source.startswith("# house style header\n")
    model = symdiff.compile("(w*x - y)**2", "w", "x,y", templates=str(tmp_path))
    assert model.loss([2.0], [1.0], [1.0]) == 1.0


def test_templates_are_strict_about_undefined_values(tmp_path: Path) -> None:
    (tmp_path / "module.py.jinja").write_text("{{ no_such_value }}\n", encoding="utf-8")
    with pytest.raises(InputError, match="template error"):
        symdiff.generate("w*x", "w", "x", templates=tmp_path)
    (tmp_path / "module.py.jinja").write_text("w = 1\n{{ functions }}\n", encoding="utf-8")
    with pytest.raises(InputError, match="'w' is used by the generated module"):
        symdiff.generate("w*x", "w", "x", templates=tmp_path)
    with pytest.raises(InputError, match="not a directory"):
        symdiff.generate("w*x", "w", "x", templates=tmp_path / "missing")


# --------------------------------------------------------------------------- gradcheck


def test_gradcheck_api_passes_generated_modules(logistic) -> None:
    result = symdiff.gradcheck(logistic, points=4, seed=3)
    assert result.passed and result.max_error < 1e-7
    x, y = np.linspace(-2, 2, 11), (np.linspace(-2, 2, 11) > 0).astype(float)
    assert symdiff.gradcheck(logistic, (x, y)).passed


def test_gradcheck_cli_fails_a_wrong_gradient(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    assert (
        run_cli(
            "codegen", "--params", "a,b", "--data", "x", "-o", str(good), "(a*x + b)**2"
        ).returncode
        == 0
    )
    passed = run_cli("gradcheck", str(good))
    assert passed.returncode == 0, passed.stderr
    assert "max relative error" in passed.stdout and ": ok" in passed.stdout
    source = good.read_text(encoding="utf-8")
    bad = tmp_path / "bad.py"
    assert source.count("    da = ") == 2  # in grad and loss_and_grad
    bad.write_text(source.replace("    da = ", "    da = 1.01 * "), encoding="utf-8")
    failed = run_cli("gradcheck", str(bad))
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "(at a)" in failed.stdout
    missing = run_cli("gradcheck", str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and missing.stderr.startswith("Error: ")
