"""Quarter turns of pictures (rotation flags, the detector's turned views)."""

from __future__ import annotations

import cv2
import numpy as np

# np.rot90's k (counter-clockwise quarter turns, mod 4) -> OpenCV's rotation code.
_ROTATE_CODES = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def turned(picture: np.ndarray, turns: int) -> np.ndarray:
    """``np.rot90(picture, turns)`` of an ``(H, W)`` or ``(H, W, C)`` picture, C-contiguous.

    OpenCV's copy is ~14x as fast as numpy's strided one on a 640 x 360 RGB picture (1.1
    ms -> 0.08 ms), which counts for every frame of a phone video with a rotation flag.
    Falls back to numpy for what OpenCV cannot hold (more than 4 channels, odd dtypes).
    """
    turns %= 4
    if turns == 0:
        return np.ascontiguousarray(picture)
    if picture.dtype in (np.uint8, np.uint16, np.float32) and (picture.ndim == 2 or picture.shape[2] <= 4):
        out = cv2.rotate(np.ascontiguousarray(picture), _ROTATE_CODES[turns])
        return out.reshape(out.shape[:2] + picture.shape[2:])  # OpenCV drops a single channel's axis
    return np.ascontiguousarray(np.rot90(picture, turns))
