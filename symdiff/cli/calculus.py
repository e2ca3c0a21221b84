"""``symdiff diff | grad | jacobian | hessian``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import cli
from . import tensor as tensor_cli
from .common import EXPRESSION_FIRST, emit, format_option, read_expression, split_names

if TYPE_CHECKING:  # the library is imported when a command runs, not for its --help
    import sympy as sp

_WRT_HELP = "Variable(s) to differentiate by; repeat or separate with commas."
_AT_HELP = "Evaluate at a point, e.g. x=3,y=1/2; with --shape: w=[1,2],X=[[1,0],[0,1]] or a.npz."


@cli.command(name="diff", **EXPRESSION_FIRST)
@click.argument("expr")
@click.option("--wrt", multiple=True, help=_WRT_HELP)
@click.option(
    "--order",
    type=click.IntRange(min=1, max=20),
    default=1,
    show_default=True,
    help="Differentiate this many times by each variable.",
)
@click.option("--at", "at", default=None, help=_AT_HELP)
@click.option("--no-simplify", is_flag=True, help="Keep the raw chain-rule form.")
@tensor_cli.tensor_options
@format_option()
def diff_command(
    expr: str,
    wrt: tuple[str, ...],
    order: int,
    at: str | None,
    no_simplify: bool,
    fmt: str,
    shape: tuple[str, ...] = (),
    model_path: str | None = None,
) -> None:
    """Derivative of EXPR ('-' reads standard input).

    \b
    Examples:
      symdiff diff "2*x**3 + 5" --wrt x              # 6*x**2
      symdiff diff "x**2" --wrt x --at x=3           # 2*x, at x=3: 6
      symdiff diff "x**2*y**3" --wrt x --wrt y       # mixed partial: 6*x*y**2
      symdiff diff "sin(x)" --wrt x --order 2        # -sin(x)
      symdiff diff "mean((X @ w - y)**2)" --shape X=n,d --shape w=d --shape y=n --wrt w
    """
    from ..calculus import api as calculus
    from ..explanations.report import diff_report

    if tensor_cli.wants_tensor(shape, model_path):
        tensor_cli.reject(order=order != 1)
        return tensor_cli.grad(read_expression(expr), shape, model_path, split_names(wrt), fmt, at)
    expression = calculus.as_expr(read_expression(expr))
    derivation = calculus.derive(expression, split_names(wrt), order, simplify=not no_simplify)
    value = point = reason = None
    if at is not None:
        point = calculus.check_point_names(at, expression)
        value, reason = calculus.try_evaluate(derivation.result, point)
    report = diff_report(
        expression, derivation.variables, order, derivation.result, value, point, reason
    )
    emit(report, fmt)


@cli.command(name="grad", **EXPRESSION_FIRST)
@click.argument("expr", required=False)
@click.option("--wrt", multiple=True, help=_WRT_HELP + " Default: all, sorted.")
@click.option("--at", "at", default=None, help=_AT_HELP)
@click.option(
    "--direction",
    default=None,
    help="Also the directional derivative along this vector (normalised), e.g. 2,3,-1.",
)
@click.option("--no-simplify", is_flag=True, help="Keep the raw chain-rule form.")
@tensor_cli.tensor_options
@format_option()
def grad_command(
    expr: str | None,
    wrt: tuple[str, ...],
    at: str | None,
    direction: str | None,
    no_simplify: bool,
    fmt: str,
    shape: tuple[str, ...] = (),
    model_path: str | None = None,
) -> None:
    """Gradient of EXPR: its partial derivatives ('-' reads standard input).

    \b
    Examples:
      symdiff grad "4*x**4*z**3"                         # 16*x**3*z**3, 12*x**4*z**2
      symdiff grad "x**2*y + z" --at x=1,y=2,z=0 --direction 2,3,-1
      symdiff grad "mean((X @ w - y)**2)" --shape X=n,d --shape w=d --shape y=n --wrt w
      symdiff grad --model mlp.toml
    """
    from ..calculus import api as calculus
    from ..explanations.report import gradient_report

    if tensor_cli.wants_tensor(shape, model_path):
        text = read_expression(expr) if expr is not None else None
        return tensor_cli.grad(text, shape, model_path, split_names(wrt), fmt, at, direction)
    if expr is None:
        raise click.UsageError("Missing argument 'EXPR'.")
    expression = calculus.as_expr(read_expression(expr))
    variables = calculus.resolve_variables(split_names(wrt), expression)
    grad = calculus.gradient(expression, variables, simplify=not no_simplify)
    point = calculus.check_point_names(at, expression) if at is not None else None
    values, reasons = _values_at(grad, point)
    directional = directional_value = unit = directional_reason = None
    if direction is not None:
        components = calculus.split_top_level(direction)
        unit = calculus.unit_vector(components)
        directional = calculus.directional_derivative(
            expression, components, variables, simplify=not no_simplify
        )
        if point is not None:
            directional_value, directional_reason = calculus.try_evaluate(directional, point)
    report = gradient_report(
        expression,
        variables,
        grad,
        values,
        point,
        directional,
        directional_value,
        unit,
        reasons,
        directional_reason,
    )
    emit(report, fmt)


def _values_at(
    entries: list[sp.Expr], point: dict[str, sp.Expr] | None
) -> tuple[list[sp.Expr | None] | None, list[str | None] | None]:
    """The entries' values at the point, and the reasons (None when every value is defined)."""
    from ..calculus import api as calculus

    if point is None:
        return None, None
    pairs = [calculus.try_evaluate(e, point) for e in entries]
    reasons = [reason for _, reason in pairs]
    return [value for value, _ in pairs], reasons if any(reasons) else None


