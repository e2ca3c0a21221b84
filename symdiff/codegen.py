"""Generated NumPy modules: a per-sample loss in, a standalone loss-and-gradient module out.

The pipeline, one pure stage after another::

    text --parse--> l(params, data) --stable.PASSES--> stable l --reverse_sweep--> dl/dparams
         --stable.EVALUATION_PASSES--> --sympy.cse (loss + gradient together)--> NumPyModulePrinter
         --> templates/module.py.jinja

The generated module (see ``MODULE_INTERFACE``) needs nothing but NumPy at run time. Every user
name is checked by :func:`symdiff.parse.check_name` and against ``RESERVED_NAMES`` (what the module
itself uses), and user text only reaches the file inside escaped docstrings, so the generated code
is safe to import whatever the input was. :func:`compile` runs that same generated source (never the
user's text) into an in-memory module object.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import linecache
import re
import shlex
import textwrap
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sympy as sp
from sympy.core.parameters import distribute
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from . import __version__
from .errors import InputError, SymdiffError
from .parse import check_name, make_symbol, parse
from .reverse import Statement, inline, reverse_sweep
from .stable import REWRITE_FORMULAS, stabilize, stabilize_for_evaluation
from .templating import environment, shipped_template_dir
from .templating import render as render_template

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

#: Names the generated module itself uses: module globals, locals of the public functions and
#: the Python builtins they call. No parameter or data name may be one of them.
RESERVED_NAMES: frozenset[str] = frozenset(
    {
        "np",
        "numpy",
        "loss",
        "grad",
        "loss_and_grad",
        "hessian",
        "PARAMS",
        "DATA",
        "REDUCE",
        "SYMDIFF_VERSION",
        "params",
        "data",
        "shape",
        "as_dict",
        "loss_value",
        "gradient",
        "hess",
        "float",
        "annotations",
    }
)

MODULE_INTERFACE = """\
PARAMS: tuple of (name, shape) pairs in order; shape () is a scalar parameter.
DATA: names of the data arrays, in the order loss/grad take them.
loss(params, *data) -> float: the reduced loss.
grad(params, *data) -> the gradient, in the form params was given.
loss_and_grad(params, *data) -> (float, gradient): both from one shared pass.
hessian(params, *data) -> 2-D array in PARAMS order (modules generated with --hessian).
params: a flat 1-D array in PARAMS order, or a dict name -> value (the gradient is then a dict).
data: arrays of samples that broadcast together; wrong shapes or dtypes raise ValueError.
scipy.optimize.minimize(loss_and_grad, x0, args=data, jac=True) works as is."""


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class LossModel:
    """A validated per-sample loss: its text, parsed and stable forms, parameters and data."""

    text: str
    expression: sp.Expr
    stable: sp.Expr
    rewrites: tuple[str, ...]
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
        check_name(name)
        if name in RESERVED_NAMES or name.startswith("_"):
            raise InputError(
                f"{what} name '{name}' is reserved: the generated module uses it "
                "(names starting with '_' are reserved too)"
            )
        if hasattr(builtins, name):
            raise InputError(f"{what} name '{name}' would shadow the Python builtin '{name}'")
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
    """Parse and check the per-sample loss, its parameters and data names; apply stable rewrites."""
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
    with distribute(False):
        stable, rewrites = stabilize(expression)
    return LossModel(
        text=loss,
        expression=expression,
        stable=stable,
        rewrites=rewrites,
        params=tuple(symbols[n] for n in param_names),
        data=tuple(symbols[n] for n in data_names),
        reduce=reduce,
        name=name,
    )


# --------------------------------------------------------------------------- printer


class NumPyModulePrinter(NumPyPrinter):
    """NumPy code with ``np.`` names, stable ML functions, and a record of what it used.

    softplus(u) prints as the template's helper ``_softplus(u)`` = max(u, 0) + log1p(exp(-|u|))
    (never overflows, and several times faster than ``np.logaddexp(0, u)``); sigmoid(u) as
    ``np.exp(-_softplus(-u))``; relu as ``np.maximum``; Heaviside as ``np.heaviside``.
    """

    def __init__(self) -> None:
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})
        self.used: set[str] = set()

    def _module_format(self, fqn: str, register: bool = True) -> str:
        if "." not in fqn:  # a Python builtin such as abs, which works on arrays
            self.used.add(fqn)
            return fqn
        if not fqn.startswith("numpy."):
            function = fqn.rsplit(".", 1)[-1]
            raise InputError(
                f"'{function}' has no NumPy equivalent, and generated modules use only NumPy"
            )
        name = "np." + fqn[len("numpy.") :]
        self.used.add(name)
        return name

    def doprint(self, expr: sp.Expr, assign_to: object = None) -> str:
        code = super().doprint(expr, assign_to)
        if self._not_supported:
            names = sorted({type(e).__name__ for e in self._not_supported})
            raise InputError(f"no NumPy code for {', '.join(names)}")
        return code

    def _call(self, function: str, *args: sp.Expr | str) -> str:
        printed = [a if isinstance(a, str) else self._print(a) for a in args]
        return f"{self._module_format('numpy.' + function)}({', '.join(printed)})"

    def _helper(self, name: str, arg: sp.Expr) -> str:
        self.used.add(name)
        return f"{name}({self._print(arg)})"

    def _print_softplus(self, expr: sp.Expr) -> str:
        return self._helper("_softplus", expr.args[0])

    def _print_sigmoid(self, expr: sp.Expr) -> str:
        return self._call("exp", "-" + self._helper("_softplus", -expr.args[0]))

    def _print_Abs(self, expr: sp.Expr) -> str:
        return self._call("abs", expr.args[0])

    def _print_relu(self, expr: sp.Expr) -> str:
        return self._call("maximum", expr.args[0], "0")

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        at_zero = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        return self._call("heaviside", expr.args[0], repr(float(at_zero)))

    def _print_extremum(self, expr: sp.Expr, function: str) -> str:
        printed = self._print(expr.args[0])
        for arg in expr.args[1:]:
            printed = self._call(function, printed, arg)
        return printed

    def _print_Max(self, expr: sp.Expr) -> str:
        return self._print_extremum(expr, "maximum")

    def _print_Min(self, expr: sp.Expr) -> str:
        return self._print_extremum(expr, "minimum")

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        """A sum led by a positive term, so ``a - b`` is one subtraction, not ``-b + a``."""
        terms = list(self._as_ordered_terms(expr, order=order))
        leading = next((t for t in terms if not t.could_extract_minus_sign()), terms[0])
        terms.remove(leading)
        printed = ""
        for index, term in enumerate([leading, *terms]):
            negative = term.could_extract_minus_sign()
            text = self.parenthesize(-term if negative else term, PRECEDENCE["Add"])
            if index == 0:
                printed = f"-{text}" if negative else text
            else:
                printed += f" - {text}" if negative else f" + {text}"
        return printed

    def _print_DiracDelta(self, expr: sp.Expr) -> str:
        raise SymdiffError("internal error: DiracDelta reached the printer")

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exponent = expr.args
        if exponent == sp.Rational(1, 2):
            return self._call("sqrt", base)
        if exponent == -sp.Rational(1, 2):
            return "1/" + self._call("sqrt", base)
        if exponent.is_Integer and exponent < 0:
            positive = sp.Pow(base, -exponent, evaluate=False)
            return "1/" + self.parenthesize(positive, PRECEDENCE["Mul"], strict=True)
        return super()._print_Pow(expr, rational=rational)


# --------------------------------------------------------------------------- programs


def _almost_everywhere(exprs: Sequence[sp.Expr]) -> tuple[sp.Expr, ...]:
    """The derivative of a step is 0 almost everywhere: DiracDelta(u) -> 0."""
    return tuple(
        e.replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: sp.Integer(0)) for e in exprs
    )


def _topological(items: list[tuple[sp.Symbol, sp.Expr, int]]) -> list[tuple[sp.Symbol, sp.Expr]]:
    """Order assignments so each follows what it uses; ties keep (phase, original position)."""
    defined = {symbol for symbol, _, _ in items}
    needs = {s: {d for d in v.free_symbols if d in defined} for s, v, _ in items}
    position = {s: (phase, i) for i, (s, _, phase) in enumerate(items)}
    value_of = {s: v for s, v, _ in items}
    done: set[sp.Symbol] = set()
    order: list[tuple[sp.Symbol, sp.Expr]] = []
    pending = sorted(defined, key=position.__getitem__)
    while pending:
        ready = next(s for s in pending if needs[s] <= done)
        order.append((ready, value_of[ready]))
        done.add(ready)
        pending.remove(ready)
    return order


def build_program(
    outputs: Sequence[sp.Expr], statements: Sequence[Statement]
) -> tuple[list[tuple[sp.Symbol, sp.Expr, str, int]], list[sp.Expr]]:
    """CSE across outputs and reverse-pass statements; (ordered assignments, reduced outputs).

    Each assignment is (symbol, value, role, phase): role 'cse' or the statement's role, phase
    0 for the forward pass and 1 for what depends on an adjoint (the reverse pass).
    """
    values = [s.value for s in statements] + list(outputs)
    temporaries = sp.numbered_symbols("_cse", cls=sp.Dummy, real=True)
    replacements, reduced = sp.cse(values, symbols=temporaries, order="canonical")
    roles = {s: "cse" for s, _ in replacements}
    roles.update({s.symbol: s.role for s in statements})
    items = [(s, v, 0) for s, v in replacements]
    items += [(s.symbol, v, 1) for s, v in zip(statements, reduced, strict=False)]
    reverse = {s.symbol for s in statements if s.role == "adjoint"}
    values_of = {s: v for s, v, _ in items}
    phases = {s: _phase(s, values_of, reverse) for s in values_of}
    ordered = _topological([(s, v, phases[s]) for s, v, _ in items])
    ordered, outputs_reduced = _drop_aliases(ordered, list(reduced[len(statements) :]))
    return [(s, v, roles[s], phases[s]) for s, v in ordered], outputs_reduced


def _phase(symbol: sp.Symbol, values: dict, reverse: set[sp.Symbol]) -> int:
    """0 for the forward pass, 1 for anything that depends on an adjoint."""
    seen: set[sp.Symbol] = set()
    stack = [symbol]
    while stack:
        current = stack.pop()
        if current in reverse:
            return 1
        if current in seen:
            continue
        seen.add(current)
        stack.extend(d for d in values[current].free_symbols if d in values)
    return 0


def _drop_aliases(
    ordered: list[tuple[sp.Symbol, sp.Expr]], outputs: list[sp.Expr]
) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list[sp.Expr]]:
    """Substitute assignments whose value is a bare symbol or number (``a = b``) away."""
    aliases: dict[sp.Expr, sp.Expr] = {}
    kept = []
    for symbol, value in ordered:
        value = value.xreplace(aliases)
        if value.is_Atom:
            aliases[symbol] = value
        else:
            kept.append((symbol, value))
    return kept, [o.xreplace(aliases) for o in outputs]


class _Namer:
    """Readable, stable temporary names (``softplus_1``, ``d_sum_1``) that avoid taken names."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)
        self.counters: dict[str, itertools.count] = {}

    def __call__(self, base: str, numbered: bool = True) -> str:
        if not numbered and base not in self.taken:
            self.taken.add(base)
            return base
        counter = self.counters.setdefault(base, itertools.count(1 if numbered else 2))
        while True:
            name = f"{base}_{next(counter)}"
            if name not in self.taken:
                self.taken.add(name)
                return name


