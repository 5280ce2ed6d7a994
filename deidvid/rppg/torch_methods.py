"""Differentiable POS and CHROM for training losses (torch, batched).

They reproduce :mod:`deidvid.rppg.methods` exactly (tested to float precision): the
zero-phase IIR filters and the smoothness-priors detrending are linear maps for a
fixed length, so each is applied as a precomputed ``L x L`` matrix built with
scipy (``filtfilt`` of the identity), cached per (length, rate, band) and device.

Shapes: ``rgb [B, T, 3]`` mean skin colour per frame -> pulse ``[B, T]`` (POS, and
CHROM with ``window_s=None``) or ``[B, chrom_length(T)]`` (windowed CHROM).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy import signal

from deidvid.rppg.hr import DEFAULT_DETREND_LAMBDA, butter_bandpass, detrend
from deidvid.rppg.methods import (
    CHROM_BAND_HZ,
    CHROM_FILTER_ORDER,
    CHROM_WINDOW_S,
    POS_BAND_HZ,
    POS_WINDOW_S,
    filtfilt_padlen,
    chrom_length,
    chrom_window_length,
    pos_window_length,
)


@lru_cache(maxsize=64)
def _filtfilt_matrix_np(
    length: int, fs: float, band_hz: tuple[float, float], order: int
) -> np.ndarray:
    b, a = butter_bandpass(fs, band_hz, order)
    padlen = filtfilt_padlen(b, a, length)
    # filtfilt is linear in its input, so filtering the identity gives its matrix.
    matrix = signal.filtfilt(b, a, np.eye(length), axis=0, padlen=padlen)
    return np.ascontiguousarray(matrix)


@lru_cache(maxsize=64)
def _detrend_matrix_np(length: int, lambda_value: float) -> np.ndarray:
    return np.ascontiguousarray(detrend(np.eye(length), lambda_value).T)


def filtfilt_matrix(
    length: int,
    fs: float,
    band_hz: tuple[float, float],
    order: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[L, L]`` matrix M with ``M @ x == scipy.signal.filtfilt(b, a, x)`` (Butterworth)."""
    matrix = _filtfilt_matrix_np(int(length), float(fs), tuple(band_hz), int(order))
    return torch.as_tensor(matrix, dtype=dtype, device=device)


