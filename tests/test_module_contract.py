"""The generated module's contract, checked the same way on scalar and tensor modules.

One list of modules (``SPECS``: per-sample scalar losses from ``symdiff.compile`` and tensor
losses from ``symdiff.compile_tensor``) goes through every check of the interface that README.md
promises for both kinds ("The module's interface", "Tensor losses"): params as a dict or a flat
vector and the gradient in the same form, ``loss_and_grad == (loss, grad)``, clear ``ValueError``s
for bad params and data (unknown or missing keys, wrong shapes, wrong number of arrays, complex /
object / string data, zero samples), gradients against central differences, exact values at
|z| = 1000, hostile and colliding names (user names, temporaries, helpers and dimension names:
refused with ``InputError`` or a module that computes the same numbers as with plain names),
functions the code generator cannot lower (refused at generation, never a ``NameError`` later),
and the cross-path check: a per-sample loss written once as a scalar loss and once as a tensor
loss over vectors of shape (n,) gives the same loss and gradient to 1e-12.

Only the public API is used: ``symdiff.compile`` / ``symdiff.generate``,
``symdiff.compile_tensor`` / ``symdiff.generate_tensor``, the ``symdiff codegen`` command, and
the generated modules' ``PARAMS``, ``DATA``, ``loss``, ``grad`` and ``loss_and_grad``.

Related tests elsewhere (not repeated here, only generalised to both kinds):
``tests/test_codegen_interface.py`` (the scalar module's interface, bad inputs, reserved names,
stability at z = +-1000, goldens) and ``tests/test_tensor_shapes.py`` (tensor shape checks,
reserved names, stability of sigmoid / softplus / logsumexp).
"""

from __future__ import annotations

import functools
import math
import re
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symdiff
from symdiff.cli import cli

N_ROWS = 7

#: Random points: deterministic (derandomize) so a failure reproduces, and few, so the file is fast.
RANDOM_POINTS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- helpers


def central_differences(f: Callable[[np.ndarray], float], point: np.ndarray) -> np.ndarray:
    """Central differences of f at a flat float64 point, step 1e-6 (relative to the entry)."""
    gradient = np.empty_like(point)
    for i in range(point.size):
        step = 1e-6 * max(1.0, abs(point[i]))
        up, down = point.copy(), point.copy()
        up[i] += step
        down[i] -= step
        gradient[i] = (f(up) - f(down)) / (up[i] - down[i])
    return gradient


def assert_matches_differences(module: types.ModuleType, flat: np.ndarray, data: tuple) -> None:
    """grad(flat, *data) agrees with central differences of loss to ~1e-6 relative."""
    value = module.loss(flat, *data)
    gradient = np.asarray(module.grad(flat, *data), dtype=np.float64)
    expected = central_differences(lambda p: module.loss(p, *data), flat)
    assert np.all(np.isfinite(gradient)), gradient
    # rounding in the differences is about 1e-16 * |L| / 1e-6; allow 50x that, plus 1e-6 relative
    tolerance = 1e-6 * np.abs(expected) + 1e-8 * max(1.0, abs(value))
    error = np.abs(gradient - expected)
    assert np.all(error <= tolerance), (
        f"gradient {gradient} differs from central differences {expected} "
        f"(max error {error.max():.3g})"
    )


def names_of(module: types.ModuleType) -> list[str]:
    return [name for name, _ in module.PARAMS]


def size_of(module: types.ModuleType) -> int:
    return sum(int(np.prod(shape, dtype=int)) for _, shape in module.PARAMS)


def random_point(module: types.ModuleType, rng: np.random.Generator, scale: float = 0.7) -> dict:
    return {
        name: np.asarray(rng.normal(scale=scale, size=shape), dtype=np.float64)
        for name, shape in module.PARAMS
    }


def flatten(module: types.ModuleType, point: dict) -> np.ndarray:
    return np.concatenate(
        [np.ravel(np.asarray(point[name], dtype=np.float64)) for name in names_of(module)]
    )


def assert_names(message: str, *names: str) -> None:
    """The message names at least one of ``names`` (as a word, not inside another name)."""
    assert any(
        re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message) for n in names
    ), f"message does not name {' or '.join(names)}: {message!r}"


def one_hot(rng: np.random.Generator, rows: int, classes: int) -> np.ndarray:
    return np.eye(classes)[rng.integers(0, classes, size=rows)]


# --------------------------------------------------------------------------- the modules


@dataclass(frozen=True)
class Spec:
    """A module under contract: how to build it, its data, and data of wrong shapes."""

    id: str
    kind: str  # "scalar" or "tensor"
    loss: str
    params: tuple[str, ...]
    data: tuple[str, ...]
    shapes: dict = field(default_factory=dict)  # tensor only
    make_data: Callable[[np.random.Generator, int], tuple] = None  # type: ignore[assignment]
    bad_data: Callable[[np.random.Generator], list] = None  # type: ignore[assignment]

    def build(self) -> types.ModuleType:
        if self.kind == "scalar":
            return symdiff.compile(self.loss, list(self.params), list(self.data))
        return symdiff.compile_tensor(self.loss, self.shapes, list(self.params), list(self.data))


