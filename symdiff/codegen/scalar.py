"""Generated NumPy modules from a per-sample loss: the front door of the one code generator.

The pipeline, one pure stage after another::

    text --parse (SymPy)--> l(params, data) --to_ir--> mean over samples of l (IR, data (n,))
         --program.differentiate--> loss, gradient (and Hessian) --assemble.render_module--> module

The generated module (see ``MODULE_INTERFACE``) needs nothing but NumPy at run time. Every user
name is checked by :func:`symdiff.checks.check_name` and against ``RESERVED_NAMES`` (what the module
itself uses), and user text only reaches the file inside escaped docstrings, so the generated code
is safe to import whatever the input was. :func:`compile` runs that same generated source (never the
user's text) into an in-memory module object.
"""

from __future__ import annotations

import shlex
import textwrap
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from .. import __version__
from ..checks import check_name
from ..errors import InputError
from ..frontend.parse import make_symbol, parse
from ..ir.from_sympy import to_ir
from ..ir.nodes import Node, const, dim_expr, mul, recording_rewrites, sum_
from ..ir.printing import to_latex, to_text, tree_size
from ..ir.rewrites import REWRITE_FORMULAS, stabilize
from ..ir.simplify import computed_anyway, tidy
from .assemble import MODULE_INTERFACE as INTERFACE
from .assemble import RESERVED_NAMES, ModuleText, check_user_names, render_module
from .backends import Backend
from .backends import backend as find_backend
from .loading import load_generated
from .program import Namer, differentiate
from .templating import environment, shipped_template_dir

__all__ = [
    "MODULE_INTERFACE",
    "RESERVED_NAMES",
    "REDUCTIONS",
    "LossModel",
    "compile",
    "generate",
    "prepare",
    "template_dir",
]

#: The template every module is rendered from (a file in the templates directory).
TEMPLATE = "module.py.jinja"
#: How the per-sample losses are folded into one number.
REDUCTIONS = ("mean", "sum")
#: Longest generated line; longer statements are wrapped inside parentheses.
MAX_LINE = 99
#: Comments quote the math of a temporary only when it is at most this long.
MAX_COMMENT_MATH = 72
#: Docstrings print a gradient formula only below this many characters, and stop printing them
#: once they total DOC_FORMULA_BUDGET characters (so the file grows linearly with the loss).
MAX_DOC_FORMULA = 400
DOC_FORMULA_BUDGET = 4000

#: What every per-sample module adds to its backend's interface.
SAMPLE_INTERFACE = """
hessian(params, *data) -> 2-D array in PARAMS order (modules generated with --hessian).
data: arrays of samples that broadcast together; every element is one sample."""
#: The interface every generated per-sample NumPy module has.
MODULE_INTERFACE = INTERFACE + SAMPLE_INTERFACE


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class LossModel:
    """A validated per-sample loss: its text, parsed and stable forms, parameters and data."""

    text: str
    expression: sp.Expr
    params: tuple[sp.Symbol, ...]
    data: tuple[sp.Symbol, ...]
    reduce: str
    name: str


