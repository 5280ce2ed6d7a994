"""The local LFW subset used by calibration and the dlib check (``../shared/data/images/lfw``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deidvid.shared_data import shared_data_dir

DEFAULT_LFW = shared_data_dir() / "images" / "lfw"


def load_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB; OSError when it cannot be read."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])
