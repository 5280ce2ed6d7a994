"""``deidvid.verify.series``: which frames the ``--html`` page shows, and how small they are.

The series of a real verify run: ``test_html.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.verify.series import Snapshots, TrackSeries, snapshot_frames, thumbnail


def test_snapshot_frames_are_the_middles_of_equal_parts():
    assert snapshot_frames(120) == [15, 45, 75, 105]
    assert snapshot_frames(900, 4) == [112, 337, 562, 787]
    assert snapshot_frames(3) == [0, 1, 2]  # fewer frames than snapshots: each frame once
    assert snapshot_frames(1) == [0] and snapshot_frames(0) == [] and snapshot_frames(10, 0) == []


def test_thumbnails_are_at_most_320_wide():
    big = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    small = thumbnail(big)
    assert small.shape == (240, 320, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(big.mean())) < 1  # area averaging keeps the level
    assert thumbnail(big[:100, :200]).shape == (100, 200, 3)  # narrow enough already
    assert thumbnail(np.zeros((1080, 1920, 3), np.uint8)).shape == (180, 320, 3)


def test_snapshots_keep_only_the_wanted_frames():
    shots = Snapshots(8, count=2)  # frames 2 and 6
    frame = np.zeros((48, 64, 3), np.uint8)
    for index in range(8):
        shots.add(index, index / 4, frame + index, frame)
    assert [(s.index, s.time_s) for s in shots.frames] == [(2, 0.5), (6, 1.5)]
    assert int(shots.frames[1].original[0, 0, 0]) == 6 and shots.frames[1].deidentified.max() == 0


def test_identity_times_are_those_of_the_scored_frames():
    track = TrackSeries(
        track_id=3, start_frame=10, times=np.arange(10, 30) / 10.0, pulse=None,
        identity_frames=np.array([10, 15, 20]), identity_distances={"a": np.array([0.1, 0.2, 0.3])},
    )
    assert track.identity_times == pytest.approx([1.0, 1.5, 2.0])
    assert track.expression_original is None and track.expression_signals == ()
