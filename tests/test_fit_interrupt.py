"""Interrupts keep the work: Ctrl-C and SIGTERM during ``symdiff fit``, checkpoints, resuming.

Real processes get real signals (``os.kill``); every process is bounded by a timeout and a 2 GiB
address-space cap (``process_support``). Nothing here measures time: a test waits for an event
(a checkpoint file appears, a notice is written, the process has a SIGINT handler) and then
signals.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from process_support import (
    console_script,
    limited_preexec,
    run_forked,
    run_limited,
    start_limited,
)

import symdiff
from symdiff.errors import InputError
from symdiff.interrupts import NOTICE
from symdiff.train.loop import FitResult

LINE = "(b0 + b1*x - y)**2"
#: about 10,000 steps each: long enough to be interrupted in the middle, well under a second
RUNS = {
    "momentum": ["--optimizer", "momentum:mu=0.9", "--lr", "0.01", "--batch-size", "16",
                 "--epochs", "750"],
    "adam": ["--optimizer", "adam", "--lr", "0.002", "--batch-size", "1", "--epochs", "50"],
}  # fmt: skip
WAIT = 60  # seconds any one wait may take before the test fails (never reached when it passes)


def fit_args(run: str, *extra: str) -> list[str]:
    return [
        "fit", LINE, "--params", "b0,b1", "--data", "x,y", "--input", "line.csv",
        "--seed", "7", "--format", "json", *RUNS[run], *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def line_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, 200)
    y = 3 * x + 1 + rng.normal(0, 0.1, 200)
    path = tmp_path_factory.mktemp("data") / "line.csv"
    path.write_text(
        "x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y, strict=True))
    )
    return path


@pytest.fixture
def place(tmp_path: Path, line_csv: Path) -> Path:
    (tmp_path / "line.csv").write_bytes(line_csv.read_bytes())
    return tmp_path


def command(*args: str) -> list[str]:
    """The installed console script, as a user runs it."""
    return [console_script(), *args]


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert process.poll() is None, (process.returncode, process.communicate())
        assert time.monotonic() < deadline, "the event never came"
        time.sleep(0.002)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


def no_leftovers(folder: Path) -> None:
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], names


def bits(params: dict[str, float]) -> dict[str, str]:
    return {name: float(value).hex() for name, value in params.items()}


# ---------------------------------------------------------------------------------------------
# interrupt, then resume: bit for bit the uninterrupted result
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("run", "signum"), [("momentum", signal.SIGINT), ("adam", signal.SIGTERM)])
def test_interrupted_run_saves_and_resumes_bit_for_bit(place, run, signum):
    reference = run_limited(command(*fit_args(run, "--save", "reference.json")), cwd=place)
    assert reference.returncode == 0, reference.stderr
    expected = json.loads(reference.stdout)

    process = start_limited(
        command(*fit_args(run, "--save", "part.json", "--checkpoint", "c.npz",
                          "--checkpoint-every", "250")),
        cwd=place,
    )  # fmt: skip
    wait_for((place / "c.npz").exists, process)
    os.kill(process.pid, signum)
    code, out, err = finish(process)
    name = signal.Signals(signum).name
    assert code == 128 + signum, err
    report = json.loads(out)
    assert report["message"].startswith(f"interrupted by {name} after step ")
    assert 0 < report["steps"] < expected["steps"]
    assert NOTICE.strip() in err
    last = err.strip().splitlines()[-1]
    assert last == (
        f"Error: training was interrupted by {name} after step {report['steps']}; the "
        "parameters reached are reported (saved to part.json; go on with --resume c.npz)"
    )
    saved = json.loads((place / "part.json").read_text())
    assert bits(saved["params"]) == bits(report["params"])  # the parameters reached, saved
    no_leftovers(place)

    resumed = run_limited(
        command(*fit_args(run, "--save", "final.json", "--checkpoint", "c.npz",
                          "--checkpoint-every", "250", "--resume", "c.npz")),
        cwd=place,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == expected  # parameters, loss, message and history
    final = json.loads((place / "final.json").read_text())
    assert bits(final["params"]) == bits(expected["params"])
    assert final == json.loads((place / "reference.json").read_text())
    no_leftovers(place)


def test_a_second_signal_quits_at_once_and_leaves_no_partial_file(place):
    process = start_limited(
        command(*fit_args("momentum", "--save", "s.json", "--plot", "p.png",
                          "--checkpoint", "c.npz", "--checkpoint-every", "100")),
        cwd=place,
    )  # fmt: skip
    wait_for((place / "c.npz").exists, process)
    os.kill(process.pid, signal.SIGINT)  # stop after this step...
    os.kill(process.pid, signal.SIGTERM)  # ...no: now
    code, out, err = finish(process)
    # Python may run the SIGTERM handler inside the SIGINT handler, before or after that one
    # counts itself: the signal handled second (usually SIGTERM) ends the command at once
    last = err.strip().splitlines()[-1]
    assert (code, last) in ((143, "Error: terminated"), (130, "Error: interrupted")), err
    assert "Traceback" not in err
    no_leftovers(place)
    if (place / "s.json").exists():
        json.loads((place / "s.json").read_text())
    with np.load(place / "c.npz", allow_pickle=False) as archive:  # the last checkpoint, whole
        assert "params" in archive.files


def test_ctrl_c_twice_during_the_results_quits_at_once(place):
    """The first Ctrl-C stops training; the second, sent when the notice appears (while the
    results are printed, saved and plotted), ends the command at once, leaving whole files."""
    process = start_limited(
        command(*fit_args("momentum", "--save", "s.json", "--plot", "p.png",
                          "--checkpoint", "c.npz", "--checkpoint-every", "100")),
        cwd=place,
    )  # fmt: skip
    wait_for((place / "c.npz").exists, process)
    os.kill(process.pid, signal.SIGINT)
    seen: list[str] = []
    assert process.stderr is not None
    for line in process.stderr:  # the notice is written by the handler itself
        seen.append(line)
        if NOTICE.strip() in line:
            break
    os.kill(process.pid, signal.SIGINT)
    code, out, err = finish(process)
    err = "".join(seen) + err
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "Error: interrupted", err
    assert "Traceback" not in err
    no_leftovers(place)
    if (place / "s.json").exists():
        assert "params" in json.loads((place / "s.json").read_text())
    if (place / "p.png").exists():
        assert (place / "p.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------------------------
# Ctrl-C outside training: one line, exit 130, never a traceback
# ---------------------------------------------------------------------------------------------

HOOK = """
import os, signal, sys
TARGET = os.environ.get("SYMDIFF_TEST_KILL_AT")
SIGNAL = getattr(signal, os.environ.get("SYMDIFF_TEST_SIGNAL", "SIGINT"))

class KillAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == TARGET:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), SIGNAL)  # a real signal, while the imports load
        return None

if TARGET:
    sys.meta_path.insert(0, KillAtImport())
"""


#: modules ``symdiff diff`` never imports (the commands load lazily): ``fit`` imports them
NOT_IMPORTED_BY_DIFF = {"numpy", "jinja2", "symdiff.cli.fit"}


@pytest.mark.parametrize(
    ("module", "signum", "via"),
    [
        ("numpy", signal.SIGINT, "script"),
        ("sympy", signal.SIGINT, "script"),
        ("click", signal.SIGTERM, "script"),
        ("jinja2", signal.SIGINT, "script"),
        ("symdiff.cli.fit", signal.SIGINT, "script"),
        ("symdiff.calculus.api", signal.SIGTERM, "script"),
        ("sympy", signal.SIGINT, "python -m"),
        ("numpy", signal.SIGTERM, "python -m"),
        # inside a running command: fit --plot imports matplotlib when it checks the --plot path
        ("matplotlib.figure", signal.SIGINT, "fit"),
        ("matplotlib.figure", signal.SIGTERM, "fit"),
    ],
)
def test_a_signal_while_the_imports_load_is_one_line(tmp_path, module, signum, via):
    """A real signal at a chosen import (a sitecustomize hook sends it to its own process)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        "SYMDIFF_TEST_KILL_AT": module,
        "SYMDIFF_TEST_SIGNAL": signal.Signals(signum).name,
    }
    argv = ["diff", "x**2", "--wrt", "x"]
    if via == "fit" or module in NOT_IMPORTED_BY_DIFF:
        (tmp_path / "d.csv").write_text("x,y\n1,2\n2,4\n")
        argv = ["fit", "(w*x - y)**2", "--params", "w", "--data", "x,y", "--input", "d.csv",
                "--save", "s.json", "--plot", "p.png"]  # fmt: skip
    launch = command(*argv) if via != "python -m" else [sys.executable, "-m", "symdiff", *argv]
    done = run_limited(launch, cwd=tmp_path, env=env)
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert (done.returncode, done.stdout, done.stderr) == (128 + signum, "", f"Error: {word}\n")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "hook") in ([], ["d.csv"])


