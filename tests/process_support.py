"""Run the real ``symdiff`` command in a subprocess (``python -m symdiff``), as a user would.

The subprocess starts in an empty temporary directory, never in the checkout: ``python -m`` and
``python -c`` put their working directory on ``sys.path``, and from the repository root that
would import ``./symdiff`` instead of the installed package (tests/conftest.py explains).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
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
    """``python -m symdiff ARGS`` started with its address space capped and one BLAS thread
    (``limited_preexec``, ``quiet_env``). Standard input may be bytes; stdout and stderr go to
    temporary files, so a long output never blocks the child, and several runs can go at once.
    ``result(timeout)`` waits (killing the child ``timeout`` seconds after it started) and
    decodes the output as UTF-8. ``cwd`` must lie outside the checkout (tests/conftest.py
    explains); by default an empty temporary directory."""

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
        environment = quiet_env(dict(env or {}))
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "symdiff", *args],
            stdin=source,
            stdout=self._stdout,
            stderr=self._stderr,
            env=environment,
            cwd=cwd if cwd is not None else self._folder,
            preexec_fn=limited_preexec(memory=memory),
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


def console_script() -> str:
    """The installed ``symdiff`` console script (next to this Python, as pip puts it)."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        script = Path(folder) / "symdiff"
        if script.is_file():
            return str(script)
    raise AssertionError(f"no 'symdiff' console script next to {sys.executable}: pip install .")


def limited_preexec(
    *, memory: int = ADDRESS_SPACE, umask: int | None = None, file_size: int | None = None,
    no_dac_override: bool = False,
) -> Callable[[], None]:  # fmt: skip
    """A ``preexec_fn``: cap the child's address space (and, optionally, the size of any file it
    writes: writing past it fails with EFBIG, like a full disk), set its umask, and, when the
    tests run as root, take away root's power to write where permissions forbid it (the
    capabilities CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER leave the bounding set, so
    the exec'd process runs without them), so that a read-only folder is read-only for it."""

    cap_address_space = limit_address_space(memory)

    def prepare() -> None:
        cap_address_space()
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        if umask is not None:
            os.umask(umask)
        if no_dac_override and os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            pr_capbset_drop = 24
            for capability in (1, 2, 3):  # DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
                if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return prepare


def quiet_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a limited child: one BLAS thread (its buffers stay small under the
    address-space cap); PYTHONDONTWRITEBYTECODE unset, so that bytecode is written as for a user
    who has not set it (a test of what symdiff leaves behind must not pass by that setting)."""
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **inherited,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **(env or {}),
    }


def run_limited(
    argv: list[str], *, cwd: str | os.PathLike[str], timeout: float = 60,
    stdin: str | None = None, env: dict[str, str] | None = None, umask: int | None = None,
    file_size: int | None = None, no_dac_override: bool = False, memory: int = ADDRESS_SPACE,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``argv`` in ``cwd`` (a temporary folder, never the checkout), bounded by ``timeout`` and
    ``limited_preexec(**limits)``; text output captured; never raises on a non-zero exit."""
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        input=stdin,
        env=quiet_env(env),
        timeout=timeout,
        check=False,
        cwd=cwd,
        preexec_fn=limited_preexec(
            memory=memory, umask=umask, file_size=file_size, no_dac_override=no_dac_override
        ),
    )


