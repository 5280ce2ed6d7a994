"""The canonical face mesh: the bundled arrays, their geometry (symmetry, orientation,
UV map), the hand-written protobuf reader, and the bundle against its source.

The source test streams the pinned ``@mediapipe/face_mesh`` tarball (4 MB kept) into
the source cache on first use."""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import pytest

from deidvid.faces.canonical_mesh import NUM_TRIANGLES, NUM_VERTICES
from deidvid.tools.convert.facemesh import (
    decode_geometry_metadata,
    packed_range,
    protobuf_fields,
)

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip  (MediaPipe's FACEMESH_FACE_OVAL, in order around the face)


@pytest.fixture(scope="module")
def mesh():
    from deidvid.weights.manifest import read_manifest, weights_dir

    entry = read_manifest().get("models", {}).get("canonical_mesh")
    if not entry or not (weights_dir() / entry["file"]).exists():
        pytest.skip("canonical_mesh not built (python -m deidvid.tools.convert facemesh)")
    from deidvid.faces.canonical_mesh import load_canonical_mesh

    return load_canonical_mesh()


def _edges(triangles: np.ndarray) -> np.ndarray:
    return np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])


def test_sizes_and_ranges(mesh):
    assert mesh.vertices.shape == (NUM_VERTICES, 3) and mesh.uv.shape == (NUM_VERTICES, 2)
    assert mesh.triangles.shape == (NUM_TRIANGLES, 3) == (898, 3)
    assert mesh.triangles.min() == 0 and mesh.triangles.max() == 467
    assert len(np.unique(mesh.triangles)) == 468  # every vertex is used
    assert all(len(set(t)) == 3 for t in mesh.triangles.tolist())
    assert (mesh.uv >= 0).all() and (mesh.uv <= 1).all()
    assert mesh.procrustes_ids.shape == mesh.procrustes_weights.shape == (33,)
    assert len(set(mesh.procrustes_ids.tolist())) == 33 and mesh.procrustes_ids.max() < 468
    assert (mesh.procrustes_weights > 0).all()
    assert not mesh.vertices.flags.writeable


def test_axes_and_landmarks(mesh):
    v = mesh.vertices
    assert v[4, 2] == v[:, 2].max()  # the nose tip is closest to the viewer (z up)
    assert v[10, 1] > v[4, 1] > v[152, 1]  # forehead above nose above chin (y up)
    assert v[263, 0] > 0 > v[33, 0]  # x grows towards the image-right eye's outer corner
    # uv: u along x, v downwards
    assert mesh.uv[263, 0] > 0.5 > mesh.uv[33, 0]
    assert mesh.uv[10, 1] < mesh.uv[4, 1] < mesh.uv[152, 1]
    fit = np.linalg.lstsq(np.c_[v[:, :2], np.ones(468)], mesh.uv, rcond=None)[0]
    assert fit[0, 0] > 0.04 and fit[1, 1] < -0.04 and abs(fit[1, 0]) < 1e-3 and abs(fit[0, 1]) < 1e-3


def test_mirror_symmetry(mesh):
    v, mirror = mesh.vertices, mesh.mirror_index()
    assert (mirror[mirror] == np.arange(468)).all()  # an involution: mirror pairs
    midline = mirror == np.arange(468)
    assert midline.sum() == 28 and np.allclose(v[midline, 0], 0, atol=1e-6)
    np.testing.assert_allclose(v[mirror] * [-1, 1, 1], v, atol=1e-5)
    np.testing.assert_allclose(mesh.uv[mirror, 0], 1 - mesh.uv[:, 0], atol=2e-3)
    np.testing.assert_allclose(mesh.uv[mirror, 1], mesh.uv[:, 1], atol=2e-3)
    assert mirror[33] == 263 and mirror[133] == 362 and mirror[61] == 291
    # the mirror image of a triangle is a triangle (reversed in orientation)
    triangles = {tuple(sorted(t)) for t in mesh.triangles.tolist()}
    assert {tuple(sorted(mirror[t])) for t in mesh.triangles} == triangles
    # the Procrustes landmarks come in mirror pairs of equal weight
    weight = dict(zip(mesh.procrustes_ids.tolist(), mesh.procrustes_weights.tolist()))
    assert all(weight[int(mirror[i])] == w for i, w in weight.items())


