"""Pulse preservation: the rPPG of a de-identified face track against its original.

Per face track, :class:`SkinTraces` keeps the mean skin RGB (:mod:`deidvid.faces.skin`,
the original's landmarks for both videos) of every frame of both videos: ``(2, L, 3)``
numbers, so memory does not grow with frame size. :func:`compare_track_pulse` then
runs each rPPG method (POS / CHROM / GREEN) on both traces -- resampled to an even grid
for variable-frame-rate input -- and compares them window by window
(:func:`deidvid.rppg.compare.compare_pulses`; de-identified = test, original =
reference) for each window length and the whole track; with a contact PPG, both videos'
pulses against it. The two steps are :func:`track_pulses` (the waveforms, kept by verify
for its ``--html`` plots) and :func:`compare_pulse_waves`.

Deep estimators (PhysNet, from the ``open-rppg`` wheel when installed) see the face, not a
mean colour: :class:`FaceThumbnails` keeps each track's face as 32x32 crops of both videos
(the network's input size, about 6 KB per frame), and their waveforms join the comparison
as one more method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deidvid.faces.geometry import CropBox, crop_box, cut_crop
from deidvid.faces.skin import skin_region
from deidvid.rppg.compare import PulseSettings, compare_pulses
from deidvid.rppg.hr import heart_rate
from deidvid.rppg.methods import RPPG_METHODS, pos_window_length
from deidvid.rppg.signals import (
    fill_gaps,
    is_uniform,
    masked_mean_rgb,
    resample_uniform,
)

MIN_PULSE_SECONDS = 3.0  # shorter face tracks get no pulse analysis
DEEP_METHODS = ("physnet",)  # face-crop estimators, next to RPPG_METHODS (skin-mean estimators)
THUMBNAIL_SIZE = 32  # PhysNet's input side
THUMBNAIL_ENLARGE = 1.5  # the face box, enlarged like rPPG-Toolbox's preprocessing
# Frames beyond one POS window a track needs (POS's overlap-add leaves the ends thin).
MIN_EXTRA_FRAMES = 10


def track_seconds(times: np.ndarray) -> float:
    """Duration (s) of a track from its ``(L,)`` frame times: last minus first (0 for one frame)."""
    return float(times[-1] - times[0]) if len(times) > 1 else 0.0


def long_enough_for_pulse(times: np.ndarray, fps: float) -> bool:
    """Whether a track with ``(L,)`` frame times (s) is long enough for pulse analysis."""
    return track_seconds(times) >= MIN_PULSE_SECONDS and len(times) > pos_window_length(float(fps)) + MIN_EXTRA_FRAMES


class SkinTraces:
    """Mean skin RGB per frame of each face track, in both videos.

    Args:
        lengths: frames of each track, by track ID.
    """

    def __init__(self, lengths: Mapping[int, int]) -> None:
        # track -> (2, L, 3): [0] original, [1] de-identified; NaN = not seen (yet)
        self.rgb = {track_id: np.full((2, length, 3), np.nan) for track_id, length in lengths.items()}

    def add(self, track_id: int, offset: int, original: np.ndarray, deidentified: np.ndarray, landmarks: np.ndarray) -> None:
        """Frame ``offset`` of a track: ``(H, W, 3)`` uint8 frames of both videos, ``(68, 2)`` landmarks."""
        region = skin_region(landmarks, original.shape[:2])  # one region for both: only pixels differ
        self.rgb[track_id][0, offset] = masked_mean_rgb(original, region)
        self.rgb[track_id][1, offset] = masked_mean_rgb(deidentified, region)

    def traces(self, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(L, 3)`` original and de-identified traces of one track (NaN = no skin seen)."""
        rgb = self.rgb[track_id]
        return rgb[0], rgb[1]


def thumbnail_box(landmarks: np.ndarray) -> CropBox:
    """The face box ``crop_box(landmarks (68, 2))`` enlarged by :data:`THUMBNAIL_ENLARGE` about its centre."""
    box = crop_box(landmarks)
    side = max(int(round(box.side * THUMBNAIL_ENLARGE)), 4)
    grow = (side - box.side) // 2
    return CropBox(box.x0 - grow, box.y0 - grow, side)


