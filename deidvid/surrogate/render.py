"""Draw a surrogate into a face crop: its texture and neutral shape, the person's pose,
expression and lighting.

The surrogate face is composited over a strong blur of the crop (so whatever of the
original lies outside the surrogate's outline, jaw and hair included, is blurred away),
with a feathered edge. Everything works in the crop's pixels (:class:`CropBox`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deidvid.faces.geometry import CropBox
from deidvid.methods.blur import gaussian_blur
from deidvid.surrogate import lighting, raster
from deidvid.surrogate.bank import Surrogate
from deidvid.surrogate.uvspace import INNER_LIPS, UVSpace, uv_space

BACKGROUND_BLUR_SIGMA = 12.0  # the blur method's, at the crop's scale
EDGE_FEATHER = 0.015  # x crop size: the Gaussian that softens the surrogate's outline


@dataclass(frozen=True)
class PreparedSurrogate:
    """A surrogate ready to draw: float texture and its own lighting fit."""

    surrogate: Surrogate
    texture: np.ndarray  # (T, T, 3) float32, 0..255
    own_lighting: np.ndarray  # (3, 3)

    @classmethod
    def of(cls, surrogate: Surrogate, space: UVSpace | None = None) -> PreparedSurrogate:
        space = space or uv_space()
        texture = surrogate.texture.astype(np.float32)
        return cls(surrogate, texture, lighting.fit(texture, space.skin, space))

    def lit(self, target_lighting: np.ndarray, space: UVSpace | None = None) -> np.ndarray:
        """The texture under the person's lighting ``(3, 3)``: ``(T, T, 3)`` float32."""
        space = space or uv_space()
        return lighting.relight(self.texture, self.own_lighting, target_lighting, space)


def to_crop(points: np.ndarray, box: CropBox) -> np.ndarray:
    """Frame-pixel mesh ``(468, 3)`` -> crop pixels, depth scaled alike."""
    out = np.array(points, np.float64)
    out[:, :2] = box.to_crop(out[:, :2])
    out[:, 2] *= box.scale
    return out


def draw(texture: np.ndarray, points: np.ndarray, size: int, space: UVSpace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``texture (T, T, 3)`` on mesh ``points (468, 3)`` (crop pixels) -> ``image (S, S, 3)``
    float32 and a feathered ``alpha (S, S)`` float32 in [0, 1]."""
    space = space or uv_space()
    image, covered = raster.render(texture, space.points, points, space.triangles, (size, size), space.front_sign)
    fill_mouth(image, points, texture[space.mouth].mean(axis=0) if space.mouth.any() else np.zeros(3))
    sigma = max(EDGE_FEATHER * size, 0.5)
    grow = int(np.ceil(2 * sigma))
    inner = cv2.erode(covered.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)).astype(np.float32)
    alpha = cv2.GaussianBlur(inner, (0, 0), sigma) * covered
    return image.astype(np.float32), alpha


def fill_mouth(image: np.ndarray, points: np.ndarray, colour: np.ndarray) -> None:
    """Paint the inner-lip polygon of ``points (468, 2+)`` with ``colour (3,)`` in place
    (anti-aliased). In the texture the inner mouth is a sliver: stretched over an open
    mouth it would smear the lips' colour, so the opening is drawn as a shape instead."""
    mask = np.zeros(image.shape[:2], np.uint8)
    polygon = np.round(np.asarray(points)[list(INNER_LIPS), :2] * 16).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = mask[..., None].astype(np.float32) / 255.0
    image *= 1.0 - alpha
    image += alpha * np.asarray(colour, np.float32)


def composite(crop: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The surrogate ``face (S, S, 3)`` over a strong blur of ``crop (S, S, 3)`` float32
    (same units) through ``alpha (S, S)``."""
    background = gaussian_blur(crop[None], BACKGROUND_BLUR_SIGMA * crop.shape[0] / 128.0)[0]
    a = alpha[..., None]
    return background * (1.0 - a) + face * a
