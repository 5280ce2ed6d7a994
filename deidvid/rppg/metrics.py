"""Pulse metrics: HR errors, waveform agreement, SNR, spectral similarity.

Definitions (rPPG-Toolbox ``evaluation/`` where it has one):

- HR errors across windows: MAE, RMSE (bpm), MAPE (%, relative to the reference),
  Pearson r of the two HR series.
- :func:`pearson`: waveform correlation at zero lag.
- :func:`macc`: maximum |Pearson| over time lags, with the lag bounded (linear
  shifts; each lag correlates the overlapping parts). :func:`macc_circular` is the
  toolbox's ``_compute_macc`` (circular shifts 0 .. N-2, unbounded).
- :func:`snr_db`: ``10 log10(P_h / P_rest)`` on the periodogram (``nfft`` = next power
  of two) of the detrended, band-passed signal, where ``P_h`` sums the bins within
  +-0.1 Hz of ``f0`` and of ``2 f0`` and ``P_rest`` every other bin inside the band
  (toolbox ``_calculate_SNR``; ``f0`` is normally the reference HR).
- :func:`spectral_similarity`: cosine similarity of the two periodograms restricted
  to 0.7-3 Hz (mean removed, ``nfft`` = next power of two of the common length).
  It is scale-free, in [0, 1], 1 when the spectra are proportional; a pulse at the
  same rate with a different waveform or extra noise lowers it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deidvid.rppg.hr import (
    DEFAULT_BAND_HZ,
    DEFAULT_DETREND_LAMBDA,
    power_spectrum,
    preprocess,
)

SNR_HALF_WIDTH_HZ = 0.1  # 6 bpm, rPPG-Toolbox
SPECTRAL_BAND_HZ: tuple[float, float] = (0.7, 3.0)


@dataclass(frozen=True)
class HRErrors:
    """HR agreement across windows (bpm; MAPE in %). NaN when undefined."""

    mae: float
    rmse: float
    mape: float
    pearson: float
    count: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equal-length 1-D arrays; NaN if either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"expected two 1-D arrays of equal length, got {x.shape}, {y.shape}")
    if x.size < 2:
        return float("nan")
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def hr_errors(estimated_bpm: np.ndarray, reference_bpm: np.ndarray) -> HRErrors:
    """MAE, RMSE, MAPE and Pearson r between two HR series (one value per window)."""
    estimated = np.asarray(estimated_bpm, dtype=np.float64)
    reference = np.asarray(reference_bpm, dtype=np.float64)
    if estimated.shape != reference.shape:
        raise ValueError(f"HR series differ in length: {estimated.shape} vs {reference.shape}")
    if estimated.size == 0:
        nan = float("nan")
        return HRErrors(nan, nan, nan, nan, 0)
    error = estimated - reference
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(np.abs(error) / np.abs(reference)) * 100.0)
    return HRErrors(
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error**2))),
        mape=mape,
        pearson=pearson(estimated, reference) if estimated.size >= 2 else float("nan"),
        count=int(estimated.size),
    )


def _common_length(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    length = min(x.size, y.size)
    return x[:length], y[:length]


def macc(x: np.ndarray, y: np.ndarray, max_lag: int | None = None) -> float:
    """Maximum |Pearson| between ``x`` and ``y`` shifted by -max_lag .. +max_lag samples.

    Each lag correlates the overlapping parts (no wrap-around). ``max_lag=None``
    allows up to half the length. Inputs are cut to their common length.
    """
    x, y = _common_length(x, y)
    length = x.size
    limit = length // 2 if max_lag is None else min(int(max_lag), length - 2)
    best = float("nan")
    for lag in range(-limit, limit + 1):
        if lag >= 0:
            value = pearson(x[lag:], y[: length - lag])
        else:
            value = pearson(x[: length + lag], y[-lag:])
        if np.isfinite(value) and not abs(value) <= best:
            best = abs(value)
    return best


def macc_circular(x: np.ndarray, y: np.ndarray) -> float:
    """rPPG-Toolbox's MACC: max over lags 0..N-2 of |Pearson(x, roll(y, lag))|, via FFT."""
    x, y = _common_length(x, y)
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    if denominator == 0 or x.size < 2:
        return float("nan")
    # Circular cross-correlation: c[k] = sum_i x[i] y[i - k] = <x, roll(y, k)>.
    correlation = np.fft.irfft(np.fft.rfft(x) * np.conj(np.fft.rfft(y)), n=x.size)
    return float(np.max(np.abs(correlation[: x.size - 1])) / denominator)


def snr_db(
    x: np.ndarray,
    fs: float,
    hr_bpm: float,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    detrend_lambda: float = DEFAULT_DETREND_LAMBDA,
    filtered: bool = False,
    half_width_hz: float = SNR_HALF_WIDTH_HZ,
) -> float:
    """SNR (dB) of pulse signal ``x (N,)`` around ``hr_bpm`` and its 2nd harmonic.

    ``filtered=True`` skips the detrend + band-pass (already done). NaN when no bin
    is left outside the harmonics or no power is inside them.
    """
    x = np.asarray(x, dtype=np.float64)
    if not filtered:
        x = preprocess(x, fs, band_hz, detrend_lambda)
    freqs, power = power_spectrum(x, fs)
    f1 = hr_bpm / 60.0
    # Same inclusive comparisons as the toolbox (f >= f0 - d) & (f <= f0 + d).
    near_first = (freqs >= f1 - half_width_hz) & (freqs <= f1 + half_width_hz)
    near_second = (freqs >= 2 * f1 - half_width_hz) & (freqs <= 2 * f1 + half_width_hz)
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    remainder = in_band & ~near_first & ~near_second
    signal_power = power[near_first].sum() + power[near_second].sum()
    noise_power = power[remainder].sum()
    if noise_power <= 0 or signal_power <= 0:
        return float("nan")
    return float(10.0 * np.log10(signal_power / noise_power))


def spectral_similarity(
    x: np.ndarray,
    y: np.ndarray,
    fs: float,
    band_hz: tuple[float, float] = SPECTRAL_BAND_HZ,
) -> float:
    """Cosine similarity of the periodograms of ``x`` and ``y`` over ``band_hz``.

    Inputs are cut to their common length and their means removed; pass signals
    already filtered the same way (e.g. both through :func:`deidvid.rppg.hr.preprocess`).
    NaN when either spectrum is zero in the band.
    """
    x, y = _common_length(x, y)
    freqs, power_x = power_spectrum(x - x.mean(), fs)
    _, power_y = power_spectrum(y - y.mean(), fs)
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    p, q = power_x[in_band], power_y[in_band]
    denominator = np.sqrt((p * p).sum() * (q * q).sum())
    return float((p * q).sum() / denominator) if denominator > 0 else float("nan")
