"""deidvid.tools.pulse_parts: verify's skin mask split into the transplanted part and the margin."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.faces.skin import skin_mask
from deidvid.testing.face_template import FRONTAL_68
from deidvid.testing.synthetic_video import make_face_video
from deidvid.tools.pulse_parts import PARTS, compare_parts, part_masks, part_means


def test_the_parts_split_verifys_mask():
    landmarks = FRONTAL_68 * 120 + 20
    masks = part_masks(landmarks, (170, 170))
    assert set(masks) == set(PARTS)
    transplanted, margin = masks["transplanted part"], masks["margin"]
    assert not (transplanted & margin).any()
    np.testing.assert_array_equal(transplanted | margin, skin_mask(landmarks, (170, 170)))
    assert transplanted.sum() > 4 * margin.sum() > 0  # the margin: a ring under the eyes and round the mouth


def test_part_means_are_the_masked_means():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (170, 170, 3), dtype=np.uint8)
    masks = part_masks(FRONTAL_68 * 120 + 20, (170, 170))
    means = part_means(frame, masks)
    for name, mask in masks.items():
        np.testing.assert_allclose(means[name], frame[mask].astype(np.float64).mean(axis=0))
    empty = part_means(frame, {"none": np.zeros((170, 170), dtype=bool)})
    assert np.isnan(empty["none"]).all()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parts")
    make = lambda name, bpm: make_face_video(folder / name, n_frames=150, audio=False, pulse_bpm=bpm, pulse_amplitude=3.0)  # noqa: E731
    return make("a.mp4", 72.0), make("b.mp4", 110.0)


def test_a_video_agrees_with_itself_and_not_with_another_pulse(videos):
    original, other_pulse = videos
    same = compare_parts(original, original, window_s=2.5)
    for part in PARTS:
        assert same[part]["pos_r_window"] == pytest.approx(1.0)
        assert same[part]["pos_snr_drop_db"] == pytest.approx(0.0, abs=1e-9)
    assert same["verify mask"]["share"] == pytest.approx(1.0)
    assert same["transplanted part"]["share"] + same["margin"]["share"] == pytest.approx(1.0)
    different = compare_parts(original, other_pulse, window_s=2.5)
    assert different["transplanted part"]["pos_r_window"] < 0.5
