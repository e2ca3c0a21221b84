"""Explanations: rule-by-rule steps, limit derivations, computational graphs, reports.

The notebook entry points: ``explain(expr, wrt)``, ``limit_derivation(expr, wrt, at)``,
``build_graph(exprs, wrt, at, mode)`` and ``check_answer(expr, wrt, answer)`` each return an
object with ``render(fmt)`` and Jupyter's ``_repr_markdown_`` / ``_repr_latex_``.
"""

from .derivation import explain
from .graph import build_graph
from .limit import limit_derivation
from .render import check_answer

__all__ = ["build_graph", "check_answer", "explain", "limit_derivation"]
