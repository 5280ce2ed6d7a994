"""Image quality of a de-identified frame against its original: PSNR and SSIM.

- :func:`psnr`: ``10 log10(255^2 / MSE)`` over all pixels and channels of uint8
  frames. Identical frames give ``inf``; JSON has no infinity, so reports store
  ``None`` (``null``) for it via :func:`finite_or_none` -- read null as "identical".
- :func:`ssim`: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5),
  K1 = 0.01, K2 = 0.03, data range 255, population (not sample) covariances; the map
  is averaged over pixels at least 5 px from the border, then over channels. This is
  ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=-1)``.
- :class:`QualityAccumulator`: per-frame values averaged over a video, plus PSNR from
  the pooled MSE of all frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 255.0


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C) frames, got {a.shape}")
    return a, b


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels."""
    a, b = _check_pair(a, b)
    if a.dtype == np.uint8 and b.dtype == np.uint8 and a.size:
        # Exact (integer squares summed in double) and ~20x faster than numpy.
        return float(cv2.norm(a, b, cv2.NORM_L2SQR)) / a.size
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr_from_mse(mean_squared_error: float, data_range: float = DATA_RANGE) -> float:
    """PSNR in dB; ``inf`` for zero error."""
    if mean_squared_error == 0:
        return math.inf
    return float(10.0 * np.log10(data_range**2 / mean_squared_error))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """PSNR (dB) of frame ``b`` against ``a`` (uint8 ``(H, W[, C])``); ``inf`` if identical."""
    return psnr_from_mse(mse(a, b), data_range)


def _gaussian_filter(image: np.ndarray) -> np.ndarray:
    # Separable 11-tap Gaussian; border handling does not matter (borders are cropped).
    return cv2.GaussianBlur(
        image, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT
    )


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE) -> np.ndarray:
    """Per-pixel SSIM ``(H, W[, C])`` float64 (uncropped; see :func:`ssim`)."""
    a, b = _check_pair(a, b)
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _gaussian_filter(x), _gaussian_filter(y)
    var_x = _gaussian_filter(x * x) - mu_x * mu_x
    var_y = _gaussian_filter(y * y) - mu_y * mu_y
    cov = _gaussian_filter(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM of ``b`` against ``a`` (uint8 ``(H, W[, C])``, both at least 11x11)."""
    a, b = _check_pair(a, b)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    pad = (SSIM_WINDOW - 1) // 2
    cropped = ssim_map(a, b, data_range)[pad:-pad, pad:-pad]
    return float(cropped.mean())


def finite_or_none(value: float) -> float | None:
    """``value`` for JSON: ``None`` for inf/NaN (PSNR of identical frames is null)."""
    return value if math.isfinite(value) else None


@dataclass
class QualityAccumulator:
    """Running PSNR/SSIM over the frames of a video (optionally every n-th for SSIM)."""

    psnr_values: list[float] = field(default_factory=list)
    ssim_values: list[float] = field(default_factory=list)
    squared_error_sum: float = 0.0
    value_count: int = 0

    def update(self, original: np.ndarray, processed: np.ndarray, with_ssim: bool = True) -> None:
        error = mse(original, processed)
        self.squared_error_sum += error * original.size
        self.value_count += original.size
        self.psnr_values.append(psnr_from_mse(error))
        if with_ssim:
            self.ssim_values.append(ssim(original, processed))

    def summary(self) -> dict[str, float | int]:
        """``psnr_mean`` (mean of per-frame PSNR, inf if any frame is identical),
        ``psnr_pooled`` (from the MSE over all frames), ``ssim_mean``, frame counts."""
        pooled = self.squared_error_sum / self.value_count if self.value_count else math.nan
        return {
            "psnr_mean": float(np.mean(self.psnr_values)) if self.psnr_values else math.nan,
            "psnr_pooled": psnr_from_mse(pooled) if self.value_count else math.nan,
            "ssim_mean": float(np.mean(self.ssim_values)) if self.ssim_values else math.nan,
            "frames": len(self.psnr_values),
            "ssim_frames": len(self.ssim_values),
        }


# Outside the faces a de-identified video is its original re-encoded (PSNR ~35-50 dB); two
# different recordings of one size and rate sit near 10-15 dB there.
UNRELATED_BACKGROUND_PSNR_DB = 20.0
BACKGROUND_FACE_MARGIN = 1.0  # face boxes doubled: the surrogate's blurred ring lies inside
MIN_BACKGROUND_SHARE = 0.1  # frames whose background is smaller than this are not scored


@dataclass
class BackgroundAgreement:
    """PSNR between two videos outside their faces, on the frames fed: whether the pair is
    one recording (and its de-identified copy) at all."""

    psnr_values: list[float] = field(default_factory=list)

    def update(self, original: np.ndarray, processed: np.ndarray, face_boxes: list[tuple[int, int, int, int]]) -> None:
        """One frame pair ``(H, W, 3)`` uint8 and its faces' boxes ``(x0, y0, x1, y1)`` (left out)."""
        keep = np.ones(original.shape[:2], bool)
        for x0, y0, x1, y1 in face_boxes:
            keep[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = False
        if keep.mean() < MIN_BACKGROUND_SHARE:
            return
        difference = original[keep].astype(np.float64) - processed[keep]
        self.psnr_values.append(psnr_from_mse(float(np.mean(difference**2))))

    def median_psnr(self) -> float | None:
        """Median PSNR (dB) of the scored frames (None: none scored)."""
        return float(np.median(self.psnr_values)) if self.psnr_values else None

    def looks_unrelated(self) -> bool:
        median = self.median_psnr()
        return median is not None and median < UNRELATED_BACKGROUND_PSNR_DB
