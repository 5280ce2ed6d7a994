"""Draw a surrogate into a face crop: its texture and neutral shape, the person's pose,
expression, gaze and lighting.

The texture is an average of many people, so its eyes look straight ahead and its
mouth has no inside: the eye openings are redrawn (white, and an iris and pupil where
the person looks, in colours taken from the surrogate's own eyes) and an open mouth is
drawn dark with a band of upper teeth. The surrogate face is composited over a strong
blur of the crop (so whatever of the original lies outside the surrogate's outline, jaw
and hair included, is blurred away), with a feathered edge. Everything works in the
crop's pixels (:class:`CropBox`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deidvid.faces.geometry import CropBox
from deidvid.faces.iris import eye_openness, eye_widths, place_gaze
from deidvid.methods.blur import gaussian_blur
from deidvid.surrogate import lighting, raster
from deidvid.surrogate.bank import Surrogate
from deidvid.surrogate.uvspace import INNER_LIPS, LEFT_EYE, RIGHT_EYE, UVSpace, uv_space

BACKGROUND_BLUR_SIGMA = 12.0  # the blur method's, at the crop's scale
EDGE_FEATHER = 0.015  # x crop size: the Gaussian that softens the surrogate's outline
EYE_SOFTEN = 0.05  # x eye width: softens the drawn eye to the texture's own sharpness
PUPIL_FRACTION = 0.45  # pupil radius / iris radius
PUPIL_SHADE = 0.4  # pupil colour / iris colour
IRIS_RADIUS = (0.14, 0.26)  # x eye width: Iris's estimate, kept within what eyes have
# Eyes narrower than this in the frame keep the texture's own: there a drawn iris is a blot of
# a few pixels in which the lids are lost. Measured on the validation split (`python -m
# deidvid.tools.evaluate --methods surrogate`, with and without drawn eyes): on UBFC and GRID
# (eyes 18-24 px) drawn eyes lowered the eye-openness r by 0.1-0.5 (and on UBFC the gaze r too);
# on hdtf_khill (45 px) they raised gaze x r 0.56 -> 0.95 with eye-openness r 0.78-0.82 -> 0.83.
MIN_EYE_PX = 32.0
SHUT_EYE = (0.08, 0.15)  # lid distance / eye width: nothing redrawn below, fully above (a blink stays shut)
TEETH_DEPTH = 0.16  # x mouth width: how far the upper teeth show below the upper lip
TEETH_SHADE = 0.85  # teeth colour / the eyes' white
# The inner-lip ring (INNER_LIPS) from one corner along the upper lip to the other.
UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)


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


def draw(
    texture: np.ndarray,
    points: np.ndarray,
    size: int,
    space: UVSpace | None = None,
    eye_gaze: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``texture (T, T, 3)`` on mesh ``points (468, 3)`` (crop pixels) -> ``image (S, S, 3)``
    float32 and a feathered ``alpha (S, S)`` float32 in [0, 1]. With ``eye_gaze (2, 3)``
    (:func:`deidvid.faces.iris.gaze`) the eyes are redrawn looking there."""
    space = space or uv_space()
    image, covered = raster.render(texture, space.points, points, space.triangles, (size, size), space.front_sign)
    white, iris = eye_colours(texture, space)
    if eye_gaze is not None:
        draw_eyes(image, points, eye_gaze, white, iris)
    mouth = texture[space.mouth].mean(axis=0) if space.mouth.any() else np.zeros(3)
    fill_mouth(image, points, mouth, TEETH_SHADE * white)
    sigma = max(EDGE_FEATHER * size, 0.5)
    grow = int(np.ceil(2 * sigma))
    inner = cv2.erode(covered.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)).astype(np.float32)
    alpha = cv2.GaussianBlur(inner, (0, 0), sigma) * covered
    return image.astype(np.float32), alpha


