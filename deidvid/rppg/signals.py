"""From frames to RGB traces: masked means, gap filling and even-rate resampling.

rPPG methods assume evenly spaced samples. Real clips can have variable frame
rates; :func:`resample_uniform` interpolates a trace sampled at the frames'
timestamps onto an even grid (linear interpolation, the grid spans the same time
range). Frames without a face give NaN rows, filled by :func:`fill_gaps`.
"""

from __future__ import annotations

import numpy as np

from deidvid.faces.skin import SkinRegion


def masked_mean_rgb(frame: np.ndarray, mask: np.ndarray | SkinRegion) -> np.ndarray:
    """Mean colour ``(C,)`` float64 of ``frame (H, W, C)`` over a mask.

    Args:
        frame: ``(H, W, C)`` image (uint8 or float).
        mask: ``(H, W)`` bool, or a :class:`SkinRegion` (box-local mask).

    Returns:
        ``(C,)``; NaN when the mask selects no pixel.
    """
    if isinstance(mask, SkinRegion):
        h, w = mask.mask.shape
        patch = frame[mask.y0 : mask.y0 + h, mask.x0 : mask.x0 + w]
        selected = mask.mask[: patch.shape[0], : patch.shape[1]]
    else:
        patch, selected = frame, np.asarray(mask, dtype=bool)
        if selected.shape != frame.shape[:2]:
            raise ValueError(f"mask {selected.shape} does not match frame {frame.shape[:2]}")
    count = int(selected.sum())
    if count == 0:
        return np.full(frame.shape[-1], np.nan)
    return patch[selected].sum(axis=0, dtype=np.float64) / count


def masked_mean_rgb_series(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean colour per frame: ``frames (T, H, W, C)``, ``masks (T, H, W)`` or ``(H, W)``.

    Returns ``(T, C)`` float64, NaN rows where a mask is empty.
    """
    frames = np.asarray(frames)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks, frames.shape[:3])
    if masks.shape != frames.shape[:3]:
        raise ValueError(f"masks {masks.shape} do not match frames {frames.shape[:3]}")
    weights = masks.astype(np.float64)
    counts = weights.sum(axis=(1, 2))
    sums = np.einsum("thw,thwc->tc", weights, frames.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    return means


def fill_gaps(trace: np.ndarray) -> np.ndarray:
    """Linearly interpolate NaN rows of ``trace (T, C)`` (ends: nearest valid value).

    Raises ValueError when every row is NaN.
    """
    trace = np.array(trace, dtype=np.float64)
    valid = np.isfinite(trace).all(axis=-1) if trace.ndim == 2 else np.isfinite(trace)
    if not valid.any():
        raise ValueError("no valid sample to interpolate from (no face in any frame?)")
    if valid.all():
        return trace
    index = np.arange(trace.shape[0])
    columns = trace.reshape(trace.shape[0], -1)
    for column in range(columns.shape[1]):
        columns[:, column] = np.interp(index, index[valid], columns[valid, column])
    return columns.reshape(trace.shape)


def nominal_rate(timestamps: np.ndarray) -> float:
    """Mean sampling rate ``(N - 1) / duration`` in Hz of increasing ``timestamps`` (s)."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.size < 2:
        raise ValueError("need at least two timestamps")
    duration = float(timestamps[-1] - timestamps[0])
    if duration <= 0:
        raise ValueError("timestamps do not increase")
    return (timestamps.size - 1) / duration


def is_uniform(timestamps: np.ndarray, tolerance: float = 0.05) -> bool:
    """True when every frame interval is within ``tolerance`` (relative) of the mean."""
    intervals = np.diff(np.asarray(timestamps, dtype=np.float64))
    if intervals.size == 0:
        return True
    mean = intervals.mean()
    return bool(mean > 0 and np.all(np.abs(intervals - mean) <= tolerance * mean))


def resample_uniform(
    values: np.ndarray, timestamps: np.ndarray, fs: float | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Interpolate samples taken at ``timestamps`` onto an even time grid.

    Args:
        values: ``(T,)`` or ``(T, C)``.
        timestamps: ``(T,)`` seconds, strictly increasing.
        fs: grid rate in Hz; default :func:`nominal_rate` of the timestamps.

    Returns:
        ``(values_even (N, ...), times_even (N,), fs)``; the grid starts at the first
        timestamp and does not go past the last.
    """
    values = np.asarray(values, dtype=np.float64)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if values.shape[0] != timestamps.shape[0]:
        raise ValueError(f"{values.shape[0]} samples but {timestamps.shape[0]} timestamps")
    if np.any(np.diff(timestamps) <= 0):
        raise ValueError("timestamps must be strictly increasing")
    rate = nominal_rate(timestamps) if fs is None else float(fs)
    duration = timestamps[-1] - timestamps[0]
    count = int(np.floor(duration * rate + 1e-9)) + 1
    grid = timestamps[0] + np.arange(count) / rate
    columns = values.reshape(values.shape[0], -1)
    resampled = np.stack(
        [np.interp(grid, timestamps, columns[:, c]) for c in range(columns.shape[1])], axis=1
    )
    return resampled.reshape((count, *values.shape[1:])), grid, rate