def started(pid: int) -> bool:
    """Whether the interpreter has started and symdiff's imports are under way: NumPy's core is
    mapped (Linux: /proc/PID/maps). Before that, while Python itself starts (a few ms, before
    any symdiff code), a Ctrl-C gets the interpreter's own report."""
    with open(f"/proc/{pid}/maps") as maps:
        return "_multiarray_umath" in maps.read()


@pytest.mark.parametrize("argv", [["diff", "-", "--wrt", "x"], ["fit", "-", "--params", "w"]])
def test_ctrl_c_while_a_command_waits_is_one_line(tmp_path, argv):
    """Interrupted at any point once symdiff runs (its imports or the read of stdin): the same
    one line."""
    process = subprocess.Popen(
        command(*argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=tmp_path,
        preexec_fn=limited_preexec(),
    )  # fmt: skip
    wait_for(lambda: started(process.pid), process)
    os.kill(process.pid, signal.SIGINT)
    code, out, err = finish(process)
    assert (code, out, err) == (130, "", "Error: interrupted\n")


# ---------------------------------------------------------------------------------------------
# the progress bar: only on a terminal stderr
# ---------------------------------------------------------------------------------------------


def run_on_terminal(place: Path, terminal: str) -> tuple[int, str, str]:
    """A 2,000-step fit with ``terminal`` (stdout or stderr) on a pseudo-terminal, the other on
    a pipe; what each showed."""
    import pty

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
    args = command("fit", LINE, "--params", "b0,b1", "--data", "x,y", "--input", "line.csv",
                   "--optimizer", "sgd", "--lr", "0.001", "--epochs", "10")  # fmt: skip
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, terminal: secondary}
    try:
        done = subprocess.run(
            args, **pipes, timeout=WAIT, cwd=place,
            preexec_fn=limited_preexec(),
        )  # fmt: skip
    finally:
        os.close(secondary)
    reader.join(timeout=WAIT)
    os.close(main)
    screen = b"".join(chunks).decode(errors="replace")
    piped = (done.stderr if terminal == "stdout" else done.stdout).decode(errors="replace")
    return done.returncode, screen, piped


def test_no_progress_bar_leaks_into_a_redirected_stderr(place):
    code, screen, stderr = run_on_terminal(place, "stdout")
    assert code == 0, stderr
    assert "b0 = " in screen
    assert stderr == ""  # no label, no carriage returns: stderr is not a terminal


def test_the_progress_bar_is_drawn_on_a_terminal_stderr(place):
    code, screen, stdout = run_on_terminal(place, "stderr")
    assert code == 0, screen
    assert "training" in screen and "100%" in screen
    assert "b0 = " in stdout and "training" not in stdout


# ---------------------------------------------------------------------------------------------
# resuming with other settings, and other misuse: exit 2, one line
# ---------------------------------------------------------------------------------------------

