"""Every example in every command's ``--help`` runs as printed.

The commands are discovered from the click group (``symdiff.cli.cli``), the examples are read
from the help text (the indented lines under ``Example:``/``Examples:``; a trailing backslash
continues a line, ``# ...`` is a comment, ``# ... exit N`` is the promised exit code), and each
runs as a real ``python -m symdiff`` subprocess of the installed package, in a temporary
directory holding the input files it names. Of a shell pipeline (``... | dot -Tpng > g.png``)
the ``symdiff`` stage is run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from process_support import run_symdiff

import symdiff
from symdiff.cli import cli

#: options whose value is a file the command writes
OUTPUT_OPTIONS = ("-o", "--output", "--save", "--plot")
SHELL_OPERATORS = set("|&;<>")


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The group itself and every command below it, as argument prefixes: (), ("diff",), ..."""
    yield path
    context = click.Context(group)
    for name in group.list_commands(context):  # the commands load lazily: ask the group
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*path, name))
        else:
            yield (*path, name)


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def examples(text: str) -> list[str]:
    """The example command lines of a help text, continuation lines joined."""
    found: list[str] = []
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("Example:", "Examples:"):
            inside = True
        elif not stripped:
            inside = False
        elif inside and found and found[-1].endswith("\\"):
            found[-1] = found[-1][:-1].rstrip() + " " + stripped
        elif inside:
            found.append(stripped)
    return found


def symdiff_stage(example: str) -> list[str]:
    """The words of the example up to its first shell operator (pipe, redirection), without
    the comment."""
    lexer = shlex.shlex(example, posix=True, punctuation_chars="".join(SHELL_OPERATORS))
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if set(word) <= SHELL_OPERATORS:
            break
        words.append(word)
    return words


def expected_exit_code(example: str) -> int:
    promised = re.search(r"#.*\bexit (\d+)", example)
    return int(promised.group(1)) if promised else 0


# --------------------------------------------------------------------------- input files


def write_data_csv(path: Path) -> None:
    """A straight line y = 1 + 2x with a little noise, columns x and y."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 2.0, 40)
    y = 1.0 + 2.0 * x + rng.normal(0.0, 0.1, 40)
    rows = "".join(f"{a:.6f},{b:.6f}\n" for a, b in zip(x, y, strict=True))
    path.write_text("x,y\n" + rows, encoding="utf-8")


def write_mlp_toml(path: Path) -> None:
    """The two-layer network of the README (8x8 digit images, 10 classes)."""
    path.write_text(
        'loss = "cross_entropy(Y, softmax(relu(X @ W1 + b1) @ W2 + b2))"\n'
        "[params]\nW1 = [64, 32]\nb1 = [32]\nW2 = [32, 10]\nb2 = [10]\n"
        '[data]\nX = ["n", 64]\nY = ["n", 10]\n',
        encoding="utf-8",
    )


def write_digits_npz(path: Path) -> None:
    """64 samples shaped like the digits data: X (64 pixels each) and one-hot labels Y."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 64)
    np.savez(path, X=rng.uniform(0.0, 16.0, (64, 64)), Y=np.eye(10)[labels])


def write_model_py(path: Path) -> None:
    """The module of the first ``symdiff codegen --help`` example."""
    path.write_text(symdiff.generate("(b0 + b1*x - y)**2", "b0,b1", "x,y"), encoding="utf-8")


#: the files the examples read, by the name they use
INPUTS: dict[str, Callable[[Path], None]] = {
    "data.csv": write_data_csv,
    "mlp.toml": write_mlp_toml,
    "digits.npz": write_digits_npz,
    "model.py": write_model_py,
}


def written_files(words: list[str]) -> list[str]:
    pairs = zip(words, words[1:], strict=False)
    return [value for option, value in pairs if option in OUTPUT_OPTIONS]


def read_files(words: list[str]) -> list[str]:
    outputs = written_files(words)
    return [word for word in words if word in INPUTS and word not in outputs]


# --------------------------------------------------------------------------- the tests

COMMANDS = list(command_paths(cli))
EXAMPLES = [
    pytest.param(path, example, id=f"{' '.join(('symdiff', *path))} #{number}")
    for path in COMMANDS
    for number, example in enumerate(examples(help_text(path)), start=1)
]


def test_the_commands_are_discovered() -> None:
    names = {path[0] for path in COMMANDS if path}
    assert {"diff", "grad", "codegen", "fit", "steps"} <= names
    assert all(example.values[1].strip() for example in EXAMPLES)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("symdiff", *path)))
def test_help_shows_examples(path: tuple[str, ...]) -> None:
    """``symdiff ... --help`` in a real process shows at least one example, the ones run below."""
    done = run_symdiff(*path, "--help")
    assert done.returncode == 0, done.stderr
    shown = examples(done.stdout)
    assert shown, f"'symdiff {' '.join(path)} --help' shows no Example(s): block"
    assert shown == examples(help_text(path))


@pytest.mark.parametrize(("path", "example"), EXAMPLES)
def test_help_example_runs(path: tuple[str, ...], example: str, tmp_path: Path) -> None:
    words = symdiff_stage(example)
    assert words[:1] == ["symdiff"], f"not a symdiff command line: {example!r}"
    for name in read_files(words):
        INPUTS[name](tmp_path / name)
    done = subprocess.run(
        [sys.executable, "-m", "symdiff", *words[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    report = f"{example}\nexit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert done.returncode == expected_exit_code(example), report
    assert (done.stdout + done.stderr).strip(), report
    assert "Traceback" not in done.stderr, report
    if done.returncode == 0:
        assert not done.stderr.startswith("Error"), report
    for name in written_files(words):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, report
