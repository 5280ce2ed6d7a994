"""Compare a pulse signal with a reference, window by window.

Used for de-identified vs original rPPG (same method on both videos) and for rPPG
vs contact PPG. Each non-overlapping window of both signals goes through the HR
pipeline of :mod:`deidvid.rppg.hr` on its own; per window we record both HRs, the
waveform Pearson r and MACC of the filtered signals, the SNR of each signal at the
*reference* HR (rPPG-Toolbox convention) and their spectral similarity. The summary
gives HR MAE/RMSE/MAPE/r across windows and the means of the per-window values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from deidvid.rppg.hr import (
    DEFAULT_BAND_HZ,
    DEFAULT_DETREND_LAMBDA,
    heart_rate,
    preprocess,
    window_bounds,
)
from deidvid.rppg.metrics import (
    SPECTRAL_BAND_HZ,
    HRErrors,
    hr_errors,
    macc,
    pearson,
    snr_db,
    spectral_similarity,
)


@dataclass(frozen=True)
class PulseSettings:
    """Evaluation settings (all recorded in reports)."""

    band_hz: tuple[float, float] = DEFAULT_BAND_HZ
    detrend_lambda: float = DEFAULT_DETREND_LAMBDA
    macc_max_lag_s: float = 0.25
    spectral_band_hz: tuple[float, float] = SPECTRAL_BAND_HZ
    min_window_fraction: float = 0.5

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WindowResult:
    start: int
    stop: int
    hr_test_bpm: float
    hr_reference_bpm: float
    pearson: float
    macc: float
    snr_test_db: float
    snr_reference_db: float
    spectral_similarity: float


@dataclass(frozen=True)
class PulseComparison:
    """Window-wise comparison of ``test`` against ``reference``."""

    window_s: float | None
    fs: float
    hr_errors: HRErrors
    windows: list[WindowResult] = field(default_factory=list)

    def _mean(self, name: str) -> float:
        values = np.array([getattr(w, name) for w in self.windows], dtype=np.float64)
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")

    @property
    def hr_test_bpm(self) -> np.ndarray:
        return np.array([w.hr_test_bpm for w in self.windows])

    @property
    def hr_reference_bpm(self) -> np.ndarray:
        return np.array([w.hr_reference_bpm for w in self.windows])

    def summary(self) -> dict[str, float | int | None]:
        """HR errors plus means over windows of r, MACC, SNRs, spectral similarity."""
        return {
            "window_s": self.window_s,
            "windows": len(self.windows),
            **{f"hr_{k}": v for k, v in self.hr_errors.as_dict().items() if k != "count"},
            "pearson": self._mean("pearson"),
            "macc": self._mean("macc"),
            "snr_test_db": self._mean("snr_test_db"),
            "snr_reference_db": self._mean("snr_reference_db"),
            "spectral_similarity": self._mean("spectral_similarity"),
        }

    def as_dict(self) -> dict:
        return {"summary": self.summary(), "windows": [asdict(w) for w in self.windows]}


def compare_pulses(
    test: np.ndarray,
    reference: np.ndarray,
    fs: float,
    window_s: float | None = 10.0,
    settings: PulseSettings = PulseSettings(),
) -> PulseComparison:
    """Compare two pulse signals sampled at ``fs`` (cut to their common length).

    Args:
        test: ``(N,)`` e.g. POS on the de-identified video.
        reference: ``(M,)`` e.g. POS on the original, or the contact PPG at the frames.
        fs: sampling rate (Hz).
        window_s: window length in seconds; ``None`` = the whole signal.
        settings: band, detrending, MACC lag bound, spectral band.
    """
    test = np.asarray(test, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    length = min(test.size, reference.size)
    bounds = window_bounds(length, fs, window_s, settings.min_window_fraction)
    max_lag = int(round(settings.macc_max_lag_s * fs))
    results = []
    for start, stop in bounds:
        filtered_test = preprocess(test[start:stop], fs, settings.band_hz, settings.detrend_lambda)
        filtered_ref = preprocess(
            reference[start:stop], fs, settings.band_hz, settings.detrend_lambda
        )
        hr_test = heart_rate(filtered_test, fs, settings.band_hz, filtered=True)
        hr_ref = heart_rate(filtered_ref, fs, settings.band_hz, filtered=True)
        results.append(
            WindowResult(
                start=start,
                stop=stop,
                hr_test_bpm=hr_test,
                hr_reference_bpm=hr_ref,
                pearson=pearson(filtered_test, filtered_ref),
                macc=macc(filtered_test, filtered_ref, max_lag=max_lag),
                snr_test_db=snr_db(filtered_test, fs, hr_ref, settings.band_hz, filtered=True),
                snr_reference_db=snr_db(filtered_ref, fs, hr_ref, settings.band_hz, filtered=True),
                spectral_similarity=spectral_similarity(
                    filtered_test, filtered_ref, fs, settings.spectral_band_hz
                ),
            )
        )
    errors = hr_errors(
        np.array([r.hr_test_bpm for r in results]), np.array([r.hr_reference_bpm for r in results])
    )
    return PulseComparison(window_s=window_s, fs=fs, hr_errors=errors, windows=results)