def _scalar_data(binary_y: bool):
    def make(rng: np.random.Generator, rows: int) -> tuple:
        x = rng.normal(size=rows)
        y = rng.integers(0, 2, size=rows).astype(float) if binary_y else rng.normal(size=rows)
        return x, y

    return make


def _scalar_bad(rng: np.random.Generator) -> list:
    x, y = rng.normal(size=N_ROWS), rng.normal(size=N_ROWS - 1)
    return [
        (x, y),  # 7 and 6 samples do not broadcast
        (rng.normal(size=(N_ROWS, 2)), rng.normal(size=N_ROWS)),  # (7, 2) with (7,)
    ]


def _ls_data(rng: np.random.Generator, rows: int) -> tuple:
    return rng.normal(size=(rows, 3)), rng.normal(size=rows)


def _ls_bad(rng: np.random.Generator) -> list:
    X, y = _ls_data(rng, N_ROWS)
    return [
        (rng.normal(size=(N_ROWS, 4)), y),  # X has 4 columns, declared 3
        (X[:, 0], y),  # X is a vector
        (X, rng.normal(size=N_ROWS + 1)),  # y has another number of rows
        (X, y.reshape(-1, 1)),  # y is a column
    ]


def _logistic_data(rng: np.random.Generator, rows: int) -> tuple:
    return rng.normal(size=(rows, 3)), rng.integers(0, 2, size=rows).astype(float)


def _mlp_data(rng: np.random.Generator, rows: int) -> tuple:
    return rng.normal(size=(rows, 3)), one_hot(rng, rows, 2)


def _mlp_bad(rng: np.random.Generator) -> list:
    X, Y = _mlp_data(rng, N_ROWS)
    return [
        (rng.normal(size=(N_ROWS, 4)), Y),  # X has 4 columns, declared 3
        (X, one_hot(rng, N_ROWS, 3)),  # Y has 3 classes, declared 2
        (X, one_hot(rng, N_ROWS - 1, 2)),  # fewer rows in Y than in X
        (X[0], Y),  # X is a vector
    ]


LOGISTIC = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"
MLP = "cross_entropy(Y, softmax(tanh(X @ W1 + b1) @ W2 + b2))"
MLP_SHAPES = {"X": ("n", 3), "Y": ("n", 2), "W1": (3, 4), "b1": (4,), "W2": (4, 2), "b2": (2,)}

SPECS = [
    Spec(
        "scalar_logistic",
        "scalar",
        LOGISTIC,
        ("b0", "b1"),
        ("x", "y"),
        make_data=_scalar_data(True),
        bad_data=_scalar_bad,
    ),
    Spec(
        "scalar_squared_error",
        "scalar",
        "(w*x + b - y)**2",
        ("w", "b"),
        ("x", "y"),
        make_data=_scalar_data(False),
        bad_data=_scalar_bad,
    ),
    Spec(
        "tensor_least_squares",
        "tensor",
        "mean((X @ w - y)**2)",
        ("w",),
        ("X", "y"),
        shapes={"X": ("n", 3), "w": (3,), "y": ("n",)},
        make_data=_ls_data,
        bad_data=_ls_bad,
    ),
    Spec(
        "tensor_logistic",
        "tensor",
        "mean(softplus(X @ w + c) - y*(X @ w + c))",
        ("w", "c"),
        ("X", "y"),
        shapes={"X": ("n", 3), "w": (3,), "c": (), "y": ("n",)},
        make_data=_logistic_data,
        bad_data=_ls_bad,
    ),
    Spec(
        "tensor_two_layer",
        "tensor",
        MLP,
        ("W1", "b1", "W2", "b2"),
        ("X", "Y"),
        shapes=MLP_SHAPES,
        make_data=_mlp_data,
        bad_data=_mlp_bad,
    ),
]
SPEC_IDS = [s.id for s in SPECS]


@functools.cache
def module_of(spec_id: str) -> types.ModuleType:
    return next(s for s in SPECS if s.id == spec_id).build()


@pytest.fixture(params=SPECS, ids=SPEC_IDS)
def spec(request) -> Spec:
    return request.param


@pytest.fixture
def module(spec: Spec) -> types.ModuleType:
    return module_of(spec.id)


@pytest.fixture
def sample(spec: Spec, module: types.ModuleType) -> tuple[dict, np.ndarray, tuple]:
    """(a point as a dict, the same point flat, data of N_ROWS samples), fixed seed."""
    rng = np.random.default_rng(20240601)
    point = random_point(module, rng)
    return point, flatten(module, point), spec.make_data(rng, N_ROWS)


# --------------------------------------------------------------------------- interface


def test_interface_names_match_the_spec(spec: Spec, module) -> None:
    assert names_of(module) == list(spec.params)
    assert tuple(module.DATA) == spec.data
    for name, shape in module.PARAMS:
        assert isinstance(shape, tuple), (name, shape)
        assert shape == tuple(spec.shapes.get(name, ())), (name, shape)
    for function in ("loss", "grad", "loss_and_grad"):
        assert callable(getattr(module, function))