def start_limited(
    argv: list[str], *, cwd: str | os.PathLike[str], env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``argv`` started in ``cwd`` under the address-space cap, stdout and stderr piped (the
    caller waits with a timeout and kills it in the end)."""
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=quiet_env(env),
        cwd=cwd,
        preexec_fn=limited_preexec(),
    )


#: The fork server of ``run_forked``: it imports symdiff once, then runs each case in a process
#: of its own (forked: real file descriptors, working directory, umask, limits and exit code)
#: through the console entry point, ``symdiff.__main__.main``.
FORK_SERVER = r"""
import json, os, resource, select, signal, sys, time, traceback
from symdiff.__main__ import main
import symdiff.cli
symdiff.cli.load_commands(library=True)  # the imports, once, before any fork

def child(case, out_w, err_w):
    os.chdir(case["cwd"])
    if case.get("umask") is not None:
        os.umask(case["umask"])
    if case.get("file_size") is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (case["file_size"], case["file_size"]))
    os.dup2(os.open(case.get("stdin") or os.devnull, os.O_RDONLY), 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    sys.argv = ["symdiff", *case["args"]]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code

results = []
for case in json.load(sys.stdin):
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(out_r)
            os.close(err_r)
            code = child(case, out_w, err_w)
        except BaseException:
            traceback.print_exc()
        os._exit(code)
    os.close(out_w)
    os.close(err_w)
    streams = {out_r: [], err_r: []}
    reading = {out_r, err_r}
    deadline = time.monotonic() + case.get("timeout", 30)
    timed_out = False
    while reading:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            timed_out = True
            break
        ready, _, _ = select.select(sorted(reading), [], [], left)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                streams[fd].append(data)
            else:
                reading.discard(fd)
                os.close(fd)
    for fd in reading:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    texts = {fd: b"".join(parts).decode("utf-8", "replace") for fd, parts in streams.items()}
    results.append({
        "returncode": os.waitstatus_to_exitcode(status),
        "stdout": texts[out_r],
        "stderr": texts[err_r],
        "timed_out": timed_out,
    })
json.dump(results, sys.stdout)
"""


def run_forked(
    cases: list[dict[str, object]],
    *,
    timeout: float = 240,
    memory: int = ADDRESS_SPACE,
    env: dict[str, str] | None = None,
) -> list[subprocess.CompletedProcess[str]]:
    """Run many ``symdiff`` command lines, each in its own process, for the price of one start.

    Each case is ``{"cwd": folder, "args": [...], "umask": int?, "file_size": int?,
    "stdin": file?, "timeout": seconds?}``. A fork server (under ``run_limited``'s address-space
    cap ``memory``, ``env`` and ``timeout``) imports symdiff once and forks a child per case,
    with its own working directory, umask, file-size limit, the file (or /dev/null) as stdin and
    pipes as stdout and stderr, which runs the console entry point; a child past its own timeout
    is killed (``returncode`` -9). POSIX only (``fork``).
    """
    folder = tempfile.mkdtemp(prefix="symdiff-forks-")
    try:
        done = run_limited(
            [sys.executable, "-c", FORK_SERVER],
            cwd=folder,
            timeout=timeout,
            stdin=json.dumps(cases),
            memory=memory,
            env=env,
        )
    finally:
        os.rmdir(folder)
    assert done.returncode == 0, done.stderr
    return [
        subprocess.CompletedProcess(
            ["symdiff", *case["args"]],  # type: ignore[misc]
            result["returncode"],
            result["stdout"],
            result["stderr"],
        )
        for case, result in zip(cases, json.loads(done.stdout), strict=True)
    ]


def run_symdiff_cases(
    cases: Mapping[str, tuple[Sequence[str], bytes | None]],
    cwd: str | os.PathLike[str],
    timeout: float = 60,
    memory: int = ADDRESS_SPACE,
    env: Mapping[str, str] | None = None,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Many ``symdiff ARGS`` runs (key -> (args, stdin bytes or None)) in ``cwd`` at the cost of
    one start (``run_forked``); standard input is decoded as UTF-8 (``PYTHONIOENCODING``). A run
    killed at ``timeout`` seconds says so on its stderr."""
    with tempfile.TemporaryDirectory(prefix="symdiff-cases-") as scratch:
        listed: list[dict[str, object]] = []
        for index, (args, stdin) in enumerate(cases.values()):
            case: dict[str, object] = {"cwd": str(cwd), "args": list(args), "timeout": timeout}
            if stdin is not None:
                case["stdin"] = str(Path(scratch) / f"{index}.in")
                Path(scratch, f"{index}.in").write_bytes(stdin)
            listed.append(case)
        results = run_forked(
            listed,
            timeout=timeout * len(listed) + 120,
            memory=memory,
            env={"PYTHONIOENCODING": "utf-8", **(env or {})},
        )
    for result in results:
        if result.returncode == -9:
            result.stderr += f"\n[killed: still running after {timeout:g} s]"
    return dict(zip(cases, results, strict=True))
