"""Optimizers, learning-rate schedules and gradient clipping for the training loop.

Every optimizer has one interface, on a flat float64 parameter vector ``w``:

* ``state = optimizer.init(w)`` -- its memory (velocity, squared-gradient averages, ...), a dict of
  arrays shaped like ``w``;
* ``w, state = optimizer.update(w, g, state, step)`` -- one step from the gradient ``g`` at ``w``;
  pure: neither ``w`` nor ``state`` is changed in place. ``step`` counts updates from 0 and picks
  the learning rate from the schedule, ``lr_t = schedule(lr, step)``.

Each class implements ``rule(w, g, state, lr)``, the formula in its docstring. Optimizers are
registered by name in ``OPTIMIZERS`` (rules are data) and built with ``make_optimizer``.

Gradient descent, SGD and mini-batch SGD are the *same* update ``w <- w - lr * g``; they differ only
in how many samples the training loop averages into ``g`` (the batch size):

* ``gd``        -- batch gradient descent: every step sees all n samples (batch size n);
* ``sgd``       -- (true) stochastic gradient descent: one random sample per step (batch size 1);
* ``minibatch`` -- mini-batch SGD: k random samples per step (batch size k, default 32).

So ``optimizer.batch_size`` is only the default the loop uses when no batch size is given.

Momentum and the seed's variant (seed ``003``, next to figure 2.20)::

    velocity = past_velocity * momentum + learning_rate * gradient
    w = w + momentum * velocity - learning_rate * gradient

Write mu = momentum, v_t = velocity after step t, g_t = gradient at w_t. Heavy ball (``momentum``)
is v_t = mu v_{t-1} - lr g_t ; w_{t+1} = w_t + v_t. The seed's second line instead adds
``mu * v_t`` *and* the plain step ``-lr g_t``. With the velocity sign written as in Keras,
v_t = mu v_{t-1} - lr g_t, that is exactly ``nesterov`` below: Nesterov's accelerated gradient,
v_t = mu v_{t-1} - lr grad(theta_{t-1} + mu v_{t-1}), theta_t = theta_{t-1} + v_t, stored at the
look-ahead point w_t = theta_t + mu v_t, gives

    w_{t+1} - w_t = v_{t+1} + mu v_{t+1} - mu v_t = mu v_{t+1} - lr grad(w_t),

the seed's two lines (``tests/test_optimize.py`` checks the two agree step by step). As printed,
with ``+ learning_rate * gradient`` in the velocity, the velocity points *uphill*:
w_{t+1} = w_t - (1 - mu) lr g_t + mu^2 v_{t-1}, a damped step that is pushed back by past
gradients. With the seed's mu = 0.1 it still converges (the push is 1% of the velocity), but it
is no longer momentum; read the ``+`` as a sign slip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from ..errors import InputError
from ..names import lookup
from .data import parse_float

State = dict[str, np.ndarray]

# ---------------------------------------------------------------------------------------------
# learning-rate schedules: lr_t = schedule(lr, t), t = number of updates made so far
# ---------------------------------------------------------------------------------------------


class Named(Protocol):
    """A class the registries hold: its registered name is a class attribute."""

    name: ClassVar[str]


NamedT = TypeVar("NamedT", bound=Named)


def registrar(
    registry: dict[str, type[NamedT]],
) -> Callable[[str], Callable[[type[NamedT]], type[NamedT]]]:
    """``@registrar(TABLE)("name")``: a class decorator that files the class in TABLE by name."""

    def register(name: str) -> Callable[[type[NamedT]], type[NamedT]]:
        def add(cls: type[NamedT]) -> type[NamedT]:
            cls.name = name
            registry[name] = cls
            return cls

        return add

    return register


SCHEDULES: dict[str, type[Schedule]] = {}
register_schedule = registrar(SCHEDULES)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule."""

    name: ClassVar[str] = ""

    def __call__(self, lr: float, step: int) -> float:
        raise NotImplementedError


@register_schedule("constant")
@dataclass(frozen=True)
class Constant(Schedule):
    """lr_t = lr."""

    def __call__(self, lr: float, step: int) -> float:
        return lr


