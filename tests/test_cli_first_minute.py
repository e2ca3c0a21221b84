"""The command line's first minute: a lean start (no SymPy or NumPy for help and version), the
help for a bare ``symdiff``, ``--debug`` anywhere, names matched without regard to case with a
did-you-mean for typos, and hints for ``sum`` without shapes and for superscript powers.

Start-up is checked by what a real process imports (``python -X importtime``), never by time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from process_support import run_symdiff_cases

from symdiff import names
from symdiff.cli import COMMANDS, cli, load_commands
from symdiff.errors import InputError, ParseError
from symdiff.frontend.parse import FUNCTIONS, parse
from symdiff.frontend.tensor_parse import parse_tensor
from symdiff.train.optimize import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

HEAVY = ("sympy", "numpy", "jinja2", "scipy", "matplotlib")
#: ``fit``'s module imports NumPy at the top (its help lists the optimizers and defaults)
HEAVY_HELP = {"fit"}


def imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m symdiff ARGS``; the result and the names it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "symdiff", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.M))
    assert "symdiff.cli" in modules, done.stderr[-2000:]  # the report was read
    return done, modules


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


LEAN = [["--help"], ["--version"], *([name, "--help"] for name in sorted(COMMANDS))]


@pytest.mark.parametrize("args", [a for a in LEAN if a[0] not in HEAVY_HELP], ids=" ".join)
def test_help_and_version_import_neither_sympy_nor_numpy(args: list[str]) -> None:
    done, modules = imported(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(("Usage: symdiff", "symdiff, version"))
    assert not top_level(modules) & set(HEAVY), sorted(top_level(modules) & set(HEAVY))


def test_fit_help_imports_numpy_for_its_defaults_but_not_sympy_or_the_trainer() -> None:
    done, modules = imported("fit", "--help")
    assert done.returncode == 0 and done.stdout.startswith("Usage: symdiff fit")
    assert "numpy" in modules  # the detector sees what is imported
    assert not top_level(modules) & {"sympy", "jinja2", "scipy", "matplotlib"}
    assert not modules & {"symdiff.train.loop", "symdiff.train.plot", "symdiff.calculus.api"}


def test_diff_imports_sympy_but_not_numpy_jinja2_or_the_other_commands() -> None:
    done, modules = imported("diff", "x**2", "--wrt", "x")
    assert (done.returncode, done.stdout) == (0, "2*x\n")
    assert "sympy" in modules  # the detector sees what is imported
    assert not top_level(modules) & {"numpy", "jinja2", "scipy", "matplotlib"}
    assert not modules & {"symdiff.cli.fit", "symdiff.cli.codegen", "symdiff.cli.explain"}


def test_bare_symdiff_prints_the_help_and_exits_0() -> None:
    bare = subprocess.run(
        [sys.executable, "-m", "symdiff"], capture_output=True, text=True, timeout=120
    )
    helped = subprocess.run(
        [sys.executable, "-m", "symdiff", "--help"], capture_output=True, text=True, timeout=120
    )
    assert (bare.returncode, bare.stderr) == (0, "")
    assert bare.stdout == helped.stdout
    assert "Commands:" in bare.stdout and "Error" not in bare.stdout


def test_the_lazy_command_table_matches_the_commands() -> None:
    """``COMMANDS`` names each command's module and its help as the command itself states it,
    so the help a lazy ``symdiff --help`` prints is the one of the loaded commands."""
    load_commands()
    assert set(cli.commands) == set(COMMANDS)
    for name, (module, short_help) in COMMANDS.items():
        command = cli.commands[name]
        assert command.callback is not None
        assert command.callback.__module__ == f"symdiff.cli.{module}"
        assert command.get_short_help_str(limit=10_000) == short_help
    loaded = "from symdiff.cli import cli, load_commands; load_commands(); cli.main(['--help'])"
    for columns in ("60", "80", "200"):
        env = {**os.environ, "COLUMNS": columns}
        helps = [
            subprocess.run(
                [sys.executable, *args], capture_output=True, text=True, timeout=120, env=env
            ).stdout
            for args in (["-m", "symdiff", "--help"], ["-c", loaded])
        ]
        assert helps[0] == helps[1] and "Commands:" in helps[0]


def test_choices_mirrored_for_the_lazy_help_match_the_library() -> None:
    from symdiff.cli import codegen as codegen_cli
    from symdiff.cli import explain as explain_cli
    from symdiff.codegen.scalar import REDUCTIONS
    from symdiff.explanations.graph import MODES

    assert codegen_cli.REDUCTIONS == REDUCTIONS
    assert explain_cli.MODES == MODES


# --------------------------------------------------------------------------- --debug anywhere


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "diff", "x +", "--wrt", "x"],
        ["diff", "x +", "--debug", "--wrt", "x"],
        ["diff", "x +", "--wrt", "x", "--debug"],
    ],
    ids=["before", "between", "after"],
)
def test_debug_before_or_after_the_command(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "Error: expression ends with '+' at column 3" in result.stderr


def test_without_debug_no_traceback() -> None:
    result = CliRunner().invoke(cli, ["diff", "x +", "--wrt", "x"])
    assert (result.exit_code, result.stderr) == (2, "Error: expression ends with '+' at column 3\n")


# --------------------------------------------------------------------------- names and typos


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("spelled", ["JSON", "Json", "json"])
def test_format_ignores_case(spelled: str) -> None:
    assert run("diff", "x**2", "--wrt", "x", "--format", spelled).stdout == (
        run("diff", "x**2", "--wrt", "x", "--format", "json").stdout
    )


TYPOS = [
    (["diff", "x", "--wrt", "x", "--format", "jsno"], "format 'jsno' (did you mean 'json'?)"),
    (["dif", "x"], "No such command 'dif' (did you mean 'diff'?)"),
    (["diff", "sine(x)", "--wrt", "x"], "function 'sine' (did you mean 'sin'?) at column 1"),
    (["graph", "x", "--at", "x=1", "--mode", "revers"], "mode 'revers' (did you mean 'reverse'?)"),
    (["grad", "sine(X)", "--shape", "X=n"], "function 'sine' (did you mean 'sin'?)"),
]


@pytest.mark.parametrize(("args", "message"), TYPOS, ids=[" ".join(a) for a, _ in TYPOS])
def test_typos_get_a_did_you_mean(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_function_names_ignore_case_in_both_parsers() -> None:
    assert run("diff", "Sin(x)", "--wrt", "x").stdout == "cos(x)\n"
    assert parse("LOG(x) + Exp(x)") == parse("log(x) + exp(x)")
    assert parse_tensor("SUM(Tanh(X))", {"X": ("n",)}) == parse_tensor(
        "sum(tanh(X))", {"X": ("n",)}
    )


def test_optimizers_and_schedules_ignore_case() -> None:
    assert type(make_optimizer("SGD")) is OPTIMIZERS["sgd"]
    assert type(make_optimizer("Adam", lr=0.1)) is OPTIMIZERS["adam"]
    assert type(make_schedule("Step:drop=0.5,every=10")) is SCHEDULES["step"]
    with pytest.raises(InputError, match=r"unknown optimizer 'adma' \(did you mean 'adam'\?\)"):
        make_optimizer("adma")
    with pytest.raises(InputError, match=r"unknown schedule 'expnential' \(did you mean 'exp"):
        make_schedule("expnential")
    with pytest.raises(InputError, match=r"unknown optimizer 'zzz' \(choose from: adagrad, adam"):
        make_optimizer("zzz")


def test_fit_takes_an_optimizer_in_capitals(tmp_path) -> None:
    (tmp_path / "d.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    common = ["fit", "(w*x - y)**2", "--params", "w", "--data", "x,y", "--epochs", "3"]
    upper = run(*common, "--input", str(tmp_path / "d.csv"), "--optimizer", "SGD")
    lower = run(*common, "--input", str(tmp_path / "d.csv"), "--optimizer", "sgd")
    assert upper.exit_code == 0, upper.stderr
    assert upper.stdout == lower.stdout


def test_fit_takes_a_reduction_in_capitals(tmp_path) -> None:
    (tmp_path / "d.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    common = ["fit", "(w*x - y)**2", "--params", "w", "--data", "x,y", "--epochs", "3"]
    upper = run(*common, "--input", str(tmp_path / "d.csv"), "--reduce", "SUM")
    lower = run(*common, "--input", str(tmp_path / "d.csv"), "--reduce", "sum")
    mean = run(*common, "--input", str(tmp_path / "d.csv"))
    assert upper.exit_code == 0, upper.stderr
    assert upper.stdout == lower.stdout != mean.stdout
    typo = run(*common, "--input", str(tmp_path / "d.csv"), "--reduce", "sun")
    assert typo.exit_code == 2 and "did you mean 'sum'" in typo.stderr


REGISTRIES = {"function": FUNCTIONS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}


@given(st.sampled_from(sorted(REGISTRIES)), st.data())
def test_any_casing_of_a_name_is_that_name(kind: str, data: st.DataObject) -> None:
    registry = REGISTRIES[kind]
    name = data.draw(st.sampled_from(sorted(registry)))
    flips = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    spelled = "".join(c.upper() if flip else c for c, flip in zip(name, flips, strict=True))
    assert names.lookup(registry, spelled, kind) is registry[name]


@given(st.sampled_from(sorted(REGISTRIES)), st.data())
def test_a_dropped_letter_is_answered_with_the_closest_names(kind: str, data) -> None:
    registry = REGISTRIES[kind]
    name = data.draw(st.sampled_from([n for n in sorted(registry) if len(n) >= 4]))
    cut = data.draw(st.integers(0, len(name) - 1))
    typo = name[:cut] + name[cut + 1 :]
    if names.canonical(typo, registry) is not None:
        return  # the typo is itself a name (e.g. log2 -> log)
    close = names.suggestions(typo, registry)
    assert close and set(close) <= set(registry)
    assert all(names.suggestions(typo, [choice]) == [choice] for choice in close)
    assert name in close or all(_ratio(typo, c) >= _ratio(typo, name) for c in close)
    with pytest.raises(InputError, match="did you mean"):
        names.lookup(registry, typo, kind)


def _ratio(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a.casefold(), b.casefold()).ratio()


def test_nothing_close_lists_the_choices() -> None:
    assert names.suggestions("qqqq", ["adam", "sgd"]) == []
    assert names.unknown("optimizer", "qqqq", ["sgd", "adam"]) == (
        "unknown optimizer 'qqqq' (choose from: adam, sgd)"
    )


# --------------------------------------------------------------------------- hints


def test_sum_without_shapes_says_it_is_a_tensor_operation() -> None:
    result = run("grad", "sum((X@w-y)^2)")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: unknown function 'sum' (sum is a tensor operation: declare the tensors' shapes, "
        "e.g. --shape X=n,d --shape w=d --shape y=n) at column 1\n"
    )
    shaped = run("grad", "sum((X@w-y)^2)", "--shape", "X=n,d", "--shape", "w=d", "--shape", "y=n")
    assert shaped.exit_code == 0, shaped.stderr


@pytest.mark.parametrize("name", ["mean", "softmax", "Mean", "norm2"])
def test_every_tensor_operation_gets_the_shape_hint(name: str) -> None:
    with pytest.raises(ParseError, match="is a tensor operation: declare the tensors' shapes"):
        parse(f"{name}(x)")


SUPERSCRIPT = "⁰¹²³⁴⁵⁶⁷⁸⁹"


@given(st.text(alphabet=SUPERSCRIPT + "⁻", min_size=1, max_size=4))
def test_superscripts_suggest_the_power(power: str) -> None:
    ascii_power = power.translate(str.maketrans(SUPERSCRIPT + "⁻", "0123456789-"))
    with pytest.raises(ParseError) as caught:
        parse(f"x{power} + 1")
    assert f"(use '**{ascii_power}') at column 2" in str(caught.value)


def test_superscript_hint_on_the_command_line() -> None:
    result = run("diff", "x²", "--wrt", "x")
    assert result.stderr == (
        "Error: unexpected non-ASCII character '²' (U+00B2 SUPERSCRIPT TWO) (use '**2') "
        "at column 2\n"
    )
    minus = run("diff", "x − 1", "--wrt", "x")
    assert "(U+2212 MINUS SIGN) (use '-') at column 3" in minus.stderr


CALCULUS_COMMANDS = [
    ("diff", "x**2*y", "--wrt", "x", "--at", "x=1,y=2"),
    ("grad", "x**2*y"),
    ("hessian", "x**2*y"),
    ("jacobian", "x*y", "x+y"),
    ("grad", "sum((X @ w - y)**2)", "--shape", "X=n,2", "--shape", "w=2", "--shape", "y=n"),
    ("jacobian", "softmax(z)", "--shape", "z=3", "--wrt", "z"),
]


@pytest.mark.parametrize("args", CALCULUS_COMMANDS, ids=" ".join)
def test_calculus_commands_print_markdown_as_display_math(args: tuple[str, ...]) -> None:
    """--format markdown: the LaTeX result as a $$ display block (for notes and notebooks)."""
    cases = {fmt: ([*args, "--format", fmt], None) for fmt in ("markdown", "latex")}
    with tempfile.TemporaryDirectory() as folder:
        done = run_symdiff_cases(cases, folder)
    assert done["markdown"].returncode == 0, done["markdown"].stderr
    assert done["markdown"].stdout == f"$$\n{done['latex'].stdout.rstrip()}\n$$\n"
