"""A differentiated loss rendered as a standalone NumPy module, and loaded as a module object.

One template (``templates/module.py.jinja``) serves every loss. The functions' bodies come from
:func:`symdiff.program.emit`; this stage adds the prologue that reads the parameters and data,
the return statements, and the module constants, then renders and checks the source.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from .. import __version__
from ..checks import check_name
from ..errors import InputError
from ..ir.nodes import Node, Shape, format_shape
from .backends import BACKENDS, NUMPY_INTERFACE, Backend
from .numpy_print import format_names
from .program import BLOCK, LossProgram, Namer, emit
from .templating import render

#: The template every module is rendered from.
TEMPLATE = "module.py.jinja"

#: Names the generated module defines or its functions use; no user name may be one of them
#: (nor a Python builtin, nor a name starting with '_').
RESERVED_NAMES: frozenset[str] = frozenset(
    {
        "np",
        "numpy",
        "loss",
        "grad",
        "loss_and_grad",
        "hessian",
        "hvp",
        "PARAMS",
        "DATA",
        "DATA_SHAPES",
        "REDUCE",
        "TARGETS",
        "BLOCK",
        "SYMDIFF_VERSION",
        "params",
        "data",
        "as_dict",
        "dims",
        "hess",
        "annotations",
    }
)

#: The NumPy module's interface (``backends.Backend.interface`` for each backend).
MODULE_INTERFACE = NUMPY_INTERFACE


def check_user_names(names: Sequence[str], what: str = "name") -> None:
    """A user name may become code only if it is an identifier that clashes with nothing ours."""
    for name in names:
        check_name(name)
        if keyword.iskeyword(name):
            raise InputError(f"{what} '{name}' is a Python keyword; rename it")
        if name in RESERVED_NAMES or name.startswith("_"):
            raise InputError(
                f"{what} '{name}' is reserved: the generated module uses it "
                "(names starting with '_' are reserved too)"
            )
        if hasattr(builtins, name):
            raise InputError(f"{what} '{name}' would shadow the Python builtin '{name}'")


@dataclass(frozen=True)
class ModuleText:
    """What the front door says about a module: its docstring lines and constants."""

    doc: Sequence[str]
    constants: Sequence[str] = ()
    targets: tuple[str, ...] = ()


def _dimension_names(program: LossProgram) -> list[str]:
    seen: dict[str, None] = {}
    for shape in [*program.params.values(), *program.data.values()]:
        for d in shape:
            if isinstance(d, str):
                seen.setdefault(d)
    if program.sample_dim:
        seen.setdefault(program.sample_dim)
    return list(seen)


def _identifiers(lines: Sequence[str]) -> set[str]:
    return {word for line in lines for word in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", line)}


def _prologue(program: LossProgram, body: Sequence[str], backend: Backend) -> list[str]:
    """Read params and data into their names (unused ones become ``_``) and the dimensions."""
    used = _identifiers(body)
    params = [p if p in used else "_" for p in program.params]
    data = [d if d in used else "_" for d in program.data]
    as_dict = "as_dict" if "as_dict" in used else "_"
    more = backend.context
    lines = [f"{format_names(params)}, {as_dict} = _read_params(params{more})"]
    if program.sample_dim:
        size = program.sample_dim if program.sample_dim in used else "_"
        target = format_names(data) if data else "_"
        lines.append(f"{target}, {size} = _read_samples(data{more})")
        return lines
    dims = [d for d in _dimension_names(program) if d in used]
    target = format_names(data) if data else "_"
    lines.append(f"{target}, {'dims' if dims else '_'} = _read_data(data{more})")
    lines += [f'{d} = dims["{d}"]' for d in dims]
    return lines


#: Longest generated line; longer statements are wrapped inside parentheses.
MAX_LINE = 99


def _depth_zero(text: str, token: str) -> list[int]:
    """Positions of ``token`` in ``text`` outside brackets."""
    depth, found = 0, []
    for index, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth == 0 and text.startswith(token, index):
            found.append(index)
    return found


def _wrapped(text: str, indent: str) -> list[str]:
    return [indent + piece for piece in textwrap.wrap(
        text, width=MAX_LINE - len(indent), break_long_words=False, break_on_hyphens=False
    )]  # fmt: skip


def wrap_line(line: str) -> list[str]:
    """A statement of at most MAX_LINE characters per line (long ones wrapped in parentheses)."""
    if len(line) <= MAX_LINE:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    code, _, comment = line.strip().partition("  # ")
    head = [f"{indent}# {comment}"] if comment else []
    inner = indent + "    "
    if code.startswith("("):  # (a, b, ...), rest = call
        close = _depth_zero(code, ")")[0]
        rest = code[close + 1 :]
        return [*head, f"{indent}(", *_wrapped(code[1:close], inner), f"{indent}){rest}"]
    for token in (" += ", " = "):
        positions = _depth_zero(code, token)
        if positions:
            cut = positions[-1] + len(token)
            return [*head, f"{indent}{code[:cut]}(", *_wrapped(code[cut:], inner), f"{indent})"]
    if code.startswith("return "):
        return [*head, f"{indent}return (", *_wrapped(code[7:], inner), f"{indent})"]
    return [*head, f"{indent}{code}"]


def _function(
    name: str,
    summary: str,
    doc: Sequence[str],
    lines: Sequence[str],
    arguments: str = "params, *data",
) -> dict:
    body = [wrapped for line in lines for wrapped in wrap_line(f"    {line}" if line else "")]
    docstring = [f'    """{summary}', "", *doc, '    """'] if doc else [f'    """{summary}"""']
    return {"name": name, "arguments": arguments, "docstring": docstring, "body": body}


def _namer(program: LossProgram, backend: Backend) -> Namer:
    taken = (
        set(RESERVED_NAMES)
        | backend.reserved
        | set(program.params)
        | set(program.data)
        | set(program.directions)
    )
    taken |= set(_dimension_names(program)) | set(dir(builtins))
    return Namer(taken)


def _pack(results: Sequence[str], backend: Backend) -> str:
    return f"_pack({format_names(list(results))}, as_dict{backend.context})"


def _namespace(backend: Backend, inputs: str = "params, data") -> list[str]:
    """The statement that finds the caller's array library (none for NumPy modules)."""
    return [backend.namespace.format(inputs)] if backend.namespace else []


