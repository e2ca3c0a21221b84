"""Text -> SymPy, safely: tokenize, insert implicit products, walk a whitelisted Python ``ast``.

Nothing the user typed is ever passed to ``eval``, ``exec``, ``sympify`` or ``parse_expr``.
The front end (:func:`parse_tree`) is shared by the scalar and the tensor parsers; each supplies
its own builder that accepts only the node types it knows.
"""

from __future__ import annotations

import ast
import keyword
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import sympy as sp

from ..checks import MAX_EXACT_DIGITS, check_name, check_power_size, deep_recursion, digits
from ..errors import ParseError
from ..functions import expm1, log1p, relu, sigmoid, softplus
from ..names import canonical, did_you_mean
from ..primitives import BY_TYPED_NAME, COMPOSITES, SYMPY, Composite
from ..text import formula

#: Longest accepted input, in characters.
MAX_LENGTH = 10_000
#: Deepest accepted nesting of brackets / operators (a chain like a+b+c counts once).
MAX_DEPTH = 100
#: Longest accepted number literal, in digits.
MAX_LITERAL_DIGITS = 1_000


# --------------------------------------------------------------------------- tokens

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|//|==|!=|<=|>=|[-+*/^()@.,=\[\]%<>:;{}~&|!])
  | (?P<string>'[A-Za-z ,.>-]*'|"[A-Za-z ,.>-]*")
  | (?P<quote>['"])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One lexical token: its ``kind`` (number, name, op), its text and 0-based column."""

    kind: str
    text: str
    column: int


def tokenize(text: str, index_strings: bool = False) -> list[Token]:
    """Split ``text`` into tokens; reject characters no expression may contain.

    With ``index_strings`` a quoted run of letters, commas, '->', '.' and spaces (an einsum
    index string such as 'ij,jk->ik') is one token; any other string is refused."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise ParseError(_describe_bad_char(text, position), text, position + 1)
        kind = match.lastgroup or ""
        if kind == "string" and not index_strings:
            kind = "quote"
        if kind == "quote":
            raise ParseError("strings are not allowed", text, position + 1)
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


#: superscript digits and signs -> the ASCII they stand for (``x²`` is ``x**2``)
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


def _describe_bad_char(text: str, position: int) -> str:
    """What is wrong with ``text[position]``, with the ASCII to type instead when there is one."""
    char = text[position]
    if ord(char) < 128:
        return f"unexpected character {char!r}"
    name = unicodedata.name(char, "unknown")
    hint = ""
    if name in ("MINUS SIGN", "EN DASH", "EM DASH"):
        hint = " (use '-')"
    elif name in ("MULTIPLICATION SIGN", "MIDDLE DOT", "DOT OPERATOR"):
        hint = " (use '*')"
    elif char.translate(_SUPERSCRIPTS) != char:
        end = position
        while end < len(text) and text[end].translate(_SUPERSCRIPTS) != text[end]:
            end += 1
        hint = f" (use '**{text[position:end].translate(_SUPERSCRIPTS)}')"
    return f"unexpected non-ASCII character {char!r} (U+{ord(char):04X} {name}){hint}"


# --------------------------------------------------------------------------- front end


@dataclass(frozen=True)
class SourceTree:
    """A parsed, size-checked ``ast`` plus what is needed to report columns in the user's text."""

    text: str
    tree: ast.expr
    columns: tuple[int, ...]  # python-source offset -> user column (0-based)
    literals: Mapping[int, str]  # python-source offset of a number -> its exact text

    def column_of(self, node: ast.AST) -> int:
        """1-based column in the user's text where ``node`` starts."""
        offset = getattr(node, "col_offset", 0)
        offset = min(max(offset, 0), len(self.columns) - 1)
        return self.columns[offset] + 1

    def error(self, message: str, node: ast.AST) -> ParseError:
        return ParseError(message, self.text, self.column_of(node))


def _needs_product(left: Token, right: Token, functions: Iterable[str]) -> bool:
    """Implicit multiplication: ``2x``, ``2 pi``, ``3(x+1)``, ``(a)(b)``, ``x y``."""
    left_is_value = left.kind in ("number", "name") or left.text in (")", "]")
    if not left_is_value:
        return False
    if left.kind == "name" and keyword.iskeyword(left.text):
        return False
    if right.kind == "number":
        return left.kind != "number" and left.text not in (")", "]")
    if right.kind == "name":
        return not keyword.iskeyword(right.text)
    if right.text == "(":
        if left.kind == "name":
            # name(...) is a call of a known function or of an unknown multi-letter name (an
            # error the builder reports); a one-letter symbol before '(' is a product: x(x+1).
            return left.text not in functions and len(left.text) == 1
        return True
    return False


def parse_tree(text: str, functions: Iterable[str] = (), index_strings: bool = False) -> SourceTree:
    """Check limits, insert implicit products, and parse ``text`` into a Python ``ast``
    (``index_strings``: admit einsum index strings, see :func:`tokenize`)."""
    if not isinstance(text, str):
        raise ParseError(f"expected expression text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression is too long ({len(text)} characters, limit {MAX_LENGTH})")
    if not text.strip():
        raise ParseError("empty expression")
    functions = frozenset(functions)
    tokens = tokenize(text, index_strings)
    _check_brackets(tokens, text)
    pieces: list[str] = []
    columns: list[int] = []
    literals: dict[int, str] = {}
    previous: Token | None = None
    for token in tokens:
        if token.kind == "name" and keyword.iskeyword(token.text):
            raise ParseError(
                f"Python keyword '{token.text}' is not allowed", text, token.column + 1
            )
        if token.kind == "number":
            digits = sum(ch.isdigit() for ch in token.text)
            if digits > MAX_LITERAL_DIGITS:
                raise ParseError(
                    f"number literal is too long ({digits} digits, limit {MAX_LITERAL_DIGITS})",
                    text,
                    token.column + 1,
                )
        if previous is not None:
            _refuse_glued_literal(previous, token, text)
        if previous is not None and _needs_product(previous, token, functions):
            _append(pieces, columns, "*", token.column)
        if previous is not None:
            # always a space between tokens: side by side, "x * * y" would read as x**y
            _append(pieces, columns, " ", token.column)
        source_text = "**" if token.text == "^" else token.text
        if token.kind == "number":
            literals[len(columns)] = token.text  # the offset in the python source
        _append(pieces, columns, source_text, token.column)
        previous = token
    if tokens and tokens[-1].kind == "op" and tokens[-1].text not in (")", "]"):
        last = tokens[-1]
        raise ParseError(f"expression ends with '{last.text}'", text, last.column + 1)
    source = "".join(pieces)
    columns.append(len(text))
    try:
        module = _parse_python(source)
    except SyntaxError as exc:
        offset = (exc.offset or 1) - 1
        column = columns[min(max(offset, 0), len(columns) - 1)] + 1
        raise ParseError(f"syntax error: {_syntax_reason(exc)}", text, column) from None
    except (RecursionError, MemoryError):
        raise ParseError(f"expression is nested too deeply (limit {MAX_DEPTH})") from None
    source_tree = SourceTree(text, module.body, tuple(columns), literals)
    _check_depth(source_tree)
    return source_tree


def _parse_python(source: str) -> ast.Expression:
    """``ast.parse`` with room for long flat chains (a sum of 5,000 terms is legal, not deep)."""
    with deep_recursion(4 * MAX_LENGTH):
        return ast.parse(source, mode="eval")


def _refuse_glued_literal(previous: Token, token: Token, text: str) -> None:
    """``0x10``, ``0b1``, ``1_000`` are Python literals, not implicit products: refuse them."""
    glued = previous.column + len(previous.text) == token.column
    if not (glued and previous.kind == "number" and token.kind == "name"):
        return
    if token.text.startswith("_"):
        raise ParseError("digit separators '_' are not supported", text, token.column + 1)
    if previous.text == "0" and token.text[0] in "xXbBoO" and token.text[1:2].isalnum():
        raise ParseError(
            "hexadecimal, binary and octal literals are not supported", text, previous.column + 1
        )


def _append(pieces: list[str], columns: list[int], piece: str, column: int) -> None:
    pieces.append(piece)
    columns.extend([column] * len(piece))


def _syntax_reason(exc: SyntaxError) -> str:
    message = (exc.msg or "invalid syntax").split("(")[0].strip()
    if "never closed" in message or "unexpected EOF" in message:
        return "incomplete expression"
    return message


def _check_brackets(tokens: list[Token], text: str) -> None:
    stack: list[Token] = []
    pairs = {")": "(", "]": "["}
    for token in tokens:
        if token.text in ("(", "["):
            stack.append(token)
            if len(stack) > MAX_DEPTH:
                raise ParseError(
                    f"brackets are nested too deeply (limit {MAX_DEPTH})", text, token.column + 1
                )
        elif token.text in pairs:
            if not stack or stack[-1].text != pairs[token.text]:
                raise ParseError(f"unmatched '{token.text}'", text, token.column + 1)
            stack.pop()
    if stack:
        raise ParseError(f"unclosed '{stack[-1].text}'", text, stack[-1].column + 1)


_CHAIN_OPS = {ast.Add: "add", ast.Sub: "add", ast.Mult: "mul", ast.Div: "mul"}


def _check_depth(source: SourceTree) -> None:
    """Reject trees nested deeper than MAX_DEPTH; chains of + or * count as one level."""
    stack: list[tuple[ast.AST, int, str | None]] = [(source.tree, 1, None)]
    while stack:
        node, depth, chain = stack.pop()
        if depth > MAX_DEPTH:
            raise source.error(f"expression is nested too deeply (limit {MAX_DEPTH})", node)
        node_chain = _CHAIN_OPS.get(type(node.op)) if isinstance(node, ast.BinOp) else None
        for child in ast.iter_child_nodes(node):
            continues_chain = node_chain is not None and node_chain == chain_of(child)
            child_depth = depth if continues_chain else depth + 1
            stack.append((child, child_depth, node_chain))


def chain_of(node: ast.AST) -> str | None:
    """The associative chain ('add' or 'mul') a BinOp node belongs to, if any."""
    return _CHAIN_OPS.get(type(node.op)) if isinstance(node, ast.BinOp) else None


def flatten_chain(node: ast.BinOp) -> list[tuple[type[ast.operator] | None, ast.expr]]:
    """Flatten a left-leaning chain a+b-c (or a*b/c) into [(None, a), (Add, b), (Sub, c)]."""
    kind = chain_of(node)
    items: list[tuple[type[ast.operator] | None, ast.expr]] = []
    current: ast.expr = node
    while isinstance(current, ast.BinOp) and chain_of(current) == kind:
        items.append((type(current.op), current.right))
        current = current.left
    items.append((None, current))
    items.reverse()
    return items


# --------------------------------------------------------------------------- scalar builder


@dataclass(frozen=True)
class FunctionSpec:
    """A function the parser admits: how many arguments, and how to build it."""

    build: Callable[..., sp.Expr]
    min_args: int = 1
    max_args: int | None = 1
    doc: str = ""


#: Functions a user may call, by the name they type.
FUNCTIONS: dict[str, FunctionSpec] = {
    "exp": FunctionSpec(sp.exp, doc="e**x"),
    "ln": FunctionSpec(sp.log, doc="natural log"),
    "log1p": FunctionSpec(log1p, doc="log(1 + x)"),
    "expm1": FunctionSpec(expm1, doc="exp(x) - 1"),
    "sqrt": FunctionSpec(sp.sqrt, doc="x**(1/2)"),
    "abs": FunctionSpec(sp.Abs, doc="|x|"),
    "sign": FunctionSpec(sp.sign, doc="sign of x"),
    "sin": FunctionSpec(sp.sin),
    "cos": FunctionSpec(sp.cos),
    "tan": FunctionSpec(sp.tan),
    "sec": FunctionSpec(sp.sec),
    "csc": FunctionSpec(sp.csc),
    "cot": FunctionSpec(sp.cot),
    "sinh": FunctionSpec(sp.sinh),
    "cosh": FunctionSpec(sp.cosh),
    "tanh": FunctionSpec(sp.tanh),
    "asin": FunctionSpec(sp.asin),
    "acos": FunctionSpec(sp.acos),
    "atan": FunctionSpec(sp.atan),
    "asinh": FunctionSpec(sp.asinh),
    "acosh": FunctionSpec(sp.acosh),
    "atanh": FunctionSpec(sp.atanh),
    "erf": FunctionSpec(sp.erf, doc="error function"),
    "sigmoid": FunctionSpec(sigmoid, doc="1/(1 + exp(-x))"),
    "logistic": FunctionSpec(sigmoid, doc="same as sigmoid"),
    "relu": FunctionSpec(relu, doc="max(x, 0)"),
    "softplus": FunctionSpec(softplus, doc="log(1 + exp(x))"),
    "heaviside": FunctionSpec(
        lambda u, at_zero=0: sp.Heaviside(u, at_zero), 1, 2, "step: 0 below 0, 1 above (a at 0)"
    ),
    "dirac": FunctionSpec(
        lambda u, order=0: sp.DiracDelta(u, order), 1, 2, "Dirac delta (a step's derivative)"
    ),
}


def _composite(row: Composite) -> FunctionSpec:
    return FunctionSpec(lambda *args: row.build(args, SYMPY), row.min_args, row.max_args, row.doc)


FUNCTIONS.update({name: _composite(row) for name, row in COMPOSITES.items()})
FUNCTIONS = dict(sorted(FUNCTIONS.items()))

#: Constants by name (``e`` may be declared a plain symbol instead).
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}

_UNSUPPORTED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "indexing with [] is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and'/'or' are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.Dict: "dictionaries are not allowed",
    ast.Set: "sets are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed (check the commas)",
    ast.Starred: "'*' unpacking is not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.JoinedStr: "strings are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.Slice: "slices are not allowed",
}

