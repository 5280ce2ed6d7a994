"""Faces at any roll: detection in quarter-turned frames, landmarks fitted upright.

RetinaFace and dlib's landmark model find and fit upright faces (to about 35-45 degrees
of roll). A face rolled further (a phone video whose rotation flag is missing, a person
lying down, a head shake) would be missed or mis-fitted, and left sharp. So pass 1 also
detects in the frame turned by 90, 180 and 270 degrees (:func:`detect_any_roll`), and the
landmark model fits a rolled face in an :class:`UprightView`: the face's neighbourhood
turned so its eyes are level, the points mapped back.

Coordinates are the project's: pixel ``(i, j)``'s centre at ``x = j, y = i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from deidvid.faces.types import Detection
from deidvid.io.turn import turned

QUARTER_TURNS = (1, 2, 3)  # np.rot90's k: counter-clockwise quarter turns
ROLL_LIMIT_DEG = 35.0  # beyond this roll, landmarks are fitted in an upright view
SAME_FACE_OVERLAP = 0.5  # detections (in any views) sharing this much of the smaller box are one face
VIEW_SCALE = 3.0  # the upright view's side, in face sides (room for the dlib box and a frame's motion)


def turned_to_frame(points: np.ndarray, turns: int, width: int, height: int) -> np.ndarray:
    """Points ``(N, 2)`` of ``np.rot90(frame, turns)`` -> the frame's ``(width x height)`` pixels."""
    x, y = np.asarray(points, np.float64).T
    turns %= 4
    if turns == 1:
        return np.stack([width - 1 - y, x], axis=1)
    if turns == 2:
        return np.stack([width - 1 - x, height - 1 - y], axis=1)
    if turns == 3:
        return np.stack([y, height - 1 - x], axis=1)
    return np.stack([x, y], axis=1)


def detection_to_frame(det: Detection, turns: int, width: int, height: int) -> Detection:
    """A detection in ``np.rot90(frame, turns)`` expressed in the frame."""
    corners = turned_to_frame(det.box.reshape(2, 2), turns, width, height)
    box = np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
    return replace(det, box=box, points=turned_to_frame(det.points, turns, width, height).astype(np.float32))


def _scaled(det: Detection, sx: float, sy: float) -> Detection:
    """``det`` with x coordinates times ``sx`` and y times ``sy``."""
    box = (det.box.astype(np.float64) * [sx, sy, sx, sy]).astype(np.float32)
    points = (det.points.astype(np.float64) * [sx, sy]).astype(np.float32)
    return replace(det, box=box, points=points)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area: a part of a face found as a small face
    inside it counts as the same face."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / smaller) if smaller > 0 else 0.0


def detect_any_roll(detector, frame_rgb: np.ndarray) -> list[Detection]:
    """Faces at any roll in one ``(H, W, 3)`` frame, by decreasing score.

    The frame and its three quarter turns go through the detector in two network passes
    (the frame with its half turn, the two quarter turns together). A face
    is often found in more than one of them (RetinaFace also boxes a face lying on its
    side or upside down, with misplaced eye and mouth points and an off-centre box, but
    with a lower score than in the view where it is upright), so of the detections of one
    face (:func:`_same_face`) the highest-scoring is kept (ties: the frame as it is, then
    the view whose eye line is nearest level).

    The turned views are made from the frame already shrunk to the network's size (the
    detector would shrink each turned frame to the same picture: turning and INTER_AREA
    averaging commute): a quarter of the pixels to turn and no further resizing. Its
    detections are scaled back to the frame like theirs: exactly those of the frame itself
    when the shrink factor is a power of two (720p), within float32 rounding otherwise.

    ``detector``: a :class:`deidvid.faces.detect.FaceDetector` (``detect_batch``, ``shrink``).
    """
    height, width = frame_rgb.shape[:2]
    small = detector.shrink(frame_rgb)
    # The frame goes in shrunk too, so it shares a network pass with its half turn.
    frames = [small] + [turned(small, k) for k in QUARTER_TURNS]
    # Shrunk view pixels -> turned full-size frame pixels, per axis of the view.
    scale_x, scale_y = width / small.shape[1], height / small.shape[0]
    candidates = []
    for k, detections in zip((0,) + QUARTER_TURNS, detector.detect_batch(frames)):
        sx, sy = (scale_y, scale_x) if k % 2 else (scale_x, scale_y)
        detections = [_scaled(det, sx, sy) for det in detections]
        for det in detections:
            tilt = abs(eye_roll(det.points[0], det.points[1]))
            # Scores saturate near 1: equal ones (to 2 decimals) prefer the frame as it is.
            candidates.append(((-round(det.score, 2), k != 0, tilt), k, detection_to_frame(det, k, width, height)))
    kept: list[tuple[int, Detection]] = []
    for _, view, det in sorted(candidates, key=lambda c: c[0]):
        if not any(_same_face(det, view, other, other_view) for other_view, other in kept):
            kept.append((view, det))
    return sorted((det for _, det in kept), key=lambda d: -d.score)


def _same_face(a: Detection, view_a: int, b: Detection, view_b: int) -> bool:
    """Whether two detections are one face: boxes overlapping by :data:`SAME_FACE_OVERLAP`,
    or, across views, one box's centre inside the other (a face seen sideways in a turned
    view is boxed off-centre: in a synthetic clip, overlap 0.46 with its upright box)."""
    if _overlap(a.box, b.box) >= SAME_FACE_OVERLAP:
        return True
    return view_a != view_b and (_centre_inside(a.box, b.box) or _centre_inside(b.box, a.box))


def _centre_inside(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether box ``a``'s centre lies in box ``b`` (boxes ``x0, y0, x1, y1``)."""
    x, y = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return bool(b[0] <= x <= b[2] and b[1] <= y <= b[3])


def eye_roll(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    """Roll in radians of the line from the subject's right eye (image left when upright) to
    the left eye: 0 for an upright face, +-pi upside down."""
    d = np.asarray(left_eye, np.float64) - np.asarray(right_eye, np.float64)
    return math.atan2(d[1], d[0])


def is_rolled(roll: float) -> bool:
    return abs(math.degrees(roll)) > ROLL_LIMIT_DEG


@dataclass(frozen=True)
class UprightView:
    """The square around ``centre`` turned by ``-roll``: a rolled face seen upright.

    ``patch = R(-roll) (frame - centre) + size / 2``.
    """

    centre: tuple[float, float]
    roll: float
    size: int

    def _rotation(self) -> np.ndarray:
        c, s = math.cos(self.roll), math.sin(self.roll)
        return np.array([[c, s], [-s, c]])  # R(-roll)

    def matrix(self) -> np.ndarray:
        """``(2, 3)`` affine frame -> patch (for ``cv2.warpAffine``)."""
        r = self._rotation()
        return np.hstack([r, (self.size / 2 - r @ np.asarray(self.centre))[:, None]])

    def warp(self, image: np.ndarray) -> np.ndarray:
        """The ``(size, size)`` upright patch of ``image``, the frame's edge replicated."""
        return cv2.warpAffine(image, self.matrix(), (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def to_patch(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - self.centre) @ self._rotation().T + self.size / 2

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - self.size / 2) @ self._rotation() + self.centre


def upright_view(points: np.ndarray, roll: float) -> UprightView:
    """The upright view of a face given by any of its points ``(N, 2)`` and its roll."""
    pts = np.asarray(points, np.float64)
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    side = float(max(np.ptp(pts, axis=0)))
    return UprightView((float(centre[0]), float(centre[1])), roll, max(int(math.ceil(VIEW_SCALE * side)), 16))
