"""Batched attention: the generated loss_and_grad against hand-written NumPy backpropagation and
PyTorch (CPU, eager), as ratios measured in one run.

Run (full size, well under a minute on 2 cores; ``--quick`` is a smoke run):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_attention.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_attention.py --quick
    options: --batch 32 --time 64 --embed 64 --head 32 --repeat 30 [--no-torch]

The loss, compiled with ``symdiff.compile_tensor(loss, shapes, ["Wq", "Wk", "Wv"], ["X", "Y"])``,
X of shape (b, t, e), Y of shape (b, t, d), projection weights (e, d):

    sum((softmax(X @ Wq @ swapaxes(X @ Wk, -1, -2) / sqrt(d)) @ (X @ Wv) - Y) ** 2) / (2 * b)

By hand: the forward pass with a max-shifted softmax, then dO = R / b, dV = P^T dO,
dS = P * (dO V^T - rowsum(P * dO V^T)), dQ = dS K / sqrt(d), dK = dS^T Q / sqrt(d), and each
weight's gradient as one (b*t, e)^T @ (b*t, d) product. PyTorch runs with one thread, float64.
Every implementation's loss and gradient are checked against the hand-written ones before timing.
Timing: see harness.py (interleaved rounds, medians, per-round ratios).
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
from collections.abc import Callable

import numpy as np

import symdiff

PARAMS = ("Wq", "Wk", "Wv")


def attention_loss(head: int) -> str:
    return (
        f"sum((softmax(X @ Wq @ swapaxes(X @ Wk, -1, -2) / sqrt({head})) @ (X @ Wv) - Y) ** 2)"
        " / (2 * b)"
    )


def by_hand(p: dict, X: np.ndarray, Y: np.ndarray) -> tuple[float, dict]:
    """Forward pass, stable softmax, textbook backpropagation through attention."""
    b, t, e = X.shape
    scale = 1.0 / np.sqrt(p["Wq"].shape[1])
    Q, K, V = X @ p["Wq"], X @ p["Wk"], X @ p["Wv"]
    S = Q @ K.transpose(0, 2, 1) * scale
    S = np.exp(S - S.max(axis=-1, keepdims=True))
    P = S / S.sum(axis=-1, keepdims=True)
    R = P @ V - Y
    loss = np.sum(R * R) / (2 * b)
    dO = R / b
    dV = P.transpose(0, 2, 1) @ dO
    dP = dO @ V.transpose(0, 2, 1)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True)) * scale
    dQ, dK = dS @ K, dS.transpose(0, 2, 1) @ Q
    rows = X.reshape(b * t, e).T
    grads = {
        name: rows @ g.reshape(b * t, -1) for name, g in zip(PARAMS, (dQ, dK, dV), strict=True)
    }
    return loss, grads


def torch_version(data: tuple) -> Callable | None:
    torch = harness.torch_module()
    if torch is None:
        return None
    X, Y = (torch.from_numpy(d) for d in data)

    def run(p: dict) -> tuple[float, dict]:
        tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
        scale = 1.0 / tp["Wq"].shape[1] ** 0.5
        P = torch.softmax((X @ tp["Wq"]) @ (X @ tp["Wk"]).transpose(-1, -2) * scale, dim=-1)
        loss = ((P @ (X @ tp["Wv"]) - Y) ** 2).sum() / (2 * X.shape[0])
        loss.backward()
        return loss.item(), {k: v.grad.numpy() for k, v in tp.items()}

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch (b)")
    parser.add_argument("--time", type=int, default=64, help="sequence length (t)")
    parser.add_argument("--embed", type=int, default=64, help="input features (e)")
    parser.add_argument("--head", type=int, default=32, help="projection size (d)")
    parser.add_argument("--repeat", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: b = 4, 5 rounds")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeat = 4, 5

    harness.print_header("batched attention: symdiff.compile_tensor vs hand-written backprop")
    print(f"  {harness.framework_versions(torch=not args.no_torch, jax=False)}")
    b, t, e, d = args.batch, args.time, args.embed, args.head
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(b, t, e)), rng.normal(size=(b, t, d)))
    params = {name: rng.normal(size=(e, d)) / np.sqrt(e) for name in PARAMS}
    shapes = {"X": ("b", t, e), "Y": ("b", t, d), **{name: (e, d) for name in PARAMS}}
    loss_text = attention_loss(d)
    reference = by_hand(params, *data)
    names = list(PARAMS)
    candidates: dict[str, Callable[[], object]] = {}
    module = harness.attempt(
        f"symdiff.compile_tensor({loss_text!r})",
        lambda: symdiff.compile_tensor(loss_text, shapes, names, ["X", "Y"]),
    )
    if module is not None:
        harness.admit(
            candidates, "symdiff loss_and_grad (dict)",
            lambda: module.loss_and_grad(params, *data), reference, order=names,
        )  # fmt: skip
    if not args.no_torch:
        version = harness.attempt("PyTorch setup", lambda: torch_version(data))
        if version is None:
            print("  (PyTorch CPU eager: not installed, skipped)")
        else:
            harness.admit(
                candidates, "PyTorch CPU eager", lambda: version(params), reference, order=names
            )
    times = harness.interleaved(
        {"hand-written NumPy backprop": lambda: by_hand(params, *data), **candidates}, args.repeat
    )
    rows = harness.ratio_rows(times, "hand-written NumPy backprop")
    harness.table(
        f"attention b={b} t={t} e={e} d={d}, median of {args.repeat} interleaved rounds "
        "(ratio = per-round time / hand-written)",
        rows,
    )
    harness.finish()


if __name__ == "__main__":
    main()
