"""Tensor losses: the generated loss_and_grad against hand-written NumPy backpropagation, with
PyTorch (CPU, eager) and JAX (CPU, jit) beside it, as ratios measured in one run.

Run (full size, under a minute on 2 cores; ``--quick`` is a smoke run):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_tensor.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_tensor.py --quick
    options: --samples 100000 --features 100 --mlp-samples 10000 --hidden 128 --repeat 30
             [--no-torch] [--no-jax]

Cases, compiled with ``symdiff.compile_tensor(loss, shapes, params, data)``:

* vector logistic regression, X 10^5 x 100: ``mean(softplus(X @ w) - y * (X @ w))``; by hand
  ``z = X@w; p = 1/(1+exp(-z)); loss = mean(-y*log(p) - (1-y)*log(1-p)); grad = X.T@(p-y)/n``;
* the two-layer network 64-128-10, n = 10^4:
  ``cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))``; by hand a stable log-softmax and
  textbook backpropagation.

Target (DESIGN.md): generated loss_and_grad <= 1.0x the hand-written backprop in both cases, for
params as a dict and as one flat vector. PyTorch runs with torch.set_num_threads(1), JAX with
jax_enable_x64 and its data placed on the device once; both float64. Every implementation's loss
and gradient are checked against the hand-written ones before timing. Timing: see harness.py.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
from collections.abc import Callable

import numpy as np

import symdiff

LOGISTIC_LOSS = "mean(softplus(X @ w) - y * (X @ w))"
MLP_LOSS = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"


# --------------------------------------------------------------------------- hand-written NumPy


def logistic_by_hand(p: dict, X: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """The textbook: sigmoid, the two logs, X.T @ residual."""
    z = X @ p["w"]
    s = 1.0 / (1.0 + np.exp(-z))
    loss = np.mean(-y * np.log(s) - (1 - y) * np.log(1 - s))
    return loss, {"w": X.T @ (s - y) / X.shape[0]}


def mlp_by_hand(p: dict, X: np.ndarray, Y: np.ndarray) -> tuple[float, dict]:
    """Forward pass, stable log-softmax cross-entropy, and textbook backpropagation."""
    n = X.shape[0]
    Z1 = X @ p["W1"] + p["b1"]
    H = np.maximum(Z1, 0.0)
    Z2 = H @ p["W2"] + p["b2"]
    shifted = Z2 - Z2.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.sum(Y * log_p) / n
    D = (np.exp(log_p) - Y) / n
    dH = (D @ p["W2"].T) * (Z1 > 0)
    return loss, {"W1": X.T @ dH, "b1": dH.sum(axis=0), "W2": H.T @ D, "b2": D.sum(axis=0)}


# --------------------------------------------------------------------------- frameworks


def torch_version(kind: str, data: tuple) -> Callable | None:
    torch = harness.torch_module()
    if torch is None:
        return None
    A, B = (torch.from_numpy(d) for d in data)

    def run(p: dict) -> tuple[float, dict]:
        tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
        if kind == "mlp":
            Z = torch.relu(A @ tp["W1"] + tp["b1"]) @ tp["W2"] + tp["b2"]
            loss = -(B * torch.log_softmax(Z, dim=1)).sum() / A.shape[0]
        else:
            z = A @ tp["w"]
            loss = (torch.nn.functional.softplus(z) - B * z).mean()
        loss.backward()
        return loss.item(), {k: v.grad.numpy() for k, v in tp.items()}

    return run


def jax_version(kind: str, data: tuple) -> Callable | None:
    modules = harness.jax_modules()
    if modules is None:
        return None
    jax, jnp = modules

    def loss(p, a, b):
        if kind == "mlp":
            Z = jnp.maximum(a @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
            return -jnp.sum(b * jax.nn.log_softmax(Z, axis=1)) / a.shape[0]
        z = a @ p["w"]
        return jnp.mean(jax.nn.softplus(z) - b * z)

    compiled = jax.jit(jax.value_and_grad(loss))
    placed = [jax.device_put(d) for d in data]  # as a JAX user would: once, not per call

    def run(p: dict) -> tuple[float, dict]:
        value, grads = compiled(p, *placed)
        return float(value), {k: np.asarray(v.block_until_ready()) for k, v in grads.items()}

    return run


# --------------------------------------------------------------------------- one case


def bench(
    title: str,
    kind: str,
    loss_text: str,
    shapes: dict,
    params: dict,
    data: tuple,
    by_hand: Callable,
    args: argparse.Namespace,
) -> None:
    names = list(params)
    data_names = [k for k in shapes if k not in params]
    reference = by_hand(params, *data)
    flat = np.concatenate([np.ravel(params[k]) for k in names])
    candidates: dict[str, Callable[[], object]] = {}
    module = harness.attempt(
        f"symdiff.compile_tensor({loss_text!r})",
        lambda: symdiff.compile_tensor(loss_text, shapes, names, data_names),
    )
    if module is not None:
        for label, call in (
            ("symdiff loss_and_grad (dict)", lambda: module.loss_and_grad(params, *data)),
            ("symdiff loss_and_grad (flat)", lambda: module.loss_and_grad(flat, *data)),
        ):
            harness.admit(candidates, label, call, reference, order=names)
        value = harness.attempt("symdiff loss", lambda: module.loss(params, *data))
        if value is not None and harness.check("symdiff loss", (value, None), reference):
            candidates["symdiff loss alone"] = lambda: module.loss(params, *data)
    for label, factory, skip in (
        ("PyTorch CPU eager", torch_version, args.no_torch),
        ("JAX CPU jit", jax_version, args.no_jax),
    ):
        if skip:
            continue
        version = harness.attempt(f"{label} setup", lambda f=factory: f(kind, data))
        if version is None:
            print(f"  ({label}: not installed, skipped)")
            continue
        harness.admit(candidates, label, lambda v=version: v(params), reference, order=names)
    times = harness.interleaved(
        {"hand-written NumPy backprop": lambda: by_hand(params, *data), **candidates}, args.repeat
    )
    targets = {label: 1.0 for label in times if label.startswith("symdiff loss_and_grad")}
    rows = harness.ratio_rows(times, "hand-written NumPy backprop", targets)
    harness.table(
        f"{title}, median of {args.repeat} interleaved rounds "
        "(ratio = per-round time / hand-written)",
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000, help="rows of X, logistic")
    parser.add_argument("--features", type=int, default=100, help="columns of X, logistic")
    parser.add_argument("--mlp-samples", type=int, default=10_000, help="rows of X, network")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units of the network")
    parser.add_argument("--repeat", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: n / 10, 5 rounds")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.mlp_samples, args.repeat = 10_000, 1_000, 5

    versions = harness.framework_versions(torch=not args.no_torch, jax=not args.no_jax)
    harness.print_header("tensor losses: symdiff.compile_tensor vs hand-written backprop")
    print(f"  {versions}")
    rng = np.random.default_rng(0)

    n, d = args.samples, args.features
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ (rng.normal(size=d) * 0.1)))).astype(float)
    bench(
        f"[4a] vector logistic regression: X {n:,} x {d}",
        "logistic",
        LOGISTIC_LOSS,
        {"X": ("n", d), "w": (d,), "y": ("n",)},
        {"w": rng.normal(size=d) * 0.1},
        (X, y),
        logistic_by_hand,
        args,
    )

    n, d, h, k = args.mlp_samples, 64, args.hidden, 10
    X = rng.normal(size=(n, d))
    Y = np.eye(k)[rng.integers(0, k, n)]
    params = {
        "W1": rng.normal(size=(d, h)) * np.sqrt(2 / d),
        "b1": rng.normal(size=h) * 0.1,
        "W2": rng.normal(size=(h, k)) * np.sqrt(2 / h),
        "b2": rng.normal(size=k) * 0.1,
    }
    bench(
        f"[4b] two-layer network {d}-{h}-{k}, softmax cross-entropy: n = {n:,}",
        "mlp",
        MLP_LOSS,
        {"X": ("n", d), "Y": ("n", k), "W1": (d, h), "b1": (h,), "W2": (h, k), "b2": (k,)},
        params,
        (X, Y),
        mlp_by_hand,
        args,
    )
    harness.finish()


if __name__ == "__main__":
    main()
