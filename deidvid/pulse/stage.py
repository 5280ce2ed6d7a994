"""The pulse transplant as a pipeline stage: record in pass 1, transplant in pass 2.

Pass 1: an observer records, for every face track, the mean light of each skin
region in every original frame (a few floats per frame). After pass 1 each track's
pulse-band relative variation is computed over the whole track (zero-phase, in time).
Pass 2: each clip of the method's output gets the original's variation back
(``transplant_clip``) before the identity check, blend and paste.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deidvid.faces.track import FaceTrack
from deidvid.methods.base import CropClip
from deidvid.pulse.measure import TrackPulse, TrackPulseRecorder, region_means
from deidvid.pulse.transplant import transplant_clip


class _Recorder:
    """Pass-1 observer: region means of every original face frame, per track."""

    def __init__(self, stage: PulseTransplant) -> None:
        self.stage = stage
        self.recorders: dict[int, TrackPulseRecorder] = {}

    def observe(self, track_id: int, frame_index: int, rgb: np.ndarray, landmarks: np.ndarray) -> None:
        recorder = self.recorders.setdefault(track_id, TrackPulseRecorder())
        recorder.add(frame_index, region_means(rgb, landmarks))

    def finish(self, tracks: list[FaceTrack], times_s: np.ndarray) -> None:
        for track in tracks:
            recorder = self.recorders.pop(track.track_id, TrackPulseRecorder())
            self.stage.pulses[track.track_id] = recorder.finish(track.start, track.end, times_s[track.start : track.end])
        self.recorders.clear()


class PulseTransplant:
    """Carries each track's original pulse into the method's output clips."""

    def __init__(self) -> None:
        self.pulses: dict[int, TrackPulse] = {}
        self.observer = _Recorder(self)

    def apply(self, clip: CropClip, output: np.ndarray) -> np.ndarray:
        """The method's ``output (T, S, S, 3)`` for ``clip`` with the original's pulse; unchanged when unknown."""
        pulse = self.pulses.get(clip.track_id)
        if pulse is None or not pulse.valid or clip.landmarks is None:
            return output
        return transplant_clip(output, clip.landmarks, pulse.frames(clip.start, len(output)), clip.times_s)

    def track_summary(self, track_id: int) -> dict[str, Any]:
        """For the report: whether the transplant ran on a track, why not, and the amplitude it carried."""
        pulse = self.pulses.get(track_id)
        if pulse is None:
            return {"transplanted": False, "reason": "track not measured"}
        return {
            "transplanted": bool(pulse.valid),
            "reason": pulse.reason,
            # RMS relative variation per channel in the band: what the transplant carries.
            "amplitude_rgb": [round(float(a), 7) for a in pulse.amplitude] if pulse.valid else None,
        }

    def warnings(self) -> list[str]:
        """One line per track whose pulse could not be carried over."""
        return [
            f"pulse transplant: track {tid} skipped ({p.reason})" for tid, p in sorted(self.pulses.items()) if not p.valid
        ]
