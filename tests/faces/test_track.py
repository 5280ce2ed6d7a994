import numpy as np
import pytest

from deidvid.faces.track import FaceTracker, box_iou, moving_average


def face_at(cx: float, cy: float, size: float = 60.0) -> np.ndarray:
    """A fake (68, 2) landmark set: points spread over a square at (cx, cy)."""
    rng = np.random.default_rng(0)
    return np.array([cx, cy]) + (rng.random((68, 2)) - 0.5) * size


def test_one_moving_face_keeps_its_id_through_a_gap():
    tracker = FaceTracker(max_gap=10)
    ids = []
    for f in range(40):
        if 15 <= f < 22:  # the detector misses the face for 7 frames
            continue
        ids += tracker.update(f, [face_at(100 + 2 * f, 80)])
    tracks = tracker.finish()
    assert set(ids) == {0}
    assert len(tracks) == 1
    t = tracks[0]
    assert (t.start, t.end) == (0, 40)
    assert (~t.observed).sum() == 7
    # gap interpolated on the straight path
    np.testing.assert_allclose(t.at(18).mean(axis=0), face_at(136, 80).mean(axis=0), atol=1.0)


def test_gap_longer_than_max_gap_starts_a_new_track():
    tracker = FaceTracker(max_gap=5)
    for f in list(range(10)) + list(range(30, 40)):
        tracker.update(f, [face_at(100, 100)])
    tracks = tracker.finish()
    assert [(t.start, t.end) for t in tracks] == [(0, 10), (30, 40)]
    assert tracks[0].track_id != tracks[1].track_id


def test_two_faces_keep_separate_ids_when_listed_in_any_order():
    tracker = FaceTracker()
    left, right = [], []
    for f in range(30):
        a, b = face_at(80 + f, 100), face_at(300 - f, 100)
        faces = [a, b] if f % 2 else [b, a]
        ids = tracker.update(f, faces)
        left.append(ids[0] if f % 2 else ids[1])
        right.append(ids[1] if f % 2 else ids[0])
    assert len(set(left)) == 1 and len(set(right)) == 1 and left[0] != right[0]
    assert len(tracker.finish()) == 2


def test_box_iou_against_hand_values():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_moving_average_matches_convolution_inside_and_shrinks_at_ends():
    x = np.random.default_rng(1).random((20, 3))
    y = moving_average(x, 5)
    ref = np.stack([np.convolve(x[:, j], np.ones(5) / 5, mode="valid") for j in range(3)], axis=1)
    np.testing.assert_allclose(y[2:-2], ref)
    np.testing.assert_allclose(y[0], x[:3].mean(axis=0))
    np.testing.assert_allclose(y[-1], x[-3:].mean(axis=0))


def test_assign_matches_the_hungarian_algorithm_on_every_shape():
    from scipy.optimize import linear_sum_assignment

    from deidvid.faces.track import assign

    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 4), (4, 1), (3, 3), (2, 5), (5, 2)]:
        cost = rng.random(shape)
        rows, cols = assign(cost)
        ref_rows, ref_cols = linear_sum_assignment(cost)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum())
        assert len(rows) == min(shape)
