"""Tensor losses -> a standalone NumPy module: ``loss``, ``grad`` and ``loss_and_grad``.

Pipeline: parse with shapes -> reverse mode (``tensor_rules``) -> lower the few composite
operations into stable NumPy primitives (``LOWERINGS``: ``log_softmax(Z) = Z - logsumexp(Z)``,
``softmax(Z) = exp(log_softmax(Z))``, fused cross-entropy) -> name every node the loss and
gradients share (the forward pass is computed once) -> print NumPy with matmul and
broadcasting -> render ``templates/tensor_module.py.jinja``. No diagonal matrix is ever built and
nothing loops over samples.
"""

from __future__ import annotations

import builtins
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from . import __version__
from .codegen import escape_docstring, load_generated
from .data import write_atomic
from .errors import InputError
from .parse import check_name
from .templating import render as render_template
from .templating import template_source
from .tensor import (
    Model,
    Node,
    Shape,
    const,
    dim_expr,
    format_shape,
    is_integer_shape,
    make_node,
    parse_tensor,
    var,
    variables,
    walk,
)
from .tensor_print import (
    ATOM,
    MUL,
    NEG,
    POSTFIX,
    Printed,
    TextPrinter,
    gradient_report,
    shared_names,
)
from .tensor_rules import TensorGradient, reverse_mode

TEMPLATE_NAME = "tensor_module.py.jinja"
HELPERS_NAME = "tensor_helpers.py.jinja"  # plain Python, included by the module template

#: Names the generated module defines or uses; user symbols may not take them.
RESERVED = frozenset(
    {
        "np",
        "PARAMS",
        "DATA",
        "DATA_SHAPES",
        "loss",
        "grad",
        "loss_and_grad",
        "params",
        "values",
        "dims",
        "flat",
        "_SHAPES",
        "_SIZES",
        "_sigmoid",
        "_logsumexp",
        "_bind",
        "_unpack",
        "_pack",
        "L",
    }
)

# --------------------------------------------------------------------------- lowering

Lowering = Callable[[Node, tuple[Node, ...]], Node]
LOWERINGS: dict[str, Lowering] = {}


def lowering(op: str) -> Callable[[Lowering], Lowering]:
    """Register how ``op`` is computed from NumPy primitives."""

    def register(rule: Lowering) -> Lowering:
        LOWERINGS[op] = rule
        return rule

    return register


def _raw(op: str, args: Sequence[Node], attrs: tuple = (), shape: Shape | None = None) -> Node:
    return make_node(op, tuple(args), attrs, args[0].shape if shape is None else shape)


@lowering("log_softmax")
def _lower_log_softmax(node: Node, args: tuple[Node, ...]) -> Node:
    """log_softmax(Z) = Z - logsumexp(Z, axis, keepdims)."""
    (z,) = args
    (axis,) = node.attrs
    shape = tuple(1 if axis is None or i == axis else d for i, d in enumerate(z.shape))
    lse = _raw("logsumexp", [z], (axis, True), shape)
    minus = _raw("mul", [const(-1), lse], (), shape)
    return _raw("add", [z, minus], (), z.shape)


@lowering("softmax")
def _lower_softmax(node: Node, args: tuple[Node, ...]) -> Node:
    """softmax(Z) = exp(log_softmax(Z)) (shares log_softmax with the cross-entropy)."""
    return _raw("exp", [_lower_log_softmax(node, args)])


@lowering("softmax_cross_entropy")
def _lower_softmax_cross_entropy(node: Node, args: tuple[Node, ...]) -> Node:
    """cross_entropy(Y, softmax(Z)) = -sum(Y * log_softmax(Z)) / n."""
    targets, logits = args
    rows = dim_expr(targets.shape[0]) if targets.ndim == 2 else sp.Integer(1)
    last = logits.ndim - 1
    log_p = _lower_log_softmax(make_node("log_softmax", (logits,), (last,), logits.shape), args[1:])
    total = _raw("sum", [_raw("mul", [targets, log_p])], (None, False), ())
    return _raw("mul", [const(-1 / rows), total], (), ())