#: The return statements of a generated function, given the code of its results.
Returns: TypeAlias = Callable[[Sequence[str]], list[str]]
#: ``functions``' builder of one function: name, summary, doc lines, the roots, its returns.
Builder: TypeAlias = Callable[[str, str, Sequence[str], list[Node], Returns], None]


def functions(program: LossProgram, backend: Backend) -> tuple[list[dict], set[str]]:
    """loss, grad, loss_and_grad (and hessian) as template records; the helpers they call."""
    inputs = {name: name for name in [*program.params, *program.data]}
    helpers: set[str] = set()
    records = []

    labels = {program.loss: "L"}
    labels.update({g: f"dL/d{p}" for p, g in zip(program.params, program.gradients, strict=True)})

    def build(
        name: str, summary: str, doc: Sequence[str], roots: list[Node], result: Returns
    ) -> None:
        body = emit(roots, program, _namer(program, backend), inputs, labels, backend.printer)
        helpers.update(body.helpers)
        returned = result(body.results)
        lines = [*body.lines, *returned]
        prologue = [*_namespace(backend), *_prologue(program, lines, backend)]
        records.append(_function(name, summary, doc, [*prologue, *lines]))

    grads = list(program.gradients)
    build(
        "loss",
        "The loss L (a float)." if backend.name == "numpy" else "The loss L (a 0-d array).",
        [],
        [program.loss],
        lambda r: [f"return {backend.loss.format(r[0])}"],
    )
    build(
        "grad",
        "The gradient dL/dparams, in the form params was given.",
        ["    A flat array in PARAMS order, or a dict name -> array."],
        grads,
        lambda r: [f"return {_pack(r, backend)}"],
    )
    build(
        "loss_and_grad",
        "(L, dL/dparams) from one shared pass.",
        ["    The gradient has the form params had: a flat array in PARAMS order, or a dict."],
        [program.loss, *grads],
        lambda r: [f"return {backend.loss.format(r[0])}, {_pack(r[1:], backend)}"],
    )
    if program.hessian:
        _hessian(program, build, backend)
    if program.hvp:
        records.append(_hvp(program, inputs, labels, helpers, backend))
        size = sum(math.prod(int(d) for d in shape) for shape in program.params.values())
        if not program.hessian and size <= HESSIAN_LIMIT:
            records.append(_hessian_from_hvp(backend))
    called = _identifiers([line for record in records for line in record["body"]])
    helpers.update(h for h in backend.statement_helpers if h in called)
    return records, helpers


#: Tensor modules with hvp get ``hessian`` (one hvp per column) up to this many parameters.
HESSIAN_LIMIT = 2000


