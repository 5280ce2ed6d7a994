"""Heart rate from a pulse signal, following rPPG-Toolbox's evaluation.

Pipeline (rPPG-Toolbox ``evaluation/post_process.py``, FFT branch):

1. detrend with smoothness priors (Tarvainen et al. 2002), lambda = 100;
2. 1st-order Butterworth band-pass, applied forwards and backwards (``filtfilt``),
   0.75-2.5 Hz by default (the band of the toolbox's published table);
3. periodogram (boxcar window, no further detrending) with ``nfft`` = the next
   power of two >= the signal length;
4. HR = 60 x the frequency of the largest periodogram value inside the band.

The detrending here solves the banded system ``(I + lambda^2 D'D) z = x`` instead of
inverting a dense ``N x N`` matrix as the toolbox does: the same numbers, in O(N)
time and memory, so hour-long signals work.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import linalg, signal, sparse

DEFAULT_BAND_HZ: tuple[float, float] = (0.75, 2.5)
DEFAULT_DETREND_LAMBDA = 100.0
# rPPG-Toolbox skips evaluation windows shorter than filtfilt's minimum pad length.
MIN_WINDOW_SAMPLES = 9


def next_power_of_2(n: int) -> int:
    """Smallest power of two >= ``n`` (1 for ``n == 0``)."""
    return 1 if n == 0 else 2 ** (int(n) - 1).bit_length()


@lru_cache(maxsize=32)
def _detrend_cholesky(length: int, lambda_value: float) -> np.ndarray:
    """Upper banded Cholesky factor of ``I + lambda^2 D'D`` (D: 2nd differences)."""
    ones = np.ones(length)
    second_diff = sparse.diags(
        [ones[:-2], -2 * ones[:-2], ones[:-2]], [0, 1, 2], shape=(length - 2, length)
    )
    gram = (second_diff.T @ second_diff).tocsr()
    lam2 = float(lambda_value) ** 2
    bands = np.zeros((3, length))  # upper form for cholesky_banded
    bands[2] = 1.0 + lam2 * gram.diagonal(0)
    bands[1, 1:] = lam2 * gram.diagonal(1)
    bands[0, 2:] = lam2 * gram.diagonal(2)
    return linalg.cholesky_banded(bands, lower=False)


def detrend(x: np.ndarray, lambda_value: float = DEFAULT_DETREND_LAMBDA) -> np.ndarray:
    """Smoothness-priors detrending along the last axis.

    Returns ``x - (I + lambda^2 D'D)^-1 x``: the signal minus its smooth trend.

    Args:
        x: ``(..., N)`` float.
        lambda_value: smoothing parameter (rPPG-Toolbox: 100).
    """
    x = np.asarray(x, dtype=np.float64)
    length = x.shape[-1]
    if length < 3:
        return x - x.mean(axis=-1, keepdims=True) if length else x.copy()
    factor = _detrend_cholesky(length, float(lambda_value))
    flat = x.reshape(-1, length).T  # (N, M): one column per signal
    trend = linalg.cho_solve_banded((factor, False), flat, check_finite=False)
    return x - trend.T.reshape(x.shape)


def butter_bandpass(fs: float, band_hz: tuple[float, float] = DEFAULT_BAND_HZ, order: int = 1):
    """Butterworth band-pass ``(b, a)`` for sampling rate ``fs``."""
    low, high = band_hz
    nyquist = fs / 2.0
    if not 0 < low < high < nyquist:
        raise ValueError(f"band {band_hz} Hz is not inside (0, {nyquist:g}) Hz for fs={fs:g}")
    return signal.butter(order, [low / nyquist, high / nyquist], btype="bandpass")


def bandpass(
    x: np.ndarray, fs: float, band_hz: tuple[float, float] = DEFAULT_BAND_HZ, order: int = 1
) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis (``scipy.signal.filtfilt``)."""
    b, a = butter_bandpass(fs, band_hz, order)
    return signal.filtfilt(b, a, np.asarray(x, dtype=np.float64), axis=-1)


def preprocess(
    x: np.ndarray,
    fs: float,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    detrend_lambda: float = DEFAULT_DETREND_LAMBDA,
) -> np.ndarray:
    """Detrend then band-pass (order 1, forwards-backwards), as before the toolbox's FFT."""
    return bandpass(detrend(x, detrend_lambda), fs, band_hz, order=1)


