"""deidvid.pulse.stage: the transplant as a pass-2 stage over a track's overlapping clips."""

from __future__ import annotations

import numpy as np

from deidvid.faces.track import FaceTrack
from deidvid.methods.base import CropClip
from deidvid.pulse.stage import PulseTransplant

S, FS, LENGTH = 96, 30.0, 112  # two 64-frame clips overlapping by 16


def _track_clips(syn) -> tuple[FaceTrack, list[CropClip], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    times = np.arange(LENGTH) / FS
    wave = syn.pulse_wave(times)
    landmarks = np.stack([syn.landmarks_in(S, offset=(0.5 * np.sin(t), 0.3 * np.cos(t))) for t in times])
    base = syn.face_linear(landmarks[0], (S, S))
    original = np.stack([syn.to_display(base * (1 + 0.004 * w)) for w in wave]).astype(np.float32)
    blurred = np.stack([syn.to_display(base) * 0.9 + 0.05 + 0.002 * rng.standard_normal()] * LENGTH).astype(np.float32)
    track = FaceTrack(track_id=7, start=0, landmarks=landmarks, observed=np.ones(LENGTH, bool))
    clips, outputs = [], []
    for start in (0, 48):
        span = slice(start, start + 64)
        clips.append(CropClip(original[span], landmarks[span], 7, start, times[span]))
        outputs.append(blurred[span])
    return track, clips, outputs


def test_overlapping_clips_reuse_geometry_with_identical_results(syn):
    track, clips, outputs = _track_clips(syn)
    times = np.arange(LENGTH) / FS
    shared = PulseTransplant()
    shared.prepare([track], times)
    together = [shared.apply(clip, out) for clip, out in zip(clips, outputs)]
    for clip, out, result in zip(clips, outputs, together):
        alone = PulseTransplant()
        alone.prepare([track], times)
        np.testing.assert_array_equal(result, alone.apply(clip, out))
        assert not np.array_equal(result, out)  # the pulse went in
    assert shared._previous_layouts == {}  # the track's last clip ends it: nothing kept


def test_the_first_clip_keeps_its_second_half_for_the_next(syn):
    track, clips, outputs = _track_clips(syn)
    stage = PulseTransplant()
    stage.prepare([track], np.arange(LENGTH) / FS)
    stage.apply(clips[0], outputs[0])
    assert sorted(stage._previous_layouts[7]) == list(range(32, 64))
