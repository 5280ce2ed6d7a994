"""Face shape versus pose: a mesh in the image = pose (similarity) x shape (canonical space).

A FaceMesh result is in image axes (x right, y down, z away from the camera); the
canonical face model (:mod:`deidvid.faces.canonical_mesh`) has y up and z towards the
viewer. Flipping y and z is a rotation, so ``image_to_model`` / ``model_to_image``
convert without mirroring. A weighted similarity (Umeyama) fit then splits a mesh into
a :class:`Pose` and a shape in the canonical model's centimetres: the shape carries
identity and expression, the pose carries where the head is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXES = np.array([1.0, -1.0, -1.0])  # image (x, y down, z away) <-> model (x, y up, z towards the viewer)


@dataclass(frozen=True)
class Pose:
    """``model_points = scale * rotation @ shape + translation`` (row-vector form in :meth:`apply`)."""

    rotation: np.ndarray  # (3, 3)
    scale: float
    translation: np.ndarray  # (3,)

    def apply(self, shape: np.ndarray) -> np.ndarray:
        """Canonical-space ``shape (N, 3)`` -> image points ``(N, 3)``."""
        return (self.scale * shape @ self.rotation.T + self.translation) * AXES

    def angles_deg(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees: turning left/right, nodding, tilting."""
        r = self.rotation
        yaw = np.degrees(np.arcsin(np.clip(r[0, 2], -1.0, 1.0)))
        pitch = np.degrees(np.arctan2(-r[1, 2], r[2, 2]))
        roll = np.degrees(np.arctan2(-r[0, 1], r[0, 0]))
        return float(yaw), float(pitch), float(roll)


def fit_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Pose:
    """The similarity with ``target ~ scale * R @ source + t`` (weighted least squares, Umeyama 1991).

    ``source``, ``target``: ``(N, 3)``; ``weights``: ``(N,)`` non-negative (default uniform).
    """
    w = np.ones(len(source)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_t = w @ source, w @ target
    s0, t0 = source - mu_s, target - mu_t
    cov = (t0 * w[:, None]).T @ s0
    u, sigma, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    fix = np.diag([1.0, 1.0, d])
    rotation = u @ fix @ vt
    variance = float(w @ (s0**2).sum(axis=1))
    scale = float(np.trace(np.diag(sigma) @ fix) / max(variance, 1e-12))
    return Pose(rotation, scale, mu_t - scale * rotation @ mu_s)


def split_pose(points: np.ndarray, reference: np.ndarray, weights: np.ndarray | None = None) -> tuple[Pose, np.ndarray]:
    """Image mesh ``points (N, 3)`` -> (pose, shape in the reference's space ``(N, 3)``).

    The pose is fitted to ``reference (N, 3)`` (the canonical model) on ``weights``; the
    shape is the points taken back through it, so ``pose.apply(shape) == points``.
    """
    model = np.asarray(points, np.float64) * AXES
    pose = fit_similarity(reference, model, weights)
    shape = (model - pose.translation) @ pose.rotation / pose.scale
    return pose, shape
