"""Generated array-API modules (``--backend array-api``) against the NumPy modules.

Every loss of the corpus is generated with both backends; the array-API module runs on NumPy,
array-api-strict and PyTorch CPU float64 arrays and must agree with the NumPy module to 1e-12
(relative to the largest entry) in loss, gradient (flat and dict), Hessian and Hessian-vector
products, with every result an array of the caller's library.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import array_api_compat
import array_api_strict
import numpy as np
import pytest
import torch
from process_support import run_symdiff

import symdiff
from symdiff.codegen.array_api_print import ARRAY_API_NAMES, ArrayApiPrinter
from symdiff.codegen.backends import BACKEND_NAMES
from symdiff.codegen.numpy_print import NUMPY_NAME
from symdiff.codegen.tensor import compile as compile_tensor
from symdiff.primitives import PRIMITIVES

Maker = Callable[[np.random.Generator], tuple[dict[str, np.ndarray], tuple[np.ndarray, ...]]]


@dataclass(frozen=True)
class Case:
    """A loss, its shapes (None: a per-sample loss), names and a maker of params and data."""

    name: str
    text: str
    shapes: dict[str, tuple] | None
    params: tuple[str, ...]
    data: tuple[str, ...]
    make: Maker


def _normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.normal(size=shape)


def _samples(params: tuple[str, ...], data: dict[str, Callable]) -> Maker:
    def make(rng: np.random.Generator) -> tuple[dict, tuple]:
        return {p: rng.normal() * 0.5 for p in params}, tuple(f(rng) for f in data.values())

    return make


def _tensor(params: dict[str, Callable], data: dict[str, Callable]) -> Maker:
    def make(rng: np.random.Generator) -> tuple[dict, tuple]:
        return {k: f(rng) for k, f in params.items()}, tuple(f(rng) for f in data.values())

    return make


def _spd(d: int) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        a = rng.normal(size=(d, d))
        return a @ a.T + d * np.eye(d)

    return make


def _onehot(n: int, k: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: np.eye(k)[rng.integers(0, k, size=n)]


N = 40_000  # more than two blocks of per-sample work (BLOCK = 16384)
LOGISTIC = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"
ATTENTION = (
    "sum((softmax(X @ Wq @ swapaxes(X @ Wk, -1, -2) / sqrt(2)) @ (X @ Wv) - Y) ** 2) / (2 * b)"
)
LAYER_NORM = (
    "sum(((X @ W - mean(X @ W, axis=1, keepdims=1))"
    " / sqrt(mean((X @ W - mean(X @ W, axis=1, keepdims=1))**2, axis=1, keepdims=1) + 0.001)"
    " * g + c - Y)**2) / n"
)
SCALAR = [
    ("least_squares", "(b0 + b1*x - y)**2", ("b0", "b1")),
    ("logistic", LOGISTIC, ("b0", "b1")),
    (
        "huber_like",
        "abs(b0 + b1*x - y) + max(b0*x - y, 0)**2 + min(b1, x) + relu(b0 - x)",
        ("b0", "b1"),
    ),
    ("softplus", "softplus(b0*x + b1) - y*(b0*x + b1)", ("b0", "b1")),
    ("erf", "(erf(b0*x + b1) - y)**2", ("b0", "b1")),
    ("trig", "(sin(b0*x) + cos(b1)*tanh(x) - y)**2 + atan(b0)**2 + asinh(b1*x)", ("b0", "b1")),
    ("logaddexp", "log(exp(b0*x) + exp(b1*y)) + exp(-b0**2) * log(1 + x**2)", ("b0", "b1")),
]
CASES = [
    Case(
        name,
        text,
        None,
        params,
        ("x", "y"),
        _samples(params, {"x": _normal(N), "y": lambda rng: rng.normal(size=N) * 0.5 + 0.5}),
    )  # fmt: skip
    for name, text, params in SCALAR
] + [
    Case(
        "logistic_regression",
        "mean(-y*log(sigmoid(X @ w + b)) - (1-y)*log(1-sigmoid(X @ w + b)))",
        {"X": ("n", 3), "w": (3,), "y": ("n",)},
        ("w", "b"),
        ("X", "y"),
        _tensor(
            {"w": _normal(3), "b": lambda rng: np.float64(0.2)},
            {"X": _normal(60, 3), "y": lambda rng: (rng.random(60) > 0.5) * 1.0},
        ),
    ),
    Case(
        "two_layer_net",
        "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))",
        {"X": ("n", 4), "W1": (4, 5), "b1": (5,), "W2": (5, 3), "b2": (3,), "Y": ("n", 3)},
        ("W1", "b1", "W2", "b2"),
        ("X", "Y"),
        _tensor(
            {"W1": _normal(4, 5), "b1": _normal(5), "W2": _normal(5, 3), "b2": _normal(3)},
            {"X": _normal(50, 4), "Y": _onehot(50, 3)},
        ),
    ),
    Case(
        "layer_norm",
        LAYER_NORM,
        {"X": ("n", 3), "W": (3, 4), "g": (4,), "c": (4,), "Y": ("n", 4)},
        ("W", "g", "c"),
        ("X", "Y"),
        _tensor(
            {"W": _normal(3, 4), "g": _normal(4), "c": _normal(4)},
            {"X": _normal(30, 3), "Y": _normal(30, 4)},
        ),
    ),
    Case(
        "attention",
        ATTENTION,
        {"X": ("b", 4, 3), "Y": ("b", 4, 2), "Wq": (3, 2), "Wk": (3, 2), "Wv": (3, 2)},
        ("Wq", "Wk", "Wv"),
        ("X", "Y"),
        _tensor(
            {"Wq": _normal(3, 2), "Wk": _normal(3, 2), "Wv": _normal(3, 2)},
            {"X": _normal(5, 4, 3), "Y": _normal(5, 4, 2)},
        ),
    ),
    Case(
        "gaussian_logdet_trace",
        "0.5*logdet(S) + 0.5*trace(inv(S) @ R.T @ R)/n",
        {"S": (3, 3), "R": ("n", 3)},
        ("S",),
        ("R",),
        _tensor({"S": _spd(3)}, {"R": _normal(20, 3)}),
    ),
    Case(
        "det_solve_inv",
        "det(A)**2 + sum(solve(A, B)**2) + sum(inv(A) * C)",
        {"A": (3, 3), "B": (3, 2), "C": (3, 3)},
        ("A",),
        ("B", "C"),
        _tensor({"A": _spd(3)}, {"B": _normal(3, 2), "C": _normal(3, 3)}),
    ),
    Case(
        "reductions_axes",
        "mean(logsumexp(X * w, axis=(1, 2))) + sum(sum(X * w, axis=(0, 2), keepdims=1)**2) / n"
        " + sum(max(X * w, axis=2)) / n",
        {"X": ("n", 3, 4), "w": (4,)},
        ("w",),
        ("X",),
        _tensor({"w": _normal(4)}, {"X": _normal(10, 3, 4)}),
    ),
    Case(
        "einsum",
        "mean((einsum('btk,k->bt', Xw, w) - y)**2) + sum(einsum('ij,jk->ki', A, V)**2)",
        {"Xw": ("b", 5, 3), "w": (3,), "y": ("b", 5), "V": (3, 2), "A": (4, 3)},
        ("w", "V"),
        ("Xw", "y", "A"),
        _tensor(
            {"w": _normal(3), "V": _normal(3, 2)},
            {"Xw": _normal(6, 5, 3), "y": _normal(6, 5), "A": _normal(4, 3)},
        ),
    ),
    Case(
        "kron_outer_diag",
        "sum(kron(W, C) * D) + sum(outer(u, v) * W) + sum((diag(u) @ W)**2) + sum(diag(W)**2)"
        " + frobenius(W @ C) + 0.1 * norm1(W)",
        {"W": (2, 2), "C": (2, 2), "D": (4, 4), "u": (2,), "v": (2,)},
        ("W", "u"),
        ("C", "D", "v"),
        _tensor(
            {"W": _normal(2, 2), "u": _normal(2)},
            {"C": _normal(2, 2), "D": _normal(4, 4), "v": _normal(2)},
        ),
    ),
    Case(
        "tanh_regression_swap",
        "sum((tanh(X @ W) @ swapaxes(reshape(v, (1, 2)), 0, 1) - reshape(y, (n, 1)))**2) / n",
        {"X": ("n", 3), "W": (3, 2), "v": (2,), "y": ("n",)},
        ("W", "v"),
        ("X", "y"),
        _tensor({"W": _normal(3, 2), "v": _normal(2)}, {"X": _normal(25, 3), "y": _normal(25)}),
    ),
]
BY_NAME = {case.name: case for case in CASES}


@functools.cache
def modules(name: str) -> tuple[Any, Any]:
    """(NumPy module, array-API module) of a corpus case, both with second derivatives."""
    case = BY_NAME[name]
    if case.shapes is None:
        return tuple(
            symdiff.compile(case.text, case.params, case.data, hessian=True, backend=backend)
            for backend in BACKEND_NAMES
        )
    return tuple(
        compile_tensor(
            case.text, case.shapes, case.params, case.data, hessian=True, backend=backend
        )
        for backend in BACKEND_NAMES
    )


def _strict(a: np.ndarray) -> Any:
    return array_api_strict.asarray(np.asarray(a, dtype=np.float64))


LIBRARIES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], bool]]] = {
    "numpy": (np.asarray, lambda a: isinstance(a, np.ndarray)),
    "array_api_strict": (_strict, array_api_compat.is_array_api_strict_namespace),
    "torch": (lambda a: torch.asarray(np.asarray(a, dtype=np.float64)), torch.is_tensor),
}


def _library_of(value: Any) -> str:
    xp = array_api_compat.array_namespace(value)
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return "torch" if array_api_compat.is_torch_namespace(xp) else "numpy"


def _to_numpy(value: Any) -> np.ndarray:
    if torch.is_tensor(value):
        return value.numpy()
    return np.asarray(value) if isinstance(value, np.ndarray) else np.from_dlpack(value)


def assert_same(actual: Any, expected: Any, library: str, what: str) -> None:
    """``actual`` is a float64 array of ``library`` equal to ``expected`` to 1e-12 relative."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), what
        for key in expected:
            assert_same(actual[key], expected[key], library, f"{what}[{key}]")
        return
    assert _library_of(actual) == library, f"{what}: {type(actual)} is not a {library} array"
    assert "float64" in str(actual.dtype), f"{what}: dtype {actual.dtype}"
    got, want = _to_numpy(actual), np.asarray(expected, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale, err_msg=what)


