"""Tensor losses -> a standalone NumPy module: the tensor front door of the one code generator.

Pipeline: parse with shapes -> reverse mode (``autodiff.reverse``), for the docstring's matrix
formulas -> ``program.differentiate`` (stability rewrites, reverse mode, lowering) ->
``assemble.render_module``, the same stages and template as per-sample losses. No diagonal
matrix is ever built and nothing loops over samples.
"""

from __future__ import annotations

import builtins
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..autodiff.reverse import TensorGradient, check_used, reverse_mode
from ..checks import check_name
from ..errors import InputError
from ..explanations.tensor_report import tensor_gradient_report
from ..frontend.tensor_parse import parse_tensor
from ..ir.nodes import Node, Shape, format_shape, variables, walk
from .assemble import (
    HESSIAN_LIMIT,
    ModuleText,
    check_user_names,
    render_module,
)
from .backends import Backend
from .backends import backend as find_backend
from .loading import load_generated
from .program import LossProgram, Namer, differentiate, emit, lower
from .scalar import escape_docstring
from .templating import template_source

# --------------------------------------------------------------------------- the module


@dataclass(frozen=True)
class TensorProgram:
    """A differentiated tensor loss ready to print: shapes, parameter order, gradient."""

    loss_text: str
    params: dict[str, Shape]
    data: dict[str, Shape]
    gradient: TensorGradient


def build_program(
    loss_text: str,
    shapes: Mapping[str, Shape],
    params: Sequence[str],
    data: Sequence[str] | None = None,
) -> TensorProgram:
    """Parse and differentiate ``loss_text``; data are the other symbols (or ``data``, ordered)."""
    loss = parse_tensor(loss_text, shapes)
    used = {v.name: v for v in variables(loss)}
    check_used(params, used, "parameter ")  # the rule of --wrt: unused is bad input
    param_nodes = [used[p] for p in params]
    if data is None:
        data = [n for n in shapes if n not in params and n in used]
        data += [n for n in used if n not in params and n not in data]
    missing = [n for n in used if n not in params and n not in data]
    if missing:
        raise InputError(f"symbol '{missing[0]}' is neither a parameter nor data")
    gradient = reverse_mode(loss, param_nodes)
    return TensorProgram(
        loss_text,
        {p: tuple(shapes.get(p, ())) for p in params},
        {d: tuple(shapes.get(d, ())) for d in data},
        gradient,
    )


def _escape(text: str) -> str:
    """User text made safe inside a triple-quoted docstring (whitespace runs become one space)."""
    return escape_docstring(" ".join(text.split()))


def generate(
    loss_text: str,
    shapes: Mapping[str, Shape],
    params: Sequence[str],
    data: Sequence[str] | None = None,
    *,
    name: str = "model",
    templates: str | Path | None = None,
    hessian: bool = False,
    backend: str = "numpy",
) -> str:
    """Source of a standalone module computing the loss and its gradient; with
    ``hessian``, also ``hvp(params, v, *data)`` and (for at most ``HESSIAN_LIMIT`` parameters)
    ``hessian(params, *data)``. ``backend``: ``numpy`` or ``array-api``."""
    check_name(name)
    chosen = find_backend(backend)
    check_user_names(list(params), "parameter name")
    if data is not None:
        check_user_names(list(data), "data name")
    program = build_program(loss_text, shapes, params, data)
    gradient = program.gradient
    loss_program = differentiate(gradient.loss, program.params, program.data, hvp=hessian)
    targets = tuple(
        sorted({n.args[0].name for n in walk(gradient.loss) if n.op == "softmax_cross_entropy"})
    )
    doc = _module_doc(name, loss_text, program, hessian, chosen)
    text = ModuleText(doc=doc, targets=targets)
    return render_module(loss_program, text, None if templates is None else str(templates), chosen)


#: What ``hessian=True`` adds to the module's interface.
SECOND_ORDER_INTERFACE = f"""\
hvp(params, v, *data) -> H v, the Hessian-vector product (v in the form of params).
hessian(params, *data) -> 2-D array in PARAMS order (at most {HESSIAN_LIMIT} parameters).
scipy.optimize.minimize(loss_and_grad, x0, args=data, jac=True, hessp=hvp,
    method="Newton-CG") works as is."""


def _module_doc(
    name: str,
    loss_text: str,
    program: TensorProgram,
    hessian: bool = False,
    backend: Backend | None = None,
) -> list[str]:
    """The docstring: the loss as typed and its gradients in matrix form."""
    backend = backend or find_backend("numpy")
    gradient = program.gradient
    report = tensor_gradient_report(
        loss_text,
        {**program.data, **program.params},
        gradient.loss,
        gradient.as_dict(),
        gradient.adjoints,
    )
    gradient_lines = [
        "    " + wrapped
        for line in report.text().splitlines()[2:]
        for wrapped in textwrap.wrap(
            escape_docstring(line),
            width=88,
            subsequent_indent="        ",
            break_on_hyphens=False,
            replace_whitespace=False,
            drop_whitespace=False,
        )
    ]
    return [
        f"{escape_docstring(name)}: a tensor loss and its gradient",
        "",
        f"Generated by symdiff {__version__}. Do not edit: regenerate with symdiff instead.",
        "",
        "Loss (scalar):",
        *("    " + line for line in textwrap.wrap("L = " + _escape(loss_text), width=88)),
        "",
        "Gradients (matrix form):",
        *gradient_lines,
        "",
        "Interface:",
        *("    " + line for line in backend.interface.splitlines()),
        *("    " + line for line in SECOND_ORDER_INTERFACE.splitlines() if hessian),
        backend.requirement,
    ]


