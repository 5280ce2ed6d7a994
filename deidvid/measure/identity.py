"""The one identity measure: does a recogniser still see the same person?

A *pair* is a reference face and a test face at the same landmarks (the original frame
and its de-identified version; a model's input crop and its output crop). Each bundled
recogniser embeds both; the pair *matches* when the Euclidean distance of the two
embeddings is below the recogniser's threshold (:attr:`Recogniser.calibrated_threshold`,
the manifest's calibrated value: thresholds are declared nowhere else). The *match rate*
is the fraction of scored pairs that match. The *strict* match rate counts them at the
recogniser's threshold for a false accept rate of 1e-3 on LFW
(:attr:`Recogniser.far1e3_threshold`, also from the manifest), the operating point face
anonymisation papers report.

Three callers, one count:

* ``deidvid verify`` (:mod:`deidvid.verify.run`): every n-th frame of each face track,
  batched across tracks by :class:`PairBatcher`; embeddings kept for the gallery.
* the anonymise identity check (:class:`deidvid.measure.identity_check.IdentityCheck`):
  every n-th frame of each model clip.
* training validation (``deidvid.train.loop.Trainer.validate``): the input clip's
  embeddings are cached, so it hands precomputed embeddings to
  :meth:`IdentityScorer.add_embeddings`.

Distances are computed on the CPU in float32 numpy whatever the device (so a report
does not depend on where the recogniser ran); a recogniser without a threshold gets
distances and a ``None`` match rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

import numpy as np

if TYPE_CHECKING:
    from deidvid.recognise import Embedder


class IdentityScores(TypedDict):
    """One recogniser's scores over some pairs (the JSON of verify and anonymise)."""

    frames: int
    threshold: float | None
    match_rate: float | None
    mean_distance: float | None
    median_distance: float | None
    threshold_far1e3: float | None  # the strict threshold (FAR 1e-3 on LFW)
    match_rate_far1e3: float | None


