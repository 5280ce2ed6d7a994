"""Pass 2: the multiplicative skin field that carries the original's pulse into a clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deidvid.pulse.variation import TRANSPLANT_BAND_HZ, relative_variation
from deidvid.pulse.regions import region_masks, skin_field_mask
from deidvid.pulse.transplant import (
    carried_amplitude,
    clip_region_means,
    transplant_clip,
)

S, T, FS = 128, 64, 30.0
TIMES = np.arange(T) / FS
BPM = 72.0


@pytest.fixture(scope="module")
def lm(syn):
    return syn.landmarks_in(S)


@pytest.fixture(scope="module")
def base(syn, lm):
    """Pulse-free face, linear light ``(S, S, 3)``."""
    return syn.face_linear(lm, (S, S))


def _means(display: np.ndarray, masks_per_frame) -> np.ndarray:
    """Independent region means of linear light ``(T, R, 3)`` (float64 throughout)."""
    linear = np.clip(display.astype(np.float64), 0, 1) ** 2.2
    return np.stack(
        [[linear[t][m].mean(axis=0) for m in masks] for t, masks in enumerate(masks_per_frame)]
    )


def _target(amplitude=(0.002, 0.005, 0.0015), bpm=BPM, phase=0.4) -> np.ndarray:
    wave = np.sin(2 * np.pi * bpm / 60 * TIMES + phase)
    return np.broadcast_to(wave[:, None, None] * np.asarray(amplitude), (T, 5, 3)).copy()


def _skin_green(display: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Green mean (linear) over a skin proxy, linear trend removed: ``(T,)``."""
    g = (np.clip(display[..., 1].astype(np.float64), 0, 1) ** 2.2)[:, skin].mean(axis=1)
    return g - np.polyval(np.polyfit(TIMES, g, 1), TIMES)


def _test_skin(syn, lm) -> np.ndarray:
    """A skin proxy built without deidvid.pulse: the face hull, eroded, minus features."""
    face = cv2.erode(syn.face_hull_mask(lm, (S, S)).astype(np.uint8), np.ones((7, 7), np.uint8))
    for idx in (range(36, 42), range(42, 48), range(48, 60)):
        cv2.fillPoly(face, [np.round(lm[list(idx)]).astype(np.int32)], 0)
    return face.astype(bool)


@pytest.mark.parametrize("brightness", [1.0, 0.02])  # fair and very dark skin
def test_region_means_hit_their_targets_exactly(syn, lm, base, brightness):
    # A static clip has no variation of its own, so the goal is m * (1 + target).
    clip = np.repeat(syn.to_display(brightness * base)[None], T, axis=0).astype(np.float32)
    rng = np.random.default_rng(0)
    target = _target() + rng.normal(0, 0.002, (T, 5, 3))  # regions and channels differ
    out = transplant_clip(clip, np.repeat(lm[None], T, 0), target, TIMES)
    assert out.shape == clip.shape and out.dtype == np.float32
    masks = [region_masks(lm, (S, S))] * T
    before, after = _means(clip, masks), _means(out, masks)
    np.testing.assert_allclose(after, before * (1.0 + target), rtol=1e-6)


def test_exact_with_moving_landmarks_and_noise(syn, lm, base):
    rng = np.random.default_rng(1)
    landmarks = lm[None] + rng.normal(0, 0.4, (T, 68, 2)) + np.linspace(0, 3, T)[:, None, None]
    clip = syn.to_display(base[None] * (1 + rng.normal(0, 0.01, (T, S, S, 3)))).astype(np.float32)
    target = _target()
    out = transplant_clip(clip, landmarks, target, TIMES)
    masks = [region_masks(landmarks[t], (S, S)) for t in range(T)]
    before, after = _means(clip, masks), _means(out, masks)
    own = relative_variation(before, TIMES, TRANSPLANT_BAND_HZ)
    np.testing.assert_allclose(after, before * (1.0 + target - own), rtol=1e-6)


