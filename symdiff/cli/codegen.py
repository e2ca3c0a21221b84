"""``symdiff codegen`` (write a NumPy loss-and-gradient module) and ``symdiff gradcheck``.

The code generators are imported when a command runs, not for its ``--help``."""

from __future__ import annotations

from pathlib import Path

import click

from ..outputs import STDOUT, check_output, write_output
from . import cli
from . import tensor as tensor_cli
from .common import EXPRESSION_FIRST, NameChoice, read_expression, split_names

#: ``symdiff.codegen.scalar.REDUCTIONS`` (a test checks), without importing the code generator
REDUCTIONS = ("mean", "sum")
#: ``symdiff.codegen.backends.BACKEND_NAMES`` (a test checks), the default first
BACKENDS = ("numpy", "array-api")


@cli.command(name="codegen", **EXPRESSION_FIRST)
@click.argument("loss", required=False)
@click.option("--params", multiple=True, help="Parameters, e.g. b0,b1 (required).")
@click.option("--data", multiple=True, help="Data arrays (one value per sample), e.g. x,y.")
@click.option(
    "--reduce",
    type=NameChoice(REDUCTIONS, "reduction"),
    default="mean",
    show_default=True,
    help="Fold the per-sample losses.",
)
@click.option("--name", default="model", show_default=True, help="Name of the model/module.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the module to this file (atomically); '-' or none: standard output.",
)
@click.option("--templates", default=None, help="Directory with templates that override ours.")
@click.option(
    "--hessian",
    is_flag=True,
    help="Also generate hessian(params, *data) (and hvp(params, v, *data) with --shape).",
)
@click.option(
    "--backend",
    type=NameChoice(BACKENDS, "backend"),
    default="numpy",
    show_default=True,
    help="numpy: a NumPy-only module; array-api: runs on any array API library "
    "(PyTorch, CuPy, JAX, ...) through array-api-compat.",
)
@tensor_cli.tensor_options
def codegen_command(
    loss: str,
    params: tuple[str, ...],
    data: tuple[str, ...],
    reduce: str,
    name: str,
    output: str | None,
    templates: str | None,
    hessian: bool,
    backend: str,
    shape: tuple[str, ...] = (),
    model_path: str | None = None,
) -> None:
    """Generate a standalone module for the per-sample LOSS ('-' reads standard input).

    The module has PARAMS, DATA, loss, grad, loss_and_grad (and hessian with --hessian;
    tensor modules also hvp).

    \b
    Examples:
      symdiff codegen "(b0 + b1*x - y)**2" --params b0,b1 --data x,y -o model.py
      symdiff codegen "-y*log(sigmoid(b0 + b1*x)) - (1-y)*log(1 - sigmoid(b0 + b1*x))" \\
          --params b0,b1 --data x,y --name logistic -o logistic.py
      symdiff codegen "mean((X @ w - y)**2)" --shape X=n,3 --shape w=3 --shape y=n \\
          --params w --data X,y -o least_squares.py
    """
    inputs = _inputs(model_path, templates)
    if output is not None:  # before the work: a path that cannot be written fails first
        check_output(output, inputs, option="-o", dash="stdout")
    if tensor_cli.wants_tensor(shape, model_path):
        text = read_expression(loss) if loss is not None else None
        source = tensor_cli.generate(
            text, shape, model_path, split_names(params), split_names(data), name, templates,
            hessian, backend,
        )  # fmt: skip
    elif loss is None or not params:
        raise click.UsageError(
            "Missing argument 'LOSS'." if loss is None else "Missing option '--params'."
        )
    else:
        from ..codegen.scalar import generate

        source = generate(
            read_expression(loss),
            split_names(params) or [],
            split_names(data),
            reduce=reduce,
            name=name,
            hessian=hessian,
            templates=templates,
            backend=backend,
        )
    if output is None or output == STDOUT:
        click.echo(source, nl=False)
        return
    write_output(output, source, inputs, option="-o", dash="stdout")
    click.echo(f"wrote {output}", err=True)


def _inputs(model_path: str | None, templates: str | None) -> list[tuple[str, str | None]]:
    """The files codegen reads, which -o must not name: the --model file and the templates."""
    read: list[tuple[str, str | None]] = [("--model", model_path)]
    if templates is not None and Path(templates).is_dir():
        read += [("--templates", str(path)) for path in sorted(Path(templates).rglob("*.jinja"))]
    return read


@cli.command(name="gradcheck")
@click.argument("module", type=click.Path(dir_okay=False))
@click.option("--points", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Random samples per data array.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="Spread of random parameters."
)
@click.option("--tol", type=float, default=1e-5, show_default=True, help="Largest error allowed.")
def gradcheck_command(
    module: str, points: int, samples: int, seed: int, scale: float, tol: float
) -> None:
    """Check MODULE's gradient against central finite differences; exit 1 when it fails.

    \b
    Example:
      symdiff gradcheck model.py --points 5
    """
    from ..codegen.gradcheck import gradcheck

    result = gradcheck(
        module, points=points, samples=samples, seed=seed, scale=scale, tolerance=tol
    )
    click.echo(f"gradcheck {module}: {result.summary()}")
    if not result.passed:
        raise click.exceptions.Exit(1)
