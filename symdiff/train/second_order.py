"""Second-order training: Newton-CG (with the generated ``hvp``) and L-BFGS via scipy.optimize.

``fit`` hands a :class:`~symdiff.train.optimize.SciPyMethod` here. Every step uses all the
samples: ``scipy.optimize.minimize(model.loss_and_grad, w0, args=data, jac=True,
hessp=model.hvp, method="Newton-CG")`` (or ``method="L-BFGS-B"``) over the flat parameter
vector. After each iteration the loss and gradient are recorded in the same ``History`` as the
first-order loop, callbacks are asked, and ``gtol`` (gradient 2-norm) and ``tol`` (relative
change of the loss) stop it. SciPy is imported only here, when such a method is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .loop import (
    BatchSize,
    Callback,
    FitResult,
    GeneratedModule,
    History,
    InitValues,
    ParamLayout,
    StepInfo,
    _ask,
    _evaluate,
    data_arrays,
    full_loss,
    sample_count,
)
from .optimize import SciPyMethod

Hessp = Callable[..., np.ndarray]


def hessian_vector_product(model: GeneratedModule, name: str) -> Hessp:
    """``model.hvp``; else ``hessian(w) @ v`` from a per-sample module's ``hessian``."""
    hvp = getattr(model, "hvp", None)
    if hvp is not None:
        return hvp
    hessian = getattr(model, "hessian", None)
    if hessian is None:
        raise InputError(
            f"{name} needs Hessian-vector products: generate the module with hessian=True "
            "(symdiff codegen --hessian)"
        )
    return lambda w, v, *data: hessian(w, *data) @ v


def fit_second_order(
    model: GeneratedModule,
    data: Sequence[Any] | Mapping[str, Any],
    optimizer: SciPyMethod,
    *,
    init: InitValues,
    epochs: int,
    batch_size: BatchSize,
    tol: float | None,
    gtol: float | None,
    max_steps: int | None,
    callbacks: Sequence[Callback],
    record_path: bool,
    resumable: bool,
) -> FitResult:
    """Run ``optimizer.method`` for at most ``max_steps`` (else ``epochs``) iterations; with
    ``gtol`` or ``tol`` those decide when it has converged (scipy's own tests are switched off),
    else scipy's defaults do."""
    name = optimizer.name
    if resumable:
        raise InputError(f"{name} runs inside scipy.optimize: checkpoints are not supported")
    if batch_size not in ("auto", None):
        raise InputError(f"{name} uses all the samples in every step: leave the batch size out")
    try:
        import scipy.optimize  # noqa: F401 - both drivers use SciPy
    except ImportError:
        raise InputError(f"optimizer '{name}' needs SciPy: pip install scipy") from None
    hessp = hessian_vector_product(model, name) if optimizer.uses_hessian else None
    layout = ParamLayout.of(model)
    arrays = data_arrays(model, data)
    sample_count(model, arrays)  # the arrays agree on the number of samples
    start = layout.flatten(init)
    if not np.all(np.isfinite(start)):
        raise InputError("initial parameter values must be finite")
    history = History()
    limit = max_steps or epochs
    stop: dict[str, Any] = {"message": None, "converged": False}

    def observe(w: np.ndarray) -> tuple[float, float]:
        loss, _, norm = _evaluate(model, w, arrays)
        history.loss.append(loss)
        history.grad_norm.append(norm)
        history.lr.append(1.0)  # a whole (quasi-)Newton step, before any line search
        history.epoch_loss.append(loss)
        history.epoch_end.append(len(history.loss) - 1)
        if record_path:
            history.path.append(np.array(w, dtype=np.float64))
        return loss, norm

    def finished(loss: float, norm: float, step: int) -> str | None:
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return f"stopped after {step} steps: the loss or gradient became NaN or infinite"
        if gtol is not None and norm <= gtol:
            stop["converged"] = True
            return f"converged: gradient norm {norm:.3g} <= gtol {gtol:g} after {step} steps"
        if tol is not None and len(history.loss) >= 2:
            previous = history.loss[-2]
            change = abs(loss - previous)
            if change <= tol * max(1.0, abs(previous)):
                stop["converged"] = True
                return f"converged: loss changed by {change:.3g} <= tol {tol:g} in step {step}"
        return None

    first_loss, first_norm = observe(start)
    message = finished(first_loss, first_norm, 0) if gtol is not None else None
    steps, final = 0, start
    if message is None:

        def after_step(w: np.ndarray) -> bool:
            """Record the new point; True (and the reason in ``stop``) to stop."""
            nonlocal steps, final
            steps, final = steps + 1, np.array(w, dtype=np.float64)
            loss, norm = observe(final)
            info = StepInfo(steps, steps, loss, norm, 1.0, final, True)
            stop["message"] = finished(loss, norm, steps) or _ask(callbacks, info)
            return stop["message"] is not None

        tolerances = gtol is not None or tol is not None
        with np.errstate(all="ignore"):
            ended = DRIVERS[optimizer.method](
                model, hessp, start, arrays, limit, after_step, optimizer, tolerances
            )
        message = stop["message"]
        if message is None:
            success, reason = ended
            stop["converged"] = success
            if steps >= limit and not success:
                note = " (no tolerance set)" if not tolerances else " without meeting the tolerance"
                message = f"reached {limit} steps{note}"
            else:
                message = f"{'converged' if success else 'stopped'} after {steps} steps: {reason}"
    loss = full_loss(model, final, arrays)
    return FitResult(
        params=layout.unflatten(final),
        flat=final,
        loss=loss,
        steps=steps,
        epochs=steps,
        converged=stop["converged"],
        diverged=not math.isfinite(loss),
        message=message,
        history=history,
        grad_norm=_evaluate(model, final, arrays)[2],
    )


