"""The safe parser: every accepted form, and hostile or malformed input that must fail cleanly.

A hostile input must raise a one-line ParseError (never RecursionError/MemoryError, never hang),
point at the column where that makes sense, and execute nothing: payloads that would create a
file leave no file, and no exec/system/spawn audit event fires while parsing.
"""

from __future__ import annotations

import os
import sys

import pytest
import sympy as sp
from click.testing import CliRunner

from symdiff.calculus.api import parse_point, split_top_level, unit_vector
from symdiff.checks import MAX_EXACT_DIGITS
from symdiff.cli import cli, load_commands
from symdiff.errors import InputError, ParseError
from symdiff.frontend.parse import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_LITERAL_DIGITS,
    parse,
    parse_number,
)
from symdiff.functions import expm1, log1p, relu, sigmoid, softplus

x, y, z = (sp.Symbol(n, real=True) for n in "xyz")

# --------------------------------------------------------------------------- accepted forms

ACCEPTED = [
    ("42", sp.Integer(42)),
    ("0", sp.Integer(0)),
    ("3.5", sp.Float("3.5")),
    (".5", sp.Float("0.5")),
    ("3.", sp.Float(3)),
    ("1e-3", sp.Float("0.001")),
    ("2.5E3", sp.Float(2500)),
    ("6.02e+23", sp.Float("6.02e23")),
    ("x", x),
    ("y_1", sp.Symbol("y_1", real=True)),
    ("alpha", sp.Symbol("alpha", real=True)),
    ("_private", sp.Symbol("_private", real=True)),
    ("x + y", x + y),
    ("x - y", x - y),
    ("x*y", x * y),
    ("x/y", x / y),
    ("x**2", x**2),
    ("x^2", x**2),
    ("x^y^z", x ** (y**z)),
    ("-x", -x),
    ("--x", x),
    ("+x", x),
    ("-x**2", -(x**2)),
    ("(x + 1)*2", 2 * x + 2),
    ("((x))", x),
    ("2x", 2 * x),
    ("2x^2", 2 * x**2),
    ("3(x+1)", 3 * (x + 1)),
    ("2 pi", 2 * sp.pi),
    ("2pi x", 2 * sp.pi * x),
    ("x y", x * y),
    ("x(x + 1)", x * (x + 1)),
    ("(x + 1)(x - 1)", (x + 1) * (x - 1)),
    ("2 sin(x)", 2 * sp.sin(x)),
    ("sin(x)cos(x)", sp.sin(x) * sp.cos(x)),
    ("pi", sp.pi),
    ("e", sp.E),
    ("e^x", sp.exp(x)),
    ("exp(1)", sp.E),
    ("x/2/y", x / (2 * y)),
    ("2**-1", sp.Rational(1, 2)),
    ("4^(1/2)", sp.Integer(2)),
    ("  x\t+\n1 ", x + 1),
    ("1 - x + y - z", 1 - x + y - z),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=[t for t, _ in ACCEPTED])
def test_accepted_forms(text: str, expected: sp.Expr) -> None:
    result = parse(text)
    assert result == expected
    assert all(s.is_real for s in result.free_symbols)


