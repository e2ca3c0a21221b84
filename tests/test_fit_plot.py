"""Plots of training runs: what is drawn (labels, paths, ranges) and the files written."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from symdiff.errors import InputError
from symdiff.train.loop import fit
from symdiff.train.plot import (
    MARKER_Z,
    check_plot_path,
    draw_contour_path,
    draw_curve_path,
    draw_loss_curves,
    new_figure,
    plot_training,
    save_figure,
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
        (mean,) = [line for line in axis.lines if line.get_label() == "mb: epoch mean"]
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


def tick_texts(figure, axis) -> list[str]:
    """The y tick labels matplotlib draws (major and minor), after a real draw."""
    figure.canvas.draw()
    ticks = axis.yaxis.get_majorticklabels() + axis.yaxis.get_minorticklabels()
    low, high = axis.get_ylim()
    return [t.get_text() for t in ticks if t.get_text() and low <= t.get_position()[1] <= high]


@pytest.mark.parametrize(
    ("losses", "scale"),
    [
        (np.geomspace(5.0, 0.26, 40), "log"),  # 1.3 decades: 0.3, 0.4, ..., 1, 2, 3, 4
        (np.geomspace(0.61, 0.26, 40), "linear"),  # a factor 2.3: log ticks would be sparse
        (0.2605354654 + np.geomspace(1e-6, 1e-9, 40), "linear"),  # no '+2.605e-1' offset
    ],
)
def test_loss_axis_is_readable(losses, scale):
    result = fit(Bowl(), DATA, "gd", lr=0.05, epochs=len(losses))
    result.history.loss[:] = losses.tolist()  # the curve to draw, a real FitResult around it
    figure, (axis,) = new_figure()
    draw_loss_curves(axis, {"gd": result})
    texts = tick_texts(figure, axis)
    assert axis.get_yscale() == scale
    assert len(texts) >= 3, texts
    for text in texts:  # plain numbers, each one what its tick is
        assert re.fullmatch(r"[0-9.]+", text.replace("\N{MINUS SIGN}", "-")), texts
    assert axis.yaxis.get_offset_text().get_text() == ""
    if scale == "log":
        assert {"0.3", "1", "2"} <= set(texts)


def test_end_markers_are_drawn_above_every_path(tmp_path):
    """A long SGD path drawn after a GD run that ends inside its cloud: the GD end (a star)
    stays visible, in the PNG read back, and both start markers are above the paths too."""
    x = np.linspace(-1.0, 3.0, 40)
    data = (x, -x / 4)
    runs = {
        "gd": fit(Bowl(), data, "gd", lr=0.1, init={"a": -2.0, "b": 2.0}, epochs=200,
                  record_path=True),
        "sgd": fit(Bowl(), data, "sgd", lr=0.05, init={"a": -2.0, "b": 2.0}, epochs=20,
                   record_path=True),
    }  # fmt: skip
    figure, (axis,) = new_figure()
    draw_contour_path(axis, runs, Bowl(), data)
    paths = [line for line in axis.lines if line.get_label() in runs]
    markers = [line for line in axis.lines if line.get_marker() in ("o", "*")]
    assert len(markers) == 4
    assert min(m.get_zorder() for m in markers) == MARKER_Z > max(p.get_zorder() for p in paths)
    assert all(m.get_markeredgecolor() == "black" for m in markers)
    gd_end = next(m for m in markers if m.get_marker() == "*")
    assert gd_end.get_color() == paths[0].get_color()
    target = save_figure(figure, tmp_path / "paths.png")
    image = mpimg.imread(target)
    scale = 110 / figure.dpi  # save_figure's dpi over the figure's
    px, py = axis.transData.transform((gd_end.get_xdata()[0], gd_end.get_ydata()[0])) * scale
    pixel = image[image.shape[0] - int(round(py)), int(round(px)), :3]
    expected = matplotlib.colors.to_rgb(paths[0].get_color())
    assert np.allclose(pixel, expected, atol=0.02), (pixel, expected)


def test_plot_training_draws_the_title(runs, tmp_path):
    target = plot_training(runs, tmp_path / "t.svg", model=Bowl(), data=DATA, title="my title")
    assert "<!-- my title -->" in target.read_text()
    untitled = plot_training(runs, tmp_path / "u.svg", model=Bowl(), data=DATA)
    assert "<!-- my title -->" not in untitled.read_text()
