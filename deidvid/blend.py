"""Temporal clip layout and cross-fade weights.

A track of ``L`` frames is cut into clips of ``clip_len`` frames that overlap by at
least ``overlap``; the last clip is aligned to the track's end. Each clip's output
is weighted by ramps over its overlaps, and per-frame outputs are the weighted
mean, so clips join without a seam in time.
"""

from __future__ import annotations

import numpy as np


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
