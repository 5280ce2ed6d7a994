"""Detection rate: does the face detector still find a face where a track says one is?

On a sampled frame, a face track *is detected* in a video when some detection box
overlaps the track's face box (the bounding box of its 68 landmarks plus the forehead
band, :func:`deidvid.faces.geometry.face_region_points`) with IoU >=
:data:`DETECTION_MIN_IOU`. The *detection rate* of a track is the fraction of its
sampled frames where it is detected; ``deidvid verify`` reports it for the original
(a sanity check: about 1) and the de-identified video.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from deidvid.faces.geometry import face_region_points
from deidvid.faces.track import box_iou, landmark_box

DETECTION_MIN_IOU = 0.3

# frames (H, W, 3) uint8 -> per frame, detections with a ``.box`` (4,) xyxy in frame pixels
DetectBatch = Callable[[list[np.ndarray]], list[list[Any]]]


class DetectionScores(TypedDict):
    """One track's detection rates (the JSON of verify)."""

    frames: int
    rate_original: float | None
    rate_deidentified: float | None


def face_box(landmarks: np.ndarray) -> np.ndarray:
    """The box ``(4,)`` xyxy a detection must overlap: landmarks ``(68, 2)`` plus forehead band."""
    return landmark_box(face_region_points(landmarks))


def detected_at(boxes: np.ndarray, target: np.ndarray, min_iou: float = DETECTION_MIN_IOU) -> bool:
    """Whether any of ``boxes (K, 4)`` xyxy overlaps ``target (4,)`` with IoU >= ``min_iou``."""
    boxes = np.asarray(boxes).reshape(-1, 4)  # dtype kept: the detector's float32 boxes as they are
    if not len(boxes):
        return False
    return bool(box_iou(boxes, np.asarray(target)[None]).max() >= min_iou)


@dataclass
class DetectionCount:
    """Sampled frames of one track and how many of them had it detected, per video."""

    sampled: int = 0
    original: int = 0
    deidentified: int = 0

    def add(self, in_original: bool, in_deidentified: bool) -> None:
        self.sampled += 1
        self.original += int(in_original)
        self.deidentified += int(in_deidentified)

    def scores(self) -> DetectionScores:
        """Rates over the sampled frames (None when none was sampled)."""
        n = self.sampled
        return {
            "frames": n,
            "rate_original": self.original / n if n else None,
            "rate_deidentified": self.deidentified / n if n else None,
        }


class DetectionRate:
    """Runs a detector on sampled frame pairs and counts, per track, where it finds the face.

    Args:
        detect_batch: the detector (``FaceDetector.detect_batch``): both frames of a pair
            go through it as one batch.
        min_iou: overlap a detection needs with the track's face box.
    """

    def __init__(self, detect_batch: DetectBatch, min_iou: float = DETECTION_MIN_IOU) -> None:
        self.detect_batch = detect_batch
        self.min_iou = min_iou
        self.counts: dict[int, DetectionCount] = {}

    def add(self, original: np.ndarray, deidentified: np.ndarray, faces: dict[int, np.ndarray]) -> None:
        """One sampled frame pair ``(H, W, 3)`` uint8 x2 and the tracks there: ``{track id: (68, 2)}``."""
        found_original, found_deid = self.detect_batch([original, deidentified])
        for track_id, landmarks in faces.items():
            target = face_box(landmarks)
            self.counts.setdefault(track_id, DetectionCount()).add(
                detected_at(_boxes(found_original), target, self.min_iou),
                detected_at(_boxes(found_deid), target, self.min_iou),
            )

    def scores(self, track_id: int) -> DetectionScores:
        """:meth:`DetectionCount.scores` of one track (zero frames if never sampled)."""
        return self.counts.get(track_id, DetectionCount()).scores()


def _boxes(detections: Sequence[Any]) -> np.ndarray:
    return np.stack([d.box for d in detections]) if detections else np.zeros((0, 4))
