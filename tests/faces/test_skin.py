"""Skin region from 68 landmarks: geometry, rasterisation (vs skimage.draw), torch twin."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import skimage.draw
import torch

from deidvid.faces import skin


@pytest.fixture(scope="module")
def astronaut_landmarks() -> np.ndarray:
    """dlib landmarks of the face in skimage's astronaut (public-domain NASA photo)."""
    dlib = pytest.importorskip("dlib")
    from deidvid.weights import package_file

    image = skimage.data.astronaut()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(package_file("dlib_landmarks68")))
    boxes, scores, _ = detector.run(image, 1)
    box = boxes[int(np.argmax(scores))]
    shape = predictor(image, box)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def _jittered(landmarks, seed, shift=(0.0, 0.0), scale=1.0):
    rng = np.random.default_rng(seed)
    return landmarks * scale + np.asarray(shift) + rng.uniform(-1.5, 1.5, landmarks.shape)


def test_polygons_follow_the_design(astronaut_landmarks):
    points = astronaut_landmarks
    polygons = skin.skin_polygons(points)
    assert [len(p) for p in polygons] == [5, 6, 5, 6, 14, 20]
    # Each polygon is its landmarks shrunk x0.9 about the box centre.
    first = points[[0, 1, 2, 31, 41]]
    centre = (first.min(0) + first.max(0)) / 2
    np.testing.assert_allclose(polygons[0], centre + 0.9 * (first - centre))
    box = np.ptp(polygons[4], axis=0)
    np.testing.assert_allclose(box, 0.9 * np.ptp(points[list(skin.MOUTH_CHIN_POLYGON)], axis=0))


def test_forehead_is_lifted_by_0_6_interocular(astronaut_landmarks):
    points = astronaut_landmarks
    band = skin.forehead_polygon(points)
    brows, lifted = band[:10], band[10:][::-1]
    np.testing.assert_array_equal(brows, points[17:27])
    interocular = np.linalg.norm(points[42:48].mean(0) - points[36:42].mean(0))
    offsets = lifted - brows
    np.testing.assert_allclose(np.linalg.norm(offsets, axis=1), 0.6 * interocular)
    direction = points[17:27].mean(0) - (points[36:42].mean(0) + points[42:48].mean(0)) / 2
    np.testing.assert_allclose(offsets / np.linalg.norm(offsets, axis=1, keepdims=True),
                               np.tile(direction / np.linalg.norm(direction), (10, 1)))
    assert np.all(offsets[:, 1] < 0)  # upright face: up is -y


def test_rotated_face_lifts_along_face_axis(astronaut_landmarks):
    centre = astronaut_landmarks.mean(0)
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])  # 90 degrees
    rotated = (astronaut_landmarks - centre) @ rotation.T + centre
    band = skin.forehead_polygon(rotated)
    expected = skin.forehead_polygon(astronaut_landmarks)
    np.testing.assert_allclose(band, (expected - centre) @ rotation.T + centre, atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_mask_matches_skimage_draw(astronaut_landmarks, seed):
    points = _jittered(astronaut_landmarks, seed)
    reference = np.zeros((512, 512), dtype=bool)
    for polygon in skin.skin_polygons(points):
        rows, cols = skimage.draw.polygon(polygon[:, 1], polygon[:, 0], reference.shape)
        reference[rows, cols] = True
    mask = skin.skin_mask(points, (512, 512))
    assert mask.sum() > 3000
    assert (mask ^ reference).sum() <= 2  # only exact-on-edge pixel centres may differ


def test_region_is_the_cropped_mask_and_clips_to_the_image(astronaut_landmarks):
    points = astronaut_landmarks - np.array([200.0, 80.0])  # face half outside top-left
    shape = (300, 200)
    region = skin.skin_region(points, shape)
    full = skin.skin_mask(points, shape)
    assert region.y0 >= 0 and region.x0 >= 0
    np.testing.assert_array_equal(region.full_mask(shape), full)
    assert region.num_pixels == full.sum() > 0
    assert not full[:, 100:].any()  # nothing right of the face
    empty = skin.skin_region(points + 5000, shape)
    assert empty.num_pixels == 0


def test_bad_landmarks_raise():
    with pytest.raises(ValueError):
        skin.skin_polygons(np.zeros((5, 2)))


@pytest.mark.parametrize("size", [128, (96, 160)])
def test_torch_mask_equals_numpy_mask(astronaut_landmarks, size):
    height, width = (size, size) if isinstance(size, int) else size
    # Map the face into the crop like the 128x128 training clips.
    lo, hi = astronaut_landmarks.min(0), astronaut_landmarks.max(0)
    scale = 0.8 * min(height, width) / (hi - lo).max()
    base = (astronaut_landmarks - lo) * scale + 0.1 * min(height, width)
    batch = np.stack([_jittered(base, seed, scale=1.0) for seed in range(4)])
    got = skin.skin_mask_torch(torch.tensor(batch, dtype=torch.float32), size)
    assert got.shape == (4, 1, height, width) and got.dtype == torch.float32
    for index in range(4):
        expected = skin.skin_mask(batch[index].astype(np.float32), (height, width))
        mismatch = (got[index, 0].numpy().astype(bool) ^ expected).sum()
        assert mismatch <= 2
        assert expected.sum() > 0.1 * height * width
