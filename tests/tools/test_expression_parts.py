"""deidvid.tools.expression_parts: where the surrogate loses the expression (measure, transfer, read back)."""

from __future__ import annotations

import math

import numpy as np

from deidvid.testing.synthetic_video import make_face_video
from deidvid.tools.expression_parts import SIGNALS, STEPS, correlation, expression_parts


def test_correlation_skips_undefined_frames():
    a = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0])
    b = np.array([2.0, 4.0, 6.0, 1.0, np.nan, 12.0])
    assert correlation(a, b) == 1.0
    assert correlation(-a, b) == -1.0
    assert math.isnan(correlation(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0, 3.0])))  # < 3 frames
    assert math.isnan(correlation(np.ones(5), np.arange(5.0)))  # a constant signal has no r


def test_every_step_is_scored(tmp_path):
    video = make_face_video(tmp_path / "face.mp4", n_frames=30, audio=False)
    parts = expression_parts(video)
    assert list(parts) == list(STEPS)
    for scores in parts.values():
        assert list(scores) == list(SIGNALS)
        assert all(math.isnan(r) or -1.0 <= r <= 1.0 for r in scores.values())