def power_spectrum(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Periodogram ``(freqs_hz, power)`` with ``nfft = next_power_of_2(N)``, no detrend."""
    x = np.asarray(x, dtype=np.float64)
    nfft = next_power_of_2(x.shape[-1])
    return signal.periodogram(x, fs=fs, nfft=nfft, detrend=False, axis=-1)


def frequency_resolution_bpm(num_samples: int, fs: float) -> float:
    """Spacing of the periodogram bins in bpm (the HR estimate's quantisation step)."""
    return 60.0 * fs / next_power_of_2(num_samples)


def peak_frequency(x: np.ndarray, fs: float, band_hz: tuple[float, float]) -> float:
    """Frequency (Hz) of the largest periodogram bin inside ``band_hz`` (inclusive)."""
    freqs, power = power_spectrum(x, fs)
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    if not in_band.any():
        raise ValueError(f"no periodogram bin in {band_hz} Hz (N={np.shape(x)[-1]}, fs={fs:g})")
    return float(freqs[in_band][np.argmax(power[in_band])])


def heart_rate(
    x: np.ndarray,
    fs: float,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    detrend_lambda: float = DEFAULT_DETREND_LAMBDA,
    filtered: bool = False,
) -> float:
    """HR in bpm of a pulse signal ``(N,)`` (rPPG-Toolbox's FFT method).

    Args:
        x: pulse signal (rPPG output or contact PPG), ``(N,)``.
        fs: sampling rate in Hz (frames per second for rPPG).
        band_hz: pass band and search band.
        detrend_lambda: smoothness-priors lambda.
        filtered: ``True`` when ``x`` already went through :func:`preprocess`.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    if not filtered:
        x = preprocess(x, fs, band_hz, detrend_lambda)
    return 60.0 * peak_frequency(x, fs, band_hz)


def window_bounds(
    num_samples: int, fs: float, window_s: float | None, min_fraction: float = 0.5
) -> list[tuple[int, int]]:
    """Non-overlapping windows ``[(start, stop), ...]`` of ``round(window_s * fs)`` samples.

    ``window_s=None`` gives one window over everything. A trailing partial window is
    kept only when it holds at least ``min_fraction`` of a full window (rPPG-Toolbox
    keeps any tail of >= 9 samples, whose HR is meaningless at ~28 bpm resolution; set
    ``min_fraction=0`` for that behaviour). Windows shorter than 9 samples are dropped.
    """
    if window_s is None:
        return [(0, num_samples)] if num_samples >= MIN_WINDOW_SAMPLES else []
    size = int(round(window_s * fs))
    if size < MIN_WINDOW_SAMPLES:
        raise ValueError(f"window of {window_s} s at {fs:g} Hz has fewer than 9 samples")
    bounds = []
    for start in range(0, num_samples, size):
        stop = min(start + size, num_samples)
        length = stop - start
        if length >= MIN_WINDOW_SAMPLES and (length == size or length >= min_fraction * size):
            bounds.append((start, stop))
    return bounds


def heart_rate_windows(
    x: np.ndarray,
    fs: float,
    window_s: float | None = 10.0,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    detrend_lambda: float = DEFAULT_DETREND_LAMBDA,
    min_fraction: float = 0.5,
) -> np.ndarray:
    """HR (bpm) per non-overlapping window; each window is detrended and filtered alone.

    Returns ``(num_windows,)`` float64 (see :func:`window_bounds`).
    """
    x = np.asarray(x, dtype=np.float64)
    bounds = window_bounds(x.shape[-1], fs, window_s, min_fraction)
    return np.array(
        [heart_rate(x[start:stop], fs, band_hz, detrend_lambda) for start, stop in bounds],
        dtype=np.float64,
    )
