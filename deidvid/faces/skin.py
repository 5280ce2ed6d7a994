"""Skin region for rPPG from dlib's 68 facial landmarks (0-based indices).

The region follows the de-identification paper's preprocessing (DESIGN-NOTES.md):
two polygons per cheek, one around mouth and chin, and a forehead band above the
brows; every polygon is shrunk x0.9 about the centre of its bounding box, and the
mask is their union.

Forehead: the brow points 17-26 are copied upwards by ``0.6 x`` the interocular
distance (between the two eye centres), along the unit direction from the eye
centre (mean of both eyes) to the brow centre (mean of 17-26). The band between the
brow line and the lifted line is the forehead polygon.

Pixel convention: landmark ``(x, y)`` is in pixels with integer values at pixel
centres (dlib's convention); a pixel belongs to the mask when its centre lies inside
a polygon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: evaluation needs only numpy
    import torch

CHEEK_LEFT_POLYGONS: tuple[tuple[int, ...], ...] = ((0, 1, 2, 31, 41), (2, 3, 4, 5, 48, 31))
CHEEK_RIGHT_POLYGONS: tuple[tuple[int, ...], ...] = (
    (16, 15, 14, 35, 46),
    (14, 13, 12, 11, 54, 35),
)
MOUTH_CHIN_POLYGON: tuple[int, ...] = (5, 6, 7, 8, 9, 10, 11, 54, 55, 56, 57, 58, 59, 48)
BROW_POINTS: tuple[int, ...] = tuple(range(17, 27))
RIGHT_EYE_POINTS: tuple[int, ...] = tuple(range(36, 42))
LEFT_EYE_POINTS: tuple[int, ...] = tuple(range(42, 48))

SHRINK_FACTOR = 0.9
FOREHEAD_LIFT = 0.6  # x interocular distance


def _check_landmarks(landmarks68: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    return points


def shrink_polygon(polygon: np.ndarray, factor: float = SHRINK_FACTOR) -> np.ndarray:
    """Scale a polygon ``(K, 2)`` by ``factor`` about the centre of its bounding box."""
    centre = (polygon.min(axis=0) + polygon.max(axis=0)) / 2.0
    return centre + factor * (polygon - centre)


def forehead_polygon(landmarks68: np.ndarray, lift: float = FOREHEAD_LIFT) -> np.ndarray:
    """Forehead band ``(20, 2)``: brows 17..26, then the lifted brows 26..17."""
    points = _check_landmarks(landmarks68)
    brows = points[list(BROW_POINTS)]
    right_eye = points[list(RIGHT_EYE_POINTS)].mean(axis=0)
    left_eye = points[list(LEFT_EYE_POINTS)].mean(axis=0)
    interocular = float(np.linalg.norm(left_eye - right_eye))
    up = brows.mean(axis=0) - (right_eye + left_eye) / 2.0
    up_norm = float(np.linalg.norm(up))
    # Degenerate (all points equal): fall back to image "up".
    up = up / up_norm if up_norm > 0 else np.array([0.0, -1.0])
    lifted = brows + lift * interocular * up
    return np.concatenate([brows, lifted[::-1]], axis=0)


def skin_polygons(landmarks68: np.ndarray) -> list[np.ndarray]:
    """The skin polygons, already shrunk: 2 left cheek, 2 right cheek, mouth/chin, forehead.

    Args:
        landmarks68: ``(68, 2)`` dlib landmarks, ``(x, y)`` pixels.

    Returns:
        list of 6 float64 arrays ``(K_i, 2)``.
    """
    points = _check_landmarks(landmarks68)
    index_sets = [*CHEEK_LEFT_POLYGONS, *CHEEK_RIGHT_POLYGONS, MOUTH_CHIN_POLYGON]
    polygons = [points[list(indices)] for indices in index_sets]
    polygons.append(forehead_polygon(points))
    return [shrink_polygon(polygon) for polygon in polygons]


def _polygon_parity(
    polygon: np.ndarray, y0: int, x0: int, height: int, width: int
) -> np.ndarray:
    """Pixels of the box ``[y0, y0+height) x [x0, x0+width)`` whose centre is inside.

    Crossing-number (even-odd) rule with half-open edges, row by row: a pixel is
    inside when an odd number of polygon edges cross its row to its right. Same
    arithmetic as the torch version, so both give the same mask.
    """
    start, end = polygon, np.roll(polygon, -1, axis=0)
    y = (y0 + np.arange(height, dtype=np.float64))[:, None]  # [h, 1]
    y_a, y_b = start[None, :, 1], end[None, :, 1]  # [1, K]
    x_a, x_b = start[None, :, 0], end[None, :, 0]
    straddles = (y_a > y) != (y_b > y)  # [h, K]
    safe_dy = np.where(straddles, y_b - y_a, 1.0)
    x_cross = x_a + (y - y_a) * (x_b - x_a) / safe_dy
    # Pixel centre x is left of a crossing iff x < ceil(x_cross): count per pixel with
    # a difference array (+1 at column 0, -1 at the first column not left of it).
    crossing_column = np.ceil(np.where(straddles, x_cross, x0)) - x0
    first_right = np.clip(crossing_column, 0, width).astype(np.intp)
    diff = np.zeros((height, width + 1), dtype=np.int32)
    diff[:, 0] = straddles.sum(axis=1)
    rows = np.broadcast_to(np.arange(height)[:, None], straddles.shape)
    np.add.at(diff, (rows[straddles], first_right[straddles]), -1)
    return (np.cumsum(diff[:, :width], axis=1) % 2).astype(bool)


def _rasterise(polygons: list[np.ndarray], y0: int, x0: int, height: int, width: int):
    mask = np.zeros((height, width), dtype=bool)
    for polygon in polygons:  # union
        mask |= _polygon_parity(polygon, y0, x0, height, width)
    return mask


def skin_mask(landmarks68: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Boolean skin mask ``(H, W)`` for one face; pixels outside the image are dropped."""
    return skin_region(landmarks68, shape_hw).full_mask(shape_hw)


