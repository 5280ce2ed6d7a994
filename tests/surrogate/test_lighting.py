"""deidvid.surrogate.lighting: the log-linear fit against numpy's least squares."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.surrogate import lighting
from deidvid.surrogate.uvspace import uv_space


def _lit_texture(coeffs: np.ndarray, size: int = 64) -> np.ndarray:
    return np.exp(lighting.field(coeffs, uv_space(size))).astype(np.float64)


def test_fit_recovers_known_coefficients():
    space = uv_space(64)
    coeffs = np.array([[np.log(180.0), 0.3, -0.2], [np.log(120.0), 0.1, 0.0], [np.log(90.0), -0.2, 0.4]])
    fitted = lighting.fit(_lit_texture(coeffs), space.skin, space)
    np.testing.assert_allclose(fitted, coeffs, atol=1e-4)


def test_fit_matches_a_reference_least_squares_on_noisy_texels():
    space = uv_space(64)
    rng = np.random.default_rng(0)
    texture = rng.uniform(20, 230, (64, 64, 3))
    u, v = space.grid()
    design = np.c_[np.ones(space.skin.sum()), u[space.skin] - 0.5, v[space.skin] - 0.5]
    reference = np.linalg.lstsq(design, np.log(texture[space.skin]), rcond=None)[0].T
    np.testing.assert_allclose(lighting.fit(texture, space.skin, space), reference, rtol=1e-10)


def test_relight_moves_a_texture_to_the_target_lighting():
    space = uv_space(64)
    own = np.array([[5.0, 0.1, 0.0], [4.8, 0.0, 0.1], [4.5, 0.0, 0.0]])
    target = np.array([[5.2, -0.3, 0.2], [4.6, -0.3, 0.2], [4.4, -0.3, 0.2]])
    texture = _lit_texture(own) * np.random.default_rng(1).uniform(0.9, 1.1, (64, 64, 1))
    relit = lighting.relight(texture, lighting.fit(texture, space.skin, space), target, space)
    np.testing.assert_allclose(lighting.fit(relit, space.skin, space), target, atol=1e-6)


def test_fit_refuses_an_empty_region():
    space = uv_space(64)
    with pytest.raises(ValueError, match="too few"):
        lighting.fit(np.ones((64, 64, 3)), np.zeros((64, 64), bool), space)


def test_relight_equals_the_exponential_of_the_whole_field():
    # The separable product (a factor per column times one per row) against the definition.
    space = uv_space(256)
    rng = np.random.default_rng(2)
    own, target = rng.normal(0, 0.4, (3, 3)), rng.normal(0, 0.4, (3, 3))
    texture = rng.uniform(0, 255, (256, 256, 3)).astype(np.float32)
    reference = texture.astype(np.float64) * np.exp(lighting.field(target - own, space).astype(np.float64))
    relit = lighting.relight(texture, own, target, space)
    assert relit.dtype == np.float32
    np.testing.assert_allclose(relit, reference, rtol=2e-6, atol=1e-4)
