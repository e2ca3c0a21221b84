"""Every file symdiff writes: hostile and careless output paths, as a user types them.

Each command line runs in a process of its own, in a folder of its own outside the checkout,
bounded by a timeout and a 2 GiB address-space cap: most through ``run_forked`` (one fork server
imports symdiff once and forks a child per case that runs the console entry point with its own
working directory, umask, file-size limit and pipes), the rest through ``run_limited`` (a fresh
interpreter, e.g. without root's CAP_DAC_OVERRIDE, so that a read-only folder is read-only for
root too). The targets are real: FIFOs, devices, symbolic links (to a FIFO, to a folder, to
/dev/null, to /proc/self/fd/1, dangling, looping), hard links, a file-size limit standing in for a
full disk. After every refused case the folder is exactly as it was: no temporary file, no
replaced FIFO or link, no changed input.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from process_support import run_forked, run_limited

from symdiff.errors import InputError, SymdiffError
from symdiff.outputs import check_distinct, check_output, write_output
from symdiff.train.data import check_folder, write_json

LOSS = "(w*x - y)**2"
CODEGEN = ["codegen", LOSS, "--params", "w", "--data", "x,y"]
FIT = ["fit", LOSS, "--params", "w", "--data", "x,y", "--input", "d.csv", "--epochs", "3"]
TOML = 'loss = "mean((X @ w - y)**2)"\n[params]\nw = [3]\n[data]\nX = ["n", 3]\ny = ["n"]\n'
MODULE_START = '"""Loss and gradient'

Snapshot = dict[str, tuple[int, "bytes | str | None"]]


def populate(folder: Path) -> None:
    """Data, a model, templates, a FIFO and links of every hostile kind."""
    (folder / "d.csv").write_text("x,y\n1,3\n2,5\n3,7\n4,9\n", encoding="utf-8")
    (folder / "m.toml").write_text(TOML, encoding="utf-8")
    (folder / "md.csv").write_text(
        "x1,x2,x3,y\n1,0,0,1\n0,1,0,2\n0,0,1,3\n1,1,1,6\n", encoding="utf-8"
    )
    (folder / "plain.py").write_text("# the user's file\n", encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "tmpl").mkdir()
    (folder / "tmpl" / "module.py.jinja").write_text("{# mine #}\n", encoding="utf-8")
    os.mkfifo(folder / "fifo")
    os.symlink("/proc/self/fd/1", folder / "to_stdout")
    os.symlink("fifo", folder / "to_fifo")
    os.symlink("/dev/null", folder / "to_null")
    os.symlink("missing/nowhere.py", folder / "dangling")
    os.symlink("sub", folder / "to_dir")
    os.symlink("loop", folder / "loop")
    os.symlink("d.csv", folder / "to_input")
    os.link(folder / "d.csv", folder / "hard.csv")