@dataclass(frozen=True)
class SkinRegion:
    """A skin mask stored only over its bounding box (cheap for large frames).

    Attributes:
        y0, x0: top-left corner of the box in the frame.
        mask: ``(h, w)`` bool, the mask inside the box (may be all False).
    """

    y0: int
    x0: int
    mask: np.ndarray

    @property
    def num_pixels(self) -> int:
        return int(self.mask.sum())

    def full_mask(self, shape_hw: tuple[int, int]) -> np.ndarray:
        """The mask pasted into a full ``(H, W)`` frame."""
        full = np.zeros(shape_hw[:2], dtype=bool)
        h, w = self.mask.shape
        full[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.mask
        return full


def skin_region(landmarks68: np.ndarray, shape_hw: tuple[int, int]) -> SkinRegion:
    """Like :func:`skin_mask` but computed and stored over the polygons' box only."""
    height, width = int(shape_hw[0]), int(shape_hw[1])
    polygons = skin_polygons(landmarks68)
    stacked = np.concatenate(polygons, axis=0)
    x0 = int(np.clip(np.floor(stacked[:, 0].min()), 0, width))
    y0 = int(np.clip(np.floor(stacked[:, 1].min()), 0, height))
    x1 = int(np.clip(np.ceil(stacked[:, 0].max()) + 1, x0, width))
    y1 = int(np.clip(np.ceil(stacked[:, 1].max()) + 1, y0, height))
    mask = _rasterise(polygons, y0, x0, y1 - y0, x1 - x0)
    return SkinRegion(y0=y0, x0=x0, mask=mask)


# ----------------------------------------------------------------------------- torch


def _torch_polygon_index_sets() -> list[list[int]]:
    return [list(ix) for ix in (*CHEEK_LEFT_POLYGONS, *CHEEK_RIGHT_POLYGONS, MOUTH_CHIN_POLYGON)]


def _shrink_torch(polygon: torch.Tensor, factor: float) -> torch.Tensor:
    """``[B, K, 2]`` -> ``[B, K, 2]`` scaled about each bounding-box centre."""
    centre = (polygon.amin(dim=1, keepdim=True) + polygon.amax(dim=1, keepdim=True)) / 2.0
    return centre + factor * (polygon - centre)


def skin_polygons_torch(landmarks: torch.Tensor) -> list[torch.Tensor]:
    """Batched :func:`skin_polygons`: ``[B, 68, 2]`` -> 6 tensors ``[B, K_i, 2]``."""
    import torch

    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"expected [B, 68, 2] landmarks, got {tuple(landmarks.shape)}")
    points = landmarks.to(torch.float64) if landmarks.dtype != torch.float64 else landmarks
    polygons = [points[:, ix] for ix in _torch_polygon_index_sets()]
    brows = points[:, list(BROW_POINTS)]
    right_eye = points[:, list(RIGHT_EYE_POINTS)].mean(dim=1)
    left_eye = points[:, list(LEFT_EYE_POINTS)].mean(dim=1)
    interocular = (left_eye - right_eye).norm(dim=-1)  # [B]
    up = brows.mean(dim=1) - (right_eye + left_eye) / 2.0
    up_norm = up.norm(dim=-1, keepdim=True)
    fallback = torch.tensor([0.0, -1.0], dtype=up.dtype, device=up.device).expand_as(up)
    up = torch.where(up_norm > 0, up / up_norm.clamp_min(1e-12), fallback)
    lifted = brows + FOREHEAD_LIFT * interocular[:, None, None] * up[:, None, :]
    polygons.append(torch.cat([brows, lifted.flip(dims=[1])], dim=1))
    return [_shrink_torch(polygon, SHRINK_FACTOR) for polygon in polygons]


