"""Run the real ``symdiff`` command in a subprocess (``python -m symdiff``), as a user would.

The subprocess starts in an empty temporary directory, never in the checkout: ``python -m`` and
``python -c`` put their working directory on ``sys.path``, and from the repository root that
would import ``./symdiff`` instead of the installed package (tests/conftest.py explains).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile


def run_python(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in an empty temporary directory, text output captured; never raises on a
    non-zero exit."""
    with tempfile.TemporaryDirectory(prefix="symdiff-test-") as folder:
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            input=stdin,
            env=env,
            timeout=timeout,
            check=False,
            cwd=folder,
        )


def run_symdiff(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m symdiff ARGS`` with text output captured; never raises on a non-zero exit."""
    return run_python("-m", "symdiff", *args, stdin=stdin, env=env, timeout=timeout)
