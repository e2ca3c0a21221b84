"""Run the real ``symdiff`` command in a subprocess (``python -m symdiff``), as a user would.

The subprocess starts in an empty temporary directory, never in the checkout: ``python -m`` and
``python -c`` put their working directory on ``sys.path``, and from the repository root that
would import ``./symdiff`` instead of the installed package (tests/conftest.py explains).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


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


#: The address space (RLIMIT_AS) of a bounded subprocess: room for Python, NumPy and SymPy, so an
#: unbounded read ends in MemoryError there instead of exhausting the machine.
ADDRESS_SPACE = 2 << 30


def limit_address_space(limit: int = ADDRESS_SPACE) -> Callable[[], None]:
    """A ``preexec_fn`` that caps the child's address space at ``limit`` bytes."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


class BoundedRun:
    """``python -m symdiff ARGS`` started with its address space capped (``limit_address_space``)
    and one BLAS thread. Standard input may be bytes; stdout and stderr go to temporary files, so
    a long output never blocks the child, and several runs can go at once. ``result(timeout)``
    waits (killing the child ``timeout`` seconds after it started) and decodes the output as
    UTF-8. ``cwd`` must lie outside the checkout (tests/conftest.py explains); by default an
    empty temporary directory."""

    def __init__(
        self,
        *args: str,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        memory: int = ADDRESS_SPACE,
    ) -> None:
        self.args = args
        self._folder = None if cwd is not None else tempfile.mkdtemp(prefix="symdiff-test-")
        # closed by result()
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        source: Any = subprocess.DEVNULL
        self._stdin = None
        if stdin is not None:
            self._stdin = tempfile.TemporaryFile()  # noqa: SIM115
            self._stdin.write(stdin.encode("utf-8") if isinstance(stdin, str) else stdin)
            self._stdin.seek(0)
            source = self._stdin
        environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "symdiff", *args],
            stdin=source,
            stdout=self._stdout,
            stderr=self._stderr,
            env=environment,
            cwd=cwd if cwd is not None else self._folder,
            preexec_fn=limit_address_space(memory),
        )

    def result(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The finished run; a run killed at ``timeout`` has a negative return code and says so
        on its stderr."""
        note = ""
        try:
            self.process.wait(timeout=max(0.0, self.started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            note = f"\n[killed: still running after {timeout:g} s]"
        outputs = []
        for handle in (self._stdout, self._stderr):
            handle.seek(0)
            outputs.append(handle.read().decode("utf-8", errors="replace"))
            handle.close()
        if self._stdin is not None:
            self._stdin.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        return subprocess.CompletedProcess(
            ["symdiff", *self.args], self.process.returncode, outputs[0], outputs[1] + note
        )


def run_symdiff_bounded(
    *args: str,
    stdin: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 60,
    memory: int = ADDRESS_SPACE,
) -> subprocess.CompletedProcess[str]:
    """``python -m symdiff ARGS`` bounded in time and address space (``BoundedRun``)."""
    return BoundedRun(*args, stdin=stdin, env=env, cwd=cwd, memory=memory).result(timeout)


def run_many_bounded(
    runs: Mapping[str, Callable[[], BoundedRun]], parallel: int = 4, timeout: float = 60
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Start the runs (each a function that starts one ``BoundedRun``), at most ``parallel`` at
    a time, all from this thread; {key: finished run}."""
    pending = list(runs.items())
    running: list[tuple[str, BoundedRun]] = []
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    while pending or running:
        while pending and len(running) < parallel:
            key, start = pending.pop(0)
            running.append((key, start()))
        key, run = running.pop(0)
        results[key] = run.result(timeout)
    return results


#: The driver of ``run_symdiff_cases``: imports symdiff once, then runs each case in its own
#: forked child (stdin, stdout and stderr redirected to files, in the current directory), waits
#: for it at most the timeout (then kills it) and prints {key: exit code or null} as JSON.
_CASE_DRIVER = r"""
import json, os, signal, sys, time, traceback
from symdiff.cli import cli

cases = json.load(open(sys.argv[1], encoding="utf-8"))
timeout = float(sys.argv[2])
codes = {}
for case in cases:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(os.open(case["stdin"] or os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(case["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
            os.dup2(os.open(case["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            code = cli.main(args=case["args"], prog_name="symdiff", standalone_mode=False)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 70
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code if isinstance(code, int) else 1)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            codes[case["key"]] = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            codes[case["key"]] = None
            break
        time.sleep(0.002)
print(json.dumps(codes))
"""


def run_symdiff_cases(
    cases: Mapping[str, tuple[Sequence[str], bytes | None]],
    cwd: str | os.PathLike[str],
    timeout: float = 60,
    memory: int = ADDRESS_SPACE,
    env: Mapping[str, str] | None = None,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Many ``symdiff ARGS`` runs (key -> (args, stdin bytes or None)) at the cost of one start.

    One ``python`` process (started in ``cwd``, which must lie outside the checkout, with its
    address space capped by ``limit_address_space`` and a timeout) imports symdiff once, then
    runs every case in its own forked child process, which inherits the cap, reads the case's
    stdin from a file and writes stdout and stderr to files; a child still running after
    ``timeout`` seconds is killed (its return code is then None and its stderr says so).
    Standard input is decoded as UTF-8 (``PYTHONIOENCODING=utf-8``). POSIX only (``fork``).
    """
    with tempfile.TemporaryDirectory(prefix="symdiff-cases-") as scratch:
        folder = Path(scratch)
        listed = []
        for index, (key, (args, stdin)) in enumerate(cases.items()):
            entry = {
                "key": key,
                "args": list(args),
                "stdin": None,
                "stdout": str(folder / f"{index}.out"),
                "stderr": str(folder / f"{index}.err"),
            }
            if stdin is not None:
                entry["stdin"] = str(folder / f"{index}.in")
                Path(entry["stdin"]).write_bytes(stdin)
            listed.append(entry)
        (folder / "cases.json").write_text(json.dumps(listed), encoding="utf-8")
        environment = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            "PYTHONIOENCODING": "utf-8",
            **(env or {}),
        }
        driver = subprocess.run(
            [sys.executable, "-c", _CASE_DRIVER, str(folder / "cases.json"), str(timeout)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd,
            timeout=timeout * len(listed) + 120,
            preexec_fn=limit_address_space(memory),
            check=False,
        )
        if driver.returncode != 0:
            raise RuntimeError(f"the case driver failed: {driver.stderr[-3000:]}")
        codes = json.loads(driver.stdout)
        results = {}
        for entry in listed:
            key = str(entry["key"])
            code = codes[key]
            stdout = Path(str(entry["stdout"])).read_bytes().decode("utf-8", errors="replace")
            stderr = Path(str(entry["stderr"])).read_bytes().decode("utf-8", errors="replace")
            if code is None:
                stderr += f"\n[killed: still running after {timeout:g} s]"
            results[key] = subprocess.CompletedProcess(
                ["symdiff", *entry["args"]], code, stdout, stderr
            )
        return results