def _names(value: str | Iterable[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = []
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"{what} names must be text, got {type(item).__name__}")
        name = item.strip()
        if not name:
            continue
        check_user_names([name], f"{what} name")
        names.append(name)
    return names


def prepare(
    loss: str,
    params: str | Iterable[str],
    data: str | Iterable[str] | None = None,
    *,
    reduce: str = "mean",
    name: str = "model",
) -> LossModel:
    """Parse and check the per-sample loss, its parameters and data names."""
    if not isinstance(loss, str):
        raise InputError(f"the loss must be text, got {type(loss).__name__}")
    if reduce not in REDUCTIONS:
        raise InputError(f"--reduce must be one of {', '.join(REDUCTIONS)}, got '{reduce}'")
    if not isinstance(name, str):
        raise InputError("the module name must be text")
    check_name(name)
    param_names = _names(params, "parameter")
    data_names = _names(data, "data")
    if not param_names:
        raise InputError("give at least one parameter (--params b0,b1)")
    every = param_names + data_names
    repeated = sorted({n for n in every if every.count(n) > 1})
    if repeated:
        raise InputError(f"name '{repeated[0]}' is given twice (params and data must differ)")
    symbols = {n: make_symbol(n) for n in param_names + data_names}
    expression = parse(loss, symbols=symbols)
    unknown = sorted(s.name for s in expression.free_symbols if s.name not in symbols)
    if unknown:
        raise InputError(
            f"the loss uses {', '.join(unknown)}, which is neither a parameter nor data "
            f"(params: {', '.join(param_names)}; data: {', '.join(data_names) or 'none'})"
        )
    unused = [n for n in param_names if symbols[n] not in expression.free_symbols]
    if unused:
        raise InputError(f"parameter '{unused[0]}' does not occur in the loss")
    return LossModel(
        text=loss,
        expression=expression,
        params=tuple(symbols[n] for n in param_names),
        data=tuple(symbols[n] for n in data_names),
        reduce=reduce,
        name=name,
    )


# --------------------------------------------------------------------------- docstrings


def escape_docstring(text: str) -> str:
    """Text that can sit inside a ``\"\"\"...\"\"\"`` literal and read back unchanged.

    Backslashes and double quotes are escaped, and anything that is not printable ASCII
    (newlines, tabs, other control or non-ASCII characters) becomes an escape sequence.
    """
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _doc_lines(text: str, indent: str = "", width: int = MAX_LINE - 8) -> list[str]:
    """Wrapped, then escaped docstring lines (continuations indented two more spaces)."""
    pieces = textwrap.wrap(
        text, width=width - len(indent) - 2, break_on_hyphens=False, replace_whitespace=True
    ) or [""]
    escaped = [escape_docstring(p) for p in pieces]
    return [indent + escaped[0]] + [indent + "  " + p for p in escaped[1:]]


def _command(model: LossModel, hessian: bool, backend: str = "numpy") -> str:
    parts = ["symdiff", "codegen", model.text, "--params", ",".join(p.name for p in model.params)]
    if model.data:
        parts += ["--data", ",".join(d.name for d in model.data)]
    parts += ["--reduce", model.reduce, "--name", model.name]
    if hessian:
        parts.append("--hessian")
    if backend != "numpy":
        parts += ["--backend", backend]
    return shlex.join(parts)


def _reduction_text(model: LossModel, inner: str) -> str:
    return f"{model.reduce} over the samples of {inner}" if model.data else inner


def _reduction_latex(model: LossModel, inner: str) -> str:
    if not model.data:
        return inner
    prefix = r"\frac{1}{n}\sum_{i=1}^{n}" if model.reduce == "mean" else r"\sum_{i=1}^{n}"
    return rf"{prefix} \left({inner}\right)"


def _gradient_formulas(model: LossModel, gradients: Sequence[Node]) -> list[str]:
    """dL/dp in symdiff's syntax and LaTeX, within the docstring's size budget."""
    lines: list[str] = []
    budget = DOC_FORMULA_BUDGET
    for param, value in zip(model.params, gradients, strict=True):
        text = to_text(value) if tree_size(value) <= MAX_DOC_FORMULA // 2 else ""
        budget -= len(text)
        if not text or len(text) > MAX_DOC_FORMULA or budget < 0:
            lines += _doc_lines(f"dL/d{param.name}: too long to print; see loss_and_grad", "    ")
            continue
        lines += _doc_lines(f"dL/d{param.name} = {text}", "    ")
        latex = to_latex(value)
        lines += _doc_lines(
            rf"LaTeX: \frac{{\partial L}}{{\partial {sp.latex(param)}}} = {latex}", "      "
        )
    return lines


def module_doc(
    model: LossModel,
    stable: str,
    gradients: Sequence[Node],
    hessian: bool,
    applied: Iterable[str] = (),
    backend: Backend | None = None,
) -> list[str]:
    """The generated module's docstring, as escaped lines (everything user-typed is escaped)."""
    backend = backend or find_backend("numpy")
    applied = set(applied)
    lines = [
        f"Loss and gradient of the per-sample loss '{model.name}', generated by symdiff "
        f"{__version__}.",
        "",
        "Do not edit: regenerate with",
        *_doc_lines(_command(model, hessian, backend.name), "    "),
        "",
        "Loss as written (one sample):",
        *_doc_lines(" ".join(model.text.split()), "    "),
        "Per-sample loss l, as symdiff reads it:",
        *_doc_lines(str(model.expression), "    "),
        *_doc_lines(f"LaTeX: {sp.latex(model.expression)}", "    "),
        "Numerically stable form that is evaluated:",
        *_doc_lines(stable, "    "),
        "Total loss:",
        *_doc_lines(f"L = {_reduction_text(model, 'l')}", "    "),
        *_doc_lines(f"LaTeX: L = {_reduction_latex(model, 'l_i')}", "    "),
        "Gradient (reverse mode on the stable form; a data name stands for all n samples):",
        *_gradient_formulas(model, gradients),
        "",
        "Numerically stable rewrites ([x] = applied to this loss):",
    ]
    for name, formula in REWRITE_FORMULAS.items():
        mark = "x" if name in applied else " "
        lines += _doc_lines(f"[{mark}] {formula}", "    ")
    lines += [
        "    softplus(u) is evaluated as max(u, 0) + log1p(exp(-|u|)), which never overflows;",
        "    the derivative of a step (relu', |u|', sign, Heaviside) is 0 almost everywhere.",
        "Per-sample work runs over blocks of BLOCK samples; sums are accumulated block by block.",
        "",
        "Interface:",
        *(f"    {line}" for line in (backend.interface + SAMPLE_INTERFACE).splitlines()),
    ]
    return lines


# --------------------------------------------------------------------------- generation


def template_dir(override: str | Path | None = None) -> Path:
    """The directory of ``module.py.jinja``: ``override`` when given, else the package's."""
    if override is not None:
        environment(override)  # checks that it is a directory
        return Path(override)
    return shipped_template_dir()


def sample_dimension(names: Iterable[str]) -> str:
    """The name of the number of samples: ``n`` unless the loss uses that name itself."""
    return Namer(set(names))("n")


def reduce_samples(per_sample: Node, model: LossModel, sample_dim: str) -> Node:
    """The mean (or sum) of the per-sample values over the samples."""
    if not model.data:
        return per_sample
    if sample_dim not in per_sample.shape:  # the same value for every sample
        return (
            per_sample if model.reduce == "mean" else mul(const(dim_expr(sample_dim)), per_sample)
        )
    total = sum_(per_sample)
    return mul(const(1 / dim_expr(sample_dim)), total) if model.reduce == "mean" else total


def generate(
    loss: str,
    params: str | Iterable[str],
    data: str | Iterable[str] | None = None,
    reduce: str = "mean",
    name: str = "model",
    hessian: bool = False,
    templates: str | Path | None = None,
    backend: str = "numpy",
) -> str:
    """Source of a standalone module computing the reduced loss, its gradient (and Hessian).

    ``loss`` is the per-sample loss text; ``params`` and ``data`` name its parameters and data
    arrays (comma-separated text or a list); ``reduce`` folds samples by mean or sum;
    ``backend`` is ``numpy`` (NumPy only) or ``array-api`` (any array API library).
    """
    chosen = find_backend(backend)
    model = prepare(loss, params, data, reduce=reduce, name=name)
    names = [p.name for p in model.params] + [d.name for d in model.data]
    sample_dim = sample_dimension(names)
    shapes = {p.name: () for p in model.params}
    shapes.update({d.name: (sample_dim,) for d in model.data})
    with recording_rewrites() as applied:
        per_sample = to_ir(model.expression, shapes)
        program = differentiate(
            reduce_samples(per_sample, model, sample_dim),
            {p.name: () for p in model.params},
            {d.name: (sample_dim,) for d in model.data},
            sample_dim=sample_dim if model.data else None,
            hessian=hessian,
        )
    (stable,), _ = stabilize([per_sample])
    stable = tidy(stable, computed_anyway(stable))
    gradients = program.gradient_forms
    text = ModuleText(
        doc=module_doc(
            model, to_text(stable), gradients, hessian, {*applied, *program.applied}, chosen
        ),
        constants=[f'REDUCE = "{model.reduce}"'],
    )
    return render_module(program, text, None if templates is None else str(templates), chosen)


def compile(  # noqa: A001 - symdiff.compile mirrors the builtin's role for generated modules
    loss: str,
    params: str | Iterable[str],
    data: str | Iterable[str] | None = None,
    reduce: str = "mean",
    name: str = "model",
    hessian: bool = False,
    templates: str | Path | None = None,
    backend: str = "numpy",
) -> types.ModuleType:
    """The generated module as an in-memory module object (same attributes and functions).

    Only the source symdiff generated is compiled: every user name in it passed the name checks,
    and user text appears only in escaped docstrings.
    """
    source = generate(loss, params, data, reduce, name, hessian, templates, backend)
    return load_generated(source, name)