def test_dict_and_flat_params_give_the_same_loss_and_gradient_in_their_own_form(
    module, sample
) -> None:
    point, flat, data = sample
    point_copy, flat_copy = {k: v.copy() for k, v in point.items()}, flat.copy()

    value = module.loss(flat, *data)
    assert type(value) is float and math.isfinite(value)
    assert module.loss(point, *data) == value
    assert module.loss(list(flat), *data) == value  # any 1-D sequence of numbers

    flat_gradient = module.grad(flat, *data)
    assert isinstance(flat_gradient, np.ndarray)
    assert flat_gradient.dtype == np.float64 and flat_gradient.shape == (size_of(module),)

    dict_gradient = module.grad(point, *data)
    assert isinstance(dict_gradient, dict)
    assert list(dict_gradient) == names_of(module)  # same keys, PARAMS order
    for name, shape in module.PARAMS:
        assert np.shape(dict_gradient[name]) == shape, name
        assert np.asarray(dict_gradient[name]).dtype == np.float64, name
    np.testing.assert_array_equal(flatten(module, dict_gradient), flat_gradient)

    for params, gradient in ((flat, flat_gradient), (point, dict_gradient)):
        both = module.loss_and_grad(params, *data)
        assert isinstance(both, tuple) and len(both) == 2
        assert type(both[0]) is float and both[0] == value
        if isinstance(gradient, dict):
            assert list(both[1]) == list(gradient)
            for name in gradient:
                np.testing.assert_array_equal(both[1][name], gradient[name])
        else:
            np.testing.assert_array_equal(both[1], gradient)

    # the inputs are not modified
    np.testing.assert_array_equal(flat, flat_copy)
    for name in point:
        np.testing.assert_array_equal(point[name], point_copy[name])


def test_integer_params_and_data_are_read_as_float64(spec: Spec, module, sample) -> None:
    _, flat, data = sample
    whole = np.round(flat * 3)
    rounded = tuple(np.round(a) for a in data)
    if spec.id == "tensor_two_layer":
        rounded = (rounded[0], data[1])  # one-hot targets are integers already
    as_int = tuple(a.astype(np.int64) for a in rounded)
    assert module.loss(whole.astype(np.int64), *as_int) == module.loss(whole, *rounded)


# --------------------------------------------------------------------------- bad params


@pytest.mark.parametrize("form", ["loss", "grad", "loss_and_grad"])
def test_unknown_params_dict_key_is_a_value_error_naming_it(module, sample, form) -> None:
    point, _, data = sample
    with pytest.raises(ValueError) as info:
        getattr(module, form)({**point, "bogus_key": 1.0}, *data)
    assert_names(str(info.value), "bogus_key")


def test_every_missing_params_dict_key_is_a_value_error_naming_it(module, sample) -> None:
    point, _, data = sample
    for name in names_of(module):
        partial = {k: v for k, v in point.items() if k != name}
        with pytest.raises(ValueError) as info:
            module.loss_and_grad(partial, *data)
        assert_names(str(info.value), name)


def test_params_dict_value_of_the_wrong_shape_is_a_value_error(module, sample) -> None:
    point, _, data = sample
    for name, shape in module.PARAMS:
        size = int(np.prod(shape, dtype=int))
        for wrong in (np.zeros(shape + (2,)), np.zeros(size + 1), np.zeros((1,) + shape)):
            with pytest.raises(ValueError):
                module.loss_and_grad({**point, name: wrong}, *data)


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda size: np.zeros(size + 1), id="one_too_many"),
        pytest.param(lambda size: np.zeros(size - 1), id="one_too_few"),
        pytest.param(lambda size: np.zeros((size, 1)), id="column"),
        pytest.param(lambda size: np.zeros((1, size)), id="row"),
        pytest.param(lambda size: np.float64(0.0), id="zero_dimensional"),
    ],
)
def test_flat_params_of_the_wrong_size_or_not_1d_are_a_value_error(module, sample, wrong) -> None:
    """Every module here has at least 2 parameter values, so a 0-d number is the wrong size."""
    _, flat, data = sample
    assert flat.size >= 2
    with pytest.raises(ValueError):
        module.loss_and_grad(wrong(flat.size), *data)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda flat: flat + 0.5j, id="complex"),
        pytest.param(lambda flat: flat.astype(object), id="object"),
        pytest.param(lambda flat: flat.astype(str), id="string"),
    ],
)
def test_params_that_are_not_real_numbers_are_a_value_error(module, sample, make) -> None:
    point, flat, data = sample
    with pytest.raises(ValueError):
        module.loss_and_grad(make(flat), *data)
    first = names_of(module)[0]
    with pytest.raises(ValueError):
        module.loss_and_grad(
            {**point, first: make(np.atleast_1d(point[first])).reshape(np.shape(point[first]))},
            *data,
        )


# --------------------------------------------------------------------------- bad data


def test_data_of_the_wrong_shape_is_a_value_error(spec: Spec, module, sample) -> None:
    _, flat, _ = sample
    for data in spec.bad_data(np.random.default_rng(5)):
        with pytest.raises(ValueError):
            module.loss_and_grad(flat, *data)


@pytest.mark.parametrize("form", ["loss", "grad", "loss_and_grad"])
def test_wrong_number_of_data_arrays_is_a_value_error(module, sample, form) -> None:
    _, flat, data = sample
    with pytest.raises(ValueError):
        getattr(module, form)(flat, *data[:-1])
    with pytest.raises(ValueError):
        getattr(module, form)(flat, *data, data[-1])
    with pytest.raises(ValueError):
        getattr(module, form)(flat)


