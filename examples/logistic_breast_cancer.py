"""Logistic regression on scikit-learn's breast-cancer data, trained with symdiff, checked against
scikit-learn's unpenalised LogisticRegression.

Choice: five of the 30 features (below), standardised (mean 0, standard deviation 1), so that the
per-sample loss can be written with explicit parameters b0, w1..w5:

    z = b0 + w1*x1 + w2*x2 + w3*x3 + w4*x4 + w5*x5
    loss = -y*log(sigmoid(z)) - (1 - y)*log(1 - sigmoid(z))      (mean over the 569 samples)

y = 1 for benign. Full-batch Nesterov momentum from zeros until the gradient norm is below 1e-10;
scikit-learn's ``LogisticRegression(C=np.inf)`` (no penalty; ``penalty=None`` is deprecated since
scikit-learn 1.8) with lbfgs and tol=1e-10 is the reference. The coefficients agree within 1e-6.

    python examples/logistic_breast_cancer.py
    symdiff fit "$(python examples/logistic_breast_cancer.py --print-loss)" \\
        --params b0,w1,w2,w3,w4,w5 --data x1,x2,x3,x4,x5,y --column y=benign \\
        --input examples/data/breast_cancer.csv --optimizer nesterov:mu=0.9 --lr 0.5 \\
        --epochs 5000 --gtol 1e-10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from symdiff.codegen.scalar import compile as compile_loss
from symdiff.train.loop import fit
from symdiff.train.optimize import make_optimizer

FEATURES = (
    "mean radius",
    "mean texture",
    "mean smoothness",
    "mean concave points",
    "mean symmetry",
)
PARAMS = ["b0"] + [f"w{i}" for i in range(1, len(FEATURES) + 1)]
DATA = [f"x{i}" for i in range(1, len(FEATURES) + 1)] + ["y"]
CSV = Path(__file__).parent / "data" / "breast_cancer.csv"
#: the stated tolerance on every coefficient
TOLERANCE = 1e-6


def loss_text() -> str:
    z = " + ".join(["b0"] + [f"w{i}*x{i}" for i in range(1, len(FEATURES) + 1)])
    return f"-y*log(sigmoid({z})) - (1 - y)*log(1 - sigmoid({z}))"


def load() -> tuple[np.ndarray, np.ndarray]:
    """The five standardised features (n, 5) and the 0/1 target (1 = benign)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = list(bunch.feature_names)
    features = bunch.data[:, [names.index(f) for f in FEATURES]]
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    return features, bunch.target.astype(float)


def write_csv(path: Path = CSV) -> None:
    features, target = load()
    header = ",".join(DATA[:-1] + ["benign"])
    np.savetxt(
        path, np.c_[features, target], delimiter=",", header=header, comments="", fmt="%.17g"
    )


def sklearn_coefficients(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """b0, w1..w5 from scikit-learn without a penalty."""
    from sklearn.linear_model import LogisticRegression

    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(features, target)
    return np.r_[reference.intercept_, reference.coef_.ravel()]


def run() -> dict[str, object]:
    features, target = load()
    model = compile_loss(loss_text(), params=PARAMS, data=DATA)
    optimizer = make_optimizer("nesterov", lr=0.5, mu=0.9)
    result = fit(model, [*features.T, target], optimizer, epochs=5000, gtol=1e-10)
    return {"result": result, "sklearn": sklearn_coefficients(features, target)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-loss", action="store_true", help="print the loss text and stop")
    parser.add_argument("--write-csv", action="store_true", help=f"(re)write {CSV}")
    args = parser.parse_args()
    if args.print_loss:
        print(loss_text())
        return
    if args.write_csv:
        write_csv()
    outcome = run()
    result, reference = outcome["result"], outcome["sklearn"]
    ours = np.array([result.params[name] for name in PARAMS])
    print(f"{'':6}{'symdiff':>14}{'sklearn':>14}")
    for name, mine, theirs in zip(PARAMS, ours, reference, strict=True):
        print(f"{name:6}{mine:14.8f}{theirs:14.8f}")
    print(
        f"max |diff| = {np.max(np.abs(ours - reference)):.1e} (tolerance {TOLERANCE:g}); "
        f"loss {result.loss:.10f}; {result.steps} steps; {result.message}"
    )


if __name__ == "__main__":
    main()