def _kind(value: sp.Expr) -> str:
    """A short name for what an expression computes: its head."""
    if isinstance(value, sp.Add):
        return "sum"
    if isinstance(value, sp.Mul):
        return "prod"
    if isinstance(value, sp.Pow):
        if value.exp == 2:
            return "sq"
        if value.exp == -1:
            return "inv"
        if value.exp == sp.Rational(1, 2):
            return "sqrt"
        return "pow"
    if isinstance(value, sp.Function):
        return type(value).__name__.lower()
    return "t"


@dataclass(frozen=True)
class Block:
    """Printed code of a program: statement lines and the outputs' code."""

    lines: tuple[str, ...]
    outputs: tuple[str, ...]


def _wrap_statement(target: str, code: str, indent: str, comment: str = "") -> list[str]:
    """``target = code`` as lines of at most MAX_LINE characters (wrapped in parentheses)."""
    lines = [f"{indent}# {part}" for part in _wrap_text(comment, MAX_LINE - len(indent) - 2)]
    line = f"{indent}{target} = {code}"
    if len(line) <= MAX_LINE:
        return [*lines, line]
    inner = indent + "    "
    pieces = textwrap.wrap(
        code, width=MAX_LINE - len(inner), break_long_words=False, break_on_hyphens=False
    )
    return [*lines, f"{indent}{target} = (", *(inner + p for p in pieces), f"{indent})"]