def test_pixels_off_the_skin_are_bit_for_bit_unchanged(syn, lm, base):
    clip = np.repeat(syn.to_display(base)[None], T, axis=0).astype(np.float32)
    out = transplant_clip(clip, np.repeat(lm[None], T, 0), 4 * _target(), TIMES)
    off = skin_field_mask(lm, (S, S)) == 0
    np.testing.assert_array_equal(out[:, off], clip[:, off])
    # and, independently of the module's masks: eyes, mouth and background
    for idx in (range(36, 42), range(42, 48), range(48, 60)):
        poly = np.zeros((S, S), np.uint8)
        cv2.fillPoly(poly, [np.round(lm[list(idx)]).astype(np.int32)], 1)
        np.testing.assert_array_equal(out[:, poly > 0], clip[:, poly > 0])
    face = cv2.dilate(syn.face_hull_mask(lm, (S, S)).astype(np.uint8), np.ones((3, 3), np.uint8))
    np.testing.assert_array_equal(out[:, face == 0], clip[:, face == 0])  # background
    assert (out != clip).any(axis=-1).sum(axis=(1, 2)).min() > 1000  # the skin did change


def test_blurred_pulse_free_clip_gets_the_pulse(syn, lm, base):
    rng = np.random.default_rng(2)
    blurred = cv2.GaussianBlur(syn.to_display(base).astype(np.float32), (0, 0), 4.0)
    clip = np.clip(blurred[None] + rng.normal(0, 0.002, (T, S, S, 3)), 0, 1).astype(np.float32)
    target = _target()
    out = transplant_clip(clip, np.repeat(lm[None], T, 0), target, TIMES)
    skin = _test_skin(syn, lm)
    wave = target[:, 0, 1]
    assert np.corrcoef(_skin_green(clip, skin), wave)[0, 1] < 0.5  # nothing there before
    assert np.corrcoef(_skin_green(out, skin), wave)[0, 1] > 0.95
    carried = carried_amplitude(out, np.repeat(lm[None], T, 0), TIMES)
    np.testing.assert_allclose(carried, np.sqrt(np.mean(target**2, axis=(0, 1))), rtol=0.25)
    assert carried[1] > carried[0] > carried[2]  # the original's colour signature


def test_the_outputs_own_pulse_is_replaced(syn, lm, base):
    """A clip that still carries the original's 72 bpm gets a 96 bpm target instead."""
    own_wave = np.sin(2 * np.pi * BPM / 60 * TIMES)
    face = syn.face_hull_mask(lm, (S, S))[..., None]
    clip = syn.to_display(base[None] * (1 + face * 0.005 * own_wave[:, None, None, None])).astype(
        np.float32
    )
    target = _target(amplitude=(0.005, 0.005, 0.005), bpm=96.0)
    out = transplant_clip(clip, np.repeat(lm[None], T, 0), target, TIMES)
    green = _skin_green(out, _test_skin(syn, lm))
    assert np.corrcoef(green, target[:, 0, 1])[0, 1] > 0.95
    assert abs(np.corrcoef(green, own_wave)[0, 1]) < 0.3


def test_same_pulse_leaves_the_clip_alone(syn, lm, base):
    wave = np.sin(2 * np.pi * BPM / 60 * TIMES + 0.4)
    pulse = syn.PULSE_AMPLITUDE * wave[:, None]  # (T, 3)
    face = syn.face_hull_mask(lm, (S, S))[..., None]
    clip = syn.to_display(base[None] * (1 + face * pulse[:, None, None, :])).astype(np.float32)
    landmarks = np.repeat(lm[None], T, 0)
    # target measured from the clip itself: nothing to change at all
    own = relative_variation(clip_region_means(clip, landmarks), TIMES, TRANSPLANT_BAND_HZ)
    same = transplant_clip(clip, landmarks, own, TIMES)
    np.testing.assert_allclose(same, clip, atol=2e-6)
    # target = the injected pulse (not measured): changes stay far below the pulse
    out = transplant_clip(clip, landmarks, _target(), TIMES)
    change = np.abs(syn.to_linear(out) / syn.to_linear(clip) - 1)[:, _test_skin(syn, lm)]
    assert change.mean() < 0.2 * syn.PULSE_AMPLITUDE.mean()


