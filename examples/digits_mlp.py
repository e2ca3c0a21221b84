"""The seed's two-layer network, end to end: softmax(relu(X @ W1 + b1) @ W2 + b2) with mean
cross-entropy, differentiated by symdiff in matrix form, compiled to NumPy, trained with
``symdiff.fit`` (Adam, mini-batches) on scikit-learn's bundled 8x8 digits (no download).

Run:  python examples/digits_mlp.py   (prints the gradient formulas and the held-out accuracy)
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from symdiff import fit
from symdiff.autodiff.reverse import tensor_gradient
from symdiff.codegen.tensor import compile as compile_tensor
from symdiff.codegen.tensor import evaluate
from symdiff.explanations.tensor_report import tensor_gradient_report
from symdiff.frontend.tensor_parse import parse_tensor

LOSS = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"
LOGITS = "relu(X @ W1 + b1) @ W2 + b2"
PARAMS = ["W1", "b1", "W2", "b2"]
PIXELS, CLASSES = 64, 10


def shapes(hidden: int) -> dict[str, tuple]:
    return {
        "X": ("n", PIXELS),
        "Y": ("n", CLASSES),
        "W1": (PIXELS, hidden),
        "b1": (hidden,),
        "W2": (hidden, CLASSES),
        "b2": (CLASSES,),
    }


def formulas(hidden: int) -> str:
    """The printed matrix-form gradients of the loss (what the README shows)."""
    declared = shapes(hidden)
    gradient = tensor_gradient(LOSS, declared, PARAMS)
    return tensor_gradient_report(
        LOSS, declared, gradient.loss, gradient.as_dict(), gradient.adjoints
    ).text()


def initial_params(hidden: int, seed: int) -> dict[str, np.ndarray]:
    """He-scaled normal weights, zero biases."""
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(scale=np.sqrt(2 / PIXELS), size=(PIXELS, hidden)),
        "b1": np.zeros(hidden),
        "W2": rng.normal(scale=np.sqrt(2 / hidden), size=(hidden, CLASSES)),
        "b2": np.zeros(CLASSES),
    }


def run(hidden: int = 64, epochs: int = 30, seed: int = 0) -> dict[str, float]:
    """Train on 75% of the digits, return the held-out accuracy, final loss and seconds."""
    digits = load_digits()
    X = digits.data / 16.0
    Y = np.eye(CLASSES)[digits.target]
    X_train, X_test, Y_train, Y_test = train_test_split(
        X, Y, test_size=0.25, random_state=seed, stratify=digits.target
    )
    start = time.perf_counter()
    model = compile_tensor(LOSS, shapes(hidden), PARAMS, ["X", "Y"], name="digits_mlp")
    result = fit(
        model,
        {"X": X_train, "Y": Y_train},
        "adam",
        lr=0.01,
        epochs=epochs,
        batch_size=32,
        seed=seed,
        init=initial_params(hidden, seed),
    )
    seconds = time.perf_counter() - start
    logits = evaluate(parse_tensor(LOGITS, shapes(hidden)), {**result.params, "X": X_test})
    accuracy = float(np.mean(np.argmax(logits, axis=1) == np.argmax(Y_test, axis=1)))
    return {
        "accuracy": accuracy,
        "loss": float(result.loss),
        "seconds": seconds,
        "steps": result.steps,
        "train_samples": len(X_train),
        "test_samples": len(X_test),
    }


def main() -> None:
    print(formulas(64))
    outcome = run()
    print(
        f"\ndigits: {outcome['train_samples']} train / {outcome['test_samples']} held-out images, "
        f"{outcome['steps']} Adam steps in {outcome['seconds']:.1f} s; "
        f"final training loss {outcome['loss']:.4f}; held-out accuracy {outcome['accuracy']:.1%}"
    )


if __name__ == "__main__":
    main()
