"""A privacy check while anonymising: do recognisers still match the model's output?

The autoencoder's output is meant to look untouched, so a face it failed to
de-identify would pass unnoticed. :class:`IdentityCheck` scores every ``stride``-th
face frame of each track once: the bundled recognisers embed the input crop and the model's
output crop (at the same landmarks) and count a match when the distance is below the
recogniser's threshold -- the measure ``deidvid verify`` reports on the written video,
counted by the same :class:`deidvid.measure.identity.IdentityScorer`. The report
carries the match rates and the pipeline warns when any is above zero.

The recognisers run in a worker thread beside the pipeline (their kernels release the
GIL), one batch at a time and in order, so the tallies are those of running them inline.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from deidvid.measure.identity import IdentityScorer

if TYPE_CHECKING:
    from deidvid.recognise import Embedder


class IdentityCheck:
    """Accumulates recogniser match rates of (input crop, output crop) pairs, one video.

    Args:
        recognisers: loaded recognisers by name (``deidvid.recognise.load_embedder``);
            they may be shared by several checks.
        stride: score every ``stride``-th frame of each track.
    """

    # Clips handed over and not yet scored; more wait for the oldest (memory stays flat).
    MAX_PENDING = 2

    def __init__(self, recognisers: dict[str, Embedder], stride: int = 8) -> None:
        self.stride = max(int(stride), 1)
        self.scorer = IdentityScorer(recognisers)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="identity-check")
        self._pending: deque[Future[None]] = deque()
        self._scored_until: dict[int, int] = {}  # track id -> video index of its last clip's last frame

    def observe(
        self, clip_in: np.ndarray, clip_out: np.ndarray, landmarks: np.ndarray, track_id: int | None = None, start: int = 0
    ) -> None:
        """Score ``(T, H, W, 3)`` input/output crops in [0, 1] with their ``(T, 68, 2)`` landmarks
        (in the worker thread; the picked frames are copied, so the caller may reuse the arrays).

        The picked frames are those whose video index (``start`` + their place in the clip) is
        a multiple of the stride; with ``track_id``, each once: a clip's frames that the track's
        previous clip held (clips overlap) were scored with it.
        """
        if not self.scorer.recognisers:
            return
        indexes = start + np.arange(len(clip_in))
        wanted = indexes % self.stride == 0
        if track_id is not None and len(indexes):
            scored_until = self._scored_until.get(track_id, -1)
            wanted &= indexes > scored_until
            self._scored_until[track_id] = max(scored_until, int(indexes[-1]))
        picked = np.flatnonzero(wanted)
        if not len(picked):
            return
        batch = np.asarray(clip_in)[picked], np.asarray(clip_out)[picked], np.asarray(landmarks)[picked]
        while len(self._pending) >= self.MAX_PENDING:
            self._pending.popleft().result()
        self._pending.append(self._worker.submit(self.scorer.score, *batch))

    def wait(self) -> None:
        """Block until every clip handed over is scored; re-raises a failure of the worker."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Stop the worker (clips not yet scored are dropped)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._worker.shutdown(wait=True)

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per recogniser: frames scored, match rate (None if none scored), mean distance, threshold."""
        self.wait()
        return {
            name: {
                "frames": scores["frames"],
                "match_rate": scores["match_rate"],
                "mean_distance": scores["mean_distance"],
                "threshold": scores["threshold"],
            }
            for name, scores in self.scorer.summary().items()
        }

    def warnings(self) -> list[str]:
        """One line per recogniser that still matched some scored frames."""
        lines = []
        for name, s in self.summary().items():
            if s["match_rate"]:
                lines.append(
                    f"identity check: recogniser {name} still matches {s['match_rate']:.0%} of "
                    f"{s['frames']} sampled face frames (identity not removed there)"
                )
        return lines
