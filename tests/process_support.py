"""Run the real ``symdiff`` command in a subprocess (``python -m symdiff``), as a user would."""

from __future__ import annotations

import subprocess
import sys


def run_symdiff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m symdiff ARGS`` with text output captured; never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "symdiff", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )
