"""Generated tensor loss_and_grad vs hand-written NumPy backpropagation (and PyTorch / JAX when
installed), as ratios measured in one run.

    python benchmarks/bench_tensor.py [--repeat 30]

Cases: the seed's two-layer network (X 10,000 x 64, hidden 128, 10 classes, mean cross-entropy)
and logistic regression (X 100,000 x 100). Each time is the median of ``--repeat`` calls after a
warm-up; every implementation's loss and gradient are checked against the hand-written one
first. Times are taken round-robin and each ratio is the median of the per-round ratios, so
that other load on the machine cancels out.
"""

from __future__ import annotations

import os

# One BLAS thread unless told otherwise: on a small shared machine a multi-threaded OpenBLAS
# can spin for 50x longer on some shapes (X.T @ G with a 10,000-long inner dimension), which
# swamps every ratio. Set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS yourself to compare threaded.
THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)
os.environ.setdefault("MKL_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from symdiff.tensor_codegen import compile as compile_tensor  # noqa: E402

MLP_LOSS = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"
LOGISTIC_LOSS = "mean(softplus(X @ w + b) - y * (X @ w + b))"


# --------------------------------------------------------------------------- hand-written NumPy


def mlp_by_hand(p: dict, X: np.ndarray, Y: np.ndarray) -> tuple[float, dict]:
    """Forward pass, stable log-softmax cross-entropy, and textbook backpropagation."""
    n = X.shape[0]
    Z1 = X @ p["W1"] + p["b1"]
    H = np.maximum(Z1, 0.0)
    Z2 = H @ p["W2"] + p["b2"]
    top = Z2.max(axis=1, keepdims=True)
    shifted = Z2 - top
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.sum(Y * log_p) / n
    D = (np.exp(log_p) - Y) / n
    dH = (D @ p["W2"].T) * (Z1 > 0)
    return loss, {"W1": X.T @ dH, "b1": dH.sum(axis=0), "W2": H.T @ D, "b2": D.sum(axis=0)}


def logistic_by_hand(p: dict, X: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    z = X @ p["w"] + p["b"]
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    g = (1.0 / (1.0 + np.exp(-z)) - y) / X.shape[0]
    return loss, {"w": X.T @ g, "b": g.sum()}


# --------------------------------------------------------------------------- optional frameworks


def torch_version(kind: str) -> Callable | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(THREADS))

    def run(p: dict, *data: np.ndarray) -> tuple[float, dict]:
        tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
        td = [torch.from_numpy(d) for d in data]
        if kind == "mlp":
            X, Y = td
            Z = torch.relu(X @ tp["W1"] + tp["b1"]) @ tp["W2"] + tp["b2"]
            loss = -(Y * torch.log_softmax(Z, dim=1)).sum() / X.shape[0]
        else:
            X, y = td
            z = X @ tp["w"] + tp["b"]
            loss = (torch.nn.functional.softplus(z) - y * z).mean()
        loss.backward()
        return loss.item(), {k: v.grad.numpy() for k, v in tp.items()}

    return run


def jax_version(kind: str) -> Callable | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def loss(p, a, b):
        if kind == "mlp":
            Z = jnp.maximum(a @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
            return -jnp.sum(b * jax.nn.log_softmax(Z, axis=1)) / a.shape[0]
        z = a @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - b * z)

    compiled = jax.jit(jax.value_and_grad(loss))
    # A JAX user keeps the data on the device: copy each data array there once, not every call
    # (copying 80 MB per call made JAX look 3.5x slower than NumPy on logistic regression).
    on_device: dict[int, object] = {}

    def run(p: dict, *data: np.ndarray) -> tuple[float, dict]:
        placed = [on_device.setdefault(id(d), jax.device_put(d)) for d in data]
        value, grads = compiled(p, *placed)
        return float(value), {k: np.asarray(v.block_until_ready()) for k, v in grads.items()}

    return run


# --------------------------------------------------------------------------- timing


def interleaved_times(functions: dict[str, Callable], args: tuple, repeat: int) -> dict:
    """Per function: the list of ``repeat`` timings, taken round-robin so that load on the
    machine affects every function alike (ratios are computed round by round)."""
    for function in functions.values():
        function(*args)  # warm-up (and JIT compilation)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function(*args)
            times[name].append(time.perf_counter() - start)
    return times


def check(name: str, result: tuple, reference: tuple) -> None:
    loss, grads = result
    assert abs(loss - reference[0]) <= 1e-9 * max(1.0, abs(reference[0])), name
    for key, value in reference[1].items():
        np.testing.assert_allclose(grads[key], value, rtol=1e-8, atol=1e-12, err_msg=name)


def bench(
    title: str,
    kind: str,
    loss_text: str,
    shapes: dict,
    params: dict,
    data: tuple,
    by_hand: Callable,
    repeat: int,
) -> None:
    names = list(params)
    module = compile_tensor(loss_text, shapes, names, [k for k in shapes if k not in params])
    flat = np.concatenate([np.ravel(params[k]) for k in names])
    candidates: dict[str, Callable] = {
        "symdiff loss_and_grad (dict params)": module.loss_and_grad,
        "symdiff loss_and_grad (flat vector)": lambda _p, *d: module.loss_and_grad(flat, *d),
        "symdiff loss only": lambda p, *d: (module.loss(p, *d), None),
    }
    for label, factory in (("PyTorch CPU (eager)", torch_version), ("JAX CPU (jit)", jax_version)):
        version = factory(kind)
        if version is None:
            print(f"  ({label}: not installed, skipped)")
        else:
            candidates[label] = version
    reference = by_hand(params, *data)
    for label, function in candidates.items():
        if "flat" in label or "only" in label:
            continue
        check(label, function(params, *data), reference)
    times = interleaved_times(
        {"hand-written NumPy backprop": by_hand, **candidates}, (params, *data), repeat
    )
    base = times.pop("hand-written NumPy backprop")
    print(
        f"{title}\n  {'hand-written NumPy backprop':<38} {statistics.median(base) * 1e3:8.2f} ms"
        "   1.00x"
    )
    for label, seconds in times.items():
        ratio = statistics.median(t / b for t, b in zip(seconds, base, strict=True))
        print(f"  {label:<38} {statistics.median(seconds) * 1e3:8.2f} ms   {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    repeat = parser.parse_args().repeat
    print(f"BLAS threads: {THREADS} (OPENBLAS_NUM_THREADS); numpy {np.__version__}")
    rng = np.random.default_rng(0)

    n, d, h, k = 10_000, 64, 128, 10
    X = rng.normal(size=(n, d))
    Y = np.eye(k)[rng.integers(0, k, n)]
    params = {
        "W1": rng.normal(size=(d, h)) * 0.1,
        "b1": np.zeros(h),
        "W2": rng.normal(size=(h, k)) * 0.1,
        "b2": np.zeros(k),
    }
    shapes = {"X": ("n", d), "Y": ("n", k), "W1": (d, h), "b1": (h,), "W2": (h, k), "b2": (k,)}
    bench(
        f"two-layer network: X {n:,} x {d}, hidden {h}, {k} classes",
        "mlp",
        MLP_LOSS,
        shapes,
        params,
        (X, Y),
        mlp_by_hand,
        repeat,
    )

    n, d = 100_000, 100
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(float)
    params = {"w": rng.normal(size=d) * 0.1, "b": np.array(0.1)}
    shapes = {"X": ("n", d), "y": ("n",), "w": (d,), "b": ()}
    bench(
        f"logistic regression: X {n:,} x {d}",
        "logistic",
        LOGISTIC_LOSS,
        shapes,
        params,
        (X, y),
        logistic_by_hand,
        repeat,
    )


if __name__ == "__main__":
    main()
