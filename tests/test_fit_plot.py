"""Plots of training runs: what is drawn (labels, paths, ranges) and the files written."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from symdiff.errors import InputError
from symdiff.train.loop import fit
from symdiff.train.plot import (
    check_plot_path,
    draw_contour_path,
    draw_curve_path,
    draw_loss_curves,
    plot_training,
)


class Bowl:
    """L(a, b) = mean((a - x)**2 + 4 (b - y)**2): an elongated bowl centred at (mean x, mean y)."""

    PARAMS = (("a", ()), ("b", ()))
    DATA = ("x", "y")

    def loss(self, p, x, y):
        return float(np.mean((p[0] - x) ** 2 + 4 * (p[1] - y) ** 2))

    def loss_and_grad(self, p, x, y):
        return self.loss(p, x, y), np.array([np.mean(2 * (p[0] - x)), np.mean(8 * (p[1] - y))])


class Well:
    PARAMS = (("w", ()),)
    DATA = ()

    def loss_and_grad(self, p):
        return float(p[0] ** 4 - 3 * p[0] ** 2 + p[0]), np.array([4 * p[0] ** 3 - 6 * p[0] + 1])


DATA = (np.array([1.0, 3.0]), np.array([-1.0, 0.0]))


@pytest.fixture(scope="module")
def runs():
    return {
        name: fit(Bowl(), DATA, name, lr=0.05, init={"a": -2.0, "b": 2.0}, epochs=60,
                  record_path=True)
        for name in ("gd", "momentum")
    }  # fmt: skip


def test_contour_panel_draws_each_path_from_its_start(runs):
    figure, axis = plt.subplots()
    try:
        draw_contour_path(axis, runs, Bowl(), DATA)
        labels = axis.get_legend_handles_labels()[1]
        assert labels == ["gd", "momentum"]
        assert (axis.get_xlabel(), axis.get_ylabel()) == ("a", "b")
        path_lines = [line for line in axis.lines if line.get_label() in labels]
        for line, result in zip(path_lines, runs.values(), strict=True):
            xs, ys = line.get_data()
            assert (xs[0], ys[0]) == (-2.0, 2.0)
            assert len(xs) == len(result.history.path)
        low, high = axis.get_xlim()
        assert low < -2.0 and high > 2.0  # the view covers the paths and the minimum a = 2
    finally:
        plt.close(figure)


def test_curve_panel_and_loss_curves():
    result = fit(Well(), (), "gd", lr=0.01, init=[2.0], epochs=50, record_path=True)
    figure, (left, right) = plt.subplots(1, 2)
    try:
        draw_loss_curves(left, {"gd": result})
        (curve,) = [line for line in left.lines if line.get_label() == "gd"]
        assert list(curve.get_ydata()) == result.history.loss
        assert left.get_yscale() == "linear"  # the losses go negative
        draw_curve_path(right, {"gd": result}, Well(), ())
        assert right.get_xlabel() == "w"
        bottom, top = right.get_ylim()
        assert bottom < -1.07 and top < 10  # the minimum is shown, the far tails are not
    finally:
        plt.close(figure)


def test_minibatch_runs_are_drawn_per_epoch():
    x = np.linspace(0.0, 4.0, 40)
    data = (x, -x / 4)
    full = fit(Bowl(), data, "gd", lr=0.05, epochs=8)
    batches = fit(Bowl(), data, "minibatch", lr=0.05, epochs=8, batch_size=10)
    figure, axis = plt.subplots()
    try:
        draw_loss_curves(axis, {"gd": full, "mb": batches})
        assert axis.get_xlabel() == "epoch"
        (mean,) = [line for line in axis.lines if line.get_label() == "mb (epoch mean)"]
        assert list(mean.get_xdata()) == [e + 0.5 for e in range(8)]
        assert list(mean.get_ydata()) == batches.history.epoch_loss
        faint = [line for line in axis.lines if line.get_alpha() == 0.3]
        assert len(faint) == 1 and len(faint[0].get_xdata()) == 32  # 4 batches x 8 epochs
        assert list(faint[0].get_xdata())[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    finally:
        plt.close(figure)


def test_plot_training_writes_png_and_svg(runs, tmp_path):
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml")):
        target = plot_training(runs, tmp_path / f"runs{suffix}", model=Bowl(), data=DATA)
        assert target.read_bytes()[: len(magic)] == magic
    single = plot_training(runs["gd"], tmp_path / "single.png")  # no model: loss curve only
    assert single.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "runs.png", "runs.svg", "single.png"
    ]  # fmt: skip


def test_plot_path_checks(tmp_path):
    with pytest.raises(InputError, match="unknown image format 'txt'"):
        check_plot_path(tmp_path / "x.txt")
    with pytest.raises(InputError, match="does not exist"):
        check_plot_path(tmp_path / "nowhere" / "x.png")
    assert check_plot_path(tmp_path / "x.png") == tmp_path / "x.png"