BASE = [
    "fit", LINE, "--params", "b0,b1", "--data", "x,y", "--input", "line.csv",
    "--optimizer", "momentum", "--lr", "0.01", "--epochs", "4", "--batch-size", "50",
]  # fmt: skip
REFUSALS = [
    ([*BASE, "--checkpoint-every", "10"], "--checkpoint-every needs --checkpoint FILE"),
    ([*BASE, "--checkpoint", "k.npz", "--compare", "adam"], "cannot go with --compare"),
    ([*BASE, "--resume", "missing.npz"], "missing.npz: no such checkpoint file"),
    ([*BASE, "--resume", "line.csv"], "line.csv: not a symdiff checkpoint"),
    ([*BASE, "--resume", "c.npz", "--checkpoint-every", "0"], "--checkpoint-every"),
    ([*BASE[:-6], "--lr", "0.02", *BASE[-4:], "--resume", "c.npz"], "optimizer.lr = 0.01"),
    ([*BASE, "--seed", "1", "--resume", "c.npz"], "seed = 0, this run has 1"),
    ([*BASE[:-4], "--epochs", "5", "--batch-size", "50", "--resume", "c.npz"], "epochs = 4"),
    ([*BASE, "--tol", "1e-9", "--resume", "c.npz"], "tol = null, this run has 1e-09"),
    ([*BASE, "--max-steps", "3", "--resume", "c.npz"], "max_steps = null"),
    ([*BASE, "--init", "b0=1", "--resume", "c.npz"], "init = "),
    ([*BASE[:-2], "--batch-size", "25", "--resume", "c.npz"], "batch_size = 50, this run has 25"),
    ([*BASE[:-8], "--optimizer", "adam", *BASE[-6:], "--resume", "c.npz"], "optimizer.name"),
    (["fit", "(b0 + b1*x - y)**4", *BASE[2:], "--resume", "c.npz"], "model.definition"),
    ([*BASE[:6], "--input", "other.csv", *BASE[8:], "--resume", "c.npz"], "data.x = "),
    ([*BASE, "--column", "x=y", "--resume", "c.npz"], "data.x"),
]


