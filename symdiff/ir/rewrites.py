"""Passes over the IR that generated code runs for every loss, scalar or tensor.

Each pass takes root nodes and returns equal roots (in exact arithmetic), rebuilt bottom-up
with the smart constructors. Rules are data: ``STABLE_RULES`` maps an operation to the
rewrites tried on it, in order, each recorded by name when it fires:

- ``sigmoid_explicit``      1/(1 + exp(-u))       -> sigmoid(u)
- ``softplus_explicit``     log(1 + exp(u))       -> softplus(u)
- ``logaddexp``             log(exp(a) + exp(b))  -> logaddexp(a, b)
- ``log1p``                 log(1 + x)            -> log1p(x)
- ``expm1``                 exp(x) - 1            -> expm1(x)
- ``softplus_reflection``   softplus(-u)          -> softplus(u) - u, when softplus(u) is
                                                     computed too (one softplus instead of two)
- ``sigmoid_via_softplus``  sigmoid(u)            -> exp(-softplus(-u)) (after differentiation:
                                                     never overflows, shares softplus with the loss)

The smart constructors apply ``log(sigmoid(u)) = -softplus(-u)``, ``log(1 - sigmoid(u)) =
-softplus(u)``, ``log(softmax(Z)) = log_softmax(Z)`` and the softmax cross-entropy fusion as
nodes are built, so every loss gets them too.

``reassociate`` groups the factors of a product by size, ``c * (p1 * p2 * ...) * (x * y ...)``:
parameter-only factors are multiplied as scalars, once, before they meet the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .nodes import Node, add, const, is_const, make_node, mul, scale, scaled, sub, walk
from .ops import binary, elementwise

Rule = Callable[[Node], Node | None]

#: Every rewrite's identity, by name (documented in generated modules).
REWRITE_FORMULAS: dict[str, str] = {
    "sigmoid_explicit": "1/(1 + exp(-u)) -> sigmoid(u)",
    "softplus_explicit": "log(1 + exp(u)) -> softplus(u)",
    "log_sigmoid": "log(sigmoid(u)) -> -softplus(-u)",
    "log_one_minus_sigmoid": "log(1 - sigmoid(u)) -> -softplus(u)",
    "logaddexp": "log(exp(a) + exp(b)) -> logaddexp(a, b)",
    "log1p": "log(1 + x) -> log1p(x)",
    "expm1": "exp(x) - 1 -> expm1(x)",
    "softplus_reflection": "softplus(-u) -> softplus(u) - u  (when softplus(u) is computed too)",
    "sigmoid_via_softplus": "sigmoid(u) -> exp(-softplus(-u))",
    "log_softmax": "log(softmax(Z)) -> log_softmax(Z) = Z - logsumexp(Z)",
    "softmax_cross_entropy": "cross_entropy(Y, softmax(Z)) -> one node, gradient softmax(Z) - Y",
}


def rebuild(
    roots: Sequence[Node], rule: Callable[[Node], Node | None], keep: frozenset[Node] = frozenset()
) -> list[Node]:
    """Roots rebuilt children first; ``rule(node)`` (args already rebuilt) may replace a node.

    Nodes in ``keep`` (original nodes) are rebuilt but not offered to the rule.
    """
    memo: dict[Node, Node] = {}
    for node in walk(list(roots)):
        args = tuple(memo[a] for a in node.args)
        current = node if args == node.args else make_node(node.op, args, node.attrs, node.shape)
        replaced = None if node in keep else rule(current)
        memo[node] = current if replaced is None else replaced
    return [memo[r] for r in roots]


def _operands(node: Node, op: str) -> list[Node]:
    """The operands of a chain of one binary operation, left to right (no recursion)."""
    operands: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.op == op:
            stack.extend(reversed(current.args))
        else:
            operands.append(current)
    return operands


def _terms(node: Node) -> list[Node]:
    """The operands of a chain of additions."""
    return _operands(node, "add")


def _sum_of(terms: Sequence[Node]) -> Node:
    result = terms[0]
    for term in terms[1:]:
        result = add(result, term)
    return result


def _one_plus(node: Node) -> Node | None:
    """x for a sum 1 + x (either order), else None."""
    if node.op != "add":
        return None
    first, second = node.args
    if is_const(first, 1) and second.shape == node.shape:
        return second
    if is_const(second, 1) and first.shape == node.shape:
        return first
    return None


def _sigmoid_explicit(node: Node) -> Node | None:
    if node.op == "div" and is_const(node.args[0], 1):
        denominator = node.args[1]
    elif node.op == "pow" and is_const(node.args[1], -1):
        denominator = node.args[0]
    else:
        return None
    rest = _one_plus(denominator)
    if rest is None or rest.op != "exp":
        return None
    return elementwise("sigmoid", scale(-1, rest.args[0]))


def _softplus_explicit(node: Node) -> Node | None:
    rest = _one_plus(node.args[0])
    if rest is None or rest.op != "exp":
        return None
    return elementwise("softplus", rest.args[0])


def _logaddexp(node: Node) -> Node | None:
    terms = _terms(node.args[0])
    if len(terms) < 2 or any(t.op != "exp" for t in terms):
        return None
    result = terms[0].args[0]
    for term in terms[1:]:
        result = binary("logaddexp", result, term.args[0])
    return result if result.shape == node.shape else None


def _log1p(node: Node) -> Node | None:
    rest = _one_plus(node.args[0])
    return None if rest is None else elementwise("log1p", rest)


def _expm1(node: Node) -> Node | None:
    terms = _terms(node)
    minus_one = next((t for t in terms if is_const(t, -1)), None)
    exponential = next((t for t in terms if t.op == "exp"), None)
    if minus_one is None or exponential is None:
        return None
    rest = [t for t in terms if t is not minus_one and t is not exponential]
    result = _sum_of([elementwise("expm1", exponential.args[0]), *rest])
    return result if result.shape == node.shape else None


#: Operation -> the named stability rewrites tried on it, in order.
STABLE_RULES: dict[str, tuple[tuple[str, Rule], ...]] = {
    "div": (("sigmoid_explicit", _sigmoid_explicit),),
    "pow": (("sigmoid_explicit", _sigmoid_explicit),),
    "log": (
        ("softplus_explicit", _softplus_explicit),
        ("logaddexp", _logaddexp),
        ("log1p", _log1p),
    ),
    "add": (("expm1", _expm1),),
}


def _apply_rules(applied: list[str]) -> Callable[[Node], Node | None]:
    def rule(node: Node) -> Node | None:
        for name, rewrite in STABLE_RULES.get(node.op, ()):
            replaced = rewrite(node)
            if replaced is not None:
                applied.append(name)
                return replaced
        return None

    return rule


def _negated(node: Node) -> Node | None:
    """u for -u, else None."""
    c, x = scaled(node)
    return x if c == -1 else None


def reflect_softplus(roots: Sequence[Node], applied: list[str]) -> list[Node]:
    """softplus(-u) -> softplus(u) - u wherever softplus(u) is computed as well."""
    present = {n for n in walk(list(roots)) if n.op == "softplus"}

    def rule(node: Node) -> Node | None:
        if node.op != "softplus":
            return None
        u = _negated(node.args[0])
        if u is None or elementwise("softplus", u) not in present:
            return None
        applied.append("softplus_reflection")
        return sub(elementwise("softplus", u), u)

    return rebuild(roots, rule)


def stabilize(roots: Sequence[Node]) -> tuple[list[Node], list[str]]:
    """The stability rewrites of the loss, before it is differentiated; (roots, names fired)."""
    applied: list[str] = []
    rewritten = rebuild(roots, _apply_rules(applied))
    return reflect_softplus(rewritten, applied), applied


def stabilize_for_evaluation(roots: Sequence[Node]) -> tuple[list[Node], list[str]]:
    """sigmoid(u) -> exp(u - softplus(u)) when softplus(u) is computed, else exp(-softplus(-u))."""
    applied: list[str] = []
    present = {n for n in walk(list(roots)) if n.op == "softplus"}

    def rule(node: Node) -> Node | None:
        if node.op != "sigmoid":
            return None
        u = node.args[0]
        applied.append("sigmoid_via_softplus")
        if elementwise("softplus", u) in present:
            applied.append("softplus_reflection")
            return elementwise("exp", sub(u, elementwise("softplus", u)))
        return elementwise("exp", scale(-1, elementwise("softplus", scale(-1, u))))

    return reflect_softplus(rebuild(roots, rule), applied), applied


def _factors(node: Node) -> list[Node]:
    """The operands of a chain of elementwise products."""
    return _operands(node, "mul")


def _product(factors: Sequence[Node]) -> Node:
    result = factors[0]
    for factor in factors[1:]:
        result = mul(result, factor)
    return result


def _grouped_product(node: Node) -> Node | None:
    if node.op != "mul" or node.ndim == 0:
        return None
    factors = _factors(node)
    constants = [f for f in factors if is_const(f)]
    scalars = [f for f in factors if f.ndim == 0 and not is_const(f)]
    arrays = [f for f in factors if f.ndim > 0]
    if not scalars or not arrays or len(scalars) + len(constants) < 2:
        return None
    coefficient = const(1)
    for c in constants:
        coefficient = mul(coefficient, c)
    grouped = mul(coefficient, mul(_product(scalars), _product(arrays)))
    return grouped if grouped.shape == node.shape else None


def reassociate(roots: Sequence[Node]) -> list[Node]:
    """Products with their scalar factors grouped: (p1 * p2 * ...) * (arrays), scalars first.

    Only the outermost product of a chain is regrouped (inner links are part of it).
    """
    nodes = walk(list(roots))
    inner = {a for n in nodes if n.op == "mul" for a in n.args if a.op == "mul"}
    outer_parents = {a for n in nodes if n.op != "mul" for a in n.args} | set(roots)
    return rebuild(roots, _grouped_product, frozenset(inner - outer_parents))
