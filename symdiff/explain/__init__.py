"""Explanations: rule-by-rule steps, limit derivations, computational graphs, reports.

The notebook entry points: ``explain(expr, wrt)``, ``limit_derivation(expr, wrt, at)``,
``build_graph(exprs, wrt, at, mode)`` and ``check_answer(expr, wrt, answer)`` each return an
object with ``render(fmt)`` and Jupyter's ``_repr_markdown_`` / ``_repr_latex_``. They are
imported on first use (PEP 562), so ``symdiff diff``, which needs only the reports, does not
load the graph and limit modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS = {
    "build_graph": ".graph",
    "check_answer": ".render",
    "explain": ".derivation",
    "limit_derivation": ".limit",
}

if TYPE_CHECKING:
    from .derivation import explain
    from .graph import build_graph
    from .limit import limit_derivation
    from .render import check_answer
else:

    def __getattr__(name: str) -> Any:
        """Import a public name on first use (and keep it as a plain attribute)."""
        if name not in _EXPORTS:
            raise AttributeError(f"module 'symdiff.explain' has no attribute '{name}'")
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value


__all__ = ["build_graph", "check_answer", "explain", "limit_derivation"]
