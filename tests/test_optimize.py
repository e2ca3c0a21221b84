"""Optimizers, schedules and clipping: update rules against hand calculations on f(w) = w**2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symdiff.errors import InputError
from symdiff.train.optimize import (
    OPTIMIZERS,
    SCHEDULES,
    Adam,
    Nesterov,
    clip_by_norm,
    describe_schedule,
    make_optimizer,
    make_schedule,
    parse_spec,
)


def square_gradient(w: np.ndarray) -> np.ndarray:
    """f(w) = w**2 (per coordinate), f'(w) = 2 w."""
    return 2.0 * w


def run(optimizer, start, steps: int) -> list[float]:
    """The first coordinate of w after each of ``steps`` updates on f(w) = w**2."""
    w = np.array(start, dtype=float)
    state = optimizer.init(w)
    trail = []
    for t in range(steps):
        w, state = optimizer.update(w, square_gradient(w), state, t)
        trail.append(float(w[0]))
    return trail


# Hand calculations, lr = 0.1, w0 = 1, g = 2w. Each expected number is worked out in the comment.
HAND = {
    # w1 = 1 - 0.1*2 = 0.8 ; w2 = 0.8 - 0.1*1.6 = 0.64 ; w3 = 0.64 - 0.1*1.28 = 0.512
    "gd": ({}, [0.8, 0.64, 0.512]),
    "sgd": ({}, [0.8, 0.64, 0.512]),
    "minibatch": ({}, [0.8, 0.64, 0.512]),
    # v1 = -0.2, w1 = 0.8 ; v2 = 0.9*-0.2 - 0.1*1.6 = -0.34, w2 = 0.46 ;
    # v3 = 0.9*-0.34 - 0.1*0.92 = -0.398, w3 = 0.062
    "momentum": ({"mu": 0.9}, [0.8, 0.46, 0.062]),
    # v1 = -0.2, w1 = 1 + 0.9*-0.2 - 0.2 = 0.62 ; g1 = 1.24, v2 = -0.18 - 0.124 = -0.304,
    # w2 = 0.62 - 0.2736 - 0.124 = 0.2224 ; g2 = 0.4448, v3 = -0.2736 - 0.04448 = -0.31808,
    # w3 = 0.2224 - 0.286272 - 0.04448 = -0.108352
    "nesterov": ({"mu": 0.9}, [0.62, 0.2224, -0.108352]),
    # G1 = 4, w1 = 1 - 0.1*2/2 = 0.9 ; g1 = 1.8, G2 = 4 + 3.24 = 7.24, w2 = 0.9 - 0.18/sqrt(7.24)
    "adagrad": ({"eps": 0.0}, [0.9, 0.9 - 0.18 / math.sqrt(7.24)]),
    # s1 = 0.1*4 = 0.4, w1 = 1 - 0.2/sqrt(0.4) ; g1 = 2*w1, s2 = 0.9*0.4 + 0.1*g1**2
    "rmsprop": (
        {"rho": 0.9, "eps": 0.0},
        [
            1 - 0.2 / math.sqrt(0.4),
            (1 - 0.2 / math.sqrt(0.4))
            - 0.1
            * (2 * (1 - 0.2 / math.sqrt(0.4)))
            / math.sqrt(0.36 + 0.1 * (2 * (1 - 0.2 / math.sqrt(0.4))) ** 2),
        ],
    ),
    # t=1: m = 0.2, s = 0.004, m^ = 0.2/0.1 = 2, s^ = 0.004/0.001 = 4, w1 = 1 - 0.1*2/2 = 0.9
    # t=2: g = 1.8, m = 0.18 + 0.18 = 0.36, s = 0.003996 + 0.00324 = 0.007236,
    #      m^ = 0.36/0.19, s^ = 0.007236/0.001999, w2 = 0.9 - 0.1*m^/sqrt(s^)
    "adam": (
        {"eps": 0.0},
        [0.9, 0.9 - 0.1 * (0.36 / 0.19) / math.sqrt(0.007236 / (1 - 0.999**2))],
    ),
}


