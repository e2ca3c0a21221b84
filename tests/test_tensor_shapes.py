"""Tensor front end: shape declarations, model files, shape errors, the parser's whitelist, and
the safety of generated modules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symdiff.codegen.tensor import compile as compile_tensor
from symdiff.codegen.tensor import generate
from symdiff.errors import InputError, ParseError, ShapeError
from symdiff.frontend.shapes import load_model, parse_dims, parse_shape_option, shapes_from_options
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.ir.printing import to_latex, to_text
from symdiff.train.data import write_atomic

SHAPES = {"X": ("n", "d"), "w": ("d",), "y": ("n",), "W": ("d", "k"), "A": ("d", "d")}


def test_shape_options_and_dims():
    assert parse_shape_option("X=n,d") == ("X", ("n", "d"))
    assert parse_shape_option("w = 64") == ("w", (64,))
    assert parse_shape_option("c=") == ("c", ())
    assert parse_dims(["n", 10]) == ("n", 10)
    assert shapes_from_options(["X=n,64", "b=64"]) == {"X": ("n", 64), "b": (64,)}


@pytest.mark.parametrize(
    "option, message",
    [
        ("X", "expected NAME=DIMS"),
        ("X=n,0", "dimension must be positive"),
        ("X=n,d-1", "bad dimension"),
        ("X=" + ",".join(["2"] * 33), "at most 32 axes are supported"),
        ("1X=n", "not a valid name"),
    ],
)
def test_bad_shape_options(option, message):
    with pytest.raises(InputError, match=message):
        shapes_from_options([option])


def test_shape_declared_twice():
    with pytest.raises(InputError, match="declared twice"):
        shapes_from_options(["X=n", "X=n,d"])


def test_matmul_inner_dimension_error_names_both_shapes_and_the_subexpression():
    with pytest.raises(ShapeError) as info:
        parse_tensor("mean((X @ W - y)**2)", {"X": ("n", "d"), "W": ("k", 3), "y": ("n",)})
    message = str(info.value)
    assert "'X @ W'" in message and "(n, d) @ (k, 3)" in message
    assert "inner dimensions d and k differ" in message and "column 7" in message


def test_broadcast_error_names_both_shapes():
    with pytest.raises(ShapeError) as info:
        parse_tensor("sum(A + B)", {"A": ("n", 10), "B": ("n", 64)})
    assert "'A + B'" in str(info.value) and "(n, 10) + (n, 64)" in str(info.value)


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("X.shape", ParseError, "only '.T'"),
        ("X[0]", ParseError, "not allowed"),
        ("__import__('os')", ParseError, "not allowed|unknown function"),
        ("sum(X, axis=k)", ParseError, "integer constant"),
        ("sum(X, where=1)", ParseError, "no keyword 'where'"),
        ("softmax(X, X)", ParseError, "takes 1 argument"),
        ("open(X)", ParseError, "unknown function 'open'"),
        ("sum(X, axis=2)", ShapeError, "axis 2 is out of range"),
        ("trace(X)", ShapeError, "square matrix"),
        ("cross_entropy(y, X)", ShapeError, "same vector or matrix shape"),
        ("X @ 2", ShapeError, "vectors, matrices or stacks of them"),
    ],
)
def test_rejected_expressions(text, error, message):
    with pytest.raises(error, match=message):
        parse_tensor(text, SHAPES)


def test_undeclared_names_are_scalars_and_dims_are_sizes():
    node = parse_tensor("lam * sum(w**2) / d", SHAPES)
    assert node.shape == ()
    assert to_text(node) == "lam * sum(w**2) / d"


def test_shapes_of_operations():
    assert parse_tensor("X @ w", SHAPES).shape == ("n",)
    assert parse_tensor("X.T @ X", SHAPES).shape == ("d", "d")
    assert parse_tensor("w @ A", SHAPES).shape == ("d",)
    assert parse_tensor("dot(w, w)", SHAPES).shape == ()
    assert parse_tensor("X @ W + sum(W, axis=0)", SHAPES).shape == ("n", "k")
    assert parse_tensor("logsumexp(X @ W, axis=1)", SHAPES).shape == ("n",)
    assert parse_tensor("softmax(X @ W)", SHAPES).shape == ("n", "k")
    assert parse_tensor("outer(y, w)", SHAPES).shape == ("n", "d")
    assert parse_tensor("mean(X, axis=0, keepdims=1)", SHAPES).shape == (1, "d")


def test_stabilising_rewrites_at_build_time():
    assert to_text(parse_tensor("log(sigmoid(X @ w))", SHAPES)) == "-softplus(-X @ w)"
    assert to_text(parse_tensor("log(1 - sigmoid(X @ w))", SHAPES)) == "-softplus(X @ w)"
    assert to_text(parse_tensor("log(softmax(X @ W))", SHAPES)) == "log_softmax(X @ W)"
    assert to_text(parse_tensor("(X.T).T @ w", SHAPES)) == "X @ w"


def test_latex_uses_transpose_and_hadamard():
    node = parse_tensor("X.T @ (y * sigmoid(X @ w))", SHAPES)
    latex = to_latex(node)
    assert r"{X}^{\top}" in latex and r"\odot" in latex


def test_model_file(tmp_path):
    path = tmp_path / "mlp.toml"
    path.write_text(
        'loss = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"\n'
        '[params]\nW1 = [64, 32]\nb1 = [32]\nW2 = "32,10"\nb2 = 10\n'
        '[data]\nX = ["n", 64]\nY = ["n", 10]\n',
        encoding="utf-8",
    )
    model = load_model(path)
    assert model.params == {"W1": (64, 32), "b1": (32,), "W2": (32, 10), "b2": (10,)}
    assert model.data == {"X": ("n", 64), "Y": ("n", 10)}
    assert parse_tensor(model.loss, model.shapes).shape == ()


@pytest.mark.parametrize(
    "content, message",
    [
        ("loss = 3\n", "needs a 'loss"),
        ('loss = "x"\n[params]\nw = [0]\n', "dimension must be positive"),
        ('loss = "x"\nextra = 1\n', "unknown key"),
        ('loss = "x"\n[params]\nw = 3\n[data]\nw = 3\n', "both"),
        ("loss = ", "not valid TOML"),
    ],
)
def test_bad_model_files(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_model(path)


def test_generated_module_is_safe_with_hostile_loss_text():
    # the parser refuses quotes and backslashes before any code is generated
    with pytest.raises(ParseError):
        generate('sum(X @ w) + """', {"X": ("n", 3), "w": (3,)}, ["w"])
    with pytest.raises(ParseError):
        generate("sum(X @ w) \\", {"X": ("n", 3), "w": (3,)}, ["w"])
    source = generate("sum(X @ w)\n  + 1", {"X": ("n", 3), "w": (3,)}, ["w"])
    assert "L = sum(X @ w) + 1\n" in source
    compile(source, "<generated>", "exec")