def _flat(params: dict[str, Any]) -> np.ndarray:
    return np.concatenate([np.ravel(v) for v in params.values()])


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("name", list(BY_NAME))
def test_array_api_module_agrees_with_numpy_module(name: str, library: str) -> None:
    case = BY_NAME[name]
    reference, module = modules(name)
    params, data = case.make(np.random.default_rng(len(name)))
    convert, _ = LIBRARIES[library]
    flat = _flat(params)
    args = [convert(d) for d in data]
    dict_params = {k: convert(v) for k, v in params.items()}

    loss = module.loss(convert(flat), *args)
    assert_same(loss, reference.loss(flat, *data), library, "loss")
    assert loss.ndim == 0
    assert_same(module.grad(convert(flat), *args), reference.grad(flat, *data), library, "grad")
    assert_same(module.grad(dict_params, *args), reference.grad(params, *data), library, "dict")
    value, gradient = module.loss_and_grad(dict_params, *args)
    expected_value, expected_gradient = reference.loss_and_grad(params, *data)
    assert_same(value, expected_value, library, "loss_and_grad value")
    assert_same(gradient, expected_gradient, library, "loss_and_grad gradient")
    hessian = module.hessian(convert(flat), *args)
    assert_same(hessian, reference.hessian(flat, *data), library, "hessian")
    if case.shapes is not None:
        direction = np.random.default_rng(1).normal(size=flat.size)
        assert_same(
            module.hvp(convert(flat), convert(direction), *args),
            reference.hvp(flat, direction, *data),
            library,
            "hvp",
        )
        directions = dict(
            zip(
                params,
                np.split(direction, np.cumsum([np.size(v) for v in params.values()])[:-1]),
                strict=True,
            )
        )
        directions = {k: np.reshape(v, np.shape(params[k])) for k, v in directions.items()}
        assert_same(
            module.hvp(dict_params, {k: convert(v) for k, v in directions.items()}, *args),
            reference.hvp(params, directions, *data),
            library,
            "hvp dict",
        )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("library", ["array_api_strict", "torch"])
