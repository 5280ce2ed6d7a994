"""Bundled recognisers: Recogniser A against real dlib, gradients, weights verification."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from deidvid.errors import WeightsError
from deidvid.recognise import RECOGNISERS, Recogniser, load_recogniser, resolve_name
from deidvid.recognise.align import five_points_from_68


def _needs_weights(name: str) -> None:
    from deidvid.weights.manifest import read_manifest, weights_dir

    entry = read_manifest().get("models", {}).get(name)
    if not entry or not (weights_dir() / entry["file"]).exists():
        pytest.skip(f"weights for {name} not built (python -m deidvid.tools.convert.main)")


@pytest.fixture(scope="module")
def dlib_reference():
    """(detector, shape predictor, dlib recogniser), or skip when dlib or its models are absent."""
    pytest.importorskip("dlib")
    from deidvid.tools.check_dlib import dlib_models

    try:
        return dlib_models()
    except Exception as err:  # noqa: BLE001 - package missing or file unverifiable
        pytest.skip(f"dlib reference models unavailable: {err}")


@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut as load

    return np.ascontiguousarray(load())


_LANDMARKS: dict[int, np.ndarray] = {}


def _landmarks(img, detector, predictor):
    """dlib 68 landmarks of the topmost face (the astronaut's head), cached per image."""
    key = id(img)
    if key not in _LANDMARKS:
        box = min(detector(img, 0), key=lambda r: r.top())
        _LANDMARKS[key] = np.array([(p.x, p.y) for p in predictor(img, box).parts()], dtype=np.float32)
    return _LANDMARKS[key]


def _frames(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def test_recogniser_a_matches_dlib_on_astronaut(dlib_reference, astronaut):
    _needs_weights("faceapi_resnet")
    from deidvid.tools.check_dlib import compare_to_dlib

    result = compare_to_dlib([astronaut], upsample=0)
    assert len(result.cosine) == 1
    assert result.cosine.min() >= 0.999
    assert result.distance.max() < 0.06  # far below dlib's 0.6 same-person threshold


@pytest.mark.slow
@pytest.mark.shared_data
def test_recogniser_a_matches_dlib_on_lfw(dlib_reference, shared_data):
    _needs_weights("faceapi_resnet")
    from deidvid.tools.calibrate import load_rgb
    from deidvid.tools.check_dlib import compare_to_dlib, lfw_sample

    images = [load_rgb(p) for p in lfw_sample(shared_data / "images" / "lfw", 8)]
    result = compare_to_dlib(images)
    assert len(result.cosine) >= 6
    assert result.cosine.min() >= 0.999, result.cosine


def test_recogniser_a_5_point_path_agrees_with_68(dlib_reference, astronaut):
    _needs_weights("faceapi_resnet")
    detector, predictor, _ = dlib_reference
    rec = load_recogniser("A")
    lm = torch.from_numpy(_landmarks(astronaut, detector, predictor))[None]
    with torch.no_grad():
        e68 = rec.embed(_frames(astronaut), lm)
        e5 = rec.embed(_frames(astronaut), five_points_from_68(lm))
    assert rec.distance(e68, e5).item() < 0.25  # same person, comfortably


@pytest.mark.parametrize("name", ["A", "B"])
def test_gradients_reach_input_pixels(name, dlib_reference, astronaut):
    canonical = resolve_name(name)
    _needs_weights(canonical)
    detector, predictor, _ = dlib_reference
    rec = load_recogniser(name)
    lm = torch.from_numpy(_landmarks(astronaut, detector, predictor))[None]
    frames = _frames(astronaut).requires_grad_(True)
    emb = rec.embed(frames, lm)
    assert emb.shape == (1, RECOGNISERS[canonical].dim)
    target = torch.zeros_like(emb)
    rec.distance(emb, target).sum().backward()
    grad = frames.grad
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    # the gradient is concentrated on the face, not spread over the frame
    face = grad[0, :, int(lm[0, :, 1].min()) : int(lm[0, :, 1].max()), int(lm[0, :, 0].min()) : int(lm[0, :, 0].max())]
    assert face.abs().sum() > 0.5 * grad.abs().sum()
    # the network stays frozen
    assert all(p.grad is None and not p.requires_grad for p in rec.network.parameters())


def test_gradient_step_moves_embedding(dlib_reference, astronaut):
    """A small signed-gradient step on the pixels moves A's embedding towards a target
    far more than a random step of the same size."""
    _needs_weights("faceapi_resnet")
    detector, predictor, _ = dlib_reference
    rec = load_recogniser("A")
    lm = torch.from_numpy(_landmarks(astronaut, detector, predictor))[None]
    frames = _frames(astronaut)
    with torch.no_grad():
        original = rec.embed(frames, lm)
    direction = torch.randn(original.shape, generator=torch.Generator().manual_seed(0))
    target = original + 0.5 * direction / direction.norm()
    x = frames.clone().requires_grad_(True)
    rec.distance(rec.embed(x, lm), target).sum().backward()
    stepped = (frames - 1.0 / 255 * x.grad.sign()).clamp(0, 1)
    noise = (frames + 1.0 / 255 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(1)).sign()).clamp(0, 1)
    with torch.no_grad():
        start = rec.distance(original, target).item()
        gain = start - rec.distance(rec.embed(stepped, lm), target).item()
        random_gain = abs(start - rec.distance(rec.embed(noise, lm), target).item())
    assert gain > 0.05 and gain > 5 * random_gain


def test_batch_matches_single_faces(dlib_reference, astronaut):
    _needs_weights("faceapi_resnet")
    _needs_weights("mobilefacenet")
    detector, predictor, _ = dlib_reference
    lm = torch.from_numpy(_landmarks(astronaut, detector, predictor))
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    lm_flipped = lm.clone()
    lm_flipped[:, 0] = astronaut.shape[1] - 1 - lm_flipped[:, 0]
    frames, lms = _frames(astronaut, flipped), torch.stack([lm, lm_flipped])
    for name in ("A", "B"):
        rec = load_recogniser(name)
        with torch.no_grad():
            both = rec.embed(frames, lms)
            single = rec.embed(frames[1:], lms[1:])
        torch.testing.assert_close(both[1:], single, atol=1e-4, rtol=1e-4)


def test_registry_and_evaluation_only_rule():
    assert resolve_name("A") == resolve_name("dlib") == "faceapi_resnet"
    assert resolve_name("B") == "mobilefacenet"
    with pytest.raises(ValueError, match="unknown recogniser"):
        resolve_name("arcface")
    assert RECOGNISERS["mobilefacenet"].evaluation_only
    assert not RECOGNISERS["faceapi_resnet"].evaluation_only
    from deidvid.recognise import mobilefacenet

    assert "evaluation only" in mobilefacenet.__doc__.lower()
    assert "evaluation only" in mobilefacenet.MobileFaceNet.__doc__.lower()


def test_thresholds():
    _needs_weights("faceapi_resnet")
    rec = load_recogniser("A")
    assert rec.threshold == pytest.approx(0.6)
    spec = RECOGNISERS["mobilefacenet"]
    uncalibrated = Recogniser(spec, torch.nn.Identity(), calibration=None)
    with pytest.raises(WeightsError, match="calibrate"):
        _ = uncalibrated.threshold


def test_manifest_entries_record_provenance():
    from deidvid.weights.manifest import manifest_entry

    for name in ("faceapi_resnet", "faceapi_landmarks68", "mobilefacenet"):
        _needs_weights(name)
        entry = manifest_entry(name)
        pkg = entry["package"]
        assert pkg["registry"] == "npm" and pkg["version"] and len(pkg["sha256"]) == 64
        assert len(entry["sha256"]) == 64 and entry["licence"] and entry["input"]


def test_corrupted_weights_give_clear_error(tmp_path, monkeypatch):
    _needs_weights("faceapi_resnet")
    from deidvid.weights.manifest import weights_dir

    shutil.copy(weights_dir() / "MANIFEST.json", tmp_path / "MANIFEST.json")
    data = bytearray((weights_dir() / "faceapi_resnet.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "faceapi_resnet.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"faceapi_resnet\.safetensors.*corrupted.*deidvid models convert"):
        load_recogniser("A")
    (tmp_path / "faceapi_resnet.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"faceapi_resnet\.safetensors.*missing.*deidvid models convert"):
        load_recogniser("A")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(dlib_reference, astronaut):
    detector, predictor, _ = dlib_reference
    lm = torch.from_numpy(_landmarks(astronaut, detector, predictor))[None]
    for name in ("A", "B"):
        _needs_weights(resolve_name(name))
        with torch.no_grad():
            cpu = load_recogniser(name, "cpu").embed(_frames(astronaut), lm)
            gpu = load_recogniser(name, "cuda").embed(_frames(astronaut).cuda(), lm.cuda()).cpu()
        assert torch.nn.functional.cosine_similarity(cpu, gpu).item() > 0.9999


@pytest.mark.shared_data
@pytest.mark.parametrize("alias, min_auc", [("A", 0.9), ("B", 0.9), ("C", 0.85)])
def test_recognisers_separate_lfw_identities(alias, min_auc, shared_data):
    """Each recogniser (through its own alignment) puts the same person closer than
    different people: 10 LFW people, two images each. C is the weakest (LFW 94 %)."""
    pytest.importorskip("dlib")
    from deidvid.tools.calibrate import dlib_landmarks, lfw_people, load_rgb

    people = list(lfw_people(shared_data / "images" / "lfw").values())[:40:4]
    paths = [files[i] for files in people for i in (0, 1)]
    landmarks, _ = dlib_landmarks(paths)
    frames = torch.from_numpy(np.stack([load_rgb(p) for p in paths])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        emb = load_recogniser(alias).embed(frames, torch.from_numpy(landmarks))
    d = torch.cdist(emb, emb)
    genuine = torch.stack([d[2 * i, 2 * i + 1] for i in range(len(people))])
    mask = torch.ones_like(d, dtype=torch.bool).triu(1)
    for i in range(len(people)):
        mask[2 * i, 2 * i + 1] = False
    impostor = d[mask]
    assert genuine.median() < impostor.median() - 0.2
    assert (genuine[:, None] < impostor[None]).float().mean() > min_auc  # ROC AUC