def compile(  # noqa: A001 - the public name mirrors symdiff.compile
    loss_text: str,
    shapes: Mapping[str, Shape],
    params: Sequence[str],
    data: Sequence[str] | None = None,
    *,
    name: str = "model",
    templates: str | Path | None = None,
    hessian: bool = False,
    backend: str = "numpy",
) -> types.ModuleType:
    """The generated module, built in memory (same functions as the file ``generate`` writes)."""
    source = generate(
        loss_text, shapes, params, data, name=name, templates=templates, hessian=hessian,
        backend=backend,
    )  # fmt: skip
    return load_generated(source, name)


def evaluate(
    node: Node, values: Mapping[str, object], known: Mapping[str, int] | None = None
) -> object:
    """The value of a tensor expression for arrays ``values`` (name -> array), via NumPy.

    Dimensions are read from the arrays' shapes (and ``known``, for an expression such as an
    adjoint ``broadcast_to(1, (n,))`` whose inputs do not fix them). Used by ``--at`` and to
    check printed formulas.
    The expression is printed by the same NumPy printer as generated modules and run as
    generated code (every name in it passed the parser's name check).
    """
    return evaluator([node], values, known)(values)[0]


def evaluator(
    nodes: Sequence[Node], values: Mapping[str, object], known: Mapping[str, int] | None = None
) -> Callable[[Mapping[str, object]], list[object]]:
    """``evaluate`` of several expressions compiled once, for arrays of the shapes of ``values``:
    the returned function maps such arrays to the expressions' values (one pass, shared nodes
    computed once)."""
    import numpy as np

    lowered = lower(list(nodes))
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    dims: dict[str, int] = dict(known or {})
    for leaf in variables(lowered):
        if leaf.name not in arrays:
            raise InputError(f"no value for '{leaf.name}'")
        actual = arrays[leaf.name].shape
        if len(actual) != leaf.ndim:
            raise InputError(f"'{leaf.name}' needs shape {format_shape(leaf.shape)}, got {actual}")
        for declared, size in zip(leaf.shape, actual, strict=True):
            if isinstance(declared, int) and declared != size:
                raise InputError(
                    f"'{leaf.name}' needs shape {format_shape(leaf.shape)}, got {actual}"
                )
            if dims.setdefault(str(declared), size) != size:
                raise InputError(
                    f"'{leaf.name}' has shape {actual}; {declared} = {dims[str(declared)]}"
                )
    for each in walk(lowered):
        needed = [str(s) for s in each.value.free_symbols] if each.op == "const" else []
        needed += (
            [d for d in each.shape if isinstance(d, str)]
            if each.op in ("eye", "broadcast_to")
            else []
        )
        for dim in needed:
            if dim not in dims:
                raise InputError(f"dimension '{dim}' is not fixed by this expression's inputs")
    # the code names dimensions as typed: one that is ours (np, a builtin, _...) is refused
    check_user_names([d for d in dims if d.isidentifier()], "dimension name")
    inputs = {leaf.name: f"_in_{leaf.name}" for leaf in variables(lowered)}
    program = LossProgram(lowered[0], (), (), {}, {}, None, (), lowered[0], ())
    namer = Namer(set(inputs.values()) | set(dims) | set(dir(builtins)) | {"np"})
    body = emit(lowered, program, namer, inputs)
    lines = [f"    {name} = _values[{leaf!r}]" for leaf, name in inputs.items()]
    lines += [f"    {d} = _dims[{d!r}]" for d in dims if d.isidentifier()]
    lines += [f"    {line}" for line in body.lines]
    lines += [f"    return [{', '.join(body.results)}]"]
    helpers = "\n\n".join(template_source(f"helpers/{h}.py.jinja") for h in sorted(body.helpers))
    source = helpers + "\n\ndef _evaluate(_values, _dims):\n" + "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {"np": np}  # filled by the generated code
    exec(builtins.compile(source, "<symdiff evaluate>", "exec"), namespace)  # noqa: S102
    compiled = namespace["_evaluate"]

    def run(point: Mapping[str, object]) -> list[object]:
        given = {k: np.asarray(v, dtype=np.float64) for k, v in point.items()}
        return list(compiled(given, dims))

    return run


def initial_params(module: types.ModuleType, seed: int = 0) -> dict[str, object]:
    """Starting values for training: He-scaled normal matrices (std sqrt(2/fan_in)), zero
    vectors and scalars (a network started at all zeros never breaks its symmetry)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(scale=(2.0 / shape[0]) ** 0.5, size=shape)
        if len(shape) == 2
        else np.zeros(shape)
        for name, shape in module.PARAMS
    }