class FaceThumbnails:
    """Each face track's face as ``THUMBNAIL_SIZE``-pixel crops of both videos (deep rPPG input).

    Args:
        lengths: frames of each track, by track ID.
    """

    def __init__(self, lengths: Mapping[int, int]) -> None:
        size = THUMBNAIL_SIZE
        # track -> (2, L, S, S, 3) uint8: [0] original, [1] de-identified
        self.crops = {track_id: np.zeros((2, length, size, size, 3), np.uint8) for track_id, length in lengths.items()}

    def add(self, track_id: int, offset: int, original: np.ndarray, deidentified: np.ndarray, landmarks: np.ndarray) -> None:
        """Frame ``offset`` of a track: ``(H, W, 3)`` uint8 frames of both videos, ``(68, 2)`` landmarks."""
        box = thumbnail_box(landmarks)  # one box for both: only pixels differ
        self.crops[track_id][0, offset] = cut_crop(original, box, THUMBNAIL_SIZE)
        self.crops[track_id][1, offset] = cut_crop(deidentified, box, THUMBNAIL_SIZE)

    def waveforms(self, track_id: int, fps: float, method: str = "physnet", device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """``(L,)`` pulse waveforms of the original and de-identified crops of one track."""
        if method != "physnet":
            raise ValueError(f"unknown deep rPPG method '{method}'")
        from deidvid.rppg.physnet import physnet_waveform

        crops = self.crops[track_id]
        return physnet_waveform(crops[0], fps, device=device), physnet_waveform(crops[1], fps, device=device)


def _window_key(window: float | None) -> str:
    return "whole" if window is None else f"{window:g}"


def even_series(series: Sequence[np.ndarray], times: np.ndarray) -> tuple[list[np.ndarray], float, bool]:
    """Series ``(T, C)`` sampled at ``times (T,)`` on an even grid.

    Returns the series (unchanged when the times are already uniform), the rate (Hz) and
    whether they were resampled.
    """
    if is_uniform(times):
        return list(series), (len(times) - 1) / (times[-1] - times[0]), False
    evened = [resample_uniform(s, times)[0] for s in series]
    return evened, resample_uniform(series[0], times)[2], True


def recorded_prefix(ppg: np.ndarray) -> int:
    """Length of the leading run of finite samples of ``ppg (T,)`` (a recording that ends early)."""
    covered = np.isfinite(ppg)
    return covered.size if covered.all() else int(np.argmin(covered))


@dataclass(frozen=True)
class TrackPulses:
    """The pulse waveforms of one face track in both videos, on an even time grid.

    Attributes:
        fs: the grid's rate (Hz).
        resampled: whether the frame times were uneven (and so resampled).
        frames: the frames compared (the common length of the traces, the deep
            waveforms and the recorded PPG; the grid may differ when resampled).
        start_s: time (s) of the first sample (the track's first frame).
        methods: ``{method: ((T,) original, (T,) de-identified)}`` raw pulse signals
            (before the per-window detrend and band-pass of the comparison).
        ppg: ``(T,)`` contact PPG on the same grid, or None.
    """

    fs: float
    resampled: bool
    frames: int
    start_s: float
    methods: dict[str, tuple[np.ndarray, np.ndarray]]
    ppg: np.ndarray | None = None


def track_pulses(
    rgb_original: np.ndarray,
    rgb_deid: np.ndarray,
    times: np.ndarray,
    methods: Sequence[str],
    ppg: np.ndarray | None = None,
    deep: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> TrackPulses:
    """Each rPPG method's pulse of one face track in both videos, on an even grid.

    Args: as :func:`compare_track_pulse`. A deep method that could not run (not
    installed: the caller has warned) is left out of the result.
    """
    deep = dict(deep or {})
    series = [fill_gaps(rgb_original), fill_gaps(rgb_deid)]
    for original, deidentified in deep.values():
        series.append(np.stack([original, deidentified], axis=1))
    has_ppg = False
    if ppg is not None:
        recorded = recorded_prefix(ppg)
        if recorded >= 2:
            series.append(ppg[:recorded, None])
            has_ppg = True
    length = min(len(s) for s in series)
    times = np.asarray(times[:length], dtype=np.float64)
    evened, fs, resampled = even_series([s[:length] for s in series], times)
    rgb_original, rgb_deid = evened[0], evened[1]
    deep_even = dict(zip(deep, evened[2 : 2 + len(deep)]))
    waves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for method in methods:
        if method in deep_even:
            waves[method] = (deep_even[method][:, 0], deep_even[method][:, 1])
        elif method in RPPG_METHODS:
            waves[method] = (RPPG_METHODS[method](rgb_original, fs), RPPG_METHODS[method](rgb_deid, fs))
    pulses = TrackPulses(
        fs=float(fs), resampled=bool(resampled), frames=length, start_s=float(times[0]) if length else 0.0, methods=waves,
        ppg=evened[-1][:, 0] if has_ppg else None,
    )
    return pulses


def compare_pulse_waves(pulses: TrackPulses, windows_s: Sequence[float], settings: PulseSettings) -> dict[str, Any]:
    """The comparison of :func:`compare_track_pulse` from the waveforms of :func:`track_pulses`."""
    fs = pulses.fs
    windows: list[float | None] = [*windows_s, None]
    out: dict[str, Any] = {"fs": fs, "resampled": pulses.resampled, "frames": pulses.frames, "methods": {}}
    for method, (pulse_original, pulse_deid) in pulses.methods.items():
        entry: dict[str, Any] = {
            "hr_original_bpm": heart_rate(pulse_original, fs, settings.band_hz),
            "hr_deidentified_bpm": heart_rate(pulse_deid, fs, settings.band_hz),
            "windows": _compare_windows(pulse_deid, pulse_original, fs, windows, settings),
        }
        if pulses.ppg is not None:
            entry["ppg"] = {
                label: _compare_windows(pulse, pulses.ppg, fs, windows, settings)
                for label, pulse in (("original", pulse_original), ("deidentified", pulse_deid))
            }
        out["methods"][method] = entry
    return out


def compare_track_pulse(
    rgb_original: np.ndarray,
    rgb_deid: np.ndarray,
    times: np.ndarray,
    methods: Sequence[str],
    windows_s: Sequence[float],
    settings: PulseSettings,
    ppg: np.ndarray | None = None,
    deep: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Pulse comparison for one face track.

    Args:
        rgb_original, rgb_deid: ``(T, 3)`` mean skin RGB per frame (NaN = no skin seen).
        times: ``(T,)`` frame times (s).
        methods: names in :data:`deidvid.rppg.methods.RPPG_METHODS`.
        windows_s: window lengths (s); the whole track is always compared too.
        settings: band, MACC lag, ... of the comparison.
        ppg: ``(T,)`` contact PPG at the frames (NaN where not recorded), or None.
        deep: ``{method: ((T,) original, (T,) de-identified)}`` waveforms of face-crop
            estimators at the frames, compared like the skin-mean methods.

    Returns:
        ``{"fs", "resampled", "frames", "methods": {method: {"hr_original_bpm",
        "hr_deidentified_bpm", "windows": {key: comparison}, ["ppg": {"original" |
        "deidentified": {key: comparison}}]}}}`` with window keys ``"10"``, ... and
        ``"whole"``; a window longer than the track is left out. The waveforms compared:
        :func:`track_pulses`.
    """
    return compare_pulse_waves(track_pulses(rgb_original, rgb_deid, times, methods, ppg, deep), windows_s, settings)


def _compare_windows(
    test: np.ndarray, reference: np.ndarray, fs: float, windows: Sequence[float | None], settings: PulseSettings
) -> dict[str, Any]:
    """``{window key: compare_pulses(...).as_dict()}`` for the windows that fit."""
    out = {}
    for window in windows:
        comparison = compare_pulses(test, reference, fs, window, settings)
        if comparison.windows:
            out[_window_key(window)] = comparison.as_dict()
    return out
