"""Crop geometry: a square, tight box around the facial region, resampled to 128x128.

As in the paper: per frame, a square centred on the bounding box of the skin
region (the 68 landmarks plus a forehead band above the brows), side = max(w, h),
no enlargement. Parts of the square outside the frame are filled by replicating
the border so faces at the edge keep their geometry.

A method that redraws the face's outline (the surrogate) asks for a ``margin`` of
context around that box: the square grows by that fraction of its side and its crop by
the same factor, so the face keeps 128 px across and the feathered face mask
(:func:`face_mask`) fades out inside the crop instead of being cut by its edges.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from deidvid.faces.skin import BROW_POINTS, forehead_polygon

CROP_SIZE = 128


def face_region_points(landmarks: np.ndarray) -> np.ndarray:
    """The 68 landmarks plus the top of the skin mask's forehead band: ``(78, 2)``."""
    lifted_brows = forehead_polygon(landmarks)[len(BROW_POINTS) :]
    return np.concatenate([landmarks, lifted_brows])


@dataclass(frozen=True)
class CropBox:
    """A square region of a frame, in integer pixels (may extend past the edges), and the
    ``size`` of its crop (pixels on a side)."""

    x0: int
    y0: int
    side: int
    size: int = CROP_SIZE

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return self.size / self.side

    def moved(self, dx: int, dy: int) -> CropBox:
        """The same box in a picture whose origin is at ``(-dx, -dy)`` of this one's."""
        return replace(self, x0=self.x0 + dx, y0=self.y0 + dy)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Frame coordinates ``(N, 2)`` -> crop coordinates (pixel centres kept)."""
        return (points - [self.x0, self.y0] + 0.5) * self.scale - 0.5


def crop_size(margin: float = 0.0) -> int:
    """Pixels on a side of the crop of a box with ``margin``: the face keeps about
    :data:`CROP_SIZE` (exactly, where ``CROP_SIZE x (1 + margin)`` is a multiple of 16; it is
    rounded to one, as the autoencoders' strides want: ``surrogate+ae`` runs on these crops)."""
    return 16 * max(int(round(CROP_SIZE * (1.0 + margin) / 16)), 1)


def crop_box(landmarks: np.ndarray, margin: float = 0.0) -> CropBox:
    """The paper's tight square around the facial region of ``landmarks (68, 2)``, grown
    about its centre by ``margin`` x its side (0: the paper's), with a crop of
    :func:`crop_size` pixels."""
    pts = face_region_points(landmarks)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = max(int(round(float(max(hi - lo)) * (1.0 + margin))), 4)
    cx, cy = (lo + hi) / 2
    return CropBox(int(round(cx - side / 2)), int(round(cy - side / 2)), side, crop_size(margin))


# A track's crop box is held while it still holds the frame's own box with at most this much
# to spare on every side: a still face's box otherwise jumps by a pixel now and then (its
# corner and side are rounded), and the edge of what a method changes jumps with it, which a
# viewer sees as flicker along the forehead and chin (UBFC subject 17, --method surrogate).
BOX_SLACK_PX = 2


def _holds(outer: CropBox, inner: CropBox, slack: int) -> bool:
    """Whether ``outer`` contains ``inner`` with at most ``slack`` pixels to spare on each side."""
    margins = (
        inner.x0 - outer.x0,
        inner.y0 - outer.y0,
        outer.x0 + outer.side - inner.x0 - inner.side,
        outer.y0 + outer.side - inner.y0 - inner.side,
    )
    return all(0 <= m <= slack for m in margins)


def _square_union(a: CropBox, b: CropBox) -> CropBox:
    """The smallest square with ``a``'s and ``b``'s top-left corner that contains both (``a``'s crop size)."""
    x0, y0 = min(a.x0, b.x0), min(a.y0, b.y0)
    side = max(a.x0 + a.side, b.x0 + b.side) - x0, max(a.y0 + a.side, b.y0 + b.side) - y0
    return CropBox(x0, y0, max(side), a.size)


def steady_boxes(boxes: list[CropBox], slack: int = BOX_SLACK_PX) -> list[CropBox]:
    """Consecutive frames' crop boxes without their rounding jitter.

    Each frame keeps the previous frame's box (or that box grown to take in its own) as
    long as the result contains the frame's own box with at most ``slack`` pixels to spare
    on each side; otherwise it takes its own box. So a box never leaves any of its frame's
    own box out (privacy: everything the tight box covers is still covered), is at most
    ``slack`` pixels larger on a side, and a still face keeps one box.
    """
    steady: list[CropBox] = []
    for box in boxes:
        if steady:
            for candidate in (steady[-1], _square_union(steady[-1], box)):
                if _holds(candidate, box, slack):
                    box = candidate
                    break
        steady.append(box)
    return steady


def frame_window(box: CropBox, height: int, width: int) -> tuple[slice, slice, slice, slice] | None:
    """Overlap of ``box`` with a ``height x width`` frame.

    Returns ``(frame_rows, frame_cols, box_rows, box_cols)`` slices, or None when
    the box lies entirely outside the frame.
    """
    fy0, fx0 = max(box.y0, 0), max(box.x0, 0)
    fy1, fx1 = min(box.y0 + box.side, height), min(box.x0 + box.side, width)
    if fy1 <= fy0 or fx1 <= fx0:
        return None
    return (
        slice(fy0, fy1),
        slice(fx0, fx1),
        slice(fy0 - box.y0, fy1 - box.y0),
        slice(fx0 - box.x0, fx1 - box.x0),
    )


def cut_crop(frame: np.ndarray, box: CropBox, size: int | None = None) -> np.ndarray:
    """Cut ``box`` from ``frame (H, W, 3) uint8`` and resample to ``(size, size, 3)`` uint8
    (default: the box's own crop size)."""
    size = box.size if size is None else size
    h, w = frame.shape[:2]
    pad = (
        max(-box.y0, 0),
        max(box.y0 + box.side - h, 0),
        max(-box.x0, 0),
        max(box.x0 + box.side - w, 0),
    )
    region = frame[
        max(box.y0, 0) : min(box.y0 + box.side, h), max(box.x0, 0) : min(box.x0 + box.side, w)
    ]
    if region.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    if any(pad):
        region = cv2.copyMakeBorder(region, *pad, cv2.BORDER_REPLICATE)
    # Area averaging when shrinking avoids aliasing; bicubic (the paper's) when enlarging.
    interp = cv2.INTER_AREA if box.side > size else cv2.INTER_CUBIC
    return cv2.resize(region, (size, size), interpolation=interp)


def face_mask(
    landmarks: np.ndarray,
    box: CropBox,
    grow: float = 0.08,
    feather: float = 0.04,
    edge: int = 4,
) -> np.ndarray:
    """Feathered mask of the facial region in the crop of ``box``: ``(box.size, box.size)`` float32.

    The convex hull of the face region points is grown by ``grow`` x the face's crop
    size (:data:`CROP_SIZE`, whatever the box's margin; so the whole face is covered,
    privacy first) and its edge blurred with a Gaussian of sigma ``feather`` x that
    size, so pasted changes fade out without a seam. The tight crop ends at the chin
    and the top of the forehead band, so the mask also fades to zero over the crop's
    outer ``edge`` pixels: a change must never stop at a hard line (on a tight crop
    it then stops along a straight one; a box with a margin leaves it room to fade).
    """
    size = box.size
    pts = box.to_crop(face_region_points(landmarks))
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))  # 4 fractional bits
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    grow_px = max(int(round(grow * CROP_SIZE)), 1)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1,) * 2))
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), feather * CROP_SIZE)
    ramp = np.clip((np.minimum(np.arange(size), np.arange(size)[::-1]) + 0.5) / edge, 0.0, 1.0)
    return (soft * np.minimum.outer(ramp, ramp)).astype(np.float32)
