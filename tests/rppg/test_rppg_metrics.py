"""Pulse metrics against rPPG-Toolbox re-implementations and scipy."""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import pytest
from scipy import signal, stats

from deidvid.rppg import hr, metrics
from deidvid.rppg.compare import PulseSettings, compare_pulses
from deidvid.testing.synthetic_pulse import pulse_waveform

# ------------------------------------------------ references (rPPG-Toolbox post_process.py)


def ref_compute_macc(pred_signal, gt_signal):
    pred = np.squeeze(deepcopy(pred_signal))
    gt = np.squeeze(deepcopy(gt_signal))
    min_len = np.min((len(pred), len(gt)))
    pred, gt = pred[:min_len], gt[:min_len]
    return max(
        np.abs(np.corrcoef(pred, np.roll(gt, lag))[0][1]) for lag in np.arange(0, len(pred) - 1, 1)
    )


def ref_calculate_snr(pred_ppg_signal, hr_label, fs=30, low_pass=0.75, high_pass=2.5):
    first = hr_label / 60
    second = 2 * first
    deviation = 6 / 60
    pred = np.expand_dims(pred_ppg_signal, 0)
    nfft = 1 if pred.shape[1] == 0 else 2 ** (pred.shape[1] - 1).bit_length()
    f_ppg, pxx = signal.periodogram(pred, fs=fs, nfft=nfft, detrend=False)
    idx1 = np.argwhere((f_ppg >= (first - deviation)) & (f_ppg <= (first + deviation)))
    idx2 = np.argwhere((f_ppg >= (second - deviation)) & (f_ppg <= (second + deviation)))
    idx_rem = np.argwhere(
        (f_ppg >= low_pass)
        & (f_ppg <= high_pass)
        & ~((f_ppg >= (first - deviation)) & (f_ppg <= (first + deviation)))
        & ~((f_ppg >= (second - deviation)) & (f_ppg <= (second + deviation)))
    )
    pxx = np.squeeze(pxx)
    power_signal = np.sum(pxx[idx1]) + np.sum(pxx[idx2])
    power_rest = np.sum(pxx[idx_rem])
    return 10 * np.log10(power_signal / power_rest) if power_rest != 0 else 0


# ----------------------------------------------------------------- tests