@pytest.mark.parametrize("level", [0.0, 1e-4, 0.02, 0.995, 1.0])
def test_dark_and_saturated_inputs_stay_finite_and_in_range(lm, level):
    clip = np.full((T, S, S, 3), level, np.float32)
    clip[:, : S // 2, :, 0] = 1.0 - level  # one half of the red channel the other extreme
    out = transplant_clip(clip, np.repeat(lm[None], T, 0), 5 * _target(), TIMES)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_the_field_is_smooth_and_carries_no_detail(syn, lm, base):
    clip = np.repeat(syn.to_display(base)[None], T, axis=0).astype(np.float32)
    # different pulse sizes per region: the field must blend them, not tile them
    target = 4 * _target() * np.array([1.0, 0.3, 1.6, 0.6, 1.2])[None, :, None]
    out = transplant_clip(clip, np.repeat(lm[None], T, 0), target, TIMES)
    t = int(np.argmax(np.abs(target[:, 0, 1])))  # a frame at a pulse peak
    lin_in, lin_out = syn.to_linear(clip[t, ..., 1]), syn.to_linear(out[t, ..., 1])
    field = lin_out / lin_in - 1.0  # (S, S), 0 off the skin
    weight = skin_field_mask(lm, (S, S))
    # the skin away from the feathered edge, where the field is the RBF blend alone
    inner = cv2.erode((weight >= 1).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    rel_image = lin_in / lin_in[inner].mean() - 1.0

    def roughness(x, where):  # Laplacian energy per unit of signal energy
        lap = cv2.Laplacian(x, cv2.CV_64F)
        return np.mean(lap[where] ** 2) / np.mean((x[where] - x[where].mean()) ** 2)

    assert np.ptp(field[inner]) > 0.01  # the regions really got different fields
    assert roughness(field, inner) < 1e-3 * roughness(rel_image, inner)
    # no image structure anywhere on the skin, feather included: the field's fine
    # scale is uncorrelated with the image's
    fine = lambda x: x - cv2.GaussianBlur(x, (0, 0), 2.0)
    skin = weight > 0
    assert abs(np.corrcoef(fine(field)[skin], fine(rel_image)[skin])[0, 1]) < 0.1


def test_missing_landmarks_short_clips_and_bad_shapes(syn, lm, base):
    clip = np.repeat(syn.to_display(base)[None], T, axis=0).astype(np.float32)
    landmarks = np.repeat(lm[None], T, 0)
    landmarks[5] = np.nan
    out = transplant_clip(clip, landmarks, _target(), TIMES)
    np.testing.assert_array_equal(out[5], clip[5])
    assert (out[6] != clip[6]).any()
    short = transplant_clip(clip[:3], landmarks[:3], _target()[:3], TIMES[:3])
    assert short.shape == (3, S, S, 3) and np.isfinite(short).all()
    # a face a few pixels wide (regions of 0-10 pixels): no crash, nothing wild
    tiny = np.repeat(((lm - lm.mean(0)) * 0.08 + S / 2)[None], T, 0)
    out = transplant_clip(clip, tiny, _target(), TIMES)
    assert np.isfinite(out).all() and np.abs(out - clip).max() < 0.05
    with pytest.raises(ValueError):
        transplant_clip(clip, landmarks, _target()[:10], TIMES)


def test_region_means_from_the_shared_layouts_equal_the_full_masks(syn):
    from deidvid.pulse.transplant import clip_layouts, clip_region_means, layout_region_means

    rng = np.random.default_rng(3)
    lm = np.stack([syn.landmarks_in(128) + rng.normal(0, 0.3, (68, 2)) for _ in range(4)])
    lm[2] = np.nan  # a frame without landmarks
    frames = rng.random((4, 128, 128, 3)).astype(np.float32)
    shared = layout_region_means(frames, clip_layouts(lm, (128, 128)))
    np.testing.assert_allclose(shared, clip_region_means(frames, lm), rtol=1e-12, equal_nan=True)
