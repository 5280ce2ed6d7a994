"""``deidvid.measure.temporal``: frame-to-frame change in the face box and added pulse-band power."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.faces.geometry import crop_box
from deidvid.measure.temporal import (
    FLICKER_BAND_HZ,
    FrameChange,
    added_band_power,
    band_rms,
    mean_abs_change,
    temporal_scores,
    track_frame_changes,
)

FS = 30.0


def test_mean_abs_change_is_signed_safe():
    a = np.array([[0, 255], [10, 20]], np.uint8)
    b = np.array([[255, 0], [12, 20]], np.uint8)
    assert mean_abs_change(a, b) == pytest.approx((255 + 255 + 2 + 0) / 4)


def _box_change(previous, current, landmarks):
    """Independent: the face box's pixels, clipped to the frame, looped over."""
    box = crop_box(landmarks)
    h, w = current.shape[:2]
    total, count = 0.0, 0
    for y in range(max(box.y0, 0), min(box.y0 + box.side, h)):
        for x in range(max(box.x0, 0), min(box.x0 + box.side, w)):
            for c in range(3):
                total += abs(int(current[y, x, c]) - int(previous[y, x, c]))
                count += 1
    return total / count


def test_frame_change_and_flicker_ratio(astronaut, astronaut_landmarks):
    rng = np.random.default_rng(0)
    frames = [np.clip(astronaut.astype(int) + k, 0, 255).astype(np.uint8) for k in range(4)]  # +1 level a frame
    noisy = [np.clip(f.astype(int) + rng.integers(-4, 5, f.shape), 0, 255).astype(np.uint8) for f in frames]
    change = FrameChange()
    expected_o, expected_d = [], []
    for t in range(1, 4):
        landmarks = astronaut_landmarks + [t, 0]  # the box at t
        change.add(7, (frames[t - 1], noisy[t - 1]), (frames[t], noisy[t]), landmarks)
        expected_o.append(_box_change(frames[t - 1], frames[t], landmarks))
        expected_d.append(_box_change(noisy[t - 1], noisy[t], landmarks))
    pairs, orig, deid, ratio = change.scores(7)
    assert pairs == 3
    assert orig == pytest.approx(np.mean(expected_o)) and deid == pytest.approx(np.mean(expected_d))
    assert ratio == pytest.approx(deid / orig) and ratio > 1.5  # the noise flickers
    assert change.scores(8) == (0, None, None, None)
    same = FrameChange()
    same.add(0, (frames[0], frames[0]), (frames[1], frames[1]), astronaut_landmarks)
    assert same.scores(0)[3] == 1.0
    still = FrameChange()
    still.add(0, (frames[0], noisy[0]), (frames[0], noisy[1]), astronaut_landmarks)
    assert still.scores(0)[1] == 0.0 and still.scores(0)[3] is None  # no change in the original: no ratio


def test_box_outside_the_frame_is_skipped(astronaut, astronaut_landmarks):
    change = FrameChange()
    change.add(0, (astronaut, astronaut), (astronaut, astronaut), astronaut_landmarks + 5000)
    assert change.scores(0)[0] == 0


def test_track_frame_changes_needs_the_track_in_both_frames(astronaut, astronaut_landmarks):
    change = FrameChange()
    pair = (astronaut, astronaut)
    track_frame_changes(change, None, pair, {0: astronaut_landmarks}, {})
    track_frame_changes(change, pair, pair, {0: astronaut_landmarks, 1: astronaut_landmarks}, {0: astronaut_landmarks})
    assert change.scores(0)[0] == 1 and change.scores(1)[0] == 0


@pytest.mark.parametrize(("hz", "inside"), [(0.2, False), (0.9, True), (1.5, True), (3.5, True), (6.0, False)])
def test_band_rms_of_a_sinusoid(hz, inside):
    t = np.arange(int(20 * FS)) / FS
    amplitude = 0.8
    trace = 100 + amplitude * np.sin(2 * np.pi * hz * t) + 0.01 * t  # a slow drift, removed first
    rms = band_rms(trace, FS)
    if inside:
        assert rms == pytest.approx(amplitude / np.sqrt(2), rel=0.02)
    else:
        assert rms < 0.05 * amplitude
    assert band_rms(trace[: int(FS)], FS) is None  # under 2 s
    assert band_rms(trace, 6.0, FLICKER_BAND_HZ) is not None and band_rms(trace, 1.2) is None  # band above Nyquist


def test_added_band_power_sees_flicker_not_in_the_original():
    rng = np.random.default_rng(1)
    t = np.arange(int(20 * FS)) / FS
    pulse = 0.5 * np.sin(2 * np.pi * 1.2 * t)
    original = np.stack([150 + 0.3 * pulse, 100 + pulse, 80 + 0.2 * pulse], axis=1) + rng.normal(0, 0.05, (t.size, 3))
    assert added_band_power(original, original, FS) == (0.0, pytest.approx(band_rms(original, FS)), 0.0)
    flicker = 0.4 * np.sin(2 * np.pi * 2.0 * t)
    deid = original + flicker[:, None]  # the same flicker in all three channels
    added, base, ratio = added_band_power(original, deid, FS)
    assert added == pytest.approx(np.sqrt(3) * 0.4 / np.sqrt(2), rel=0.02)
    assert ratio == pytest.approx((added / base) ** 2)
    gappy = deid.copy()
    gappy[100:110] = np.nan  # frames without skin: filled as the pulse measurement does
    assert added_band_power(original, gappy, FS)[0] == pytest.approx(added, rel=0.05)
    assert added_band_power(original, np.full_like(deid, np.nan), FS) == (None, None, None)


def test_temporal_scores_shape(astronaut, astronaut_landmarks):
    change = FrameChange()
    change.add(3, (astronaut, astronaut), (astronaut, astronaut), astronaut_landmarks)
    rgb = np.full((90, 3), 100.0)
    scores = temporal_scores(change, 3, rgb, rgb, FS)
    assert scores == {
        "frames": 1, "change_orig": 0.0, "change_deid": 0.0, "flicker_ratio": None, "band_hz": [0.7, 4.0],
        "added_band_rms": 0.0, "orig_band_rms": pytest.approx(0.0, abs=1e-9), "added_band_power_ratio": None,
    }
