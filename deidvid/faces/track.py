"""Face tracking: stable IDs across frames, gap filling, temporal smoothing.

The tracker sees, per frame, the landmark sets found in that frame and assigns
each to a track (Hungarian matching on box overlap). Frames where a track was not
observed are filled by linear interpolation when the gap is short; landmarks are
then smoothed with the paper's 5-point centred moving average, which may move no
landmark further than a tenth of the face from where it was found (``limit_lag``: a
fast shake must not be averaged away). Detections may be matched to where a track is
expected in their frame (its motion, measured by the caller). It is pure logic on
arrays, independent of detectors and video I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from deidvid.faces.geometry import CropBox, crop_box, steady_boxes


# Smoothing may move a landmark by at most this fraction of the face's size (``limit_lag``).
MAX_SMOOTHING_LAG = 0.1


@dataclass(frozen=True)
class FaceTrack:
    """One person's face over a run of consecutive frames.

    Attributes:
        track_id: stable ID, unique within a video.
        start: index of the first frame.
        landmarks: ``(L, 68, 2)`` smoothed landmarks for frames ``start .. start+L-1``.
        observed: ``(L,)`` bool, False where the landmarks were interpolated over a gap.
        crop_margin: context around the paper's tight crop box (:func:`crop_box`), as the
            method that processes the track asks (``Method.crop_margin``).
    """

    track_id: int
    start: int
    landmarks: np.ndarray
    observed: np.ndarray
    crop_margin: float = 0.0

    @property
    def end(self) -> int:
        """One past the last frame."""
        return self.start + len(self.landmarks)

    def covers(self, frame_index: int) -> bool:
        return self.start <= frame_index < self.end

    def at(self, frame_index: int) -> np.ndarray:
        return self.landmarks[frame_index - self.start]

    @cached_property
    def boxes(self) -> list[CropBox]:
        """Per frame, the crop box the pipeline cuts and pastes: :func:`crop_box` of the
        landmarks (with the track's ``crop_margin``), held steady over their rounding jitter
        (:func:`steady_boxes`)."""
        return steady_boxes([crop_box(lm, self.crop_margin) for lm in self.landmarks])

    def box_at(self, frame_index: int) -> CropBox:
        return self.boxes[frame_index - self.start]


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Bounding box ``(4,)`` xyxy of ``landmarks (N, 2)``."""
    return np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a (N, 4)`` and ``b (M, 4)`` xyxy -> ``(N, M)``."""
    a = a[:, None, :]
    b = b[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost matching of ``(N, M)`` costs: ``(rows, cols)`` index arrays (Hungarian).

    One face or one track (the usual case) is an argmin; scipy.optimize, which costs
    0.5-0.7 s to import, loads only for several of each.
    """
    if min(cost.shape) == 1:
        if cost.shape[0] == 1:
            return np.array([0]), np.array([int(np.argmin(cost[0]))])
        return np.array([int(np.argmin(cost[:, 0]))]), np.array([0])
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)


