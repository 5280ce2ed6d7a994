"""Choose one surrogate per face track: close in skin tone and look, far from the person.

Candidates are the ``TONE_CANDIDATES`` surrogates nearest the track's skin colour (CIE
Lab) among those of the person's apparent presentation (read from recogniser A by the
bank's probe: :mod:`deidvid.surrogate.presentation`). Each is rendered into a few of the
track's own frames (its pose, expression and lighting) and scored by recognisers A and C:
the distance between the original and the rendered face, divided by the recogniser's
threshold; a candidate's score is its worst (smallest) ratio. Among the candidates within
``NEAR_BEST`` of the best score, ``seed`` picks one (so runs are reproducible and a dataset
does not get one face everywhere). Recogniser B is never consulted: it is kept to tell the
truth in ``verify``.

Privacy before looks, but only where it is at stake: when every candidate of the person's
look scores below 1 (their mean distance from the person inside a recogniser's same-person
threshold), the tone-nearest of every look are scored too; and a candidate below 1 is
picked only when none reaches it. Not a wider margin: a surrogate of the other look is
farther from the person under A and C by 0.03-0.1 thresholds on the validation videos
(measured, session 22), so a margin of 1.05 already gave 3 of the 5 validation people a
face of the other look. README, "Surrogate faces".
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import cv2
import numpy as np

from deidvid.surrogate.bank import Surrogate

TONE_CANDIDATES = 4
# Ties: candidates this close to the best are picked among by the seed. 0.05 until session 22,
# when it let hdtf_khill's choice take a surrogate 0.049 below the best, which recogniser C then
# matched in 55 % of frames against 20 % for the best (README, "Surrogate faces").
NEAR_BEST = 0.02
MATCH_RATIO = 1.0  # a score below this: the mean frame is within a recogniser's same-person threshold
CHOOSING_RECOGNISERS = ("A", "C")


def track_tone_lab(lighting: np.ndarray) -> np.ndarray:
    """The skin's mean CIE Lab from lighting fits ``(T, 3, 3)`` (the ``a`` terms, 0..255 units)."""
    rgb = np.exp(np.median(lighting[:, :, 0], axis=0)).clip(0, 255).astype(np.float32) / 255.0
    return cv2.cvtColor(rgb.reshape(1, 1, 3), cv2.COLOR_RGB2Lab).reshape(3).astype(np.float64)


def tone_candidates(
    bank: Sequence[Surrogate], tone: np.ndarray, count: int = TONE_CANDIDATES, presentation: str | None = None
) -> list[int]:
    """Indices of the ``count`` surrogates nearest ``tone`` (Lab), nearest first; only those
    of ``presentation`` when it is given and the bank has any."""
    eligible = [i for i, s in enumerate(bank) if presentation is None or s.presentation == presentation]
    eligible = eligible or list(range(len(bank)))
    distances = [float(np.linalg.norm(bank[i].tone - tone)) for i in eligible]
    return [eligible[i] for i in np.argsort(distances, kind="stable")[:count]]


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


def choose_surrogate(
    bank: Sequence[Surrogate],
    tone: np.ndarray,
    presentation: str | None,
    score: Callable[[int], float],
    seed: int,
    track_id: int,
    taken: Collection[int] = (),
) -> int:
    """The bank index for a track of skin ``tone`` (Lab) and apparent ``presentation``.

    ``score(k)`` is :func:`identity_ratio` of surrogate ``k`` drawn into the track's frames;
    ``presentation`` None (no frame to read it from): every look is a candidate. ``taken``:
    the surrogates of other faces seen at the same time, left to them (two people must not
    look alike) unless every unmatched candidate is taken.
    """
    scores = {k: score(k) for k in tone_candidates(bank, tone, presentation=presentation)}
    if presentation is not None and max(scores.values()) < MATCH_RATIO:
        scores.update({k: score(k) for k in tone_candidates(bank, tone) if k not in scores})
    unmatched = {k: v for k, v in scores.items() if v >= MATCH_RATIO}
    free = {k: v for k, v in (unmatched or scores).items() if k not in taken}
    return pick(free or unmatched or scores, seed, track_id)