@pytest.mark.parametrize("name", ["np", "dims", "loss", "float", "BLOCK", "_private"])
def test_reserved_names_are_refused(name):
    with pytest.raises(InputError, match="reserved|builtin"):
        generate(f"sum(X @ {name})", {"X": ("n", 3), name: (3,)}, [name])


def test_parameters_need_integer_sizes_for_codegen():
    with pytest.raises(InputError, match="integer sizes"):
        generate("sum(X @ w)", {"X": ("n", "d"), "w": ("d",)}, ["w"])


def test_generated_source_is_deterministic_ruff_clean_and_documented(tmp_path):
    shapes = {"X": ("n", 4), "w": (4,), "y": ("n",)}
    first = generate("mean((X @ w - y)**2)", shapes, ["w"])
    second = generate("mean((X @ w - y)**2)", shapes, ["w"])
    assert first == second
    assert "dL/dw = 2/n * X.T @ (X @ w - y)" in first
    path = tmp_path / "ls.py"
    write_atomic(path, first.encode("utf-8"))
    assert path.read_text(encoding="utf-8") == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    compile(first, str(path), "exec")
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_generated_module_checks_input_shapes():
    module = compile_tensor("mean((X @ w - y)**2)", {"X": ("n", 4), "w": (4,), "y": ("n",)}, ["w"])
    X, y = np.ones((5, 4)), np.ones(5)
    with pytest.raises(ValueError, match="flat 1-D array of 4 numbers"):
        module.loss(np.ones(3), X, y)
    with pytest.raises(ValueError, match="declared shape"):
        module.loss(np.ones(4), X, np.ones(6))
    with pytest.raises(ValueError, match="dimension"):
        module.loss(np.ones(4), np.ones(4), y)
    with pytest.raises(ValueError, match=r"missing \['w'\]"):
        module.loss({}, X, y)
    assert module.PARAMS == (("w", (4,)),)
    assert module.DATA == ("X", "y")


def test_generated_code_never_builds_diagonals_or_loops():
    source = generate(
        "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))",
        {"X": ("n", 8), "Y": ("n", 3), "W1": (8, 5), "b1": (5,), "W2": (5, 3), "b2": (3,)},
        ["W1", "b1", "W2", "b2"],
    )
    functions = {part.split("(")[0]: part.split("\n\n\n")[0] for part in source.split("\ndef ")[1:]}
    for name in ("loss", "grad", "loss_and_grad"):
        body = functions[name]
        assert "np.diag" not in body and "for " not in body and "np.eye" not in body
    assert functions["loss"].count("np.exp(") == 0  # the loss uses log_softmax only
    assert functions["grad"].count("np.exp(") == 1  # softmax once, shared
    assert functions["loss_and_grad"].count("np.exp(") == 1
    assert functions["loss_and_grad"].count("X @ W1") == 1  # one forward pass


