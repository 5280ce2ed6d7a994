"""deidvid.rppg.hr against re-implementations of rPPG-Toolbox's evaluation code.

Reference: ubicomplab/rPPG-Toolbox ``evaluation/post_process.py`` (``_detrend``,
``_next_power_of_2``, ``_calculate_fft_hr``, the detrend + 1st-order filtfilt in
``calculate_metric_per_video``), rewritten here in the same dense, literal form.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal, sparse

from deidvid.rppg import hr
from deidvid.testing.synthetic_pulse import pulse_waveform


# ----------------------------------------------------------------- references


def ref_next_power_of_2(x):
    return 1 if x == 0 else 2 ** (x - 1).bit_length()


def ref_detrend(input_signal, lambda_value):
    n = input_signal.shape[0]
    identity = np.identity(n)
    ones = np.ones(n)
    diags = np.array([ones, -2 * ones, ones])
    second = sparse.spdiags(diags, np.array([0, 1, 2]), n - 2, n).toarray()
    inverse = np.linalg.inv(identity + (lambda_value**2) * second.T @ second)
    return (identity - inverse) @ input_signal


def ref_fft_hr(ppg, fs, low_pass=0.75, high_pass=2.5):
    ppg = np.expand_dims(ppg, 0)
    nfft = ref_next_power_of_2(ppg.shape[1])
    f_ppg, pxx_ppg = signal.periodogram(ppg, fs=fs, nfft=nfft, detrend=False)
    fmask = np.argwhere((f_ppg >= low_pass) & (f_ppg <= high_pass))
    mask_ppg = np.take(f_ppg, fmask)
    mask_pxx = np.take(pxx_ppg, fmask)
    return np.take(mask_ppg, np.argmax(mask_pxx, 0))[0] * 60


def ref_hr_pipeline(x, fs, low_pass=0.75, high_pass=2.5):
    x = ref_detrend(x, 100)
    b, a = signal.butter(1, [low_pass / fs * 2, high_pass / fs * 2], btype="bandpass")
    x = signal.filtfilt(b, a, np.double(x))
    return ref_fft_hr(x, fs, low_pass, high_pass), x


# ----------------------------------------------------------------- tests


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 64, 65, 300, 1024, 1801])
def test_next_power_of_2(n):
    assert hr.next_power_of_2(n) == ref_next_power_of_2(n)


@pytest.mark.parametrize("n", [3, 4, 10, 97, 300, 901])
@pytest.mark.parametrize("lam", [10.0, 100.0])
def test_detrend_matches_dense_reference(n, lam):
    rng = np.random.default_rng(n)
    x = np.cumsum(rng.normal(size=n)) + np.linspace(0, 5, n)
    expected = ref_detrend(x, lam)
    np.testing.assert_allclose(hr.detrend(x, lam), expected, rtol=1e-7, atol=1e-8)


def test_detrend_batched_rows_match_single():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3, 120)).cumsum(axis=-1)
    out = hr.detrend(x)
    for index in np.ndindex(4, 3):
        np.testing.assert_allclose(out[index], hr.detrend(x[index]), atol=1e-12)


@pytest.mark.parametrize("fs", [25.0, 29.55, 30.0, 60.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heart_rate_matches_toolbox(fs, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(20 * fs)) / fs
    bpm = rng.uniform(50, 140)
    x = pulse_waveform(t, bpm) + rng.normal(0, 1.0, t.size) + 0.05 * t**1.5
    expected_hr, expected_filtered = ref_hr_pipeline(x, fs)
    np.testing.assert_allclose(hr.preprocess(x, fs), expected_filtered, rtol=1e-6, atol=1e-9)
    assert hr.heart_rate(x, fs) == pytest.approx(expected_hr, abs=1e-9)


def test_heart_rate_band_is_configurable():
    fs = 30.0
    t = np.arange(600) / fs
    x = np.sin(2 * np.pi * 2.9 * t)  # 174 bpm: outside 0.75-2.5 Hz
    expected, _ = ref_hr_pipeline(x, fs, 0.6, 3.3)
    assert hr.heart_rate(x, fs, band_hz=(0.6, 3.3)) == pytest.approx(expected)
    resolution = hr.frequency_resolution_bpm(600, fs)
    assert abs(hr.heart_rate(x, fs, band_hz=(0.6, 3.3)) - 174) <= resolution
    assert hr.heart_rate(x, fs) <= 150.0


@pytest.mark.parametrize("bpm", [45, 52, 60, 72, 90, 110, 130, 150, 160])
@pytest.mark.parametrize("fs", [25.0, 30.0])
def test_known_rate_recovered_within_fft_resolution(bpm, fs):
    band = (0.6, 3.3) if bpm > 150 else hr.DEFAULT_BAND_HZ
    rng = np.random.default_rng(bpm)
    t = np.arange(int(30 * fs)) / fs
    x = pulse_waveform(t, bpm) + rng.normal(0, 0.5, t.size)
    resolution = hr.frequency_resolution_bpm(t.size, fs)
    assert abs(hr.heart_rate(x, fs, band) - bpm) <= resolution / 2 + 1e-9


def test_window_bounds():
    assert hr.window_bounds(100, 10.0, 3.0) == [(0, 30), (30, 60), (60, 90)]
    assert hr.window_bounds(110, 10.0, 3.0) == [(0, 30), (30, 60), (60, 90), (90, 110)]
    assert hr.window_bounds(95, 10.0, 3.0, min_fraction=0.0) == [(0, 30), (30, 60), (60, 90)]
    assert hr.window_bounds(100, 10.0, None) == [(0, 100)]
    assert hr.window_bounds(5, 10.0, None) == []
    with pytest.raises(ValueError):
        hr.window_bounds(100, 10.0, 0.5)


def test_heart_rate_windows_track_a_changing_rate():
    fs = 30.0
    rates = [60.0, 90.0, 120.0]
    t = np.arange(int(10 * fs)) / fs
    x = np.concatenate([np.sin(2 * np.pi * r / 60 * t) for r in rates])
    out = hr.heart_rate_windows(x, fs, window_s=10.0)
    assert out.shape == (3,)
    resolution = hr.frequency_resolution_bpm(t.size, fs)
    np.testing.assert_array_less(np.abs(out - rates), resolution)
    for (start, stop), value in zip(hr.window_bounds(x.size, fs, 10.0), out):
        assert value == pytest.approx(ref_hr_pipeline(x[start:stop], fs)[0])


def test_bad_band_raises():
    with pytest.raises(ValueError):
        hr.heart_rate(np.random.default_rng(0).normal(size=100), 4.0)  # 2.5 Hz >= Nyquist
