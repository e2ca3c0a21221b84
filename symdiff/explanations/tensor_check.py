"""``symdiff check LOSS --shape ... --wrt W --answer "..."``: is a matrix answer dL/dW?

Three tests in order: the shape (the answer must have W's shape; a wrong shape is the most common
error and is named as such, with a hint when it is the transposed shape), then the symbolic form
(the answer, tidied, is the very node symdiff's reverse mode gives), then values: both evaluated
at ``CHECK_TRIALS`` random points (named dimensions get distinct small sizes, so a transpose or
a wrong axis cannot pass by accident). A difference gives a counterexample: the entry where the
two differ most, both values there, and when it fits, what the answer is (a multiple, the
transpose).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..autodiff.reverse import tensor_gradient
from ..codegen.tensor import evaluate
from ..errors import InputError, ShapeError
from ..frontend.points import compact
from ..frontend.tensor_parse import parse_tensor
from ..ir.nodes import Node, Shape, format_shape, variables
from ..ir.printing import to_latex, to_text
from ..ir.simplify import tidy
from .render import Explained, align

CHECK_TRIALS = 6
CHECK_TOLERANCE = 1e-7
#: Sizes given to named dimensions at the random points (distinct when there are few names).
SIZES = (3, 2, 4, 5, 6, 7)


@dataclass(frozen=True)
class TensorCheck(Explained):
    """The verdict on ``answer`` as dL/d``wrt``; ``counterexample`` when they differ."""

    loss: str
    wrt: str
    expected: Node
    answer: str
    answer_shape: Shape | None
    correct: bool
    how: str
    counterexample: dict[str, Any] | None = field(default=None)

    def text(self) -> str:
        lines = [
            f"dL/d{self.wrt} of {self.loss} = {to_text(self.expected)}    "
            f"{format_shape(self.expected.shape)}"
        ]
        verdict = "correct" if self.correct else "incorrect"
        lines.append(f"{verdict}: {self.answer} {self.how}")
        example = self.counterexample
        if example is not None:
            sizes = ", ".join(f"{d} = {n}" for d, n in example["dims"].items())
            lines.append(f"  at random arrays{' with ' + sizes if sizes else ''}:")
            lines += [f"    {n} = {compact(v)}" for n, v in example["point"].items()]
            entry = example["entry"]
            index = "" if not entry else "[" + ", ".join(map(str, entry)) + "]"
            lines.append(
                f"  entry dL/d{self.wrt}{index}: expected {compact(example['expected'], 10)}, "
                f"your answer {compact(example['answer'], 10)}"
            )
            if example.get("hint"):
                lines.append(f"  {example['hint']}")
        return "\n".join(lines)

    def markdown(self) -> str:
        return "```\n" + self.text() + "\n```"

    def latex(self) -> str:
        relation = "=" if self.correct else r"\neq"
        symbol = sp.latex(sp.Symbol(self.wrt))
        return align(
            [rf"\frac{{\partial L}}{{\partial {symbol}}} &= {to_latex(self.expected)}"]
            + ([rf"&{relation} \text{{{self.answer}}}"] if self.answer else [])
        )

    def to_dict(self) -> dict[str, Any]:
        example = self.counterexample
        if example is not None:
            example = {
                **example,
                "point": {n: np.asarray(v).tolist() for n, v in example["point"].items()},
            }
        return {
            "correct": self.correct,
            "how": self.how,
            "expected": to_text(self.expected),
            "expected_shape": list(self.expected.shape),
            "answer": self.answer,
            "answer_shape": None if self.answer_shape is None else list(self.answer_shape),
            "counterexample": example,
        }


def check_tensor_answer(
    loss: str, shapes: Mapping[str, Shape], wrt: str | None, answer: str, seed: int = 0
) -> TensorCheck:
    """Check ``answer`` against dL/d``wrt``: shape, then symbolic form, then random values."""
    gradient = tensor_gradient(loss, shapes, [wrt] if wrt else None)
    if len(gradient.wrt) != 1:
        raise InputError("say which symbol the answer is a derivative by (use --wrt)")
    param, expected = gradient.wrt[0], gradient.gradients[0]
    known = {v.name for v in variables(gradient.loss)}
    verdict = _Verdict(loss, param.name, expected, answer)
    try:
        proposed = parse_tensor(answer, shapes)
    except ShapeError as exc:
        return verdict(None, False, f"has no shape: {exc}")
    extra = sorted({v.name for v in variables(proposed)} - known)
    if extra:
        raise InputError(f"the answer uses {', '.join(extra)}, which the loss does not")
    if proposed.shape != expected.shape:
        hint = ""
        if proposed.ndim == 2 and proposed.shape[::-1] == expected.shape:
            hint = " (the transposed shape: transpose your answer?)"
        return verdict(
            proposed.shape,
            False,
            f"has the wrong shape: {format_shape(proposed.shape)}, but dL/d{param.name} has the "
            f"shape of {param.name}, {format_shape(expected.shape)}{hint}",
        )
    if tidy(proposed) is expected:
        return verdict(proposed.shape, True, "is the same matrix formula (symbolically)")
    return _numeric(verdict, gradient.loss, expected, proposed, seed)


@dataclass(frozen=True)
class _Verdict:
    loss: str
    wrt: str
    expected: Node
    answer: str

    def __call__(
        self, shape: Shape | None, correct: bool, how: str, example: dict | None = None
    ) -> TensorCheck:
        return TensorCheck(
            self.loss, self.wrt, self.expected, self.answer, shape, correct, how, example
        )


def _numeric(
    verdict: _Verdict, loss: Node, expected: Node, proposed: Node, seed: int
) -> TensorCheck:
    """Compare values at random points; the first point where they differ is the counterexample."""
    rng = np.random.default_rng(seed)
    leaves = variables(loss)
    names = list(dict.fromkeys(d for v in leaves for d in v.shape if isinstance(d, str)))
    dims = {name: SIZES[i % len(SIZES)] for i, name in enumerate(names)}
    compared = 0
    for trial in range(CHECK_TRIALS):
        low = -1.0 if trial % 2 == 0 else 0.1  # positive values keep log and sqrt defined
        point = {
            v.name: rng.uniform(
                low, 1.0, size=[d if isinstance(d, int) else dims[d] for d in v.shape]
            )
            for v in leaves
        }
        with np.errstate(all="ignore"):
            want = np.asarray(evaluate(expected, point, dims), dtype=np.float64)
            got = np.asarray(evaluate(proposed, point, dims), dtype=np.float64)
        if not np.all(np.isfinite(want)):
            continue
        compared += 1
        got = np.broadcast_to(got, want.shape)
        error = np.where(np.isfinite(got), np.abs(want - got), np.inf)
        bound = CHECK_TOLERANCE * np.maximum(1.0, np.abs(want))
        if np.all(error <= bound):
            continue
        entry = np.unravel_index(int(np.argmax(error / bound)), want.shape) if want.ndim else ()
        example = {
            "dims": dims,
            "point": point,
            "entry": [int(i) for i in entry],
            "expected": float(want[entry]),
            "answer": float(got[entry]),
            "hint": _hint(want, got, verdict.wrt),
        }
        return verdict(proposed.shape, False, "differs from the gradient", example)
    if compared == 0:
        raise InputError("the gradient is undefined at every random point; cannot check")
    return verdict(proposed.shape, True, f"agrees numerically, at {compared} random points")


def _hint(want: np.ndarray, got: np.ndarray, wrt: str) -> str:
    """What the wrong answer is, when it is simple: c times the gradient, or its transpose."""
    if want.ndim == 2 and want.shape[0] == want.shape[1] and np.allclose(got, want.T):
        return f"your answer is the transpose of dL/d{wrt}"
    big = np.abs(want) > 1e-12
    if np.any(big):
        ratios = got[big] / want[big]
        if np.allclose(ratios, ratios[0], rtol=1e-9) and np.allclose(got, ratios[0] * want):
            return f"your answer is {compact(ratios[0], 10)} times dL/d{wrt}"
    return ""
