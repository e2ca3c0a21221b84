"""symdiff: derivatives of machine-learning losses, explained, and compiled to fast NumPy.

The calculus API::

    >>> import symdiff
    >>> symdiff.derivative("2*x**3 + 5", "x")
    6*x**2
    >>> symdiff.gradient("4*x**4*z**3")
    [16*x**3*z**3, 12*x**4*z**2]

The names below are imported when first used (PEP 562), so ``import symdiff`` and the
``symdiff`` command start without SymPy until they need it, and a Ctrl-C while they load is one
line, not a traceback (``symdiff/__main__.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "tensor_gradient": (".autodiff.reverse", "tensor_gradient"),
    "tensor_hessian": (".autodiff.second", "tensor_hessian"),
    "Derivation": (".calculus.api", "Derivation"),
    "derivative": (".calculus.api", "derivative"),
    "derive": (".calculus.api", "derive"),
    "directional_derivative": (".calculus.api", "directional_derivative"),
    "evaluate": (".calculus.api", "evaluate"),
    "gradient": (".calculus.api", "gradient"),
    "hessian": (".calculus.api", "hessian"),
    "jacobian": (".calculus.api", "jacobian"),
    "differentiate": (".calculus.differentiate", "differentiate"),
    "Step": (".calculus.steps", "Step"),
    "gradcheck": (".codegen.gradcheck", "gradcheck"),
    "explain": (".explanations.derivation", "explain"),
    "limit_derivation": (".explanations.limit", "limit_derivation"),
    "build_graph": (".explanations.graph", "build_graph"),
    "check_answer": (".explanations.render", "check_answer"),
    "compile": (".codegen.scalar", "compile"),
    "generate": (".codegen.scalar", "generate"),
    "compile_tensor": (".codegen.tensor", "compile"),
    "generate_tensor": (".codegen.tensor", "generate"),
    "InputError": (".errors", "InputError"),
    "ParseError": (".errors", "ParseError"),
    "ShapeError": (".errors", "ShapeError"),
    "SymdiffError": (".errors", "SymdiffError"),
    "UnknownFunctionError": (".errors", "UnknownFunctionError"),
    "parse": (".frontend.parse", "parse"),
    "relu": (".functions", "relu"),
    "sigmoid": (".functions", "sigmoid"),
    "softplus": (".functions", "softplus"),
    "FitResult": (".train.loop", "FitResult"),
    "fit": (".train.loop", "fit"),
}

if TYPE_CHECKING:
    from .autodiff.reverse import tensor_gradient
    from .autodiff.second import tensor_hessian
    from .calculus.api import (
        Derivation,
        derivative,
        derive,
        directional_derivative,
        evaluate,
        gradient,
        hessian,
        jacobian,
    )
    from .calculus.differentiate import differentiate
    from .calculus.steps import Step
    from .codegen.gradcheck import gradcheck
    from .codegen.scalar import compile, generate
    from .codegen.tensor import compile as compile_tensor
    from .codegen.tensor import generate as generate_tensor
    from .errors import InputError, ParseError, ShapeError, SymdiffError, UnknownFunctionError
    from .explanations.derivation import explain
    from .explanations.graph import build_graph
    from .explanations.limit import limit_derivation
    from .explanations.render import check_answer
    from .frontend.parse import parse
    from .functions import relu, sigmoid, softplus
    from .train.loop import FitResult, fit
else:

    def __getattr__(name: str) -> Any:
        """Import a public name on first use (and keep it: later lookups are plain attributes)."""
        if name not in _EXPORTS:
            raise AttributeError(f"module 'symdiff' has no attribute '{name}'")
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module, __name__), attribute)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_EXPORTS})


__all__ = [
    "__version__",
    "build_graph",
    "check_answer",
    "explain",
    "limit_derivation",
    "Derivation",
    "FitResult",
    "InputError",
    "ParseError",
    "ShapeError",
    "Step",
    "SymdiffError",
    "UnknownFunctionError",
    "compile",
    "compile_tensor",
    "derivative",
    "derive",
    "differentiate",
    "directional_derivative",
    "evaluate",
    "fit",
    "generate",
    "generate_tensor",
    "gradcheck",
    "gradient",
    "hessian",
    "jacobian",
    "parse",
    "relu",
    "sigmoid",
    "softplus",
    "tensor_gradient",
    "tensor_hessian",
]