def test_wrong_shapes_raise_the_numpy_module_messages(library: str) -> None:
    reference, module = modules("logistic_regression")
    convert, _ = LIBRARIES[library]
    params, (X, y) = BY_NAME["logistic_regression"].make(np.random.default_rng(0))
    flat = _flat(params)
    bad_calls = [
        ((flat, X[:, :2], y), (convert(flat), convert(X[:, :2]), convert(y))),
        ((flat[:3], X, y), (convert(flat[:3]), convert(X), convert(y))),
        ((flat, X, y[:-1]), (convert(flat), convert(X), convert(y[:-1]))),
        (({"w": flat[:3]}, X, y), ({"w": convert(flat[:3])}, convert(X), convert(y))),
        (
            ({"w": flat[:2], "b": 0.0}, X, y),
            ({"w": convert(flat[:2]), "b": 0.0}, convert(X), convert(y)),
        ),
        ((flat, X), (convert(flat), convert(X))),
        ((flat, X[:0], y[:0]), (convert(flat), convert(X[:0]), convert(y[:0]))),
    ]
    for numpy_args, library_args in bad_calls:
        with pytest.raises(ValueError) as expected:
            reference.loss(*numpy_args)
        with pytest.raises(ValueError) as raised:
            module.loss(*library_args)
        assert str(raised.value) == str(expected.value)