def _noisy_pulse(bpm, seconds=10.0, fs=30.0, noise=0.7, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    return pulse_waveform(t, bpm) + rng.normal(0, noise, t.size)


@pytest.mark.parametrize("seed", range(4))
def test_pearson_and_hr_errors_match_scipy(seed):
    rng = np.random.default_rng(seed)
    reference = rng.uniform(55, 120, size=12)
    estimated = reference + rng.normal(0, 4, size=12)
    errors = metrics.hr_errors(estimated, reference)
    assert errors.mae == pytest.approx(np.mean(np.abs(estimated - reference)))
    assert errors.rmse == pytest.approx(np.sqrt(np.mean((estimated - reference) ** 2)))
    assert errors.mape == pytest.approx(np.mean(np.abs(estimated - reference) / reference) * 100)
    assert errors.pearson == pytest.approx(stats.pearsonr(estimated, reference)[0])
    assert errors.count == 12


def test_hr_errors_edge_cases():
    one = metrics.hr_errors([70.0], [72.0])
    assert one.mae == 2.0 and np.isnan(one.pearson)
    empty = metrics.hr_errors([], [])
    assert empty.count == 0 and np.isnan(empty.mae)
    same = metrics.hr_errors([60.0, 70.0], [60.0, 70.0])
    assert same.mae == 0 and same.rmse == 0 and same.pearson == pytest.approx(1.0)
    assert np.isnan(metrics.pearson(np.ones(5), np.arange(5.0)))


@pytest.mark.parametrize("seed", range(3))
def test_macc_circular_matches_toolbox(seed):
    x = _noisy_pulse(75, seconds=4, seed=seed)
    y = _noisy_pulse(75, seconds=4, seed=seed + 10)
    assert metrics.macc_circular(x, y) == pytest.approx(ref_compute_macc(x, y), rel=1e-10)


def test_macc_bounded_lag_finds_shift_and_respects_bound():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    shifted = np.concatenate([rng.normal(size=5), x[:-5]])  # y[i] = x[i - 5]
    assert metrics.macc(x, shifted, max_lag=10) == pytest.approx(1.0)
    assert metrics.macc(x, -shifted, max_lag=10) == pytest.approx(1.0)
    assert metrics.macc(x, shifted, max_lag=3) < 0.3
    # Zero lag bound is |Pearson|.
    assert metrics.macc(x, shifted, max_lag=0) == pytest.approx(abs(metrics.pearson(x, shifted)))
    # Bruteforce over lags agrees.
    brute = max(
        abs(stats.pearsonr(x[k:], shifted[: 400 - k])[0]) if k >= 0
        else abs(stats.pearsonr(x[: 400 + k], shifted[-k:])[0])
        for k in range(-7, 8)
    )
    assert metrics.macc(x, shifted, max_lag=7) == pytest.approx(brute)


@pytest.mark.parametrize("bpm", [55, 80, 120])
@pytest.mark.parametrize("seed", range(2))
def test_snr_matches_toolbox(bpm, seed):
    fs = 30.0
    filtered = hr.preprocess(_noisy_pulse(bpm, fs=fs, seed=seed), fs)
    label = bpm + 3.0
    got = metrics.snr_db(filtered, fs, label, filtered=True)
    assert got == pytest.approx(ref_calculate_snr(filtered, label, fs=fs), rel=1e-10)


def test_snr_orders_clean_above_noisy():
    clean = metrics.snr_db(_noisy_pulse(90, noise=0.1), 30.0, 90)
    noisy = metrics.snr_db(_noisy_pulse(90, noise=2.0), 30.0, 90)
    noise_only = metrics.snr_db(np.random.default_rng(0).normal(size=300), 30.0, 90)
    assert clean > noisy > noise_only


def test_spectral_similarity_properties():
    fs = 30.0
    x = _noisy_pulse(72, noise=0.2, seed=1)
    assert metrics.spectral_similarity(x, x, fs) == pytest.approx(1.0)
    assert metrics.spectral_similarity(x, 3 * x + 5, fs) == pytest.approx(1.0)  # scale-free
    same_rate = metrics.spectral_similarity(x, _noisy_pulse(72, noise=0.2, seed=2), fs)
    other_rate = metrics.spectral_similarity(x, _noisy_pulse(130, noise=0.2, seed=2), fs)
    assert same_rate > 0.9 > 0.2 > other_rate
    # Literal definition: cosine of band-limited periodograms.
    y = _noisy_pulse(90, noise=1.0, seed=3)
    f, px = signal.periodogram(x - x.mean(), fs, nfft=512, detrend=False)
    _, py = signal.periodogram(y - y.mean(), fs, nfft=512, detrend=False)
    band = (f >= 0.7) & (f <= 3.0)
    cosine = px[band] @ py[band] / np.linalg.norm(px[band]) / np.linalg.norm(py[band])
    assert metrics.spectral_similarity(x, y, fs) == pytest.approx(cosine)


def test_compare_pulses_identical_and_different():
    fs = 30.0
    reference = _noisy_pulse(80, seconds=60, noise=0.5, seed=0)
    same = compare_pulses(reference, reference, fs, window_s=10.0)
    summary = same.summary()
    assert summary["windows"] == 6
    assert summary["hr_mae"] == 0 and summary["hr_rmse"] == 0
    assert summary["pearson"] == pytest.approx(1.0)
    assert summary["macc"] == pytest.approx(1.0)
    assert summary["spectral_similarity"] == pytest.approx(1.0)
    assert summary["snr_test_db"] == pytest.approx(summary["snr_reference_db"])

    other = compare_pulses(_noisy_pulse(120, seconds=60, seed=1), reference, fs, window_s=30.0)
    assert other.summary()["windows"] == 2
    assert other.summary()["hr_mae"] > 30
    assert abs(other.summary()["pearson"]) < 0.3
    np.testing.assert_allclose(other.hr_reference_bpm, 80, atol=2)
    d = other.as_dict()
    assert set(d) == {"summary", "windows"} and len(d["windows"]) == 2
    assert PulseSettings().as_dict()["band_hz"] == (0.75, 2.5)
