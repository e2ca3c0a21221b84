"""Lint and formatting are part of the test suite (and so of CI): ``ruff check`` and
``ruff format --check`` on the whole repository, and ``ruff format --check`` on each ```python
block of the README, all run as ``sys.executable -m ruff`` with the repository's settings."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
README = ROOT / "README.md"


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ruff ARGS`` (no cache written into the checkout), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )


def require_success(result: subprocess.CompletedProcess[str], what: str) -> None:
    """Fail with ruff's own output (the findings, or the diff) unless it exited 0."""
    if result.returncode != 0:
        pytest.fail(
            f"{what}: ruff exited {result.returncode}\n{result.stdout}{result.stderr}",
            pytrace=False,
        )


def test_ruff_check_is_clean() -> None:
    require_success(ruff("check", "--no-cache", str(ROOT)), "ruff check")


def test_ruff_format_check_is_clean() -> None:
    result = ruff("format", "--check", "--diff", "--no-cache", str(ROOT))
    require_success(result, "ruff format --check (run 'ruff format' and review the diff)")


def readme_python_blocks() -> list[tuple[int, str]]:
    """(line of the opening fence, code) of every ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.M | re.S):
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


BLOCKS = readme_python_blocks()


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2, "the README's ```python blocks were not found"


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_python_block_is_formatted(line: int, code: str, tmp_path: Path) -> None:
    """Each block as ruff would format it with the repository's settings; an indented excerpt
    (the body of a generated function) is checked dedented."""
    path = tmp_path / f"readme_line_{line}.py"
    path.write_text(textwrap.dedent(code), encoding="utf-8")
    result = ruff("format", "--check", "--diff", "--no-cache", "--config", str(CONFIG), str(path))
    first = code.strip().splitlines()[0] if code.strip() else "(empty)"
    require_success(result, f"README.md:{line}, the ```python block starting {first!r}")
