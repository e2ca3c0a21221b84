"""The calculus commands (diff, grad, jacobian, hessian), through click's CliRunner and through
real subprocesses of the installed ``symdiff`` console-script entry point and of
``python -m symdiff`` (both started with ``sys.executable``, never found on PATH).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import symdiff
from symdiff.cli import cli

# --------------------------------------------------------------------------- CliRunner


def run(*args: str, input: str | None = None):  # noqa: A002 - click's own name
    return CliRunner().invoke(cli, list(args), input=input)


def ok(*args: str, input: str | None = None) -> str:  # noqa: A002
    result = run(*args, input=input)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def as_json(*args: str) -> dict:
    return json.loads(ok(*args, "--format", "json"))


def test_diff_text_prints_the_derivative() -> None:
    assert ok("diff", "2*x**3 + 5", "--wrt", "x") == "6*x**2\n"


def test_diff_at_a_point_is_exact() -> None:
    assert ok("diff", "x**2", "--wrt", "x", "--at", "x=3") == "2*x\nat x=3: 6\n"
    data = as_json("diff", "x**2", "--wrt", "x", "--at", "x=3")
    assert data["value"] == 6 and isinstance(data["value"], int)
    assert data["exact_value"] == "6"


def test_diff_json_keys() -> None:
    data = as_json("diff", "sin(x)*y", "--wrt", "x")
    assert {"expression", "wrt", "order", "derivative", "latex", "value"} <= set(data)
    assert data["expression"] == "y*sin(x)"
    assert data["wrt"] == ["x"]
    assert data["order"] == 1
    assert data["derivative"] == "y*cos(x)"
    assert data["latex"] == r"y \cos{\left(x \right)}"
    assert data["value"] is None


def test_diff_order_and_mixed_partials() -> None:
    assert ok("diff", "sin(x)", "--wrt", "x", "--order", "2") == "-sin(x)\n"
    assert ok("diff", "x**2*y**3", "--wrt", "x", "--wrt", "y") == "6*x*y**2\n"
    assert ok("diff", "x**2*y**3", "--wrt", "x,y") == "6*x*y**2\n"
    data = as_json("diff", "x**3*y**2", "--wrt", "x", "--wrt", "y", "--order", "2")
    assert data["wrt"] == ["x", "y"] and data["order"] == 2
    assert data["derivative"] == "12*x"


def test_diff_json_wrt_lists_every_differentiation() -> None:
    """--wrt x --wrt x is the second derivative: wrt [x, x] with order 1, never [x] with 1."""
    data = as_json("diff", "x**3", "--wrt", "x", "--wrt", "x")
    assert (data["wrt"], data["order"], data["derivative"]) == (["x", "x"], 1, "6*x")
    data = as_json("diff", "x**3*y", "--wrt", "x,y,x")
    assert (data["wrt"], data["order"], data["derivative"]) == (["x", "y", "x"], 1, "6*x")


def test_diff_irrational_value() -> None:
    data = as_json("diff", "sin(x)", "--wrt", "x", "--at", "x=pi/6")
    assert data["exact_value"] == "sqrt(3)/2"
    assert data["value"] == pytest.approx(3**0.5 / 2, rel=1e-15)
    text = ok("diff", "sin(x)", "--wrt", "x", "--at", "x=pi/6")
    assert text.splitlines()[1] == "at x=pi/6: sqrt(3)/2 ≈ 0.866025403784"


def test_diff_no_simplify_keeps_the_chain_rule_form() -> None:
    raw = ok("diff", "(x**2 + 1)**2 - x**4", "--wrt", "x", "--no-simplify").strip()
    simplified = ok("diff", "(x**2 + 1)**2 - x**4", "--wrt", "x").strip()
    assert raw == "-4*x**3 + 2*x*(2*x**2 + 2)"  # d(u**2) = 2*u*u' with u = x**2 + 1
    assert simplified == "4*x"


def test_diff_latex() -> None:
    latex = ok("diff", "2*x**3 + 5", "--wrt", "x", "--format", "latex").strip()
    assert latex == r"\frac{d}{d x}\left(2 x^{3} + 5\right) = 6 x^{2}"
    latex = ok("diff", "x**2", "--wrt", "x", "--at", "x=3", "--format", "latex").strip()
    assert latex.endswith(r"\quad\text{at } x = 3: 6")


def test_grad_text_and_json() -> None:
    assert ok("grad", "4*x**4*z**3").splitlines() == ["d/dx = 16*x**3*z**3", "d/dz = 12*x**4*z**2"]
    data = as_json("grad", "4*x**4*z**3")
    assert {"expression", "wrt", "gradient", "latex", "value"} <= set(data)
    assert data["wrt"] == ["x", "z"]
    assert data["gradient"] == ["16*x**3*z**3", "12*x**4*z**2"]
    assert data["latex"] == ["16 x^{3} z^{3}", "12 x^{4} z^{2}"]
    assert data["value"] is None
    assert "directional" not in data


def test_grad_at_a_point_and_chosen_variables() -> None:
    data = as_json("grad", "4*x**4*z**3", "--wrt", "z", "--at", "x=1,z=2")
    assert data["wrt"] == ["z"] and data["gradient"] == ["12*x**4*z**2"]
    assert data["value"] == [48]


def test_grad_directional_derivative() -> None:
    args = ("grad", "x**2*y + z", "--at", "x=1,y=2,z=0", "--direction", "2,3,-1")
    data = as_json(*args)
    assert data["gradient"] == ["2*x*y", "x**2", "1"]
    assert data["value"] == [4, 1, 1]
    assert data["direction"] == ["sqrt(14)/7", "3*sqrt(14)/14", "-sqrt(14)/14"]
    assert data["directional"] == "sqrt(14)*(3*x**2 + 4*x*y - 1)/14"
    assert data["directional_value"] == pytest.approx(10 / 14**0.5, rel=1e-15)
    text = ok(*args)
    assert "directional derivative along u = (sqrt(14)/7, 3*sqrt(14)/14, -sqrt(14)/14):" in text
    assert "  ∇f = (2*x*y, x**2, 1)\n" in text
    assert "  ∇f·u = (2*x*y)*(sqrt(14)/7) + x**2*(3*sqrt(14)/14) + 1*(-sqrt(14)/14)\n" in text
    assert "       = sqrt(14)*(3*x**2 + 4*x*y - 1)/14\n" in text
    assert text.rstrip().endswith("at x=1, y=2, z=0: 5*sqrt(14)/7 ≈ 2.67261241912")
    without_point = as_json("grad", "x**2*y + z", "--direction", "2,3,-1")
    assert without_point["directional_value"] is None


def test_grad_latex() -> None:
    latex = ok("grad", "4*x**4*z**3", "--format", "latex")
    assert r"\frac{\partial f}{\partial x} &= 16 x^{3} z^{3}" in latex
    assert latex.startswith(r"\begin{align}")


def test_jacobian_text_json_latex() -> None:
    data = as_json("jacobian", "x*y", "x + y**2", "--at", "x=1,y=2")
    assert {"expressions", "wrt", "jacobian", "value"} <= set(data)
    assert data["expressions"] == ["x*y", "x + y**2"]
    assert data["wrt"] == ["x", "y"]
    assert data["jacobian"] == [["y", "x"], ["1", "2*y"]]
    assert data["value"] == [[2, 1], [1, 4]]
    text = ok("jacobian", "x*y", "x + y**2")
    assert text.splitlines() == ["jacobian with respect to (x, y):", "  [ y  x   ]", "  [ 1  2*y ]"]
    latex = ok("jacobian", "x*y", "x + y**2", "--format", "latex")
    assert latex.startswith(r"J = \left[\begin{matrix}y & x\\1 & 2 y\end{matrix}\right]")
    assert as_json("jacobian", "x*y", "--wrt", "y")["jacobian"] == [["x"]]


def test_hessian_text_json_latex() -> None:
    data = as_json("hessian", "x**3*y + y**2", "--at", "x=1,y=2")
    assert {"expression", "wrt", "hessian", "value"} <= set(data)
    assert data["expression"] == "x**3*y + y**2"
    assert data["hessian"] == [["6*x*y", "3*x**2"], ["3*x**2", "2"]]
    assert data["value"] == [[12, 3], [3, 2]]
    assert as_json("hessian", "x**3*y")["value"] is None
    text = ok("hessian", "x**3*y + y**2", "--at", "x=1,y=2")
    assert text.splitlines()[-2:] == ["  [ 12  3 ]", "  [ 3   2 ]"]
    latex = ok("hessian", "x**3*y + y**2", "--format", "latex")
    assert latex.startswith(r"H = \left[\begin{matrix}6 x y & 3 x^{2}")


def test_expression_from_standard_input() -> None:
    assert ok("diff", "-", "--wrt", "x", input="sin(x)\n") == "cos(x)\n"
    assert ok("grad", "-", input="4*x**4*z**3").splitlines()[0] == "d/dx = 16*x**3*z**3"
    hessian = json.loads(ok("hessian", "-", "--format", "json", input="x**2*y"))["hessian"]
    assert hessian == [["2*y", "2*x"], ["2*x", "0"]]
    # '-' among several jacobian expressions: standard input is one of them
    data = json.loads(ok("jacobian", "x*y", "-", "--format", "json", input="x + y**2"))
    assert data["expressions"] == ["x*y", "x + y**2"]


def test_version() -> None:
    assert ok("--version").strip() == f"symdiff, version {symdiff.__version__}"


@pytest.mark.parametrize("command", ["diff", "grad", "jacobian", "hessian"])
def test_help_has_an_example(command: str) -> None:
    text = ok(command, "--help")
    assert "Example" in text
    assert f"symdiff {command} " in text
    assert "--format [text|markdown|latex|json]" in text


def test_group_help_lists_the_commands() -> None:
    text = ok("--help")
    for command in ("diff", "grad", "jacobian", "hessian"):
        assert command in text


BAD_INPUT = [
    (["diff", "2*x**", "--wrt", "x"], "expression ends with '**' at column 4"),
    (["diff", "x + foo(x)", "--wrt", "x"], "unknown function 'foo'"),
    (["diff", "x**2", "--wrt", "y"], "variable 'y' does not occur in the expression"),
    (["diff", "x*y"], "say which variable"),
    (["diff", "x**2", "--wrt", "x", "--at", "y=1"], "--at names y"),
    (["diff", "x**2", "--wrt", "x", "--at", "x"], "expected name=value"),
    (["diff", "x**2", "--wrt", "x", "--order", "0"], "Invalid value for '--order'"),
    (["diff", "x**2", "--wrt", "x", "--format", "xml"], "Invalid value for '--format'"),
    (["diff", "x**2", "--bogus"], "No such option"),
    (["diff"], "Missing argument"),
    (["jacobian"], "Missing argument"),
    (["grad", "x*y", "--wrt", "q"], "variable 'q' does not occur"),
    (["hessian", "x*y", "--wrt", "x,,z"], "variable 'z' does not occur"),
    (["nosuchcommand"], "No such command"),
    (["diff", "-", "--wrt", "x"], "no expression on standard input"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_error_line_with_exit_2(args: list[str], fragment: str) -> None:
    result = run(*args, input="")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_a_traceback() -> None:
    result = run("--debug", "diff", "x +", "--wrt", "x")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "Error: expression ends with '+' at column 3" in result.stderr
    assert result.stderr.rstrip().endswith("^")  # the caret under the column


def test_other_failures_exit_1_without_traceback(monkeypatch) -> None:
    from symdiff.calculus import api as calculus

    def broken(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr(calculus, "derive", broken)
    result = run("diff", "x**2", "--wrt", "x")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: internal error: RuntimeError: something broke")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    debug = run("--debug", "diff", "x**2", "--wrt", "x")
    assert debug.exit_code == 1 and "Traceback" in debug.stderr


def test_symdiff_error_that_is_not_input_exits_1(monkeypatch) -> None:
    from symdiff.calculus import api as calculus
    from symdiff.errors import SymdiffError

    def fails(*args, **kwargs):
        raise SymdiffError("could not finish")

    monkeypatch.setattr(calculus, "gradient", fails)
    result = run("grad", "x*y")
    assert (result.exit_code, result.stderr) == (1, "Error: could not finish\n")


# --------------------------------------------------------------------------- real processes

#: the ``symdiff`` console script as the installed distribution declares it, run the way pip's
#: generated wrapper runs it (argv[0] = "symdiff", exit with what main() returns), by this
#: interpreter: never a ``symdiff`` executable looked up on PATH or in a scripts folder
CONSOLE_SCRIPT = (
    "import sys\n"
    "from importlib.metadata import entry_points\n"
    "found = entry_points(group='console_scripts', name='symdiff')\n"
    "if not found:\n"
    "    sys.exit('the symdiff console_scripts entry point is not installed')\n"
    "(entry,) = found\n"
    "sys.argv[0] = 'symdiff'\n"
    "sys.exit(entry.load()())\n"
)
LAUNCHERS = {
    "script": [sys.executable, "-c", CONSOLE_SCRIPT],
    "module": [sys.executable, "-m", "symdiff"],
}


@pytest.fixture(params=sorted(LAUNCHERS))
def launcher(request, tmp_path, monkeypatch) -> list[str]:
    monkeypatch.chdir(tmp_path)  # empty: ``-c`` and ``-m`` put the working directory on sys.path
    return LAUNCHERS[request.param]


def test_the_console_script_entry_point_guards_the_imports() -> None:
    """``symdiff`` starts in ``symdiff.__main__:main``, which handles Ctrl-C during imports."""
    import symdiff.__main__

    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="symdiff")
    assert entry.value == "symdiff.__main__:main"
    assert entry.load() is symdiff.__main__.main


def process(launcher: list[str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [*launcher, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_process_required_outputs(launcher) -> None:
    result = process(launcher, "diff", "2*x**3 + 5", "--wrt", "x")
    assert (result.returncode, result.stdout, result.stderr) == (0, "6*x**2\n", "")
    result = process(launcher, "grad", "4*x**4*z**3", "--format", "json")
    assert json.loads(result.stdout)["gradient"] == ["16*x**3*z**3", "12*x**4*z**2"]
    result = process(launcher, "diff", "x**2", "--wrt", "x", "--at", "x=3", "--format", "json")
    assert json.loads(result.stdout)["value"] == 6


def test_process_matrices_and_stdin(launcher) -> None:
    result = process(launcher, "hessian", "-", "--at", "x=1,y=2", "--format", "json",
                     stdin="x**3*y + y**2\n")  # fmt: skip
    assert json.loads(result.stdout)["value"] == [[12, 3], [3, 2]]
    result = process(launcher, "jacobian", "x*y", "x + y**2", "--format", "latex")
    assert result.returncode == 0 and result.stdout.startswith("J = ")


def test_process_errors(launcher) -> None:
    result = process(launcher, "diff", "__import__('os').system('touch PWNED')", "--wrt", "x")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "Error: strings are not allowed at column 12\n"
    result = process(launcher, "diff", "x", "--wrt", "x", "--format", "yaml")
    assert result.returncode == 2 and result.stderr.startswith("Error: Invalid value")
    assert result.stderr.count("\n") == 1
    result = process(launcher, "--debug", "grad", "x*y", "--at", "z=1")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_process_version_and_help(launcher) -> None:
    result = process(launcher, "--version")
    assert result.stdout.strip() == f"symdiff, version {symdiff.__version__}"
    result = process(launcher, "hessian", "--help")
    assert result.returncode == 0 and "Example" in result.stdout