def _wrap_text(text: str, width: int) -> list[str]:
    if not text:
        return []
    return textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)


def print_program(
    assignments: list[tuple[sp.Symbol, sp.Expr, str, int]],
    outputs: Sequence[sp.Expr],
    statements: Sequence[Statement],
    namer: _Namer,
    printer: NumPyModulePrinter,
    indent: str = "    ",
) -> Block:
    """Name the temporaries, print one commented line per assignment, print the outputs."""
    about = {s.symbol: s for s in statements}
    rename: dict[sp.Expr, sp.Symbol] = {}
    full: dict[sp.Expr, sp.Expr] = {}
    primal_name: dict[sp.Expr, str] = {}
    lines: list[str] = []
    in_reverse = False
    for index, (symbol, value, role, phase) in enumerate(assignments):
        expanded = value.xreplace(full)
        if role == "adjoint":
            node = about[symbol].node
            known = primal_name.get(node)
            name = namer(f"d_{known}", numbered=False) if known else namer(f"d_{_kind(node)}")
            comment = f"dl/d({_short(node)})"
        else:
            name = namer(_kind(value) if role == "cse" else role)
            full[symbol] = expanded
            primal_name.setdefault(expanded, name)
            comment = _math_comment(expanded)
        if index == 0:
            lines.append(f"{indent}# Forward pass: shared sub-expressions of the loss")
        reverse = phase == 1
        if reverse and not in_reverse:
            in_reverse = True
            lines.append(f"{indent}# Reverse pass: adjoints dl/d(node), each computed once")
        rename[symbol] = sp.Symbol(name)
        code = printer.doprint(value.xreplace(rename))
        if comment.replace(" ", "") == code.replace(" ", ""):
            comment = ""
        lines.extend(_wrap_statement(name, code, indent, comment))
    printed = tuple(printer.doprint(o.xreplace(rename)) for o in outputs)
    return Block(tuple(lines), printed)


