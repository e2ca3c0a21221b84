"""``symdiff steps | graph | check``: derivations a student can follow.

The explainers are imported when a command runs, not for its ``--help``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import InputError
from . import cli
from . import tensor as tensor_cli
from .common import EXPRESSION_FIRST, NameChoice, format_option, read_expression, split_names

if TYPE_CHECKING:
    from ..explain.render import Explained

#: ``symdiff.explain.graph.MODES`` (a test checks), without importing the explainers
MODES = ("forward", "reverse", "both")

#: An expression may start with a minus sign ("-y*log(p)"): unknown "-..." words are EXPR.


@cli.command(name="steps", **EXPRESSION_FIRST)
@click.argument("expr", required=False)
@click.option("--wrt", default=None, help="The variable to differentiate by.")
@click.option(
    "--method",
    type=NameChoice(["rules", "limit"], "method"),
    default="rules",
    show_default=True,
    help="Rule by rule, or from the limit definition (f(x+h) - f(x))/h.",
)
@click.option("--at", "at", default=None, help="With --method limit: a point, e.g. x=3.")
@click.option(
    "--h",
    "step",
    default=None,
    help="With --method limit: show (f(x+h) - f(x))/h at this step size, e.g. 0.0001.",
)
@click.option("--list-rules", is_flag=True, help="List the rule names and formulas, then exit.")
@tensor_cli.tensor_options
@format_option("text", "markdown", "latex", "json")
def steps_command(
    expr: str | None,
    wrt: str | None,
    method: str,
    at: str | None,
    step: str | None,
    list_rules: bool,
    fmt: str,
    shape: tuple[str, ...] = (),
    model_path: str | None = None,
) -> None:
    """Step-by-step derivative of EXPR ('-' reads standard input).

    \b
    Examples:
      symdiff steps "sin(x**2)" --wrt x
      symdiff steps "2*x**3 + 5" --wrt x --method limit
      symdiff steps "x**2" --wrt x --method limit --at x=3
      symdiff steps "x**2" --wrt x --method limit --at x=3 --h 0.0001
      symdiff steps --list-rules
      symdiff steps "mean((X @ w - y)**2)" --shape X=n,d --shape w=d --shape y=n --wrt w
    """
    from ..explain.derivation import explain, rules_table
    from ..explain.limit import limit_derivation

    if tensor_cli.wants_tensor(shape, model_path):
        tensor_cli.reject(
            method=method != "rules", at=at is not None, h=step is not None, list_rules=list_rules
        )
        text = read_expression(expr) if expr is not None else None
        return tensor_cli.steps(text, shape, model_path, split_names((wrt,) if wrt else ()), fmt)
    if list_rules:
        click.echo(rules_table(fmt))
        return
    if expr is None:
        raise InputError("missing EXPR (or use --list-rules)")
    text = read_expression(expr)
    derivation: Explained
    if method == "limit":
        derivation = limit_derivation(text, wrt, at, step)
    else:
        if at is not None or step is not None:
            raise InputError(f"{'--at' if at is not None else '--h'} goes with --method limit")
        derivation = explain(text, wrt)
    click.echo(derivation.render(fmt))


@cli.command(name="graph", **EXPRESSION_FIRST)
@click.argument("exprs", nargs=-1, required=True)
@click.option("--wrt", multiple=True, help="Input(s) to differentiate by; repeat or use commas.")
@click.option("--at", "at", required=True, help="Values of every variable, e.g. X=3,y=1,W=3.")
@click.option(
    "--mode", type=NameChoice(MODES, "mode"), default="both", show_default=True, help="Sweeps."
)
@format_option("text", "markdown", "latex", "json", "dot")
def graph_command(
    exprs: tuple[str, ...], wrt: tuple[str, ...], at: str, mode: str, fmt: str
) -> None:
    """Computational graph of EXPR(s), evaluated in forward and/or reverse mode.

    \b
    Examples:
      symdiff graph "-y*log(1/(1+exp(-W*X)))" --wrt W --at X=3,y=1,W=3
      symdiff graph "abs(y_true - (w*x + b))" --wrt w,b --at x=2,w=3,b=1,y_true=4 --mode reverse
      symdiff graph "sin(x)" "cos(x)" "x**2" --wrt x --at x=1      # m > n: forward wins
      symdiff graph "x**2*y" --wrt x --at x=1,y=2 --format dot | dot -Tpng > graph.png
    """
    from ..explain.graph import build_graph

    graph = build_graph([read_expression(e) for e in exprs], split_names(wrt), at, mode)
    click.echo(graph.render(fmt))


@cli.command(name="check", **EXPRESSION_FIRST)
@click.argument("expr")
@click.option("--wrt", default=None, help="The variable the answer is a derivative by.")
@click.option("--answer", required=True, help="Your derivative, e.g. '6*x**2'.")
@format_option("text", "markdown", "latex", "json")
@click.pass_context
def check_command(ctx: click.Context, expr: str, wrt: str | None, answer: str, fmt: str) -> None:
    """Check a derivative: exit 0 if ANSWER equals d EXPR/d WRT, else 1 and a counterexample.

    \b
    Examples:
      symdiff check "2*x**3 + 5" --wrt x --answer "6*x**2"     # correct, exit 0
      symdiff check "2*x**3 + 5" --wrt x --answer "6*x"        # incorrect, exit 1
    """
    from ..explain.render import check_answer

    result = check_answer(read_expression(expr), wrt, answer)
    click.echo(result.render(fmt))
    if not result.correct:
        ctx.exit(1)
