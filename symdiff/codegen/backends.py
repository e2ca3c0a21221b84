"""The array libraries a generated module can run on: each backend is a row of data.

``numpy`` (the default) writes a module that imports NumPy and returns Python floats and NumPy
arrays. ``array-api`` writes one that imports only ``array_api_compat`` and computes with the
namespace of the caller's arrays (NumPy, PyTorch, CuPy, JAX, array-api-strict): its results are
arrays of that library on the data's device. A backend names its printer, its template, the
extra arguments its helpers take, and the code of the few statements assemble writes itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .array_api_print import ArrayApiPrinter
from .numpy_print import NumpyPrinter

#: The interface of every NumPy module (the docstring's Interface block).
NUMPY_INTERFACE = """\
PARAMS: tuple of (name, shape) pairs in order; shape () is a scalar parameter.
DATA: names of the data arrays, in the order loss/grad take them; DATA_SHAPES their shapes.
loss(params, *data) -> float: the loss L.
grad(params, *data) -> the gradient, in the form params was given.
loss_and_grad(params, *data) -> (float, gradient): both from one shared pass.
params: a flat 1-D array in PARAMS order, or a dict name -> value (the gradient is then a dict).
Wrong keys, shapes, counts or dtypes (complex, object, text) and empty data raise ValueError.
scipy.optimize.minimize(loss_and_grad, x0, args=data, jac=True) works as is."""

#: The interface of every array-API module.
ARRAY_API_INTERFACE = """\
PARAMS: tuple of (name, shape) pairs in order; shape () is a scalar parameter.
DATA: names of the data arrays, in the order loss/grad take them; DATA_SHAPES their shapes.
loss(params, *data) -> the loss L, a 0-d float64 array of the caller's library.
grad(params, *data) -> the gradient, in the form params was given.
loss_and_grad(params, *data) -> (L, gradient): both from one shared pass.
params: a flat 1-D array in PARAMS order, or a dict name -> value (the gradient is then a dict).
Arrays of one library the array API standard covers (NumPy, PyTorch, CuPy, JAX,
array-api-strict), found by array_api_compat.array_namespace; results are float64 arrays of
that library on the data's device (nothing is copied to the host: call float() for a number).
Mixed libraries, wrong keys, shapes, counts or dtypes (complex, object, text) and empty data
raise ValueError.
scipy.optimize.minimize(loss_and_grad, x0, args=data, jac=True) works with NumPy arrays."""


@dataclass(frozen=True)
class Backend:
    """How a module computes: its printer and template, and the code assemble writes itself.

    ``context`` is appended to the arguments of ``_read_params``, ``_read_data`` and ``_pack``;
    ``namespace`` (formatted with the function's inputs) starts every function; the ``hessian_*``
    entries build the Hessian matrix of a per-sample module entry by entry.
    """

    name: str
    printer: type[NumpyPrinter]
    template: str
    interface: str
    requirement: str
    context: str = ""
    namespace: str = ""
    loss: str = "float({0})"
    hessian_init: str = "hess = np.zeros(({0}, {0}))"
    hessian_entry: str = "hess[{0}, {1}]"
    hessian_return: str = "return hess"
    zeros: str = "np.zeros(({0}, {0}))"
    columns: str = "np.column_stack([hvp(flat, column, *data) for column in np.eye(_SIZE)])"
    reserved: frozenset[str] = frozenset()
    statement_helpers: tuple[str, ...] = ()  # helpers the statements above may call


BACKENDS: dict[str, Backend] = {
    "numpy": Backend(
        "numpy", NumpyPrinter, "module.py.jinja", NUMPY_INTERFACE, "Needs only NumPy."
    ),
    "array-api": Backend(
        "array-api",
        ArrayApiPrinter,
        "module_array_api.py.jinja",
        ARRAY_API_INTERFACE,
        "Needs array-api-compat (pip install array-api-compat) and the caller's array library.",
        context=", xp, device",
        namespace="xp, device = _namespace({0})",
        loss="xp.asarray({0}, dtype=xp.float64, device=device)",
        hessian_init="hess = [[0.0] * {0} for _ in range({0})]",
        hessian_entry="hess[{0}][{1}]",
        hessian_return="return _matrix(hess, xp, device)",
        zeros="xp.zeros(({0}, {0}), dtype=xp.float64, device=device)",
        columns="xp.stack([hvp(flat, _unit(i, xp, device), *data) for i in range(_SIZE)], axis=1)",
        reserved=frozenset({"xp", "device", "array_api_compat", "math"}),
        statement_helpers=("_matrix", "_unit"),
    ),
}

#: The ``--backend`` choices, the default first.
BACKEND_NAMES = tuple(BACKENDS)


def backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name is an InputError listing the choices."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend '{name}': choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]
