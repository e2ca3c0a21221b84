"""The suite tests the installed symdiff (what users get from the wheel), never the checkout.

``python -m pytest`` puts the current directory on ``sys.path`` (and pytest-xdist gives its workers
the same ``sys.path``), so from the repository root ``import symdiff`` would find ``./symdiff``.
This file runs before any test module: it takes the checkout off ``sys.path`` and off
``PYTHONPATH`` (which subprocesses inherit), imports symdiff and stops the run when it still comes
from the checkout.

``SYMDIFF_TEST_CHECKOUT=1`` tests the checkout on purpose (a developer's edit loop without
reinstalling); it is refused when ``CI`` is set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, settings

# Every run draws the same examples (a seed derived from each test), so CI and a developer's
# machine test the same cases; HYPOTHESIS_PROFILE=explore draws fresh random examples.
# No explain phase: it reruns a failing example in many variations, which for a slow test can
# take hours; the shrunk example is reported all the same.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
settings.register_profile(
    "repeatable", derandomize=True, database=None, print_blob=True, phases=PHASES
)
settings.register_profile("explore", print_blob=True, phases=PHASES)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

CHECKOUT = Path(__file__).resolve().parents[1]
ESCAPE_HATCH = "SYMDIFF_TEST_CHECKOUT"


def _is_checkout(entry: str) -> bool:
    """Whether a sys.path/PYTHONPATH entry ('' is the current directory) is the checkout root."""
    return Path(entry or os.curdir).resolve() == CHECKOUT


WANTS_CHECKOUT = os.environ.get(ESCAPE_HATCH) == "1"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
TEST_CHECKOUT = WANTS_CHECKOUT and not IN_CI

# Off sys.path for this process and off PYTHONPATH for the subprocesses the tests start (with the
# escape hatch: first on both).
sys.path[:] = [entry for entry in sys.path if not _is_checkout(entry)]
_pythonpath = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
_pythonpath = [entry for entry in _pythonpath if not _is_checkout(entry)]
if TEST_CHECKOUT:
    sys.path.insert(0, str(CHECKOUT))
    _pythonpath.insert(0, str(CHECKOUT))
if _pythonpath:
    os.environ["PYTHONPATH"] = os.pathsep.join(_pythonpath)
else:
    os.environ.pop("PYTHONPATH", None)

#: why the run must stop (pytest_configure reports it before any test module is imported)
PROBLEM: str | None = None
SYMDIFF_DIR: Path | None = None
if WANTS_CHECKOUT and IN_CI:
    PROBLEM = f"{ESCAPE_HATCH}=1 is refused because CI is set: CI tests the installed package"
else:
    try:
        import symdiff
    except ImportError as exc:
        PROBLEM = f"cannot import symdiff with {sys.executable} ({exc}); install it: pip install ."
    else:
        SYMDIFF_DIR = Path(symdiff.__file__).resolve().parent
        if SYMDIFF_DIR.is_relative_to(CHECKOUT) and not TEST_CHECKOUT:
            PROBLEM = (
                f"symdiff was imported from the checkout ({SYMDIFF_DIR}), not an installed "
                f"package; run 'pip install .' (not -e), or set {ESCAPE_HATCH}=1 to test the "
                "checkout"
            )


def pytest_configure(config: pytest.Config) -> None:
    if PROBLEM is not None:
        pytest.exit(PROBLEM, returncode=pytest.ExitCode.USAGE_ERROR)


def _stale_files() -> list[str]:
    """Files of the checkout's symdiff/ that the installed copy lacks or holds differently."""
    source = CHECKOUT / "symdiff"
    return sorted(
        str(path.relative_to(source))
        for pattern in ("*.py", "*.jinja")
        for path in source.rglob(pattern)
        if not (SYMDIFF_DIR / path.relative_to(source)).is_file()
        or (SYMDIFF_DIR / path.relative_to(source)).read_bytes() != path.read_bytes()
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    if TEST_CHECKOUT:
        return [f"symdiff: {SYMDIFF_DIR} (the checkout: {ESCAPE_HATCH}=1)"]
    lines = [f"symdiff: {SYMDIFF_DIR} (installed)"]
    stale = _stale_files()
    if stale:
        lines.append(
            f"symdiff: WARNING: the installed copy differs from the checkout in {len(stale)} "
            f"file(s) ({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''}); "
            "reinstall with: pip install ."
        )
    return lines
