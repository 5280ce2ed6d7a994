"""Gaussian filtering against OpenCV's (the reference the rest of the pipeline uses)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from deidvid.train.filters import gaussian_blur2d, gaussian_kernel1d


@pytest.mark.parametrize("sigma, size", [(0.5, 5), (1.5, 11), (2.0, None)])
def test_blur_matches_opencv_with_replicated_borders(sigma, size):
    rng = np.random.default_rng(1)
    image = rng.random((37, 41, 3)).astype(np.float32)
    taps = size or 2 * int(np.ceil(3 * sigma)) + 1
    expected = cv2.GaussianBlur(image, (taps, taps), sigma, borderType=cv2.BORDER_REPLICATE)
    got = gaussian_blur2d(torch.from_numpy(image).permute(2, 0, 1)[None], sigma, size)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_valid_padding_crops_the_same_result():
    images = torch.rand(2, 3, 30, 30, dtype=torch.float64)
    same = gaussian_blur2d(images, 1.5, 11, padding="reflect")
    valid = gaussian_blur2d(images, 1.5, 11, padding="valid")
    assert valid.shape == (2, 3, 20, 20)
    torch.testing.assert_close(valid, same[..., 5:-5, 5:-5])


def test_kernel_is_normalised_and_symmetric():
    kernel = gaussian_kernel1d(1.5, 11)
    assert float(kernel.sum()) == pytest.approx(1.0) and torch.equal(kernel, kernel.flip(0))
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel1d(1.0, 4)
