"""Paste model output back into full-resolution frames.

Two modes, chosen by the method (``deidvid.methods.PasteMode``):
- residual: add the perturbation (output - input), resized to the crop's size,
  through the feathered face mask; full-resolution detail is kept and nothing
  away from the face changes (the autoencoder).
- replace: blend the resized output over the face through the mask (blur and
  pixelate baselines, which must remove detail at every scale).
"""

from __future__ import annotations

import cv2
import numpy as np

from deidvid.faces.geometry import CropBox, face_mask, frame_window
from deidvid.methods.base import PasteMode


def _resized_window(
    image: np.ndarray, box: CropBox, window: tuple[slice, slice, slice, slice], interpolation: int
) -> np.ndarray:
    """Resize a crop-space ``image`` to ``box.side`` and keep the in-frame part."""
    big = cv2.resize(image, (box.side, box.side), interpolation=interpolation)
    return big[window[2], window[3]]


def paste_residual(
    frame: np.ndarray, box: CropBox, residual: np.ndarray, mask: np.ndarray
) -> None:
    """Add ``residual (S, S, 3)`` (0..255 units) x ``mask (S, S)`` into ``frame (H, W, 3) float32`` in place."""
    window = frame_window(box, *frame.shape[:2])
    if window is None:
        return
    res = _resized_window(residual.astype(np.float32), box, window, cv2.INTER_LINEAR)
    m = _resized_window(mask, box, window, cv2.INTER_LINEAR)
    frame[window[0], window[1]] += res * m[..., None]


def paste_replace(
    frame: np.ndarray,
    box: CropBox,
    content: np.ndarray,
    mask: np.ndarray,
    interpolation: int = cv2.INTER_LINEAR,
) -> None:
    """Blend ``content (S, S, 3)`` (0..255) over ``frame (H, W, 3) float32`` through ``mask`` in place."""
    window = frame_window(box, *frame.shape[:2])
    if window is None:
        return
    new = _resized_window(content.astype(np.float32), box, window, interpolation)
    m = _resized_window(mask, box, window, cv2.INTER_LINEAR)[..., None]
    region = frame[window[0], window[1]]
    region += (new - region) * m


def paste_face(
    canvas: np.ndarray,
    landmarks: np.ndarray,
    box: CropBox,
    value: np.ndarray,
    mode: PasteMode,
    interpolation: int = cv2.INTER_LINEAR,
    origin: tuple[int, int] = (0, 0),
) -> None:
    """Paste one face's blended clip value ``(S, S, 3)`` ([0, 1] units) into ``canvas`` in place.

    ``landmarks (68, 2)`` and ``box`` in frame pixels give the feathered face mask;
    ``canvas`` is the part of the frame whose top-left pixel is the frame's ``origin (x, y)``.
    """
    mask = face_mask(landmarks, box)
    box = box.moved(-origin[0], -origin[1])
    if mode is PasteMode.RESIDUAL:
        paste_residual(canvas, box, value * 255.0, mask)
    else:
        paste_replace(canvas, box, value * 255.0, mask, interpolation)
