"""Momentum escapes a local minimum where plain gradient descent stays (figure 2.20 of the seed).

    f(w) = w**4 - 3*w**2 + w

has a local minimum at w = 1.1309 (f = -1.0702) and the global one at w = -1.3008 (f = -3.5139),
with a bump at w = 0.1699 (f = 0.0843) between them. From w = 2, plain gradient descent
(lr = 0.01) rolls into the nearer, local minimum and stops there. Heavy-ball momentum with the same
learning rate (mu = 0.9) carries enough velocity over the bump to reach the global minimum, like
the ball of the seed's picture. ``--plot DIR`` draws both paths on the curve into
``DIR/local_minimum.png``.

    python examples/local_minimum.py --plot .
"""

from __future__ import annotations

import argparse
from pathlib import Path

from symdiff.codegen.scalar import compile as compile_loss
from symdiff.train.loop import FitResult, fit
from symdiff.train.optimize import make_optimizer
from symdiff.train.plot import plot_training

LOSS = "w**4 - 3*w**2 + w"
START = 2.0
OPTIMIZERS = {"gd": {"lr": 0.01}, "momentum": {"lr": 0.01, "mu": 0.9}}


def run(plot_dir: Path | None = None) -> dict[str, FitResult]:
    model = compile_loss(LOSS, params=["w"], data=[])
    runs = {
        name: fit(
            model,
            (),
            make_optimizer(name, **settings),
            init={"w": START},
            epochs=1000,
            gtol=1e-9,
            record_path=plot_dir is not None,
        )
        for name, settings in OPTIMIZERS.items()
    }
    if plot_dir is not None:
        plot_training(
            runs,
            Path(plot_dir) / "local_minimum.png",
            model=model,
            title=f"f(w) = {LOSS}, from w = {START}",
        )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, help="folder for local_minimum.png")
    for name, result in run(parser.parse_args().plot).items():
        print(
            f"{name:<9} w = {result.params['w']:+.4f}  f(w) = {result.loss:+.4f}  "
            f"({result.steps} steps; {result.message})"
        )


if __name__ == "__main__":
    main()
