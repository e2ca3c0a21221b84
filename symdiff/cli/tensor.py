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
    at: str | None = None,
    direction: str | None = None,
) -> None:
    """``symdiff grad EXPR --shape ...``: matrix-form gradients with their shapes; with ``--at``
    their values, with ``--direction`` the directional derivative there."""
    from ..autodiff.reverse import tensor_gradient
    from ..explanations.tensor_report import tensor_gradient_report
    from ..explanations.tensor_values import gradient_values, with_values

    text, shapes, params = resolve(expr, shape, model_path, wrt)
    gradient = tensor_gradient(text, shapes, params)
    grads = gradient.as_dict()
    report = tensor_gradient_report(text, shapes, gradient.loss, grads, gradient.adjoints)
    if direction is not None and at is None:
        raise InputError("--direction with --shape/--model needs --at (the point)")
    if at is not None:
        point, toward = read_points(at, direction, shapes, gradient.loss, list(grads))
        rows = gradient_values(gradient.loss, grads, point, toward)
        report = with_values(report, point, rows, toward)
    emit(report, fmt)


def read_points(
    at: str, direction: str | None, shapes: dict[str, Shape], expression: Any, params: list[str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The ``--at`` values of every symbol of ``expression`` and the ``--direction`` values of
    some of the parameters (the others are 0), their named dimensions bound together."""
    from ..frontend.points import read_point
    from ..ir.nodes import variables

    names = [v.name for v in variables(expression)]
    dims: dict[str, int] = {}
    point = read_point(at, shapes, names, "--at", dims)
    toward = (
        None
        if direction is None
        else read_point(direction, shapes, params, "--direction", dims, every=False)
    )
    return point, toward


def hessian(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    fmt: str,
    at: str | None = None,
    direction: str | None = None,
) -> None:
    """``symdiff hessian EXPR --shape ...``: Hessian blocks as matrix formulas, else H v; with
    ``--at`` every block's value there, with ``--direction`` u also H u."""
    from ..autodiff.second import tensor_hessian
    from ..explanations.second_order import hessian_report
    from ..explanations.tensor_values import hessian_values, with_values

    text, shapes, params = resolve(expr, shape, model_path, wrt)
    second = tensor_hessian(text, shapes, params)
    report = hessian_report(text, shapes, second)
    if direction is not None and at is None:
        raise InputError("--direction with --shape/--model needs --at (the point)")
    if at is not None:
        wrt_nodes = second.gradient.wrt
        loss = second.gradient.loss
        point, toward = read_points(at, direction, shapes, loss, [p.name for p in wrt_nodes])
        rows = hessian_values(loss, wrt_nodes, second.directions, second.products, point, toward)
        report = with_values(report, point, rows, toward)
    emit(report, fmt)


def jacobian_command(
    exprs: tuple[str, ...],
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    fmt: str,
    at: str | None = None,
    direction: str | None = None,
) -> None:
    """``symdiff jacobian EXPR --shape ...``: the Jacobian's shape, vᵀJ as a matrix formula,
    J in index notation and as an einsum, and with ``--at`` its value at that point (with
    ``--direction`` u, also J u there)."""
    from ..autodiff.forward import jacobian
    from ..autodiff.reverse import vector_jacobian
    from ..explanations.tensor_report import jacobian_report

    if len(exprs) > 1:
        raise InputError("with --shape, give one tensor-valued expression")
    text, shapes, params = resolve(exprs[0] if exprs else None, shape, model_path, wrt)
    product = vector_jacobian(text, shapes, params)
    explicit = [jacobian(product.expression, p) for p in product.wrt]
    report = jacobian_report(text, shapes, product, explicit)
    if direction is not None and at is None:
        raise InputError("--direction with --shape/--model needs --at (the point)")
    emit(with_index_form(report, product, shapes, at, direction), fmt)


def with_index_form(
    report: Any, product: Any, shapes: dict[str, Shape], at: str | None, direction: str | None
) -> Any:
    """The Jacobian report followed by each J in index notation and as an einsum, and with
    ``--at`` J's value there (``explain.index_notation``), with ``--direction`` u also J u."""
    from ..explanations.index_notation import NoIndexForm, evaluate_jacobian, index_jacobian
    from ..explanations.report import Report
    from ..explanations.tensor_values import jvp_rows, point_line, values_of
    from ..frontend.points import compact
    from ..ir.nodes import format_shape, variables

    point = dims = toward = None
    if at is not None:
        names = [p.name for p in product.wrt]
        point, toward = read_points(at, direction, shapes, product.expression, names)
        dims = {}
        for leaf in variables(product.expression):
            for dim, size in zip(leaf.shape, point[leaf.name].shape, strict=True):
                if isinstance(dim, str):
                    dims[dim] = size
    lines, rows = [], []
    if point is not None:
        (value,) = values_of([product.expression], point)
        lines += [point_line(point), f"  f = {compact(value)}  {format_shape(value.shape)}"]
    for param in product.wrt:
        row: dict[str, Any] = {"wrt": param.name}
        try:
            jac = index_jacobian(product.expression, param)
        except NoIndexForm as exc:
            lines.append(f"J_{param.name}: no index form (no index rule for {exc})")
            rows.append(row)
            continue
        lines.append(f"J_{param.name}: {jac.index_text()}")
        lines.append(f"  = {jac.einsum_text()}    {format_shape(jac.shape)}")
        row.update(index=jac.index_text(), einsum=jac.einsum_text())
        if point is not None and dims is not None:
            value = evaluate_jacobian(jac, point, dims)
            lines.append(f"  at the point: J_{param.name} = {compact(value)}")
            row["value"] = value.tolist()
        rows.append(row)
    extra: dict[str, Any] = {}
    if point is not None and toward is not None:
        lines.append("along u: " + ", ".join(f"u_{n} = {compact(v)}" for n, v in toward.items()))
        ((label, formula, value),) = jvp_rows(product, point, toward)
        lines.append(f"  {label} = {formula}    {format_shape(value.shape)}")
        lines.append(f"  at the point: {label} = {compact(value)}")
        extra["jvp"] = {
            "direction": {n: v.tolist() for n, v in toward.items()},
            "formula": formula,
            "value": value.tolist(),
        }
    data = report.make_data
    return Report(
        report.plain + "\n" + "\n".join(lines),
        report.make_latex,
        lambda: {**data(), "index_form": rows, **extra},
    )


def steps(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    fmt: str,
    at: str | None = None,
) -> None:
    """``symdiff steps EXPR --shape ...``: the matrix chain rule node by node, with shapes;
    with ``--at`` the value of every node and adjoint at that point."""
    from ..autodiff.reverse import tensor_gradient
    from ..explanations.tensor_report import steps_report

    text, shapes, params = resolve(expr, shape, model_path, wrt)
    gradient = tensor_gradient(text, shapes, params)
    names = [p.name for p in gradient.wrt]
    report = steps_report(text, shapes, gradient, names)
    if at is not None:
        from ..explanations.report import Report
        from ..explanations.tensor_values import graph_report

        point, _ = read_points(at, None, shapes, gradient.loss, names)
        values = graph_report(text, gradient, point)
        lines = values.plain.splitlines()[1:]
        data, more = report.make_data, values.make_data
        report = Report(
            report.plain + "\nvalues " + "\n".join(lines),
            report.make_latex,
            lambda: {**data(), "values": more()},
        )
    emit(report, "text" if fmt == "markdown" else fmt)


def graph(
    exprs: tuple[str, ...],
    shape: tuple[str, ...],
    model_path: str | None,
    wrt: list[str] | None,
    at: str,
    mode: str,
    fmt: str,
) -> None:
    """``symdiff graph EXPR --shape ... --at ...``: the ξ tables of a tensor loss at a point."""
    from ..autodiff.reverse import tensor_gradient
    from ..explanations.tensor_values import graph_report

    if len(exprs) > 1:
        raise InputError("with --shape, give one scalar loss")
    if fmt not in ("text", "json"):
        raise InputError(f"--format {fmt} is not supported with --shape/--model (use text or json)")
    text, shapes, params = resolve(exprs[0] if exprs else None, shape, model_path, wrt)
    gradient = tensor_gradient(text, shapes, params)
    point, _ = read_points(at, None, shapes, gradient.loss, [p.name for p in gradient.wrt])
    emit(graph_report(text, gradient, point, mode), fmt)


def check(
    expr: str, shape: tuple[str, ...], model_path: str | None, wrt: str | None, answer: str
) -> Any:
    """``symdiff check EXPR --shape ... --answer ...``: the verdict on a matrix answer."""
    from ..explanations.tensor_check import check_tensor_answer

    text, shapes, params = resolve(expr, shape, model_path, [wrt] if wrt else None)
    if params and len(params) > 1:
        raise InputError("say which parameter the answer is a derivative by (use --wrt)")
    return check_tensor_answer(text, shapes, params[0] if params else None, answer)


def reject(**given: bool) -> None:
    """Options the tensor path does not support yet are an error, never silently ignored."""
    for option, present in given.items():
        if present:
            raise InputError(f"--{option.replace('_', '-')} is not supported with --shape/--model")


def reject_direction(direction: str | None) -> None:
    """``--direction`` of ``jacobian``/``hessian`` is a tensor option (J u, H u at --at)."""
    if direction is not None:
        raise InputError("--direction goes with --shape/--model and --at")


def generate(
    expr: str | None,
    shape: tuple[str, ...],
    model_path: str | None,
    params: list[str] | None,
    data: list[str] | None,
    name: str,
    templates: str | None,
    hessian: bool = False,
    backend: str = "numpy",
) -> str:
    """``symdiff codegen --shape``: the generated tensor module's source."""
    from ..codegen.tensor import generate as generate_tensor

    text, shapes, chosen, model = _resolve(expr, shape, model_path, params)
    if not chosen:
        raise InputError("say which symbols are parameters: --params W,b (or [params] in --model)")
    if data is None and model_path is not None:
        data = list(model.data) or None
    return generate_tensor(
        text, shapes, chosen, data, name=name, templates=templates, hessian=hessian,
        backend=backend,
    )  # fmt: skip


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