DTYPES = [
    pytest.param(lambda a: a + 0.5j, id="complex"),
    pytest.param(lambda a: a.astype(np.complex128), id="complex_zero_imaginary"),
    pytest.param(lambda a: a.astype(object), id="object"),
    pytest.param(lambda a: a.astype(str), id="string"),
]


@pytest.mark.parametrize("make", DTYPES)
def test_data_that_is_not_real_numbers_is_a_value_error_not_cast(module, sample, make) -> None:
    _, flat, data = sample
    for position in range(len(data)):
        bad = tuple(make(a) if i == position else a for i, a in enumerate(data))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a ComplexWarning is a silent cast, not a refusal
            with pytest.raises(ValueError):
                module.loss_and_grad(flat, *bad)


@pytest.mark.parametrize("form", ["loss", "grad", "loss_and_grad"])
def test_zero_samples_is_a_value_error_never_nan(spec: Spec, module, sample, form) -> None:
    _, flat, _ = sample
    empty = spec.make_data(np.random.default_rng(0), 0)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        with pytest.raises(ValueError):
            getattr(module, form)(flat, *empty)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("spec_id", SPEC_IDS)
@RANDOM_POINTS
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.1, 1.0, 2.0]))
def test_gradient_matches_central_differences_at_random_points(
    spec_id: str, seed: int, scale: float
) -> None:
    spec = next(s for s in SPECS if s.id == spec_id)
    module = module_of(spec_id)
    rng = np.random.default_rng(seed)
    point = random_point(module, rng, scale)
    data = spec.make_data(rng, N_ROWS)
    flat = flatten(module, point)
    assert_matches_differences(module, flat, data)
    value, gradient = module.loss_and_grad(point, *data)
    assert value == module.loss(flat, *data)
    np.testing.assert_array_equal(flatten(module, gradient), module.grad(flat, *data))


# --------------------------------------------------------------------------- stability


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


Z = [1000.0, -1000.0, 3.0, -2.0, 0.5]
Y = [0.0, 1.0, 1.0, 0.0, 1.0]
# per sample: softplus(z) - y*z, gradient (sigmoid(z) - y) * z at w = 1 (x = z)
SOFTPLUS_SUM = sum(_softplus(z) for z in Z)
SOFTPLUS_GRAD_SUM = sum(z * _sigmoid(z) for z in Z)
LOGISTIC_MEAN = sum(_softplus(z) - y * z for z, y in zip(Z, Y, strict=True)) / len(Z)
LOGISTIC_GRAD_MEAN = sum((_sigmoid(z) - y) * z for z, y in zip(Z, Y, strict=True)) / len(Z)

STABILITY = [
    pytest.param(
        lambda: symdiff.compile("log(1 + exp(w*x))", "w", "x", reduce="sum"),
        (np.array(Z),),
        SOFTPLUS_SUM,
        SOFTPLUS_GRAD_SUM,
        id="scalar_log1p_exp",
    ),
    pytest.param(
        lambda: symdiff.compile("log(1 + exp(w*x))", "w", "x"),
        (np.array(Z),),
        SOFTPLUS_SUM / len(Z),
        SOFTPLUS_GRAD_SUM / len(Z),
        id="scalar_log1p_exp_mean",
    ),
    pytest.param(
        lambda: symdiff.compile("-y*log(sigmoid(w*x)) - (1-y)*log(1 - sigmoid(w*x))", "w", "x,y"),
        (np.array(Z), np.array(Y)),
        LOGISTIC_MEAN,
        LOGISTIC_GRAD_MEAN,
        id="scalar_logistic",
    ),
    pytest.param(
        lambda: symdiff.compile_tensor(
            "sum(log(1 + exp(X @ w)))", {"X": ("n", 1), "w": (1,)}, ["w"], ["X"]
        ),
        (np.array(Z).reshape(-1, 1),),
        SOFTPLUS_SUM,
        SOFTPLUS_GRAD_SUM,
        id="tensor_log1p_exp",
    ),
    pytest.param(
        lambda: symdiff.compile_tensor(
            "sum(softplus(X @ w))", {"X": ("n", 1), "w": (1,)}, ["w"], ["X"]
        ),
        (np.array(Z).reshape(-1, 1),),
        SOFTPLUS_SUM,
        SOFTPLUS_GRAD_SUM,
        id="tensor_softplus",
    ),
    pytest.param(
        lambda: symdiff.compile_tensor(
            "-mean(y*log(sigmoid(X @ w)) + (1 - y)*log(1 - sigmoid(X @ w)))",
            {"X": ("n", 1), "w": (1,), "y": ("n",)},
            ["w"],
            ["X", "y"],
        ),
        (np.array(Z).reshape(-1, 1), np.array(Y)),
        LOGISTIC_MEAN,
        LOGISTIC_GRAD_MEAN,
        id="tensor_logistic",
    ),
    pytest.param(
        lambda: symdiff.compile_tensor(
            "mean(log(1 + exp(X @ w)) - y*(X @ w))",
            {"X": ("n", 1), "w": (1,), "y": ("n",)},
            ["w"],
            ["X", "y"],
        ),
        (np.array(Z).reshape(-1, 1), np.array(Y)),
        LOGISTIC_MEAN,
        LOGISTIC_GRAD_MEAN,
        id="tensor_logistic_log1p_exp",
    ),
]