def lower(roots: Sequence[Node]) -> list[Node]:
    """The roots with every composite operation replaced by its NumPy lowering (memoised)."""
    memo: dict[Node, Node] = {}
    for node in walk(list(roots)):
        args = tuple(memo[a] for a in node.args)
        rule = LOWERINGS.get(node.op)
        if rule is not None:
            memo[node] = rule(node, args)
        elif args == node.args:
            memo[node] = node
        else:
            memo[node] = make_node(node.op, args, node.attrs, node.shape)
    return [memo[r] for r in roots]


# --------------------------------------------------------------------------- NumPy printer

_NUMPY_CALLS = {
    "exp": "np.exp",
    "log": "np.log",
    "tanh": "np.tanh",
    "sqrt": "np.sqrt",
    "abs": "np.abs",
    "sign": "np.sign",
    "sigmoid": "_sigmoid",
    "outer": "np.outer",
    "trace": "np.trace",
}


class NumpyPrinter(TextPrinter):
    """NumPy source for a node; shared nodes print as their temporary's name."""

    def scale(self, c: sp.Expr, x: Node) -> Printed:
        numerator, denominator = sp.fraction(c)
        inner, precedence = self.visit(x)
        if precedence < POSTFIX:
            inner = f"({inner})"
        if c == -1:
            return f"-{inner}", NEG
        if abs(numerator) == 1 and denominator != 1:
            sign = "-" if numerator == -1 else ""
            return f"{sign}{inner} / {self.number(denominator, strict=True)}", MUL
        return f"{self.number(c)} * {inner}", MUL

    def number(self, value: sp.Expr, strict: bool = False) -> str:
        text, precedence = self.op_const(const(value))
        return f"({text})" if precedence < MUL or (strict and precedence == MUL) else text

    def op_const(self, node: Node) -> Printed:
        value = node.value
        if not value.free_symbols and not value.is_Rational:
            return repr(float(value)), ATOM if float(value) >= 0 else NEG
        return super().op_const(node)

    def function(self, node: Node, name: str, options: Sequence[str] = ()) -> Printed:
        return super().function(node, _NUMPY_CALLS.get(name, name), options)

    def op_relu(self, node: Node) -> Printed:
        return f"np.maximum({self.visit(node.args[0])[0]}, 0.0)", ATOM

    def op_softplus(self, node: Node) -> Printed:
        return f"np.logaddexp(0.0, {self.visit(node.args[0])[0]})", ATOM

    def op_heaviside(self, node: Node) -> Printed:
        return f"({self.wrap(node.args[0], MUL)} > 0)", ATOM

    def op_sum(self, node: Node) -> Printed:
        axis, keepdims = node.attrs
        options = [] if axis is None else [f"axis={axis}"]
        return self.call(
            "np.sum",
            [self.visit(node.args[0])[0]],
            options + (["keepdims=True"] if keepdims else []),
        ), ATOM

    def op_logsumexp(self, node: Node) -> Printed:
        axis, keepdims = node.attrs
        return self.call(
            "_logsumexp", [self.visit(node.args[0])[0]], [f"axis={axis}", f"keepdims={keepdims}"]
        ), ATOM

    def op_expand_dims(self, node: Node) -> Printed:
        return f"np.expand_dims({self.visit(node.args[0])[0]}, {node.attrs[0]})", ATOM

    def op_broadcast_to(self, node: Node) -> Printed:
        shape = "(" + "".join(f"{d}, " for d in node.shape) + ")"
        return f"np.broadcast_to({self.visit(node.args[0])[0]}, {shape}).copy()", ATOM

    def op_eye(self, node: Node) -> Printed:
        return f"np.eye({node.attrs[0]})", ATOM


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
    for name in params:
        if name not in used and name not in shapes:
            raise InputError(f"parameter '{name}' does not appear in the loss")
    param_nodes = [used.get(p, var(p, shapes.get(p, ()))) for p in params]
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


