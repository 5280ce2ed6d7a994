"""Face alignment from landmarks to each recogniser's chip, in numpy (no torch).

The same chips as :mod:`deidvid.recognise.align` (the differentiable torch version,
which documents the geometry: dlib's ``get_face_chip`` and insightface's ``norm_crop``),
for scoring without torch: bilinear sampling as ``F.grid_sample`` with
``align_corners=True`` and zero padding, dlib's black border and its 5-tap pyramid for
faces shrunk by more than 2x. Coordinates are pixels, (x, y), pixel centres at integers.
The templates are declared here once; the torch version imports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# dlib's mean face shape for points 17..67 of the 68-point iBUG layout, in [0, 1]
# (dlib/image_transforms/interpolation.h, get_face_chip_details).
DLIB_MEAN_FACE_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)  # fmt: skip
DLIB_MEAN_FACE_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)  # fmt: skip

#: The 68-point indices dlib fits (it skips the jaw 0-16, brows 17-26, lower lip 55-59, 65-67).
DLIB_ALIGNMENT_INDICES = tuple(i for i in range(27, 68) if not (55 <= i <= 59 or 65 <= i <= 67))

#: insightface's ArcFace template for 112x112 chips: right eye, left eye (subject's),
#: nose tip, right and left mouth corner -- the order of ``Detection.points``.
ARCFACE_TEMPLATE_112 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25
ARCFACE_CHIP_SIZE = 112
#: dlib's ``pyramid_down<2>`` filter taps (divided by 16).
PYRAMID_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)


def dlib_chip_template(size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING) -> np.ndarray:
    """``(68, 2)`` float64 chip positions of dlib's mean face (NaN for the jaw, 0-16)."""
    mean = np.full((68, 2), np.nan)
    mean[17:, 0], mean[17:, 1] = DLIB_MEAN_FACE_X, DLIB_MEAN_FACE_Y
    return (padding + mean) / (2 * padding + 1) * size


def five_points_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """``(..., 68, 2)`` -> ``(..., 5, 2)``: eye centres (subject's right first), nose tip,
    mouth corners."""
    lm = np.asarray(landmarks68)
    return np.stack(
        [lm[..., 36:42, :].mean(-2), lm[..., 42:48, :].mean(-2), lm[..., 30, :], lm[..., 48, :], lm[..., 54, :]], axis=-2
    )


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity mapping ``src`` to ``dst`` (Umeyama), ``(B, N, 2)`` (or
    ``(N, 2)``, broadcast) -> ``(B, 2, 3)`` float64 ``[A | t]`` with ``dst ~= src @ A.T + t``."""
    src, dst = np.broadcast_arrays(np.asarray(src, np.float64), np.asarray(dst, np.float64))
    if src.ndim == 2:
        src, dst = src[None], dst[None]
    src_mean, dst_mean = src.mean(1, keepdims=True), dst.mean(1, keepdims=True)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum((1, 2)) / src.shape[1]
    cov = dst_c.transpose(0, 2, 1) @ src_c / src.shape[1]
    a = (cov[:, 0, 0] + cov[:, 1, 1]) / src_var
    b = (cov[:, 1, 0] - cov[:, 0, 1]) / src_var
    rot = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)
    trans = dst_mean[:, 0] - (rot @ src_mean[:, 0, :, None])[..., 0]
    return np.concatenate([rot, trans[..., None]], axis=-1)


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of ``(B, 2, 3)`` affine maps."""
    inv = np.linalg.inv(affine[:, :, :2])
    return np.concatenate([inv, -(inv @ affine[:, :, 2:])], axis=-1)


