"""Index forms of the softmax family, keepdims and axis tuples, linear algebra and the any-rank
operations (symdiff.explanations.index_notation), and Hessian blocks of more than two axes.

Each Jacobian is computed twice from its index form: by ``evaluate_jacobian`` (one np.einsum
per term) and by parsing its printed einsum formula back with the tensor parser and evaluating
that; both must agree with torch.autograd.functional.jacobian in float64 to 1e-10 relative."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from process_support import run_symdiff

from symdiff.autodiff.second import tensor_hessian
from symdiff.codegen.tensor import evaluate
from symdiff.explanations.index_notation import evaluate_jacobian, index_jacobian
from symdiff.explanations.second_order import block_index_form
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.ir.nodes import variables

SHAPES = {
    "X": ("n", "d"),
    "W": ("d", "m"),
    "z": ("m",),
    "v": ("n",),
    "A": ("n", "n"),
    "B": ("n", "n"),
    "T": ("b", "n", "d"),
    "U": ("b", "d", "m"),
    "K": (2, 3),
    "L": (3, 2),
    "r": ("n", 1),
    "Q": ("b", "t", "d"),
    "P": ("b", "t", "d"),
    "Y": ("n", "m"),
}
DIMS = {"n": 3, "d": 2, "m": 4, "b": 2, "t": 3}
F = torch.nn.functional

#: (expression, parameter, the same function in torch of a dict of tensors)
CASES = [
    ("softmax(X @ W)", "W", lambda t: torch.softmax(t["X"] @ t["W"], -1)),
    ("softmax(T, axis=1)", "T", lambda t: torch.softmax(t["T"], 1)),
    ("log_softmax(X @ W, axis=0)", "W", lambda t: torch.log_softmax(t["X"] @ t["W"], 0)),
    ("logsumexp(T, axis=2)", "T", lambda t: torch.logsumexp(t["T"], 2)),
    (
        "logsumexp(X @ W, axis=0, keepdims=1)",
        "X",
        lambda t: torch.logsumexp(t["X"] @ t["W"], 0, keepdim=True),
    ),
    ("sum(T, axis=(0, 2), keepdims=1)", "T", lambda t: t["T"].sum((0, 2), keepdim=True)),
    ("mean(T * T, axis=(0, 2))", "T", lambda t: (t["T"] * t["T"]).mean((0, 2))),
    ("max(T, axis=1)", "T", lambda t: t["T"].amax(1)),
    ("max(T, axis=(0, 2), keepdims=1)", "T", lambda t: t["T"].amax((0, 2), keepdim=True)),
    ("det(A) * X", "A", lambda t: torch.det(t["A"]) * t["X"]),
    ("inv(A)", "A", lambda t: torch.inverse(t["A"])),
    (
        "logdet(A @ A.T + eye(n)) * v",
        "A",
        lambda t: torch.logdet(t["A"] @ t["A"].T + torch.eye(3, dtype=torch.float64)) * t["v"],
    ),
    ("solve(A, X)", "A", lambda t: torch.linalg.solve(t["A"], t["X"])),
    ("trace(A @ B) * A", "B", lambda t: torch.trace(t["A"] @ t["B"]) * t["A"]),
    ("diag(v) @ A", "v", lambda t: torch.diag(t["v"]) @ t["A"]),
    ("outer(diag(A * B), v)", "A", lambda t: torch.outer(torch.diagonal(t["A"] * t["B"]), t["v"])),
    ("kron(K, L)", "K", lambda t: torch.kron(t["K"], t["L"])),
    ("kron(K, L * L)", "L", lambda t: torch.kron(t["K"], t["L"] * t["L"])),
    ("norm1(X @ W) * z", "W", lambda t: (t["X"] @ t["W"]).abs().sum() * t["z"]),
    ("frobenius(T) * T", "T", lambda t: torch.linalg.norm(t["T"]) * t["T"]),
    ("T @ U", "T", lambda t: t["T"] @ t["U"]),
    ("T @ U", "U", lambda t: t["T"] @ t["U"]),
    ("tanh(T @ W)", "W", lambda t: torch.tanh(t["T"] @ t["W"])),
    (
        "3 - 2 * norm1(X) * frobenius(X)",
        "X",
        lambda t: 3 - 2 * t["X"].abs().sum() * torch.linalg.norm(t["X"]),
    ),
    ("transpose(T, (2, 0, 1))", "T", lambda t: t["T"].permute(2, 0, 1)),
    ("exp(swapaxes(T, -1, -2))", "T", lambda t: torch.exp(t["T"].transpose(-1, -2))),
    ("reshape(T, (n, b, d))", "T", lambda t: t["T"].reshape(3, 2, 2)),
    ("reshape(K * K, (6,))", "K", lambda t: (t["K"] * t["K"]).reshape(6)),
    ("einsum('bnd,dm->bnm', T, W)", "W", lambda t: torch.einsum("bnd,dm->bnm", t["T"], t["W"])),
    ("einsum('ij,ij->i', A, A)", "A", lambda t: torch.einsum("ij,ij->i", t["A"], t["A"])),
    ("X * r", "r", lambda t: t["X"] * t["r"]),
    ("max(exp(X), r * r) ** r", "r", lambda t: torch.maximum(t["X"].exp(), t["r"] ** 2) ** t["r"]),
    ("expand_dims(v, axis=1) * X", "v", lambda t: t["v"][:, None] * t["X"]),
    (
        "cross_entropy(Y, softmax(X @ W))",
        "W",
        lambda t: -(t["Y"] * torch.log_softmax(t["X"] @ t["W"], -1)).sum() / 3,
    ),
    (
        "softmax(Q @ swapaxes(P, -1, -2) / sqrt(d)) @ P",
        "Q",
        lambda t: torch.softmax(t["Q"] @ t["P"].transpose(-1, -2) / 2**0.5, -1) @ t["P"],
    ),
]


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        n: rng.uniform(-1, 1, [DIMS[d] if isinstance(d, str) else d for d in s])
        for n, s in SHAPES.items()
    }
    arrays["A"] += 3 * np.eye(3)  # well away from singular
    arrays["Y"] = np.exp(arrays["Y"]) / np.exp(arrays["Y"]).sum(axis=1, keepdims=True)
    return arrays


def _torch_jacobian(function, param: str, point: dict[str, np.ndarray]) -> np.ndarray:
    tensors = {n: torch.tensor(a, dtype=torch.float64) for n, a in point.items()}

    def of(value: torch.Tensor) -> torch.Tensor:
        return function({**tensors, param: value})

    return torch.autograd.functional.jacobian(of, tensors[param]).numpy()


@pytest.mark.parametrize(("text", "param", "function"), CASES, ids=[c[0] for c in CASES])
def test_index_form_agrees_with_torch(text: str, param: str, function) -> None:
    expression = parse_tensor(text, SHAPES)
    node = next(v for v in variables(expression) if v.name == param)
    jac = index_jacobian(expression, node)
    assert len(jac.shape) > 2 or text.startswith(("det", "cross_entropy", "3 -"))
    point = _arrays(7)
    theirs = _torch_jacobian(function, param, point)
    ours = evaluate_jacobian(jac, point, DIMS)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    parsed = parse_tensor(jac.einsum_text(), SHAPES)  # the printed einsum formula parses back
    assert parsed.shape == jac.shape
    again = np.asarray(evaluate(parsed, point, DIMS), dtype=np.float64)
    np.testing.assert_allclose(again, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "param", "expected"),
    [
        ("softmax(z)", "z", "∂f[i]/∂z[j] = softmax(z)[i] (δ[i,j] - softmax(z)[j])"),
        ("log_softmax(z)", "z", "∂f[i]/∂z[j] = δ[i,j] - softmax(z)[j]"),
        ("W * W", "W", "∂f[i,j]/∂W[k,l] = 2 W[i,j] δ[i,k] δ[j,l]"),
        ("det(A)", "A", "∂f/∂A[i,j] = det(A) inv(A)[j,i]"),
        ("inv(A)", "A", "∂f[i,j]/∂A[k,l] = -inv(A)[i,k] inv(A)[l,j]"),
        ("transpose(T, (2, 0, 1))", "T", "∂f[i,j,k]/∂T[l,m,n] = δ[j,l] δ[k,m] δ[i,n]"),
        ("reshape(K, (6,))", "K", "∂f[i]/∂K[j,k] = δ[(i),(j,k)]"),
        ("X * r", "r", "∂f[i,j]/∂r[k,l] = X[i,j] δ[i,k] δ[0,l]"),
    ],
)
def test_index_text_by_hand(text: str, param: str, expected: str) -> None:
    """softmax: s[i](δ[i,j] - s[j]); det: det(A) inv(A).T; inv: -inv(A)[i,k] inv(A)[l,j];
    a permutation is a product of deltas; reshape a delta over flat positions."""
    expression = parse_tensor(text, SHAPES)
    node = next(v for v in variables(expression) if v.name == param)
    assert index_jacobian(expression, node).index_text() == expected


def test_einsum_form_with_a_numeric_identity_parses_back() -> None:
    expression = parse_tensor("X @ W", {"X": (2, 3), "W": (3, 4)})
    w = next(v for v in variables(expression) if v.name == "W")
    text = index_jacobian(expression, w).einsum_text()
    assert text == 'einsum("ik,jl->ijkl", X, eye(4))'
    assert parse_tensor(text, {"X": (2, 3)}).shape == (2, 4, 3, 4)


NETWORK = "mean((tanh(X @ W1 + b1) @ W2 + b2 - y)**2)"
NETWORK_SHAPES = {
    "X": ("n", "d"),
    "W1": ("d", "h"),
    "b1": ("h",),
    "W2": ("h",),
    "b2": (),
    "y": ("n",),
}
NETWORK_DIMS = {"n": 5, "d": 3, "h": 4}


def _network(t: dict[str, torch.Tensor]) -> torch.Tensor:
    hidden = torch.tanh(t["X"] @ t["W1"] + t["b1"])
    return (((hidden @ t["W2"] + t["b2"]) - t["y"]) ** 2).mean()


def test_hessian_block_of_two_layer_network_agrees_with_torch() -> None:
    """∂²L/∂W1[i,j]∂W1[k,l], a (d, h, d, h) block, from its index form and its einsum formula."""
    hessian = tensor_hessian(NETWORK, NETWORK_SHAPES, ["W1", "W2"])
    rng = np.random.default_rng(3)
    point = {n: rng.uniform(-1, 1, [NETWORK_DIMS[d] for d in s]) for n, s in NETWORK_SHAPES.items()}
    tensors = {n: torch.tensor(a, dtype=torch.float64) for n, a in point.items()}
    for i, j, expected_rank in ((0, 0, 4), (0, 1, 3)):
        form = block_index_form(hessian, i, j)
        assert form is not None and len(form.shape) == expected_rank
        p, q = hessian.gradient.wrt[i].name, hessian.gradient.wrt[j].name
        assert form.hessian_text(p).startswith(f"∂²L/∂{p}[i,j]∂{q}[k")

        def loss(a: torch.Tensor, b: torch.Tensor, p: str = p, q: str = q) -> torch.Tensor:
            return _network({**tensors, p: a, q: b})

        def alone(a: torch.Tensor, p: str = p) -> torch.Tensor:
            return _network({**tensors, p: a})

        if p == q:
            theirs = torch.autograd.functional.hessian(alone, tensors[p]).numpy()
        else:
            blocks = torch.autograd.functional.hessian(loss, (tensors[p], tensors[q]))
            theirs = blocks[0][1].numpy()
        ours = evaluate_jacobian(form, point, NETWORK_DIMS)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
        again = evaluate(parse_tensor(form.einsum_text(), NETWORK_SHAPES), point, NETWORK_DIMS)
        np.testing.assert_allclose(np.asarray(again), theirs, rtol=1e-10, atol=1e-12)


def test_cli_hessian_prints_the_block_in_index_notation() -> None:
    shape = [a for n, s in NETWORK_SHAPES.items() for a in ("--shape", f"{n}={','.join(s)}")]
    result = run_symdiff("hessian", NETWORK, *shape, "--wrt", "W1")
    assert result.returncode == 0, result.stderr
    assert "d2L/dW12: ∂²L/∂W1[i,j]∂W1[k,l] = " in result.stdout
    assert "no matrix formula" not in result.stdout


def test_cli_jacobian_softmax_has_an_index_form() -> None:
    result = run_symdiff(
        "jacobian", "softmax(X @ W)", "--shape", "X=n,d", "--shape", "W=d,m", "--wrt", "W"
    )
    assert result.returncode == 0, result.stderr
    assert (
        "J_W: ∂f[i,j]/∂W[k,l] = X[i,k] softmax(X @ W)[i,j] (δ[j,l] - softmax(X @ W)[i,l])\n"
    ) in result.stdout


REDUCTIONS = {
    "sum": lambda a, axes, keep: a.sum(axes, keepdim=keep),
    "max": lambda a, axes, keep: a.amax(axes, keepdim=keep),
    "logsumexp": lambda a, axes, keep: torch.logsumexp(a, axes, keepdim=keep),
}


@settings(max_examples=15, deadline=None)
@given(
    order=st.permutations([0, 1, 2]),
    reduction=st.sampled_from(sorted(REDUCTIONS)),
    axes=st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True).map(sorted),
    keep=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_permuted_reductions_agree_with_torch(
    order: list[int], reduction: str, axes: list[int], keep: bool, seed: int
) -> None:
    """reduction(exp(transpose(T, order)), axis=axes, keepdims=keep) by T, any axes."""
    text = (
        f"{reduction}(exp(transpose(T, {tuple(order)})), axis={tuple(axes)}, keepdims={int(keep)})"
    )
    expression = parse_tensor(text, SHAPES)
    (node,) = variables(expression)
    jac = index_jacobian(expression, node)
    point = _arrays(seed)

    def function(t: dict[str, torch.Tensor]) -> torch.Tensor:
        permuted = torch.exp(t["T"].permute(*order))
        return REDUCTIONS[reduction](permuted, tuple(axes), keep)

    theirs = _torch_jacobian(function, "T", point)
    np.testing.assert_allclose(evaluate_jacobian(jac, point, DIMS), theirs, rtol=1e-10, atol=1e-12)
    parsed = parse_tensor(jac.einsum_text(), SHAPES)
    again = np.asarray(evaluate(parsed, point, DIMS), dtype=np.float64)
    np.testing.assert_allclose(again, theirs, rtol=1e-10, atol=1e-12)