@pytest.mark.parametrize("build, data, expected_loss, expected_grad", STABILITY)
def test_logistic_style_losses_are_exact_at_z_plus_minus_1000(
    build, data, expected_loss, expected_grad
) -> None:
    """softplus(1000) = 1000, softplus(-1000) = 0, sigmoid(1000) = 1: no inf, no NaN, no warning."""
    module = build()
    with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value, gradient = module.loss_and_grad(np.array([1.0]), *data)
        alone = module.loss(np.array([1.0]), *data)
    assert math.isfinite(value) and np.all(np.isfinite(gradient)), (value, gradient)
    assert value == pytest.approx(expected_loss, rel=1e-14, abs=1e-12)
    assert alone == value
    assert np.shape(gradient) == (1,)
    assert gradient[0] == pytest.approx(expected_grad, rel=1e-14, abs=1e-12)


# --------------------------------------------------------------------------- hostile names


@dataclass(frozen=True)
class Base:
    """A loss written with plain names; hostile cases rename its symbols and dimensions."""

    kind: str
    loss: str
    params: tuple[str, ...]
    data: tuple[str, ...]
    shapes: dict
    make_data: Callable[[np.random.Generator, int], tuple]

    def renamed(self, renames: dict[str, str]) -> tuple[str, list, list, dict]:
        def one(name):
            return renames.get(name, name) if isinstance(name, str) else name

        loss = self.loss
        if renames:  # every symbol at once, whole words only (X but not X in "max")
            pattern = re.compile(r"\b(" + "|".join(map(re.escape, renames)) + r")\b")
            loss = pattern.sub(lambda m: renames[m.group(1)], loss)
        shapes = {one(k): tuple(one(d) for d in v) for k, v in self.shapes.items()}
        return loss, [one(p) for p in self.params], [one(d) for d in self.data], shapes

    def build(self, renames: dict[str, str] | None = None) -> types.ModuleType:
        loss, params, data, shapes = self.renamed(renames or {})
        if self.kind == "scalar":
            return symdiff.compile(loss, params, data)
        return symdiff.compile_tensor(loss, shapes, params, data)

    def source(self, renames: dict[str, str]) -> str:
        loss, params, data, shapes = self.renamed(renames)
        if self.kind == "scalar":
            return symdiff.generate(loss, params, data)
        return symdiff.generate_tensor(loss, shapes, params, data)

    def cli_args(self, renames: dict[str, str]) -> list[str]:
        loss, params, data, shapes = self.renamed(renames)
        args = ["codegen", "--params", ",".join(params), "--data", ",".join(data)]
        for name, shape in shapes.items():
            args += ["--shape", f"{name}={','.join(str(d) for d in shape)}"]
        return [*args, "--", loss]


BASES = {
    # scalar temporaries: sum_1 = W*x + b, softplus_1, d_sum_1, grad_W, grad_b
    "scalar": Base(
        "scalar", "softplus(W*x + b) - y*(W*x + b)", ("W", "b"), ("x", "y"), {}, _scalar_data(True)
    ),
    # tensor temporaries: Z1 = X @ W + b, G1, dW, db; dimension n
    "tensor": Base(
        "tensor",
        "mean(softplus(X @ W + b) - y*(X @ W + b))",
        ("W", "b"),
        ("X", "y"),
        {"X": ("n", 3), "W": (3,), "b": (), "y": ("n",)},
        _logistic_data,
    ),
    # tensor temporaries: H1, Z1, Z2, G1, G2, dW1, db1, dW2, db2; dimension n
    "mlp": Base("tensor", MLP, ("W1", "b1", "W2", "b2"), ("X", "Y"), MLP_SHAPES, _mlp_data),
}

