"""``deidvid.recognise.chips``: the numpy chips equal the differentiable torch ones
(``deidvid.recognise.align``, itself checked against dlib and OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from deidvid.recognise import align
from deidvid.recognise.chips import (
    arcface_chip,
    dlib_chip,
    dlib_pyramid_down,
    face_chips,
    five_points_from_68,
    similarity_transform,
)


def _views(image: np.ndarray, landmarks: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The face as given, 3x larger (dlib's pyramid path), rolled 30 degrees, cut by the left edge."""
    rolled = cv2.getRotationMatrix2D((200.0, 150.0), 30.0, 1.0)
    return {
        "upright": (image, landmarks),
        "large": (cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR), landmarks * 3 + 1),
        "rolled": (cv2.warpAffine(image, rolled, image.shape[1::-1]), landmarks @ rolled[:, :2].T + rolled[:, 2]),
        "edge": (np.ascontiguousarray(image[:, 150:]), landmarks - [150.0, 0.0]),
    }


def _torch_chip(kind: str, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    frames = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    points = torch.from_numpy(np.asarray(landmarks, np.float64))[None]
    if kind == "dlib":
        chip = align.extract_dlib_chip(frames, points.float())
    else:
        chip = align.extract_arcface_chip(frames, align.five_points_from_68(points))
    return chip[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("view", ["upright", "large", "rolled", "edge"])
@pytest.mark.parametrize("kind", ["dlib", "arcface"])
def test_chips_equal_the_torch_alignment(astronaut, astronaut_landmarks, kind, view):
    image, landmarks = _views(astronaut, astronaut_landmarks.astype(np.float64))[view]
    cut = dlib_chip if kind == "dlib" else arcface_chip
    from_uint8 = cut(image, landmarks) / 255.0
    from_float = cut(image.astype(np.float32) / 255.0, landmarks)
    expected = _torch_chip(kind, image, landmarks)
    assert from_uint8.shape == expected.shape == ((150, 150, 3) if kind == "dlib" else (112, 112, 3))
    np.testing.assert_allclose(from_uint8, expected, atol=5e-5)
    np.testing.assert_allclose(from_float, expected, atol=5e-5)
    if view == "edge":
        assert (expected == 0).any(), "the view does not reach outside the image"


def test_face_chips_batch_scales_uint8_and_checks_shapes(astronaut, astronaut_landmarks):
    images = np.stack([astronaut, astronaut[::-1].copy()])
    landmarks = np.stack([astronaut_landmarks, astronaut_landmarks])
    chips = face_chips("dlib", images, landmarks, 150)
    assert chips.shape == (2, 150, 150, 3) and chips.dtype == np.float32
    np.testing.assert_allclose(chips, face_chips("dlib", images.astype(np.float32) / 255.0, landmarks, 150), atol=1e-6)
    np.testing.assert_allclose(chips[0], dlib_chip(astronaut, astronaut_landmarks) / 255.0, atol=1e-7)
    np.testing.assert_allclose(face_chips("whole", images, landmarks, 0), images / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match="B, H, W, 3"):
        face_chips("dlib", astronaut, landmarks, 150)
    with pytest.raises(ValueError, match="one landmark set per image"):
        face_chips("dlib", images, landmarks[:1], 150)


def test_pyramid_and_transforms_equal_the_torch_versions():
    rng = np.random.default_rng(3)
    image = rng.random((41, 36, 3), dtype=np.float32)
    expected = align.dlib_pyramid_down(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(dlib_pyramid_down(image), expected, atol=1e-6)
    src, dst = rng.normal(size=(3, 6, 2)) * 20, rng.normal(size=(3, 6, 2)) * 20
    np.testing.assert_allclose(
        similarity_transform(src, dst), align.similarity_transform(torch.from_numpy(src), torch.from_numpy(dst)).numpy(), atol=1e-12
    )
    points = rng.normal(size=(2, 68, 2))
    np.testing.assert_allclose(five_points_from_68(points), align.five_points_from_68(torch.from_numpy(points)).numpy())