def test_per_sample_shapes_that_do_not_broadcast_are_refused() -> None:
    reference, module = modules("least_squares")
    x, y = np.ones(5), np.ones(4)
    with pytest.raises(ValueError) as expected:
        reference.loss(np.zeros(2), x, y)
    for library in ("array_api_strict", "torch"):
        convert, _ = LIBRARIES[library]
        with pytest.raises(ValueError) as raised:
            module.loss(convert(np.zeros(2)), convert(x), convert(y))
        assert str(raised.value) == str(expected.value)


def test_wrong_dtypes_raise_value_error() -> None:
    reference, module = modules("least_squares")
    x = np.linspace(0.0, 1.0, 7)
    complex_params = np.zeros(2, dtype=complex)
    with pytest.raises(ValueError) as expected:
        reference.loss(complex_params, x, x)
    with pytest.raises(ValueError) as raised:
        module.loss(complex_params, x, x)  # NumPy arrays: the very same message
    assert (
        str(raised.value)
        == str(expected.value)
        == ("params must hold real numbers, got dtype complex128")
    )
    with pytest.raises(ValueError, match=r"data 'x' must hold real numbers, got dtype torch\.c"):
        module.loss(
            torch.zeros(2, dtype=torch.float64),
            torch.zeros(7, dtype=torch.complex128),
            torch.zeros(7),
        )
    with pytest.raises(ValueError, match="parameter 'b0' must hold real numbers"):
        module.loss({"b0": "text", "b1": torch.zeros(())}, torch.asarray(x), torch.asarray(x))
    # integers and booleans are real numbers: computed in float64 like the NumPy module
    ints = module.grad(torch.tensor([1, 2]), torch.arange(7), torch.arange(7) % 2 == 0)
    assert ints.dtype == torch.float64
    assert_same(
        ints, reference.grad(np.array([1, 2]), np.arange(7), np.arange(7) % 2 == 0), "torch", "int"
    )


def test_mixing_array_libraries_is_one_clear_error() -> None:
    _, module = modules("logistic_regression")
    params, (X, y) = BY_NAME["logistic_regression"].make(np.random.default_rng(0))
    flat = _flat(params)
    with pytest.raises(ValueError, match=r"mix array libraries \(.*torch.Tensor"):
        module.grad(torch.asarray(flat), _strict(X), _strict(y))
    with pytest.raises(ValueError, match="mix array libraries"):
        module.loss(
            {"w": torch.asarray(params["w"]), "b": np.float64(0.0)},
            torch.asarray(X),
            torch.asarray(y),
        )
    with pytest.raises(ValueError, match="hold no arrays"):
        module.loss([0.0] * 4, X.tolist(), y.tolist())


