"""Alignment for the recognisers, checked against dlib, skimage and OpenCV."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deidvid.recognise.align import (
    ARCFACE_TEMPLATE_112,
    DLIB_ALIGNMENT_INDICES,
    arcface_chip_to_image,
    dlib_pyramid_down,
    extract_arcface_chip,
    extract_dlib_chip,
    five_points_from_68,
    similarity_transform,
)


@pytest.fixture(scope="module")
def astronaut_face():
    """skimage's public-domain astronaut + dlib's 68 landmarks and shape object."""
    dlib = pytest.importorskip("dlib")
    from skimage.data import astronaut

    from deidvid.weights.manifest import package_file

    try:
        predictor = dlib.shape_predictor(str(package_file("dlib_landmarks68")))
    except Exception as err:  # noqa: BLE001 - package absent or unverifiable
        pytest.skip(f"dlib 68-point model unavailable: {err}")
    img = np.ascontiguousarray(astronaut())
    box = max(dlib.get_frontal_face_detector()(img, 1), key=lambda r: r.top() * -1)  # the head
    shape = predictor(img, box)
    lm = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    return img, shape, lm


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


def test_similarity_transform_matches_skimage():
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(1)
    src = rng.normal(size=(4, 7, 2)) * 30
    dst = src @ np.array([[0.8, -0.5], [0.5, 0.8]]).T + 10 + rng.normal(size=src.shape)
    ours = similarity_transform(torch.from_numpy(src), torch.from_numpy(dst)).numpy()
    for i in range(4):
        ref = SimilarityTransform.from_estimate(src[i], dst[i])
        np.testing.assert_allclose(ours[i], ref.params[:2], rtol=1e-9, atol=1e-9)


def test_similarity_transform_recovers_exact_map():
    src = torch.rand(2, 5, 2, dtype=torch.float64) * 100
    angle, scale = torch.tensor([0.3, -1.2]), torch.tensor([1.7, 0.4])
    rot = torch.stack([torch.stack([torch.cos(angle), -torch.sin(angle)], -1),
                       torch.stack([torch.sin(angle), torch.cos(angle)], -1)], -2).double()  # fmt: skip
    dst = scale.double()[:, None, None] * src @ rot.transpose(1, 2) + torch.tensor([5.0, -3.0]).double()
    tform = similarity_transform(src, dst)
    torch.testing.assert_close(tform[:, :, :2], scale.double()[:, None, None] * rot)


def test_five_points_order_follows_detection_convention(astronaut_face):
    _, _, lm = astronaut_face
    p5 = five_points_from_68(torch.from_numpy(lm))
    assert p5.shape == (5, 2)
    assert p5[0, 0] < p5[1, 0]  # subject's right eye is on the image's left
    assert p5[3, 0] < p5[4, 0]
    assert p5[:2, 1].max() < p5[2, 1] < p5[3:, 1].min()  # eyes above nose above mouth


def test_alignment_points_are_dlibs():
    # jaw, brows, lower lip ignored: 28 nose/eye/upper-lip points + 5 inner-lip points
    assert len(DLIB_ALIGNMENT_INDICES) == 33
    assert DLIB_ALIGNMENT_INDICES[0] == 27 and 55 not in DLIB_ALIGNMENT_INDICES


def _dlib_pyramid_down_reference(img: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> loops (before its integer division), one channel."""
    rows, cols = img.shape
    temp = np.zeros((rows, (cols - 3) // 2))
    w = np.array([1, 4, 6, 4, 1], float)
    for r in range(rows):
        for c in range(temp.shape[1]):
            temp[r, c] = (img[r, 2 * c : 2 * c + 5] * w).sum()
    down = []
    for r in range(2, rows - 2, 2):
        down.append((temp[r - 2 : r + 3] * w[:, None]).sum(0) / 256)
    return np.array(down)


def test_pyramid_down_matches_dlib_loops():
    img = np.random.default_rng(0).uniform(0, 255, size=(23, 30))
    ours = dlib_pyramid_down(torch.from_numpy(img)[None, None])[0, 0].numpy()
    ref = _dlib_pyramid_down_reference(img)
    assert ours.shape == ref.shape == ((23 - 3) // 2, (30 - 3) // 2)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


@pytest.mark.parametrize("upscale", [1, 3])  # 3x: dlib samples from its image pyramid
def test_dlib_chip_matches_dlib_get_face_chip(astronaut_face, upscale):
    import cv2
    import dlib

    img, shape, lm = astronaut_face
    if upscale != 1:
        img = np.ascontiguousarray(cv2.resize(img, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC))
        lm = lm * upscale
        parts = [dlib.point(int(round(x)), int(round(y))) for x, y in lm]
        rect = shape.rect
        rect = dlib.rectangle(rect.left() * upscale, rect.top() * upscale, rect.right() * upscale, rect.bottom() * upscale)
        shape = dlib.full_object_detection(rect, parts)
        lm = np.array([(p.x, p.y) for p in parts], dtype=np.float32)
    reference = dlib.get_face_chip(img, shape, 150, 0.25).astype(np.float32)
    ours = extract_dlib_chip(_to_tensor(img), torch.from_numpy(lm)[None])[0].permute(1, 2, 0).numpy() * 255
    # dlib truncates to uint8 (once, or twice through the pyramid): ours - dlib in [0, 1) per step
    diff = ours - reference
    steps = 1 if upscale == 1 else 2
    assert -0.51 < diff.mean() and diff.mean() < 0.51 * steps
    assert np.abs(diff).mean() < 0.6 * steps
    assert np.quantile(np.abs(diff), 0.99) < 2.0 * steps


def test_dlib_chip_from_five_points_is_close_to_68(astronaut_face):
    img, _, lm = astronaut_face
    x = _to_tensor(img)
    lm_t = torch.from_numpy(lm)[None]
    chip68 = extract_dlib_chip(x, lm_t)
    chip5 = extract_dlib_chip(x, five_points_from_68(lm_t))
    assert chip5.shape == chip68.shape == (1, 3, 150, 150)
    assert (chip5 - chip68).abs().mean() < 0.06  # same framing, slightly different fit


def test_arcface_chip_matches_cv2_warp_affine(astronaut_face):
    import cv2
    from skimage.transform import SimilarityTransform

    img, _, lm = astronaut_face
    p5 = five_points_from_68(torch.from_numpy(lm).double())[None]
    # insightface's norm_crop: image -> template similarity, then cv2.warpAffine
    tform = SimilarityTransform.from_estimate(p5[0].numpy(), np.array(ARCFACE_TEMPLATE_112))
    reference = cv2.warpAffine(img, tform.params[:2], (112, 112), flags=cv2.INTER_LINEAR).astype(np.float32)
    ours = extract_arcface_chip(_to_tensor(img), p5.float())[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - reference).mean() < 0.6  # cv2 rounds to uint8 and uses fixed-point weights
    # and the chip-to-image map lands the template near the landmarks (a smile moves
    # the mouth corners off the template, hence the loose bound)
    back = arcface_chip_to_image(p5)[0].numpy()
    template = np.c_[np.array(ARCFACE_TEMPLATE_112), np.ones(5)]
    interocular = np.linalg.norm(p5[0, 0].numpy() - p5[0, 1].numpy())
    assert np.linalg.norm(template @ back.T - p5[0].numpy(), axis=1).mean() < 0.15 * interocular


def test_alignment_is_differentiable_wrt_pixels(astronaut_face):
    img, _, lm = astronaut_face
    x = _to_tensor(img).requires_grad_(True)
    lm_t = torch.from_numpy(lm)[None]
    (extract_dlib_chip(x, lm_t).sum() + extract_arcface_chip(x, five_points_from_68(lm_t)).sum()).backward()
    grad = x.grad[0].abs().sum(0)
    assert torch.isfinite(grad).all() and grad.sum() > 0
    ys, xs = torch.nonzero(grad, as_tuple=True)
    # only pixels around the face receive gradient
    assert xs.min() > lm[:, 0].min() - 80 and xs.max() < lm[:, 0].max() + 80