def _short(expr: sp.Expr) -> str:
    text = str(expr)
    return text if len(text) <= MAX_COMMENT_MATH else f"{text[: MAX_COMMENT_MATH - 3]}..."


def _math_comment(expr: sp.Expr) -> str:
    if any(isinstance(s, sp.Dummy) for s in expr.free_symbols):
        return ""
    text = str(expr)
    return text if len(text) <= MAX_COMMENT_MATH else ""


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


def _command(model: LossModel, hessian: bool) -> str:
    parts = ["symdiff", "codegen", model.text, "--params", ",".join(p.name for p in model.params)]
    if model.data:
        parts += ["--data", ",".join(d.name for d in model.data)]
    parts += ["--reduce", model.reduce, "--name", model.name]
    if hessian:
        parts.append("--hessian")
    return shlex.join(parts)


def _reduction_text(model: LossModel, inner: str) -> str:
    return f"{model.reduce} over the samples of {inner}" if model.data else inner


def _reduction_latex(model: LossModel, inner: str) -> str:
    if not model.data:
        return inner
    prefix = r"\frac{1}{n}\sum_{i=1}^{n}" if model.reduce == "mean" else r"\sum_{i=1}^{n}"
    return rf"{prefix} \left({inner}\right)"


def _gradient_formulas(model: LossModel, gradients: Sequence[sp.Expr] | None) -> list[str]:
    lines: list[str] = []
    budget = DOC_FORMULA_BUDGET
    for param, value in zip(model.params, gradients or [None] * len(model.params), strict=True):
        text = str(value) if value is not None else ""
        budget -= len(text)
        if value is None or len(text) > MAX_DOC_FORMULA or budget < 0:
            lines += _doc_lines(f"dL/d{param.name}: too long to print; see loss_and_grad", "    ")
            continue
        lines += _doc_lines(f"dL/d{param.name} = {_reduction_text(model, text)}", "    ")
        latex = _reduction_latex(model, sp.latex(value))
        lines += _doc_lines(
            rf"LaTeX: \frac{{\partial L}}{{\partial {sp.latex(param)}}} = {latex}", "      "
        )
    return lines


