"""An expression may start with '-' on every command that takes one, without '--'."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from symdiff.cli import cli

LOSS = "-y*log(sigmoid(b*x))"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["diff", "-x**3", "--wrt", "x"], "-3*x**2"),
        (["diff", "-y*log(x)", "--wrt", "x"], "-y/x"),
        (["grad", "-x*y"], "d/dx = -y"),
        (["hessian", "-x**2*y"], "-2*y"),
        (["jacobian", "-x*y", "x"], "-y"),
        (["steps", "-x**2", "--wrt", "x"], "-2*x"),
        (["check", "-x**2", "--wrt", "x", "--answer", "-2*x"], "correct"),
    ],
)
def test_leading_minus_is_an_expression(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_leading_minus_loss_never_becomes_short_options(tmp_path, monkeypatch) -> None:
    """'-y*log(...)' contains 'o': read as options it would become '-o g(...)' and write a file."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["codegen", LOSS, "--params", "b", "--data", "x,y"])
    assert result.exit_code == 0, result.output
    assert "def loss_and_grad" in result.output
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_option_values_may_start_with_minus() -> None:
    result = CliRunner().invoke(
        cli, ["diff", "x**2", "--wrt", "x", "--at", "x=-1", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["value"] == -2
    result = CliRunner().invoke(cli, ["grad", "x*y", "--direction", "-1,2"])
    assert result.exit_code == 0, result.output


def test_unknown_long_option_is_still_an_error() -> None:
    result = CliRunner().invoke(cli, ["diff", "x", "--bogus"])
    assert result.exit_code == 2
    assert "No such option '--bogus'" in result.stderr
