"""``deidvid.measure.expression``: landmark expression signals, head pose, their agreement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deidvid.measure.expression import (
    MODEL_POINTS,
    POSE_LANDMARKS,
    SIGNALS,
    ExpressionTraces,
    compare_signal,
    expression_signals,
    frame_signals,
    head_pose,
    min_defined_r,
    rotation_angles,
)


def _similar(landmarks, angle_deg=0.0, scale=1.0, shift=(0.0, 0.0)):
    t = np.radians(angle_deg)
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    centre = landmarks.mean(axis=0)
    return (landmarks - centre) @ rotation.T * scale + centre + shift


def test_expression_signals_ignore_size_position_and_roll(astronaut_landmarks):
    base = expression_signals(astronaut_landmarks)
    assert base.shape == (4,) and np.all(base > 0)
    for angle, scale, shift in [(12.0, 1.0, (0, 0)), (0.0, 1.7, (30, -20)), (-20.0, 0.6, (5, 5))]:
        np.testing.assert_allclose(expression_signals(_similar(astronaut_landmarks, angle, scale, shift)), base, rtol=1e-9)


def test_expression_signals_follow_the_face(astronaut_landmarks):
    base = expression_signals(astronaut_landmarks)
    iod = np.linalg.norm(astronaut_landmarks[42:48].mean(0) - astronaut_landmarks[36:42].mean(0))
    opened = astronaut_landmarks.copy()
    opened[[65, 66, 67], 1] += 10  # inner lower lip down by 10 px
    assert expression_signals(opened)[0] == pytest.approx(base[0] + 10 / iod, rel=0.05)
    np.testing.assert_allclose(expression_signals(opened)[1:], base[1:])
    shut = astronaut_landmarks.copy()
    shut[[43, 44], 1] = shut[[47, 46], 1]  # the subject's left eye closed (points 42-47)
    signals = expression_signals(shut)
    # eye_left shut; eye_right as it was (up to the inter-ocular distance: the eye centre moved)
    assert signals[1] < 0.2 * base[1] and signals[2] == pytest.approx(base[2], rel=0.01)
    raised = astronaut_landmarks.copy()
    raised[17:27, 1] -= 6  # brows up
    assert expression_signals(raised)[3] > base[3]


def _project(yaw, pitch, roll, size=(480, 640), distance=3000.0):
    """The generic model turned by the angles (R = Rz Ry Rx) and projected: (68, 2) with the 6 pose points."""
    height, width = size
    rx, ry, rz = np.radians([pitch, yaw, roll])
    rot_x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    rot_y = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    rot_z = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    rotation = rot_z @ rot_y @ rot_x
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1.0]])
    points, _ = cv2.projectPoints(MODEL_POINTS, cv2.Rodrigues(rotation)[0], np.array([40.0, -30.0, distance]),
                                  camera, np.zeros(4))
    landmarks = np.zeros((68, 2))
    landmarks[list(POSE_LANDMARKS)] = points[:, 0]
    return landmarks, rotation


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (20, 0, 0), (0, -15, 0), (0, 0, 10), (-25, 10, -8)])
def test_head_pose_recovers_the_angles_of_the_generic_face(yaw, pitch, roll):
    landmarks, rotation = _project(yaw, pitch, roll)
    np.testing.assert_allclose(rotation_angles(rotation), [yaw, pitch, roll], atol=1e-9)
    np.testing.assert_allclose(head_pose(landmarks, (480, 640, 3)), [yaw, pitch, roll], atol=0.5)


def test_frame_signals_of_a_real_face(astronaut_landmarks):
    values = frame_signals(astronaut_landmarks, (512, 512, 3))
    assert values.shape == (len(SIGNALS),) and np.isfinite(values).all()
    assert abs(values[6]) < 10  # roll: the astronaut's head is about upright
    # the landmarks turned 10 degrees in the image: roll follows, the expression does not
    turned = frame_signals(_similar(astronaut_landmarks, 10.0), (512, 512, 3))
    assert turned[6] - values[6] == pytest.approx(10.0, abs=2.0)
    np.testing.assert_allclose(turned[:4], values[:4], rtol=1e-9)


def test_compare_signal():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    b = 0.5 * a + rng.normal(scale=0.3, size=50)
    out = compare_signal(a, b)
    assert out["r"] == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert out["mad"] == pytest.approx(np.abs(a - b).mean()) and out["frames"] == 50
    assert compare_signal(a, a)["r"] == pytest.approx(1.0) and compare_signal(a, a)["mad"] == 0.0
    b_gaps = b.copy()
    b_gaps[::2] = np.nan  # frames not sampled: left out
    assert compare_signal(a, b_gaps)["frames"] == 25
    assert compare_signal(a, b_gaps)["r"] == pytest.approx(np.corrcoef(a[1::2], b[1::2])[0, 1])
    constant = np.full(50, 0.3)
    assert compare_signal(constant, constant) == {"r": None, "mad": 0.0, "frames": 50}  # undefined, not 1
    assert compare_signal(a, constant)["r"] is None
    assert compare_signal(a[:2], b[:2])["r"] is None
    assert compare_signal(np.full(3, np.nan), a[:3]) == {"r": None, "mad": None, "frames": 0}


def test_min_defined_r():
    assert min_defined_r({"a": {"r": 0.9, "mad": 0, "frames": 3}, "b": {"r": None, "mad": 0, "frames": 3},
                          "c": {"r": 0.4, "mad": 0, "frames": 3}}) == 0.4
    assert min_defined_r({"b": {"r": None, "mad": 0, "frames": 3}}) is None and min_defined_r(None) is None


def test_traces_fit_both_videos_at_the_original_box(astronaut_landmarks):
    """A stand-in landmark model: the de-identified face opens its mouth in frames 2 and 3."""
    from deidvid.faces.landmarks import dlib_box_from_landmarks

    boxes = []

    def landmarker(grey, box):
        boxes.append(box)
        found = astronaut_landmarks.copy()
        found[[65, 66, 67], 1] += float(grey[0, 0])  # the frame says how far
        return found

    traces = ExpressionTraces({5: 4}, landmarker)
    for offset in range(4):
        grey_o = np.zeros((512, 512), np.uint8)
        grey_d = np.full((512, 512), 8 * (offset in (2, 3)) + offset, np.uint8)
        grey_o[0, 0] = offset  # the original's mouth moves a little too
        traces.add(5, offset, grey_o, grey_d, astronaut_landmarks)
    expected_box = dlib_box_from_landmarks(astronaut_landmarks)
    assert len(boxes) == 8 and all(np.array_equal(b, expected_box) for b in boxes)
    original, deid = traces.series(5)
    assert original.shape == (4, len(SIGNALS))
    scores = traces.scores(5)
    assert list(scores) == list(SIGNALS)
    mouth = scores["mouth_open"]
    assert mouth["frames"] == 4 and mouth["r"] == pytest.approx(np.corrcoef(original[:, 0], deid[:, 0])[0, 1])
    assert mouth["mad"] > 0
    assert scores["eye_left"]["r"] is None and scores["eye_left"]["mad"] == 0.0  # the eyes never move


def test_traces_with_the_project_model_on_identical_frames(astronaut, astronaut_landmarks):
    from deidvid.faces.landmarks import to_grey

    traces = ExpressionTraces({0: 3})
    grey = to_grey(astronaut)
    for offset in range(2):  # frame 2 is never sampled
        traces.add(0, offset, grey, grey.copy(), astronaut_landmarks + offset)
    original, deid = traces.series(0)
    np.testing.assert_array_equal(original, deid)
    assert np.isnan(original[2]).all()
    assert all(s["mad"] == 0.0 and s["frames"] == 2 for s in traces.scores(0).values())


def test_mesh_signals_on_identical_frames_and_a_closed_eye(astronaut, astronaut_landmarks):
    from deidvid.faces.landmarks import to_grey
    from deidvid.measure.expression import MESH_SIGNALS, MeshSignals

    mesh = MeshSignals()
    traces = ExpressionTraces({0: 2}, mesh=mesh)
    grey = to_grey(astronaut)
    # The subject's right eye (image left) painted over with skin: Iris must see it shut.
    shut = astronaut.copy()
    eye = astronaut_landmarks[36:42]
    x0, y0 = np.floor(eye.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(eye.max(axis=0)).astype(int) + 3
    shut[y0:y1, x0:x1] = astronaut[y1 + 4 : y1 + 4 + (y1 - y0), x0:x1]  # cheek skin from below the eye
    traces.add(0, 0, grey, grey.copy(), astronaut_landmarks, (astronaut, astronaut.copy()))
    traces.add(0, 1, grey, to_grey(shut), astronaut_landmarks, (astronaut, shut))
    original, deid = traces.series(0)
    k = {name: len(SIGNALS) + i for i, name in enumerate(MESH_SIGNALS)}
    np.testing.assert_array_equal(original[0], deid[0])
    assert 0.0 <= original[0, k["mesh_mouth_open"]] < 0.15  # the astronaut smiles, lips slightly apart
    assert 0.2 < original[0, k["mesh_eye_right"]] < 0.6 and 0.2 < original[0, k["mesh_eye_left"]] < 0.6
    assert deid[1, k["mesh_eye_right"]] < 0.6 * original[1, k["mesh_eye_right"]]
    assert abs(deid[1, k["mesh_eye_left"]] - original[1, k["mesh_eye_left"]]) < 0.1
    assert set(traces.scores(0)) == set(SIGNALS) | set(MESH_SIGNALS)
