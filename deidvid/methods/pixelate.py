"""``--method pixelate``: the paper's pixelation baseline."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from deidvid.methods.base import CropClip, Method, PasteMode


def pixelate(frames: np.ndarray, blocks: int) -> np.ndarray:
    """Average ``(T, H, W, 3)`` frames to ``blocks x blocks`` cells, nearest-neighbour back to size."""
    size = frames.shape[1:3][::-1]
    return np.stack(
        [
            cv2.resize(cv2.resize(f, (blocks, blocks), interpolation=cv2.INTER_AREA), size, interpolation=cv2.INTER_NEAREST)
            for f in frames
        ]
    )


class Pixelate(Method):
    """10x10 blocks over the 128-px crop; pasted with nearest-neighbour so the blocks stay sharp."""

    name = "pixelate"
    paste_mode = PasteMode.REPLACE
    interpolation = cv2.INTER_NEAREST

    def __init__(self, blocks: int = 10) -> None:
        self.blocks = blocks

    def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
        return [pixelate(c.frames, self.blocks) for c in clips]
