"""The follower between detections: the face's motion between two frames (``face_motion``)
moves the previous landmarks before dlib re-fits them (issue #12: a fast shake was lagged)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deidvid.faces.landmarks import (
    MOTION_MIN_SHIFT,
    LandmarkPredictor,
    face_motion,
    follow_motion,
    to_grey,
)


def _moved(grey: np.ndarray, dx: float, dy: float) -> np.ndarray:
    h, w = grey.shape
    return cv2.warpAffine(grey, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def grey(astronaut):
    return to_grey(astronaut)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (3.5, -2.0), (-40.0, 12.0), (60.0, 0.0), (0.0, -70.0)])
def test_face_motion_measures_a_shift_up_to_most_of_the_face(grey, astronaut_landmarks, shift):
    # The astronaut's landmarks span ~92 px: shifts up to ~0.75 of the face in one frame.
    motion = face_motion(grey, _moved(grey, *shift), astronaut_landmarks)
    assert motion is not None
    np.testing.assert_allclose(motion, shift, atol=1.0)


def test_face_motion_is_none_without_a_clear_match(grey, astronaut_landmarks):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, grey.shape, dtype=np.uint8)
    assert face_motion(grey, noise, astronaut_landmarks) is None  # the face is gone
    assert face_motion(np.full_like(grey, 90), grey, astronaut_landmarks) is None  # nothing to match
    tiny = astronaut_landmarks * 0.05 + 200  # a face of ~5 px
    assert face_motion(grey, grey, tiny) is None
    # Beyond the reach (the face's size) no match is claimed, so the follower keeps the old box.
    assert face_motion(grey, _moved(grey, 150.0, 0.0), astronaut_landmarks) is None


def test_face_motion_near_the_frame_edge(grey, astronaut_landmarks):
    # The face cut by the frame's left edge: template and search window are clipped.
    left = int(astronaut_landmarks[:, 0].min()) + 20
    cut = np.ascontiguousarray(grey[:, left:])
    lm = astronaut_landmarks - [left, 0]
    motion = face_motion(cut, _moved(cut, 12.0, 5.0), lm)
    assert motion is not None
    np.testing.assert_allclose(motion, (12.0, 5.0), atol=1.5)


def test_follow_keeps_up_with_a_face_that_jumped(grey, astronaut_landmarks):
    landmarker = LandmarkPredictor()
    shift = np.array([-40.0, 12.0])  # 43 % of the face in one frame
    after = _moved(grey, *shift)
    followed = landmarker.follow(after, astronaut_landmarks, grey)
    assert followed is not None
    assert np.linalg.norm(followed - (astronaut_landmarks + shift), axis=1).mean() < 2.0
    # Without the frame before, the fit starts where the face was and stays near there.
    plain = landmarker.follow(after, astronaut_landmarks)
    assert plain is None or np.linalg.norm(plain - (astronaut_landmarks + shift), axis=1).mean() > 20.0


def test_follow_motion_leaves_small_moves_to_the_fit(grey, astronaut_landmarks):
    side = float(np.ptp(astronaut_landmarks, axis=0).max())
    small = 0.6 * MOTION_MIN_SHIFT * side
    assert follow_motion(grey, _moved(grey, small, 0.0), astronaut_landmarks) is astronaut_landmarks
    large = np.array([0.0, 3 * MOTION_MIN_SHIFT * side])
    moved = follow_motion(grey, _moved(grey, *large), astronaut_landmarks)
    np.testing.assert_allclose(moved - astronaut_landmarks, np.broadcast_to(large, (68, 2)), atol=1.0)
    noise = np.random.default_rng(0).integers(0, 256, grey.shape, dtype=np.uint8)
    assert follow_motion(grey, noise, astronaut_landmarks) is astronaut_landmarks


@pytest.mark.parametrize("shift", [(0.0, 0.0), (1.5, -1.0)])
def test_follow_of_a_slow_face_is_as_before(grey, astronaut_landmarks, shift):
    # Below MOTION_MIN_SHIFT the fit starts from the same box as without the frame before.
    landmarker = LandmarkPredictor()
    after = _moved(grey, *shift)
    np.testing.assert_array_equal(
        landmarker.follow(after, astronaut_landmarks, grey), landmarker.follow(after, astronaut_landmarks)
    )
