"""mypy runs clean on the installed symdiff package, with the repository's [tool.mypy] settings.

The suite tests the installed copy (see conftest.py), so that is the copy type-checked here: the
directory of ``symdiff.__file__``, copied alone into a temporary folder, with ``--config-file``
pointing at this checkout's pyproject.toml (mypy would not find it from site-packages). No cache
is written (``--cache-dir`` is the null device), so nothing is left behind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import symdiff

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGE_DIR = Path(symdiff.__file__).resolve().parent

#: a cold run takes about 10 s; the limit only stops a hung subprocess
TIMEOUT_S = 300


def test_mypy_is_clean_on_the_installed_package(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail(f"mypy is not installed for {sys.executable}: pip install '.[test]'")
    assert "[tool.mypy]" in PYPROJECT.read_text(encoding="utf-8"), PYPROJECT
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(PYPROJECT),
        "--cache-dir",
        os.devnull,
        "--no-color-output",
        "symdiff",
    ]
    # a copy of the installed package alone in a folder: mypy takes a package's parent folder as
    # a source root, and site-packages holds modules that would shadow its own stubs
    shutil.copytree(PACKAGE_DIR, tmp_path / "symdiff", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "MYPY_FORCE_COLOR": "0"}
    env.pop("MYPYPATH", None)
    completed = subprocess.run(
        command,
        cwd=tmp_path,  # not the checkout: mypy must check the installed copy only
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"mypy exited {completed.returncode}:\n$ {' '.join(command)}\n"
            f"{completed.stdout}{completed.stderr}",
            pytrace=False,
        )
