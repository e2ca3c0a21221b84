"""``symdiff fit`` end to end: a real subprocess, real files in tmp_path, generated code."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from process_support import run_symdiff

from symdiff.cli import cli

LINE = "(b0 + b1*x - y)**2"


def symdiff(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_symdiff("fit", *args, env=env)


def fit_json(*args: str) -> dict:
    done = symdiff(*args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def line_csv(tmp_path_factory):
    rng = np.random.default_rng(4)
    x = rng.uniform(-2, 2, 60)
    y = -0.7 + 1.9 * x + rng.normal(0, 0.3, 60)
    path = tmp_path_factory.mktemp("data") / "line.csv"
    np.savetxt(path, np.c_[y, x], delimiter=",", header="target,x", comments="", fmt="%.17g")
    return path, x, y


def one_error_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_fit_reaches_least_squares_and_saves_and_plots(line_csv, tmp_path):
    path, x, y = line_csv
    saved, picture = tmp_path / "params.json", tmp_path / "loss.png"
    result = fit_json(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--lr", "0.2", "--epochs", "2000", "--gtol", "1e-10",
        "--save", str(saved), "--plot", str(picture),
    )  # fmt: skip
    expected, *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)
    assert [result["params"]["b0"], result["params"]["b1"]] == pytest.approx(expected, abs=1e-9)
    assert result["converged"] is True and result["diverged"] is False
    assert len(result["history"]["loss"]) == result["steps"] + 1  # the last step met gtol
    assert result["loss"] == pytest.approx(np.mean((expected[0] + expected[1] * x - y) ** 2))
    assert result["optimizer"]["name"] == "gd" and result["optimizer"]["lr"] == 0.2
    assert json.loads(saved.read_text())["params"] == result["params"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "params.json"]


def test_text_output_names_every_parameter(line_csv):
    path, *_ = line_csv
    done = symdiff(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--optimizer", "momentum:mu=0.5", "--lr", "0.05", "--epochs", "30",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stdout is not a terminal
    assert done.stdout.splitlines()[0] == "optimizer: momentum (lr=0.05, mu=0.5)"
    assert "finished 30 epochs (no tolerance set)" in done.stdout
    assert "b0 = " in done.stdout and "b1 = " in done.stdout


def test_same_seed_same_result(line_csv):
    path, *_ = line_csv
    common = [
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--optimizer", "sgd", "--lr", "0.01", "--batch-size", "8", "--epochs", "3",
    ]  # fmt: skip
    first, again, other = (fit_json(*common, "--seed", seed) for seed in ("5", "5", "6"))
    assert first == again
    assert first["params"] != other["params"]
    assert first["steps"] == 3 * 8  # ceil(60 / 8) batches per epoch


def test_compare_draws_several_optimizers(line_csv, tmp_path):
    path, x, y = line_csv
    picture = tmp_path / "compare.png"
    result = fit_json(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--optimizer", "adam:lr=0.2", "--lr", "0.05", "--epochs", "1500", "--gtol", "1e-9",
        "--compare", "gd", "--compare", "momentum:mu=0.8", "--plot", str(picture),
    )  # fmt: skip
    expected, *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)
    assert result["optimizer"]["name"] == "adam" and result["optimizer"]["lr"] == 0.2
    assert set(result["compare"]) == {"gd", "momentum:mu=0.8"}
    assert result["compare"]["gd"]["optimizer"]["lr"] == 0.05
    assert result["compare"]["momentum:mu=0.8"]["optimizer"]["mu"] == 0.8
    for run in (result, *result["compare"].values()):
        assert run["converged"], run["message"]
        assert [run["params"]["b0"], run["params"]["b1"]] == pytest.approx(expected, abs=1e-7)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_npz_input_init_schedule_and_max_steps(tmp_path):
    archive = tmp_path / "d.npz"
    np.savez(archive, x=np.array([1.0, 2.0, 3.0]), y=np.array([2.0, 4.0, 6.0]))
    result = fit_json(
        "(w*x - y)**2", "--params", "w", "--data", "x,y", "--input", str(archive),
        "--init", "w=1/2", "--lr", "0.1", "--schedule", "step:drop=0.5,every=1",
        "--max-steps", "2",
    )  # fmt: skip
    # L(w) = mean((w x - 2x)^2) = (14/3)(w - 2)^2, L'(w) = (28/3)(w - 2)
    # w1 = 0.5 + 0.1*(28/3)*1.5 = 1.9 ; w2 = 1.9 + 0.05*(28/3)*0.1 = 1.94666...
    assert result["params"]["w"] == pytest.approx(1.9 + 0.05 * 28 / 3 * 0.1)
    assert result["history"]["lr"] == [0.1, 0.05]
    assert result["steps"] == 2 and "max_steps=2" in result["message"]


def test_divergence_saves_the_last_finite_parameters(line_csv, tmp_path):
    path, *_ = line_csv
    saved = tmp_path / "params.json"
    done = symdiff(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--lr", "3", "--epochs", "10000", "--save", str(saved), "--format", "json",
    )  # fmt: skip
    message = one_error_line(done, code=1)
    printed = json.loads(done.stdout)
    assert message == (
        f"Error: training diverged after {printed['steps']} steps; "
        "try a smaller learning rate than 3"
    )
    assert printed["message"].startswith(f"diverged after {printed['steps']} steps")
    stored = json.loads(saved.read_text())
    assert printed["diverged"] is True and stored["diverged"] is True
    assert stored["params"] == printed["params"]
    assert all(np.isfinite(value) for value in stored["params"].values())


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("x,y\n1,2\n", ["--data", "x,z"], r"no column 'z' for data 'z' \(columns: x, y\)"),
        ("x,y\n1,2\n3,oops\n", [], r"line 3 \(data row 2\), column 'y': 'oops' is not a number"),
        ("", [], "the file is empty"),
        ("x,y\n", [], "the header has no data rows"),
        ("x,y\n1,2\n3\n", [], r"data row 2\): 1 cells, but the header has 2"),
    ],
)
def test_bad_csv_is_one_error_line(tmp_path, content, extra, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    data = extra or ["--data", "x,y"]
    target = data[1].split(",")[1]
    done = symdiff(f"(w*x - {target})**2", "--params", "w", *data, "--input", str(path))
    line = one_error_line(done)
    assert str(path) in line
    assert re.search(message, line), line
    assert done.stdout == ""


def test_mismatched_lengths_is_one_error_line(tmp_path):
    archive = tmp_path / "d.npz"
    np.savez(archive, x=np.arange(5.0), y=np.arange(4.0))
    done = symdiff("(w*x - y)**2", "--params", "w", "--data", "x,y", "--input", str(archive))
    assert "d.npz: 'x' has 5 samples but 'y' has 4" in one_error_line(done)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizer", "adamw"], "unknown optimizer 'adamw'"),
        (["--optimizer", "adam:gamma=1"], "optimizer 'adam' has no setting 'gamma'"),
        (["--schedule", "cosine"], "unknown schedule 'cosine'"),
        (["--optimizer", "gd:schedule=1"], "set the schedule with --schedule"),
        (["--optimizer", "momentum:mu=abc"], "'mu' in 'momentum:mu=abc': 'abc' is not a number"),
        (["--optimiser", "adam"], "No such option '--optimiser'"),
        (["--init", "q=1"], "--init names 'q', which is not a parameter"),
        (["--init", "b0=abc"], "--init: expected a number"),
        (["--batch-size", "0"], "--batch-size must be full, auto or a whole number >= 1"),
        (["--lr", "-1"], "lr must be a positive number"),
        (["--plot", "out.xyz"], "unknown image format 'xyz'"),
        (["--save", "no/such/dir/p.json"], "does not exist"),
    ],
)
def test_bad_options_are_one_error_line(line_csv, args, message):
    """In-process through click's runner (the same SymdiffGroup.main), to save process starts."""
    path, *_ = line_csv
    done = CliRunner().invoke(
        cli,
        ["fit", LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target",
         "--input", str(path), *args],
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert done.stdout == ""


def test_plot_without_matplotlib_says_how_to_install(line_csv, tmp_path):
    path, *_ = line_csv
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('No module named matplotlib')\n")
    pythonpath = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    done = symdiff(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--plot", str(tmp_path / "loss.png"), env=env,
    )  # fmt: skip
    line = one_error_line(done, code=1)
    assert "plotting needs matplotlib" in line and "pip install 'symdiff[plot]'" in line
    assert not (tmp_path / "loss.png").exists()


def test_progress_bar_on_a_terminal(line_csv, tmp_path):
    """With stdout on a (pseudo) terminal and a long run, a progress bar appears on stderr."""
    path, *_ = line_csv
    main, secondary = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the terminal closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = subprocess.run(
            [
                sys.executable, "-m", "symdiff", "fit", LINE, "--params", "b0,b1",
                "--data", "x,y", "--column", "y=target", "--input", str(path),
                "--optimizer", "sgd", "--lr", "0.001", "--epochs", "30",
            ],
            stdout=secondary, stderr=secondary, timeout=120, cwd=tmp_path,
        ).returncode  # fmt: skip
    finally:
        os.close(secondary)
    reader.join(timeout=10)
    os.close(main)
    screen = b"".join(chunks).decode(errors="replace")
    assert code == 0, screen
    assert "training" in screen and "100%" in screen
    # the bar shows the mean batch loss of the epoch so far: at the end, the last epoch's loss
    shown = re.findall(r"loss (\d[\d.e+-]*)", screen)
    assert shown and all(np.isfinite(float(value)) for value in shown)
    result = fit_json(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--optimizer", "sgd", "--lr", "0.001", "--epochs", "30",
    )  # fmt: skip
    assert float(shown[-1]) == pytest.approx(result["history"]["epoch_loss"][-1], rel=1e-5)
    assert "b0 = " in screen


def test_text_report_layout_and_the_files_written(line_csv, tmp_path):
    """The text report line by line; its gradient norm is the JSON's; then where files went."""
    path, *_ = line_csv
    common = [
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--lr", "0.2", "--epochs", "2000", "--gtol", "1e-9",
    ]  # fmt: skip
    result = fit_json(*common)
    saved, picture = tmp_path / "p.json", tmp_path / "loss.png"
    done = symdiff(*common, "--save", str(saved), "--plot", str(picture))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines() == [
        "optimizer: gd (lr=0.2)",
        f"converged: gradient norm {result['history']['grad_norm'][-1]:.3g} <= gtol 1e-09 "
        f"after {result['steps']} steps",
        f"steps: {result['steps']}, epochs: {result['epochs']}",
        f"loss: {result['loss']:.10g}",
        f"gradient norm: {result['grad_norm']:.4g}",
        "parameters:",
        f"  b0 = {result['params']['b0']:.10g}",
        f"  b1 = {result['params']['b1']:.10g}",
        f"wrote the parameters to {saved}",
        f"wrote the plot to {picture}",
    ]
    assert result["grad_norm"] <= 1e-9  # full batch: the gradient that met gtol
    assert json.loads(saved.read_text())["grad_norm"] == result["grad_norm"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_to_stdout_keeps_stdout_json_and_reports_on_stderr(line_csv, tmp_path):
    path, *_ = line_csv
    picture = tmp_path / "loss.svg"
    done = symdiff(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--epochs", "5", "--save", "-", "--plot", str(picture),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) >= {"params", "loss", "grad_norm"}
    assert done.stderr.splitlines()[0] == "optimizer: gd (lr=0.01)"
    assert done.stderr.splitlines()[-1] == f"wrote the plot to {picture}"
    assert "wrote the parameters" not in done.stderr


def test_divergence_is_said_once_with_counts_that_agree(line_csv):
    path, *_ = line_csv
    done = symdiff(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--lr", "3", "--epochs", "10000",
    )  # fmt: skip
    error = one_error_line(done, code=1)
    lines = done.stdout.splitlines()
    steps, epochs = (
        int(n) for n in re.fullmatch(r"steps: (\d+), epochs: (\d+)", lines[2]).groups()
    )
    assert lines[1].startswith(f"diverged after {steps} steps ({epochs} epochs): the loss")
    assert f"kept the parameters after {steps - 1} steps" in lines[1]
    assert (
        error == f"Error: training diverged after {steps} steps; try a smaller learning rate than 3"
    )
    assert (done.stdout + done.stderr).count("became NaN or infinite") == 1


def test_matrix_parameters_are_summarised_in_one_line(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 12))
    W_true = rng.normal(size=(12, 10))
    archive = tmp_path / "d.npz"
    np.savez(archive, X=X, Y=X @ W_true)
    saved = tmp_path / "p.json"
    done = symdiff(
        "mean((X @ W + b - Y)**2)", "--shape", "X=n,12", "--shape", "W=12,10", "--shape", "b=10",
        "--shape", "Y=n,10", "--params", "W,b", "--data", "X,Y", "--input", str(archive),
        "--optimizer", "adam", "--lr", "0.05", "--epochs", "20", "--save", str(saved),
        "--plot", str(tmp_path / "loss.svg"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stored = json.loads(saved.read_text())
    W, b = np.array(stored["params"]["W"]), np.array(stored["params"]["b"])
    lines = done.stdout.splitlines()
    assert len(lines) == 10, done.stdout  # 6 lines of report, 2 parameters, 2 files written
    # a tensor loss is titled as written, the optimizer under it (and in the legend)
    texts = svg_texts(tmp_path / "loss.svg")
    assert "loss mean((X @ W + b - Y)**2)" in texts and texts.count("adam (lr=0.05)") == 2
    flat = W.reshape(-1)
    assert lines[6] == (
        f"  W = array of shape (12, 10), norm {np.linalg.norm(W):.6g}, entries "
        f"[{flat[0]:.4g}, {flat[1]:.4g}, {flat[2]:.4g}, ..., {flat[-1]:.4g}]"
    )
    assert lines[7].startswith(f"  b = array of shape (10,), norm {np.linalg.norm(b):.6g}")


def svg_texts(path) -> list[str]:
    """The texts of an SVG written by matplotlib (each drawn text follows as a comment)."""
    return re.findall(r"<!-- (.*?) -->", path.read_text())


def test_plot_title_names_loss_optimizer_and_learning_rate(line_csv, tmp_path):
    path, *_ = line_csv
    picture = tmp_path / "loss.svg"
    done = symdiff(
        "(b0 + b1*x - y)^2", "--params", "b0,b1", "--data", "x,y", "--column", "y=target",
        "--input", str(path), "--optimizer", "momentum:mu=0.8", "--lr", "0.05",
        "--schedule", "exponential:gamma=0.99", "--epochs", "40", "--plot", str(picture),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    texts = svg_texts(picture)
    # the loss as symdiff's printer writes it (it parses back), then the optimizer's settings
    assert "loss (b0 + b1*x - y)**2" in texts
    label = "momentum (lr=0.05, mu=0.8, schedule=exponential:gamma=0.99)"
    assert label in texts
    assert texts.count(label) == 3  # the title, and the legends of both panels
    # the loss falls by more than 10x: a log axis labelled with plain numbers
    assert not any("10^" in t or "\\times" in t or "e-0" in t for t in texts), texts


def test_compare_plot_labels_each_run_with_its_learning_rate(line_csv, tmp_path):
    path, *_ = line_csv
    picture = tmp_path / "cmp.svg"
    done = symdiff(
        LINE, "--params", "b0,b1", "--data", "x,y", "--column", "y=target", "--input", str(path),
        "--lr", "0.1", "--epochs", "30", "--compare", "adam:lr=0.2", "--compare", "nesterov",
        "--plot", str(picture),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    compared = done.stdout.splitlines()[8:10]
    assert re.fullmatch(
        r"compare adam \(lr=0.2, beta1=0.9, beta2=0.999, eps=1e-08\): loss [0-9.]+, "
        r"gradient norm [0-9.e+-]+, 30 steps; finished 30 epochs \(no tolerance set\)",
        compared[0],
    ), compared
    assert compared[1].startswith("compare nesterov (lr=0.1, mu=0.9): loss ")
    texts = svg_texts(picture)
    assert "loss (b0 + b1*x - y)**2" in texts
    for label in ("gd (lr=0.1)", "adam (lr=0.2)", "nesterov (lr=0.1)"):
        assert texts.count(label) == 2, (label, texts)  # a legend entry in each panel
