"""Classic rPPG methods on mean skin RGB traces (numpy, for evaluation).

All take ``rgb (T, 3)``: the mean R, G, B of the skin region per frame, sampled at
an even rate ``fs`` (resample variable-frame-rate video first, see
:mod:`deidvid.rppg.signals`), values > 0 (any scale: 0-255 or 0-1).

- :func:`pos`: Wang et al. 2017, "Algorithmic principles of remote PPG", as in
  rPPG-Toolbox ``POS_WANG``: 1.6 s sliding windows (hop 1 frame) overlap-added, then
  smoothness-priors detrend (lambda 100) and a 1st-order 0.75-3 Hz band-pass.
- :func:`chrom`: de Haan & Jeanne 2013, as in rPPG-Toolbox ``CHROME_DEHAAN``: per
  1.6 s window (50 % overlap) normalise by the temporal mean, X = 3R - 2G,
  Y = 1.5R + G - 1.5B, 3rd-order 0.7-2.5 Hz band-pass of both, S = X - (sd X / sd Y) Y,
  Hann window, overlap-add. ``window_s=None`` treats the whole trace as one window
  (no Hann): a full-length variant for short training clips.
- :func:`green`: Verkruysse et al. 2008, the green trace itself (as rPPG-Toolbox).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from deidvid.rppg.hr import DEFAULT_DETREND_LAMBDA, bandpass, butter_bandpass, detrend

POS_WINDOW_S = 1.6
POS_BAND_HZ: tuple[float, float] = (0.75, 3.0)
CHROM_WINDOW_S = 1.6
CHROM_BAND_HZ: tuple[float, float] = (0.7, 2.5)
CHROM_FILTER_ORDER = 3

# POS projection plane (Wang et al. 2017, eq. 9).
POS_PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValueError(f"expected an RGB trace of shape (T, 3), got {rgb.shape}")
    if not np.isfinite(rgb).all():
        raise ValueError("RGB trace has NaN/inf values; fill frames without a face first")
    return rgb


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (flat traces)."""
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


def pos_window_length(fs: float, window_s: float = POS_WINDOW_S) -> int:
    """Frames per POS window: ``ceil(window_s * fs)`` as rPPG-Toolbox."""
    return math.ceil(window_s * fs)


def pos_raw(rgb: np.ndarray, fs: float, window_s: float = POS_WINDOW_S) -> np.ndarray:
    """POS before post-filtering: overlap-added window projections, ``(T,)``.

    Like rPPG-Toolbox, window ``m`` covers frames ``[m, m + l)`` for
    ``m = 0 .. T - l - 1`` (so the last frame enters no window).
    """
    rgb = _check_rgb(rgb)
    num_frames = rgb.shape[0]
    length = pos_window_length(fs, window_s)
    pulse = np.zeros(num_frames)
    if num_frames <= length:
        return pulse
    windows = sliding_window_view(rgb[:-1], length, axis=0)  # (T - l, 3, l)
    normalised = windows / windows.mean(axis=-1, keepdims=True)
    projected = np.einsum("pc,wcl->wpl", POS_PROJECTION, normalised)  # (T - l, 2, l)
    s1, s2 = projected[:, 0], projected[:, 1]
    alpha = _safe_ratio(s1.std(axis=-1), s2.std(axis=-1))
    h = s1 + alpha[:, None] * s2
    h -= h.mean(axis=-1, keepdims=True)
    num_windows = h.shape[0]
    for offset in range(length):  # overlap-add, one shifted column at a time
        pulse[offset : offset + num_windows] += h[:, offset]
    return pulse


def pos(
    rgb: np.ndarray,
    fs: float,
    window_s: float = POS_WINDOW_S,
    band_hz: tuple[float, float] = POS_BAND_HZ,
    detrend_lambda: float = DEFAULT_DETREND_LAMBDA,
) -> np.ndarray:
    """POS pulse signal ``(T,)`` from ``rgb (T, 3)`` (rPPG-Toolbox ``POS_WANG``)."""
    raw = pos_raw(rgb, fs, window_s)
    return bandpass(detrend(raw, detrend_lambda), fs, band_hz, order=1)


