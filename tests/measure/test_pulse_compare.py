"""``deidvid.measure.pulse``: skin traces per track and the rPPG comparison of two videos' traces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deidvid.faces.skin import skin_mask
from deidvid.measure.pulse import (
    MIN_PULSE_SECONDS,
    SkinTraces,
    compare_pulse_waves,
    compare_track_pulse,
    even_series,
    long_enough_for_pulse,
    recorded_prefix,
    track_pulses,
    track_seconds,
)
from deidvid.rppg.compare import PulseSettings
from deidvid.rppg.methods import RPPG_METHODS, pos_window_length
from deidvid.testing.synthetic_pulse import PBV_SIGNATURE, SKIN_RGB, pulse_waveform

METHODS = ("pos", "chrom", "green")


def _traces(bpm, seconds=20.0, fs=30.0, seed=0, times=None):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs if times is None else times
    rgb = SKIN_RGB * (1 + 0.01 * pulse_waveform(t, bpm)[:, None] * PBV_SIGNATURE)
    return rgb + rng.normal(0, 0.2, rgb.shape), t


def test_identical_traces_and_a_ppg_that_ends_early():
    rgb, t = _traces(80)
    ppg = pulse_waveform(t, 80)
    ppg[-30:] = np.nan  # recording ends 1 s early
    section = compare_track_pulse(rgb, rgb.copy(), t, METHODS, (10.0,), PulseSettings(), ppg)
    assert not section["resampled"] and section["frames"] == t.size - 30
    assert section["fs"] == pytest.approx(30.0)
    pos = section["methods"]["pos"]
    assert set(pos["windows"]) == {"10", "whole"}
    assert pos["windows"]["10"]["summary"]["hr_mae"] == 0.0
    assert abs(pos["hr_original_bpm"] - 80) < 2
    ppg_windows = pos["ppg"]["original"]["10"]["windows"]
    assert all(abs(w["hr_reference_bpm"] - 80) < 4 for w in ppg_windows)


def test_the_waveforms_compared_are_kept():
    """track_pulses + compare_pulse_waves is compare_track_pulse; the waveforms are each
    method on the traces (what verify --html plots)."""
    original, t = _traces(72)
    other, _ = _traces(90, seed=2)
    pulses = track_pulses(original, other, t + 2.0, ("pos", "green", "physnet"))  # physnet not run: left out
    assert list(pulses.methods) == ["pos", "green"] and pulses.ppg is None
    assert pulses.frames == t.size and pulses.fs == pytest.approx(30.0) and pulses.start_s == pytest.approx(2.0)
    assert not pulses.resampled
    assert np.array_equal(pulses.methods["pos"][0], RPPG_METHODS["pos"](original, pulses.fs))
    assert np.array_equal(pulses.methods["green"][1], RPPG_METHODS["green"](other, pulses.fs))
    split = compare_pulse_waves(pulses, (10.0,), PulseSettings())
    whole = compare_track_pulse(original, other, t + 2.0, ("pos", "green"), (10.0,), PulseSettings())
    assert json.dumps(split, sort_keys=True) == json.dumps(whole, sort_keys=True)  # NaN r of one window alike


def test_variable_frame_rate_is_resampled():
    rng = np.random.default_rng(1)
    times = np.concatenate([[0.0], np.cumsum(rng.uniform(0.02, 0.05, 700))])
    rgb, _ = _traces(96, times=times, seed=1)
    section = compare_track_pulse(rgb, rgb.copy(), times, ("pos",), (10.0,), PulseSettings())
    assert section["resampled"]
    assert abs(section["methods"]["pos"]["hr_original_bpm"] - 96) < 2


def test_a_changed_pulse_rate_is_measured_as_such():
    original, t = _traces(72)
    other, _ = _traces(108, seed=3)
    section = compare_track_pulse(original, other, t, ("pos",), (), PulseSettings())
    whole = section["methods"]["pos"]["windows"]["whole"]["summary"]
    assert set(section["methods"]["pos"]["windows"]) == {"whole"}
    assert whole["hr_mae"] == pytest.approx(36, abs=4)
    assert "ppg" not in section["methods"]["pos"]


def test_a_window_longer_than_the_track_is_left_out():
    rgb, t = _traces(80, seconds=8.0)
    section = compare_track_pulse(rgb, rgb.copy(), t, ("green",), (30.0,), PulseSettings())
    assert set(section["methods"]["green"]["windows"]) == {"whole"}


def test_even_series_passes_uniform_series_through():
    t = np.arange(100) / 25.0
    x = np.random.default_rng(0).normal(size=(100, 3))
    (same,), fs, resampled = even_series([x], t)
    assert same is x and fs == pytest.approx(25.0) and not resampled


def test_recorded_prefix():
    assert recorded_prefix(np.array([1.0, 2.0, 3.0])) == 3
    assert recorded_prefix(np.array([1.0, 2.0, np.nan, 4.0])) == 2
    assert recorded_prefix(np.array([np.nan, 1.0])) == 0


def test_track_length_rules():
    fs = 30.0
    assert track_seconds(np.array([5.0])) == 0.0
    long = np.arange(int(MIN_PULSE_SECONDS * fs) + 1) / fs
    assert track_seconds(long) == pytest.approx(MIN_PULSE_SECONDS)
    assert long_enough_for_pulse(long, fs) == (len(long) > pos_window_length(fs) + 10)
    assert not long_enough_for_pulse(long[:-2], fs)  # just under 3 s


def test_skin_traces_are_masked_means_of_both_frames(astronaut, astronaut_landmarks):
    shifted = np.clip(astronaut.astype(int) + 7, 0, 255).astype(np.uint8)
    traces = SkinTraces({3: 4})
    traces.add(3, 1, astronaut, shifted, astronaut_landmarks)
    mask = skin_mask(astronaut_landmarks, astronaut.shape[:2]).astype(bool)
    original, deid = traces.traces(3)
    assert original.shape == deid.shape == (4, 3)
    np.testing.assert_allclose(original[1], astronaut[mask].mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(deid[1], shifted[mask].mean(axis=0), rtol=1e-9)
    assert np.isnan(original[[0, 2, 3]]).all()  # frames not seen yet
