"""Pass 1: region means, the pulse-band relative variation, the track recorder."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.pulse.measure import (
    MIN_TRACK_SECONDS,
    TrackPulse,
    TrackPulseRecorder,
    region_means,
    relative_variation,
)
from deidvid.pulse.regions import REGION_NAMES, region_masks

FS = 30.0
BPM = 72.0


def _fit_sinusoid(x: np.ndarray, t: np.ndarray, hz: float) -> tuple[float, float]:
    """Least-squares amplitude and phase of ``a sin(2 pi hz t + phase)`` in ``x``."""
    design = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t)], axis=1)
    (s, c), *_ = np.linalg.lstsq(design, x, rcond=None)
    return float(np.hypot(s, c)), float(np.arctan2(c, s))


def _pulse_means(t: np.ndarray, amplitude=(0.002, 0.005, 0.0015), phase=0.7, drift=0.0):
    """Region means (T, 5, 3): a baseline x (1 + drift) x (1 + pulse), per channel."""
    base = np.array([0.30, 0.12, 0.07]) * np.linspace(0.8, 1.2, 5)[:, None]  # (R, 3)
    wave = np.sin(2 * np.pi * BPM / 60 * t + phase)
    pulse = wave[:, None, None] * np.asarray(amplitude)[None, None, :]
    slow = 1.0 + drift * np.sin(2 * np.pi * 0.1 * t + 0.4)
    means = base[None] * slow[:, None, None] * (1.0 + pulse)
    return means, np.broadcast_to(pulse, means.shape)


# ----------------------------------------------------------------------------- region_means


@pytest.fixture(scope="module")
def face_frame(syn):
    lm = syn.landmarks_in(300) + np.array([480.0, 160.0])  # a ~190 px face in 720p
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    return frame, lm


def test_region_means_equal_a_naive_masked_mean(face_frame):
    frame, lm = face_frame
    got = region_means(frame, lm)
    masks = region_masks(lm, frame.shape[:2])  # full-frame masks
    linear = (frame.astype(np.float64) / 255.0) ** 2.2
    expected = np.stack([linear[m].mean(axis=0) for m in masks])
    assert got.shape == (len(REGION_NAMES), 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_region_means_nan_where_the_face_leaves_the_frame(face_frame):
    frame, lm = face_frame
    lm = lm - np.array([lm[31, 0] + 1.0, 0.0])  # the whole left cheek off the frame
    got = region_means(frame, lm)
    masks = region_masks(lm, frame.shape[:2])
    linear = (frame.astype(np.float64) / 255.0) ** 2.2
    for r, mask in enumerate(masks):
        if mask.any():
            np.testing.assert_allclose(got[r], linear[mask].mean(axis=0), rtol=1e-6)
        else:
            assert np.isnan(got[r]).all()
    assert np.isnan(got[REGION_NAMES.index("left_cheek")]).all()
    assert np.isfinite(got[REGION_NAMES.index("right_cheek")]).all()
    assert np.isnan(region_means(frame, lm - 5000.0)).all()  # face gone


def test_region_means_rejects_float_frames(face_frame):
    with pytest.raises(ValueError):
        region_means(face_frame[0].astype(np.float32), face_frame[1])


# ----------------------------------------------------------------------------- variation


def test_recovers_an_injected_72_bpm_pulse_with_amplitude_and_phase():
    t = np.arange(int(20 * FS)) / FS
    means, pulse = _pulse_means(t, drift=0.05)
    got = relative_variation(means, t)
    assert got.shape == means.shape
    for r in range(5):
        for c in range(3):
            r_coef = np.corrcoef(got[:, r, c], pulse[:, r, c])[0, 1]
            assert r_coef > 0.99
            amp, phase = _fit_sinusoid(got[:, r, c], t, BPM / 60)
            true_amp, true_phase = _fit_sinusoid(pulse[:, r, c], t, BPM / 60)
            assert amp == pytest.approx(true_amp, rel=0.03)
            assert abs(np.angle(np.exp(1j * (phase - true_phase)))) < 0.03  # zero phase


def test_track_ends_keep_the_beat():
    """RMS error over the first and last second, in units of the pulse amplitude."""
    t = np.arange(int(12 * FS)) / FS
    errors = []
    for phase in np.linspace(0, 2 * np.pi, 6, endpoint=False):
        means, pulse = _pulse_means(t, amplitude=(0.005, 0.005, 0.005), phase=phase, drift=0.05)
        err = relative_variation(means, t)[:, 0, 1] - pulse[:, 0, 1]
        second = int(FS)
        errors.append(np.sqrt(np.mean(np.r_[err[:second], err[-second:]] ** 2)) / 0.005)
    assert np.mean(errors) < 0.12, errors  # AR-predicted ends: ~0.07; mirrored: ~0.18


def test_rejects_out_of_band_drift_and_high_frequency_flicker():
    t = np.arange(int(20 * FS)) / FS
    drift = 0.3 * (1 + 0.05 * np.sin(2 * np.pi * 0.1 * t) + 0.02 * np.sin(2 * np.pi * 0.3 * t))
    out = relative_variation(drift[:, None], t)[:, 0]
    assert np.sqrt(np.mean(out**2)) < 0.01 * 0.05
    flicker = 0.3 * (1 + 0.01 * np.sin(2 * np.pi * 9.0 * t))
    out = relative_variation(flicker[:, None], t)[:, 0]
    assert np.sqrt(np.mean(out**2)) < 0.02 * 0.01
    # a multiplicative pulse on a 5 % drift still comes out at its own size
    means, pulse = _pulse_means(t, drift=0.05)
    out = relative_variation(means, t)
    assert np.abs(out - pulse).max() < 0.5 * np.abs(pulse).max()


def test_variable_frame_rate_is_filtered_in_time():
    rng = np.random.default_rng(3)
    intervals = rng.choice([1 / 30, 1 / 24, 1 / 15], size=500, p=[0.6, 0.3, 0.1])
    t = np.cumsum(intervals) + 10.0
    means, pulse = _pulse_means(t)
    got = relative_variation(means, t)
    for c in range(3):
        assert np.corrcoef(got[:, 2, c], pulse[:, 2, c])[0, 1] > 0.99
        amp, _ = _fit_sinusoid(got[:, 2, c], t, BPM / 60)
        assert amp == pytest.approx(_fit_sinusoid(pulse[:, 2, c], t, BPM / 60)[0], rel=0.05)
    # a camera that halves its rate in low light: 6 s at 30 fps, then 6 s at 15 fps.
    # A 132 bpm pulse read in frame-index time would look like 4.4 Hz in the second
    # half (out of band, lost); in seconds it stays 2.2 Hz.
    t2 = np.r_[np.arange(180) / 30.0, 6.0 + np.arange(90) / 15.0]
    wave = 0.004 * np.sin(2 * np.pi * 2.2 * t2)
    got = relative_variation((0.2 * (1 + wave))[:, None], t2)[:, 0]
    for half in (t2 < 6.0, t2 >= 6.0):
        inner = half & (t2 > 1.0) & (t2 < 11.0)
        assert np.corrcoef(got[inner], wave[inner])[0, 1] > 0.98
        assert _fit_sinusoid(got[inner], t2[inner], 2.2)[0] == pytest.approx(0.004, rel=0.15)
    # a slow drift sampled unevenly is still rejected
    drift = 0.3 * (1 + 0.05 * np.sin(2 * np.pi * 0.15 * t))
    assert np.sqrt(np.mean(relative_variation(drift[:, None], t) ** 2)) < 0.01 * 0.05


def test_nan_gaps_are_bridged_and_never_measured_series_give_zeros():
    t = np.arange(int(15 * FS)) / FS
    means, pulse = _pulse_means(t)
    gap = (t > 6.0) & (t < 6.5)
    means[gap] = np.nan
    means[::7, 3] = np.nan  # the nose is cut off now and then
    means[:, 4, :] = np.nan  # the chin is never seen
    got = relative_variation(means, t)
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got[:, 4], 0.0)
    away = (t < 5.0) | (t > 7.5)
    for r in range(4):
        assert np.corrcoef(got[away, r, 1], pulse[away, r, 1])[0, 1] > 0.99


# ----------------------------------------------------------------------------- recorder


def test_recorder_out_of_order_with_missing_frames():
    start, count = 100, int(12 * FS)
    t = np.arange(count) / FS + 3.0
    means, pulse = _pulse_means(t)
    rng = np.random.default_rng(1)
    order = rng.permutation(count)
    kept = order[: int(0.9 * count)]  # 10 % of frames never recorded
    recorder = TrackPulseRecorder()
    for i in kept:
        recorder.add(start + int(i), means[i])
    recorder.add(start + count + 50, means[0])  # outside the track: ignored
    assert len(recorder) == kept.size + 1
    track = recorder.finish(start, start + count, t)
    assert isinstance(track, TrackPulse) and track.valid and track.reason is None
    assert track.variation.shape == (count, 5, 3) and track.variation.dtype == np.float32
    assert (track.start, track.end) == (start, start + count)
    assembled = np.full_like(means, np.nan)
    assembled[kept] = means[kept]
    np.testing.assert_allclose(track.variation, relative_variation(assembled, t), atol=1e-7)
    assert np.corrcoef(track.variation[:, 1, 1], pulse[:, 1, 1])[0, 1] > 0.99
    # RMS of a sinusoid = amplitude / sqrt(2), per channel
    np.testing.assert_allclose(
        track.amplitude, np.array([0.002, 0.005, 0.0015]) / np.sqrt(2), rtol=0.05
    )
    window = track.frames(start + count - 10, 64)
    assert window.shape == (64, 5, 3)
    np.testing.assert_array_equal(window[:10], track.variation[-10:])
    np.testing.assert_array_equal(window[10:], 0.0)


def test_short_track_is_invalid_not_an_error():
    assert TrackPulse.MIN_TRACK_SECONDS == MIN_TRACK_SECONDS == 2.0
    t = np.arange(int(1.5 * FS)) / FS
    means, _ = _pulse_means(t)
    recorder = TrackPulseRecorder()
    for i, m in enumerate(means):
        recorder.add(i, m)
    track = recorder.finish(0, t.size, t)
    assert not track.valid and "shorter than 2.0 s" in track.reason
    assert track.variation.shape == (t.size, 5, 3) and not track.variation.any()
    one = TrackPulseRecorder()
    one.add(7, means[0])
    assert not one.finish(7, 8, np.array([0.5])).valid


def test_track_without_skin_is_invalid():
    t = np.arange(int(5 * FS)) / FS
    recorder = TrackPulseRecorder()
    for i in range(0, t.size, 5):  # only 20 % of the frames measured
        recorder.add(i, np.full((5, 3), 0.2))
    track = recorder.finish(0, t.size, t)
    assert not track.valid and "20%" in track.reason
    assert not TrackPulseRecorder().finish(0, t.size, t).valid


def test_end_to_end_from_uint8_frames(syn):
    """Pulse injected in linear light into a face, 8-bit frames with sensor noise."""
    size, count = 160, int(12 * FS)
    t = np.arange(count) / FS
    lm = syn.landmarks_in(size)
    base = syn.face_linear(lm, (size, size))
    face = syn.face_hull_mask(lm, (size, size))[..., None]
    wave = np.sin(2 * np.pi * BPM / 60 * t)
    rng = np.random.default_rng(5)
    recorder = TrackPulseRecorder()
    for i in range(count):
        linear = base * (1.0 + face * syn.PULSE_AMPLITUDE * wave[i])
        display = syn.to_display(linear) * 255 + rng.normal(0, 1.5, base.shape)
        frame = np.clip(np.round(display), 0, 255).astype(np.uint8)
        recorder.add(i, region_means(frame, lm + rng.normal(0, 0.2, lm.shape)))
    track = recorder.finish(0, count, t)
    assert track.valid
    for r in range(5):
        assert np.corrcoef(track.variation[:, r, 1], wave)[0, 1] > 0.95, REGION_NAMES[r]
    # the colour signature: green > red > blue, as injected
    amp = track.amplitude
    assert amp[1] > amp[0] > amp[2]
    np.testing.assert_allclose(amp[1], syn.PULSE_AMPLITUDE[1] / np.sqrt(2), rtol=0.15)
