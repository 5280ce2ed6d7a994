"""Pass 1: the original's pulse, per skin region, over a whole face track.

Per frame, :func:`region_means` reduces the face to ``R x 3`` numbers: the mean
*linear* light of each region (display value ``v`` -> ``(v / 255) ** 2.2``; the pulse
is a relative change of reflected light, so it is measured where light adds up).
:class:`TrackPulseRecorder` keeps those numbers (120 bytes a frame), and
:func:`relative_variation` turns the track's series into the pulse-band relative
variation ``c(t) / baseline(t) - 1`` that pass 2 transplants.

The time-series part (zero-phase filters in seconds, variable frame rates, gaps,
track ends) is :mod:`deidvid.pulse.variation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from deidvid.pulse.regions import NUM_REGIONS, region_pieces
from deidvid.pulse.variation import (
    DEFAULT_BAND_HZ,
    checked_band,
    even_grid,
    relative_variation,
    rms_amplitude,
)

__all__ = [  # relative_variation lives in variation.py; pass 1 uses it from here
    "DEFAULT_BAND_HZ",
    "GAMMA",
    "MIN_TRACK_SECONDS",
    "TrackPulse",
    "TrackPulseRecorder",
    "region_means",
    "relative_variation",
    "rms_amplitude",
]

GAMMA = 2.2
MIN_TRACK_SECONDS = 2.0
MIN_MEASURED_FRACTION = 0.5  # of a track's frames with at least one region measured

LINEAR_LUT = ((np.arange(256, dtype=np.float64) / 255.0) ** GAMMA).astype(np.float32)
_LUT_1x256 = LINEAR_LUT.reshape(1, 256)


def region_means(frame: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """Mean linear light ``(R, 3)`` float64 per region of one face in one frame.

    Only each region's box is read, so the cost follows the face's size, not the
    frame's. Channels are in the frame's order.

    Args:
        frame: ``(H, W, 3)`` uint8 display values.
        landmarks68: ``(68, 2)`` ``(x, y)`` in frame pixels.

    Returns:
        ``(R, 3)``; a row is NaN when its region has no pixel (face cut by the edge).
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    means = np.full((NUM_REGIONS, 3), np.nan)
    for r, piece in enumerate(region_pieces(landmarks68, frame.shape[:2])):
        if piece is None or not cv2.countNonZero(piece[1]):
            continue
        (rows, cols), mask = piece
        linear = cv2.LUT(frame[rows, cols], _LUT_1x256)  # only the region's box
        means[r] = cv2.mean(linear, mask=mask)[:3]
    return means


# ----------------------------------------------------------------------------- track


@dataclass
class TrackPulse:
    """The original's pulse over one track, ready for pass 2.

    Attributes:
        start: first frame index of the track; ``variation[i]`` is frame ``start + i``.
        variation: ``(T, R, 3)`` float32 relative variation (zeros when not valid).
        valid: False when the pulse cannot be estimated; see ``reason``.
        reason: why not valid, else None.
    """

    MIN_TRACK_SECONDS: ClassVar[float] = MIN_TRACK_SECONDS

    start: int
    variation: np.ndarray
    valid: bool
    reason: str | None = None

    @property
    def end(self) -> int:
        return self.start + self.variation.shape[0]

    @property
    def amplitude(self) -> np.ndarray:
        """RMS ``(3,)`` of the in-band variation per channel, for reports."""
        return rms_amplitude(self.variation)

    def frames(self, first: int, count: int) -> np.ndarray:
        """Variation ``(count, R, 3)`` for frames ``first..first+count-1`` (0 outside)."""
        out = np.zeros((count, *self.variation.shape[1:]), dtype=np.float32)
        lo, hi = max(first, self.start), min(first + count, self.end)
        if hi > lo:
            out[lo - first : hi - first] = self.variation[lo - self.start : hi - self.start]
        return out


class TrackPulseRecorder:
    """Collects one track's region means frame by frame (any order, gaps allowed)."""

    def __init__(self, num_regions: int = NUM_REGIONS, channels: int = 3) -> None:
        self._shape = (num_regions, channels)
        self._frames = np.empty(0, dtype=np.int64)
        self._means = np.empty((0, *self._shape), dtype=np.float64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, frame_index: int, means: np.ndarray) -> None:
        """Record ``means (R, 3)`` (from :func:`region_means`) for ``frame_index``."""
        means = np.asarray(means, dtype=np.float64)
        if means.shape != self._shape:
            raise ValueError(f"expected {self._shape} means, got {means.shape}")
        if self._count == self._frames.size:  # grow by doubling: amortised O(1)
            size = max(64, 2 * self._count)
            self._frames = np.resize(self._frames, size)
            self._means = np.resize(self._means, (size, *self._shape))
        self._frames[self._count] = frame_index
        self._means[self._count] = means
        self._count += 1

    def series(self, start: int, end: int) -> np.ndarray:
        """``(end - start, R, 3)`` means, NaN for unrecorded frames (last record wins)."""
        out = np.full((end - start, *self._shape), np.nan)
        frames = self._frames[: self._count]
        keep = (frames >= start) & (frames < end)
        out[frames[keep] - start] = self._means[: self._count][keep]
        return out

    def finish(
        self,
        start: int,
        end: int,
        times_s: np.ndarray,
        band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    ) -> TrackPulse:
        """The track's :class:`TrackPulse` for frames ``[start, end)``.

        Args:
            times_s: ``(end - start,)`` presentation times of those frames in seconds.
        """
        times = np.asarray(times_s, dtype=np.float64)
        if times.shape != (end - start,):
            raise ValueError(f"expected {end - start} timestamps, got {times.shape}")
        means = self.series(start, end)

        def invalid(reason: str) -> TrackPulse:
            return TrackPulse(start, np.zeros(means.shape, np.float32), False, reason)

        if times.size < 2:
            return invalid(
                f"track shorter than {MIN_TRACK_SECONDS} s: pulse band cannot be estimated"
            )
        try:
            _, fs, _ = even_grid(times)
            duration = times[-1] - times[0] + 1.0 / fs  # each frame lasts one interval
            if duration < MIN_TRACK_SECONDS:
                return invalid(
                    f"track shorter than {MIN_TRACK_SECONDS} s ({duration:.2f} s): "
                    "pulse band cannot be estimated"
                )
            checked_band(band_hz, fs)
        except ValueError as error:
            return invalid(str(error))
        measured = np.isfinite(means).any(axis=(1, 2)).mean()
        if measured < MIN_MEASURED_FRACTION:
            return invalid(f"only {measured:.0%} of the track's frames have skin measured")
        variation = relative_variation(means, times, band_hz)
        return TrackPulse(start, variation.astype(np.float32), True, None)
