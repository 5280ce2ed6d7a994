"""Clips in time: layout, cross-fade weights, and the accumulator that joins clip outputs.

A track of ``L`` frames is cut into clips of ``clip_len`` frames that overlap by at
least ``overlap``; the last clip is aligned to the track's end. Each clip's output
is weighted by ramps over its overlaps, and per-frame outputs are the weighted
mean, so clips join without a seam in time.

``ClipAccumulator`` does this while a video streams past: it keeps each face's crop
as frames arrive, hands out the clips that are complete, sums their weighted
outputs, and releases a frame's result once every clip covering it has run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from deidvid.faces.geometry import CropBox, cut_crop
from deidvid.faces.track import FaceTrack
from deidvid.methods.base import CropClip


def plan_clips(length: int, clip_len: int = 64, overlap: int = 16) -> list[tuple[int, int]]:
    """Clip spans ``[start, end)`` covering ``range(length)``.

    Tracks shorter than ``clip_len`` give one clip of the whole track.
    """
    if length <= 0:
        return []
    if length <= clip_len:
        return [(0, length)]
    if not 0 <= overlap < clip_len:
        raise ValueError(f"overlap must be in [0, {clip_len}), got {overlap}")
    stride = clip_len - overlap
    starts = list(range(0, length - clip_len + 1, stride))
    if starts[-1] + clip_len < length:
        starts.append(length - clip_len)
    return [(s, s + clip_len) for s in starts]


def crossfade_weights(span: tuple[int, int], length: int, overlap: int) -> np.ndarray:
    """Weights ``(end - start,)`` in (0, 1] for one clip of a track of ``length`` frames.

    Linear ramps over ``overlap`` frames at each end that meets another clip; the
    track's own first and last frames keep full weight.
    """
    start, end = span
    n = end - start
    t = np.arange(n, dtype=np.float64)
    w = np.ones(n)
    if overlap > 0:
        if start > 0:
            w = np.minimum(w, (t + 0.5) / overlap)
        if end < length:
            w = np.minimum(w, (n - t - 0.5) / overlap)
    return w


@dataclass(frozen=True)
class ClipJob:
    """One clip of one track: global frames ``[start, end)`` and their cross-fade weights ``(end - start,)``."""

    track: FaceTrack
    start: int
    end: int
    weights: np.ndarray


@dataclass(frozen=True)
class FaceResult:
    """A frame's final value for one face: the crop box and the blended output ``(S, S, 3)`` in [0, 1] units."""

    track: FaceTrack
    box: CropBox
    value: np.ndarray


class ClipAccumulator:
    """Collects crops as frames arrive, hands out complete clips, blends their outputs.

    Args:
        tracks: pass 1's face tracks.
        clip_len, overlap: the clip layout (``plan_clips``).
        residual: accumulate ``output - input`` (True) or the output itself.
    """

    def __init__(self, tracks: list[FaceTrack], clip_len: int, overlap: int, residual: bool) -> None:
        self.tracks = tracks
        self.residual = residual
        self._jobs_ending: dict[int, list[ClipJob]] = defaultdict(list)
        self._ready_at: dict[int, int] = {}  # frame -> last frame whose clip it waits for
        for track in tracks:
            n = len(track.landmarks)
            for s, e in plan_clips(n, clip_len, overlap):
                job = ClipJob(track, track.start + s, track.start + e, crossfade_weights((s, e), n, overlap))
                self._jobs_ending[job.end - 1].append(job)
                for f in range(job.start, job.end):
                    self._ready_at[f] = max(self._ready_at.get(f, -1), job.end - 1)
        # (track id, frame) -> crop box, crop (S, S, 3) float32, landmarks (68, 2) in crop pixels, time
        self._boxes: dict[tuple[int, int], CropBox] = {}
        self._crops: dict[tuple[int, int], np.ndarray] = {}
        self._points: dict[tuple[int, int], np.ndarray] = {}
        self._times: dict[int, float] = {}
        self._sums: dict[tuple[int, int], np.ndarray] = {}
        self._wsums: dict[tuple[int, int], float] = defaultdict(float)

    def add_frame(self, index: int, time_s: float, rgb: np.ndarray) -> list[tuple[ClipJob, CropClip]]:
        """Cut every tracked face from frame ``index``; return the clips that end here."""
        self._times[index] = time_s
        for track in self.tracks:
            if track.covers(index):
                box = track.box_at(index)
                key = (track.track_id, index)
                self._boxes[key] = box
                self._crops[key] = cut_crop(rgb, box).astype(np.float32) / 255.0
                self._points[key] = box.to_crop(track.at(index))
        due = []
        for job in self._jobs_ending.pop(index, []):
            keys = [(job.track.track_id, f) for f in range(job.start, job.end)]
            clip = CropClip(
                frames=np.stack([self._crops[k] for k in keys]),
                landmarks=np.stack([self._points[k] for k in keys]),
                track_id=job.track.track_id,
                start=job.start,
                times_s=np.array([self._times[f] for f in range(job.start, job.end)]),
            )
            due.append((job, clip))
        return due

    def add_output(self, job: ClipJob, clip: CropClip, output: np.ndarray) -> None:
        """Accumulate a clip's output ``(T, S, S, 3)`` with its cross-fade weights."""
        value = output - clip.frames if self.residual else output
        for i, f in enumerate(range(job.start, job.end)):
            key = (job.track.track_id, f)
            w = float(job.weights[i])
            self._sums[key] = self._sums.get(key, 0.0) + w * value[i]
            self._wsums[key] += w

    def is_final(self, index: int, decoded_up_to: int) -> bool:
        """Whether frame ``index`` has all its clip outputs once frames up to ``decoded_up_to`` are in."""
        return self._ready_at.get(index, -1) <= decoded_up_to

    def boxes_at(self, index: int) -> list[CropBox]:
        """The crop boxes of the faces cut from frame ``index`` (after :meth:`add_frame`, before :meth:`take`)."""
        return [self._boxes[key] for key in ((t.track_id, index) for t in self.tracks) if key in self._boxes]

    def take(self, index: int) -> list[FaceResult]:
        """The blended results of a final frame (and forget everything kept for it)."""
        results = []
        for track in self.tracks:
            key = (track.track_id, index)
            if key in self._sums:
                results.append(FaceResult(track, self._boxes.pop(key), self._sums.pop(key) / self._wsums.pop(key)))
            self._crops.pop(key, None)
            self._points.pop(key, None)
        self._times.pop(index, None)
        return results
