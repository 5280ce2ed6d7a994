"""Temporal consistency: does the de-identified face flicker, and could the flicker fake a pulse?

Two numbers per face track:

* **Frame-to-frame change** (:class:`FrameChange`): in each frame ``t`` of a track, the
  mean absolute difference (8-bit levels, all three channels) between frame ``t`` and
  frame ``t - 1`` inside the face box at ``t`` (:func:`deidvid.faces.geometry.crop_box`
  of the original's landmarks; the same pixels for both frames and both videos), averaged
  over the track. ``flicker_ratio`` = de-identified / original: 1 when the anonymiser
  adds no temporal noise, above 1 for per-frame jitter a viewer sees as flicker.
* **Added pulse-band power** (:func:`added_band_power`): the difference of the two
  videos' mean skin RGB traces (the pulse measurement's traces, :class:`deidvid.measure.pulse.SkinTraces`)
  holds what the de-identification changed in the colour of the skin over time. Its
  power in 0.7-4 Hz (:data:`FLICKER_BAND_HZ`, where any rPPG method looks for a pulse)
  is reported as an RMS (8-bit levels, summed over the three channels) and relative to the
  original trace's power in that band: a flicker there could be read as a pulse that is
  not the person's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from scipy import signal

from deidvid.faces.geometry import crop_box, frame_window
from deidvid.rppg.signals import fill_gaps

FLICKER_BAND_HZ: tuple[float, float] = (0.7, 4.0)
RMS_FLOOR = 1e-9  # an original with less in-band RMS (levels) has none: no power ratio


class TemporalScores(TypedDict):
    """One face track's temporal consistency (the JSON's ``faces[].temporal``)."""

    frames: int  # frame pairs measured
    change_orig: float | None  # mean |frame t - frame t-1| in the face box, 8-bit levels
    change_deid: float | None
    flicker_ratio: float | None  # change_deid / change_orig
    band_hz: list[float]
    added_band_rms: float | None  # RMS in the band of (deid - orig) skin trace, levels
    orig_band_rms: float | None  # the original skin trace's RMS in the band, levels
    added_band_power_ratio: float | None  # (added_band_rms / orig_band_rms) ** 2


def mean_abs_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean ``|current - previous|`` of two equally shaped uint8 arrays (levels)."""
    return float(np.abs(current.astype(np.int16) - previous.astype(np.int16)).mean())


@dataclass
class _Change:
    pairs: int = 0
    original: float = 0.0
    deidentified: float = 0.0


class FrameChange:
    """Per face track, the summed frame-to-frame change inside its face box, in both videos."""

    def __init__(self) -> None:
        self.sums: dict[int, _Change] = {}

    def add(
        self,
        track_id: int,
        previous: tuple[np.ndarray, np.ndarray],
        current: tuple[np.ndarray, np.ndarray],
        landmarks: np.ndarray,
    ) -> None:
        """Frames ``t - 1`` and ``t`` (each ``(original, de-identified)``, ``(H, W, 3)`` uint8)
        of a track whose landmarks at ``t`` are ``(68, 2)``."""
        window = frame_window(crop_box(landmarks), *current[0].shape[:2])
        if window is None:
            return
        rows, cols = window[:2]
        entry = self.sums.setdefault(track_id, _Change())
        entry.pairs += 1
        entry.original += mean_abs_change(previous[0][rows, cols], current[0][rows, cols])
        entry.deidentified += mean_abs_change(previous[1][rows, cols], current[1][rows, cols])

    def scores(self, track_id: int) -> tuple[int, float | None, float | None, float | None]:
        """``(pairs, change_orig, change_deid, flicker_ratio)``; None where nothing was measured
        (the ratio also when the original never changed)."""
        entry = self.sums.get(track_id)
        if entry is None or not entry.pairs:
            return 0, None, None, None
        orig, deid = entry.original / entry.pairs, entry.deidentified / entry.pairs
        return entry.pairs, orig, deid, (deid / orig if orig > 0 else None)


def band_rms(trace: np.ndarray, fs: float, band_hz: tuple[float, float] = FLICKER_BAND_HZ) -> float | None:
    """RMS of ``trace (T, C)`` inside ``band_hz``, summed over channels (root of the summed
    periodogram power in the band; linear trend removed first). None when shorter than 2 s
    or the band is above Nyquist."""
    trace = np.asarray(trace, dtype=np.float64)
    if trace.ndim == 1:
        trace = trace[:, None]
    if len(trace) < 2 * fs or band_hz[0] >= fs / 2:
        return None
    freqs, power = signal.periodogram(trace, fs=fs, detrend="linear", axis=0, scaling="spectrum")
    in_band = (freqs >= band_hz[0]) & (freqs <= min(band_hz[1], fs / 2))
    return float(np.sqrt(power[in_band].sum()))


def added_band_power(
    rgb_original: np.ndarray, rgb_deid: np.ndarray, fs: float, band_hz: tuple[float, float] = FLICKER_BAND_HZ
) -> tuple[float | None, float | None, float | None]:
    """``(added_band_rms, orig_band_rms, added_band_power_ratio)`` of two ``(T, 3)`` mean skin
    RGB traces (NaN = no skin seen: filled as the pulse measurement does)."""
    if len(rgb_original) < 2 or np.isnan(rgb_original).all() or np.isnan(rgb_deid).all():
        return None, None, None
    original, deid = fill_gaps(rgb_original), fill_gaps(rgb_deid)
    added, base = band_rms(deid - original, fs, band_hz), band_rms(original, fs, band_hz)
    ratio = None if added is None or base is None or base < RMS_FLOOR else (added / base) ** 2
    return added, base, ratio


def temporal_scores(
    change: FrameChange,
    track_id: int,
    rgb_original: np.ndarray,
    rgb_deid: np.ndarray,
    fs: float,
    band_hz: tuple[float, float] = FLICKER_BAND_HZ,
) -> TemporalScores:
    """:class:`TemporalScores` of one track from its frame changes and ``(T, 3)`` skin traces."""
    pairs, orig, deid, ratio = change.scores(track_id)
    added, base, power_ratio = added_band_power(rgb_original, rgb_deid, fs, band_hz)
    return {
        "frames": pairs,
        "change_orig": orig,
        "change_deid": deid,
        "flicker_ratio": ratio,
        "band_hz": list(band_hz),
        "added_band_rms": added,
        "orig_band_rms": base,
        "added_band_power_ratio": power_ratio,
    }


def track_frame_changes(
    change: FrameChange,
    previous: tuple[np.ndarray, np.ndarray] | None,
    current: tuple[np.ndarray, np.ndarray],
    faces_now: Mapping[int, np.ndarray],
    faces_before: Mapping[int, np.ndarray],
) -> None:
    """Add one frame's changes for every track present in this frame and the previous one."""
    if previous is None:
        return
    for track_id, landmarks in faces_now.items():
        if track_id in faces_before:
            change.add(track_id, previous, current, landmarks)
