"""Skin regions from 68 landmarks: placement, disjointness, skin cut, feathered weight."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deidvid.pulse.regions import (
    LEFT_CHEEK_POLYGON,
    REGION_NAMES,
    RIGHT_CHEEK_POLYGON,
    face_layout,
    region_centres,
    region_masks,
    region_polygons,
    skin_field_mask,
)

S = 128


def _raster(polygon: np.ndarray, shape) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return canvas.astype(bool)


@pytest.fixture(scope="module")
def lm(syn):
    return syn.landmarks_in(S)


def test_names_and_shapes(lm):
    assert REGION_NAMES == ("forehead", "left_cheek", "right_cheek", "nose", "chin")
    masks = region_masks(lm, (S, S))
    assert masks.shape == (5, S, S) and masks.dtype == bool
    assert len(region_polygons(lm)) == 5
    assert region_centres(lm).shape == (5, 2)


def test_cheeks_are_the_union_of_the_rppg_cheek_polygons():
    # skin.py's two polygons per cheek, joined along their shared edge 2-31 / 14-35
    assert LEFT_CHEEK_POLYGON == (0, 1, 2, 3, 4, 5, 48, 31, 41)
    assert RIGHT_CHEEK_POLYGON == (16, 15, 14, 13, 12, 11, 54, 35, 46)


def test_masks_non_empty_disjoint_and_inside_the_face(lm, syn):
    masks = region_masks(lm, (S, S))
    sizes = masks.sum(axis=(1, 2))
    assert np.all(sizes > 150), sizes
    for i in range(5):
        for j in range(i + 1, 5):
            overlap = (masks[i] & masks[j]).sum()
            assert overlap <= 0.02 * min(sizes[i], sizes[j]), (
                REGION_NAMES[i],
                REGION_NAMES[j],
            )
    face = syn.face_hull_mask(lm, (S, S))
    assert not (masks.any(axis=0) & ~face).any()


def test_masks_avoid_eyes_brows_mouth_nostrils(lm):
    union = region_masks(lm, (S, S)).any(axis=0)
    for indices in (range(36, 42), range(42, 48), range(48, 60)):
        assert not (union & _raster(lm[list(indices)], (S, S))).any()
    brows = np.zeros((S, S), np.uint8)
    for brow in (lm[17:22], lm[22:27]):
        cv2.polylines(brows, [np.round(brow).astype(np.int32)], False, 1, 1)
    assert not (union & brows.astype(bool)).any()
    assert not (union & _raster(lm[31:36], (S, S))).any()


def test_regions_sit_where_their_names_say(lm):
    masks = region_masks(lm, (S, S))
    ys, xs = np.mgrid[0:S, 0:S]
    centre = {n: (xs[m].mean(), ys[m].mean()) for n, m in zip(REGION_NAMES, masks)}
    eye_top = lm[36:48, 1].min()
    assert centre["forehead"][1] < eye_top
    assert centre["chin"][1] > lm[48:60, 1].max() - 2
    assert centre["left_cheek"][0] < centre["nose"][0] < centre["right_cheek"][0]
    assert lm[39, 0] < centre["nose"][0] < lm[42, 0]
    # the centroids of the polygons agree with the centroids of the pixels
    np.testing.assert_allclose(region_centres(lm), np.array(list(centre.values())), atol=3.0)


def test_integer_shift_shifts_masks_exactly(lm):
    # region_means works inside a face box: this is what makes that exact.
    big = (S + 40, S + 40)
    a = region_masks(lm, big)
    b = region_masks(lm + np.array([17, 9]), big)
    np.testing.assert_array_equal(a[:, : S + 40 - 9, : S + 40 - 17], b[:, 9:, 17:])


def test_masks_scale_with_the_face(syn):
    small = region_masks(syn.landmarks_in(S), (S, S)).sum(axis=(1, 2))
    large = region_masks(syn.landmarks_in(2 * S), (2 * S, 2 * S)).sum(axis=(1, 2))
    np.testing.assert_allclose(large / small, 4.0, rtol=0.15)


def test_face_cut_by_the_edge(lm):
    shifted = lm - np.array([lm[:, 0].min() + 10.0, 0.0])  # left jaw outside the image
    masks = region_masks(shifted, (S, S))
    assert masks[REGION_NAMES.index("right_cheek")].sum() > 150


def test_bad_landmarks_raise():
    with pytest.raises(ValueError):
        region_masks(np.zeros((5, 2)), (S, S))


def test_skin_field_mask_is_feathered_skin(lm, syn):
    weight = skin_field_mask(lm, (S, S), feather_px=3.0)
    assert weight.dtype == np.float32 and weight.shape == (S, S)
    assert weight.min() >= 0.0 and weight.max() <= 1.0
    # zero on the eyes, mouth, nostrils and the background; 1 inside the cheeks
    for point in (
        lm[36:42].mean(0),
        lm[42:48].mean(0),
        lm[[62, 66]].mean(0),
        lm[33],
        (2, 2),
    ):
        x, y = np.round(point).astype(int)
        assert weight[y, x] == 0.0
    masks = region_masks(lm, (S, S))
    assert weight[masks[1]].max() == 1.0 and weight[masks[2]].max() == 1.0
    # every region pixel can be changed (weight > 0), and the weight ramps, not steps
    assert np.all(weight[masks.any(axis=0)] > 0)
    assert ((weight > 0.05) & (weight < 0.95)).sum() > 100
    gy, gx = np.gradient(weight.astype(np.float64))
    assert np.hypot(gx, gy).max() < 1.5 / 3.0 + 0.1  # smoothstep slope 1.5 / feather
    # inside the face, up to one pixel of rasterisation at the outline
    face = cv2.dilate(syn.face_hull_mask(lm, (S, S)).astype(np.uint8), np.ones((3, 3), np.uint8))
    assert not (weight > 0)[face == 0].any()


def test_face_layout_matches_the_separate_functions(lm):
    masks, weight, centres = face_layout(lm, (S, S), 2.5)
    np.testing.assert_array_equal(masks, region_masks(lm, (S, S)))
    np.testing.assert_array_equal(weight, skin_field_mask(lm, (S, S), 2.5))
    np.testing.assert_allclose(centres, region_centres(lm))
