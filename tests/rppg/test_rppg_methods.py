"""POS, CHROM and GREEN against loop-form re-implementations of rPPG-Toolbox.

References: ubicomplab/rPPG-Toolbox ``unsupervised_methods/methods/POS_WANG.py``,
``CHROME_DEHAAN.py``, ``GREEN.py`` and ``unsupervised_methods/utils.py`` (detrend with
pinv), transcribed loop by loop (``np.mat`` replaced by 2-D arrays).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal, sparse

from deidvid.rppg import hr, methods
from deidvid.rppg.metrics import snr_db
from deidvid.testing.synthetic_pulse import synthetic_rgb_trace

# ----------------------------------------------------------------- references


def ref_utils_detrend(input_signal, lambda_value):
    n = input_signal.shape[0]
    identity = np.identity(n)
    ones = np.ones(n)
    second = sparse.spdiags(np.array([ones, -2 * ones, ones]), np.array([0, 1, 2]), n - 2, n)
    second = second.toarray()
    smoother = np.linalg.pinv(identity + lambda_value**2 * second.T @ second)
    return (identity - smoother) @ input_signal


def ref_pos_wang(rgb, fs, lpf=0.75, hpf=3.0, win_sec=1.6):
    n = rgb.shape[0]
    h_total = np.zeros((1, n))
    length = math.ceil(win_sec * fs)
    for k in range(n):
        m = k - length
        if m >= 0:
            cn = np.true_divide(rgb[m:k, :], np.mean(rgb[m:k, :], axis=0)).T  # (3, l)
            s = np.array([[0, 1, -1], [-2, 1, 1]]) @ cn
            h = s[0, :] + (np.std(s[0, :]) / np.std(s[1, :])) * s[1, :]
            h = h - np.mean(h)
            h_total[0, m:k] = h_total[0, m:k] + h
    bvp = ref_utils_detrend(h_total.T, 100).T[0]
    b, a = signal.butter(1, [lpf / fs * 2, hpf / fs * 2], btype="bandpass")
    return signal.filtfilt(b, a, bvp.astype(np.double))


def ref_chrome_dehaan(rgb, fs):
    lpf, hpf, win_sec = 0.7, 2.5, 1.6
    fn = rgb.shape[0]
    nyquist = 1 / 2 * fs
    b, a = signal.butter(3, [lpf / nyquist, hpf / nyquist], "bandpass")
    win_l = math.ceil(win_sec * fs)
    if win_l % 2:
        win_l = win_l + 1
    n_win = math.floor((fn - win_l // 2) / (win_l // 2))
    win_s = 0
    win_m = int(win_s + win_l // 2)
    win_e = win_s + win_l
    total = (win_l // 2) * (n_win + 1)
    s = np.zeros(total)
    for _ in range(n_win):
        base = np.mean(rgb[win_s:win_e, :], axis=0)
        norm = np.zeros((win_e - win_s, 3))
        for t in range(win_s, win_e):
            norm[t - win_s] = np.true_divide(rgb[t], base)
        xs = np.squeeze(3 * norm[:, 0] - 2 * norm[:, 1])
        ys = np.squeeze(1.5 * norm[:, 0] + norm[:, 1] - 1.5 * norm[:, 2])
        xf = signal.filtfilt(b, a, xs, axis=0)
        yf = signal.filtfilt(b, a, ys)
        alpha = np.std(xf) / np.std(yf)
        s_win = (xf - alpha * yf) * signal.windows.hann(win_l)
        s[win_s:win_m] = s[win_s:win_m] + s_win[: int(win_l // 2)]
        s[win_m:win_e] = s_win[int(win_l // 2) :]
        win_s = win_m
        win_m = win_s + win_l // 2
        win_e = win_s + win_l
    return s


# ----------------------------------------------------------------- tests


def _trace(seed, seconds=12.0, fs=30.0):
    rng = np.random.default_rng(seed)
    return synthetic_rgb_trace(
        rng.uniform(50, 140), seconds, fs, amplitude=0.01, noise=0.5, drift=0.05, seed=seed
    )


@pytest.mark.parametrize("fs", [25.0, 29.55, 30.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_pos_matches_toolbox(fs, seed):
    rgb = _trace(seed, fs=fs)
    expected = ref_pos_wang(rgb, fs)
    got = methods.pos(rgb, fs)
    assert got.shape == (rgb.shape[0],)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("fs", [25.0, 29.55, 30.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_chrom_matches_toolbox(fs, seed):
    rgb = _trace(seed, fs=fs)
    expected = ref_chrome_dehaan(rgb, fs)
    got = methods.chrom(rgb, fs)
    assert got.shape == expected.shape == (methods.chrom_length(rgb.shape[0], fs),)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_chrom_whole_clip_variant_is_full_length_single_window():
    fs = 30.0
    rgb = _trace(3, seconds=4.0)
    got = methods.chrom(rgb, fs, window_s=None)
    assert got.shape == (rgb.shape[0],)
    # Literal single-window CHROM: normalise, project, band-pass, combine (no Hann).
    norm = rgb / rgb.mean(axis=0)
    b, a = signal.butter(3, [0.7 / 15, 2.5 / 15], "bandpass")
    xf = signal.filtfilt(b, a, 3 * norm[:, 0] - 2 * norm[:, 1])
    yf = signal.filtfilt(b, a, 1.5 * norm[:, 0] + norm[:, 1] - 1.5 * norm[:, 2])
    np.testing.assert_allclose(got, xf - np.std(xf) / np.std(yf) * yf, atol=1e-12)


def test_green_is_the_green_trace():
    rgb = _trace(4)
    np.testing.assert_array_equal(methods.green(rgb), rgb[:, 1])


def test_rppg_signal_dispatch_and_errors():
    rgb = _trace(5)
    np.testing.assert_array_equal(methods.rppg_signal("POS", rgb, 30.0), methods.pos(rgb, 30.0))
    with pytest.raises(ValueError, match="unknown rPPG method"):
        methods.rppg_signal("ica", rgb, 30.0)
    bad = rgb.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        methods.pos(bad, 30.0)


def test_flat_trace_gives_zero_not_nan():
    rgb = np.full((200, 3), 100.0)
    assert np.all(methods.pos(rgb, 30.0) == 0)
    assert np.all(methods.chrom(rgb, 30.0) == 0)


@pytest.mark.parametrize("bpm", [45, 55, 70, 90, 110, 130, 150, 160])
@pytest.mark.parametrize("method", ["pos", "chrom", "green"])
def test_injected_pulse_rate_recovered(method, bpm):
    """Known pulse at 45-160 bpm -> HR within half an FFT bin (0.88 bpm at 20 s, 30 fps)."""
    fs = 30.0
    band = (0.6, 3.3) if bpm > 150 else hr.DEFAULT_BAND_HZ  # 160 bpm is above 2.5 Hz
    # A weak 2nd harmonic: POS/CHROM's 1.6 s windows damp a 45 bpm fundamental
    # (period 1.33 s) enough that a strong harmonic would win.
    rgb = synthetic_rgb_trace(bpm, 20.0, fs, amplitude=0.01, noise=0.3, seed=bpm, harmonic=0.15)
    pulse = methods.rppg_signal(method, rgb, fs)
    resolution = hr.frequency_resolution_bpm(pulse.size, fs)
    assert abs(hr.heart_rate(pulse, fs, band) - bpm) <= resolution / 2 + 1e-9


@pytest.mark.parametrize("method", ["pos", "chrom", "green"])
@pytest.mark.parametrize("bpm", [60, 100, 140])
def test_snr_higher_with_pulse_than_without(method, bpm):
    fs = 30.0
    with_pulse = synthetic_rgb_trace(bpm, 20.0, fs, seed=7)
    without = synthetic_rgb_trace(None, 20.0, fs, seed=7)
    snr_with = snr_db(methods.rppg_signal(method, with_pulse, fs), fs, bpm)
    snr_without = snr_db(methods.rppg_signal(method, without, fs), fs, bpm)
    assert snr_with > snr_without + 6.0
    assert snr_with > 0.0