def _polygon_mask(shape_hw: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Anti-aliased fill of ``polygon (N, 2)`` (pixels): ``(H, W)`` float32 in [0, 1]."""
    mask = np.zeros(shape_hw, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(polygon, np.float64) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def _disc_mask(shape_hw: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    """Anti-aliased disc: ``(H, W)`` float32 in [0, 1]."""
    mask = np.zeros(shape_hw, np.uint8)
    c = tuple(int(round(v * 16)) for v in centre)
    cv2.circle(mask, c, max(int(round(radius * 16)), 1), 255, -1, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def _blend(image: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> None:
    """``image = image (1 - alpha) + layer alpha`` in place; ``alpha (H, W)``."""
    a = alpha[..., None]
    image *= 1.0 - a
    image += a * layer


def eye_colours(texture: np.ndarray, space: UVSpace) -> tuple[np.ndarray, np.ndarray]:
    """The white and the iris colour ``(3,)`` each of a (lit) ``texture (T, T, 3)``: the
    mean of the brightest and of the darkest fifth of its eye-opening texels (the bank's
    averaged eyes: corners show the white, the middle the irises)."""
    texels = texture[space.eyes].astype(np.float64)
    if len(texels) == 0:
        return np.full(3, 200.0), np.full(3, 60.0)
    order = np.argsort(texels.mean(axis=1))
    fifth = max(len(order) // 5, 1)
    return texels[order[-fifth:]].mean(axis=0), texels[order[:fifth]].mean(axis=0)


def draw_eyes(image: np.ndarray, points: np.ndarray, eye_gaze: np.ndarray, white: np.ndarray, iris: np.ndarray) -> None:
    """Redraw both eye openings of mesh ``points (468, 2+)`` in ``image (S, S, 3)`` float32
    in place: the white, and an iris (and pupil) centred where ``eye_gaze (2, 3)`` says the
    person looks, clipped by the lids (a closed eye shows none of it)."""
    pts = np.asarray(points, np.float64)
    centres, radii = place_gaze(pts, eye_gaze)
    shown = np.clip((eye_openness(pts) - SHUT_EYE[0]) / (SHUT_EYE[1] - SHUT_EYE[0]), 0.0, 1.0)
    widths = eye_widths(pts)
    for eye, ring in enumerate((RIGHT_EYE, LEFT_EYE)):  # eye 0: the image's left, as in gaze()
        width = float(widths[eye])
        if width < 2.0 or shown[eye] == 0.0:
            continue
        radius = float(np.clip(radii[eye], IRIS_RADIUS[0] * width, IRIS_RADIUS[1] * width))
        # Work in a window around the eye: a few hundred pixels, not the crop.
        polygon = pts[list(ring), :2]
        lo = np.floor(np.minimum(polygon.min(axis=0), centres[eye] - radius) - 2).astype(int)
        hi = np.ceil(np.maximum(polygon.max(axis=0), centres[eye] + radius) + 2).astype(int)
        lo, hi = np.maximum(lo, 0), np.minimum(hi, [image.shape[1], image.shape[0]])
        if np.any(hi <= lo):
            continue
        window = image[lo[1] : hi[1], lo[0] : hi[0]]
        shape = window.shape[:2]
        opening = _polygon_mask(shape, polygon - lo)
        layer = np.empty_like(window)
        layer[:] = np.asarray(white, np.float32)
        _blend(layer, np.asarray(iris, np.float32), _disc_mask(shape, centres[eye] - lo, radius))
        _blend(layer, np.asarray(iris, np.float32) * PUPIL_SHADE, _disc_mask(shape, centres[eye] - lo, PUPIL_FRACTION * radius))
        layer = cv2.GaussianBlur(layer, (0, 0), max(EYE_SOFTEN * width, 0.3))
        _blend(window, layer, opening * np.float32(shown[eye]))


def fill_mouth(image: np.ndarray, points: np.ndarray, colour: np.ndarray, teeth: np.ndarray | None = None) -> None:
    """Paint the inner-lip polygon of ``points (468, 2+)`` with ``colour (3,)`` in place
    (anti-aliased), and with ``teeth (3,)`` a band of upper teeth below the upper lip. In
    the texture the inner mouth is a sliver: stretched over an open mouth it would smear
    the lips' colour, so the opening is drawn as a shape instead."""
    pts = np.asarray(points, np.float64)
    opening = _polygon_mask(image.shape[:2], pts[list(INNER_LIPS), :2])
    layer = np.empty_like(image)
    layer[:] = np.asarray(colour, np.float32)
    if teeth is not None:
        upper = pts[list(UPPER_INNER_LIP), :2]
        across = upper[-1] - upper[0]
        width = float(np.hypot(*across))
        if width >= 2.0:
            down = np.array([-across[1], across[0]]) / width  # across turned +90 degrees: toward the chin
            band = np.concatenate([upper, upper[::-1] + TEETH_DEPTH * width * down])
            _blend(layer, np.asarray(teeth, np.float32), _polygon_mask(image.shape[:2], band))
            layer = cv2.GaussianBlur(layer, (0, 0), max(EYE_SOFTEN * width / 2, 0.3))
    _blend(image, layer, opening)


def composite(crop: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The surrogate ``face (S, S, 3)`` over a strong blur of ``crop (S, S, 3)`` float32
    (same units) through ``alpha (S, S)``."""
    background = gaussian_blur(crop[None], BACKGROUND_BLUR_SIGMA * crop.shape[0] / 128.0)[0]
    a = alpha[..., None]
    return background * (1.0 - a) + face * a