def detrend_matrix(
    length: int,
    lambda_value: float = DEFAULT_DETREND_LAMBDA,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[L, L]`` matrix of smoothness-priors detrending (:func:`deidvid.rppg.hr.detrend`)."""
    matrix = _detrend_matrix_np(int(length), float(lambda_value))
    return torch.as_tensor(matrix, dtype=dtype, device=device)


def _apply_matrix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``x [..., L]`` -> ``[..., L]``: ``matrix @ x`` along the last axis."""
    return x @ matrix.T


def _check_rgb(rgb: torch.Tensor) -> None:
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected rgb [B, T, 3], got {tuple(rgb.shape)}")


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    zero = denominator == 0
    safe = torch.where(zero, torch.ones_like(denominator), denominator)
    return torch.where(zero, torch.zeros_like(numerator), numerator / safe)


def pos_torch(
    rgb: torch.Tensor,
    fs: float,
    window_s: float = POS_WINDOW_S,
    band_hz: tuple[float, float] = POS_BAND_HZ,
    detrend_lambda: float = DEFAULT_DETREND_LAMBDA,
) -> torch.Tensor:
    """POS (rPPG-Toolbox ``POS_WANG``), ``rgb [B, T, 3]`` -> ``[B, T]``, differentiable."""
    _check_rgb(rgb)
    batch, num_frames, _ = rgb.shape
    length = pos_window_length(fs, window_s)
    if num_frames <= length:
        return rgb.new_zeros(batch, num_frames)
    windows = rgb[:, :-1].unfold(1, length, 1)  # [B, T - l, 3, l]
    normalised = windows / windows.mean(dim=-1, keepdim=True)
    red, green_, blue = normalised.unbind(dim=2)
    s1 = green_ - blue
    s2 = -2.0 * red + green_ + blue
    alpha = _safe_ratio(s1.std(dim=-1, correction=0), s2.std(dim=-1, correction=0))
    h = s1 + alpha[..., None] * s2
    h = h - h.mean(dim=-1, keepdim=True)  # [B, T - l, l]
    # Overlap-add: fold sums each window's samples into frames [m, m + l).
    summed = F.fold(
        h.transpose(1, 2), output_size=(1, num_frames - 1), kernel_size=(1, length)
    ).reshape(batch, num_frames - 1)
    raw = F.pad(summed, (0, 1))
    dtype, device = rgb.dtype, rgb.device
    post = filtfilt_matrix(num_frames, fs, band_hz, 1, dtype, device) @ detrend_matrix(
        num_frames, detrend_lambda, dtype, device
    )
    return _apply_matrix(raw, post)


def _chrom_projection_torch(
    normalised: torch.Tensor, fs: float, band_hz: tuple[float, float], order: int
) -> torch.Tensor:
    """``normalised [..., 3, L]`` -> ``[..., L]`` filtered chrominance signal."""
    red, green_, blue = normalised.unbind(dim=-2)
    x = 3.0 * red - 2.0 * green_
    y = 1.5 * red + green_ - 1.5 * blue
    matrix = filtfilt_matrix(x.shape[-1], fs, band_hz, order, x.dtype, x.device)
    x_f, y_f = _apply_matrix(x, matrix), _apply_matrix(y, matrix)
    alpha = _safe_ratio(x_f.std(dim=-1, correction=0), y_f.std(dim=-1, correction=0))
    return x_f - alpha[..., None] * y_f


def chrom_torch(
    rgb: torch.Tensor,
    fs: float,
    window_s: float | None = CHROM_WINDOW_S,
    band_hz: tuple[float, float] = CHROM_BAND_HZ,
    order: int = CHROM_FILTER_ORDER,
) -> torch.Tensor:
    """CHROM, ``rgb [B, T, 3]`` -> ``[B, chrom_length(T)]``, differentiable.

    ``window_s=None``: one window over the clip (``[B, T]``), the better choice for
    short training clips, where the windowed version loses the last half-window.
    """
    _check_rgb(rgb)
    batch, num_frames, _ = rgb.shape
    if window_s is None:
        trace = rgb.transpose(1, 2)  # [B, 3, T]
        normalised = trace / trace.mean(dim=-1, keepdim=True)
        return _chrom_projection_torch(normalised, fs, band_hz, order)
    length = chrom_window_length(fs, window_s)
    half = length // 2
    out_length = chrom_length(num_frames, fs, window_s)
    if out_length == 0:
        return rgb.new_zeros(batch, 0)
    num_windows = out_length // half - 1
    windows = rgb.unfold(1, length, half)[:, :num_windows]  # [B, W, 3, L]
    normalised = windows / windows.mean(dim=-1, keepdim=True)
    hann = torch.as_tensor(signal.windows.hann(length), dtype=rgb.dtype, device=rgb.device)
    weighted = _chrom_projection_torch(normalised, fs, band_hz, order) * hann  # [B, W, L]
    folded = F.fold(
        weighted.transpose(1, 2),
        output_size=(1, out_length),
        kernel_size=(1, length),
        stride=(1, half),
    )
    return folded.reshape(batch, out_length)


def masked_mean_rgb_torch(video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean colour over a skin mask per frame.

    Args:
        video: ``[B, 3, T, H, W]``.
        mask: ``[B, 1, H, W]`` (same mask for every frame) or ``[B, 1, T, H, W]``, in {0, 1}
            (soft weights work too).

    Returns:
        ``[B, T, 3]``; frames with an empty mask give 0.
    """
    if mask.ndim == 4:
        mask = mask[:, :, None]
    weights = mask.to(video.dtype)
    total = (video * weights).sum(dim=(-2, -1))  # [B, 3, T]
    count = weights.sum(dim=(-2, -1)).clamp_min(1e-8)  # [B, 1, T]
    return (total / count).transpose(1, 2)


def pearson_torch(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation along the last axis: ``[..., T]`` x2 -> ``[...]``."""
    x = x - x.mean(dim=-1, keepdim=True)
    y = y - y.mean(dim=-1, keepdim=True)
    return (x * y).sum(dim=-1) / (x.norm(dim=-1) * y.norm(dim=-1) + eps)
