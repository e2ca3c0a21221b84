"""Start-up time of the ``symdiff`` command against ``python -c "import sympy"`` (never asserted).

Run (about 30 s on 2 cores with the default 15 rounds):

    python benchmarks/bench_startup.py
    options: --repeat 15

Each row runs a fresh interpreter (``python -m symdiff ...``, the interpreter running this
script) and waits for it; the rows are timed round-robin, one warm-up each, so load from other
processes hits all of them alike. A time is the median of the rounds, a ratio the median of the
per-round ratios against ``import sympy``. Targets: ``--help`` and ``--version`` import neither
SymPy nor NumPy (far below 1.0x); ``diff x --wrt x`` at most 1.2x ``import sympy``. A missed
target is a ``MISS`` line; a command that fails or prints the wrong thing is ``FAIL`` and exit 1.
"""

from __future__ import annotations

import harness  # first: it sets the BLAS thread counts before NumPy is loaded

# isort: split
import argparse
import subprocess
import sys

#: label -> (arguments after ``python``, expected start of standard output, target ratio)
ROWS: dict[str, tuple[list[str], str, float | None]] = {
    'python -c "import sympy"': (["-c", "import sympy"], "", None),
    "python -c pass": (["-c", "pass"], "", None),
    "symdiff --version": (["-m", "symdiff", "--version"], "symdiff, version", 0.5),
    "symdiff --help": (["-m", "symdiff", "--help"], "Usage: symdiff", 0.5),
    "symdiff diff --help": (["-m", "symdiff", "diff", "--help"], "Usage: symdiff diff", 0.5),
    "symdiff diff x --wrt x": (["-m", "symdiff", "diff", "x", "--wrt", "x"], "1\n", 1.2),
}


def run(arguments: list[str], expected: str) -> None:
    """One fresh interpreter; a failure or an unexpected output is a FAIL line."""
    done = subprocess.run([sys.executable, *arguments], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.startswith(expected):
        harness.fail(f"{' '.join(arguments)}: exit {done.returncode}, {done.stderr.strip()!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    options = parser.parse_args()
    harness.print_header("symdiff start-up")
    calls = {label: (lambda a=args, e=out: run(a, e)) for label, (args, out, _) in ROWS.items()}
    times = harness.interleaved(calls, options.repeat)
    reference = times['python -c "import sympy"']
    print(f"{'command':<28}{'median':>10}{'vs import sympy':>18}{'target':>9}")
    for label, (_args, _out, target) in ROWS.items():
        factor = harness.ratio(times[label], reference)
        verdict = ""
        if target is not None:
            verdict = f"<= {target:.1f}x" + ("" if factor <= target else "  MISS")
        median_ms = 1000 * harness.median(times[label])
        print(f"{label:<28}{median_ms:>8.0f} ms{factor:>17.2f}x  {verdict}")
    sys.exit(1 if harness.FAILURES else 0)


if __name__ == "__main__":
    main()
