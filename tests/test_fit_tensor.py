"""``fit`` with tensor models from ``symdiff.codegen.tensor.compile``: matrix parameters keep their
shapes, mini-batches take rows of the data matrices, and the networks of the DESIGN train."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

from symdiff.codegen.tensor import compile as compile_tensor
from symdiff.train.loop import fit
from symdiff.train.optimize import make_optimizer


@pytest.fixture(scope="module")
def iris():
    features, labels = load_iris(return_X_y=True)
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    return features, np.eye(3)[labels], labels


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def test_softmax_regression_on_iris_with_minibatches(iris):
    X, Y, labels = iris
    model = compile_tensor(
        "cross_entropy(Y, softmax(X @ W + c))",
        {"X": ("n", 4), "Y": ("n", 3), "W": (4, 3), "c": (3,)},
        ["W", "c"],
    )
    result = fit(model, {"X": X, "Y": Y}, "adam", lr=0.05, epochs=150, batch_size=30, seed=1)
    W, c = result.params["W"], result.params["c"]
    assert W.shape == (4, 3) and c.shape == (3,)
    assert result.steps == 150 * 5
    assert result.history.epoch_loss[0] > 0.5 > 0.1 > result.loss
    assert result.loss == pytest.approx(model.loss(result.flat, X, Y))
    assert accuracy(X @ W + c, labels) >= 0.96
    # the same seed gives the same parameters, bit for bit
    again = fit(model, {"X": X, "Y": Y}, "adam", lr=0.05, epochs=150, batch_size=30, seed=1)
    assert np.array_equal(again.flat, result.flat)


def test_two_layer_network_trains_from_a_random_start(iris):
    X, Y, labels = iris
    model = compile_tensor(
        "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))",
        {"X": ("n", 4), "Y": ("n", 3), "W1": (4, 8), "b1": (8,), "W2": (8, 3), "b2": (3,)},
        ["W1", "b1", "W2", "b2"],
    )
    rng = np.random.default_rng(0)
    start = {"W1": rng.normal(0, 0.5, (4, 8)), "W2": rng.normal(0, 0.5, (8, 3))}
    optimizer = make_optimizer("momentum", lr=0.1, mu=0.9)
    result = fit(model, (X, Y), optimizer, init=start, epochs=300, gtol=1e-6)
    p = result.params
    hidden = np.maximum(X @ p["W1"] + p["b1"], 0)
    assert result.history.loss[0] > 1.0 > 0.1 > result.loss
    assert accuracy(hidden @ p["W2"] + p["b2"], labels) >= 0.97
