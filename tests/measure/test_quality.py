"""PSNR / SSIM against skimage.metrics."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deidvid.measure import quality


def _pair(seed, shape=(96, 128, 3), noise=8.0):
    rng = np.random.default_rng(seed)
    original = skimage.data.astronaut()[: shape[0], : shape[1]]
    if len(shape) == 2:
        original = original[..., 1]
    noisy = original.astype(np.float64) + rng.normal(0, noise, original.shape)
    return original, np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _skimage_ssim(a, b):
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        channel_axis=-1 if a.ndim == 3 else None,
    )


@pytest.mark.parametrize("seed,noise", [(0, 2.0), (1, 8.0), (2, 30.0)])
@pytest.mark.parametrize("shape", [(96, 128, 3), (64, 80), (11, 11, 3)])
def test_psnr_and_ssim_match_skimage(seed, noise, shape):
    a, b = _pair(seed, shape, noise)
    assert quality.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    assert quality.ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-10)


def test_structured_damage_lowers_ssim_more_than_psnr_suggests():
    a = skimage.data.astronaut()[100:228, 150:278]
    blurred = cv2.GaussianBlur(a, (0, 0), 3)
    assert quality.ssim(a, blurred) == pytest.approx(_skimage_ssim(a, blurred), abs=1e-10)
    assert quality.ssim(a, blurred) < quality.ssim(*_pair(0, (128, 128, 3), 2.0))


def test_identical_frames():
    a, _ = _pair(0)
    assert quality.psnr(a, a) == math.inf
    assert quality.ssim(a, a) == pytest.approx(1.0)
    assert quality.finite_or_none(quality.psnr(a, a)) is None
    assert json.dumps({"psnr": quality.finite_or_none(quality.psnr(a, a))}) == '{"psnr": null}'
    assert quality.finite_or_none(31.5) == 31.5


def test_errors():
    a, b = _pair(0)
    with pytest.raises(ValueError):
        quality.psnr(a, b[:10])
    with pytest.raises(ValueError):
        quality.ssim(a[:8, :8], b[:8, :8])


def test_accumulator_over_frames():
    pairs = [_pair(seed, (48, 64, 3), noise) for seed, noise in [(0, 3.0), (1, 10.0), (2, 20.0)]]
    accumulator = quality.QualityAccumulator()
    for a, b in pairs:
        accumulator.update(a, b)
    summary = accumulator.summary()
    assert summary["frames"] == summary["ssim_frames"] == 3
    assert summary["psnr_mean"] == pytest.approx(
        np.mean([peak_signal_noise_ratio(a, b, data_range=255) for a, b in pairs])
    )
    stacked_a = np.stack([a for a, _ in pairs])
    stacked_b = np.stack([b for _, b in pairs])
    assert summary["psnr_pooled"] == pytest.approx(
        peak_signal_noise_ratio(stacked_a, stacked_b, data_range=255)
    )
    assert summary["ssim_mean"] == pytest.approx(np.mean([_skimage_ssim(a, b) for a, b in pairs]))
    same = quality.QualityAccumulator()
    same.update(pairs[0][0], pairs[0][0], with_ssim=False)
    assert same.summary()["psnr_mean"] == math.inf and same.summary()["ssim_frames"] == 0


def test_background_agreement_leaves_the_faces_out():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    copy = original.copy()
    copy[10:40, 20:50] = 0  # the face replaced
    agreement = quality.BackgroundAgreement()
    agreement.update(original, copy, [(20, 10, 50, 40)])
    assert agreement.median_psnr() == math.inf and not agreement.looks_unrelated()
    other = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    agreement.update(original, other, [(20, 10, 50, 40)])
    agreement.update(original, other, [(20, 10, 50, 40)])
    assert agreement.median_psnr() < 10 and agreement.looks_unrelated()
    whole_face = quality.BackgroundAgreement()
    whole_face.update(original, other, [(-5, -5, 90, 70)])  # no background left: not scored
    assert whole_face.median_psnr() is None and not whole_face.looks_unrelated()
