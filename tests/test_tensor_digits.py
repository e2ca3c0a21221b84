"""The seed's two-layer softmax network trained on scikit-learn's bundled digits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_mlp.py"


def _example():
    spec = importlib.util.spec_from_file_location("digits_mlp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_network_reaches_95_percent_held_out():
    # its training time is measured (not asserted) by benchmarks/bench_wall_clock.py
    example = _example()
    outcome = example.run(hidden=64, epochs=30, seed=0)
    assert outcome["accuracy"] >= 0.95
    assert outcome["test_samples"] == 450
    again = example.run(hidden=64, epochs=30, seed=0)
    assert again["accuracy"] == outcome["accuracy"]  # seeded: the same run twice
    assert again["loss"] == outcome["loss"]


def test_digits_gradient_formulas_are_the_textbook_ones():
    text = _example().formulas(64)
    assert "Z1   = X @ W1 + b1" in text
    assert "G1   = softmax(Z2) - Y" in text
    assert "dL/dW2 = H1.T @ G1 / n" in text
    assert "dL/db2 = sum(G1, axis=0) / n" in text
    assert "dL/dW1 = X.T @ G2 / n" in text
    assert "G2   = (G1 @ W2.T) * heaviside(Z1)" in text
