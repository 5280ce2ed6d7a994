"""Smoothing may not lag a face by more than a tenth of its size (``limit_lag``), and
detections match where a track is expected (issue #12: a fast shake was averaged away)."""

from __future__ import annotations

import numpy as np

from deidvid.faces.track import (
    MAX_SMOOTHING_LAG,
    FaceTracker,
    limit_lag,
    moving_average,
)


def face_at(cx: float, cy: float, size: float = 60.0) -> np.ndarray:
    """A fake (68, 2) landmark set spread over a ``size`` square at (cx, cy)."""
    rng = np.random.default_rng(0)
    pts = rng.random((68, 2))
    pts = (pts - pts.min(axis=0)) / np.ptp(pts, axis=0)  # exactly ``size`` wide and high
    return np.array([cx, cy]) + (pts - 0.5) * size


def test_limit_lag_keeps_small_offsets_and_clips_large_ones_along_their_direction():
    raw = np.stack([face_at(100, 100), face_at(200, 100)])  # size 60: limit 0.1 -> 6 px
    smoothed = raw.copy()
    smoothed[0] += [3.0, -4.0]  # 5 px: kept
    smoothed[1] += [30.0, 40.0]  # 50 px: cut to 6 px, same direction
    out = limit_lag(smoothed, raw, 0.1)
    np.testing.assert_allclose(out[0], smoothed[0])
    np.testing.assert_allclose(out[1] - raw[1], np.broadcast_to([3.6, 4.8], (68, 2)), atol=1e-9)


def test_a_fast_shake_is_not_averaged_away():
    tracker = FaceTracker()
    xs = [100 + (12 if (f // 2) % 2 == 0 else -12) for f in range(20)]  # +-20 % of a 60 px face
    for f, x in enumerate(xs):
        tracker.update(f, [face_at(x, 80)])
    (track,) = tracker.finish()
    raw = np.stack([face_at(x, 80) for x in xs])
    lag = np.linalg.norm(track.landmarks - raw, axis=2).max(axis=1)
    # The 5-frame average alone would sit within +-3 px of 100, up to 15 px off; now within 6 px.
    assert np.all(lag <= MAX_SMOOTHING_LAG * 60 + 1e-6)
    assert np.all(np.abs(moving_average(raw, 5) - raw).max(axis=(1, 2))[2:-2] > 9)


def test_jitter_is_smoothed_as_before():
    rng = np.random.default_rng(1)
    raw = np.stack([face_at(100 + 0.5 * f, 80) + rng.normal(0, 1.0, (68, 2)) for f in range(30)])
    tracker = FaceTracker()
    for f, lm in enumerate(raw):
        tracker.update(f, [lm])
    (track,) = tracker.finish()
    np.testing.assert_allclose(track.landmarks, moving_average(raw, 5))


def test_detections_match_where_a_track_is_expected():
    # The face jumps 70 px (more than its 60 px size) between two frames: no overlap with the
    # last place, but the motion estimate says where it went.
    before, after = face_at(100, 80), face_at(170, 80)
    plain = FaceTracker()
    plain.update(0, [before])
    assert plain.update(1, [after]) != [0]
    tracker = FaceTracker()
    tracker.update(0, [before])
    assert tracker.update(1, [after], expected={0: before + [68.0, 0.0]}) == [0]
    # Expected places of unknown IDs are ignored; a second face elsewhere starts its own track.
    ids = tracker.update(2, [after, face_at(400, 80)], expected={0: after, 7: face_at(400, 80)})
    assert ids[0] == 0 and ids[1] not in (0, 7)