@pytest.fixture(scope="module")
def refusals(
    tmp_path_factory: pytest.TempPathFactory, line_csv: Path
) -> list[subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("refusals")
    (folder / "line.csv").write_bytes(line_csv.read_bytes())
    lines = line_csv.read_text().splitlines()
    (folder / "other.csv").write_text("\n".join([lines[0], *lines[2:], lines[1]]) + "\n")
    cases = [{"cwd": str(folder), "args": [*BASE, "--checkpoint", "c.npz"]}]  # makes c.npz
    cases += [{"cwd": str(folder), "args": args} for args, _ in REFUSALS]
    first, *rest = run_forked(cases)
    assert first.returncode == 0, first.stderr
    return rest


@pytest.mark.parametrize("index", range(len(REFUSALS)), ids=[m[:30] for _, m in REFUSALS])
def test_misuse_of_checkpoints_is_one_line(refusals, index):
    done = refusals[index]
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert REFUSALS[index][1] in lines[0], lines[0]
    assert done.stdout == ""


# ---------------------------------------------------------------------------------------------
# the library: symdiff.fit(checkpoint=..., resume=...)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def problem() -> tuple[object, dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, 50)
    data = {"x": x, "y": 2 * x - 0.5 + rng.normal(0, 0.05, 50)}
    return symdiff.compile(LINE, "b0,b1", "x,y"), data


def same(a: FitResult, b: FitResult) -> None:
    assert a.flat.tobytes() == b.flat.tobytes()
    assert (a.loss, a.steps, a.epochs, a.message) == (b.loss, b.steps, b.epochs, b.message)
    assert (a.converged, a.diverged) == (b.converged, b.diverged)
    assert a.history.to_dict() == b.history.to_dict()
    assert len(a.history.path) == len(b.history.path)
    for p, q in zip(a.history.path, b.history.path, strict=True):
        assert p.tobytes() == q.tobytes()


def stop_at(*steps: int) -> Callable[[object], str | None]:
    def callback(info: object) -> str | None:
        return "paused" if info.step in steps else None  # type: ignore[attr-defined]

    return callback


SETTINGS = {
    "gd": {"optimizer": "gd", "lr": 0.3},
    "sgd": {"optimizer": "sgd", "lr": 0.05},
    "minibatch": {"optimizer": "minibatch", "lr": 0.1, "batch_size": 8},
    "momentum": {"optimizer": "momentum", "lr": 0.05, "batch_size": 16},
    "nesterov": {"optimizer": "nesterov", "lr": 0.05, "batch_size": 7},
    "adagrad": {"optimizer": "adagrad", "lr": 0.2, "batch_size": 10},
    "rmsprop": {"optimizer": "rmsprop", "lr": 0.01, "batch_size": 25},
    "adam": {"optimizer": "adam", "lr": 0.05, "batch_size": 3, "record_path": True},
    "tol": {"optimizer": "gd", "lr": 0.3, "epochs": 500, "tol": 1e-9},
    "max_steps": {"optimizer": "sgd", "lr": 0.05, "max_steps": 123},
    "diverges": {"optimizer": "gd", "lr": 3.0, "epochs": 400},
}


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize("where", ["early", "epoch end", "twice"])
def test_library_resume_is_bit_for_bit(problem, tmp_path, name, where):
    model, data = problem
    settings = {"epochs": 12, "seed": 11, **SETTINGS[name]}
    whole = symdiff.fit(model, data, **settings)
    per_epoch = (
        -(-50 // settings["batch_size"])
        if settings.get("batch_size")
        else (50 if settings["optimizer"] == "sgd" else 1)
    )
    first = {"early": 3, "epoch end": per_epoch * 2, "twice": 5}[where]
    if first >= whole.steps:
        first = max(1, whole.steps // 2)
    path = tmp_path / "run.npz"
    part = symdiff.fit(model, data, **settings, callbacks=[stop_at(first)], checkpoint=path)
    assert part.message.startswith("paused") and part.steps == first
    if where == "twice" and whole.steps > first + 4:
        second = first + 4
        part = symdiff.fit(
            model, data, **settings, callbacks=[stop_at(second)], checkpoint=path, resume=path
        )
        assert part.steps == second
    resumed = symdiff.fit(model, data, **settings, checkpoint=path, resume=path)
    same(resumed, whole)
    # a run that ended at a step boundary checkpointed its end; one that diverged inside a step
    # left the last pause: resuming either gives the same result again
    same(symdiff.fit(model, data, **settings, resume=path), whole)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": 0.2}, "optimizer.lr = 0.3, this run has 0.2"),
        ({"seed": 1}, "seed = 11, this run has 1"),
        ({"epochs": 13}, "epochs = 12, this run has 13"),
        ({"init": {"b0": 1.0}}, "init = "),
        ({"batch_size": 5}, "batch_size = null, this run has 5"),
        ({"optimizer": "adam"}, "optimizer.name"),
        ({"shuffle": False}, "shuffle = true, this run has false"),
        ({"record_path": True}, "record_path = false, this run has true"),
    ],
)
def test_library_refuses_to_resume_other_settings(problem, tmp_path, change, message):
    model, data = problem
    settings = {"optimizer": "gd", "lr": 0.3, "epochs": 12, "seed": 11}
    path = tmp_path / "run.npz"
    symdiff.fit(model, data, **settings, callbacks=[stop_at(4)], checkpoint=path)
    with pytest.raises(InputError, match=re.escape(message)):
        symdiff.fit(model, data, **{**settings, **change}, resume=path)
    other = {"x": data["x"], "y": data["y"] + 1e-12}
    with pytest.raises(InputError, match="data.y = "):
        symdiff.fit(model, other, **settings, resume=path)


# ---------------------------------------------------------------------------------------------
# the pieces: deferral of a signal, and an interrupt that cleanup code replaced
# ---------------------------------------------------------------------------------------------

DEFERRED = """
import os, signal
from symdiff.interrupts import Interrupted, deferred, raise_on_sigterm
raise_on_sigterm()
finished = False
try:
    with deferred():
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, acted on at the end
        for _ in range(1000):
            pass
        finished = True
except Interrupted as exc:
    print(finished, exc.exit_code, exc)
"""


def test_a_signal_waits_for_a_deferred_block(tmp_path):
    done = run_limited([sys.executable, "-c", DEFERRED], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "True 143 terminated\n", "")


def test_an_interrupt_replaced_by_a_cleanup_error_is_still_an_interrupt():
    from symdiff.interrupts import Interrupted, interruption

    def replaced() -> None:
        try:
            raise Interrupted(signal.SIGTERM)
        except Interrupted:
            raise ValueError("Can't close the ZIP file") from None

    with pytest.raises(ValueError) as caught:
        replaced()
    cut = interruption(caught.value)
    assert isinstance(cut, Interrupted) and cut.exit_code == 143
    assert interruption(ValueError("plain")) is None
