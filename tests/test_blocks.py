"""Per-sample losses run block by block: exact across block boundaries, memory bounded by BLOCK."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import symdiff

LOGISTIC = "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))"


def logistic_reference(b0: float, b1: float, x: np.ndarray, y: np.ndarray) -> tuple:
    z = b0 + b1 * x
    p = 1 / (1 + np.exp(-z))
    loss = np.mean(np.logaddexp(0, z) - y * z)
    return loss, np.array([np.mean(p - y), np.mean((p - y) * x)])


@pytest.fixture(scope="module")
def logistic():
    return symdiff.compile(LOGISTIC, "b0,b1", "x,y")


@pytest.mark.parametrize("extra", [0, 1, 4321])
def test_blocks_add_up_to_the_whole(logistic, extra: int) -> None:
    n = 2 * logistic.BLOCK + extra
    rng = np.random.default_rng(extra)
    x, y = rng.normal(size=n), rng.integers(0, 2, size=n).astype(float)
    loss, grad = logistic.loss_and_grad([0.3, -1.2], x, y)
    expected_loss, expected_grad = logistic_reference(0.3, -1.2, x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-11)
    assert logistic.loss([0.3, -1.2], x, y) == loss
    np.testing.assert_array_equal(logistic.grad([0.3, -1.2], x, y), grad)


def test_the_loop_is_in_the_generated_source(logistic) -> None:
    source = logistic.__source__
    assert "for start in range(0, n, BLOCK):" in source
    assert "np.dot(" in source  # the sum of x * (p - y) without the product array


def test_peak_memory_is_bounded_by_the_block_not_the_data(logistic) -> None:
    n = 40 * logistic.BLOCK
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=n), rng.integers(0, 2, size=n).astype(float)
    logistic.loss_and_grad([0.1, 0.2], x, y)  # warm up
    tracemalloc.start()
    try:
        logistic.loss_and_grad([0.1, 0.2], x, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_array = n * 8
    assert peak < one_array / 4  # a block's few temporaries, not arrays of n samples


def test_parameter_only_products_are_scalars_and_the_sum_is_shared() -> None:
    count = 30
    params = [f"p{i}" for i in range(count)]
    module = symdiff.compile("t*" + "*".join(params), params, "t")
    rng = np.random.default_rng(1)
    point = rng.uniform(0.5, 1.5, size=count)
    t = rng.normal(size=module.BLOCK + 17)
    loss, grad = module.loss_and_grad(point, t)
    product = np.prod(point)
    assert loss == pytest.approx(np.mean(t) * product, rel=1e-12)
    np.testing.assert_allclose(grad, np.mean(t) * product / point, rtol=1e-11)
    body = module.__source__.split("def loss_and_grad")[1].split("\n\n\n")[0]
    loop = body.split("for start in range(0, n, BLOCK):")[1].split("\n    S")[0]
    assert loop.count("+=") == 1  # one sum over the samples, whatever the parameter count


def test_hessian_across_blocks() -> None:
    module = symdiff.compile("(a*x + b - y)**2", "a,b", "x,y", hessian=True)
    rng = np.random.default_rng(2)
    n = module.BLOCK + 999
    x, y = rng.normal(size=n), rng.normal(size=n)
    expected = 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    np.testing.assert_allclose(module.hessian([0.5, 0.1], x, y), expected, rtol=1e-12)
