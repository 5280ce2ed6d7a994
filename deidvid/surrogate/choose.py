"""Choose one surrogate per face track: close in skin tone, far from the person.

Candidates are the ``TONE_CANDIDATES`` surrogates nearest the track's skin colour (CIE
Lab). Each is rendered into a few of the track's own frames (its pose, expression and
lighting) and scored by recognisers A and C: the distance between the original and the
rendered face, divided by the recogniser's threshold; a candidate's score is its worst
(smallest) ratio. Among the candidates within ``NEAR_BEST`` of the best score, ``seed``
picks one (so runs are reproducible and a dataset does not get one face everywhere).
Recogniser B is never consulted: it is kept to tell the truth in ``verify``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from deidvid.surrogate.bank import Surrogate

TONE_CANDIDATES = 4
NEAR_BEST = 0.05
CHOOSING_RECOGNISERS = ("A", "C")


def track_tone_lab(lighting: np.ndarray) -> np.ndarray:
    """The skin's mean CIE Lab from lighting fits ``(T, 3, 3)`` (the ``a`` terms, 0..255 units)."""
    rgb = np.exp(np.median(lighting[:, :, 0], axis=0)).clip(0, 255).astype(np.float32) / 255.0
    return cv2.cvtColor(rgb.reshape(1, 1, 3), cv2.COLOR_RGB2Lab).reshape(3).astype(np.float64)


def tone_candidates(bank: Sequence[Surrogate], tone: np.ndarray, count: int = TONE_CANDIDATES) -> list[int]:
    """Indices of the ``count`` surrogates nearest ``tone`` (Lab), nearest first."""
    distances = [float(np.linalg.norm(s.tone - tone)) for s in bank]
    return [int(i) for i in np.argsort(distances, kind="stable")[:count]]


def pick(scores: Mapping[int, float], seed: int, track_id: int) -> int:
    """One of the candidates scoring within :data:`NEAR_BEST` of the best, by ``seed``."""
    best = max(scores.values())
    near = sorted(k for k, v in scores.items() if v >= best - NEAR_BEST)
    return near[int(np.random.default_rng([seed, max(track_id, 0)]).integers(len(near)))]


def identity_ratio(
    originals: Mapping[str, np.ndarray], rendered: Mapping[str, np.ndarray], thresholds: Mapping[str, float]
) -> float:
    """Worst recogniser's mean distance / threshold between the original frames'
    embeddings ``(N, D)`` and the same frames rendered with a candidate ``(N, D)``."""
    return min(
        float(np.linalg.norm(originals[name] - rendered[name], axis=1).mean()) / threshold
        for name, threshold in thresholds.items()
    )
