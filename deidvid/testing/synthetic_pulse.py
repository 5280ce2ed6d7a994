"""Synthetic pulse signals and videos with a known heart rate (tests, examples).

The pulse modulates skin colour along the blood-volume-pulse signature
``PBV = (0.33, 0.77, 0.53)`` (relative amplitude of R, G, B; de Haan & van Leest
2014), on top of a skin-coloured base. Optional disturbances: white sensor noise,
a slow common intensity drift (illumination), and quantisation to uint8.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PBV_SIGNATURE = np.array([0.33, 0.77, 0.53])
SKIN_RGB = np.array([180.0, 120.0, 100.0])


def pulse_waveform(times_s: np.ndarray, bpm: float, harmonic: float = 0.3) -> np.ndarray:
    """Zero-mean, unit-peak-ish PPG-like wave: fundamental + a 2nd harmonic."""
    phase = 2.0 * np.pi * bpm / 60.0 * np.asarray(times_s, dtype=np.float64)
    return np.sin(phase) + harmonic * np.sin(2.0 * phase + 0.8)


def synthetic_rgb_trace(
    bpm: float | None,
    duration_s: float = 20.0,
    fs: float = 30.0,
    amplitude: float = 0.01,
    noise: float = 0.2,
    drift: float = 0.02,
    seed: int = 0,
    base_rgb: np.ndarray = SKIN_RGB,
    harmonic: float = 0.3,
) -> np.ndarray:
    """Mean skin RGB per frame ``(T, 3)`` on the 0-255 scale.

    Args:
        bpm: pulse rate; ``None`` for no pulse (noise and drift only).
        amplitude: relative colour change of the pulse along ``PBV`` (0.01 = 1 %).
        noise: white noise std per channel, in 0-255 units.
        drift: relative amplitude of a slow (0.05-0.2 Hz) common intensity change.
        harmonic: 2nd-harmonic amplitude relative to the fundamental.
    """
    rng = np.random.default_rng(seed)
    count = int(round(duration_s * fs))
    times = np.arange(count) / fs
    pulse = np.zeros(count) if bpm is None else pulse_waveform(times, bpm, harmonic)
    slow_hz = rng.uniform(0.05, 0.2)
    intensity = 1.0 + drift * np.sin(2.0 * np.pi * slow_hz * times + rng.uniform(0, 2 * np.pi))
    colour = base_rgb[None, :] * (1.0 + amplitude * pulse[:, None] * PBV_SIGNATURE[None, :])
    return colour * intensity[:, None] + rng.normal(0.0, noise, size=(count, 3))


def synthetic_pulse_frames(
    image: np.ndarray,
    skin: np.ndarray,
    bpm: float | None,
    duration_s: float = 10.0,
    fs: float = 30.0,
    amplitude: float = 0.01,
    noise: float = 2.0,
    seed: int = 0,
    harmonic: float = 0.3,
) -> Iterator[np.ndarray]:
    """Frames ``(H, W, 3)`` uint8 of a still ``image`` whose ``skin`` pulses at ``bpm``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB still (e.g. ``skimage.data.astronaut()``).
        skin: ``(H, W)`` bool or float weights where the pulse shows.
        bpm: pulse rate, or ``None`` for noise only.
        amplitude: relative colour change along ``PBV`` at the pulse peak.
        noise: per-pixel white noise std (0-255 units) before rounding to uint8.
        harmonic: 2nd-harmonic amplitude relative to the fundamental.
    """
    rng = np.random.default_rng(seed)
    base = image.astype(np.float32)
    weights = np.asarray(skin, dtype=np.float32)[..., None]
    signature = PBV_SIGNATURE.astype(np.float32)[None, None, :]
    count = int(round(duration_s * fs))
    times = np.arange(count) / fs
    pulse = np.zeros(count) if bpm is None else pulse_waveform(times, bpm, harmonic)
    for value in pulse:
        frame = base * (1.0 + amplitude * float(value) * signature * weights)
        frame += np.float32(noise) * rng.standard_normal(frame.shape, dtype=np.float32)
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)
