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
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path


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


#: the address-space limit of ``run_limited``/``start_limited`` (a runaway process fails, the
#: machine does not)
MEMORY_LIMIT = 2 << 30


def console_script() -> str:
    """The installed ``symdiff`` console script (next to this Python, as pip puts it)."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        script = Path(folder) / "symdiff"
        if script.is_file():
            return str(script)
    raise AssertionError(f"no 'symdiff' console script next to {sys.executable}: pip install .")


def limited_preexec(
    *, memory: int = MEMORY_LIMIT, umask: int | None = None, file_size: int | None = None,
    no_dac_override: bool = False,
) -> Callable[[], None]:  # fmt: skip
    """A ``preexec_fn``: cap the child's address space (and, optionally, the size of any file it
    writes: writing past it fails with EFBIG, like a full disk), set its umask, and, when the
    tests run as root, take away root's power to write where permissions forbid it (the
    capabilities CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER leave the bounding set, so
    the exec'd process runs without them), so that a read-only folder is read-only for it."""

    def prepare() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
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
    file_size: int | None = None, no_dac_override: bool = False,
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
            umask=umask, file_size=file_size, no_dac_override=no_dac_override
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
import symdiff.cli  # noqa: F401  (the imports, once, before any fork)

def child(case, out_w, err_w):
    os.chdir(case["cwd"])
    if case.get("umask") is not None:
        os.umask(case["umask"])
    if case.get("file_size") is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (case["file_size"], case["file_size"]))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
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
    cases: list[dict[str, object]], *, timeout: float = 240
) -> list[subprocess.CompletedProcess[str]]:
    """Run many ``symdiff`` command lines, each in its own process, for the price of one start.

    Each case is ``{"cwd": folder, "args": [...], "umask": int?, "file_size": int?,
    "timeout": seconds?}``. A fork server (under ``run_limited``'s address-space cap and
    ``timeout``) imports symdiff once and forks a child per case, with its own working directory,
    umask, file-size limit, /dev/null as stdin and pipes as stdout and stderr, which runs the
    console entry point; a child past its own timeout is killed (``returncode`` -9).
    """
    folder = tempfile.mkdtemp(prefix="symdiff-forks-")
    try:
        done = run_limited(
            [sys.executable, "-c", FORK_SERVER],
            cwd=folder,
            timeout=timeout,
            stdin=json.dumps(cases),
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