HOSTILE = [
    # names of Python, NumPy and the module's interface
    ("scalar", {"x": "float"}),
    ("scalar", {"W": "np"}),
    ("scalar", {"x": "loss"}),
    ("scalar", {"W": "grad"}),
    ("scalar", {"y": "loss_and_grad"}),
    ("scalar", {"x": "PARAMS"}),
    ("scalar", {"x": "DATA"}),
    # names beside a parameter W that look like its gradient
    ("scalar", {"x": "grad_W"}),
    ("scalar", {"x": "dW"}),
    ("scalar", {"x": "dW", "y": "grad_W"}),
    ("scalar", {"y": "grad_b"}),
    # the scalar module's temporaries, locals and helpers
    ("scalar", {"x": "sum_1"}),
    ("scalar", {"y": "softplus_1"}),
    ("scalar", {"x": "d_sum_1"}),
    ("scalar", {"x": "_cse0"}),
    ("scalar", {"x": "x0", "y": "x1"}),
    ("scalar", {"W": "x0"}),
    ("scalar", {"x": "gradient"}),
    ("scalar", {"x": "loss_value"}),
    ("scalar", {"x": "shape"}),
    ("scalar", {"y": "as_dict"}),
    ("scalar", {"x": "values"}),
    ("scalar", {"x": "_reduce"}),
    ("scalar", {"x": "_softplus"}),
    ("scalar", {"x": "prod_1"}),
    # tensor: the same kinds of names as data and parameters
    ("tensor", {"y": "float"}),
    ("tensor", {"b": "float"}),
    ("tensor", {"W": "np"}),
    ("tensor", {"y": "loss"}),
    ("tensor", {"W": "grad"}),
    ("tensor", {"y": "grad_W"}),
    ("tensor", {"y": "dW"}),
    ("tensor", {"X": "dW", "y": "grad_W"}),
    ("tensor", {"y": "db"}),
    ("tensor", {"y": "Z1"}),
    ("tensor", {"y": "G1"}),
    ("tensor", {"X": "T1"}),
    ("tensor", {"y": "values"}),
    ("tensor", {"y": "dims"}),
    ("tensor", {"y": "flat"}),
    ("tensor", {"y": "TARGETS"}),
    ("tensor", {"y": "_unpack"}),
    ("mlp", {"X": "H1"}),
    ("mlp", {"X": "Z2", "Y": "G2"}),
    ("mlp", {"X": "dW1"}),
    # tensor: dimension names equal to temporaries, gradients, helpers and builtins
    ("tensor", {"n": "Z1"}),
    ("tensor", {"n": "G1"}),
    ("tensor", {"n": "T1"}),
    ("tensor", {"n": "dW"}),
    ("tensor", {"n": "db"}),
    ("tensor", {"n": "float"}),
    ("tensor", {"n": "values"}),
    ("tensor", {"n": "dims"}),
    ("tensor", {"n": "flat"}),
    ("tensor", {"n": "np"}),
    ("tensor", {"n": "L"}),
    ("tensor", {"n": "_sigmoid"}),
    ("tensor", {"n": "W"}),
    ("mlp", {"n": "H1"}),
    ("mlp", {"n": "Z2"}),
    ("mlp", {"n": "G2"}),
    ("mlp", {"n": "dW2"}),
    ("mlp", {"n": "db1"}),
    # tensor: dimension names that are not Python names at all
    ("tensor", {"n": "import"}),
    ("tensor", {"n": "n m"}),
    ("tensor", {"n": "n-1"}),
]


def _hostile_id(case: tuple[str, dict]) -> str:
    base, renames = case
    return base + ":" + ",".join(f"{k}={v}" for k, v in renames.items())


HOSTILE_IDS = [_hostile_id(c) for c in HOSTILE]


@functools.cache
def plain_module(base: str) -> types.ModuleType:
    return BASES[base].build()