def sample_affine(image: np.ndarray, chip_to_image: np.ndarray, size: int, dlib_border: bool = False) -> np.ndarray:
    """Bilinear samples of one ``(H, W, C)`` image (any dtype; values kept in its units) at
    ``chip_to_image @ (col, row, 1)`` (``(2, 3)`` pixel map), zero outside; ``dlib_border``:
    black wherever x or y is outside [0, W-1) / [0, H-1), as dlib's ``interpolate_bilinear``.
    Returns ``(size, size, C)`` float32."""
    height, width, channels = image.shape
    steps = np.arange(size, dtype=np.float64)
    x = chip_to_image[0, 0] * steps[None, :] + chip_to_image[0, 1] * steps[:, None] + chip_to_image[0, 2]
    y = chip_to_image[1, 0] * steps[None, :] + chip_to_image[1, 1] * steps[:, None] + chip_to_image[1, 2]
    x0, y0 = np.floor(x), np.floor(y)
    wx, wy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    # Only the chip's taps are gathered (and converted to float): never the whole frame.
    pixels = np.ascontiguousarray(image).reshape(-1, channels)
    out = np.zeros((size * size, channels), np.float32)
    for dy, weight_y in ((0, 1 - wy), (1, wy)):
        for dx, weight_x in ((0, 1 - wx), (1, wx)):
            xs, ys = x0 + dx, y0 + dy
            valid = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
            index = (np.clip(ys, 0, height - 1) * width + np.clip(xs, 0, width - 1)).ravel()
            weight = (weight_y * weight_x * valid).ravel()
            out += np.take(pixels, index, axis=0) * weight[:, None]
    if dlib_border:
        out *= ((x >= 0) & (x < width - 1) & (y >= 0) & (y < height - 1)).reshape(-1, 1)
    return out.reshape(size, size, channels)


def _rect_corner_affine(centre: np.ndarray, width: float, height: float, angle: float, size: int) -> np.ndarray:
    """dlib's chip-to-image map of ``centred_drect(centre, width, height)`` rotated by ``angle``: ``(2, 3)``."""
    cos, sin = math.cos(angle), math.sin(angle)
    step_x, step_y = (width - 1) / (size - 1), (height - 1) / (size - 1)
    col = np.array([cos * step_x, sin * step_x])
    row = np.array([-sin * step_y, cos * step_y])
    origin = np.asarray(centre, np.float64) - (col + row) * (size - 1) / 2
    return np.stack([col, row, origin], axis=-1)