def module_doc(
    model: LossModel,
    gradients: Sequence[sp.Expr] | None,
    hessian: bool,
    applied: Iterable[str] = (),
    used: Iterable[str] = (),
) -> list[str]:
    """The generated module's docstring, as escaped lines (everything user-typed is escaped)."""
    applied = set(applied)
    lines = [
        f"Loss and gradient of the per-sample loss '{model.name}', generated by symdiff "
        f"{__version__}.",
        "",
        "Do not edit: regenerate with",
        *_doc_lines(_command(model, hessian), "    "),
        "",
        "Loss as written (one sample):",
        *_doc_lines(" ".join(model.text.split()), "    "),
        "Per-sample loss l, as symdiff reads it:",
        *_doc_lines(str(model.expression), "    "),
        *_doc_lines(f"LaTeX: {sp.latex(model.expression)}", "    "),
        "Numerically stable form that is evaluated:",
        *_doc_lines(str(model.stable), "    "),
        "Total loss:",
        *_doc_lines(f"L = {_reduction_text(model, 'l')}", "    "),
        *_doc_lines(f"LaTeX: L = {_reduction_latex(model, 'l_i')}", "    "),
        "Gradient (reverse mode on the stable form):",
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
        *_doc_lines(
            f"Functions called: {', '.join(sorted(used)) or 'none (arithmetic only)'}.", ""
        ),
        "",
        "Interface:",
        *(f"    {line}" for line in MODULE_INTERFACE.splitlines()),
    ]
    return lines


# --------------------------------------------------------------------------- rendering


def template_dir(override: str | Path | None = None) -> Path:
    """The directory of ``module.py.jinja``: ``override`` when given, else the package's."""
    if override is not None:
        environment(override)  # checks that it is a directory
        return Path(override)
    return shipped_template_dir()


def render(context: dict, templates: str | Path | None = None) -> str:
    """Render the module template with the strict environment (a missing value is an error)."""
    return render_template(TEMPLATE, context, templates)


def _unpack_lines(model: LossModel, as_dict: str, body: Sequence[str]) -> list[str]:
    """Unpack params and data into their names; names the body never uses become ``_``."""
    used = {
        word
        for line in body
        if not line.lstrip().startswith("#")
        for word in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", line)
    }
    names = [p.name if p.name in used else "_" for p in model.params]
    data = [d.name if d.name in used else "_" for d in model.data]
    return [
        *_unpack(names, as_dict, "_read_params(params)"),
        *(
            _unpack(data, "shape", "_read_data(data)")
            if data
            else ["    _, shape = _read_data(data)"]
        ),
    ]


def _unpack(names: list[str], second: str, call: str) -> list[str]:
    """``(a, b), second = call``, the tuple of names wrapped over lines when it is long."""
    line = f"    {_tuple_code(names)}, {second} = {call}"
    if len(line) <= MAX_LINE:
        return [line]
    pieces = _wrap_text(", ".join(names) + ",", MAX_LINE - 8)
    return ["    (", *(f"        {p}" for p in pieces), f"    ), {second} = {call}"]


def _function(name: str, summary: str, doc: list[str], body: list[str]) -> dict:
    return {"name": name, "summary": summary, "doc": doc, "body": body}