def moving_average(x: np.ndarray, width: int = 5) -> np.ndarray:
    """Centred moving average along axis 0; the window shrinks at the ends."""
    if width <= 1 or len(x) <= 1:
        return x.copy()
    csum = np.cumsum(np.concatenate([np.zeros_like(x[:1]), x]), axis=0)
    idx = np.arange(len(x))
    lo = np.clip(idx - width // 2, 0, len(x))
    hi = np.clip(idx + width // 2 + 1, 0, len(x))
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (csum[hi] - csum[lo]) / (hi - lo).reshape(shape)


def limit_lag(smoothed: np.ndarray, raw: np.ndarray, fraction: float) -> np.ndarray:
    """``smoothed (L, N, 2)`` landmarks, each point kept within ``fraction`` of its face's size
    (the larger side of ``raw``'s bounding box in that frame) of where ``raw (L, N, 2)`` has it.

    Smoothing is meant to remove the fit's jitter (a few % of the face); where a centred
    average moves a face further, the face turned back faster than the window (a fast shake)
    and the average lags it: the mask would miss part of the face.
    """
    size = np.ptp(raw, axis=1).max(axis=1)  # (L,)
    off = smoothed - raw
    norm = np.linalg.norm(off, axis=2)  # (L, N)
    limit = fraction * size[:, None]
    scale = np.minimum(1.0, limit / np.maximum(norm, 1e-9))
    return raw + off * scale[..., None]


@dataclass
class _LiveTrack:
    track_id: int
    frames: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> (68, 2)

    @property
    def last_frame(self) -> int:
        return max(self.frames)

    @property
    def last_landmarks(self) -> np.ndarray:
        return self.frames[self.last_frame]


class FaceTracker:
    """Assign per-frame landmark sets to tracks with stable IDs.

    Args:
        max_gap: frames a track may go unseen and still be continued (the gap is
            interpolated); after that it is closed and a reappearing face gets a new ID.
        min_iou: box overlap needed to continue a track from the previous frame.
        max_lag: how far smoothing may move a landmark from where it was found, as a
            fraction of the face's size (``limit_lag``).
    """

    def __init__(self, max_gap: int = 15, min_iou: float = 0.3, max_lag: float = MAX_SMOOTHING_LAG) -> None:
        self.max_gap = max_gap
        self.min_iou = min_iou
        self.max_lag = max_lag
        self._live: list[_LiveTrack] = []
        self._closed: list[_LiveTrack] = []
        self._next_id = 0

    def active(self, frame_index: int) -> list[tuple[int, np.ndarray]]:
        """``(track_id, last landmarks)`` of the tracks still open at ``frame_index``."""
        self._close_stale(frame_index)
        return [(t.track_id, t.last_landmarks) for t in self._live]

    def update(
        self, frame_index: int, faces: list[np.ndarray], expected: dict[int, np.ndarray] | None = None
    ) -> list[int]:
        """Match ``faces`` (each ``(68, 2)``) seen in a frame to tracks; return their IDs.

        ``expected`` may give, per track ID, where its landmarks are expected in this frame
        (its last ones moved by the face's motion): the match is made against those instead
        of the last ones, so a face that moved further than its size in one frame keeps its
        track. Unmatched faces start new tracks. Frames must come in increasing order.
        """
        self._close_stale(frame_index)
        ids = [-1] * len(faces)
        if faces and self._live:
            cost = self._match_cost(frame_index, faces, expected or {})
            rows, cols = assign(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < 1.0:
                    self._live[c].frames[frame_index] = faces[r]
                    ids[r] = self._live[c].track_id
        for i, lm in enumerate(faces):
            if ids[i] < 0:
                track = _LiveTrack(self._next_id, {frame_index: lm})
                self._next_id += 1
                self._live.append(track)
                ids[i] = track.track_id
        return ids

    def add(self, track_id: int, frame_index: int, landmarks: np.ndarray) -> None:
        """Record landmarks for a known track (tracking between detections, backfill)."""
        self._find(track_id).frames[frame_index] = landmarks

    def first_frame(self, track_id: int) -> int:
        return min(self._find(track_id).frames)

    def last_frame(self, track_id: int) -> int:
        return self._find(track_id).last_frame

    def _find(self, track_id: int) -> _LiveTrack:
        for t in self._live:
            if t.track_id == track_id:
                return t
        raise KeyError(track_id)

    def finish(self, smooth_width: int = 5) -> list[FaceTrack]:
        """Close every track: fill gaps, smooth, and return them ordered by ID."""
        tracks = self._closed + self._live
        self._closed, self._live = [], []
        return sorted((_to_face_track(t, smooth_width, self.max_lag) for t in tracks), key=lambda t: t.track_id)

    def _match_cost(
        self, frame_index: int, faces: list[np.ndarray], expected: dict[int, np.ndarray]
    ) -> np.ndarray:
        """``(faces, tracks)`` cost in [0, 1]; >= 1 means 'do not match'."""
        face_boxes = np.stack([landmark_box(f) for f in faces])
        track_boxes = np.stack([landmark_box(expected.get(t.track_id, t.last_landmarks)) for t in self._live])
        iou = box_iou(face_boxes, track_boxes)
        cost = 1.0 - iou
        cost[iou < self.min_iou] = 1.0
        # After a gap the face may have moved further: accept a near, similar-sized box.
        gap = np.array([frame_index - t.last_frame for t in self._live])
        size_f = (face_boxes[:, 2:] - face_boxes[:, :2]).max(axis=1)
        size_t = (track_boxes[:, 2:] - track_boxes[:, :2]).max(axis=1)
        centre_f = (face_boxes[:, :2] + face_boxes[:, 2:]) / 2
        centre_t = (track_boxes[:, :2] + track_boxes[:, 2:]) / 2
        dist = np.linalg.norm(centre_f[:, None] - centre_t[None], axis=2)
        ratio = size_f[:, None] / np.maximum(size_t[None], 1e-9)
        near = (dist < 0.5 * size_t[None]) & (ratio > 0.67) & (ratio < 1.5) & (gap[None] > 1)
        cost[(cost >= 1.0) & near] = 0.99
        return cost

    def _close_stale(self, frame_index: int) -> None:
        stale = [t for t in self._live if frame_index - t.last_frame > self.max_gap + 1]
        self._closed += stale
        self._live = [t for t in self._live if t not in stale]


def _to_face_track(track: _LiveTrack, smooth_width: int, max_lag: float) -> FaceTrack:
    frames = np.array(sorted(track.frames))
    start, stop = int(frames[0]), int(frames[-1]) + 1
    known = np.stack([track.frames[f] for f in frames])  # (K, 68, 2)
    everywhere = np.arange(start, stop)
    flat = known.reshape(len(frames), -1)
    filled = np.stack([np.interp(everywhere, frames, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    raw = filled.reshape(-1, 68, 2)
    landmarks = limit_lag(moving_average(raw, smooth_width), raw, max_lag)
    observed = np.isin(everywhere, frames)
    return FaceTrack(track.track_id, start, landmarks, observed)
