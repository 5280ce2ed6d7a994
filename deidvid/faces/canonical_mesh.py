"""MediaPipe's canonical face model: the neutral 3D face the 468-point mesh is defined on.

From npm ``@mediapipe/face_mesh`` 0.4.1657299874 (Apache-2.0): the
``geometry_pipeline_metadata_landmarks.binarypb`` protobuf packed in its assets, decoded
once by ``python -m deidvid.tools.convert facemesh`` into
``weights/canonical_mesh.safetensors`` (sha256-verified on load).

Conventions (checked by the tests):

* ``vertices (468, 3)`` float32, centimetres, the same point order as
  :class:`deidvid.faces.mesh.FaceMesh`'s output; x grows towards the subject's left
  (the image's right for a face looking at the camera, as the mesh's x), y up (against
  the image's y), z towards the viewer (nose tip z = 7.6). Exactly symmetric under
  x -> -x (:meth:`CanonicalMesh.mirror_index`; 28 points lie on the midline).
* ``uv (468, 2)`` float32 in [0, 1]: u along x, v downwards (image-like: row = v x
  height); u ~ 0.5 + 0.052 x, v ~ 0.5 - 0.046 y.
* ``triangles (898, 3)`` int64 vertex indices. One connected surface with a single
  boundary (the 36-edge face outline): the eyes and the mouth are covered, not holes.
  Consistently oriented (every inner edge is used once in each direction):
  counter-clockwise seen from the front (+z) in (x, y), hence clockwise in (u, v)
  with v downwards.
* ``procrustes_ids (33,)`` int64 and ``procrustes_weights (33,)`` float32: the
  weighted landmarks MediaPipe aligns a detected mesh to this model with (symmetric).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NUM_VERTICES = 468
NUM_TRIANGLES = 898


@dataclass(frozen=True)
class CanonicalMesh:
    """The canonical face model; see the module docstring for units and axes."""

    vertices: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray

    def mirror_index(self) -> np.ndarray:
        """``(468,)`` the index of each vertex's mirror image (x -> -x); midline
        vertices map to themselves."""
        return _mirror_index(self.vertices.tobytes())


@lru_cache(maxsize=1)
def _mirror_index(vertex_bytes: bytes) -> np.ndarray:
    v = np.frombuffer(vertex_bytes, np.float32).reshape(-1, 3).astype(np.float64)
    mirrored = v * [-1.0, 1.0, 1.0]
    index = np.linalg.norm(mirrored[:, None] - v[None], axis=2).argmin(axis=1)
    index.setflags(write=False)
    return index


@lru_cache(maxsize=1)
def load_canonical_mesh() -> CanonicalMesh:
    """The canonical mesh from ``weights/canonical_mesh.safetensors`` (sha256-verified;
    arrays are read-only and shared between callers)."""
    from deidvid.weights.manifest import load_safetensors

    tensors = {k: v.numpy() for k, v in load_safetensors("canonical_mesh").items()}
    mesh = CanonicalMesh(
        vertices=tensors["vertices"].astype(np.float32),
        uv=tensors["uv"].astype(np.float32),
        triangles=tensors["triangles"].astype(np.int64),
        procrustes_ids=tensors["procrustes_ids"].astype(np.int64),
        procrustes_weights=tensors["procrustes_weights"].astype(np.float32),
    )
    for array in (mesh.vertices, mesh.uv, mesh.triangles, mesh.procrustes_ids, mesh.procrustes_weights):
        array.setflags(write=False)
    if mesh.vertices.shape != (NUM_VERTICES, 3) or mesh.triangles.shape != (NUM_TRIANGLES, 3):
        from deidvid.errors import WeightsError

        raise WeightsError(f"canonical mesh has {mesh.vertices.shape} vertices, {mesh.triangles.shape} triangles")
    return mesh