AfterStep = Callable[[np.ndarray], bool]
#: How a method ends on its own: (converged, why).
Ending = tuple[bool, str]


def _newton_cg(
    model: GeneratedModule,
    hessp: Hessp | None,
    w: np.ndarray,
    arrays: Sequence[np.ndarray],
    limit: int,
    after_step: AfterStep,
    optimizer: SciPyMethod,
    tolerances: bool,
) -> Ending:
    """Truncated Newton: solve H d = -g by ``scipy.sparse.linalg.cg`` on a LinearOperator whose
    product is the generated hvp (relative tolerance min(0.5, |g|), so the steps become exact
    Newton steps near the optimum), then w <- w + t d, t halved from 1 until the loss decreases
    (Armijo, c = 1e-4). H is never formed. (scipy.optimize's own Newton-CG stops its CG when
    p.Hp < 3 eps in absolute terms, which ends it at gradient norms near 1e-7 on a loss of
    size 0.1; this loop has only relative tests.)"""
    from scipy.sparse.linalg import LinearOperator, cg

    assert hessp is not None
    size = len(w)
    for _ in range(limit):
        loss, grad = model.loss_and_grad(w, *arrays)
        grad = np.asarray(grad, dtype=np.float64)
        norm = float(np.linalg.norm(grad))
        if norm == 0.0:
            return True, "the gradient is zero"
        at = w

        def product(v: np.ndarray, at: np.ndarray = at) -> np.ndarray:
            return np.asarray(hessp(at, np.ravel(v), *arrays), dtype=np.float64)

        operator = LinearOperator((size, size), matvec=product, dtype=np.float64)
        direction, _ = cg(operator, -grad, rtol=min(0.5, norm), maxiter=20 * size)
        slope = float(grad @ direction)
        if not slope < 0:  # H is not positive definite along it: a gradient step instead
            direction, slope = -grad, -(norm**2)
        step = 1.0
        while True:
            trial = w + step * direction
            trial_loss = full_loss(model, trial, arrays)
            if trial_loss <= loss + 1e-4 * step * slope:
                break
            step /= 2
            if step < 1e-12:
                return False, "the line search found no decrease of the loss"
        if np.array_equal(trial, w):
            return True, "the Newton step no longer changes the parameters"
        w = trial
        if after_step(w):
            return False, ""
    return False, ""


def _scipy_minimize(
    model: GeneratedModule,
    hessp: Hessp | None,
    w: np.ndarray,
    arrays: Sequence[np.ndarray],
    limit: int,
    after_step: AfterStep,
    optimizer: SciPyMethod,
    tolerances: bool,
) -> Ending:
    """``scipy.optimize.minimize(loss_and_grad, w, jac=True, method=...)``; with fit's own
    tolerances, scipy's stopping tests are switched off (``optimizer.deferred``)."""
    from scipy.optimize import minimize

    def callback(intermediate_result: Any) -> None:
        if after_step(intermediate_result.x):
            raise StopIteration

    result = minimize(
        model.loss_and_grad,
        w,
        args=tuple(arrays),
        jac=True,
        hessp=hessp,
        method=optimizer.method,
        callback=callback,
        options={"maxiter": limit, **(optimizer.deferred if tolerances else {})},
    )
    return bool(result.success), f"scipy {optimizer.method}: {str(result.message).rstrip('.')}"


#: The driver of each method (by its scipy name).
DRIVERS: dict[str, Callable[..., Ending]] = {"Newton-CG": _newton_cg, "L-BFGS-B": _scipy_minimize}