#: Every whitelisted function with the SymPy expression it must build (kept in sync with FUNCTIONS).
FUNCTION_CALLS = {
    "exp": ("exp(x)", sp.exp(x)),
    "log": ("log(x)", sp.log(x)),
    "ln": ("ln(x)", sp.log(x)),
    "log2": ("log2(x)", sp.log(x) / sp.log(2)),
    "log10": ("log10(x)", sp.log(x) / sp.log(10)),
    "log1p": ("log1p(x)", log1p(x)),
    "expm1": ("expm1(x)", expm1(x)),
    "sqrt": ("sqrt(x)", sp.sqrt(x)),
    "abs": ("abs(x)", sp.Abs(x)),
    "sign": ("sign(x)", sp.sign(x)),
    "sin": ("sin(x)", sp.sin(x)),
    "cos": ("cos(x)", sp.cos(x)),
    "tan": ("tan(x)", sp.tan(x)),
    "sec": ("sec(x)", sp.sec(x)),
    "csc": ("csc(x)", sp.csc(x)),
    "cot": ("cot(x)", sp.cot(x)),
    "sinh": ("sinh(x)", sp.sinh(x)),
    "cosh": ("cosh(x)", sp.cosh(x)),
    "tanh": ("tanh(x)", sp.tanh(x)),
    "asin": ("asin(x)", sp.asin(x)),
    "acos": ("acos(x)", sp.acos(x)),
    "atan": ("atan(x)", sp.atan(x)),
    "asinh": ("asinh(x)", sp.asinh(x)),
    "acosh": ("acosh(x)", sp.acosh(x)),
    "atanh": ("atanh(x)", sp.atanh(x)),
    "erf": ("erf(x)", sp.erf(x)),
    "sigmoid": ("sigmoid(x)", sigmoid(x)),
    "logistic": ("logistic(x)", sigmoid(x)),
    "relu": ("relu(x)", relu(x)),
    "softplus": ("softplus(x)", softplus(x)),
    "silu": ("silu(x)", x * sigmoid(x)),
    "swish": ("swish(x)", x * sigmoid(x)),
    "gelu": ("gelu(x)", x * (1 + sp.erf(x / sp.sqrt(2))) / 2),
    "logsumexp": ("logsumexp(x, y, z)", sp.log(sp.exp(x) + sp.exp(y) + sp.exp(z))),
    "min": ("min(x, y)", sp.Min(x, y)),
    "heaviside": ("heaviside(x, 1/2)", sp.Heaviside(x, sp.Rational(1, 2))),
    "dirac": ("dirac(x, 1)", sp.DiracDelta(x, 1)),
    "max": ("max(x, y, 0)", sp.Max(x, y, 0)),
}


def test_every_whitelisted_function_is_covered() -> None:
    assert set(FUNCTION_CALLS) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTION_CALLS))
def test_whitelisted_function(name: str) -> None:
    text, expected = FUNCTION_CALLS[name]
    assert parse(text) == expected


def test_log_with_a_base() -> None:
    assert parse("log(x, 2)") == sp.log(x) / sp.log(2)
    assert parse("log(8, 2)").equals(3)


def test_e_as_a_plain_symbol() -> None:
    e = sp.Symbol("e", real=True)
    assert parse("e*x", e_symbol=True) == e * x
    assert parse("e*x") == sp.E * x
    assert parse("exp(1) + e", e_symbol=True) == sp.E + e


def test_symbols_mapping_replaces_names() -> None:
    w = sp.Symbol("w", positive=True)
    assert parse("w*x", symbols={"w": w}) == w * x


def test_one_letter_name_before_bracket_is_a_product_longer_name_is_an_unknown_function() -> None:
    assert parse("a(b + 1)") == sp.Symbol("a", real=True) * (sp.Symbol("b", real=True) + 1)
    with pytest.raises(ParseError, match=r"unknown function 'ab' .* at column 1"):
        parse("ab(x + 1)")


