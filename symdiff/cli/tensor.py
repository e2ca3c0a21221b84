"""The ``--shape`` / ``--model`` path of ``diff``, ``grad``, ``jacobian``, ``steps``, ``fit``:
tensor losses with declared shapes. Each handler parses options, calls the library, prints.

The library is imported inside the handlers, so the commands' ``--help`` (and scalar ``diff``)
start without it (``symdiff.cli.COMMANDS``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import InputError
from .common import emit, read_expression

if TYPE_CHECKING:
    from ..frontend.shapes import TensorModel
    from ..ir.nodes import Shape

F = TypeVar("F", bound=Callable[..., Any])

SHAPE_HELP = "Declare a tensor: NAME=DIMS, e.g. X=n,d (repeat). Undeclared names are scalars."
MODEL_HELP = 'A TOML model file: loss = "...", [params] and [data] tables of name = shape.'
#: ``fit``: the parameters of a tensor model must fit in this many bytes as float64.
PARAMETER_LIMIT = 1 << 30  # 1 GiB (symdiff.inputs.GIB, which imports NumPy)


def tensor_options(function: F) -> F:
    """Add --shape (repeatable) and --model to a command."""
    function = click.option("--model", "model_path", default=None, help=MODEL_HELP)(function)
    return click.option("--shape", "shape", multiple=True, help=SHAPE_HELP)(function)


def wants_tensor(shape: tuple[str, ...], model_path: str | None) -> bool:
    return bool(shape) or model_path is not None


def resolve(
    expr: str | None, shape: tuple[str, ...], model_path: str | None, wrt: list[str] | None
) -> tuple[str, dict[str, Shape], list[str] | None]:
    """(loss text, shapes, parameters) from EXPR + --shape, or from --model (EXPR optional)."""
    text, shapes, params, _model = _resolve(expr, shape, model_path, wrt)
    return text, shapes, params


def _resolve(
    expr: str | None, shape: tuple[str, ...], model_path: str | None, wrt: list[str] | None
) -> tuple[str, dict[str, Shape], list[str] | None, TensorModel]:
    """``resolve`` and the model file it read (read once)."""
    from ..frontend.shapes import TensorModel, load_model, shapes_from_options

    model = load_model(model_path) if model_path else TensorModel(expr or "")
    if expr and model_path and expr != model.loss:
        raise InputError("give the loss either as EXPR or in the --model file, not both")
    text = expr or model.loss
    if not text:
        raise InputError("missing EXPR")
    shapes = {**model.shapes}
    for name, declared in shapes_from_options(shape).items():
        if name in shapes and shapes[name] != declared:
            raise InputError(f"shape of '{name}' declared twice")
        shapes[name] = declared
    return text, shapes, wrt or (list(model.params) or None), model


def grad(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    fmt: str,
) -> None:
    """``symdiff grad EXPR --shape ...``: matrix-form gradients with their shapes."""
    from ..autodiff.reverse import tensor_gradient
    from ..explain.tensor_report import tensor_gradient_report

    text, shapes, params = resolve(expr, shape, model_path, wrt)
    gradient = tensor_gradient(text, shapes, params)
    grads = gradient.as_dict()
    emit(tensor_gradient_report(text, shapes, gradient.loss, grads, gradient.adjoints), fmt)


def hessian(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    fmt: str,
) -> None:
    """``symdiff hessian EXPR --shape ...``: Hessian blocks as matrix formulas, else H v."""
    from ..autodiff.second import tensor_hessian
    from ..explain.second_order import hessian_report

    text, shapes, params = resolve(expr, shape, model_path, wrt)
    emit(hessian_report(text, shapes, tensor_hessian(text, shapes, params)), fmt)


def jacobian_command(
    exprs: tuple[str, ...],
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    fmt: str,
) -> None:
    """``symdiff jacobian EXPR --shape ...``: the Jacobian's shape and vᵀJ as a matrix formula."""
    from ..autodiff.forward import jacobian
    from ..autodiff.reverse import vector_jacobian
    from ..explain.tensor_report import jacobian_report

    if len(exprs) > 1:
        raise InputError("with --shape, give one tensor-valued expression")
    text, shapes, params = resolve(exprs[0] if exprs else None, shape, model_path, wrt)
    product = vector_jacobian(text, shapes, params)
    explicit = [jacobian(product.expression, p) for p in product.wrt]
    emit(jacobian_report(text, shapes, product, explicit), fmt)


def steps(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    fmt: str,
) -> None:
    """``symdiff steps EXPR --shape ...``: the matrix chain rule node by node, with shapes."""
    from ..autodiff.reverse import tensor_gradient
    from ..explain.tensor_report import steps_report

    text, shapes, params = resolve(expr, shape, model_path, wrt)
    gradient = tensor_gradient(text, shapes, params)
    names = [p.name for p in gradient.wrt]
    emit(steps_report(text, shapes, gradient, names), "text" if fmt == "markdown" else fmt)


def reject(**given: bool) -> None:
    """Options the tensor path does not support yet are an error, never silently ignored."""
    for option, present in given.items():
        if present:
            raise InputError(f"--{option.replace('_', '-')} is not supported with --shape/--model")


def generate(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    params: list[str] | None,
    data: list[str] | None,
    name: str,
    templates: str | None,
    hessian: bool = False,
) -> str:
    """``symdiff codegen --shape``: the generated tensor module's source."""
    from ..codegen.tensor import generate as generate_tensor

    text, shapes, chosen, model = _resolve(expr, shape, model_path, params)
    if not chosen:
        raise InputError("say which symbols are parameters: --params W,b (or [params] in --model)")
    if data is None and model_path is not None:
        data = list(model.data) or None
    return generate_tensor(
        text, shapes, chosen, data, name=name, templates=templates, hessian=hessian
    )


def compile_for_fit(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    params: list[str],
    data: list[str],
    hessian: bool = False,
) -> tuple[Any, list[str], list[str]]:
    """``symdiff fit --shape``: the compiled tensor module, its parameter and data names (with
    ``hessian``, the module has hvp for a second-order optimizer)."""
    from ..codegen.tensor import compile as compile_tensor
    from ..inputs import format_size

    text = read_expression(expr) if expr is not None else None
    loss, shapes, chosen, model = _resolve(text, shape, model_path, params or None)
    if not chosen:
        raise InputError("say which symbols are parameters: --params W,b (or [params] in --model)")
    if not data and model_path is not None:
        data = list(model.data)
    module = compile_tensor(loss, shapes, chosen, data or None, hessian=hessian)
    size = 8 * sum(math.prod(dims) for _, dims in module.PARAMS)
    if size > PARAMETER_LIMIT:
        raise InputError(
            f"the parameters need {format_size(size)} as float64, more than the limit of "
            f"{format_size(PARAMETER_LIMIT)} for training"
        )
    return module, list(chosen), list(module.DATA)


def initial_params(module: Any, seed: int) -> dict[str, Any]:
    from ..codegen.tensor import initial_params as initial

    return initial(module, seed)