def embed_faces(recognisers: Mapping[str, Embedder], images: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Per recogniser, ``(B, D)`` embeddings of ``images (B, H, W, 3)`` RGB faces (uint8, or
    float in [0, 1]) at ``landmarks (B, 68, 2)``."""
    return {name: recogniser.embed_images(images, landmarks) for name, recogniser in recognisers.items()}


def pair_distances(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Euclidean distance of each embedding pair: ``(N, D)`` x2 -> ``(N,)`` (their dtype)."""
    if reference.shape != test.shape:
        raise ValueError(f"embedding shapes differ: {reference.shape} vs {test.shape}")
    return np.linalg.norm(reference - test, axis=-1)


def matches(distances: np.ndarray, threshold: float) -> np.ndarray:
    """Same person: ``distances < threshold`` (bool, shape of ``distances``)."""
    return np.asarray(distances) < threshold


def match_rate(distances: np.ndarray, threshold: float | None) -> float | None:
    """Fraction of ``distances (N,)`` below ``threshold``; None without a threshold or a pair."""
    if threshold is None or not np.size(distances):
        return None
    return float(np.mean(matches(distances, threshold)))


def identity_scores(
    distances: np.ndarray, threshold: float | None, threshold_far1e3: float | None = None
) -> IdentityScores:
    """Frames, match rate, mean and median distance of ``distances (N,)`` (None where empty),
    and the match rate at the strict threshold ``threshold_far1e3``."""
    distances = np.asarray(distances)
    return {
        "frames": int(distances.size),
        "threshold": threshold,
        "match_rate": match_rate(distances, threshold),
        "mean_distance": float(distances.mean()) if distances.size else None,
        "median_distance": float(np.median(distances)) if distances.size else None,
        "threshold_far1e3": threshold_far1e3,
        "match_rate_far1e3": match_rate(distances, threshold_far1e3),
    }


@dataclass
class _Rows:
    """Embeddings and distances of one recogniser and key, in the order scored."""

    reference: list[np.ndarray] = field(default_factory=list)
    test: list[np.ndarray] = field(default_factory=list)
    distances: list[np.ndarray] = field(default_factory=list)


class IdentityScorer:
    """Embeds (reference, test) face pairs with each recogniser and tallies their distances.

    Pairs are filed under a key (a face track, a video; ``0`` when there is one).

    Args:
        recognisers: loaded recognisers by name (``deidvid.recognise.load_embedder``); they
            may be shared with other scorers.
        keep_embeddings: keep every pair's embeddings (:meth:`embeddings`; the gallery needs
            them), not only their distances.
    """

    def __init__(self, recognisers: Mapping[str, Embedder], keep_embeddings: bool = False) -> None:
        self.recognisers = dict(recognisers)
        self.keep_embeddings = keep_embeddings
        self._rows: dict[str, dict[Hashable, _Rows]] = {name: defaultdict(_Rows) for name in self.recognisers}

    @property
    def thresholds(self) -> dict[str, float | None]:
        """Each recogniser's same-person threshold (None: distances only)."""
        return {name: rec.calibrated_threshold for name, rec in self.recognisers.items()}

    @property
    def thresholds_far1e3(self) -> dict[str, float | None]:
        """Each recogniser's strict threshold, at FAR 1e-3 on LFW (None: not calibrated)."""
        return {name: rec.far1e3_threshold for name, rec in self.recognisers.items()}

    def score(
        self, reference: np.ndarray, test: np.ndarray, landmarks: np.ndarray, keys: Sequence[Hashable] | None = None
    ) -> None:
        """Embed and tally a batch of pairs.

        Args:
            reference, test: ``(B, H, W, 3)`` RGB, uint8 or float in [0, 1].
            landmarks: ``(B, 68, 2)`` pixel landmarks, the same for both images of a pair.
            keys: ``B`` keys to file the pairs under (default: all under ``0``).
        """
        for name, recogniser in self.recognisers.items():
            # Two passes of B, not one of 2B: batch composition can change CPU kernels' last bits.
            embedded_reference = recogniser.embed_images(reference, landmarks)
            embedded_test = recogniser.embed_images(test, landmarks)
            self.add_embeddings(name, embedded_reference, embedded_test, keys)

    def add_embeddings(
        self, name: str, reference: np.ndarray, test: np.ndarray, keys: Sequence[Hashable] | None = None
    ) -> None:
        """Tally ``(B, D)`` embeddings made elsewhere by recogniser ``name`` (e.g. a cached reference)."""
        keys = [0] * len(reference) if keys is None else list(keys)
        if len(keys) != len(reference):
            raise ValueError(f"{len(keys)} keys for {len(reference)} pairs")
        distances = pair_distances(reference, test)
        per_key = self._rows[name]
        for row, key in enumerate(keys):
            rows = per_key[key]
            rows.distances.append(distances[row : row + 1])
            if self.keep_embeddings:
                rows.reference.append(reference[row])
                rows.test.append(test[row])

    def keys(self) -> list[Hashable]:
        """Every key scored by any recogniser, in the order first seen."""
        return list(dict.fromkeys(k for per_key in self._rows.values() for k in per_key))

    def distances(self, name: str, key: Hashable = 0) -> np.ndarray:
        """``(N,)`` distances of recogniser ``name``'s pairs under ``key`` (float32; empty if none)."""
        rows = self._rows[name].get(key)
        if rows is None or not rows.distances:
            return np.zeros(0, np.float32)
        return np.concatenate(rows.distances)

    def embeddings(self, name: str, key: Hashable = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(N, D)`` reference and test embeddings under ``key`` (needs ``keep_embeddings``)."""
        if not self.keep_embeddings:
            raise RuntimeError("this scorer keeps distances only (keep_embeddings=False)")
        rows = self._rows[name].get(key)
        if rows is None or not rows.reference:
            dim = self.recognisers[name].dim
            return np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32)
        return np.stack(rows.reference), np.stack(rows.test)

    def summary(self, key: Hashable = 0) -> dict[str, IdentityScores]:
        """Per recogniser: :func:`identity_scores` of the pairs under ``key``, at both thresholds."""
        thresholds, strict = self.thresholds, self.thresholds_far1e3
        return {
            name: identity_scores(self.distances(name, key), thresholds[name], strict[name]) for name in self.recognisers
        }


class PairBatcher:
    """Queues single-frame pairs and scores them ``batch_size`` at a time (any keys mixed).

    Args:
        scorer: where the pairs are tallied.
        batch_size: pairs per forward pass.
    """

    def __init__(self, scorer: IdentityScorer, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.scorer = scorer
        self.batch_size = batch_size
        self._queue: list[tuple[Hashable, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, key: Hashable, reference: np.ndarray, test: np.ndarray, landmarks: np.ndarray) -> None:
        """Queue one pair: ``(H, W, 3)`` uint8 frames (or float in [0, 1]) and ``(68, 2)`` landmarks."""
        self._queue.append((key, reference, test, landmarks))
        if len(self._queue) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Score whatever is queued."""
        if not self._queue:
            return
        queue, self._queue = self._queue, []
        self.scorer.score(
            np.stack([q[1] for q in queue]),
            np.stack([q[2] for q in queue]),
            np.stack([q[3] for q in queue]),
            keys=[q[0] for q in queue],
        )
