"""A walk through the worked examples of the source documents, with symdiff doing the work.

Run it as ``python examples/seed_walkthrough.py`` (text), or ``--format markdown`` / ``latex``
to paste into notes. In Jupyter, each object also displays itself (``_repr_markdown_``,
``_repr_latex_``): evaluate ``explain("2*x**3 + 5", "x")`` in a cell.

1. d/dx (2x^3 + 5) = 6x^2, rule by rule and from the limit definition;
2. d/dx x^2 = 2x from the limit definition, with the difference quotients at x = 3
   (h = 1e-4 gives 6.0001, as the document's getDeriv does);
3. the partial derivatives of 4 x^4 z^3;
4. the logistic loss -y log(1/(1 + e^(-W X))) at X = 3, y = 1, W = 3 as a computational graph,
   forward and reverse mode: dL/dW = -0.000370183728;
5. the absolute error |y_true - (w x + b)| at x = 2, w = 3, b = 1, y_true = 4 in reverse mode:
   grad w = 2 and grad b = 1;
6. checking a student's answer.
"""

from __future__ import annotations

import argparse

from symdiff.explain.derivation import explain
from symdiff.explain.graph import build_graph
from symdiff.explain.limit import limit_derivation
from symdiff.explain.render import check_answer


def section(title: str, body: str) -> str:
    """A titled block of output."""
    return f"{'=' * 78}\n{title}\n{'=' * 78}\n{body}\n"


def walkthrough(fmt: str = "text") -> str:
    """Every seed example rendered in ``fmt`` (text, markdown or latex)."""
    parts = [
        section("1a. 2x^3 + 5, rule by rule", explain("2*x**3 + 5", "x").render(fmt)),
        section(
            "1b. 2x^3 + 5 from the limit definition",
            limit_derivation("2*x**3 + 5", "x").render(fmt),
        ),
        section(
            "2. x^2 from the limit definition, and the quotients at x = 3",
            limit_derivation("x**2", "x", "x=3").render(fmt),
        ),
        section("3a. d/dx 4x^4 z^3", explain("4*x**4*z**3", "x").render(fmt)),
        section("3b. d/dz 4x^4 z^3", explain("4*x**4*z**3", "z").render(fmt)),
        section(
            "4. logistic loss at X=3, y=1, W=3: forward and reverse mode",
            build_graph("-y*log(1/(1 + exp(-W*X)))", "W", "X=3,y=1,W=3").render(fmt),
        ),
        section(
            "5. absolute error at x=2, w=3, b=1, y_true=4: reverse mode",
            build_graph("abs(y_true - (w*x + b))", "w,b", "x=2,w=3,b=1,y_true=4", "reverse").render(
                fmt
            ),
        ),
        section(
            "6. is d/dx (2x^3 + 5) = 6x? (no)",
            check_answer("2*x**3 + 5", "x", "6*x").render(fmt),
        ),
    ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["text", "markdown", "latex"], default="text")
    print(walkthrough(parser.parse_args().format))


if __name__ == "__main__":
    main()