def _evaluation_form(exprs: Sequence[sp.Expr], applied: set[str]) -> tuple[sp.Expr, ...]:
    """EVALUATION_PASSES then the almost-everywhere rule; records the passes that fired."""
    rewritten, names = stabilize_for_evaluation(exprs)
    applied.update(names)
    return _almost_everywhere(rewritten)


def _loss_function(model: LossModel, printer: NumPyModulePrinter, applied: set[str]) -> dict:
    (loss,) = _evaluation_form((model.stable,), applied)
    assignments, (output,) = build_program([loss], [])
    block = print_program(assignments, [output], [], _namer(model), printer)
    body = list(block.lines)
    body += _wrap_statement("loss_value", f"float(_reduce({block.outputs[0]}, shape))", "    ")
    body.append("    return loss_value")
    body = _unpack_lines(model, "_", body) + body
    doc = _doc_lines(f"L = {_reduction_text(model, str(model.expression))}", "    ")
    return _function("loss", "The loss L (a float).", doc, body)


def _loss_and_grad_function(
    model: LossModel, printer: NumPyModulePrinter, applied: set[str]
) -> dict:
    sweep = reverse_sweep(model.stable, model.params)
    values = [s.value for s in sweep.statements]
    count = len(values)
    rewritten = _evaluation_form([model.stable, *values, *sweep.gradients], applied)
    statements = [
        Statement(s.symbol, v, s.role, s.node)
        for s, v in zip(sweep.statements, rewritten[1 : count + 1], strict=True)
    ]
    outputs = [rewritten[0], *rewritten[count + 1 :]]
    assignments, reduced = build_program(outputs, statements)
    namer = _namer(model)
    block = print_program(assignments, reduced, statements, namer, printer)
    body = list(block.lines)
    body.append(f"    # Loss: L = {model.reduce} of l")
    body += _wrap_statement("loss_value", f"float(_reduce({block.outputs[0]}, shape))", "    ")
    body.append(f"    # Gradient: dL/dparam = {model.reduce} of dl/dparam, in PARAMS order")
    grad_names = []
    for param, code in zip(model.params, block.outputs[1:], strict=True):
        grad_name = namer(f"grad_{param.name}", numbered=False)
        grad_names.append(grad_name)
        body += _wrap_statement(grad_name, f"_reduce({code}, shape)", "    ")
    body += _wrap_statement("gradient", _tuple_code(grad_names), "    ")
    body.append("    return loss_value, _pack(gradient, as_dict)")
    body = _unpack_lines(model, "as_dict", body) + body
    doc = [
        "    The gradient has the form params had: a flat array in PARAMS order, or a dict.",
    ]
    return _function("loss_and_grad", "(L, dL/dparams) from one shared pass.", doc, body)


def _hessian_function(
    model: LossModel,
    gradients: Sequence[sp.Expr],
    printer: NumPyModulePrinter,
    applied: set[str],
) -> dict:
    statements: list[Statement] = []
    entries: list[tuple[int, int, sp.Expr]] = []
    for i, first in enumerate(gradients):
        sweep = reverse_sweep(first, model.params, prefix=f"h{i}_")
        statements += sweep.statements
        entries += [(i, j, sweep.gradients[j]) for j in range(i, len(model.params))]
    values = [s.value for s in statements]
    rewritten = _evaluation_form([*values, *(e for _, _, e in entries)], applied)
    statements = [
        Statement(s.symbol, v, s.role, s.node)
        for s, v in zip(statements, rewritten[: len(values)], strict=True)
    ]
    assignments, reduced = build_program(rewritten[len(values) :], statements)
    block = print_program(assignments, reduced, statements, _namer(model), printer)
    size = len(model.params)
    body = list(block.lines)
    body.append(f"    # Hessian: d2L/dp_i dp_j = {model.reduce} of d2l/dp_i dp_j (symmetric)")
    body.append(f"    hess = np.empty(({size}, {size}))")
    for (i, j, _), code in zip(entries, block.outputs, strict=True):
        target = f"hess[{i}, {j}]" if i == j else f"hess[{i}, {j}] = hess[{j}, {i}]"
        body += _wrap_statement(target, f"_reduce({code}, shape)", "    ")
    body.append("    return hess")
    body = _unpack_lines(model, "_", body) + body
    doc = ["    Entries in PARAMS order (a 2-D array whatever form params has)."]
    return _function("hessian", "The matrix of second derivatives d2L/dp_i dp_j.", doc, body)


