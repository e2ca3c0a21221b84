"""Code generation grows linearly with the loss: generation time (and source size) when the loss
doubles, for the product of D parameters and for an L-layer network.

Run (full size, about a minute on 2 cores; ``--quick`` is a smoke run):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_codegen.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_codegen.py --quick
    options: --params 80 --layers 8 --width 16 --repeat 5

Cases (each at size s and 2s):

* ``symdiff.generate("t*x0*x1*...*x{D-1}", "x0,...", "t")``, D = 80 and 160;
* ``symdiff.generate_tensor`` of an L-layer network of width 16 (L - 1 relu layers, then a linear
  layer of 10 classes and ``cross_entropy(Y, softmax(...))``), L = 8 and 16.

Each timing is one call of generate / generate_tensor in a fresh Python process that imported
symdiff (and built the loss text) first, so no cache of an earlier call helps it; the processes
run interleaved (s, 2s, s, 2s, ...). Time ratio = median over the rounds of time(2s) / time(s);
target <= 2.3x (linear plus a margin). The same process also times a second, warm call (printed,
no target). Before timing, the module of each size is compiled (``symdiff.compile`` /
``compile_tensor``) and checked against hand-written NumPy.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

CLASSES = 10
TARGET = 2.3


def product_case(d: int) -> tuple[str, str]:
    names = [f"x{i}" for i in range(d)]
    return "t*" + "*".join(names), ",".join(names)


def network_case(layers: int, width: int) -> tuple[str, dict, list[str]]:
    """(loss, shapes, params) of ``layers`` weight layers: relu hidden layers, softmax output."""
    hidden = "X"
    shapes: dict[str, tuple] = {"X": ("n", width), "Y": ("n", CLASSES)}
    params: list[str] = []
    for i in range(1, layers + 1):
        out = width if i < layers else CLASSES
        shapes[f"W{i}"], shapes[f"b{i}"] = (width, out), (out,)
        params += [f"W{i}", f"b{i}"]
        if i < layers:
            hidden = f"relu({hidden} @ W{i} + b{i})"
    loss = f"cross_entropy(Y, softmax({hidden} @ W{layers} + b{layers}))"
    return loss, shapes, params


def generate(kind: str, size: int, width: int) -> str:
    import symdiff

    if kind == "product":
        loss, names = product_case(size)
        return symdiff.generate(loss, names, "t", reduce="mean")
    loss, shapes, params = network_case(size, width)
    return symdiff.generate_tensor(loss, shapes, params, ["X", "Y"])


def worker(kind: str, size: int, width: int) -> None:
    """Child process: import symdiff, then time a cold and a warm generation; one JSON line."""
    import symdiff  # noqa: F401 - imported before the clock starts

    report: dict[str, object] = {}
    try:
        for label in ("cold", "warm"):
            start = time.perf_counter()
            source = generate(kind, size, width)
            report[label] = time.perf_counter() - start
        report["chars"], report["lines"] = len(source), source.count("\n")
    except Exception as error:  # noqa: BLE001 - reported to the parent, verbatim
        report["error"] = f"{type(error).__module__}.{type(error).__name__}: {error}"
    print(json.dumps(report))


def run_worker(kind: str, size: int, width: int) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(size), "--width", str(width)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"worker exited {completed.returncode}: {tail}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- verification


def verify_product(d: int) -> None:
    import symdiff

    loss, names = product_case(d)
    model = harness.attempt(
        f"symdiff.compile(product of {d})", lambda: symdiff.compile(loss, names, "t", reduce="mean")
    )
    if model is None:
        return
    rng = np.random.default_rng(d)
    p, t = rng.uniform(0.95, 1.05, d), rng.standard_normal(200)
    grad = np.array([np.prod(np.delete(p, i)) for i in range(d)]) * np.mean(t)
    result = harness.attempt(f"product of {d}: loss_and_grad", lambda: model.loss_and_grad(p, t))
    if result is not None:
        harness.check(f"product of {d}", result, (np.mean(t * np.prod(p)), grad), rtol=1e-10)


def network_by_hand(params: dict, X: np.ndarray, Y: np.ndarray, layers: int):
    """Forward pass, stable log-softmax cross-entropy, backpropagation layer by layer."""
    H, Zs = [X], []
    for i in range(1, layers + 1):
        Z = H[-1] @ params[f"W{i}"] + params[f"b{i}"]
        Zs.append(Z)
        if i < layers:
            H.append(np.maximum(Z, 0.0))
    shifted = Z - Z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = X.shape[0]
    grads = {}
    G = (np.exp(log_p) - Y) / n
    for i in range(layers, 0, -1):
        if i < layers:
            G = G * (Zs[i - 1] > 0)
        grads[f"W{i}"], grads[f"b{i}"] = H[i - 1].T @ G, G.sum(axis=0)
        G = G @ params[f"W{i}"].T
    return -np.sum(Y * log_p) / n, grads


def verify_network(layers: int, width: int) -> None:
    import symdiff

    loss, shapes, names = network_case(layers, width)
    module = harness.attempt(
        f"symdiff.compile_tensor({layers}-layer network)",
        lambda: symdiff.compile_tensor(loss, shapes, names, ["X", "Y"]),
    )
    if module is None:
        return
    rng = np.random.default_rng(layers)
    params = {
        k: rng.normal(size=shapes[k]) * (np.sqrt(2 / shapes[k][0]) if k[0] == "W" else 0.1)
        for k in names
    }
    X = rng.normal(size=(64, width))
    Y = np.eye(CLASSES)[rng.integers(0, CLASSES, 64)]
    result = harness.attempt(
        f"{layers}-layer network: loss_and_grad", lambda: module.loss_and_grad(params, X, Y)
    )
    if result is not None:
        harness.check(
            f"{layers}-layer network",
            result,
            network_by_hand(params, X, Y, layers),
            order=names,
            rtol=1e-9,
        )


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=80, help="D of the product (and 2D)")
    parser.add_argument("--layers", type=int, default=8, help="L of the network (and 2L)")
    parser.add_argument("--width", type=int, default=16, help="hidden width of the network")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: D = 20, L = 2, 2 rounds")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.width)
        return
    if args.quick:
        args.params, args.layers, args.repeat = 20, 2, 2

    harness.print_header("code generation time: symdiff.generate / generate_tensor")
    cases = [
        ("product", args.params, "product"),
        ("product", 2 * args.params, "product"),
        ("network", args.layers, "network"),
        ("network", 2 * args.layers, "network"),
    ]
    for kind, size, _ in cases:
        if kind == "product":
            verify_product(size)
        else:
            verify_network(size, args.width)

    runs: dict[tuple[str, int], list[dict]] = {(k, s): [] for k, s, _ in cases}
    broken: set[tuple[str, int]] = set()
    for _ in range(args.repeat):
        for kind, size, _ in cases:
            if (kind, size) in broken:
                continue
            report = run_worker(kind, size, args.width)
            if "error" in report:
                harness.fail(f"{kind} {size}: {report['error']}")
                broken.add((kind, size))
            else:
                runs[(kind, size)].append(report)

    rows = []
    for (kind, small, title), (_, large, _) in zip(cases[::2], cases[1::2], strict=True):
        a, b = runs[(kind, small)], runs[(kind, large)]
        letter = "D" if kind == "product" else "L"
        if not a or not b:
            rows.append((f"{title} {letter} = {small} -> {large}", "error", "", "", "FAIL"))
            continue
        for label in ("cold", "warm"):
            ta, tb = [r[label] for r in a], [r[label] for r in b]
            r = statistics.median(y / x for x, y in zip(ta, tb, strict=True))
            target = TARGET if label == "cold" else None
            rows.append(
                (
                    f"{title} {letter} = {small} -> {large}, {label} time",
                    f"{statistics.median(ta):.3f} s -> {statistics.median(tb):.3f} s",
                    f"{r:.2f}x",
                    f"<= {target}x" if target else "",
                    harness.verdict(r, target),
                )
            )
        rows.append(
            (
                f"{title} {letter} = {small} -> {large}, source lines",
                f"{a[0]['lines']} -> {b[0]['lines']}",
                f"{b[0]['lines'] / a[0]['lines']:.2f}x",
                "",
                "",
            )
        )
        rows.append(
            (
                f"{title} {letter} = {small} -> {large}, source chars",
                f"{a[0]['chars']:,} -> {b[0]['chars']:,}",
                f"{b[0]['chars'] / a[0]['chars']:.2f}x",
                "",
                "",
            )
        )
    harness.table(
        f"[5] generation time, one call per fresh process, median of {args.repeat} interleaved "
        "rounds (ratio = at 2x size / at 1x size)\n"
        "  product = symdiff.generate of t*x0*...*x{D-1}; network = symdiff.generate_tensor of "
        f"an L-layer relu network, width {args.width}, softmax cross-entropy",
        rows,
    )
    harness.finish()


if __name__ == "__main__":
    main()