def _check_names(program: TensorProgram) -> None:
    for name in [*program.params, *program.data]:
        if name in RESERVED or name.startswith("_"):
            raise InputError(f"name '{name}' is reserved in generated code; rename it")
    for name, shape in program.params.items():
        if not is_integer_shape(shape):
            raise InputError(
                f"parameter '{name}' has shape {format_shape(shape)}: generated code needs "
                "integer sizes for parameters (e.g. --shape W1=64,32)"
            )
    dims = {d for s in program.data.values() for d in s if isinstance(d, str)}
    clash = dims & (RESERVED | set(program.params) | set(program.data))
    if clash:
        raise InputError(f"dimension name '{sorted(clash)[0]}' is reserved or used as a symbol")


def _body(
    roots: Sequence[Node],
    names: Mapping[Node, str],
    result: str,
    order: Sequence[str],
) -> list[str]:
    """Lines computing ``roots``: inputs, dimensions, one assignment per named node, return."""
    printer = NumpyPrinter(names)
    nodes = walk(list(roots))
    inputs = sorted((v.name for v in nodes if v.op == "var"), key=list(order).index)
    lines = [f'{name} = values["{name}"]' for name in inputs]
    dims: dict[str, None] = {}
    for node in nodes:
        if node.op == "const":
            dims.update((s.name, None) for s in sorted(node.value.free_symbols, key=str))
        if node.op in ("broadcast_to", "eye"):
            dims.update((d, None) for d in node.shape if isinstance(d, str))
    lines += [f'{d} = dims["{d}"]' for d in dims]
    for node in nodes:
        if node in names and node.op not in ("var", "const"):
            comment = f"  # {format_shape(node.shape)}"
            lines.append(f"{names[node]} = {printer(node)}{comment}")
    lines.append(result)
    return lines


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
) -> str:
    """Source of a standalone NumPy module computing the loss and its gradient."""
    program = build_program(loss_text, shapes, params, data)
    _check_names(program)
    gradient = program.gradient
    grads = list(gradient.gradients)
    lowered = lower([gradient.loss, *grads])
    loss_node, grad_nodes = lowered[0], lowered[1:]
    user_names = frozenset([*program.params, *program.data]) | RESERVED
    grad_names = [f"d{p}" if f"d{p}" not in user_names else f"grad_{p}" for p in program.params]
    names = shared_names(loss_node, lowered, None, user_names | set(grad_names))
    root_names = dict(names)
    for node, grad_name in zip(grad_nodes, grad_names, strict=True):
        if node not in root_names and node.op not in ("var", "const"):
            root_names[node] = grad_name
    printer = NumpyPrinter(root_names)
    grad_refs = ", ".join(printer.visit(g)[0] for g in grad_nodes)
    pack = f"_pack(({grad_refs}{',' if len(grad_nodes) == 1 else ''}), flat)"
    loss_value = f"float({NumpyPrinter(names).visit(loss_node)[0]})"
    data_names = list(program.data)
    targets = tuple(
        sorted({n.args[0].name for n in walk(gradient.loss) if n.op == "softmax_cross_entropy"})
    )
    inputs = [*data_names, *program.params]
    check_name(name)
    report = gradient_report(
        loss_text,
        {**program.data, **program.params},
        gradient.loss,
        gradient.as_dict(),
        gradient.adjoints,
    )
    gradient_lines = [
        wrapped
        for line in report.text.splitlines()[2:]
        for wrapped in textwrap.wrap(
            escape_docstring(line),
            width=88,
            subsequent_indent="        ",
            break_on_hyphens=False,
            replace_whitespace=False,
            drop_whitespace=False,
        )
    ]
    return render_template(
        TEMPLATE_NAME,
        dict(
            title=f"{name}: a tensor loss and its gradient",
            version=__version__,
            reduction="scalar",
            loss_text="\n    ".join(textwrap.wrap(_escape(loss_text), width=88)),
            gradient_lines=gradient_lines,
            data_signature=", ".join(data_names) if data_names else "*data",
            data_tuple=(", ".join(data_names) + ("," if len(data_names) == 1 else ""))
            if data_names
            else "data",
            params_literal=repr(tuple((p, tuple(s)) for p, s in program.params.items())),
            data_literal=repr(tuple(data_names)),
            data_shapes_literal=repr(tuple((d, tuple(s)) for d, s in program.data.items())),
            targets_literal=repr(targets),
            loss_body=_body([loss_node], names, f"return {loss_value}", inputs),
            grad_body=_body(grad_nodes, root_names, f"return {pack}", inputs),
            loss_and_grad_body=_body(
                [loss_node, *grad_nodes], root_names, f"return {loss_value}, {pack}", inputs
            ),
        ),
        templates,
    )


