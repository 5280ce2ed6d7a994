"""``deidvid.recognise.runtime``: the ONNX Runtime recognisers embed as the torch modules do,
share their thresholds, and let a scoring process run without importing torch."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from deidvid.recognise import ALL_RECOGNISERS, load_embedder, load_recogniser
from deidvid.recognise.runtime import OnnxRecogniser


@pytest.mark.parametrize("name", ALL_RECOGNISERS)
def test_embeddings_equal_the_torch_recognisers(name, astronaut, astronaut_landmarks):
    onnx, module = load_embedder(name), load_recogniser(name)
    assert isinstance(onnx, OnnxRecogniser)
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 4)
    images = np.stack([astronaut, blurred, astronaut[:, ::-1].copy()])
    landmarks = np.stack([astronaut_landmarks] * 3)
    got, expected = onnx.embed_images(images, landmarks), module.embed_images(images, landmarks)
    assert got.shape == expected.shape == (3, module.dim) and got.dtype == np.float32
    # Distances of ~1e-6 against a threshold near 1: the same match decisions.
    assert np.linalg.norm(got - expected, axis=1).max() < 2e-5
    np.testing.assert_allclose(onnx.embed_images(images.astype(np.float32) / 255.0, landmarks), got, atol=2e-6)
    assert (onnx.threshold, onnx.far1e3_threshold, onnx.evaluation_only) == (
        module.threshold,
        module.far1e3_threshold,
        module.evaluation_only,
    )


def test_scoring_on_the_cpu_never_imports_torch(astronaut, astronaut_landmarks, tmp_path):
    """The identity check's path: load every recogniser for scoring and score a pair."""
    np.save(tmp_path / "face.npy", astronaut)
    np.save(tmp_path / "landmarks.npy", astronaut_landmarks)
    code = f"""
import sys
import numpy as np
from deidvid.measure.identity_check import IdentityCheck
from deidvid.recognise import ALL_RECOGNISERS, load_embedder
face = np.load({str(tmp_path / "face.npy")!r}).astype(np.float32) / 255
landmarks = np.load({str(tmp_path / "landmarks.npy")!r})
check = IdentityCheck({{n: load_embedder(n) for n in ALL_RECOGNISERS}}, stride=1)
check.observe(face[None], face[None], landmarks[None])
summary = check.summary()
assert all(s["frames"] == 1 and s["mean_distance"] == 0.0 for s in summary.values()), summary
print("torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