def _inside_polygon(polygon: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Crossing-number test. ``polygon [B, K, 2]``, pixel centres ``xs [W]``, ``ys [H]``.

    Returns ``[B, H, W]`` bool.
    """
    import torch

    start = polygon
    end = polygon.roll(shifts=-1, dims=1)
    x_a, y_a = start[..., 0][:, :, None], start[..., 1][:, :, None]  # [B, K, 1]
    x_b, y_b = end[..., 0][:, :, None], end[..., 1][:, :, None]
    y = ys[None, None, :]  # [1, 1, H]
    # Edges that straddle the horizontal line through each pixel row (half-open rule).
    straddles = (y_a > y) != (y_b > y)  # [B, K, H]
    safe_dy = torch.where(straddles, y_b - y_a, torch.ones_like(y_b - y_a))
    x_cross = x_a + (y - y_a) * (x_b - x_a) / safe_dy  # [B, K, H]
    crossings = straddles[..., None] & (xs[None, None, None, :] < x_cross[..., None])  # [B,K,H,W]
    return crossings.sum(dim=1) % 2 == 1


def skin_mask_torch(landmarks: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Batched skin masks for crops, e.g. the 128x128 training clips.

    Args:
        landmarks: ``[B, 68, 2]`` ``(x, y)`` pixels in the crop's coordinates.
        size: ``H`` (square) or ``(H, W)``.

    Returns:
        ``[B, 1, H, W]`` float32 in {0, 1} on the landmarks' device. Not differentiable
        in the landmarks (a hard mask); multiply it with the frames.
    """
    import torch

    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    ys = torch.arange(height, dtype=torch.float64, device=landmarks.device)
    xs = torch.arange(width, dtype=torch.float64, device=landmarks.device)
    union = torch.zeros(
        landmarks.shape[0], height, width, dtype=torch.bool, device=landmarks.device
    )
    for polygon in skin_polygons_torch(landmarks.detach()):
        union |= _inside_polygon(polygon, xs, ys)
    return union[:, None].to(torch.float32)