def tuple_literal(items: Sequence[str], column: int = 9) -> str:
    """A tuple display of ``items`` (code), one item per line when it would be too long."""
    flat = _tuple_code(items) if items else "()"
    if column + len(flat) <= MAX_LINE:
        return flat
    return "(\n" + "".join(f"    {item},\n" for item in items) + ")"


def _tuple_code(items: Sequence[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _namer(model: LossModel) -> _Namer:
    return _Namer(RESERVED_NAMES | {s.name for s in model.params + model.data})


def _grad_function() -> dict:
    body = ["    return loss_and_grad(params, *data)[1]"]
    doc = ["    Same form as params: a flat array in PARAMS order, or a dict name -> value."]
    return _function("grad", "The gradient dL/dparams.", doc, body)


def _explicit_gradients(model: LossModel) -> tuple[sp.Expr, ...]:
    return inline(reverse_sweep(model.stable, model.params))


def generate(
    loss: str,
    params: str | Iterable[str],
    data: str | Iterable[str] | None = None,
    reduce: str = "mean",
    name: str = "model",
    hessian: bool = False,
    templates: str | Path | None = None,
) -> str:
    """Source of a standalone NumPy module computing the reduced loss, its gradient (and Hessian).

    ``loss`` is the per-sample loss text; ``params`` and ``data`` name its parameters and data
    arrays (comma-separated text or a list); ``reduce`` folds samples by mean or sum.
    """
    model = prepare(loss, params, data, reduce=reduce, name=name)
    printer = NumPyModulePrinter()
    applied: set[str] = set(model.rewrites)
    with distribute(False):
        gradients = _explicit_gradients(model)
        functions = [
            _loss_function(model, printer, applied),
            _grad_function(),
            _loss_and_grad_function(model, printer, applied),
        ]
        if hessian:
            functions.append(_hessian_function(model, gradients, printer, applied))
    context = {
        "doc": module_doc(model, gradients, hessian, applied, printer.used),
        "params_literal": tuple_literal([f'("{p.name}", ())' for p in model.params]),
        "data_literal": tuple_literal([f'"{d.name}"' for d in model.data]),
        "reduce": model.reduce,
        "version": __version__,
        "exports": repr(sorted([f["name"] for f in functions] + ["PARAMS", "DATA"])),
        "functions": functions,
    }
    source = render(context, templates)
    _check_source(source, model)
    return source


def _check_source(source: str, model: LossModel) -> None:
    """The rendered module parses, and its globals do not clash with a user name."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InputError(f"the template produced invalid Python (line {exc.lineno})") from None
    user = {s.name for s in model.params + model.data}
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
    clash = sorted(user & module_level)
    if clash:
        raise InputError(f"name '{clash[0]}' is used by the generated module; choose another")


def compile(  # noqa: A001 - symdiff.compile mirrors the builtin's role for generated modules
    loss: str,
    params: str | Iterable[str],
    data: str | Iterable[str] | None = None,
    reduce: str = "mean",
    name: str = "model",
    hessian: bool = False,
    templates: str | Path | None = None,
) -> types.ModuleType:
    """The generated module as an in-memory module object (same attributes and functions).

    Only the source symdiff generated is compiled: every user name in it passed ``check_name``
    and the reserved-name check, and user text appears only in escaped docstrings.
    """
    return load_generated(generate(loss, params, data, reduce, name, hessian, templates), name)


def load_generated(source: str, name: str) -> types.ModuleType:
    """A module object running ``source``, which must be code symdiff generated itself.

    ``__source__`` holds the text; tracebacks show its lines (registered with linecache).
    """
    filename = f"<symdiff generated module {name}>"
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__["__source__"] = source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = builtins.compile(source, filename, "exec")
    exec(code, module.__dict__)  # noqa: S102 - generated code only (see compile's docstring)
    return module