def test_templates_override_falls_back_to_ours_for_the_helpers(tmp_path):
    (tmp_path / "module.py.jinja").write_text(
        '"""custom: {{ doc[0] }}"""\nimport numpy as np\n\n'
        '{% include "helpers/_softplus.py.jinja" %}\n\nPARAMS = {{ params_literal }}\n',
        encoding="utf-8",
    )
    source = generate("sum(X @ w)", {"X": ("n", 2), "w": (2,)}, ["w"], templates=tmp_path)
    assert source.startswith('"""custom: model: a tensor loss') and "def _softplus" in source
    with pytest.raises(InputError, match="not a directory"):
        generate("sum(X @ w)", {"X": ("n", 2), "w": (2,)}, ["w"], templates=tmp_path / "no")
    with pytest.raises(ParseError, match="not a valid name"):
        generate("sum(X @ w)", {"X": ("n", 2), "w": (2,)}, ["w"], name='x"""')


def test_long_products_print_and_generate_in_linear_size():
    from symdiff.autodiff.reverse import tensor_gradient
    from symdiff.explanations.tensor_report import tensor_gradient_report

    def product(k):
        return "sum(" + " * ".join(["w"] * k) + ")"

    sizes = [len(generate(product(k), {"w": (3,)}, ["w"])) for k in (200, 400)]
    assert sizes[1] < 2.2 * sizes[0]
    text = product(1500)  # deeper than Python's default recursion limit
    gradient = tensor_gradient(text, {"w": (3,)}, ["w"])
    report = tensor_gradient_report(
        text, {"w": (3,)}, gradient.loss, gradient.as_dict(), gradient.adjoints
    )
    assert len(report.text()) < 400_000
    assert report.data["gradient"]["w"]["expanded"] is None  # would be quadratic
    module = compile_tensor(text, {"w": (3,)}, ["w"])
    w = np.array([1.0001, 0.9999, 1.0])
    np.testing.assert_allclose(module.grad(w), 1500 * w**1499, rtol=1e-12)


TOKENS = [
    "X",
    "w",
    "y",
    "A",
    "W",
    "lam",
    "n",
    "d",
    "2",
    "0",
    "1.5",
    "+",
    "-",
    "*",
    "/",
    "**",
    "@",
    ".T",
    "(",
    ")",
    ",",
    "axis=",
    "sum(",
    "mean(",
    "softmax(",
    "log(",
    "exp(",
    "cross_entropy(",
    "trace(",
    "relu(",
    "keepdims=1",
    "eye(",
    "dot(",
    "outer(",
    "=",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14))
def test_any_token_soup_parses_or_fails_with_a_user_error(tokens):
    from symdiff.autodiff.reverse import reverse_mode
    from symdiff.errors import SymdiffError

    text = " ".join(tokens)
    try:
        node = parse_tensor(text, SHAPES)
        if node.shape == ():
            leaves = [v for v in walk_vars(node)]
            reverse_mode(node, leaves)
            to_text(node)
    except SymdiffError:
        pass


def walk_vars(node):
    from symdiff.ir.nodes import variables

    return variables(node)


def test_generated_sigmoid_softplus_and_softmax_are_stable_at_extremes():
    import warnings

    module = compile_tensor("sum(sigmoid(z)) + sum(softplus(z)) + logsumexp(z)", {"z": (6,)}, ["z"])
    z = np.array([-1000.0, -40.0, -1.0, 1.0, 40.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = module.loss_and_grad(z)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    sigmoid = 1 / (1 + np.exp(-z[1:-1]))
    expected = sigmoid * (1 - sigmoid) + sigmoid + np.exp(z[1:-1] - 1000.0)
    np.testing.assert_allclose(grad[1:-1], expected, rtol=1e-14)
    assert grad[0] == 0.0 and grad[-1] == 2.0  # sigmoid'(1000) = 0, sigmoid(1000) = 1, softmax 1


def test_evaluate_refuses_an_array_of_the_wrong_fixed_size():
    from symdiff.codegen.tensor import evaluate
    from symdiff.frontend.tensor_parse import parse_tensor

    node = parse_tensor("sum(a * b)", {"a": (3,), "b": (3,)})
    assert evaluate(node, {"a": np.ones(3), "b": np.ones(3)}) == 3.0
    with pytest.raises(InputError, match=r"'a' needs shape \(3,\)"):
        evaluate(node, {"a": np.ones(4), "b": np.ones(3)})
