"""The training loop ``symdiff.fit`` on hand-written NumPy models with the generated-module
interface (PARAMS, DATA, loss, loss_and_grad on a flat parameter vector): convergence, batching,
seeds, stopping rules, divergence, callbacks, parameter layout."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symdiff
from symdiff.errors import InputError
from symdiff.train.loop import FitResult, ParamLayout, StepInfo, fit, planned_steps, value_text
from symdiff.train.optimize import Momentum, make_optimizer


class LineModel:
    """Per-sample loss (b0 + b1*x - y)**2, averaged over the samples."""

    PARAMS = (("b0", ()), ("b1", ()))
    DATA = ("x", "y")

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def loss(self, params, x, y):
        residual = params[0] + params[1] * x - y
        return float(np.mean(residual**2))

    def loss_and_grad(self, params, x, y):
        self.batches.append(np.asarray(x).copy())
        residual = params[0] + params[1] * x - y
        return float(np.mean(residual**2)), np.array(
            [np.mean(2 * residual), np.mean(2 * residual * x)]
        )


class VectorModel:
    """(X @ w + b - y)**2 averaged, with a vector parameter w of shape (3,)."""

    PARAMS = (("w", (3,)), ("b", ()))
    DATA = ("X", "y")

    def loss_and_grad(self, params, X, y):
        w, b = params[:3], params[3]
        residual = X @ w + b - y
        grad_w = 2 * X.T @ residual / len(y)
        return float(np.mean(residual**2)), np.append(grad_w, np.mean(2 * residual))


class DoubleWell:
    """No data: f(w) = w**4 - 3 w**2 + w (a local minimum near 1.13, the global near -1.30)."""

    PARAMS = (("w", ()),)
    DATA = ()

    def loss_and_grad(self, params):
        w = params[0]
        return w**4 - 3 * w**2 + w, np.array([4 * w**3 - 6 * w + 1])


@pytest.fixture(scope="module")
def line_data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=120)
    y = 0.5 - 1.5 * x + 0.2 * rng.normal(size=120)
    return x, y


def least_squares(x, y):
    solution, *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)
    return solution


@pytest.mark.parametrize(
    ("optimizer", "lr"),
    [("gd", 0.3), ("momentum", 0.1), ("nesterov", 0.1), ("adagrad", 1.0), ("adam", 0.1)],
)
def test_full_batch_optimizers_reach_least_squares(line_data, optimizer, lr):
    x, y = line_data
    result = fit(LineModel(), (x, y), optimizer, lr=lr, epochs=3000, tol=1e-14)
    assert result.converged, result.message
    assert [result.params["b0"], result.params["b1"]] == pytest.approx(
        least_squares(x, y), abs=1e-5
    )
    assert result.loss == pytest.approx(LineModel().loss(result.flat, x, y))
    assert result.steps == result.epochs == len(result.history.loss)


def test_minibatch_sgd_with_decay_gets_close(line_data):
    x, y = line_data
    optimizer = make_optimizer("minibatch", lr=0.1, schedule="inverse:decay=0.01")
    result = fit(LineModel(), (x, y), optimizer, batch_size=10, epochs=60, seed=3)
    assert [result.params["b0"], result.params["b1"]] == pytest.approx(
        least_squares(x, y), abs=0.02
    )
    assert result.steps == 60 * 12
    assert len(result.history.epoch_loss) == 60
    # the step losses are batch losses; the epoch losses weight them by batch size
    assert result.history.epoch_loss[0] == pytest.approx(np.mean(result.history.loss[:12]))
    assert result.history.epoch_end[:3] == [11, 23, 35]


@pytest.mark.parametrize(
    ("optimizer", "batch_size", "per_epoch"),
    [
        ("gd", "auto", 1),
        ("sgd", "auto", 50),
        ("minibatch", "auto", 2),
        ("sgd", 7, 8),
        ("sgd", None, 1),
    ],
)
def test_batch_sizes_cover_every_sample_once_per_epoch(optimizer, batch_size, per_epoch):
    x = np.arange(50, dtype=float)
    model = LineModel()
    result = fit(model, (x, 2 * x), optimizer, lr=1e-4, epochs=3, batch_size=batch_size)
    assert result.steps == 3 * per_epoch
    for epoch in range(3):
        seen = np.concatenate(model.batches[epoch * per_epoch : (epoch + 1) * per_epoch])
        assert sorted(seen.tolist()) == x.tolist()
    assert (
        planned_steps(model, (x, 2 * x), make_optimizer(optimizer), batch_size, 3) == 3 * per_epoch
    )


@given(
    n=st.integers(1, 40),
    size=st.one_of(st.none(), st.integers(1, 50)),
    epochs=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_every_epoch_is_a_partition_of_the_samples(n, size, epochs, seed):
    """Whatever n, batch size and seed: each epoch's batches hold every sample exactly once,
    in ceil(n / size) batches of at most ``size`` samples."""
    x = np.arange(n, dtype=float)
    model = LineModel()
    result = fit(model, (x, x), "sgd", lr=1e-6, epochs=epochs, batch_size=size, seed=seed)
    per_epoch = 1 if size is None or size >= n else -(-n // size)
    assert result.steps == epochs * per_epoch
    batches = model.batches[: result.steps]
    assert all(len(b) <= (size or n) for b in batches)
    for epoch in range(epochs):
        seen = np.concatenate(batches[epoch * per_epoch : (epoch + 1) * per_epoch])
        assert sorted(seen.tolist()) == x.tolist()


def test_same_seed_same_result_other_seed_other_path(line_data):
    x, y = line_data
    runs = [
        fit(LineModel(), (x, y), "sgd", lr=0.01, epochs=3, seed=seed, record_path=True)
        for seed in (11, 11, 12)
    ]
    assert runs[0].history.loss == runs[1].history.loss
    assert len(runs[0].history.path) == runs[0].steps + 1  # every step's start, and the end
    assert np.array_equal(runs[0].history.path[-1], runs[0].flat)
    assert np.array_equal(runs[0].flat, runs[1].flat)
    assert runs[0].history.loss != runs[2].history.loss
    assert not np.array_equal(runs[0].flat, runs[2].flat)


def test_no_shuffle_keeps_the_order():
    x = np.arange(6, dtype=float)
    model = LineModel()
    fit(model, (x, x), "sgd", lr=1e-3, epochs=2, batch_size=4, shuffle=False)
    assert [b.tolist() for b in model.batches[:4]] == [[0, 1, 2, 3], [4, 5]] * 2


def test_gtol_stops_with_a_small_gradient(line_data):
    x, y = line_data
    result = fit(LineModel(), (x, y), "gd", lr=0.3, epochs=10_000, gtol=1e-8)
    assert result.converged
    assert "gradient norm" in result.message
    assert result.history.grad_norm[-1] <= 1e-8 < result.history.grad_norm[-2]
    assert result.steps == len(result.history.loss) - 1  # the last gradient was not applied


def test_max_steps_and_epochs_end_without_convergence(line_data):
    x, y = line_data
    capped = fit(LineModel(), (x, y), "sgd", lr=0.01, epochs=5, max_steps=17, tol=1e-12)
    assert (capped.steps, capped.epochs, capped.converged) == (17, 1, False)
    assert "max_steps=17" in capped.message
    finished = fit(LineModel(), (x, y), "gd", lr=0.01, epochs=4)
    assert (finished.steps, finished.converged) == (4, False)
    assert finished.message == "finished 4 epochs (no tolerance set)"


def test_learning_rate_history_follows_the_schedule(line_data):
    x, y = line_data
    optimizer = make_optimizer("gd", lr=0.2, schedule="exponential:gamma=0.5")
    result = fit(LineModel(), (x, y), optimizer, epochs=4)
    assert result.history.lr == pytest.approx([0.2, 0.1, 0.05, 0.025])


def test_divergence_returns_the_last_finite_parameters(line_data):
    x, y = line_data
    result = fit(LineModel(), (x, y), "gd", lr=5.0, epochs=10_000, record_path=True)
    assert result.diverged and not result.converged
    # the counts in the message are those the result reports
    steps, epochs = result.steps, result.epochs
    assert result.message.startswith(f"diverged after {steps} steps ({epochs} epochs): the loss")
    assert f"kept the parameters after {steps - 1} steps" in result.message
    assert "smaller learning rate than 5" in result.message
    assert np.all(np.isfinite(result.flat))
    # the parameters kept are those of the last step whose loss and gradient were finite
    assert np.array_equal(result.flat, result.history.path[-1])
    assert math.isfinite(result.history.loss[-1])
    assert result.loss == pytest.approx(result.history.loss[-1])


def test_divergence_at_the_first_step_keeps_the_initial_values():
    x = np.array([1.0, 2.0])
    result = fit(LineModel(), (x, x), "gd", init={"b0": 1e200, "b1": 1e200})
    assert result.diverged and result.steps == 0
    assert "kept the parameters of the initial values" in result.message
    assert result.params == {"b0": 1e200, "b1": 1e200}


def test_json_has_no_nan():
    """A loss that is already infinite at the start: diverged at step 0, JSON-safe result."""
    result = fit(LineModel(), (np.array([1.0]), np.array([1e200])), "gd")
    assert result.diverged and result.steps == 0 and math.isinf(result.loss)
    assert result.to_dict()["loss"] is None
    json.dumps(result.to_dict(), allow_nan=False)


def test_growing_loss_is_reported(line_data):
    x, y = line_data
    result = fit(LineModel(), (x, y), "gd", lr=1.5, epochs=20)
    assert not result.diverged
    assert "the loss grew" in result.message and "smaller learning rate" in result.message


def test_callbacks_see_each_step_and_can_stop(line_data):
    x, y = line_data
    seen: list[StepInfo] = []

    def watch(info: StepInfo) -> bool:
        seen.append(info)
        return info.step == 25

    result = fit(LineModel(), (x, y), "sgd", lr=0.01, epochs=5, batch_size=10, callbacks=[watch])
    assert result.steps == 25 and [info.step for info in seen] == list(range(1, 26))
    assert [info.epoch for info in seen if info.epoch_done] == [1, 2]
    assert result.message == "stopped by a callback after step 25"
    assert np.array_equal(seen[-1].params, result.flat)


def test_vector_parameters_keep_their_shape():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    result = fit(VectorModel(), {"X": X, "y": y}, "gd", lr=0.2, epochs=2000, tol=1e-15)
    assert result.params["w"].shape == (3,)
    assert result.params["w"] == pytest.approx([1.0, -2.0, 0.5], abs=1e-6)
    assert result.params["b"] == pytest.approx(3.0, abs=1e-6)
    assert result.to_dict()["params"]["w"] == pytest.approx([1.0, -2.0, 0.5], abs=1e-6)


def test_param_layout_round_trip_and_errors():
    layout = ParamLayout.of(VectorModel())
    assert layout.size == 4
    flat = layout.flatten({"w": [1, 2, 3], "b": 4})
    assert flat.tolist() == [1, 2, 3, 4]
    assert layout.flatten({"b": 4}).tolist() == [0, 0, 0, 4]
    assert layout.flatten({"w": 2.0}).tolist() == [2, 2, 2, 0]  # a scalar broadcasts
    back = layout.unflatten(flat)
    assert back["w"].tolist() == [1, 2, 3] and back["b"] == 4.0
    with pytest.raises(InputError, match="unknown parameter 'c'"):
        layout.flatten({"c": 1})
    with pytest.raises(InputError, match=r"'w' has shape \(3,\)"):
        layout.flatten({"w": [1, 2]})
    with pytest.raises(InputError, match="expected 4 initial parameter values, got 2"):
        layout.flatten([1.0, 2.0])


def test_bad_data_and_settings_are_input_errors():
    x = np.arange(5.0)
    with pytest.raises(InputError, match="'x' has 5 samples but 'y' has 4"):
        fit(LineModel(), (x, x[:4]))
    with pytest.raises(InputError, match="no data for 'y'"):
        fit(LineModel(), {"x": x})
    with pytest.raises(InputError, match="expected 2 data arrays"):
        fit(LineModel(), (x,))
    with pytest.raises(InputError, match="contains NaN"):
        fit(LineModel(), (x, x * np.nan))
    with pytest.raises(InputError, match="batch size must be at least 1"):
        fit(LineModel(), (x, x), batch_size=0)
    with pytest.raises(InputError, match="epochs must be a positive whole number"):
        fit(LineModel(), (x, x), epochs=0)
    with pytest.raises(InputError, match="gtol must be a number >= 0"):
        fit(LineModel(), (x, x), gtol=-1.0)
    with pytest.raises(InputError, match="tol must be a number >= 0"):
        fit(LineModel(), (x, x), tol=float("nan"))
    with pytest.raises(InputError, match="give lr inside the Optimizer"):
        fit(LineModel(), (x, x), Momentum(), lr=0.1)


def test_model_without_data_trains_one_step_per_epoch():
    result = fit(DoubleWell(), (), "gd", lr=0.01, init=[-2.0], epochs=500, tol=1e-14)
    assert result.converged
    assert result.params["w"] == pytest.approx(-1.3008, abs=1e-4)


def test_fit_is_exported():
    assert symdiff.fit is fit


@settings(max_examples=25, deadline=None)
@given(lr=st.floats(2.0, 50.0), batch=st.sampled_from([None, 7, 20]))
def test_divergence_message_counts_match_the_result(line_data, lr, batch):
    """Whatever the batch size, the message's step and epoch counts are FitResult's."""
    x, y = line_data
    result = fit(LineModel(), (x, y), "gd", lr=lr, epochs=10_000, batch_size=batch)
    assert result.diverged
    if result.steps:
        count = f"after {result.steps} step{'s' * (result.steps != 1)} ({result.epochs} epoch"
        assert result.message.startswith(f"diverged {count}"), result.message
    else:
        assert result.message.startswith("diverged at the start")


def test_gtol_message_names_the_steps_made(line_data):
    x, y = line_data
    result = fit(LineModel(), (x, y), "gd", lr=0.3, epochs=10_000, gtol=1e-8)
    assert result.message.endswith(f"<= gtol 1e-08 after {result.steps} steps")


def test_final_gradient_norm_is_the_full_data_gradient(line_data):
    """grad_norm = ||dL/db0, dL/db1|| over all samples at the returned parameters, computed here
    from the formula 2*mean(r), 2*mean(r*x) with r = b0 + b1*x - y."""
    x, y = line_data
    for optimizer, batch in (("gd", None), ("sgd", 5)):
        result = fit(LineModel(), (x, y), optimizer, lr=0.05, epochs=3, batch_size=batch)
        b0, b1 = result.params["b0"], result.params["b1"]
        residual = b0 + b1 * x - y
        expected = math.hypot(2 * np.mean(residual), 2 * np.mean(residual * x))
        assert result.grad_norm == pytest.approx(expected, rel=1e-12)
        assert result.to_dict()["grad_norm"] == result.grad_norm


def test_value_text_shows_small_values_whole_and_summarises_large_ones():
    assert value_text(1.4603045693537) == "1.460304569"
    assert value_text(np.array([1.0, -2.5, 0.125])) == "[ 1.    -2.5    0.125]"
    matrix = np.arange(100.0).reshape(10, 10) / 8
    text = value_text(matrix)
    norm = float(np.linalg.norm(matrix))
    assert text == (
        f"array of shape (10, 10), norm {norm:.6g}, entries [0, 0.125, 0.25, ..., 12.38]"
    )
    assert "\n" not in value_text(np.ones((2, 4)))  # 8 entries: whole, on one line
    assert value_text(np.ones(9)).startswith("array of shape (9,), norm 3, entries [1, 1, 1,")


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 12), min_size=1, max_size=3).filter(lambda s: math.prod(s) > 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_value_text_summary_reads_back(shape, seed):
    """The summary of any large array names its shape, its 2-norm (6 digits) and its first
    and last entries (4 digits), in one line."""
    value = np.random.default_rng(seed).normal(size=shape) * 10.0 ** np.random.default_rng(
        seed
    ).integers(-5, 5)
    text = value_text(value)
    head, entries = text.split(", entries [")
    shown_shape, norm = head.removeprefix("array of shape ").split(", norm ")
    assert shown_shape == str(tuple(shape))
    assert float(norm) == pytest.approx(np.linalg.norm(value), rel=1e-5)
    first = [float(v) for v in entries.removesuffix("]").split(", ")[:3]]
    last = float(entries.removesuffix("]").split(", ")[-1])
    assert first == pytest.approx(value.reshape(-1)[:3].tolist(), rel=1e-3)
    assert last == pytest.approx(value.reshape(-1)[-1], rel=1e-3)


@pytest.fixture(scope="module")
def vector_result() -> FitResult:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    return fit(VectorModel(), {"X": X, "y": y}, "gd", lr=0.2, epochs=3000, gtol=1e-11)


def test_repr_is_short_and_says_how_training_ended(vector_result):
    text = repr(vector_result)
    assert len(vector_result.history.loss) > 100
    assert "\n" not in text and len(text) < 400 and "history" not in text
    assert text.startswith(f"FitResult(loss={vector_result.loss:.10g}, grad_norm=")
    assert f"steps={vector_result.steps}, " in text
    assert repr(vector_result.message) in text
    assert f"b={vector_result.params['b']:.10g}" in text and "w=[ 1." in text
    big = FitResult(
        params={"W": np.ones((30, 30))}, flat=np.ones(900), loss=0.5, steps=3, epochs=1,
        converged=False, diverged=False, message="finished 1 epochs", history=vector_result.history,
    )  # fmt: skip
    assert "W=array of shape (30, 30), norm 30, entries [1, 1, 1, ..., 1]" in repr(big)
    assert len(repr(big)) < 300


def test_markdown_repr_is_a_table(vector_result):
    text = vector_result._repr_markdown_()
    lines = text.strip().splitlines()
    assert lines[0] == f"**FitResult**: {vector_result.message}"
    assert lines[2:4] == ["| | |", "|---|---|"]
    rows = dict(tuple(cell.strip() for cell in line.strip("|").split(" | ")) for line in lines[4:])
    assert float(rows["loss"]) == pytest.approx(vector_result.loss, rel=1e-9)
    assert float(rows["gradient norm"]) == pytest.approx(vector_result.grad_norm, rel=1e-2)
    assert rows["steps"] == f"{vector_result.steps} ({vector_result.epochs} epochs)"
    assert float(rows["`b`"]) == pytest.approx(3.0, abs=1e-8)
    assert [float(v) for v in rows["`w`"].strip("[]").split()] == pytest.approx(
        [1.0, -2.0, 0.5], abs=1e-8
    )


def test_latex_repr_is_an_array_of_the_numbers(vector_result):
    text = vector_result._repr_latex_()
    assert text.startswith("$\\begin{array}{ll} ") and text.endswith(" \\end{array}$")
    assert text.count("{") == text.count("}")
    body = text.removeprefix("$\\begin{array}{ll} ").removesuffix(" \\end{array}$")
    rows = dict(row.split(" & ") for row in body.split(" \\\\ "))
    assert float(rows["L"].replace(" \\cdot 10^{", "e").rstrip("}")) == pytest.approx(
        vector_result.loss, rel=1e-9
    )
    mantissa, exponent = rows["\\lVert \\nabla L \\rVert"].split(" \\cdot 10^")
    assert float(mantissa) * 10 ** int(exponent.strip("{}")) == pytest.approx(
        vector_result.grad_norm, rel=1e-9
    )
    assert rows["\\text{steps}"] == str(vector_result.steps)
    assert float(rows["b"]) == pytest.approx(3.0, abs=1e-8)
    norm = float(np.linalg.norm(vector_result.params["w"]))
    assert rows["w"] == f"\\in \\mathbb{{R}}^{{3}},\\ \\lVert w \\rVert = {norm:.10g}"