@register_schedule("step")
@dataclass(frozen=True)
class StepDecay(Schedule):
    """lr_t = lr * drop ** floor(t / every)."""

    drop: float = 0.5
    every: int = 100

    def __post_init__(self) -> None:
        _check_positive("every", self.every)
        _check_positive("drop", self.drop)

    def __call__(self, lr: float, step: int) -> float:
        return lr * self.drop ** (step // self.every)


@register_schedule("exponential")
@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """lr_t = lr * gamma ** t."""

    gamma: float = 0.99

    def __post_init__(self) -> None:
        _check_positive("gamma", self.gamma)

    def __call__(self, lr: float, step: int) -> float:
        return lr * self.gamma**step


@register_schedule("inverse")
@dataclass(frozen=True)
class InverseTimeDecay(Schedule):
    """lr_t = lr / (1 + decay * t)."""

    decay: float = 0.01

    def __post_init__(self) -> None:
        if self.decay < 0:
            raise InputError(f"decay must be >= 0, got {self.decay}")

    def __call__(self, lr: float, step: int) -> float:
        return lr / (1.0 + self.decay * step)


# ---------------------------------------------------------------------------------------------
# gradient clipping
# ---------------------------------------------------------------------------------------------


def clip_by_norm(grad: np.ndarray, max_norm: float | None) -> np.ndarray:
    """g * min(1, max_norm / ||g||_2): the same direction, at most ``max_norm`` long."""
    if max_norm is None:
        return grad
    norm = float(np.linalg.norm(grad))
    if norm <= max_norm or not math.isfinite(norm):
        return grad
    return grad * (max_norm / norm)


# ---------------------------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------------------------

OPTIMIZERS: dict[str, type[Optimizer]] = {}
register_optimizer = registrar(OPTIMIZERS)


@dataclass(frozen=True)
class Optimizer:
    """Base class: learning rate, schedule, optional clipping; subclasses define ``rule``."""

    name: ClassVar[str] = ""
    #: the batch size the training loop uses when none is given (None = all samples)
    batch_size: ClassVar[int | None] = None

    lr: float = 0.01
    schedule: Schedule = field(default_factory=Constant)
    clip_norm: float | None = None

    def __post_init__(self) -> None:
        _check_positive("lr", self.lr)
        if self.clip_norm is not None:
            _check_positive("clip_norm", self.clip_norm)

    def init(self, params: np.ndarray) -> State:
        """The optimizer's memory for parameters shaped like ``params`` (none by default)."""
        return {}

    def learning_rate(self, step: int) -> float:
        """The scheduled learning rate for update number ``step`` (from 0)."""
        return self.schedule(self.lr, step)

    def update(
        self, params: np.ndarray, grad: np.ndarray, state: State, step: int
    ) -> tuple[np.ndarray, State]:
        """One step: clip the gradient, schedule the learning rate, apply ``rule``."""
        clipped = clip_by_norm(grad, self.clip_norm)
        return self.rule(params, clipped, state, self.learning_rate(step))

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, object]:
        """Name -> value of every setting (for reports)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["schedule"] = describe_schedule(self.schedule)
        return values


@register_optimizer("gd")
@dataclass(frozen=True)
class GradientDescent(Optimizer):
    """w <- w - lr * g, with g over all samples (batch gradient descent)."""

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        return params - lr * grad, state


@register_optimizer("sgd")
@dataclass(frozen=True)
class SGD(GradientDescent):
    """w <- w - lr * g, with g from one random sample (batch size 1)."""

    batch_size: ClassVar[int | None] = 1


@register_optimizer("minibatch")
@dataclass(frozen=True)
class MiniBatchSGD(GradientDescent):
    """w <- w - lr * g, with g averaged over k random samples (batch size k, default 32)."""

    batch_size: ClassVar[int | None] = 32


@register_optimizer("momentum")
@dataclass(frozen=True)
class Momentum(Optimizer):
    """Heavy ball (Polyak): v <- mu * v - lr * g ; w <- w + v."""

    mu: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fraction("mu", self.mu)

    def init(self, params: np.ndarray) -> State:
        return {"velocity": np.zeros_like(params)}

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        velocity = self.mu * state["velocity"] - lr * grad
        return params + velocity, {"velocity": velocity}


@register_optimizer("nesterov")
@dataclass(frozen=True)
class Nesterov(Momentum):
    """Nesterov (look-ahead form): v <- mu * v - lr * g ; w <- w + mu * v - lr * g.

    The seed's momentum loop with the velocity sign as in Keras (see the module docstring).
    """

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        velocity = self.mu * state["velocity"] - lr * grad
        return params + self.mu * velocity - lr * grad, {"velocity": velocity}


@register_optimizer("adagrad")
@dataclass(frozen=True)
class AdaGrad(Optimizer):
    """G <- G + g**2 ; w <- w - lr * g / (sqrt(G) + eps)."""

    eps: float = 1e-8

    def init(self, params: np.ndarray) -> State:
        return {"sum_sq": np.zeros_like(params)}

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        sum_sq = state["sum_sq"] + grad * grad
        return params - lr * grad / (np.sqrt(sum_sq) + self.eps), {"sum_sq": sum_sq}


@register_optimizer("rmsprop")
@dataclass(frozen=True)
class RMSProp(Optimizer):
    """s <- rho * s + (1 - rho) * g**2 ; w <- w - lr * g / (sqrt(s) + eps)."""

    rho: float = 0.9
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fraction("rho", self.rho)

    def init(self, params: np.ndarray) -> State:
        return {"mean_sq": np.zeros_like(params)}

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        mean_sq = self.rho * state["mean_sq"] + (1.0 - self.rho) * grad * grad
        return params - lr * grad / (np.sqrt(mean_sq) + self.eps), {"mean_sq": mean_sq}


@register_optimizer("adam")
@dataclass(frozen=True)
class Adam(Optimizer):
    """m <- b1 m + (1-b1) g ; s <- b2 s + (1-b2) g**2 ; t <- t + 1 ;
    w <- w - lr * (m / (1 - b1**t)) / (sqrt(s / (1 - b2**t)) + eps)."""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fraction("beta1", self.beta1)
        _check_fraction("beta2", self.beta2)

    def init(self, params: np.ndarray) -> State:
        return {"m": np.zeros_like(params), "s": np.zeros_like(params), "t": np.zeros(())}

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        t = state["t"] + 1.0
        m = self.beta1 * state["m"] + (1.0 - self.beta1) * grad
        s = self.beta2 * state["s"] + (1.0 - self.beta2) * grad * grad
        m_hat = m / (1.0 - self.beta1**t)
        s_hat = s / (1.0 - self.beta2**t)
        return params - lr * m_hat / (np.sqrt(s_hat) + self.eps), {"m": m, "s": s, "t": t}


# ---------------------------------------------------------------------------------------------
# building from names and "name:key=value,key=value" specs (the CLI's --optimizer, --schedule)
# ---------------------------------------------------------------------------------------------


def make_optimizer(
    name: str | Optimizer, *, schedule: str | Schedule | None = None, **settings: object
) -> Optimizer:
    """The optimizer registered as ``name`` with the given settings (lr, mu, beta1, ...)."""
    if isinstance(name, Optimizer):
        return name
    cls = lookup({**OPTIMIZERS, **SECOND_ORDER}, name, "optimizer")
    if schedule is not None:
        settings["schedule"] = make_schedule(schedule)
    return _build(cls, settings, f"optimizer '{name}'")


def make_schedule(spec: str | Schedule) -> Schedule:
    """A schedule from a spec like ``"step:drop=0.5,every=100"`` (or a Schedule as is)."""
    if isinstance(spec, Schedule):
        return spec
    name, settings = parse_spec(spec)
    return _build(lookup(SCHEDULES, name, "schedule"), settings, f"schedule '{name}'")


def parse_spec(spec: str) -> tuple[str, dict[str, float]]:
    """``"adam:beta1=0.8,eps=1e-6"`` -> ("adam", {"beta1": 0.8, "eps": 1e-6})."""
    name, _, rest = spec.partition(":")
    settings: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected key=value in '{item}' (in '{spec}')")
        settings[key.strip()] = parse_float(value, f"'{key.strip()}' in '{spec}'")
    return name.strip(), settings


def describe_schedule(schedule: Schedule) -> str:
    """A spec string that ``make_schedule`` turns back into the same schedule."""
    settings = ",".join(f"{f.name}={getattr(schedule, f.name)}" for f in fields(schedule))
    return f"{schedule.name}:{settings}" if settings else schedule.name


Built = TypeVar("Built", Optimizer, Schedule)


def _build(cls: type[Built], settings: Mapping[str, object], what: str) -> Built:
    allowed = {f.name: f for f in fields(cls)}
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise InputError(
            f"{what} has no setting '{unknown[0]}' (settings: {', '.join(allowed) or 'none'})"
        )
    # checked by name against the fields above; each class's __post_init__ checks the values
    values: dict[str, Any] = dict(settings)
    for key, value in settings.items():
        if allowed[key].type in ("int", int) and isinstance(value, float):
            if not value.is_integer():
                raise InputError(f"{what}: '{key}' must be a whole number, got {value}")
            values[key] = int(value)
    return cls(**values)


def _check_positive(name: str, value: float) -> None:
    if not value > 0 or not math.isfinite(value):
        raise InputError(f"{name} must be a positive number, got {value}")


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise InputError(f"{name} must be in [0, 1), got {value}")


# ---------------------------------------------------------------------------------------------
# second order: methods that scipy.optimize runs over all the data (``train/second_order.py``)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SciPyMethod(Optimizer):
    """A second-order method run with SciPy on all the samples; ``fit`` hands it to
    ``train.second_order`` (its driver in ``DRIVERS``) instead of stepping ``rule``. Registered
    in ``SECOND_ORDER``, beside the step rules of ``OPTIMIZERS``; ``make_optimizer`` knows both."""

    #: the name scipy.optimize.minimize knows it by
    method: ClassVar[str] = ""
    #: whether it needs the Hessian-vector product (a module generated with hessian=True)
    uses_hessian: ClassVar[bool] = False
    #: scipy's own stopping tests switched off when fit's gtol or tol decides instead
    deferred: ClassVar[Mapping[str, float]] = {}
    #: what runs it (shown in reports)
    via: ClassVar[str] = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clip_norm is not None:
            raise InputError(f"{self.name} takes whole Newton/quasi-Newton steps: no clip_norm")

    def rule(
        self, params: np.ndarray, grad: np.ndarray, state: State, lr: float
    ) -> tuple[np.ndarray, State]:
        raise InputError(f"{self.name} is run by scipy.optimize, not step by step")

    def hyperparameters(self) -> dict[str, object]:
        """What runs it (the learning rate, schedule and clipping do not apply)."""
        return {"via": self.via}


SECOND_ORDER: dict[str, type[Optimizer]] = {}
register_second_order = registrar(SECOND_ORDER)


@register_second_order("newton-cg")
@dataclass(frozen=True)
class NewtonCG(SciPyMethod):
    """Newton's method: solve H d = -g by conjugate gradients (scipy.sparse.linalg.cg, H v from
    the generated hvp, H never formed), then w <- w + t d with a backtracking line search."""

    method: ClassVar[str] = "Newton-CG"
    uses_hessian: ClassVar[bool] = True
    via: ClassVar[str] = "hvp and scipy.sparse.linalg.cg"


@register_second_order("lbfgs")
@dataclass(frozen=True)
class LBFGS(SciPyMethod):
    """L-BFGS: w <- w - t B g, B a quasi-Newton inverse Hessian from the last gradient changes
    (no second derivatives); scipy's L-BFGS-B."""

    method: ClassVar[str] = "L-BFGS-B"
    via: ClassVar[str] = "scipy.optimize L-BFGS-B"
    deferred: ClassVar[Mapping[str, float]] = {"ftol": 0.0, "gtol": 0.0}