def test_triangle_orientation_is_consistent(mesh):
    directed = Counter(map(tuple, _edges(mesh.triangles).tolist()))
    assert max(directed.values()) == 1  # no edge is walked twice in the same direction
    undirected = Counter(tuple(sorted(e)) for e in directed)
    inner = [e for e, n in undirected.items() if n == 2]
    boundary = [e for e, n in undirected.items() if n == 1]
    assert len(inner) + len(boundary) == len(undirected) and max(undirected.values()) == 2  # a manifold
    assert all((b, a) in directed and (a, b) in directed for a, b in inner)  # opposite in its two triangles
    # one boundary loop, the face outline: no holes at the eyes or the mouth
    assert len(boundary) == 36 and {i for e in boundary for i in e} == set(FACE_OVAL)
    assert NUM_VERTICES - len(undirected) + NUM_TRIANGLES == 1  # Euler characteristic of a disc
    # counter-clockwise seen from the front: normals point to the viewer (+z)
    v, t = mesh.vertices.astype(np.float64), mesh.triangles
    normals = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    assert (normals[:, 2] > 0).mean() > 0.98
    # the UV map does not fold: every triangle has the same orientation and some area
    uv = mesh.uv.astype(np.float64)
    e1, e2 = uv[t[:, 1]] - uv[t[:, 0]], uv[t[:, 2]] - uv[t[:, 0]]
    area = 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert (area < 0).all() and abs(area).min() > 1e-7


# ------------------------------------------------------------------------------ decoding


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    body = _varint(len(payload)) + payload if wire == 2 else payload
    return _varint(number << 3 | wire) + body


def test_protobuf_reader_on_a_hand_made_message():
    triangle_mesh = b"".join(
        [_field(1, 0, _varint(0)), _field(2, 0, _varint(0))]
        + [_field(3, 5, struct.pack("<f", x)) for x in (1.5, -2.0, 3.25, 0.5, 0.75) * 3]
        + [_field(4, 0, _varint(i)) for i in (0, 1, 2)]
    )
    basis = _field(2, 2, _field(1, 0, _varint(300)) + _field(2, 5, struct.pack("<f", 0.125)))
    message = _field(1, 2, triangle_mesh) + basis + _field(3, 0, _varint(1))
    assert [(f, w) for f, w, _ in protobuf_fields(message)] == [(1, 2), (2, 2), (3, 0)]
    decoded = decode_geometry_metadata(message)
    np.testing.assert_array_equal(decoded["vertices"], [[1.5, -2.0, 3.25]] * 3)
    np.testing.assert_array_equal(decoded["uv"], [[0.5, 0.75]] * 3)
    np.testing.assert_array_equal(decoded["triangles"], [[0, 1, 2]])
    assert decoded["procrustes_ids"].tolist() == [300]  # a two-byte varint
    assert decoded["procrustes_weights"].tolist() == [0.125]
    with pytest.raises(ValueError, match="wire type 1"):
        list(protobuf_fields(_field(1, 1, b"\0" * 8)))
    with pytest.raises(ValueError, match="unexpected GeometryPipelineMetadata field 4"):
        decode_geometry_metadata(message + _field(4, 0, _varint(1)))


def test_packed_range_reads_the_loader_table():
    loader = (
        'loadPackage({"files": [{"filename": "/a/model.tflite", "start": 0, "end": 10}, '
        '{"filename": "/x/geometry.binarypb", "start": 10, "end": 42}], "remote_package_size": 42});'
    )
    assert packed_range(loader, "/x/geometry.binarypb") == (10, 42)
    with pytest.raises(ValueError, match="listed 0 times"):
        packed_range(loader, "/x/other.binarypb")


def test_bundle_equals_the_source(mesh):
    """Decoding the pinned npm package again (byte range checked against its loader)
    gives exactly the bundled arrays."""
    from deidvid.tools.convert.facemesh import (
        GEOMETRY_RANGE,
        PACKED_LOADER,
        fetch_mediapipe_face_mesh,
        read_canonical_mesh,
    )
    from deidvid.testing.sources import fetched_or_skip

    folder = fetched_or_skip(fetch_mediapipe_face_mesh, "@mediapipe/face_mesh not cached and the npm registry unreachable")
    assert packed_range((folder / PACKED_LOADER).read_text()) == GEOMETRY_RANGE
    source = read_canonical_mesh(folder)
    for name in ("vertices", "uv", "triangles", "procrustes_ids", "procrustes_weights"):
        np.testing.assert_array_equal(getattr(mesh, name), source[name], err_msg=name)
