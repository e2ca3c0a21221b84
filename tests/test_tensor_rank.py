"""Tensors of any rank: batched ``@``, reductions over axis tuples, transpose/swapaxes, reshape,
einsum and max, checked against PyTorch float64 autograd and central finite differences, both
through the printed gradient formula (parsed back and evaluated) and through generated modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from symdiff.autodiff.reverse import reverse_mode
from symdiff.codegen.tensor import compile as compile_tensor
from symdiff.codegen.tensor import evaluate
from symdiff.errors import ParseError, ShapeError
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.ir.nodes import var, walk
from symdiff.ir.printing import to_text

B, T, E, D = 2, 3, 4, 5  # batch (symbolic 'b' in data shapes), time, embedding, head size
SIZES = {"b": B}

Torch = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Case:
    """A loss of rank >= 3 tensors, its shapes, its parameters and a PyTorch reference."""

    name: str
    loss: str
    shapes: dict
    params: tuple[str, ...]
    reference: Torch
    onehot: tuple[str, ...] = ()


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    z = x - x.mean(-1, keepdim=True)
    return z / torch.sqrt((z**2).mean(-1, keepdim=True) + 1e-5)


ATTENTION = {"X": ("b", T, E), "Y": ("b", T, D), "Wq": (E, D), "Wk": (E, D), "Wv": (E, D)}
CUBE = {"W": (B, T, E), "Y": (B, T, E), "A": (1, T, 1), "V": (E, D), "X": ("b", T, E)}

CASES = [
    Case(
        "attention-projections",
        "sum(softmax((X @ Wq) @ swapaxes(X @ Wk, -1, -2) / sqrt(5)) @ (X @ Wv) * Y)",
        ATTENTION,
        ("Wq", "Wk", "Wv"),
        lambda v: (
            torch.softmax((v["X"] @ v["Wq"]) @ (v["X"] @ v["Wk"]).transpose(-1, -2) / 5**0.5, -1)
            @ (v["X"] @ v["Wv"])
            * v["Y"]
        ).sum(),
    ),
    Case(
        "attention-qkv-mean-tanh",
        "mean(tanh(softmax(Q @ swapaxes(K, -1, -2) / sqrt(5)) @ V))",
        {"Q": (B, T, D), "K": (B, T, D), "V": (B, T, D)},
        ("Q", "K", "V"),
        lambda v: torch.tanh(
            torch.softmax(v["Q"] @ v["K"].transpose(-1, -2) / 5**0.5, -1) @ v["V"]
        ).mean(),
    ),
    Case(
        "attention-squared-error",
        "sum((softmax(X @ Wq @ swapaxes(X @ Wk, 1, 2) / sqrt(5)) @ (X @ Wv) - Y) ** 2) / b",
        ATTENTION,
        ("Wq", "Wk", "Wv"),
        lambda v: (
            (
                (
                    torch.softmax(
                        v["X"] @ v["Wq"] @ (v["X"] @ v["Wk"]).transpose(1, 2) / 5**0.5, -1
                    )
                    @ (v["X"] @ v["Wv"])
                    - v["Y"]
                )
                ** 2
            ).sum()
            / B
        ),
    ),
    Case(
        "einsum-conv1d",
        "mean((einsum('btk,k->bt', Xw, w) - y) ** 2)",
        {"Xw": ("b", T, 3), "w": (3,), "y": ("b", T)},
        ("w",),
        lambda v: ((torch.einsum("btk,k->bt", v["Xw"], v["w"]) - v["y"]) ** 2).mean(),
    ),
    Case(
        "einsum-conv1d-channels-relu",
        "sum(relu(einsum('btck,ckf->btf', Xw, K) + bias) * Y)",
        {"Xw": ("b", T, 2, 3), "K": (2, 3, D), "bias": (D,), "Y": ("b", T, D)},
        ("K", "bias"),
        lambda v: (
            torch.relu(torch.einsum("btck,ckf->btf", v["Xw"], v["K"]) + v["bias"]) * v["Y"]
        ).sum(),
    ),
    Case(
        "einsum-three-operands",
        "sum(einsum('bti,ij,btj->bt', X, M, X) ** 2)",
        {"X": ("b", T, E), "M": (E, E)},
        ("M",),
        lambda v: (torch.einsum("bti,ij,btj->bt", v["X"], v["M"], v["X"]) ** 2).sum(),
    ),
    Case(
        "einsum-index-only-in-parameter",
        "sum(sin(einsum('btk,kc->b', X, W)))",
        {"X": ("b", T, E), "W": (E, 3)},
        ("W",),
        lambda v: torch.sin(torch.einsum("btk,kc->b", v["X"], v["W"])).sum(),
    ),
    Case(
        "batched-matmul-least-squares",
        "sum((X @ V - Y) ** 2) / (2 * b)",
        {"X": ("b", T, E), "V": (E, D), "Y": ("b", T, D)},
        ("V",),
        lambda v: ((v["X"] @ v["V"] - v["Y"]) ** 2).sum() / (2 * B),
    ),
    Case(
        "batched-matmul-both-stacks",
        "sum(sigmoid(P @ Q))",
        {"P": (B, T, E), "Q": (B, E, D)},
        ("P", "Q"),
        lambda v: torch.sigmoid(v["P"] @ v["Q"]).sum(),
    ),
    Case(
        "batched-matmul-broadcast-batch-rank4",
        "sum(tanh(P @ Q) * R)",
        {"P": (2, 1, T, E), "Q": (3, E, D), "R": (2, 3, T, D)},
        ("P", "Q"),
        lambda v: (torch.tanh(v["P"] @ v["Q"]) * v["R"]).sum(),
    ),
    Case(
        "batched-matmul-vector-right",
        "sum(tanh(X @ w))",
        {"X": ("b", T, E), "w": (E,)},
        ("w",),
        lambda v: torch.tanh(v["X"] @ v["w"]).sum(),
    ),
    Case(
        "batched-matmul-vector-left",
        "sum(sin(u @ W) * Y)",
        {"u": (T,), "W": (B, T, E), "Y": (B, E)},
        ("u", "W"),
        lambda v: (torch.sin(v["u"] @ v["W"]) * v["Y"]).sum(),
    ),
    Case(
        "layer-norm-last-axis",
        "sum(((X - mean(X, axis=-1, keepdims=1)) / sqrt(mean((X - mean(X, axis=-1, keepdims=1))"
        " ** 2, axis=-1, keepdims=1) + 1e-5) * g + c) * Y)",
        {"X": ("b", T, E), "g": (E,), "c": (E,), "Y": ("b", T, E)},
        ("g", "c"),
        lambda v: ((_layer_norm(v["X"]) * v["g"] + v["c"]) * v["Y"]).sum(),
    ),
    Case(
        "layer-norm-input-gradient",
        "sum(tanh((W - mean(W, axis=2, keepdims=1)) / sqrt(mean((W - mean(W, axis=2, "
        "keepdims=1)) ** 2, axis=2, keepdims=1) + 1e-5)) * Y)",
        CUBE,
        ("W",),
        lambda v: (torch.tanh(_layer_norm(v["W"])) * v["Y"]).sum(),
    ),
    Case(
        "sum-axis-tuple-keepdims",
        "sum(log(1 + sum(W ** 2, axis=(0, 2), keepdims=1)) * A)",
        CUBE,
        ("W",),
        lambda v: (torch.log(1 + (v["W"] ** 2).sum((0, 2), keepdim=True)) * v["A"]).sum(),
    ),
    Case(
        "mean-axis-tuple",
        "sum(mean(W * Y, axis=(1, 2)) ** 2)",
        CUBE,
        ("W",),
        lambda v: ((v["W"] * v["Y"]).mean((1, 2)) ** 2).sum(),
    ),
    Case(
        "logsumexp-axis-tuple",
        "sum(logsumexp(W * Y, axis=(0, -1)))",
        CUBE,
        ("W",),
        lambda v: torch.logsumexp(v["W"] * v["Y"], (0, 2)).sum(),
    ),
    Case(
        "softmax-middle-axis",
        "sum(softmax(W, axis=1) * Y)",
        CUBE,
        ("W",),
        lambda v: (torch.softmax(v["W"], 1) * v["Y"]).sum(),
    ),
    Case(
        "log-softmax-axis-tuple",
        "sum(log_softmax(W, axis=(1, 2)) * Y)",
        CUBE,
        ("W",),
        lambda v: ((v["W"] - torch.logsumexp(v["W"], (1, 2), keepdim=True)) * v["Y"]).sum(),
    ),
    Case(
        "transpose-with-axes",
        "sum(tanh(transpose(W, (1, 0, 2)) @ V) ** 2)",
        CUBE,
        ("W", "V"),
        lambda v: (torch.tanh(v["W"].permute(1, 0, 2) @ v["V"]) ** 2).sum(),
    ),
    Case(
        "transpose-cycle-and-dot-T",
        "sum(transpose(W, (2, 0, 1)) * sin(Y.T.T.T @ Z))",
        {"W": (T, T, E), "Y": (B, T, E), "Z": (E, B, T)},
        ("W", "Y"),
        lambda v: (v["W"].permute(2, 0, 1) * torch.sin(v["Y"].permute(2, 1, 0) @ v["Z"])).sum(),
    ),
    Case(
        "reshape-declared-dims",
        "sum(sin(reshape(W, (6, 4))) @ V)",
        CUBE,
        ("W", "V"),
        lambda v: (torch.sin(v["W"].reshape(6, 4)) @ v["V"]).sum(),
    ),
    Case(
        "reshape-to-rank3",
        "sum(reshape(Z @ V, (b, 2, 10)) ** 3)",
        {"Z": ("b", 4, E), "V": (E, D)},
        ("V",),
        lambda v: ((v["Z"] @ v["V"]).reshape(B, 2, 10) ** 3).sum(),
    ),
    Case(
        "max-over-axis",
        "sum(max(W * Y, axis=-1) ** 2)",
        CUBE,
        ("W",),
        lambda v: ((v["W"] * v["Y"]).amax(-1) ** 2).sum(),
    ),
    Case(
        "max-axis-tuple-keepdims",
        "sum(max(W, axis=(0, 2), keepdims=1) * A) + max(W)",
        CUBE,
        ("W",),
        lambda v: (v["W"].amax((0, 2), keepdim=True) * v["A"]).sum() + v["W"].amax(),
    ),
    Case(
        "sequence-model-loss",
        "-mean(sum(Y * log_softmax(tanh(X @ Wh + bh) @ Wo, axis=-1), axis=-1))",
        {"X": ("b", T, E), "Y": ("b", T, 3), "Wh": (E, D), "bh": (D,), "Wo": (D, 3)},
        ("Wh", "bh", "Wo"),
        lambda v: (
            -(v["Y"] * torch.log_softmax(torch.tanh(v["X"] @ v["Wh"] + v["bh"]) @ v["Wo"], -1))
            .sum(-1)
            .mean()
        ),
        onehot=("Y",),
    ),
]


def _concrete(shape) -> tuple[int, ...]:
    return tuple(SIZES.get(d, d) for d in shape)


def _draw(case: Case, seed: int) -> tuple[dict, dict]:
    """Parameters and data for the symbols the loss uses (no ties: maxima are unique)."""
    rng = np.random.default_rng(seed)
    loss = parse_tensor(case.loss, case.shapes)
    params, data = {}, {}
    for leaf in walk(loss):
        if leaf.op != "var":
            continue
        shape = _concrete(leaf.shape)
        if leaf.name in case.onehot:
            value = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        else:
            value = rng.normal(size=shape) * (0.7 if leaf.name in case.params else 1.0)
        (params if leaf.name in case.params else data)[leaf.name] = np.asarray(value, float)
    return params, data


def _torch_gradients(case: Case, params: dict, data: dict) -> tuple[float, dict]:
    leaves = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()
    }
    value = case.reference({**leaves, **{k: torch.tensor(v) for k, v in data.items()}})
    value.backward()
    return float(value), {k: t.grad.numpy() for k, t in leaves.items()}


def _relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300))


def test_at_least_twenty_cases_of_rank_three_or_more():
    ranks = [max(len(s) for s in case.shapes.values()) for case in CASES]
    assert len(CASES) >= 20 and min(ranks) >= 3


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def compiled(request):
    case = request.param
    return case, compile_tensor(case.loss, case.shapes, list(case.params))


def test_generated_module_matches_pytorch(compiled):
    case, module = compiled
    params, data = _draw(case, seed=0)
    value, grads = module.loss_and_grad(params, *[data[n] for n in module.DATA])
    expected_value, expected = _torch_gradients(case, params, data)
    assert abs(value - expected_value) <= 1e-12 * max(1.0, abs(expected_value))
    for name in case.params:
        assert _relative_error(grads[name], expected[name]) < 1e-10, name


def test_generated_module_matches_central_differences(compiled):
    case, module = compiled
    params, data = _draw(case, seed=1)
    flat = np.concatenate([np.ravel(params[name]) for name, _ in module.PARAMS])
    arrays = [data[n] for n in module.DATA]
    direction = np.random.default_rng(2).normal(size=flat.shape)
    h = 1e-6
    numeric = (
        module.loss(flat + h * direction, *arrays) - module.loss(flat - h * direction, *arrays)
    ) / (2 * h)
    assert numeric == pytest.approx(module.grad(flat, *arrays) @ direction, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_printed_gradient_formula_matches_pytorch_and_differences(case):
    loss = parse_tensor(case.loss, case.shapes)
    gradient = reverse_mode(loss, [var(p, case.shapes[p]) for p in case.params])
    params, data = _draw(case, seed=3)
    _, expected = _torch_gradients(case, params, data)
    values = {**params, **data}
    rng = np.random.default_rng(4)
    h = 1e-6
    for name, grad in zip(case.params, gradient.gradients, strict=True):
        text = to_text(grad)
        reparsed = parse_tensor(text, case.shapes)  # the printed formula means the gradient
        assert reparsed.shape == grad.shape, text
        actual = np.broadcast_to(evaluate(reparsed, values), params[name].shape)
        assert _relative_error(actual, expected[name]) < 1e-10, f"{name}: {text}"
        step = rng.normal(size=params[name].shape)
        shifted = [{**values, name: params[name] + sign * h * step} for sign in (1, -1)]
        numeric = (evaluate(loss, shifted[0]) - evaluate(loss, shifted[1])) / (2 * h)
        assert numeric == pytest.approx(np.sum(actual * step), rel=1e-6, abs=1e-8), name


# --------------------------------------------------------------------------- random shapes


@st.composite
def _shapes_and_axes(draw):
    rank = draw(st.integers(3, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    axes = tuple(draw(st.sets(st.integers(-rank, rank - 1), min_size=1, max_size=rank)))
    assume_distinct = len({a % rank for a in axes}) == len(axes)
    return shape, axes if assume_distinct else axes[:1], draw(st.booleans())


_REDUCTIONS = {
    "sum": lambda x, axes, keep: x.sum(axes, keepdim=keep),
    "mean": lambda x, axes, keep: x.mean(axes, keepdim=keep),
    "logsumexp": lambda x, axes, keep: torch.logsumexp(x, axes, keepdim=keep),
    "max": lambda x, axes, keep: x.amax(axes, keepdim=keep),
}


def _check_against_torch(text: str, shapes: dict, reference: Torch, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = {k: rng.normal(size=s) for k, s in shapes.items()}
    loss = parse_tensor(text, shapes)
    (grad,) = reverse_mode(loss, [var("W", shapes["W"])]).gradients
    reparsed = parse_tensor(to_text(grad), shapes)
    leaf = torch.tensor(values["W"], requires_grad=True)
    out = reference({"W": leaf, "Y": torch.tensor(values["Y"])})
    out.backward()
    assert float(evaluate(loss, values)) == pytest.approx(float(out), rel=1e-12, abs=1e-12)
    actual = np.broadcast_to(evaluate(reparsed, values), shapes["W"])
    assert _relative_error(actual, leaf.grad.numpy()) < 1e-10, to_text(grad)


@settings(max_examples=25, deadline=None)
@given(_shapes_and_axes(), st.sampled_from(sorted(_REDUCTIONS)), st.integers(0, 2**16))
def test_reductions_over_random_axis_tuples_match_pytorch(drawn, reduction, seed):
    shape, axes, keepdims = drawn
    reduced = _REDUCTIONS[reduction](torch.zeros(shape), axes, keepdims).shape
    shapes = {"W": shape, "Y": tuple(reduced)}
    axis_text = "(" + ", ".join(map(str, axes)) + ("," if len(axes) == 1 else "") + ")"
    text = f"sum(sin({reduction}(W, axis={axis_text}, keepdims={int(keepdims)})) * Y)"

    def reference(v):
        return (torch.sin(_REDUCTIONS[reduction](v["W"], axes, keepdims)) * v["Y"]).sum()

    _check_against_torch(text, shapes, reference, seed)


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(4)), st.integers(1, 3), st.integers(-4, 3), st.integers(0, 2**16))
def test_random_transposes_and_swaps_match_pytorch(order, length, swap, seed):
    shape = (2, 3, length, 4)
    permuted = tuple(shape[i] for i in order)
    swapped = list(permuted)
    swapped[swap], swapped[-1] = swapped[-1], swapped[swap]
    shapes = {"W": shape, "Y": tuple(swapped)}
    text = f"sum(exp(swapaxes(transpose(W, {tuple(order)}), {swap}, -1)) * Y)"

    def reference(v):
        return (torch.exp(v["W"].permute(*order).swapaxes(swap, -1)) * v["Y"]).sum()

    _check_against_torch(text, shapes, reference, seed)


@settings(max_examples=20, deadline=None)
@given(st.permutations("bxyz"), st.integers(0, 3), st.integers(0, 2**16))
def test_random_einsum_contractions_match_pytorch(letters, kept, seed):
    """einsum of a parameter (b, x, y) with data over three letters in random order, keeping
    ``kept`` of the letters (in random order) and summing the others."""
    used = set("bxy") | set(letters[:3])
    output = "".join(x for x in letters if x in used)[:kept]
    spec = f"bxy,{''.join(letters[:3])}->{output}"
    sizes = {"b": 2, "x": 3, "y": 4, "z": 2}
    shapes = {"W": (2, 3, 4), "Y": tuple(sizes[x] for x in letters[:3])}
    text = f"sum(sin(einsum('{spec}', W, Y)))"

    def reference(v):
        return torch.sin(torch.einsum(spec, v["W"], v["Y"])).sum()

    _check_against_torch(text, shapes, reference, seed)


# --------------------------------------------------------------------------- shape errors

SHAPES = {"A": ("b", 3, 4), "C": (5, 4, 2), "v": (3,), "M": (4, 4)}


@pytest.mark.parametrize(
    "text, message",
    [
        ("sum(A @ A)", "(b, 3, 4) @ (b, 3, 4): inner dimensions 4 and 3 differ"),
        ("sum(A @ C)", "(b, 3, 4) @ (5, 4, 2): batch axes (b,) and (5,) do not broadcast"),
        ("sum(einsum('bij,bjk->bik', A, C))", "index b is b in one operand and 5 in another"),
        ("sum(einsum('ij,jk->ik', A, M))", "'ij' has 2 indices but the operand has shape"),
        ("sum(reshape(A, (b, 5)))", "cannot reshape (b, 3, 4) to (b, 5)"),
        ("sum(transpose(A, (0, 0, 1)))", "(0, 0, 1) are not a permutation of the axes of shape"),
        ("sum(swapaxes(A, 0, 3))", "axis 3 is out of range for shape (b, 3, 4)"),
        ("sum(A, axis=(0, -3))", "repeated axis in (0, -3) for shape (b, 3, 4)"),
        ("sum(max(A, axis=(1, 5)))", "axis 5 is out of range for shape (b, 3, 4)"),
    ],
)
def test_shape_errors_are_one_line_naming_the_shapes(text, message):
    with pytest.raises(ShapeError) as caught:
        parse_tensor(text, SHAPES)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_only_einsum_takes_a_string_and_only_index_letters():
    with pytest.raises(ParseError, match="only as einsum's index string"):
        parse_tensor("sum(A * 'ij')", SHAPES)
    with pytest.raises(ParseError, match="strings are not allowed"):
        parse_tensor("sum(einsum('ij;k', A))", SHAPES)
    from symdiff.frontend.parse import parse

    with pytest.raises(ParseError, match="strings are not allowed"):
        parse("einsum('ij->i', x)")


def test_printed_attention_gradient_uses_swapaxes_and_parses_back():
    shapes = ATTENTION
    loss = parse_tensor(CASES[0].loss, shapes)
    (grad,) = reverse_mode(loss, [var("Wv", (E, D))]).gradients
    text = to_text(grad)
    assert "swapaxes(" in text and parse_tensor(text, shapes) is grad
