"""deidvid.surrogate.raster: rasterisation, affines, unwrap/render round trips."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.surrogate import raster

SQUARE = np.array([[2.0, 2.0], [28.0, 2.0], [28.0, 28.0], [2.0, 28.0]])
TWO_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]])


def test_triangle_index_covers_a_split_square_without_cracks():
    ids = raster.triangle_index(SQUARE, TWO_TRIANGLES, (32, 32))
    inside = ids[3:28, 3:28]
    assert (inside >= 0).all()
    assert set(np.unique(inside)) == {0, 1}
    assert (ids[0] == -1).all() and (ids[:, 31] == -1).all()


def test_later_triangles_win_in_drawing_order():
    both = np.array([[0, 1, 2], [0, 1, 2]])
    assert (raster.triangle_index(SQUARE, both, (32, 32), order=np.array([1, 0]))[10, 20] == 0)
    assert (raster.triangle_index(SQUARE, both, (32, 32), order=np.array([0, 1]))[10, 20] == 1)


def test_triangle_affines_map_corners_exactly_and_degenerate_to_centroid():
    rng = np.random.default_rng(0)
    target, source = rng.uniform(0, 50, (4, 2)), rng.uniform(0, 50, (4, 2))
    tris = np.array([[0, 1, 2], [0, 0, 3]])
    a = raster.triangle_affines(target, source, tris)
    corners = np.c_[target[tris[0]], np.ones(3)]
    np.testing.assert_allclose(corners @ a[0].T, source[tris[0]], atol=1e-9)
    np.testing.assert_allclose(a[1][:, 2], source[tris[1]].mean(axis=0))
    np.testing.assert_allclose(a[1][:, :2], 0.0)


def test_triangle_affines_equal_a_linear_solve_per_triangle():
    """The closed form against solving ``A @ [x, y, 1] = source`` at the three corners."""
    rng = np.random.default_rng(1)
    target, source = rng.uniform(0, 128, (40, 2)), rng.uniform(0, 256, (40, 2))
    tris = rng.choice(40, size=(60, 3))
    tris = tris[np.abs(raster.signed_areas(target, tris)) > 1.0]
    expected = np.stack([np.linalg.solve(np.c_[target[t], np.ones(3)], source[t]).T for t in tris])
    np.testing.assert_allclose(raster.triangle_affines(target, source, tris), expected, rtol=1e-9, atol=1e-9)


def test_remap_through_samples_an_affine_warp():
    # Target square -> the same square shifted by (3, 1): a pure translation per pixel.
    image = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    ids = raster.triangle_index(SQUARE, TWO_TRIANGLES, (32, 32))
    out = raster.remap_through(image, ids, raster.triangle_affines(SQUARE, SQUARE + [3.0, 1.0], TWO_TRIANGLES))
    ys, xs = np.nonzero(ids >= 0)
    np.testing.assert_allclose(out[ys, xs], image[ys + 1, xs + 3], atol=1e-3)
    assert (out[ids < 0] == 0).all()


def test_signed_areas_and_back_face_culling():
    tri = np.array([[0, 1, 2]])
    clockwise_on_screen = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])  # y down: positive area
    assert raster.signed_areas(clockwise_on_screen, tri)[0] == pytest.approx(100.0)
    assert raster.front_facing(clockwise_on_screen, tri, 1.0)[0]
    assert not raster.front_facing(clockwise_on_screen[[0, 2, 1]], tri, 1.0)[0]


def test_render_draws_the_nearer_of_two_overlapping_triangles():
    points = np.array([[2, 2, 5.0], [28, 2, 5.0], [2, 28, 5.0], [4, 4, 1.0], [30, 4, 1.0], [4, 30, 1.0]])
    tris = np.array([[0, 1, 2], [3, 4, 5]])
    uv = np.array([[0, 0], [1, 0], [0, 1], [4, 0], [5, 0], [4, 1]], float)  # texels 0-1 red, 4-5 green
    texture = np.zeros((2, 6, 3), np.float32)
    texture[:, :2, 0] = 1.0
    texture[:, 4:, 1] = 1.0
    image, covered = raster.render(texture, uv, points, tris, (32, 32), front_sign=1.0)
    assert covered[10, 10]
    assert image[10, 10, 1] > 0.9 and image[10, 10, 0] < 0.1  # depth 1 (nearer) is on top


def test_unwrap_then_render_reproduces_a_smooth_image():
    from deidvid.surrogate.uvspace import uv_space

    space = uv_space(128)
    yy, xx = np.mgrid[:200, :200].astype(np.float32)
    frame = np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    # The face's mesh: the UV layout scaled into the frame, all at one depth (a flat face).
    points = np.c_[space.points * 1.3 + 20.0, np.zeros(len(space.points))]
    texture, mask = raster.unwrap(frame, points, space.triangles, space.ids, space.points)
    assert mask.mean() > 0.5
    # The UV layout is a frontal view of the face (u ~ x, v ~ -y): its triangles face the viewer.
    image, covered = raster.render(texture, space.points, points, space.triangles, (200, 200), space.front_sign)
    inner = covered & np.pad(np.ones((196, 196), bool), 2)
    assert covered.sum() > 5000
    assert np.abs(image[inner] - frame[inner]).mean() < 1.0
