"""symdiff: derivatives of machine-learning losses, explained, and compiled to fast NumPy.

The calculus API::

    >>> import symdiff
    >>> symdiff.derivative("2*x**3 + 5", "x")
    6*x**2
    >>> symdiff.gradient("4*x**4*z**3")
    [16*x**3*z**3, 12*x**4*z**2]
"""

from __future__ import annotations

__version__ = "0.1.0"

from .autodiff.reverse import tensor_gradient
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
from .frontend.parse import parse
from .functions import relu, sigmoid, softplus
from .train.loop import FitResult, fit

__all__ = [
    "__version__",
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
]