def _hvp(
    program: LossProgram,
    inputs: Mapping[str, str],
    labels: Mapping[Node, str],
    helpers: set[str],
    backend: Backend,
) -> dict:
    """hvp(params, v, *data): the direction is read first (a user name may be ``v``)."""
    directions = list(program.directions)
    body = emit(
        list(program.hvp), program, _namer(program, backend),
        {**inputs, **{d: d for d in directions}}, labels, backend.printer,
    )  # fmt: skip
    helpers.update(body.helpers)
    lines = [*body.lines, f"return {_pack(body.results, backend)}"]
    used = _identifiers(lines)
    read = (
        f"{format_names([d if d in used else '_' for d in directions])}, _ = "
        f"_read_params(v{backend.context})"
    )
    return _function(
        "hvp",
        "The Hessian-vector product H v = d/dparams <dL/dparams, v>, in the form params was given.",
        ["    v has the form of params (flat or a dict); H is never formed."],
        [
            *_namespace(backend, "params, data, v"),
            read,
            *_prologue(program, lines, backend),
            *lines,
        ],
        "params, v, *data",
    )


def _hessian_from_hvp(backend: Backend) -> dict:
    return _function(
        "hessian",
        "The matrix of second derivatives d2L/dp_i dp_j, one hvp per column.",
        ["    Entries in PARAMS order (a 2-D array whatever form params has)."],
        [
            *_namespace(backend),
            f"values, _ = _read_params(params{backend.context})",
            f"flat = _pack(values, False{backend.context})",
            f"return {backend.columns}",
        ],
    )


def _hessian(program: LossProgram, build: Builder, backend: Backend) -> None:
    size = len(program.params)
    entries = [(i, j, h) for i, j, h in program.hessian if not _is_zero(h)]

    def result(codes: Sequence[str]) -> list[str]:
        lines = [backend.hessian_init.format(size)]
        for (i, j, _), code in zip(entries, codes, strict=True):
            target = backend.hessian_entry.format(i, j)
            if i != j:
                target += " = " + backend.hessian_entry.format(j, i)
            lines.append(f"{target} = {code}")
        return [*lines, backend.hessian_return]

    build(
        "hessian",
        "The matrix of second derivatives d2L/dp_i dp_j.",
        ["    Entries in PARAMS order (a 2-D array whatever form params has)."],
        [h for _, _, h in entries] or [program.loss],
        result if entries else (lambda r: [f"return {backend.zeros.format(size)}"]),
    )


def _is_zero(node: Node) -> bool:
    if node.op == "broadcast_to":
        node = node.args[0]
    return node.op == "const" and node.value == 0


def _literal(pairs: Mapping[str, Shape]) -> str:
    """A tuple display of (name, shape) pairs, one per line when it is long."""
    items = [f"({name!r}, {tuple(shape)!r})" for name, shape in pairs.items()]
    flat = f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if len(flat) <= MAX_LINE - 15:
        return flat
    return "(\n" + "".join(f"    {item},\n" for item in items) + ")"


def render_module(
    program: LossProgram,
    text: ModuleText,
    templates: str | None = None,
    backend: Backend = BACKENDS["numpy"],
) -> str:
    """The module's source, rendered from the backend's template and checked (it parses, no
    clashes)."""
    check_user_names([*program.params, *program.data])
    check_user_names(_dimension_names(program), "dimension name")
    for name in [*program.params, *program.data, *_dimension_names(program)]:
        if name in backend.reserved:
            raise InputError(
                f"name '{name}' is reserved: the {backend.name} module uses it; rename it"
            )
    for name, shape in program.params.items():
        if any(isinstance(d, str) for d in shape):
            raise InputError(
                f"parameter '{name}' has shape {format_shape(shape)}: generated code needs "
                "integer sizes for parameters (e.g. --shape W1=64,32)"
            )
    records, helpers = functions(program, backend)
    data_literal = repr(tuple(program.data))
    source = render(
        backend.template,
        {
            "doc": list(text.doc),
            "params_literal": _literal(program.params),
            "data_literal": data_literal if program.data else "()",
            "data_shapes_literal": _literal(program.data),
            "constants": [
                *text.constants,
                f"TARGETS = {text.targets!r}  # cross_entropy targets: each row sums to 1",
                f"BLOCK = {BLOCK}  # samples per block of per-sample work",
            ],
            "version": __version__,
            "exports": repr(sorted([r["name"] for r in records] + ["PARAMS", "DATA"])),
            "functions": records,
            "helpers": sorted(helpers),
            "data_reader": "_read_samples" if program.sample_dim else "_read_data",
        },
        templates,
    )
    _check_source(source, [*program.params, *program.data])
    return source


def _check_source(source: str, user: Sequence[str]) -> None:
    """The rendered module parses, and its globals do not clash with a user name."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InputError(f"the template produced invalid Python (line {exc.lineno})") from None
    module_level: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            module_level.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module_level.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            module_level.update(
                n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)
            )
    clash = sorted(set(user) & module_level)
    if clash:
        raise InputError(f"name '{clash[0]}' is used by the generated module; choose another")
