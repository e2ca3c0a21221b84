"""Every console example of the README is run, and its output compared line by line.

A ```console block holds commands (``$ `` lines, continued by lines ending in ``\\``) and the
output each prints (stdout and stderr together, in order). The only freedom the README may take
is a line that is exactly ``...``: it stands for any number of lines (zero included). The commands
run with ``bash`` in a temporary copy of ``examples/`` (so ``examples/data/linear.csv`` and
``mlp.toml`` resolve, and written files land in the copy), with the installed ``symdiff`` and
this Python first on ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ELLIPSIS = "..."


@dataclass(frozen=True)
class Example:
    line: int  # line of the README where the command starts
    command: str
    expected: tuple[str, ...]


def console_blocks(text: str) -> list[list[Example]]:
    """The (command, expected output) pairs of each ```console block of the README."""
    blocks: list[list[Example]] = []
    inside = False
    command: list[str] = []
    start = 0
    expected: list[str] = []

    def flush() -> None:
        if command:
            blocks[-1].append(Example(start, "\n".join(command), tuple(expected)))

    for number, line in enumerate(text.splitlines(), 1):
        if not inside:
            inside = line.strip() == "```console"
            if inside:
                blocks.append([])
            command, expected = [], []
            continue
        if line.strip() == "```":
            flush()
            inside = False
            continue
        if line.startswith("$ "):
            flush()
            command, expected, start = [line[2:]], [], number
        elif command and command[-1].endswith("\\") and not expected:
            command.append(line)
        else:
            expected.append(line)
    return [block for block in blocks if block]


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """Whether ``actual`` is ``expected`` with each ``...`` line standing for any lines."""
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line == ELLIPSIS else re.escape(line.rstrip()) + r"\n"
        for line in expected
    )
    text = "".join(line.rstrip() + "\n" for line in actual)
    return re.fullmatch(pattern, text) is not None


BLOCKS = console_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_console_examples() -> None:
    assert sum(len(block) for block in BLOCKS) >= 30
    assert "```bash\nsymdiff" not in README.read_text(encoding="utf-8"), (
        "a symdiff command in a ```bash block is not checked: write it as a ```console example"
    )


def test_the_matcher_refuses_a_wrong_line() -> None:
    assert matches(("a", "...", "d"), ["a", "b", "c", "d"])
    assert matches(("a", "...", "b"), ["a", "b"])
    assert not matches(("a", "b"), ["a", "c"])
    assert not matches(("a", "...", "d"), ["a", "b", "c"])


def prepare(folder: Path) -> Path:
    """``folder`` with a copy of ``examples/`` and ``mlp.toml``, as the README's commands expect."""
    shutil.copytree(ROOT / "examples", folder / "examples")
    shutil.copy(ROOT / "examples" / "mlp.toml", folder / "mlp.toml")
    return folder


def run_example(example: Example, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The example's command run by bash in ``workdir``, stdout and stderr together."""
    script = shutil.which("symdiff")
    bin_dirs = [str(Path(sys.executable).parent), *([str(Path(script).parent)] if script else [])]
    env = {
        **os.environ,
        "PATH": os.pathsep.join([*bin_dirs, os.environ.get("PATH", "")]),
        "COLUMNS": "80",
    }
    return subprocess.run(
        ["bash", "-c", example.command],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{block[0].line}" for block in BLOCKS])
def test_console_block(block: list[Example], tmp_path: Path) -> None:
    """The commands of one block, in order, in one folder (a later one may read an earlier file)."""
    workdir = prepare(tmp_path)
    for example in block:
        result = run_example(example, workdir)
        actual = result.stdout.splitlines()
        shown = "\n".join(actual)
        assert matches(example.expected, actual), (
            f"README.md:{example.line}: $ {example.command}\n--- README\n"
            + "\n".join(example.expected)
            + f"\n--- printed (exit {result.returncode})\n{shown}"
        )


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line, code) of every ```python block that is a whole program (not an indented excerpt)."""
    found = re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.M | re.S)
    blocks = [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in found]
    return [(line, code) for line, code in blocks if not code.startswith((" ", "\t"))]


PROGRAMS = python_blocks(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("line", "code"), PROGRAMS, ids=[f"README.md:{n}" for n, _ in PROGRAMS])
def test_python_example_runs(line: int, code: str, tmp_path: Path) -> None:
    """Each whole ```python example runs to the end with the installed symdiff."""
    script = prepare(tmp_path) / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"README.md:{line}\n{code}\n{result.stderr[-3000:]}"


def test_the_model_file_of_the_readme_is_the_example_file() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    assert block.group(1) == (ROOT / "examples" / "mlp.toml").read_text(encoding="utf-8")


def rewrite_readme(scratch: Path) -> None:
    """A developer's tool (``python tests/test_readme_console.py``, never run by the suite):
    replace the output of every example that has no ``...`` line by what it prints now."""
    lines = README.read_text(encoding="utf-8").splitlines()
    replacements: list[tuple[Example, list[str]]] = []
    for number, block in enumerate(BLOCKS):
        workdir = prepare(scratch / str(number))
        for example in block:
            replacements.append((example, run_example(example, workdir).stdout.splitlines()))
    for example, printed in reversed(replacements):
        if ELLIPSIS not in example.expected:
            end = example.line + example.command.count("\n")  # the command's last line, 1-based
            lines[end : end + len(example.expected)] = printed
    README.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    if os.environ.get("CI"):
        sys.exit("the README is rewritten by developers, never under CI")
    with tempfile.TemporaryDirectory() as scratch:
        rewrite_readme(Path(scratch))