def dlib_pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>``: separable [1 4 6 4 1]/16 blur and 2x decimation (valid),
    ``(H, W, C)`` -> ``((H-3)//2, (W-3)//2, C)``."""
    taps = np.asarray(PYRAMID_TAPS, np.float32) / 16.0
    rows, cols = (image.shape[0] - 3) // 2, (image.shape[1] - 3) // 2
    vertical = sum(taps[k] * image[k : k + 2 * rows - 1 : 2] for k in range(5))
    return sum(taps[k] * vertical[:, k : k + 2 * cols - 1 : 2] for k in range(5))


def _pyramid_rect_down(left: float, top: float, right: float, bottom: float) -> tuple[float, float, float, float]:
    # dlib's pyramid_down<2>::rect_down (point_down(p) = p/2 - (1.25, 0.75)).
    return left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75


def _area(rect: tuple[float, ...]) -> float:
    left, top, right, bottom = rect
    if left > right or top > bottom:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


@dataclass(frozen=True)
class PyramidPlan:
    """How dlib's ``extract_image_chips`` cuts a chip of a large face: read the image's
    ``box`` (left, top, right, bottom, inclusive pixels), shrink it ``levels`` times with
    ``pyramid_down``, and sample the chip's ``rect`` (left, top, right, bottom in the
    shrunk image) there."""

    box: tuple[int, int, int, int]
    levels: int
    rect: tuple[float, float, float, float]


def pyramid_plan(centre: tuple[float, float], side: float, angle: float, size: int, height: int, width: int) -> PyramidPlan | None:
    """dlib's plan for a ``side``-pixel chip rectangle at ``centre`` rotated by ``angle``, or
    None when the face is not shrunk by more than ~2x (the chip is sampled directly)."""
    cx, cy = centre
    half = (side - 1) / 2
    rect = (cx - half, cy - half, cx + half, cy + half)
    down = _pyramid_rect_down(*rect)
    if _area(down) <= size * size:
        return None
    grow = 2.0
    while _area(down) > size * size:
        down = _pyramid_rect_down(*down)
        grow = grow * 2 + 2
    # Bounding box of the rotated rectangle, grown, clipped, rounded like dlib's rectangle.
    left, top, right, bottom = rect
    cos, sin = math.cos(angle), math.sin(angle)
    corners = ((left, top), (right, top), (left, bottom), (right, bottom))
    xs = [cos * (px - cx) - sin * (py - cy) + cx for px, py in corners]
    ys = [sin * (px - cx) + cos * (py - cy) + cy for px, py in corners]
    grown = (max(min(xs) - grow, 0), max(min(ys) - grow, 0), min(max(xs) + grow, width - 1), min(max(ys) + grow, height - 1))
    bl, bt, br, bb = (math.floor(v + 0.5) for v in grown)
    rect = (left - bl, top - bt, right - bl, bottom - bt)
    levels = 0
    while _area(_pyramid_rect_down(*rect)) > size * size:
        rect = _pyramid_rect_down(*rect)
        levels += 1
    return PyramidPlan((bl, bt, br, bb), levels, rect)


def dlib_chip(
    image: np.ndarray, landmarks: np.ndarray, size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING
) -> np.ndarray:
    """``dlib.get_face_chip`` of one ``(H, W, C)`` image at ``(68, 2)`` dlib points or ``(5, 2)``
    detector points -> ``(size, size, C)`` float32 in the image's units."""
    template = dlib_chip_template(size, padding)
    if len(landmarks) == 68:
        idx = list(DLIB_ALIGNMENT_INDICES)
        chip_points, image_points = template[idx], np.asarray(landmarks, np.float64)[idx]
    elif len(landmarks) == 5:
        chip_points, image_points = five_points_from_68(template), np.asarray(landmarks, np.float64)
    else:
        raise ValueError(f"landmarks must be (68, 2) or (5, 2), got {np.shape(landmarks)}")
    tform = similarity_transform(chip_points, image_points)[0]
    angle = math.atan2(tform[1, 0], tform[0, 0])
    side = math.hypot(tform[0, 0], tform[1, 0]) * size  # chip_details.rect is size*scale wide
    centre = tform[:, :2] @ np.full(2, size / 2.0) + tform[:, 2]
    plan = pyramid_plan((centre[0], centre[1]), side, angle, size, *image.shape[:2])
    if plan is None:
        return sample_affine(image, _rect_corner_affine(centre, side, side, angle, size), size, dlib_border=True)
    # A face shrunk by more than ~2x is sampled from dlib's pyramid (not aliased, dlib's pixels).
    left, top, right, bottom = plan.box
    level_image = image[top : bottom + 1, left : right + 1].astype(np.float32)
    for _ in range(plan.levels):
        level_image = dlib_pyramid_down(level_image)
    left, top, right, bottom = plan.rect
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    affine = _rect_corner_affine(centre, right - left + 1, bottom - top + 1, angle, size)
    return sample_affine(level_image, affine, size, dlib_border=True)


def arcface_chip(image: np.ndarray, landmarks: np.ndarray, size: int = ARCFACE_CHIP_SIZE) -> np.ndarray:
    """insightface's ``norm_crop`` chip of one ``(H, W, C)`` image at ``(68, 2)`` dlib points or
    ``(5, 2)`` detector points -> ``(size, size, C)`` float32 in the image's units. As
    insightface does, the fit goes from the image points to the template and is then inverted."""
    points5 = five_points_from_68(landmarks) if len(landmarks) == 68 else np.asarray(landmarks, np.float64)
    template = np.asarray(ARCFACE_TEMPLATE_112) * (size / 112.0)
    return sample_affine(image, invert_affine(similarity_transform(points5, template))[0], size)


def face_chips(kind: str, images: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """``(B, size, size, 3)`` float32 chips in [0, 1] of ``kind`` ("dlib", "arcface" or
    "whole": the image as given) from ``(B, H, W, 3)`` RGB, uint8 (0..255) or float (0..1),
    and ``(B, N, 2)`` landmarks."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3), got {images.shape}")
    if len(landmarks) != len(images):
        raise ValueError("need one landmark set per image (repeat a frame for several faces)")
    if kind == "whole":
        chips = np.asarray(images, np.float32)
    else:
        cut = {"dlib": dlib_chip, "arcface": arcface_chip}[kind]
        chips = np.stack([cut(image, points, size) for image, points in zip(images, landmarks, strict=True)])
    # Sampling is linear, so uint8 is scaled after it: the same chips as from a float copy.
    return chips * np.float32(1 / 255) if images.dtype == np.uint8 else chips