@pytest.mark.parametrize("base_name, renames", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_names_are_refused_or_work_exactly_like_plain_names(
    base_name: str, renames: dict[str, str]
) -> None:
    """Either generation refuses with InputError naming the name, or the module is correct.

    Correct means: the same loss and gradient as the module with plain names (to 1e-12), the
    gradient equal to central differences, loss_and_grad equal to (loss, grad), and the renamed
    names in PARAMS, DATA and the gradient dict. Never a TypeError or NameError at call time.
    """
    base = BASES[base_name]
    try:
        module = base.build(renames)
    except symdiff.InputError as exc:
        assert_names(str(exc), *renames.values())
        return
    _, params, data_names, _ = base.renamed(renames)
    assert names_of(module) == params
    assert list(module.DATA) == data_names
    plain = plain_module(base_name)
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        point = random_point(plain, rng)
        flat = flatten(plain, point)
        data = base.make_data(rng, N_ROWS)
        value, gradient = module.loss_and_grad(flat, *data)
        expected_value, expected_gradient = plain.loss_and_grad(flat, *data)
        assert value == pytest.approx(expected_value, rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-12, atol=1e-14)
        assert module.loss(flat, *data) == value
        np.testing.assert_array_equal(module.grad(flat, *data), gradient)
        as_dict = module.grad({renames.get(k, k): v for k, v in point.items()}, *data)
        assert list(as_dict) == params
        assert_matches_differences(module, flat, data)


CLI_CASES = [
    ("scalar", {"x": "float"}),
    ("scalar", {"W": "np"}),
    ("scalar", {"x": "dW", "y": "grad_W"}),
    ("tensor", {"y": "float"}),
    ("tensor", {"W": "loss"}),
    ("tensor", {"X": "dW", "y": "grad_W"}),
    ("tensor", {"n": "dW"}),
    ("tensor", {"n": "import"}),
    ("mlp", {"n": "Z2"}),
]


@pytest.mark.parametrize("base_name, renames", CLI_CASES, ids=[_hostile_id(c) for c in CLI_CASES])
def test_codegen_command_agrees_with_the_api_on_hostile_names(
    base_name: str, renames: dict[str, str]
) -> None:
    """``symdiff codegen``: the API's source on stdout (exit 0), or its InputError as one
    ``Error:`` line naming the name (exit 2), never a traceback or an internal error."""
    base = BASES[base_name]
    try:
        expected = base.source(renames)
    except symdiff.InputError as exc:
        expected, message = None, str(exc)
    result = CliRunner().invoke(cli, base.cli_args(renames))
    assert "Traceback" not in result.stderr
    if expected is None:
        assert result.exit_code == 2, (result.exit_code, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert "internal error" not in lines[0]
        assert_names(lines[0], *renames.values())
        assert message.split()[0] in lines[0]
        assert result.stdout == ""
    else:
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected


@pytest.mark.parametrize("bad", ["import", "x y", "1x", "__class__", "lambda"])
@pytest.mark.parametrize("kind", ["scalar", "tensor"])
def test_data_names_that_are_not_identifiers_are_refused(kind: str, bad: str) -> None:
    """A data name the loss does not use still becomes a function argument: it must be valid."""
    with pytest.raises(symdiff.InputError):
        if kind == "scalar":
            symdiff.compile("(w*x - y)**2", ["w"], ["x", "y", bad])
        else:
            symdiff.compile_tensor(
                "mean((X @ w - y)**2)",
                {"X": ("n", 2), "w": (2,), "y": ("n",)},
                ["w"],
                ["X", "y", bad],
            )


# --------------------------------------------------------------------------- lowering


def _domain(rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """w in [0.3, 0.9], x in [0.2, 0.9]: w*x in (0.06, 0.81), inside every function's domain."""
    return float(rng.uniform(0.3, 0.9)), rng.uniform(0.2, 0.9, size=N_ROWS)


def _sec(z):
    return 1 / np.cos(z)


FUNCTIONS = [
    ("sin(x)*w", lambda w, x: np.sin(x) * w),
    ("max(w, x)", np.maximum),
    ("min(w, x)", np.minimum),
    ("log(w*x, 2)", lambda w, x: np.log2(w * x)),
    ("log(w, x + 1)", lambda w, x: np.log(w) / np.log(x + 1)),
    ("tanh(w*x)", lambda w, x: np.tanh(w * x)),
    ("abs(w*x - 0.3)", lambda w, x: np.abs(w * x - 0.3)),
    ("sqrt(w*x)", lambda w, x: np.sqrt(w * x)),
    ("exp(w*x)", lambda w, x: np.exp(w * x)),
    ("cosh(w*x)", lambda w, x: np.cosh(w * x)),
    ("sinh(w*x)", lambda w, x: np.sinh(w * x)),
    ("cos(w*x)", lambda w, x: np.cos(w * x)),
    ("tan(w*x)", lambda w, x: np.tan(w * x)),
    ("sec(w*x)", lambda w, x: _sec(w * x)),
    ("cot(w*x)", lambda w, x: 1 / np.tan(w * x)),
    ("asin(w*x)", lambda w, x: np.arcsin(w * x)),
    ("acos(w*x)", lambda w, x: np.arccos(w * x)),
    ("atan(w*x)", lambda w, x: np.arctan(w * x)),
    ("asinh(w*x)", lambda w, x: np.arcsinh(w * x)),
    ("acosh(1 + w*x)", lambda w, x: np.arccosh(1 + w * x)),
    ("atanh(w*x)", lambda w, x: np.arctanh(w * x)),
    ("log2(w*x)", lambda w, x: np.log2(w * x)),
    ("log10(w*x)", lambda w, x: np.log10(w * x)),
    ("log1p(w*x)", lambda w, x: np.log1p(w * x)),
    ("expm1(w*x)", lambda w, x: np.expm1(w * x)),
    ("sigmoid(w*x)", lambda w, x: 1 / (1 + np.exp(-w * x))),
    ("silu(w*x)", lambda w, x: w * x / (1 + np.exp(-w * x))),
    ("relu(w*x - 0.3)", lambda w, x: np.maximum(w * x - 0.3, 0)),
    ("softplus(w*x)", lambda w, x: np.log1p(np.exp(w * x))),
    ("sign(w*x - 0.3)*w", lambda w, x: np.sign(w * x - 0.3) * w),
    ("logsumexp(w*x, w)", lambda w, x: np.logaddexp(w * x, w)),
    ("erf(w*x)", lambda w, x: np.vectorize(math.erf)(w * x)),  # the _erf helper, no SciPy
    ("gelu(w*x)", lambda w, x: w * x * (1 + np.vectorize(math.erf)(w * x / math.sqrt(2))) / 2),
    ("w**x", lambda w, x: w**x),
    ("x**w", lambda w, x: x**w),
]


def _build_function(kind: str, text: str) -> types.ModuleType:
    if kind == "scalar":
        return symdiff.compile(text, "w", "x")
    return symdiff.compile_tensor(f"mean({text})", {"x": ("n",), "w": ()}, ["w"], ["x"])


@pytest.mark.parametrize("kind", ["scalar", "tensor"])
@pytest.mark.parametrize("text, reference", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_functions_are_refused_at_generation_or_computed_correctly(
    kind: str, text: str, reference
) -> None:
    """Never a module that fails with NameError (or anything else) when it is called."""
    try:
        module = _build_function(kind, text)
    except symdiff.SymdiffError as exc:
        assert str(exc).strip()
        return
    rng = np.random.default_rng(11)
    for _ in range(3):
        w, x = _domain(rng)
        flat = np.array([w])
        value, gradient = module.loss_and_grad(flat, x)
        assert module.loss(flat, x) == value
        if reference is not None:
            assert value == pytest.approx(float(np.mean(reference(w, x))), rel=1e-12)
        assert np.shape(gradient) == (1,)
        assert_matches_differences(module, flat, (x,))


# --------------------------------------------------------------------------- cross-path


@dataclass(frozen=True)
class Cross:
    """One per-sample loss: scalar text with its reduction, and the tensor text over (n,) data."""

    id: str
    scalar: str
    tensor: str
    params: tuple[str, ...]
    data: tuple[str, ...] = ("x", "y")
    reduce: str = "mean"
    positive: bool = False  # data in [0.2, 0.9] and params in [0.3, 0.9] (logs, roots)


def _cross(
    id: str,
    per_sample: str,
    params: tuple[str, ...],
    reduce: str = "mean",
    data: tuple[str, ...] = ("x", "y"),
    positive: bool = False,
) -> Cross:
    return Cross(id, per_sample, f"{reduce}({per_sample})", params, data, reduce, positive)


CROSS = [
    _cross("logistic", LOGISTIC, ("b0", "b1")),
    _cross("logistic_stable_form", "softplus(b0 + b1*x) - y*(b0 + b1*x)", ("b0", "b1")),
    _cross("logistic_log1p_exp", "log(1 + exp(b0 + b1*x)) - y*(b0 + b1*x)", ("b0", "b1")),
    _cross("logistic_sum", "softplus(b0 + b1*x) - y*(b0 + b1*x)", ("b0", "b1"), reduce="sum"),
    _cross("squared_error", "(b0 + b1*x - y)**2", ("b0", "b1")),
    _cross("squared_error_one_param", "(w*x - y)**2", ("w",)),
    _cross("pseudo_huber", "sqrt(1 + (w*x + b - y)**2) - 1", ("w", "b")),
    _cross("absolute_error", "abs(y - (w*x + b))", ("w", "b")),
    _cross("product_of_params", "(a*b*x - y)**2 + a*b*c", ("a", "b", "c")),
    _cross("tanh_regression", "(tanh(w*x + b) - y)**2", ("w", "b")),
    _cross("poisson", "exp(w*x + b) - y*(w*x + b)", ("w", "b")),
    _cross("sigmoid_brier", "(sigmoid(w*x) - y)**2", ("w",)),
    _cross("relu_squared", "(relu(w*x + b) - y)**2", ("w", "b")),
    # the functions of the lowering check, per sample
    _cross("sin", "sin(x)*w", ("w",), data=("x",)),
    _cross("cosh", "cosh(w*x)", ("w",), data=("x",)),
    _cross("sqrt", "sqrt(w*x)", ("w",), data=("x",), positive=True),
    _cross("exp", "exp(w*x)", ("w",), data=("x",)),
    _cross("abs", "abs(w*x - 0.5)", ("w",), data=("x",)),
    _cross("log_base_2", "log(w*x, 2)", ("w",), data=("x",), positive=True),
    _cross("max", "max(w, x)", ("w",), data=("x",), positive=True),
]


def _cross_modules(case: Cross) -> tuple[types.ModuleType, types.ModuleType]:
    scalar = symdiff.compile(case.scalar, list(case.params), list(case.data), reduce=case.reduce)
    shapes = {**{d: ("n",) for d in case.data}, **{p: () for p in case.params}}
    tensor = symdiff.compile_tensor(case.tensor, shapes, list(case.params), list(case.data))
    return scalar, tensor


@pytest.mark.parametrize("case", CROSS, ids=[c.id for c in CROSS])
def test_scalar_and_tensor_paths_agree_to_1e_12(case: Cross) -> None:
    scalar, tensor = _cross_modules(case)
    assert names_of(scalar) == names_of(tensor) == list(case.params)
    assert tuple(scalar.DATA) == tuple(tensor.DATA) == case.data

    @RANDOM_POINTS
    @given(seed=st.integers(0, 2**32 - 1))
    def agree(seed: int) -> None:
        rng = np.random.default_rng(seed)
        if case.positive:
            flat = rng.uniform(0.3, 0.9, size=len(case.params))
            data = tuple(rng.uniform(0.2, 0.9, size=N_ROWS) for _ in case.data)
        else:
            flat = rng.normal(size=len(case.params))
            data = tuple(rng.normal(size=N_ROWS) for _ in case.data)
            if "y" in case.data and case.id.startswith("logistic"):
                data = (data[0], (data[1] > 0).astype(float))
            if case.id == "poisson":
                data = (data[0], np.abs(np.round(3 * data[1])))
        s_value, s_grad = scalar.loss_and_grad(flat, *data)
        t_value, t_grad = tensor.loss_and_grad(flat, *data)
        assert t_value == pytest.approx(s_value, rel=1e-12, abs=1e-13)
        np.testing.assert_allclose(t_grad, s_grad, rtol=1e-12, atol=1e-13)
        point = dict(zip(case.params, flat, strict=True))
        s_dict, t_dict = scalar.grad(point, *data), tensor.grad(point, *data)
        assert list(s_dict) == list(t_dict) == list(case.params)
        for name in case.params:
            assert np.shape(s_dict[name]) == np.shape(t_dict[name]) == ()
        assert_matches_differences(tensor, flat, data)

    agree()
