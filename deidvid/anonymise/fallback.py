"""Fail closed: cover the last known place of a face that the tracker lost.

A track that ends before the video does (the face was lost mid-video) leaves its
last face box covered for ``fallback_seconds``, or until another track covers that
place again (IoU >= 0.5). Every such frame is counted in the report.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from deidvid.anonymise.paste import paste_replace
from deidvid.faces.geometry import CropBox, cut_crop
from deidvid.faces.track import FaceTrack, box_iou, landmark_box
from deidvid.methods.blur import gaussian_blur

SAME_PLACE_IOU = 0.5  # another track this close to a lost face's place has found it again
FALLBACK_BLUR_SIGMA = 12.0  # the blur method's sigma, at the crop's own scale


def lost_face_regions(
    tracks: list[FaceTrack], frame_count: int, hold_frames: int
) -> dict[int, list[np.ndarray]]:
    """Frame -> face boxes ``(4,)`` xyxy to cover after a track was lost mid-video."""
    regions: dict[int, list[np.ndarray]] = defaultdict(list)
    for track in tracks:
        if track.end >= frame_count:
            continue
        box = landmark_box(track.landmarks[-1])
        for f in range(track.end, min(track.end + hold_frames, frame_count)):
            if any(_same_place(box, landmark_box(o.at(f))) for o in tracks if o.covers(f)):
                break
            regions[f].append(box)
    return dict(regions)


def _same_place(a: np.ndarray, b: np.ndarray) -> bool:
    """Boxes overlapping by IoU >= :data:`SAME_PLACE_IOU`. A mere touch is not enough: a face
    shaken fast splits into tracks at either end of the shake, and the one that stays must
    not end the cover of the place the other left (measured: a +-25 px shake leaked 2 frames)."""
    return bool(box_iou(a[None], b[None])[0, 0] >= SAME_PLACE_IOU)


def cover_box(region: np.ndarray) -> CropBox:
    """The square that the cover of a face box ``(4,)`` xyxy blurs: the box's long side grown by 40 %."""
    centre = (region[:2] + region[2:]) / 2
    side = int(round(float(max(region[2:] - region[:2])) * 1.4))
    return CropBox(int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2)), max(side, 4))


def cover_region(canvas: np.ndarray, rgb: np.ndarray, region: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
    """Blur a face box ``(4,)`` of ``rgb (H, W, 3)`` into ``canvas`` (float32, the part of the
    frame whose top-left pixel is the frame's ``origin (x, y)``) through a feathered ellipse."""
    box = cover_box(region)
    crop = cut_crop(rgb, box).astype(np.float32) / 255.0
    blurred = gaussian_blur(crop[None], FALLBACK_BLUR_SIGMA)[0]
    paste_replace(canvas, box.moved(-origin[0], -origin[1]), blurred * 255.0, ellipse_mask(crop.shape[0]))


def ellipse_mask(size: int) -> np.ndarray:
    """A feathered ellipse filling a ``size x size`` square: ``(size, size)`` float."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot((xx - size / 2 + 0.5) / (size * 0.42), (yy - size / 2 + 0.5) / (size * 0.42))
    return np.clip((1.15 - r) / 0.3, 0.0, 1.0).astype(np.float32)
