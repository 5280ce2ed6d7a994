"""deidvid.tools.pulse_observers: region means and observer agreement."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.io.decode import iter_frames, probe
from deidvid.pulse.regions import NUM_REGIONS, region_masks
from deidvid.testing.synthetic_video import make_face_video
from deidvid.tools.pulse_observers import PERTURBATIONS, agreement, observe, region_rgb


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    # A smooth synthetic face carrying one uniform pulse, 5 s.
    video = make_face_video(tmp_path_factory.mktemp("obs") / "face.mp4", n_frames=150, audio=False, pulse_amplitude=3.0)
    return video, observe(video)


def test_region_rgb_is_the_mean_over_each_region_mask(observed):
    video, (_, _, landmarks) = observed
    frame = next(iter_frames(video, probe(video))).rgb
    means = region_rgb(frame, landmarks[0])
    masks = region_masks(landmarks[0], frame.shape[:2])
    assert means.shape == (NUM_REGIONS, 3)
    for r in range(NUM_REGIONS):
        assert masks[r].any()
        np.testing.assert_allclose(means[r], frame[masks[r]].mean(axis=0))


def test_agreement_is_one_with_itself_and_low_with_independent_noise():
    rng = np.random.default_rng(1)
    fs, t = 30.0, np.arange(300) / 30.0
    pulse = np.sin(2 * np.pi * 1.2 * t)[:, None, None]
    reference = 100 + pulse + rng.normal(0, 0.1, (300, NUM_REGIONS, 3))
    np.testing.assert_allclose(agreement(reference, reference, fs), 1.0)
    # 60 s of band-passed noise: ~100 independent samples, so |r| of unrelated series stays small.
    noise_only = 100 + rng.normal(0, 1.0, (1800, NUM_REGIONS, 3))
    assert np.abs(agreement(noise_only, 100 + rng.normal(0, 1.0, (1800, NUM_REGIONS, 3)), fs)).max() < 0.3


def test_observers_of_a_smooth_synthetic_face_agree(observed):
    _, (series, fs, landmarks) = observed
    assert set(series) == {"as found", *PERTURBATIONS}
    assert series["as found"].shape == (len(landmarks), NUM_REGIONS, 3)
    shifted = agreement(series["as found"], series["shift 1 px"], fs)
    assert np.nanmean(shifted[:, 1]) > 0.9  # green, the pulse's strongest channel
