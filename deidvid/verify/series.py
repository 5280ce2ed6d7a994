"""What ``deidvid verify`` measured over time, for plots (the ``--html`` page).

The JSON report keeps summaries; :class:`VerifySeries` keeps the series behind them: a
few frames of both videos, and per face track its pulse waveforms, the identity
distance of each sampled frame and the expression signals. All of it is small (the
arrays have one number per frame or sampled frame; the frames are thumbnails), so
verify always collects it (:func:`deidvid.verify.run.verify_videos_with_series`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deidvid.measure.pulse import TrackPulses

SNAPSHOT_COUNT = 4  # frames shown side by side
SNAPSHOT_WIDTH = 320  # pixels: each snapshot is scaled down to at most this width


def snapshot_frames(frame_count: int, count: int = SNAPSHOT_COUNT) -> list[int]:
    """``count`` evenly spaced frame indices of a ``frame_count``-frame video: the middles of
    ``count`` equal parts (fewer, distinct, for a shorter video)."""
    if frame_count < 1 or count < 1:
        return []
    middles = (np.arange(count) + 0.5) * frame_count / count
    return sorted({min(int(m), frame_count - 1) for m in middles})


def thumbnail(rgb: np.ndarray, width: int = SNAPSHOT_WIDTH) -> np.ndarray:
    """``(H, W, 3)`` uint8 scaled down (area averaging) to at most ``width`` pixels wide."""
    height, full_width = rgb.shape[:2]
    if full_width <= width:
        return np.ascontiguousarray(rgb)
    import cv2

    size = (width, max(1, round(height * width / full_width)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class FrameSnapshot:
    """One frame of both videos, scaled down (:func:`thumbnail`)."""

    index: int
    time_s: float
    original: np.ndarray  # (h, w, 3) uint8 RGB
    deidentified: np.ndarray  # (h, w, 3) uint8 RGB


class Snapshots:
    """Keeps the frames of :func:`snapshot_frames` as they are decoded.

    Args:
        frame_count: frames of the video.
        count: how many to keep.
    """

    def __init__(self, frame_count: int, count: int = SNAPSHOT_COUNT) -> None:
        self.wanted = set(snapshot_frames(frame_count, count))
        self.frames: list[FrameSnapshot] = []

    def add(self, index: int, time_s: float, original: np.ndarray, deidentified: np.ndarray) -> None:
        """Frame ``index`` of both videos, ``(H, W, 3)`` uint8 RGB (kept only when wanted)."""
        if index in self.wanted:
            self.frames.append(FrameSnapshot(index, float(time_s), thumbnail(original), thumbnail(deidentified)))


@dataclass(frozen=True)
class TrackSeries:
    """One face track's series (the report's ``faces[i]`` with the same ``track_id``).

    Attributes:
        track_id: the face track.
        start_frame: the video frame index of its first frame.
        times: ``(L,)`` time (s) of each of the track's frames.
        pulse: its pulse waveforms (None: too short for pulse analysis).
        identity_frames: ``(N,)`` video frame indices of the pairs the recognisers scored.
        identity_distances: ``{recogniser: (N,) distance}`` at those frames.
        expression_signals: names of the expression columns.
        expression_original, expression_deidentified: ``(L, S)`` signals per track
            frame, NaN where not sampled (None: expression skipped).
    """

    track_id: int
    start_frame: int
    times: np.ndarray
    pulse: TrackPulses | None
    identity_frames: np.ndarray
    identity_distances: dict[str, np.ndarray]
    expression_signals: tuple[str, ...] = ()
    expression_original: np.ndarray | None = None
    expression_deidentified: np.ndarray | None = None

    @property
    def identity_times(self) -> np.ndarray:
        """``(N,)`` times (s) of the identity frames."""
        return self.times[self.identity_frames - self.start_frame]


@dataclass
class VerifySeries:
    """Everything :class:`TrackSeries` holds, per face track, and the snapshots."""

    snapshots: list[FrameSnapshot] = field(default_factory=list)
    tracks: list[TrackSeries] = field(default_factory=list)

    def track(self, track_id: int) -> TrackSeries | None:
        """The series of face track ``track_id`` (None when there is none)."""
        return next((t for t in self.tracks if t.track_id == track_id), None)