_BINARY_NAMES = {
    ast.MatMult: "'@' needs shaped operands (declare them with --shape)",
    ast.Mod: "operator '%' is not supported",
    ast.FloorDiv: "operator '//' is not supported",
    ast.BitAnd: "operator '&' is not supported",
    ast.BitOr: "operator '|' is not supported",
    ast.BitXor: "operator '^' is not supported",
    ast.LShift: "operator '<<' is not supported",
    ast.RShift: "operator '>>' is not supported",
}


def make_symbol(name: str) -> sp.Symbol:
    """The SymPy symbol for a user name: every symdiff variable is real."""
    return sp.Symbol(check_name(name), real=True)


class _ScalarBuilder:
    """Builds a SymPy expression from a checked ``ast``; anything not whitelisted is an error."""

    def __init__(self, source: SourceTree, symbols: Mapping[str, sp.Expr], e_symbol: bool) -> None:
        self.source = source
        self.symbols = symbols
        self.constants = {k: v for k, v in CONSTANTS.items() if not (k == "e" and e_symbol)}

    def build(self, node: ast.AST) -> sp.Expr:
        handler = getattr(self, f"_build_{type(node).__name__}", None)
        if handler is None:
            reason = _UNSUPPORTED.get(type(node), f"'{type(node).__name__}' is not allowed")
            raise self.source.error(reason, node)
        return handler(node)

    def _build_Constant(self, node: ast.Constant) -> sp.Expr:
        literal = self.source.literals.get(node.col_offset)
        if isinstance(node.value, bool) or literal is None:
            raise self.source.error("only numbers are allowed as constants", node)
        if isinstance(node.value, complex):
            raise self.source.error("imaginary numbers are not supported", node)
        if re.fullmatch(r"\d+", literal):
            return sp.Integer(literal)
        power_of_ten = re.search(r"[eE]([+-]?\d+)$", literal)
        if power_of_ten and abs(int(power_of_ten.group(1))) > MAX_EXACT_DIGITS:
            raise self.source.error(
                f"number too large: exponent {power_of_ten.group(1)} in {literal} "
                f"(limit {MAX_EXACT_DIGITS})",
                node,
            )
        return sp.Float(literal)

    def _build_Name(self, node: ast.Name) -> sp.Expr:
        name = node.id
        if name in self.symbols:
            return self.symbols[name]
        if name in self.constants:
            return self.constants[name]
        if name in FUNCTIONS:
            raise self.source.error(f"function '{name}' must be called, e.g. {name}(x)", node)
        check_name(name, self.source.text, self.source.column_of(node))
        return make_symbol(name)

    def _build_UnaryOp(self, node: ast.UnaryOp) -> sp.Expr:
        operand = self.build(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise self.source.error("only unary '+' and '-' are allowed", node)

    def _build_BinOp(self, node: ast.BinOp) -> sp.Expr:
        if chain_of(node) == "add":
            terms = [
                -self.build(arg) if op is ast.Sub else self.build(arg)
                for op, arg in flatten_chain(node)
            ]
            return sp.Add(*terms)
        if chain_of(node) == "mul":
            return self._product(node)
        if isinstance(node.op, ast.Pow):
            return self._power(node)
        raise self.source.error(_BINARY_NAMES.get(type(node.op), "unsupported operator"), node)

    def _product(self, node: ast.BinOp) -> sp.Expr:
        factors: list[sp.Expr] = []
        for op, arg in flatten_chain(node):
            value = self.build(arg)
            if op is ast.Div:
                if value.is_zero:
                    raise self.source.error("division by zero", arg)
                value = 1 / value
            factors.append(value)
        product = sp.Mul(*factors)
        coefficient = product.as_coeff_Mul()[0]
        if coefficient.is_Rational and digits(coefficient) > MAX_EXACT_DIGITS:
            raise self.source.error(
                f"number too large: the product has about {digits(coefficient)} digits "
                f"(limit {MAX_EXACT_DIGITS})",
                node,
            )
        return product

    def _power(self, node: ast.BinOp) -> sp.Expr:
        base, exponent = self.build(node.left), self.build(node.right)
        check_power_size(base, exponent, lambda msg: self.source.error(msg, node))
        if base.is_zero and exponent.is_negative:
            raise self.source.error("division by zero (0 to a negative power)", node)
        return self._real_and_finite(sp.Pow(base, exponent), "this power", node)

    def _build_Call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.source.error("only named functions can be called", node)
        name = canonical(node.func.id, FUNCTIONS) or node.func.id
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise self.source.error(unknown_function(name), node)
        if node.keywords:
            raise self.source.error(f"{name}() takes no keyword arguments", node)
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise self.source.error(f"{name}() {_arity_text(spec)}, got {count}", node)
        value = spec.build(*[self.build(arg) for arg in node.args])
        return self._real_and_finite(value, f"{name}() of this argument", node)

    def _real_and_finite(self, value: sp.Expr, what: str, node: ast.AST) -> sp.Expr:
        """Refuse constants such as log(0), tan(pi/2) (infinite) or sqrt(-1) (not real)."""
        if value.has(sp.zoo, sp.nan, sp.oo, sp.S.NegativeInfinity):
            raise self.source.error(f"{what} is undefined ({value})", node)
        if value.has(sp.I) or (value.is_number and value.is_real is False):
            raise self.source.error(f"{what} is not a real number ({value})", node)
        return value


def unknown_function(name: str) -> str:
    """The error for an unknown scalar function: a tensor operation says how to declare shapes,
    a typo gets a did-you-mean, anything else the list of functions."""
    from .tensor_parse import BINARY_ELEMENTWISE, TENSOR_FUNCTIONS  # tensor_parse imports us

    # maximum/minimum/logaddexp are typed max/min/logsumexp here, not tensor operations
    tensor_names = set(TENSOR_FUNCTIONS) - set(FUNCTIONS) - set(BINARY_ELEMENTWISE)
    tensor_operation = canonical(name, tensor_names)
    if tensor_operation is not None:
        return (
            f"unknown function '{name}' ({tensor_operation} is a tensor operation: declare the "
            "tensors' shapes, e.g. --shape X=n,d --shape w=d --shape y=n)"
        )
    hint = did_you_mean(name, FUNCTIONS) or f"known: {', '.join(sorted(FUNCTIONS))}"
    return f"unknown function '{name}' ({hint})"


def _arity_text(spec: FunctionSpec) -> str:
    if spec.max_args == spec.min_args:
        plural = "s" if spec.min_args != 1 else ""
        return f"takes {spec.min_args} argument{plural}"
    if spec.max_args is None:
        return f"takes at least {spec.min_args} arguments"
    return f"takes {spec.min_args} to {spec.max_args} arguments"


def parse(
    text: str,
    *,
    symbols: Mapping[str, sp.Expr] | None = None,
    e_symbol: bool = False,
) -> sp.Expr:
    """Parse ``text`` into a SymPy expression; every unknown name becomes a real Symbol.

    ``symbols`` maps names to the objects they stand for; ``e_symbol=True`` makes ``e`` a
    plain symbol instead of Euler's number.
    """
    source = parse_tree(text, FUNCTIONS)
    builder = _ScalarBuilder(source, dict(symbols or {}), e_symbol)
    try:
        return builder.build(source.tree)
    except (RecursionError, MemoryError):
        raise ParseError(f"expression is nested too deeply (limit {MAX_DEPTH})") from None


def parse_number(text: str) -> sp.Expr:
    """Parse a constant (``3``, ``-1/2``, ``pi/4``, ``1e-3``) for a point or a direction."""
    value = parse(text)
    if value.free_symbols:
        names = ", ".join(sorted(str(s) for s in value.free_symbols))
        raise ParseError(f"expected a number, got an expression in {names}", text)
    if value.is_real is False or value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise ParseError("expected a finite real number", text)
    return value


# --------------------------------------------------------------------------- typed tree


@dataclass(frozen=True, eq=False)
class TypedNode:
    """One operation as the user typed it, operands in typed order; ``value`` is its SymPy value.

    ``kind``: symbol, number (a literal, pi or e), negate (-u), sum (u ± v ± ...), product
    (u * v / w ...), power (u**v) or call (name(u, ...)). ``ops`` holds a sum's signs
    ('+'/'-') or a product's operators ('*'/'/'), one per operand (the first is '+' or '*').
    """

    kind: str
    value: sp.Expr
    operands: tuple[TypedNode, ...] = ()
    ops: tuple[str, ...] = ()
    name: str = ""
    column: int = 1

    def text(self) -> str:
        """The operation as text in typed order: ``abs(y_true - (w*x + b))``."""
        return typed_text(self, lambda node: None)

    def latex(self) -> str:
        """The operation in LaTeX, operands in typed order (``typed_latex``)."""
        return typed_latex(self)


#: Operand kinds that need no parentheses as a factor, a base or an exponent.
_TIGHT = frozenset({"symbol", "number", "call"})


def typed_text(node: TypedNode, leaf: Callable[[TypedNode], str | None]) -> str:
    """``node`` as text, operands in typed order; ``leaf(n)``, where not None, is the text of n.

    Parentheses only where the parser needs them, plus around a nested sum or product (which
    were typed in parentheses) and a negated operand after the first.
    """
    own = leaf(node)
    if own is not None:
        return own
    parts = [typed_text(operand, leaf) for operand in node.operands]
    kinds = [operand.kind if leaf(operand) is None else "symbol" for operand in node.operands]

    def group(k: int, bare: bool) -> str:
        return parts[k] if bare else f"({parts[k]})"

    if node.kind in ("symbol", "number"):
        return node.name or formula(node.value)
    if node.kind == "negate":
        return "-" + group(0, kinds[0] in _TIGHT or kinds[0] == "power")
    if node.kind == "call":
        return f"{node.name}({', '.join(parts)})"
    if node.kind == "power":
        base = group(0, kinds[0] in _TIGHT)
        return f"{base}**{group(1, kinds[1] in _TIGHT or kinds[1] == 'power')}"
    out = ""
    for k, (op, kind) in enumerate(zip(node.ops, kinds, strict=True)):
        nested = kind == node.kind or kind == "sum" or (kind == "negate" and k > 0)
        text = group(k, not nested)
        if node.kind == "sum":
            out += (("-" if op == "-" else "") if k == 0 else f" {op} ") + text
        else:
            out += ("" if k == 0 else op) + text
    return out


#: LaTeX of a call by the name typed, where the primitives table's operator name is not the form
#: a textbook writes: {0} is the argument list.
_LATEX_CALLS = {
    "exp": "e^{{{0}}}",
    "sqrt": "\\sqrt{{{0}}}",
    "abs": "\\left|{0}\\right|",
    "log2": "\\log_{{2}}\\left({0}\\right)",
    "log10": "\\log_{{10}}\\left({0}\\right)",
    "max": "\\max\\left({0}\\right)",
    "min": "\\min\\left({0}\\right)",
    "dirac": "\\delta\\left({0}\\right)",
}


def _latex_call(name: str, arguments: list[str]) -> str:
    """name(arguments) in LaTeX: the table's form, log with a base as log_b, else the
    primitive's operator or \\operatorname{name}."""
    if name in ("log", "ln") and len(arguments) == 2:
        return f"\\log_{{{arguments[1]}}}\\left({arguments[0]}\\right)"
    joined = ", ".join(arguments)
    if name in _LATEX_CALLS:
        return _LATEX_CALLS[name].format(joined)
    row = BY_TYPED_NAME.get(name)
    operator = row.latex if row is not None else f"\\operatorname{{{name}}}"
    return f"{operator}\\left({joined}\\right)"


def typed_latex(node: TypedNode) -> str:
    """``node`` in LaTeX, operands in typed order (as ``typed_text``): a product with divisions
    is one fraction, its numerator and denominator factors each in typed order."""
    parts = [typed_latex(operand) for operand in node.operands]
    kinds = [operand.kind for operand in node.operands]

    def group(k: int, bare: bool) -> str:
        return parts[k] if bare else f"\\left({parts[k]}\\right)"

    if node.kind == "symbol":
        return sp.latex(node.value)
    if node.kind == "number":
        return sp.latex(node.value) if node.name else formula(node.value)
    if node.kind == "negate":
        return "-" + group(0, kinds[0] not in ("sum", "negate"))
    if node.kind == "call":
        return _latex_call(node.name, parts)
    if node.kind == "power":
        base = group(
            0, kinds[0] == "symbol" or (kinds[0] == "number" and node.operands[0].value >= 0)
        )
        return f"{base}^{{{parts[1]}}}"
    if node.kind == "sum":
        out = ""
        for k, (op, kind) in enumerate(zip(node.ops, kinds, strict=True)):
            text = group(k, kind != "sum" and not (kind == "negate" and k > 0))
            out += (("-" if op == "-" else "") if k == 0 else f" {op} ") + text
        return out
    sides: dict[str, list[tuple[str, str]]] = {"*": [], "/": []}
    for op, part, kind in zip(node.ops, parts, kinds, strict=True):
        sides[op].append((part, kind))
    top = _latex_factors(sides["*"], first=True) or "1"
    if not sides["/"]:
        return top
    return f"\\frac{{{top}}}{{{_latex_factors(sides['/'], first=True)}}}"


def _latex_factors(factors: list[tuple[str, str]], first: bool) -> str:
    """(LaTeX, kind) factors side by side: a lone factor bare, else a sum (or a negation after
    the first factor) in parentheses; a \\cdot before a factor that starts with a digit."""
    out = ""
    for k, (part, kind) in enumerate(factors):
        bare = len(factors) == 1 or not (kind == "sum" or (kind == "negate" and k > 0))
        text = part if bare else f"\\left({part}\\right)"
        out += ("" if not out else " \\cdot " if text[:1].isdigit() else " ") + text
    return out


class _RecordingBuilder(_ScalarBuilder):
    """The scalar builder, keeping the value of every ``ast`` node it builds."""

    def __init__(self, source: SourceTree, symbols: Mapping[str, sp.Expr], e_symbol: bool) -> None:
        super().__init__(source, symbols, e_symbol)
        self.values: dict[ast.AST, sp.Expr] = {}

    def build(self, node: ast.AST) -> sp.Expr:
        value = super().build(node)
        self.values[node] = value
        return value

    def typed(self, node: ast.AST) -> TypedNode:
        value, column = self.values[node], self.source.column_of(node)
        if isinstance(node, ast.UnaryOp):
            inner = self.typed(node.operand)
            return inner if isinstance(node.op, ast.UAdd) else TypedNode("negate", value, (inner,))
        if isinstance(node, ast.BinOp) and chain_of(node) is not None:
            items = flatten_chain(node)
            kind = "sum" if chain_of(node) == "add" else "product"
            signs: dict[type[ast.operator] | None, str] = {None: "+" if kind == "sum" else "*"}
            signs.update({ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"})
            operands = tuple(self.typed(arg) for _, arg in items)
            ops = tuple(signs[op] for op, _ in items)
            return TypedNode(kind, value, operands, ops, column=column)
        if isinstance(node, ast.BinOp):
            operands = (self.typed(node.left), self.typed(node.right))
            return TypedNode("power", value, operands, column=column)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            operands = tuple(self.typed(arg) for arg in node.args)
            return TypedNode("call", value, operands, name=node.func.id, column=column)
        if isinstance(node, ast.Name):
            kind = "symbol" if value.free_symbols else "number"
            return TypedNode(kind, value, name=node.id, column=column)
        return TypedNode("number", value, column=column)


def typed_tree(
    text: str, *, symbols: Mapping[str, sp.Expr] | None = None, e_symbol: bool = False
) -> TypedNode:
    """Parse ``text`` (as :func:`parse` does) into its typed operations, operand order kept.

    ``typed_tree(t).value == parse(t)``; ``typed_tree("y - (w*x + b)")`` is a sum with
    operands y and the sum w*x + b (sign '-'), where SymPy's form is ``-b - w*x + y``.
    """
    source = parse_tree(text, FUNCTIONS)
    builder = _RecordingBuilder(source, dict(symbols or {}), e_symbol)
    try:
        builder.build(source.tree)
        return builder.typed(source.tree)
    except (RecursionError, MemoryError):
        raise ParseError(f"expression is nested too deeply (limit {MAX_DEPTH})") from None
