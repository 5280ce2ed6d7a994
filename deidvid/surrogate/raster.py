"""Triangle-mesh rasterisation: texture <-> image through the 468-point mesh.

Two directions, one mechanism (a per-pixel triangle index, then an affine map per
triangle from target pixels to source pixels, then ``cv2.remap``):

* :func:`unwrap`: a frame seen through the face's mesh -> the canonical UV texture
  (what the surrogate bank averages, and what the lighting fit reads);
* :func:`render`: a UV texture on a mesh posed in an image -> image pixels and coverage
  (how a surrogate is drawn), nearer triangles over farther ones, back faces culled.

Pixel convention everywhere: pixel ``(i, j)``'s centre is at ``x = j, y = i`` (the
project's, OpenCV's). A UV texture of side ``T`` holds ``(u, v)`` at pixel
``(v T - 0.5, u T - 0.5)``.
"""

from __future__ import annotations

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # fillConvexPoly's fractional bits: triangles meet without cracks


def uv_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    """UV coordinates ``(N, 2)`` in [0, 1] -> pixel-centre coordinates of a ``size`` texture."""
    return np.asarray(uv, np.float64) * size - 0.5


def triangle_index(
    points: np.ndarray, triangles: np.ndarray, shape_hw: tuple[int, int], order: np.ndarray | None = None
) -> np.ndarray:
    """Which triangle covers each pixel: ``(H, W)`` int32, -1 where none.

    Args:
        points: ``(N, 2)`` vertex positions in pixels.
        triangles: ``(F, 3)`` vertex indices.
        shape_hw: the image's ``(H, W)``.
        order: triangle indices in drawing order (later ones win); default all, in order.
    """
    ids = np.full(shape_hw, -1, np.int32)
    corners = np.round(np.asarray(points, np.float64) * (1 << SUBPIXEL_BITS)).astype(np.int32)[triangles]  # (F, 3, 2)
    # Python ints and one gather up front: the loop is the cost (~900 triangles per face).
    for t in range(len(triangles)) if order is None else np.asarray(order).tolist():
        cv2.fillConvexPoly(ids, corners[t], t, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return ids


def triangle_affines(target: np.ndarray, source: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per triangle, the affine taking its target-space corners to its source-space corners.

    ``target``, ``source``: ``(N, 2)`` vertex positions; returns ``(F, 2, 3)`` with
    ``source = A @ [x, y, 1]``. Degenerate triangles map every point to their source centroid.
    """
    tgt = np.asarray(target, np.float64)[triangles][..., :2]  # (F, 3, 2)
    src = np.asarray(source, np.float64)[triangles][..., :2]
    # Closed form (the barycentric map), not a batched 3x3 inverse: 4x faster, same to 1e-13.
    d1, d2 = tgt[:, 1] - tgt[:, 0], tgt[:, 2] - tgt[:, 0]
    e1, e2 = src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    flat = np.abs(det) < 1e-9
    inverse = 1.0 / np.where(flat, 1.0, det)[:, None]
    along_x = (d2[:, 1:2] * e1 - d1[:, 1:2] * e2) * inverse  # source change per target x
    along_y = (d1[:, 0:1] * e2 - d2[:, 0:1] * e1) * inverse  # per target y
    offset = src[:, 0] - along_x * tgt[:, 0, 0:1] - along_y * tgt[:, 0, 1:2]
    affines = np.stack([along_x, along_y, offset], axis=-1)
    affines[flat] = 0.0
    affines[flat, :, 2] = src[flat].mean(axis=1)
    return affines


def remap_through(
    image: np.ndarray, ids: np.ndarray, affines: np.ndarray, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """Sample ``image`` for every pixel covered in ``ids`` through its triangle's affine.

    Returns an array shaped like ``ids`` plus ``image``'s channels; uncovered pixels are 0.
    """
    covered = ids >= 0
    ys, xs = np.nonzero(covered)
    a = affines[ids[ys, xs]]  # (P, 2, 3)
    sx = a[:, 0, 0] * xs + a[:, 0, 1] * ys + a[:, 0, 2]
    sy = a[:, 1, 0] * xs + a[:, 1, 1] * ys + a[:, 1, 2]
    map_x = np.zeros(ids.shape, np.float32)
    map_y = np.zeros(ids.shape, np.float32)
    map_x[ys, xs], map_y[ys, xs] = sx, sy
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)
    out[~covered] = 0
    return out


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice each triangle's signed area in image coordinates ``(F,)`` (y down)."""
    p = np.asarray(points, np.float64)[triangles]
    e1, e2 = p[:, 1, :2] - p[:, 0, :2], p[:, 2, :2] - p[:, 0, :2]
    return e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]


def front_facing(points: np.ndarray, triangles: np.ndarray, reference_sign: float) -> np.ndarray:
    """Triangles whose winding in the image matches ``reference_sign`` (the canonical
    mesh's front side): ``(F,)`` bool."""
    return signed_areas(points, triangles) * reference_sign > 0


def unwrap(
    frame: np.ndarray,
    points: np.ndarray,
    triangles: np.ndarray,
    uv_ids: np.ndarray,
    uv_points: np.ndarray,
    visible: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The frame's face in UV space.

    Args:
        frame: ``(H, W, C)`` image.
        points: ``(468, 2+)`` the face's mesh in the frame's pixels.
        triangles: ``(F, 3)``.
        uv_ids: ``(T, T)`` the texture's triangle index (:func:`triangle_index` of ``uv_points``).
        uv_points: ``(468, 2)`` the vertices' texture pixels (:func:`uv_pixels`).
        visible: ``(F,)`` triangles to read (others are left out of the mask); default all.

    Returns:
        ``texture (T, T, C)`` and ``mask (T, T)`` bool (texels read from a visible triangle).
    """
    ids = uv_ids if visible is None else np.where(visible[np.maximum(uv_ids, 0)] & (uv_ids >= 0), uv_ids, -1)
    affines = triangle_affines(uv_points, np.asarray(points)[:, :2], triangles)
    return remap_through(frame, ids, affines), ids >= 0


def render(
    texture: np.ndarray,
    uv_points: np.ndarray,
    points: np.ndarray,
    triangles: np.ndarray,
    shape_hw: tuple[int, int],
    front_sign: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a textured mesh into an image.

    Args:
        texture: ``(T, T, C)`` float32 or uint8 UV texture.
        uv_points: ``(468, 2)`` vertex texture pixels.
        points: ``(468, 3)`` vertex image pixels and depth (smaller = nearer).
        triangles: ``(F, 3)``.
        shape_hw: the image's ``(H, W)``.
        front_sign: sign of :func:`signed_areas` for a front-facing triangle.

    Returns:
        ``image (H, W, C)`` (0 outside the face) and ``coverage (H, W)`` bool.
    """
    pts = np.asarray(points, np.float64)
    facing = front_facing(pts, triangles, front_sign)
    depth = pts[triangles, 2].mean(axis=1)
    order = np.flatnonzero(facing)
    order = order[np.argsort(-depth[order], kind="stable")]  # far to near: the nearest is drawn last
    ids = triangle_index(pts[:, :2], triangles, shape_hw, order)
    affines = triangle_affines(pts[:, :2], uv_points, triangles)
    return remap_through(texture, ids, affines), ids >= 0