def test_flat_chains_are_not_deep() -> None:
    text = "+".join(["x"] * (MAX_LENGTH // 2 - 1))
    assert parse(text) == (MAX_LENGTH // 2 - 1) * x
    assert parse("*".join(["x"] * 2000)) == x**2000


def test_limits_are_exact() -> None:
    assert parse("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH) == x
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    assert parse("1" * MAX_LITERAL_DIGITS) == sp.Integer("1" * MAX_LITERAL_DIGITS)
    with pytest.raises(ParseError, match="number literal is too long"):
        parse("1" * (MAX_LITERAL_DIGITS + 1))
    assert parse("x+" * (MAX_LENGTH // 2 - 1) + "x") == (MAX_LENGTH // 2) * x  # 9,999 chars
    with pytest.raises(ParseError, match="too long"):
        parse("x+" * (MAX_LENGTH // 2) + "x")
    assert parse(f"10**{MAX_EXACT_DIGITS - 1}") == sp.Integer(10) ** (MAX_EXACT_DIGITS - 1)
    with pytest.raises(ParseError, match="number too large"):
        parse(f"10**{MAX_EXACT_DIGITS + 1}")


def test_printing_an_exact_number_of_the_largest_accepted_size_works() -> None:
    value = parse(f"7**{int(MAX_EXACT_DIGITS / 0.846)}")  # just under MAX_EXACT_DIGITS digits
    assert 0.9 * MAX_EXACT_DIGITS < len(str(value)) <= MAX_EXACT_DIGITS


# --------------------------------------------------------------------------- hostile input

#: (input, a fragment of the message, the 1-based column or None when no column is meaningful)
HOSTILE = [
    ("__import__('os').system('touch PWNED')", "strings are not allowed", 12),
    ("__import__", "names starting with '__'", 1),
    ("open('PWNED', 'w')", "strings are not allowed", 6),
    ("open(x)", "unknown function 'open'", 1),
    ("exec(x)", "unknown function 'exec'", 1),
    ("eval(x)", "unknown function 'eval'", 1),
    ("getattr(x, y)", "unknown function 'getattr'", 1),
    ("print(x)", "unknown function 'print'", 1),
    ("globals()", "unknown function 'globals'", 1),
    ("x.__class__", "attribute access", 1),
    ("().__class__.__bases__[0].__subclasses__()", "", None),
    ("sin.__globals__", "attribute access", 1),
    ("x.real", "attribute access", 1),
    ("__builtins__", "names starting with '__'", 1),
    ("lambda: 1", "keyword 'lambda'", 1),
    ("'abc'", "strings are not allowed", 1),
    ('"x"', "strings are not allowed", 1),
    ("f'{x}'", "strings are not allowed", 2),
    ("b'x'", "strings are not allowed", 2),
    ("[i for i in x]", "keyword 'for'", 4),
    ("{x: y}", "", None),
    ("{x, y}", "", None),
    ("[x, y]", "", None),
    ("x[0]", "indexing with []", 1),
    ("x[1:2]", "indexing with []", 1),
    ("sin(x=1)", "no keyword arguments", 1),
    ("sin(**x)", "", 1),
    ("sin(*x)", "'*' unpacking", 5),
    ("(y := 2)", "syntax error", 4),
    ("x if y else z", "keyword 'if'", 3),
    ("x and y", "keyword 'and'", 3),
    ("not x", "keyword 'not'", 1),
    ("import os", "keyword 'import'", 1),
    ("None", "keyword 'None'", 1),
    ("True + 1", "keyword 'True'", 1),
    ("x < y", "comparisons", 1),
    ("x == y", "comparisons", 1),
    ("x % y", "operator '%'", 1),
    ("x // y", "operator '//'", 1),
    ("x & y", "operator '&'", 1),
    ("x << 2", "syntax error", 4),
    ("~x", "unary", 1),
    ("x,y", "tuples", 1),
    ("x = 1", "syntax error", 3),
    ("x; y", "syntax error", 2),
    ("x # comment", "unexpected character '#'", 3),
    ("$x", "unexpected character '$'", 1),
    ("x\\\ny", "unexpected character", 2),
    ("\x00", "unexpected character", 1),
    ("(x + 1", "unclosed '('", 1),
    ("x + 1)", "unmatched ')'", 6),
    ("((x)", "unclosed '('", 1),
    ("(x]", "unmatched ']'", 3),
    ("x +", "ends with '+'", 3),
    ("x * * y", "syntax error", 5),
    ("2 . 5", "syntax error", 5),
    ("", "empty expression", None),
    ("   ", "empty expression", None),
    ("sin", "must be called", 1),
    ("sin()", "takes 1 argument, got 0", 1),
    ("sin(x, y)", "takes 1 argument, got 2", 1),
    ("max(x)", "at least 2 arguments", 1),
    ("foo(x)", "unknown function 'foo'", 1),
    ("x + ab(y)", "unknown function 'ab'", 5),
    ("1/0", "division by zero", 3),
    ("0**-1", "division by zero", 1),
    ("x*log(0)", "log() of this argument is undefined (zoo)", 3),
    ("x + tan(pi/2)", "tan() of this argument is undefined", 5),
    ("log(x, 1)", "log() of this argument is undefined", 1),
    ("sqrt(-1)*x", "not a real number (I)", 1),
    ("(-8)**(1/3)", "this power is not a real number", 1),
    ("acosh(0)", "not a real number", 1),
    ("х + 1", "U+0445 CYRILLIC SMALL LETTER HA", 1),
    ("cοs(x)", "U+03BF GREEK SMALL LETTER OMICRON", 2),
    ("ｘ", "FULLWIDTH LATIN SMALL LETTER X", 1),
    ("１ + x", "FULLWIDTH DIGIT ONE", 1),
    ("x − 1", "(use '-')", 3),
    ("2 × x", "(use '*')", 3),
    ("x\u200b+1", "ZERO WIDTH SPACE", 2),
    ("2²", "SUPERSCRIPT TWO", 2),
    ("9**9**9", "number too large", 1),
    ("9^9^9", "number too large", 1),
    ("2**10**10", "number too large", 1),
    ("2**(10**9/3)", "number too large", 1),
    ("9.0**9.0**9.0**9.0", "number too large", 6),
    ("1e999999", "number too large", 1),
    ("x**-1e99999", "number too large", 5),
    ("10**9999*10**9999", "number too large", 1),
    ("(" * 100_000 + "x" + ")" * 100_000, "too long", None),
    ("(" * 4000 + "x" + ")" * 4000, "nested too deeply", MAX_DEPTH + 1),
    ("-" * 5000 + "x", "nested too deeply", None),
    ("x**" * 1000 + "x", "nested too deeply", None),
    ("sin(" * 1000 + "x" + ")" * 1000, "nested too deeply", None),
    ("1" * 5000, "number literal is too long", 1),
    ("x" * (MAX_LENGTH + 1), "too long", None),
]


@pytest.fixture
def no_side_effects(tmp_path, monkeypatch):
    """Run in an empty directory and record exec/system/spawn audit events meanwhile."""
    monkeypatch.chdir(tmp_path)
    _AUDIT["events"] = []
    _AUDIT["active"] = True
    yield _AUDIT["events"]
    _AUDIT["active"] = False
    assert os.listdir(tmp_path) == []


_AUDIT: dict = {"active": False, "events": []}
_WATCHED = ("exec", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen")


def _audit_hook(event: str, args: tuple) -> None:
    if not _AUDIT["active"]:
        return
    if event in _WATCHED or (event == "open" and "PWNED" in str(args[:1])):
        _AUDIT["events"].append(event)


sys.addaudithook(_audit_hook)
load_commands(library=True)  # the commands load lazily: import them before any audit starts


def test_hostile_list_is_long_enough() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize(
    ("text", "fragment", "column"), HOSTILE, ids=[repr(t[:30]) for t, _, _ in HOSTILE]
)
def test_hostile_input_fails_cleanly(text, fragment, column, no_side_effects) -> None:
    # how long the slowest ones take is measured (not asserted) by benchmarks/bench_wall_clock.py
    with pytest.raises(ParseError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message and message
    assert fragment in message
    if column is not None:
        assert info.value.column == column
        assert message.endswith(f"at column {column}")
    assert no_side_effects == []


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch PWNED')",
        "open('PWNED','w').write('x')",
        "exec(\"open('PWNED','w')\")",
        "().__class__.__base__.__subclasses__()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "(lambda: open('PWNED','w'))()",
        "globals()['__builtins__']['open']('PWNED','w')",
    ],
)
def test_payloads_execute_nothing_through_the_cli(payload, no_side_effects) -> None:
    result = CliRunner().invoke(cli, ["diff", payload, "--wrt", "x"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert no_side_effects == []


def test_recursion_and_memory_errors_never_escape(no_side_effects) -> None:
    for text in ("(" * 9_000 + ")" * 9_000, "-" * 9_999 + "x", "x**" * 3_000 + "x"):
        with pytest.raises(ParseError):
            parse(text)


# --------------------------------------------------------------------------- numbers, points


def test_parse_number() -> None:
    assert parse_number("3") == 3
    assert parse_number("-1/2") == sp.Rational(-1, 2)
    assert parse_number("pi/4") == sp.pi / 4
    assert parse_number("1e-3") == sp.Float("0.001")
    for bad, fragment in [
        ("x", "expected a number"),
        ("sqrt(-1)", "not a real number"),
        ("log(0)", "undefined"),
        ("asin(2)", "not a real number"),
        ("1/0", "division by zero"),
    ]:
        with pytest.raises(ParseError, match=fragment):
            parse_number(bad)


def test_parse_point() -> None:
    assert parse_point("x=3,y=1/2") == {"x": 3, "y": sp.Rational(1, 2)}
    assert parse_point(" x = pi/4 , y=-2 ") == {"x": sp.pi / 4, "y": -2}
    assert parse_point("x=max(1, 2),y=0.5") == {"x": 2, "y": sp.Float("0.5")}
    assert parse_point({"x": 3, sp.Symbol("y"): "1/3"}) == {"x": 3, "y": sp.Rational(1, 3)}
    for bad in ("x", "x=", "=3", "x=y", "x=__import__('os')", "x=1e999999", "x=True", "x=1,x=2"):
        with pytest.raises(InputError):
            parse_point(bad)


def test_split_top_level_and_unit_vector() -> None:
    assert split_top_level("1,max(2, 3),-1") == ["1", "max(2, 3)", "-1"]
    assert unit_vector(["3", "4"]) == [sp.Rational(3, 5), sp.Rational(4, 5)]
    assert unit_vector([2, 3, -1]) == [2 / sp.sqrt(14), 3 / sp.sqrt(14), -1 / sp.sqrt(14)]
    with pytest.raises(InputError, match="zero vector"):
        unit_vector(["0", "0"])
    with pytest.raises(ParseError, match="expected a number"):
        unit_vector(["a", "1"])


CLI_POINT_ERRORS = [
    (["diff", "x**2", "--wrt", "x", "--at", "x"], "expected name=value"),
    (["diff", "x**2", "--wrt", "x", "--at", "x=foo"], "expected a number"),
    (["diff", "x**2", "--wrt", "x", "--at", "y=1"], "does not use"),
    (["diff", "x**2", "--wrt", "x", "--at", "x=open('PWNED')"], "strings are not allowed"),
    (["diff", "x**2*y", "--wrt", "x", "--at", "x=1"], "no value given for y"),
    (["diff", "x**2", "--wrt", "x", "--at", "x=1e99999"], "number too large"),
    (["diff", "x**2", "--wrt", "x", "--at", "x=1,x=2"], "'x' is given twice"),
    (["grad", "x*y", "--direction", "1,2,3"], "3 components but there are 2"),
    (["grad", "x*y", "--direction", "0,0"], "zero vector"),
    (["grad", "x*y", "--direction", "a,1"], "expected a number"),
    (["grad", "x*y", "--direction", "1,(2,3)"], "tuples"),
    (["hessian", "x*y**3", "--at", "x=1"], "no value given for y"),
    (["jacobian", "x", "y", "--at", "z=1"], "does not use"),
]


@pytest.mark.parametrize(
    ("args", "fragment"), CLI_POINT_ERRORS, ids=[" ".join(a) for a, _ in CLI_POINT_ERRORS]
)
def test_cli_point_and_direction_errors(args, fragment, no_side_effects) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_point_and_direction_values() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["diff", "x**2*y", "--wrt", "x", "--at", "x=1/2,y=pi"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].startswith("at x=1/2, y=pi: pi ≈ 3.14159265359")
    result = runner.invoke(cli, ["grad", "x*y", "--direction", "3,4", "--at", "x=1,y=2"])
    assert result.exit_code == 0
    assert "directional derivative along u = (3/5, 4/5):" in result.stdout
    assert "∇f·u = y*(3/5) + x*(4/5)\n       = (4*x + 3*y)/5" in result.stdout
    assert result.stdout.rstrip().endswith("at x=1, y=2: 2")


@pytest.mark.parametrize(
    ("text", "fragment", "column"),
    [
        ("0x10", "hexadecimal", 1),
        ("0b101 + x", "hexadecimal", 1),
        ("2*0o17", "hexadecimal", 3),
        ("1_000*x", "digit separators", 2),
    ],
)
def test_python_only_literals_are_refused_not_multiplied(
    text: str, fragment: str, column: int
) -> None:
    with pytest.raises(ParseError, match=fragment) as caught:
        parse(text)
    assert caught.value.column == column


def test_glued_products_still_work() -> None:
    assert parse("10x") == 10 * x
    assert parse("0 x") == 0
