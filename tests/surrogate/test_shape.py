"""deidvid.surrogate.shape: similarity fits and the pose/shape split."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from deidvid.surrogate.shape import AXES, Pose, fit_similarity, split_pose


def test_fit_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(50, 3))
    rotation = Rotation.from_euler("xyz", [10, -25, 5], degrees=True).as_matrix()
    target = 3.5 * source @ rotation.T + [1.0, 2.0, 3.0]
    pose = fit_similarity(source, target)
    np.testing.assert_allclose(pose.rotation, rotation, atol=1e-9)
    assert pose.scale == pytest.approx(3.5)
    np.testing.assert_allclose(pose.translation, [1.0, 2.0, 3.0], atol=1e-9)


def test_fit_similarity_never_returns_a_reflection():
    rng = np.random.default_rng(2)
    source = rng.normal(size=(30, 3))
    pose = fit_similarity(source, source * [-1.0, 1.0, 1.0])
    assert np.linalg.det(pose.rotation) == pytest.approx(1.0)


def test_split_pose_round_trips_and_recovers_the_shape():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(40, 3))
    shape = reference + rng.normal(scale=0.05, size=reference.shape)
    true_pose = Pose(Rotation.from_euler("y", 20, degrees=True).as_matrix(), 12.0, np.array([100.0, -80.0, 0.0]))
    image_points = true_pose.apply(shape)
    pose, recovered = split_pose(image_points, reference)
    np.testing.assert_allclose(pose.apply(recovered), image_points, atol=1e-9)
    assert pose.angles_deg()[0] == pytest.approx(20.0, abs=1.0)
    assert np.abs(recovered - shape).max() < 0.1


def test_image_axes_flip_y_and_z_without_mirroring():
    assert np.prod(AXES) == 1.0
    pose = Pose(np.eye(3), 1.0, np.zeros(3))
    np.testing.assert_allclose(pose.apply(np.array([[1.0, 2.0, 3.0]])), [[1.0, -2.0, -3.0]])