def snapshot(folder: Path) -> Snapshot:
    """Every entry of the folder tree: its type bits and its content (a link: its target)."""
    seen: Snapshot = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        name = str(path.relative_to(folder))
        if stat.S_ISLNK(info.st_mode):
            seen[name] = (stat.S_IFMT(info.st_mode), os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            seen[name] = (stat.S_IFMT(info.st_mode), path.read_bytes())
        else:
            seen[name] = (stat.S_IFMT(info.st_mode), None)
    return seen


def one_error(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The single ``Error:`` line of a failed run, checked for its code and fragments."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@dataclass
class Case:
    args: list[str]
    prepare: Callable[[Path], None] | None = None
    umask: int | None = None
    file_size: int | None = None


@dataclass
class Outcome:
    folder: Path
    before: Snapshot
    done: subprocess.CompletedProcess[str]
    extra: dict[str, Any] = field(default_factory=dict)


def _chmod(name: str, mode: int, content: bytes = b"old\n") -> Callable[[Path], None]:
    def prepare(folder: Path) -> None:
        (folder / name).write_bytes(content)
        (folder / name).chmod(mode)

    return prepare


def _link_to_file(folder: Path) -> None:
    (folder / "sub" / "model.py").write_text("old\n", encoding="utf-8")
    (folder / "sub" / "model.py").chmod(0o640)
    os.symlink("sub/model.py", folder / "link.py")
    (folder / "sub" / "p.json").write_text("{}", encoding="utf-8")
    os.symlink("sub/p.json", folder / "params.json")


def _bad_modules(folder: Path) -> None:
    (folder / "bad.py").write_text("x = 1\n", encoding="utf-8")
    (folder / "broken.py").write_text("def (:\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# the cases (each in a folder of its own), all run by one fork server
# ---------------------------------------------------------------------------------------------

#: codegen -o TARGET: not a regular file or a new name, refused; (target, fragment of the message)
CODEGEN_REFUSED = [
    ("fifo", "is a FIFO"),
    ("to_stdout", "(through a symbolic link)"),  # -o /proc/self/fd/1 with stdout a pipe
    ("to_fifo", "is a FIFO (named pipe) (through a symbolic link)"),
    ("to_null", "is a character device (through a symbolic link)"),
    ("/dev/null", "/dev/null: is a character device"),  # as root: would replace /dev/null
    ("dangling", "which does not exist"),
    ("loop", "cannot follow the symbolic link"),
    ("sub", "sub"),  # an existing folder (click's own check or ours: one line, exit 2)
    ("to_dir", "to_dir"),
    ("sub/", "sub/"),
    ("newdir/", "names a folder (it ends in '/')"),
    ("nowhere/..", "names a folder"),
    ("missing/m.py", "the folder 'missing' does not exist"),
    ("d.csv/m.py", "'d.csv' is not a folder"),
    ("n" * 300 + ".py", "File name too long"),
]

#: fit OPTION TARGET, refused before training
FIT_REFUSED = [
    ("--save", "fifo", "is a FIFO"),
    ("--save", "to_stdout", "through a symbolic link"),
    ("--save", "newdir/", "names a folder"),
    ("--save", "dangling", "which does not exist"),
    ("--save", "/dev/null", "is a character device"),
    ("--plot", "fifo", "is a FIFO"),
    ("--plot", "to_null", "is a character device"),
    ("--plot", "newdir/", "names a folder"),
    ("--plot", "-", "cannot go to standard output"),
    ("--checkpoint", "fifo", "is a FIFO"),
    ("--checkpoint", "to_stdout", "through a symbolic link"),
    ("--checkpoint", "-", "cannot go to standard output"),
    ("--checkpoint", "/dev/null", "is a character device"),
]

#: an output that is an input (or another output): (arguments, fragment of the message)
CLASHES = [
    ([*FIT, "--save", "d.csv"], "--save d.csv: is the same file as --input d.csv"),
    ([*FIT, "--save", "./d.csv"], "--save ./d.csv: is the same file as --input d.csv"),
    ([*FIT, "--save", "hard.csv"], "--save hard.csv: is the same file as --input d.csv"),
    ([*FIT, "--save", "to_input"], "--save to_input: is the same file as --input d.csv"),
    ([*FIT, "--checkpoint", "d.csv"], "--checkpoint d.csv: is the same file as --input"),
    ([*FIT, "--save", "plain.py", "--resume", "plain.py"], "same file as --resume plain.py"),
    (["codegen", "--model", "m.toml", "-o", "m.toml"], "-o m.toml: is the same file as --model"),
    (
        [*CODEGEN, "--templates", "tmpl", "-o", "tmpl/module.py.jinja"],
        "is the same file as --templates tmpl/module.py.jinja",
    ),
    (
        [
            "fit",
            "--model",
            "m.toml",
            "--input",
            "md.csv",
            "--column",
            "X=x1:x3",
            "--save",
            "m.toml",
        ],
        "--save m.toml: is the same file as --model m.toml",
    ),  # fmt: skip
    ([*FIT, "--save", "p.json", "--plot", "p.json"], "the same file as --save p.json"),
    ([*FIT, "--save", "c.npz", "--checkpoint", "./c.npz"], "the same file as --save c.npz"),
    ([*FIT, "--plot", "p.png", "--checkpoint", "p.png"], "the same file as --plot p.png"),
]

NEW_MODES = [
    (0o022, [*CODEGEN, "-o"], "new.py"),
    (0o077, [*CODEGEN, "-o"], "new.py"),
    (0o002, [*CODEGEN, "-o"], "new.py"),
    (0o027, [*FIT, "--save"], "new.json"),
    (0o000, [*FIT, "--checkpoint"], "new.npz"),
]
KEPT_MODES = [0o600, 0o644, 0o755, 0o604]
FULL_DISK = [
    ([*CODEGEN, "-o"], "m.py"),
    ([*FIT, "--save"], "p.json"),
    ([*FIT, "--checkpoint"], "c.npz"),
]


def all_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for target, _ in CODEGEN_REFUSED:
        cases[f"codegen-o:{target}"] = Case([*CODEGEN, "-o", target])
    for option, target, _ in FIT_REFUSED:
        cases[f"fit{option}:{target}"] = Case([*FIT, option, target])
    for index, (args, _) in enumerate(CLASHES):
        cases[f"clash:{index}"] = Case(list(args))
    for umask, args, name in NEW_MODES:
        cases[f"new-mode:{umask:o}:{name}"] = Case([*args, name], umask=umask)
    for mode in KEPT_MODES:
        cases[f"kept-mode:{mode:o}"] = Case(
            [*CODEGEN, "-o", "old.py"], prepare=_chmod("old.py", mode), umask=0o077
        )
    for args, name in FULL_DISK:
        cases[f"full-disk:{name}"] = Case(
            [*args, name], prepare=_chmod(name, 0o644, b"the old content\n"), file_size=20
        )
    cases["dash:codegen"] = Case([*CODEGEN, "-o", "-"])
    cases["dash:fit"] = Case([*FIT, "--save", "-", "--format", "json"])
    cases["link:codegen"] = Case([*CODEGEN, "-o", "link.py"], prepare=_link_to_file)
    cases["link:fit"] = Case([*FIT, "--save", "params.json"], prepare=_link_to_file)
    cases["gradcheck:write"] = Case([*CODEGEN, "-o", "m.py"], prepare=_bad_modules)
    return cases


CASES = all_cases()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case, run once (one fork server, a process per case)."""
    prepared: dict[str, tuple[Path, Snapshot]] = {}
    for key, case in CASES.items():
        folder = tmp_path_factory.mktemp("case")
        populate(folder)
        if case.prepare is not None:
            case.prepare(folder)
        prepared[key] = (folder, snapshot(folder))
    runs = [
        {"cwd": str(prepared[key][0]), "args": case.args, "umask": case.umask,
         "file_size": case.file_size}
        for key, case in CASES.items()
    ]  # fmt: skip
    results = run_forked(runs)
    outcomes = {
        key: Outcome(folder, before, done)
        for (key, (folder, before)), done in zip(prepared.items(), results, strict=True)
    }
    # the generated module of "gradcheck:write", checked by gradcheck in its folder
    folder = outcomes["gradcheck:write"].folder
    checks = run_forked(
        [
            {"cwd": str(folder), "args": ["gradcheck", name]}
            for name in ("m.py", "bad.py", "broken.py")
        ]  # fmt: skip
    )
    outcomes["gradcheck:write"].extra["checks"] = checks
    return outcomes


# ---------------------------------------------------------------------------------------------
# not a regular file or a new name: refused (exit 2), one line naming the path, nothing changed
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"), CODEGEN_REFUSED, ids=[t[:20] for t, _ in CODEGEN_REFUSED]
)
def test_codegen_refuses_what_is_not_a_regular_file(outcomes, target, message):
    outcome = outcomes[f"codegen-o:{target}"]
    one_error(outcome.done, 2, message, target[:40])
    assert outcome.done.stdout == ""
    assert snapshot(outcome.folder) == outcome.before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize(("option", "target", "message"), FIT_REFUSED)
def test_fit_refuses_outputs_before_training(outcomes, option, target, message):
    outcome = outcomes[f"fit{option}:{target}"]
    one_error(outcome.done, 2, message, f"{option} {target}")
    assert outcome.done.stdout == ""  # refused before training: nothing was printed
    assert snapshot(outcome.folder) == outcome.before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# ---------------------------------------------------------------------------------------------
# an output that is an input, or another output: refused, the input untouched
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "message"), [(i, m) for i, (_, m) in enumerate(CLASHES)])
def test_an_output_never_overwrites_an_input(outcomes, index, message):
    outcome = outcomes[f"clash:{index}"]
    one_error(outcome.done, 2, message)
    assert snapshot(outcome.folder) == outcome.before


# ---------------------------------------------------------------------------------------------
# what is written, and how
# ---------------------------------------------------------------------------------------------


def test_dash_is_standard_output(outcomes):
    module = outcomes["dash:codegen"]
    assert module.done.returncode == 0, module.done.stderr
    assert module.done.stdout.startswith(MODULE_START) and module.done.stderr == ""
    assert snapshot(module.folder) == module.before  # no file named '-'
    saved = outcomes["dash:fit"]
    assert saved.done.returncode == 0, saved.done.stderr
    data = json.loads(saved.done.stdout)  # stdout is exactly the saved JSON...
    assert set(data) == {
        "params", "loss", "grad_norm", "steps", "epochs", "converged", "diverged", "message"
    }  # fmt: skip
    assert json.loads(saved.done.stderr)["history"]  # ...and the report went to stderr
    assert snapshot(saved.folder) == saved.before


def test_a_link_to_a_regular_file_is_written_through(outcomes):
    """The decision: the link's target is replaced atomically (its mode kept), the link stays."""
    module = outcomes["link:codegen"]
    assert module.done.returncode == 0, module.done.stderr
    folder = module.folder
    assert os.readlink(folder / "link.py") == "sub/model.py"
    target = folder / "sub" / "model.py"
    assert target.read_text(encoding="utf-8").startswith(MODULE_START)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in (folder / "sub").iterdir()) == ["model.py", "p.json"]
    fitted = outcomes["link:fit"]
    assert fitted.done.returncode == 0, fitted.done.stderr
    assert os.readlink(fitted.folder / "params.json") == "sub/p.json"
    saved = json.loads((fitted.folder / "sub" / "p.json").read_text(encoding="utf-8"))
    assert set(saved["params"]) == {"w"}


@pytest.mark.parametrize(("umask", "args", "name"), NEW_MODES)
def test_a_new_file_gets_the_mode_open_would_give(outcomes, umask, args, name):
    outcome = outcomes[f"new-mode:{umask:o}:{name}"]
    assert outcome.done.returncode == 0, outcome.done.stderr
    assert stat.S_IMODE((outcome.folder / name).stat().st_mode) == 0o666 & ~umask
    assert not [p for p in outcome.folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", KEPT_MODES, ids=[f"{m:o}" for m in KEPT_MODES])
def test_a_replaced_file_keeps_its_mode(outcomes, mode):
    outcome = outcomes[f"kept-mode:{mode:o}"]
    assert outcome.done.returncode == 0, outcome.done.stderr
    target = outcome.folder / "old.py"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_text(encoding="utf-8").startswith(MODULE_START)


@pytest.mark.parametrize(("args", "name"), FULL_DISK, ids=[n for _, n in FULL_DISK])
def test_a_full_disk_is_one_line_and_keeps_the_old_file(outcomes, args, name):
    """RLIMIT_FSIZE makes the write fail with EFBIG, as a full disk fails with ENOSPC."""
    outcome = outcomes[f"full-disk:{name}"]
    one_error(outcome.done, 1, name, "cannot write it: File too large")
    assert snapshot(outcome.folder) == outcome.before  # the old file whole, no temporary file


def test_gradcheck_leaves_no_bytecode_behind(outcomes):
    outcome = outcomes["gradcheck:write"]
    assert outcome.done.returncode == 0, outcome.done.stderr
    good, bad, broken = outcome.extra["checks"]
    assert good.returncode == 0 and "ok" in good.stdout, good.stderr
    one_error(bad, 2, "not a symdiff generated module")
    one_error(broken, 2, "not valid Python")
    assert not list(outcome.folder.rglob("__pycache__"))
    assert not list(outcome.folder.rglob("*.pyc"))


# ---------------------------------------------------------------------------------------------
# in a fresh interpreter: read-only for root too, and interrupts inside a write
# ---------------------------------------------------------------------------------------------


def test_a_read_only_folder_or_file_is_refused_before_the_work(tmp_path):
    populate(tmp_path)
    folder = tmp_path / "ro"
    folder.mkdir()
    (tmp_path / "keep.py").write_text("mine\n", encoding="utf-8")
    (tmp_path / "keep.py").chmod(0o444)
    folder.chmod(0o555)
    script = (
        "import sys\nfrom symdiff.cli import cli\n"
        "for args in sys.argv[1:]:\n"
        "    code = cli.main(args.split('|'), standalone_mode=False)\n"
        "    print(code, flush=True)\n"
    )
    try:
        done = run_limited(
            [sys.executable, "-c", script, "|".join([*CODEGEN, "-o", "ro/m.py"]),
             "|".join([*FIT, "--save", "ro/p.json"]), "|".join([*CODEGEN, "-o", "keep.py"])],
            cwd=tmp_path, no_dac_override=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["2", "2", "2"]  # nothing trained, nothing printed
        lines = done.stderr.strip().splitlines()
        assert lines == [
            "Error: -o ro/m.py: cannot write to the folder 'ro': Permission denied",
            "Error: --save ro/p.json: cannot write to the folder 'ro': Permission denied",
            "Error: -o keep.py: cannot write it: Permission denied (the file is read-only)",
        ]
        assert list(folder.iterdir()) == []
        assert (tmp_path / "keep.py").read_text(encoding="utf-8") == "mine\n"
    finally:
        folder.chmod(0o755)


def test_an_interrupted_write_leaves_the_old_or_the_new_file_and_nothing_else(tmp_path):
    """Signals raise inside write_output at many points: whatever the point, the file is whole
    (old or new) and no temporary file is left."""
    script = """
import os, signal
from symdiff.outputs import write_output
armed = False
def stop(signum, frame):
    if armed:  # only inside the try below
        raise KeyboardInterrupt
signal.signal(signal.SIGALRM, stop)
old, new = b"o" * 3_000_000, b"n" * 3_000_000
write_output("f.bin", old)
for attempt in range(60):
    try:
        armed = True
        signal.setitimer(signal.ITIMER_REAL, 0.0002 * (attempt % 11 + 1))
        write_output("f.bin", new if attempt % 2 else old)
        armed = False
    except KeyboardInterrupt:
        armed = False
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert open("f.bin", "rb").read() in (old, new)
    assert os.listdir(".") == ["f.bin"], os.listdir(".")
"""
    done = run_limited([sys.executable, "-c", script], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


# ---------------------------------------------------------------------------------------------
# the library functions every command uses (in this process: no command runs, nothing blocks)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def place(tmp_path: Path) -> Path:
    populate(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("fifo", "is a FIFO"),
        ("to_null", "is a character device"),
        ("dangling", "does not exist"),
        ("sub", "is a folder"),
        ("sub/", "names a folder"),
        ("", "the file name is empty"),
        ("..", "names a folder"),
    ],
)
def test_write_output_refuses(place, name, message):
    before = snapshot(place)
    path = f"{place}{os.sep}{name}" if name else ""
    with pytest.raises(InputError, match=message):
        write_output(path, b"data")
    with pytest.raises(InputError, match=message):
        write_json(path, {"a": 1})
    assert snapshot(place) == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_check_output_rules(place):
    assert check_output(place / "new.txt") == place / "new.txt"
    assert check_output("-", dash="stdout") is None
    assert check_output(place / "-") == place / "-"  # the library: a file named '-'
    with pytest.raises(InputError, match="cannot go to standard output"):
        check_output("-", option="--plot", dash="refuse")
    with pytest.raises(InputError, match="same file as --input"):
        check_output(place / "hard.csv", {"--input": place / "d.csv"})
    assert check_folder(place / "x.json") == place / "x.json"
    with pytest.raises(InputError, match="the same file as --save"):
        check_distinct({"--save": place / "a", "--plot": place / "sub" / ".." / "a"})
    check_distinct({"--save": "-", "--plot": None, "--checkpoint": place / "b"})


def test_write_output_to_standard_output(capfd):
    assert write_output("-", "text\n", dash="stdout") is None
    assert capfd.readouterr().out == "text\n"


def test_write_output_replaces_the_name_not_a_hard_linked_file(place):
    """Without an input to compare with, a hard link is replaced by name: the other name keeps
    the old content (an input named on the command line is refused instead: CLASHES)."""
    write_output(place / "hard.csv", b"new\n")
    assert (place / "hard.csv").read_bytes() == b"new\n"
    assert (place / "d.csv").read_text(encoding="utf-8").startswith("x,y")


def test_os_errors_are_symdiff_errors(place):
    with pytest.raises(InputError, match="d.csv' is not a folder"):
        write_output(place / "d.csv" / "x", b"")
    with pytest.raises(SymdiffError, match="File name too long"):
        write_output(place / ("n" * 300), b"")
