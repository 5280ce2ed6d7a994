"""``--method blur``: the paper's baseline, a Gaussian blur of the face."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from deidvid.methods.base import CropClip, Method, PasteMode


def gaussian_blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Blur every frame of ``(T, H, W, 3)`` float32 with a Gaussian of ``sigma`` pixels (border replicated)."""
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE) for f in frames])


class GaussianBlur(Method):
    """Gaussian, sigma 12 px at the 128-px crop scale (the paper's blur baseline)."""

    name = "blur"
    paste_mode = PasteMode.REPLACE
    interpolation = cv2.INTER_LINEAR

    def __init__(self, sigma: float = 12.0) -> None:
        self.sigma = sigma

    def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
        return [gaussian_blur(c.frames, self.sigma) for c in clips]
