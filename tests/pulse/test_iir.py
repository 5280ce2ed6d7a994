"""deidvid.pulse.iir against scipy.signal, the reference it replaces in the transplant."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from deidvid.pulse.iir import (
    all_pole_continue,
    butter_sos,
    causal_matrix,
    sosfilt_zi,
    sosfiltfilt,
)

FILTERS = [
    (2, 0.35, "lowpass", 30.0),
    (2, 0.35, "lowpass", 29.55),
    (4, 0.7, "highpass", 30.0),
    (4, 0.7, "highpass", 25.0),
    (4, (0.7, 4.0), "bandpass", 30.0),
    (4, (0.7, 4.0), "bandpass", 14.0),
    (2, (0.5, 3.0), "bandpass", 60.0),
    (6, 5.0, "lowpass", 50.0),
]


@pytest.mark.parametrize(("order", "cutoff", "kind", "fs"), FILTERS)
def test_butter_sos_is_scipys_filter(order, cutoff, kind, fs):
    ours = butter_sos(order, cutoff, kind, fs)
    theirs = signal.butter(order, cutoff, kind, fs=fs, output="sos")
    assert ours.shape == theirs.shape
    _, h_ours = signal.sosfreqz(ours, worN=512, fs=fs)
    _, h_theirs = signal.sosfreqz(theirs, worN=512, fs=fs)
    np.testing.assert_allclose(h_ours, h_theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("order", "cutoff", "kind", "fs"), FILTERS)
def test_sosfilt_zi_is_a_steady_state(order, cutoff, kind, fs):
    sos = butter_sos(order, cutoff, kind, fs)
    np.testing.assert_allclose(sosfilt_zi(sos), signal.sosfilt_zi(sos), rtol=1e-10, atol=1e-12)
    # A constant input started in that state stays at the filter's DC gain.
    y, _ = signal.sosfilt(sos, np.ones(50), zi=sosfilt_zi(sos))
    np.testing.assert_allclose(y, y[0], atol=1e-10)


@pytest.mark.parametrize(("order", "cutoff", "kind", "fs"), FILTERS)
def test_causal_matrix_is_sosfilt_from_the_first_samples_steady_state(order, cutoff, kind, fs):
    sos = butter_sos(order, cutoff, kind, fs)
    x = np.random.default_rng(0).normal(size=(90, 3)) + 5.0
    expected, _ = signal.sosfilt(sos, x, axis=0, zi=signal.sosfilt_zi(sos)[:, :, None] * x[:1])
    np.testing.assert_allclose(causal_matrix(sos, 90) @ x, expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(("order", "cutoff", "kind", "fs"), FILTERS)
@pytest.mark.parametrize("padlen", [0, 1, 20, 63])
def test_sosfiltfilt_matches_scipy(order, cutoff, kind, fs, padlen):
    rng = np.random.default_rng(padlen)
    t = np.arange(64) / fs
    x = 1.0 + 0.01 * np.sin(2 * np.pi * 1.3 * t)[:, None] + 0.02 * rng.normal(size=(64, 4)) + 0.1 * t[:, None]
    sos = butter_sos(order, cutoff, kind, fs)
    padtype = "odd" if padlen else None
    expected = signal.sosfiltfilt(sos, x, axis=0, padtype=padtype, padlen=padlen)
    np.testing.assert_allclose(sosfiltfilt(sos, x, padlen), expected, rtol=1e-9, atol=1e-12)


def test_sosfiltfilt_keeps_trailing_shape_and_rejects_long_pads():
    sos = butter_sos(2, 1.0, "lowpass", 30.0)
    x = np.random.default_rng(1).normal(size=(40, 5, 3))
    expected = signal.sosfiltfilt(sos, x, axis=0, padtype="odd", padlen=10)
    np.testing.assert_allclose(sosfiltfilt(sos, x, 10), expected, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="padlen"):
        sosfiltfilt(sos, x, 40)


@pytest.mark.parametrize(
    ("order", "cutoff", "kind"),
    [(3, 1.0, "lowpass"), (2, 20.0, "lowpass"), (2, (3.0, 1.0), "bandpass"), (2, 1.0, "notch")],
)
def test_butter_sos_rejects_what_it_cannot_design(order, cutoff, kind):
    with pytest.raises(ValueError):
        butter_sos(order, cutoff, kind, 30.0)


def test_all_pole_continue_is_lfilter_with_its_initial_state():
    rng = np.random.default_rng(3)
    history = rng.normal(size=(40, 3))
    coefficients = rng.normal(scale=0.2, size=(5, 3))
    ours = all_pole_continue(history, coefficients, 25)
    for m in range(3):
        a = np.concatenate([[1.0], -coefficients[:, m]])
        zi = signal.lfiltic([1.0], a, history[::-1, m][:5])
        expected, _ = signal.lfilter([1.0], a, np.zeros(25), zi=zi)
        np.testing.assert_allclose(ours[:, m], expected, rtol=1e-10, atol=1e-12)


def test_a_transplant_on_an_even_frame_rate_never_imports_scipy():
    code = (
        "import sys, numpy as np\n"
        "from deidvid.pulse.variation import relative_variation\n"
        "t = np.arange(64) / 30.0\n"
        "x = 1 + 0.01 * np.sin(2 * np.pi * 1.2 * t)[:, None]\n"
        "assert np.abs(relative_variation(x, t)).max() > 0.005\n"
        "from deidvid.pulse.stage import PulseTransplant\n"
        "print(sorted(m for m in sys.modules if m.startswith('scipy')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