@cli.command(name="jacobian", **EXPRESSION_FIRST)
@click.argument("exprs", nargs=-1, required=False)
@click.option("--wrt", multiple=True, help=_WRT_HELP + " Default: all, sorted.")
@click.option("--at", "at", default=None, help=_AT_HELP)
@click.option(
    "--direction",
    default=None,
    help='With --shape and --at: J u, the Jacobian times u, e.g. "w=[1,0]".',
)
@click.option("--no-simplify", is_flag=True, help="Keep the raw chain-rule form.")
@tensor_cli.tensor_options
@format_option()
def jacobian_command(
    exprs: tuple[str, ...],
    wrt: tuple[str, ...],
    at: str | None,
    direction: str | None,
    no_simplify: bool,
    fmt: str,
    shape: tuple[str, ...] = (),
    model_path: str | None = None,
) -> None:
    """Jacobian of several expressions: J[i, j] = d EXPR_i / d x_j.

    \b
    Example:
      symdiff jacobian "x*y" "x + y**2" --at x=1,y=2
      symdiff jacobian "sigmoid(X @ w)" --shape X=n,d --shape w=d --wrt w
      symdiff jacobian "X @ W" --shape X=2,2 --shape W=2,2 --wrt W \\
          --at "X=[[1,2],[3,4]],W=[[1,0],[0,1]]"
    """
    from ..calculus import api as calculus

    if tensor_cli.wants_tensor(shape, model_path):
        texts = tuple(read_expression(e) for e in exprs)
        return tensor_cli.jacobian_command(
            texts, shape, model_path, split_names(wrt), fmt, at, direction
        )
    tensor_cli.reject_direction(direction)
    if not exprs:
        raise click.UsageError("Missing argument 'EXPRS...'.")
    expressions = [calculus.as_expr(read_expression(e)) for e in exprs]
    variables = calculus.resolve_variables(split_names(wrt), *expressions)
    matrix = calculus.jacobian(expressions, variables, simplify=not no_simplify)
    _emit_matrix("jacobian", expressions, variables, matrix, at, fmt)


@cli.command(name="hessian", **EXPRESSION_FIRST)
@click.argument("expr", required=False)
@click.option("--wrt", multiple=True, help=_WRT_HELP + " Default: all, sorted.")
@click.option("--at", "at", default=None, help=_AT_HELP)
@click.option(
    "--direction",
    default=None,
    help='With --shape and --at: H u, the Hessian times u, e.g. "w=[1,0]".',
)
@click.option("--no-simplify", is_flag=True, help="Keep the raw chain-rule form.")
@tensor_cli.tensor_options
@format_option()
def hessian_command(
    expr: str | None,
    wrt: tuple[str, ...],
    at: str | None,
    direction: str | None,
    no_simplify: bool,
    fmt: str,
    shape: tuple[str, ...] = (),
    model_path: str | None = None,
) -> None:
    """Hessian of EXPR: H[i, j] = d2 EXPR / dx_i dx_j.

    \b
    Example:
      symdiff hessian "x**3*y + y**2" --at x=1,y=2
      symdiff hessian "mean(softplus(X @ w) - y*(X @ w))" --shape X=n,d --shape w=d \\
          --shape y=n --wrt w
    """
    from ..calculus import api as calculus

    if tensor_cli.wants_tensor(shape, model_path):
        text = read_expression(expr) if expr is not None else None
        return tensor_cli.hessian(text, shape, model_path, split_names(wrt), fmt, at, direction)
    tensor_cli.reject_direction(direction)
    if expr is None:
        raise click.UsageError("Missing argument 'EXPR'.")
    expression = calculus.as_expr(read_expression(expr))
    variables = calculus.resolve_variables(split_names(wrt), expression)
    matrix = calculus.hessian(expression, variables, simplify=not no_simplify)
    _emit_matrix("hessian", [expression], variables, matrix, at, fmt)


def _emit_matrix(
    kind: str,
    expressions: list[sp.Expr],
    variables: list[sp.Symbol],
    matrix: sp.Matrix,
    at: str | None,
    fmt: str,
) -> None:
    from ..calculus import api as calculus
    from ..explanations.report import matrix_report

    point = calculus.check_point_names(at, *expressions) if at is not None else None
    values, reasons = _values_at(list(matrix), point)
    cols = matrix.cols

    def rows(flat: list | None) -> list | None:
        return None if flat is None else [flat[i : i + cols] for i in range(0, len(flat), cols)]

    emit(
        matrix_report(kind, expressions, variables, matrix, rows(values), point, rows(reasons)), fmt
    )