def test_every_registered_optimizer_has_a_hand_calculation():
    assert set(HAND) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(HAND))
def test_update_rule_matches_hand_calculation(name):
    settings_, expected = HAND[name]
    optimizer = make_optimizer(name, lr=0.1, **settings_)
    assert run(optimizer, [1.0], len(expected)) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updates_act_per_coordinate_and_do_not_mutate(name):
    """On a separable loss each coordinate moves as if alone; inputs are left unchanged."""
    optimizer = make_optimizer(name, lr=0.05)
    w = np.array([1.0, -3.0])
    state = optimizer.init(w)
    snapshot = {key: value.copy() for key, value in state.items()}
    new_w, _ = optimizer.update(w, square_gradient(w), state, 0)
    assert w.tolist() == [1.0, -3.0]
    assert all(np.array_equal(state[key], snapshot[key]) for key in state)
    alone = [run(optimizer, [start], 1)[0] for start in (1.0, -3.0)]
    assert new_w.tolist() == pytest.approx(alone, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "lr", "schedule"),
    [
        ("gd", 0.1, "constant"),
        ("momentum", 0.05, "constant"),
        ("nesterov", 0.05, "constant"),
        ("adagrad", 0.5, "constant"),
        # RMSProp's steps stay about lr long near the minimum: it needs a decaying rate
        ("rmsprop", 0.05, "inverse:decay=0.01"),
        ("adam", 0.05, "constant"),
    ],
)
def test_converges_on_an_ill_conditioned_convex_quadratic(name, lr, schedule):
    """f(w) = 0.5 w^T A w - b^T w with cond(A) about 23: every optimizer reaches A^-1 b."""
    a = np.array([[3.0, 1.0], [1.0, 0.4]])
    a = a @ a.T + 0.5 * np.eye(2)
    b = np.array([1.0, -2.0])
    assert 20 < np.linalg.cond(a) < 25
    optimizer = make_optimizer(name, lr=lr, schedule=schedule)
    w = np.zeros(2)
    state = optimizer.init(w)
    for t in range(5000):
        w, state = optimizer.update(w, a @ w - b, state, t)
    assert w == pytest.approx(np.linalg.solve(a, b), abs=2e-3)


def _seed_momentum_loop(w0: float, lr: float, momentum: float, steps: int, sign: float):
    """The seed's loop (003) verbatim, with the sign of ``lr * gradient`` in the velocity
    as a parameter (+1 as printed, -1 as in Keras)."""
    past_velocity = 0.0
    w = w0
    trail = []
    for _ in range(steps):
        gradient = 2 * w
        velocity = past_velocity * momentum + sign * lr * gradient
        w = w + momentum * velocity - lr * gradient
        past_velocity = velocity
        trail.append(w)
    return trail


def test_seed_momentum_with_keras_sign_is_our_nesterov():
    for mu in (0.1, 0.5, 0.9):
        ours = run(Nesterov(lr=0.05, mu=mu), [1.5], 30)
        seed = _seed_momentum_loop(1.5, 0.05, mu, 30, sign=-1.0)
        assert ours == pytest.approx(seed, rel=1e-12, abs=1e-15)


def test_seed_momentum_as_printed_is_a_damped_step_pushed_uphill():
    """As printed: w_{t+1} = w_t - (1 - mu) lr g_t + mu**2 v_{t-1}, v_t = mu v_{t-1} + lr g_t."""
    lr, mu = 0.05, 0.1
    printed = _seed_momentum_loop(1.5, lr, mu, 20, sign=+1.0)
    w, v, rewritten = 1.5, 0.0, []
    for _ in range(20):
        g = 2 * w
        w, v = w - (1 - mu) * lr * g + mu**2 * v, mu * v + lr * g
        rewritten.append(w)
    assert printed == pytest.approx(rewritten, rel=1e-12)
    # with mu = 0.1 it still converges, more slowly than plain gradient descent
    plain = run(make_optimizer("gd", lr=lr), [1.5], 20)
    assert 0 < plain[-1] < printed[-1] < 1.5


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("constant", [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("step:drop=0.5,every=2", [1.0, 1.0, 0.5, 0.5, 0.25]),
        ("exponential:gamma=0.9", [1.0, 0.9, 0.81, 0.729, 0.6561]),
        ("inverse:decay=0.5", [1.0, 1 / 1.5, 0.5, 1 / 2.5, 1 / 3.0]),
    ],
)
def test_schedules(spec, expected):
    schedule = make_schedule(spec)
    assert [schedule(1.0, t) for t in range(5)] == pytest.approx(expected)
    assert make_schedule(describe_schedule(schedule)) == schedule


