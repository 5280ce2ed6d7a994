"""Separable Gaussian filtering of image batches in torch (SSIM's window, blur augmentation)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_kernel1d(sigma: float, size: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:  # noqa: ANN001
    """A sampled Gaussian ``(size,)`` (odd ``size``), normalised to sum 1."""
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {size}")
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    kernel = torch.exp(-(x**2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur2d(images: Tensor, sigma: float, size: int | None = None, padding: str = "replicate") -> Tensor:
    """Blur ``[N, C, H, W]`` images with a separable Gaussian, each channel alone.

    Args:
        size: taps per axis (odd; default ``2 ceil(3 sigma) + 1``).
        padding: ``"replicate"`` or ``"reflect"`` keep ``(H, W)``; ``"valid"`` drops
            ``size // 2`` pixels on every side.
    """
    size = size or 2 * math.ceil(3 * sigma) + 1
    channels = images.shape[1]
    kernel = gaussian_kernel1d(sigma, size, images.dtype, images.device)
    if padding != "valid":
        half = size // 2
        images = F.pad(images, (half, half, half, half), mode=padding)
    rows = kernel.view(1, 1, 1, size).expand(channels, 1, 1, size)
    cols = kernel.view(1, 1, size, 1).expand(channels, 1, size, 1)
    return F.conv2d(F.conv2d(images, rows, groups=channels), cols, groups=channels)
