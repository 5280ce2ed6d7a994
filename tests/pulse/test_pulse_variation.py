"""The pulse-band relative variation in time, and when a track can carry one."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.pulse.variation import MIN_TRACK_SECONDS, band_problem, relative_variation

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


def test_band_problem_says_why_a_track_cannot_carry_a_pulse():
    assert band_problem(np.arange(int(3 * FS)) / FS) is None
    short = band_problem(np.arange(int(1.5 * FS)) / FS)
    assert short is not None and f"shorter than {MIN_TRACK_SECONDS:g} s" in short
    assert "shorter" in band_problem(np.array([0.5]))
    assert "does not fit" in band_problem(np.arange(30) / 1.0)  # 1 frame/s: the band is above Nyquist