# --------------------------------------------------------------------------- the printer


def test_every_numpy_name_of_the_primitives_table_is_in_the_standard() -> None:
    """Each np.NAME a lowering uses maps (through the one table) to a function that
    array-api-strict, the standard and nothing more, has."""
    printer = ArrayApiPrinter()
    checked = 0
    for row in PRIMITIVES.values():
        for name in NUMPY_NAME.findall(row.numpy or ""):
            if name in ARRAY_API_NAMES and ARRAY_API_NAMES[name] is None:
                assert hasattr(printer, f"op_{name}"), name  # formulated by a method
                continue
            target: Any = array_api_strict
            for part in printer.fn(name).removeprefix("xp.").split("."):
                target = getattr(target, part)
            assert callable(target), name
            checked += 1
    assert checked >= 20
    assert printer.fn("arcsin") == "xp.asin" and printer.fn("transpose") == "xp.permute_dims"


def test_cli_backend_names_match_the_library() -> None:
    from symdiff.cli.codegen import BACKENDS

    assert BACKENDS == BACKEND_NAMES == ("numpy", "array-api")


# --------------------------------------------------------------------------- the CLI


def _top_level_imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


def test_cli_backend_writes_a_module_without_numpy(tmp_path: Path) -> None:
    target = tmp_path / "ls.py"
    done = run_symdiff(
        "codegen", "(b0 + b1*x - y)**2", "--params", "b0,b1", "--data", "x,y", "--hessian",
        "--backend", "array-api", "-o", str(target), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = target.read_text()
    assert _top_level_imports(source) == {"math", "array_api_compat"}
    assert "np." not in source and "numpy" not in source.split('"""', 2)[2]
    assert "--backend array-api" in source.split('"""', 2)[1]  # the regenerate command
    default = run_symdiff("codegen", "(b0 + b1*x - y)**2", "--params", "b0,b1", "--data", "x,y")
    assert _top_level_imports(default.stdout) == {"numpy"}
    namespace: dict[str, Any] = {}
    exec(compile(source, str(target), "exec"), namespace)  # noqa: S102 - our generated file
    x = torch.linspace(0.0, 1.0, 9, dtype=torch.float64)
    loss = namespace["loss"](torch.tensor([1.0, 2.0], dtype=torch.float64), x, 3 * x)
    assert torch.is_tensor(loss) and float(loss) == pytest.approx(float(torch.mean((1 - x) ** 2)))


def test_cli_backend_with_a_model_file_and_hessian(tmp_path: Path) -> None:
    model = tmp_path / "net.toml"
    model.write_text(
        'loss = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"\n'
        "[params]\nW1 = [4, 5]\nb1 = [5]\nW2 = [5, 3]\nb2 = [3]\n"
        '[data]\nX = ["n", 4]\nY = ["n", 3]\n'
    )
    done = run_symdiff(
        "codegen", "--model", str(model), "--hessian", "--backend", "array-api", timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert _top_level_imports(done.stdout) == {"math", "array_api_compat"}
    namespace: dict[str, Any] = {}
    exec(compile(done.stdout, "net", "exec"), namespace)  # noqa: S102 - our generated source
    reference, _ = modules("two_layer_net")
    params, data = BY_NAME["two_layer_net"].make(np.random.default_rng(3))
    flat = _flat(params)
    got = namespace["hvp"](_strict(flat), _strict(flat), *map(_strict, data))
    assert_same(got, reference.hvp(flat, flat, *data), "array_api_strict", "hvp")


def test_cli_unknown_backend_is_one_line_exit_2() -> None:
    done = run_symdiff("codegen", "x**2", "--params", "x", "--backend", "cupy")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown backend 'cupy'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_name_the_array_api_module_uses_is_refused() -> None:
    from symdiff.errors import InputError

    symdiff.generate("(xp - y)**2", "xp", "y")  # fine in a NumPy module
    with pytest.raises(InputError, match="'xp' is reserved: the array-api module uses it"):
        symdiff.generate("(xp - y)**2", "xp", "y", backend="array-api")
