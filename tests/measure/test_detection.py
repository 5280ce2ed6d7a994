"""``deidvid.measure.detection``: is the face found where the track says, per sampled frame."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.faces.skin import forehead_polygon
from deidvid.faces.types import Detection
from deidvid.measure.detection import (
    DETECTION_MIN_IOU,
    DetectionCount,
    DetectionRate,
    detected_at,
    face_box,
)


def _iou(a, b):
    """Independent IoU of two xyxy boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_face_box_spans_landmarks_and_forehead(astronaut_landmarks):
    box = face_box(astronaut_landmarks)
    points = np.concatenate([astronaut_landmarks, forehead_polygon(astronaut_landmarks)])
    np.testing.assert_allclose(box, [*points.min(axis=0), *points.max(axis=0)])
    assert box[1] < astronaut_landmarks[:, 1].min()  # the forehead band lifts the top


@pytest.mark.parametrize("shift", [0.0, 10.0, 25.0, 40.0, 100.0])
def test_detected_at_follows_the_iou_threshold(shift):
    target = np.array([100.0, 100.0, 200.0, 200.0])
    box = target + [shift, 0, shift, 0]
    expected = _iou(box, target) >= DETECTION_MIN_IOU
    assert detected_at(box[None], target) == expected
    # another, far box does not change the answer: the best overlap counts
    assert detected_at(np.stack([[0, 0, 5, 5], box]), target) == expected


def test_detected_at_without_detections():
    assert not detected_at(np.zeros((0, 4)), np.array([0.0, 0, 10, 10]))
    assert detected_at(np.array([[0.0, 0, 10, 10]]), np.array([0.0, 0, 10, 10]), min_iou=1.0)


def test_detection_count_rates():
    count = DetectionCount()
    assert count.scores() == {"frames": 0, "rate_original": None, "rate_deidentified": None}
    for in_original, in_deid in [(True, False), (True, True), (False, False), (True, False)]:
        count.add(in_original, in_deid)
    assert count.scores() == {"frames": 4, "rate_original": 0.75, "rate_deidentified": 0.25}


def test_detection_rate_with_a_stand_in_detector(astronaut_landmarks):
    """The detector finds the face in the original only, and nothing else."""
    target = face_box(astronaut_landmarks)
    seen = []

    def detect_batch(frames):
        seen.append(len(frames))
        hit = Detection(box=target.astype(np.float32), score=0.9, points=np.zeros((5, 2)))
        miss = Detection(box=np.array([0, 0, 4, 4], np.float32), score=0.9, points=np.zeros((5, 2)))
        return [[miss, hit], [miss]]

    rate = DetectionRate(detect_batch)
    frame = np.zeros((8, 8, 3), np.uint8)
    for _ in range(3):
        rate.add(frame, frame, {4: astronaut_landmarks})
    assert seen == [2, 2, 2]  # both videos' frames in one batch
    assert rate.scores(4) == {"frames": 3, "rate_original": 1.0, "rate_deidentified": 0.0}
    assert rate.scores(5) == {"frames": 0, "rate_original": None, "rate_deidentified": None}
