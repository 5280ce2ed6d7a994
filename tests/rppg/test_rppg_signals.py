"""RGB traces, gap filling, VFR resampling and ground-truth readers."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.errors import BadInputError
from deidvid.rppg import ground_truth, hr, methods, signals
from deidvid.rppg.metrics import snr_db
from deidvid.faces.skin import SkinRegion
from deidvid.testing.synthetic_pulse import PBV_SIGNATURE, SKIN_RGB, pulse_waveform


def test_masked_mean_rgb_plain_and_region():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    mask = np.zeros((40, 50), dtype=bool)
    mask[10:20, 5:30] = True
    mask[12, 40] = True
    expected = frame[mask].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(signals.masked_mean_rgb(frame, mask), expected)
    region = SkinRegion(y0=10, x0=5, mask=mask[10:41, 5:51])
    np.testing.assert_allclose(signals.masked_mean_rgb(frame, region), expected)
    assert np.isnan(signals.masked_mean_rgb(frame, np.zeros_like(mask))).all()
    with pytest.raises(ValueError):
        signals.masked_mean_rgb(frame, mask[:10])


def test_masked_mean_series_with_one_or_many_masks():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(6, 8, 9, 3), dtype=np.uint8)
    masks = rng.uniform(size=(6, 8, 9)) > 0.5
    masks[2] = False
    out = signals.masked_mean_rgb_series(frames, masks)
    for t in range(6):
        np.testing.assert_allclose(out[t], signals.masked_mean_rgb(frames[t], masks[t]))
    shared = signals.masked_mean_rgb_series(frames, masks[0])
    np.testing.assert_allclose(shared[3], signals.masked_mean_rgb(frames[3], masks[0]))


def test_fill_gaps():
    trace = np.array([[np.nan, 1.0], [2.0, 2.0], [np.nan, np.nan], [4.0, 6.0], [np.nan, 0.0]])
    filled = signals.fill_gaps(trace)
    np.testing.assert_allclose(filled, [[2, 2], [2, 2], [3, 4], [4, 6], [4, 6]])
    with pytest.raises(ValueError):
        signals.fill_gaps(np.full((3, 3), np.nan))


def test_vfr_trace_resampled_gives_the_right_rate():
    """Uneven frame times (like a 22.13 fps VFR clip): resample, then POS finds the HR."""
    rng = np.random.default_rng(3)
    bpm = 84.0
    intervals = rng.uniform(0.025, 0.065, size=900)
    times = np.concatenate([[0.0], np.cumsum(intervals)])
    assert not signals.is_uniform(times)
    pulse = pulse_waveform(times, bpm)
    rgb = SKIN_RGB * (1 + 0.01 * pulse[:, None] * PBV_SIGNATURE)
    rgb = rgb + rng.normal(0, 0.2, (times.size, 3))
    even, grid, fs = signals.resample_uniform(rgb, times)
    assert fs == pytest.approx(signals.nominal_rate(times))
    assert signals.is_uniform(grid, tolerance=1e-6)
    assert grid[0] == times[0] and grid[-1] <= times[-1]
    estimate = hr.heart_rate(methods.pos(even, fs), fs)
    assert abs(estimate - bpm) <= hr.frequency_resolution_bpm(even.shape[0], fs) / 2 + 1e-9
    # Treating the uneven samples as even smears the pulse: lower SNR.
    snr_resampled = snr_db(methods.pos(even, fs), fs, bpm)
    snr_naive = snr_db(methods.pos(rgb, fs), fs, bpm)
    assert snr_resampled > snr_naive + 2.0


def test_resample_uniform_is_exact_for_linear_signals_and_checks_input():
    times = np.array([0.0, 0.1, 0.25, 0.3, 0.5])
    values = 3 * times + 1
    out, grid, fs = signals.resample_uniform(values, times, fs=20.0)
    np.testing.assert_allclose(grid, np.arange(11) / 20.0)
    np.testing.assert_allclose(out, 3 * grid + 1)
    assert fs == 20.0
    with pytest.raises(ValueError):
        signals.resample_uniform(values, times[::-1])
    with pytest.raises(ValueError):
        signals.resample_uniform(values[:3], times)


# ------------------------------------------------------------------ ground truth


def test_read_ubfc_ground_truth(tmp_path):
    ppg = np.sin(np.arange(10) / 3)
    path = tmp_path / "ground_truth.txt"
    rows = np.stack([ppg, np.full(10, 75.0), np.arange(10) * 0.033])
    np.savetxt(path, rows, fmt="%.7e", delimiter="  ")
    truth = ground_truth.read_ground_truth(path)
    assert truth.per_frame
    np.testing.assert_allclose(truth.ppg, ppg, rtol=1e-6)
    np.testing.assert_allclose(truth.hr_bpm, 75.0)
    at_frames = ground_truth.ppg_at_frames(truth, np.arange(12) / 30)
    np.testing.assert_allclose(at_frames[:10], ppg, rtol=1e-6)
    assert np.isnan(at_frames[10:]).all()


def test_read_csv_with_and_without_header(tmp_path):
    times = np.arange(0, 5, 0.01)
    ppg = np.sin(2 * np.pi * times)
    with_header = tmp_path / "a.csv"
    with_header.write_text("time,ppg\n" + "\n".join(f"{t},{v}" for t, v in zip(times, ppg)))
    plain = tmp_path / "b.csv"
    plain.write_text("\n".join(f"{t + 100}; {v}" for t, v in zip(times, ppg)) + "\n")
    for path in (with_header, plain):
        truth = ground_truth.read_ground_truth(path)
        assert not truth.per_frame and truth.ppg.size == times.size
        frame_times = 7.0 + np.arange(0, 6, 1 / 30)  # video clock starts elsewhere
        sampled = ground_truth.ppg_at_frames(truth, frame_times)
        covered = np.isfinite(sampled)
        assert covered.sum() == np.sum(frame_times - 7.0 <= times[-1] + 1e-9)
        np.testing.assert_allclose(
            sampled[covered], np.sin(2 * np.pi * (frame_times[covered] - 7.0)), atol=2e-3
        )


def test_bad_ground_truth_files(tmp_path):
    with pytest.raises(BadInputError):
        ground_truth.read_ground_truth(tmp_path / "missing.txt")
    bad = tmp_path / "bad.csv"
    bad.write_text("time,ppg\n0,1\n0.1,oops\n")
    with pytest.raises(BadInputError, match="not a number"):
        ground_truth.read_ground_truth(bad)
    backwards = tmp_path / "back.csv"
    backwards.write_text("1,0\n0,1\n")
    with pytest.raises(BadInputError, match="increase"):
        ground_truth.read_ground_truth(backwards)
    short = tmp_path / "gt.txt"
    short.write_text("1 2 3\n")
    with pytest.raises(BadInputError):
        ground_truth.read_ground_truth(short)


def test_ubfc_files_read(shared_data):
    for path in sorted((shared_data / "ubfc").glob("subject*/ground_truth.txt")):
        truth = ground_truth.read_ubfc_ground_truth(path)
        assert truth.ppg.size == truth.hr_bpm.size == truth.times.size > 1000
        # The contact PPG's own 10 s FFT HR mostly agrees with the oximeter's HR
        # (which lags and smooths: single windows can differ by 20 bpm).
        fs = signals.nominal_rate(truth.times)
        bounds = hr.window_bounds(truth.ppg.size, fs, 10.0)
        oximeter = np.array([truth.hr_bpm[start:stop].mean() for start, stop in bounds])
        from_ppg = hr.heart_rate_windows(truth.ppg, fs, 10.0)
        assert np.median(np.abs(from_ppg - oximeter)) < 10