def chrom_window_length(fs: float, window_s: float = CHROM_WINDOW_S) -> int:
    """Frames per CHROM window: ``ceil(window_s * fs)`` rounded up to even."""
    length = math.ceil(window_s * fs)
    return length + (length % 2)


def chrom_length(num_frames: int, fs: float, window_s: float | None = CHROM_WINDOW_S) -> int:
    """Length of :func:`chrom`'s output for ``num_frames`` input frames.

    The toolbox's overlap-add stops at the last full half-window, so up to
    ``window/2 - 1`` trailing frames (< 0.8 s at the default) have no output.
    """
    if window_s is None:
        return num_frames
    half = chrom_window_length(fs, window_s) // 2
    num_windows = max((num_frames - half) // half, 0)
    return half * (num_windows + 1) if num_windows else 0


def filtfilt_padlen(b: np.ndarray, a: np.ndarray, length: int) -> int:
    # scipy's default pad (3 x filter length), shortened for very short windows.
    return min(3 * max(len(a), len(b)), length - 1)


def _chrom_projection(normalised: np.ndarray, fs: float, band_hz: tuple[float, float], order: int):
    """``normalised (..., 3, L)`` -> filtered chrominance signal ``(..., L)``."""
    x = 3.0 * normalised[..., 0, :] - 2.0 * normalised[..., 1, :]
    y = 1.5 * normalised[..., 0, :] + normalised[..., 1, :] - 1.5 * normalised[..., 2, :]
    b, a = butter_bandpass(fs, band_hz, order)
    padlen = filtfilt_padlen(b, a, x.shape[-1])
    x_f = signal.filtfilt(b, a, x, axis=-1, padlen=padlen)
    y_f = signal.filtfilt(b, a, y, axis=-1, padlen=padlen)
    alpha = _safe_ratio(x_f.std(axis=-1), y_f.std(axis=-1))
    return x_f - alpha[..., None] * y_f


def chrom(
    rgb: np.ndarray,
    fs: float,
    window_s: float | None = CHROM_WINDOW_S,
    band_hz: tuple[float, float] = CHROM_BAND_HZ,
    order: int = CHROM_FILTER_ORDER,
) -> np.ndarray:
    """CHROM pulse signal ``(chrom_length(T),)`` from ``rgb (T, 3)``.

    With the default ``window_s`` this is rPPG-Toolbox's ``CHROME_DEHAAN``; its
    output is slightly shorter than the input (see :func:`chrom_length`).
    """
    rgb = _check_rgb(rgb)
    if window_s is None:
        trace = rgb.T  # (3, T)
        return _chrom_projection(trace / trace.mean(axis=-1, keepdims=True), fs, band_hz, order)
    length = chrom_window_length(fs, window_s)
    half = length // 2
    out_length = chrom_length(rgb.shape[0], fs, window_s)
    pulse = np.zeros(out_length)
    if out_length == 0:
        return pulse
    windows = sliding_window_view(rgb, length, axis=0)[::half][: out_length // half - 1]
    normalised = windows / windows.mean(axis=-1, keepdims=True)  # (W, 3, L)
    weighted = _chrom_projection(normalised, fs, band_hz, order) * signal.windows.hann(length)
    for index, window in enumerate(weighted):
        pulse[index * half : index * half + length] += window
    return pulse


def green(rgb: np.ndarray, fs: float | None = None) -> np.ndarray:  # noqa: ARG001
    """The green trace ``(T,)`` (rPPG-Toolbox ``GREEN``; HR post-processing does the rest)."""
    return _check_rgb(rgb)[:, 1].copy()


RPPG_METHODS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "pos": pos,
    "chrom": chrom,
    "green": green,
}


def rppg_signal(method: str, rgb: np.ndarray, fs: float) -> np.ndarray:
    """Run the named method (``pos``, ``chrom`` or ``green``) with its default settings."""
    try:
        function = RPPG_METHODS[method.lower()]
    except KeyError:
        raise ValueError(f"unknown rPPG method {method!r}; choose from {sorted(RPPG_METHODS)}")
    return function(rgb, fs)
