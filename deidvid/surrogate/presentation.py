"""A face's apparent gender presentation, from recogniser A's embedding (a logistic probe).

Why: the bank holds female- and male-looking surrogates, and a surrogate that looks like
the person's presentation keeps the video plausible (hair, clothing and voice stay the
person's). The probe is a linear read-out of A's embedding, fitted by
``python -m deidvid.tools.build_surrogates`` on LFW people labelled by their first names
(a statistical proxy, written down in the model card with its measured accuracy); it is an
aggregate over hundreds of people and holds no one's face. Only recogniser A, one of the
recognisers that may drive the surrogate choice, is read; never B.

A track's presentation is the probe's mean probability over the choice's frames, read
at 0.5, with the probe as fitted: no parameter to tune. (A confidence band, 0.25-0.75,
with the unsure choosing among every look, was measured and not kept: it left 1 of the 5
validation people unsure, and 2 of the 7 women and 3 of the 17 men of the single-person
clips in ``../shared``; read at 0.5, all 24 are read as people read them. README,
"Surrogate faces".)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEMALE, MALE = "female", "male"
L2_PENALTY = 1.0  # ridge on the weights (not the bias): ~1/N of the data term at LFW's size
NEWTON_STEPS = 50


@dataclass(frozen=True)
class PresentationProbe:
    """``P(female-looking) = sigmoid(embedding @ weights + bias)``.

    Attributes:
        weights: ``(D,)`` float64, for recogniser A's ``(D,)`` embeddings.
        bias: the intercept.
    """

    weights: np.ndarray
    bias: float

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N,)`` P(female-looking) of ``(N, D)`` embeddings."""
        logits = np.asarray(embeddings, dtype=np.float64) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -500.0, 500.0)))

    def apparent(self, embeddings: np.ndarray) -> str | None:
        """:data:`FEMALE` or :data:`MALE` by the frames' ``(N, D)`` mean probability; None without frames."""
        if len(embeddings) == 0:
            return None
        return read_as(float(self.probability(embeddings).mean()))


def read_as(female_probability: float) -> str:
    """The look a mean P(female-looking) reads as (at 0.5: see the module docstring)."""
    return FEMALE if female_probability >= 0.5 else MALE


def fit_probe(embeddings: np.ndarray, female: np.ndarray, l2: float = L2_PENALTY) -> PresentationProbe:
    """Ridge-penalised logistic regression by Newton's method.

    Args:
        embeddings: ``(N, D)``.
        female: ``(N,)`` bool, the label.
        l2: penalty on the weights' squared norm (the bias is free).
    """
    x = np.hstack([np.asarray(embeddings, dtype=np.float64), np.ones((len(embeddings), 1))])
    y = np.asarray(female, dtype=np.float64)
    penalty = np.full(x.shape[1], float(l2))
    penalty[-1] = 0.0
    theta = np.zeros(x.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ theta, -500.0, 500.0)))
        gradient = x.T @ (p - y) + penalty * theta
        hessian = (x * (p * (1.0 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return PresentationProbe(theta[:-1], float(theta[-1]))


def cross_validated_accuracy(embeddings: np.ndarray, female: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Fraction of ``(N, D)`` embeddings whose label the probe predicts when fitted without
    their fold (``folds`` random folds)."""
    female = np.asarray(female, dtype=bool)
    order = np.random.default_rng(seed).permutation(len(female))
    correct = 0
    for held in np.array_split(order, folds):
        train = np.setdiff1d(order, held)
        probe = fit_probe(embeddings[train], female[train])
        correct += int(((probe.probability(embeddings[held]) >= 0.5) == female[held]).sum())
    return correct / len(female)