def test_every_schedule_is_tested():
    assert set(SCHEDULES) == {"constant", "step", "exponential", "inverse"}


def test_optimizer_uses_its_schedule():
    optimizer = make_optimizer("gd", lr=0.1, schedule="step:drop=0.5,every=1")
    # w1 = 1 - 0.1*2 = 0.8 ; w2 = 0.8 - 0.05*1.6 = 0.72 ; w3 = 0.72 - 0.025*1.44 = 0.684
    assert run(optimizer, [1.0], 3) == pytest.approx([0.8, 0.72, 0.684])


def test_clip_by_norm():
    assert clip_by_norm(np.array([3.0, 4.0]), 1.0).tolist() == pytest.approx([0.6, 0.8])
    assert clip_by_norm(np.array([3.0, 4.0]), 10.0).tolist() == [3.0, 4.0]
    assert clip_by_norm(np.array([3.0, 4.0]), None).tolist() == [3.0, 4.0]
    optimizer = make_optimizer("gd", lr=1.0, clip_norm=0.5)
    w, _ = optimizer.update(np.array([3.0, 4.0]), np.array([3.0, 4.0]), {}, 0)
    assert w.tolist() == pytest.approx([2.7, 3.6])


@given(
    scale=st.floats(1e-3, 1e3),
    name=st.sampled_from(sorted(OPTIMIZERS)),
    start=st.floats(-10, 10).filter(lambda v: abs(v) > 1e-3),
)
@settings(max_examples=60, deadline=None)
def test_first_step_goes_downhill(scale, name, start):
    """From any start, the first step of every optimizer moves w towards the minimum 0 of
    f(w) = scale * w**2 when the step is small enough not to overshoot."""
    optimizer = make_optimizer(name, lr=1e-4 / max(scale, 1.0) * min(abs(start), 1.0))
    w = np.array([start])
    new_w, _ = optimizer.update(w, 2 * scale * w, optimizer.init(w), 0)
    assert abs(new_w[0]) < abs(start)


def test_adam_first_step_is_lr_times_sign():
    """Bias correction: the first Adam step is lr * g / |g| whatever the size of g."""
    for g in (1e-6, 3.0, -250.0):
        new_w, _ = Adam(lr=0.01, eps=0.0).update(
            np.zeros(1), np.array([g]), Adam().init(np.zeros(1)), 0
        )
        assert new_w[0] == pytest.approx(-0.01 * math.copysign(1.0, g))


def test_names_and_settings_errors():
    with pytest.raises(InputError, match="unknown optimizer 'adamw'.*adam"):
        make_optimizer("adamw")
    with pytest.raises(InputError, match="no setting 'beta3'"):
        make_optimizer("adam", beta3=0.5)
    with pytest.raises(InputError, match="unknown schedule 'cosine'"):
        make_schedule("cosine")
    with pytest.raises(InputError, match="'every' must be a whole number"):
        make_schedule("step:every=2.5")
    with pytest.raises(InputError, match="'abc' is not a number"):
        parse_spec("adam:beta1=abc")
    with pytest.raises(InputError, match="expected key=value"):
        parse_spec("adam:beta1")
    with pytest.raises(InputError, match="lr must be a positive number"):
        make_optimizer("gd", lr=-1.0)
    with pytest.raises(InputError, match=r"mu must be in \[0, 1\)"):
        make_optimizer("momentum", mu=1.0)
    assert parse_spec("adam:beta1=0.8, eps=1e-6") == ("adam", {"beta1": 0.8, "eps": 1e-6})