def compile(  # noqa: A001 - the public name mirrors symdiff.compile
    loss_text: str,
    shapes: Mapping[str, Shape],
    params: Sequence[str],
    data: Sequence[str] | None = None,
    *,
    name: str = "model",
    templates: str | Path | None = None,
) -> types.ModuleType:
    """The generated module, built in memory (same functions as the file ``generate`` writes)."""
    source = generate(loss_text, shapes, params, data, name=name, templates=templates)
    return load_generated(source, name)


def compile_model(model: Model, *, name: str = "model") -> types.ModuleType:
    """``compile`` for a TOML model: parameters from ``[params]``, data from ``[data]``."""
    return compile(
        model.loss, model.shapes, list(model.params), list(model.data) or None, name=name
    )


def write_module(source: str, path: str | Path) -> None:
    """Write atomically: a temporary file in the same directory, then rename."""
    write_atomic(path, source.encode("utf-8"))


def evaluate(node: Node, values: Mapping[str, object]) -> object:
    """The value of a tensor expression for arrays ``values`` (name -> array), via NumPy.

    Dimensions are read from the arrays' shapes. Used by ``--at`` and to check printed formulas.
    """
    import numpy as np

    (lowered,) = lower([node])
    names = shared_names(lowered, [lowered], None, frozenset(values) | RESERVED)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    dims: dict[str, int] = {}
    for leaf in variables(lowered):
        if leaf.name not in arrays:
            raise InputError(f"no value for '{leaf.name}'")
        actual = arrays[leaf.name].shape
        if len(actual) != leaf.ndim:
            raise InputError(f"'{leaf.name}' needs shape {format_shape(leaf.shape)}, got {actual}")
        for declared, size in zip(leaf.shape, actual, strict=True):
            if dims.setdefault(str(declared), size) != size:
                raise InputError(f"'{leaf.name}' has shape {actual}; {declared} = {dims[declared]}")
    order = [v.name for v in variables(lowered)]
    for node in walk(lowered):
        needed = [str(s) for s in node.value.free_symbols] if node.op == "const" else []
        needed += (
            [d for d in node.shape if isinstance(d, str)]
            if node.op in ("eye", "broadcast_to")
            else []
        )
        for dim in needed:
            if dim not in dims:
                raise InputError(f"dimension '{dim}' is not fixed by this expression's inputs")
    source = "\n".join(
        ["def _evaluate(values, dims):"]
        + ["    " + line for line in _body([lowered], names, "", order)[:-1]]
        + [f"    return {NumpyPrinter(names).visit(lowered)[0]}"]
    )
    namespace: dict[str, object] = {"np": np}
    helpers = template_source(HELPERS_NAME)
    # generated code only: every name in it came through the tensor parser's check_name
    exec(builtins.compile(helpers + source, "<symdiff evaluate>", "exec"), namespace)  # noqa: S102
    return namespace["_evaluate"](arrays, dims)  # type: ignore[operator]


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
