"""Remote photoplethysmography: skin region, RGB traces, POS/CHROM/GREEN, HR and metrics.

Modules (one concern each):

- :mod:`deidvid.faces.skin`: skin mask from dlib's 68 landmarks (numpy and torch);
- :mod:`deidvid.rppg.signals`: masked mean RGB, gap filling, even-rate resampling;
- :mod:`deidvid.rppg.methods`: POS, CHROM, GREEN (numpy, rPPG-Toolbox conventions);
- :mod:`deidvid.rppg.torch_methods`: differentiable POS and CHROM for training;
- :mod:`deidvid.rppg.hr`: detrend, band-pass, periodogram HR, windows;
- :mod:`deidvid.rppg.metrics`: HR errors, Pearson, MACC, SNR, spectral similarity;
- :mod:`deidvid.rppg.compare`: window-by-window comparison of two pulse signals;
- :mod:`deidvid.rppg.ground_truth`: UBFC / CSV contact-PPG readers.

The torch parts are imported lazily (``deidvid.rppg.torch_methods``) so evaluation
code does not pay for them.
"""

from deidvid.rppg.compare import PulseComparison, PulseSettings, compare_pulses
from deidvid.rppg.hr import (
    DEFAULT_BAND_HZ,
    detrend,
    frequency_resolution_bpm,
    heart_rate,
    heart_rate_windows,
    preprocess,
    window_bounds,
)
from deidvid.rppg.methods import RPPG_METHODS, chrom, green, pos, rppg_signal
from deidvid.rppg.metrics import (
    HRErrors,
    hr_errors,
    macc,
    macc_circular,
    pearson,
    snr_db,
    spectral_similarity,
)

__all__ = [
    "DEFAULT_BAND_HZ",
    "HRErrors",
    "PulseComparison",
    "PulseSettings",
    "RPPG_METHODS",
    "chrom",
    "compare_pulses",
    "detrend",
    "frequency_resolution_bpm",
    "green",
    "heart_rate",
    "heart_rate_windows",
    "hr_errors",
    "macc",
    "macc_circular",
    "pearson",
    "pos",
    "preprocess",
    "rppg_signal",
    "snr_db",
    "spectral_similarity",
    "window_bounds",
]
