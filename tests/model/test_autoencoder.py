"""De-identification autoencoders: architecture, bounds, skin-mean preservation, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deidvid.model.autoencoder import (
    PaperAE,
    ResidualAE,
    ResidualConfig,
    build_model,
    count_parameters,
    load_model,
    remove_masked_mean,
)


def _reference_paper_forward(model: PaperAE, clip: torch.Tensor) -> torch.Tensor:
    """The released architecture written out with functional ops (replicate pad, conv, ...)."""

    def conv(x, layer):
        return F.conv3d(F.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate"), layer.weight, layer.bias)

    def leaky(x):
        return torch.where(x > 0, x, 0.01 * x)

    def up(x):
        return x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)

    def pool(x):
        b, c, t, h, w = x.shape
        return x.reshape(b, c, t, h // 2, 2, w // 2, 2).mean(dim=(4, 6))

    s1 = leaky(conv(clip, model.c1))
    s2 = leaky(conv(pool(s1), model.c2))
    x = leaky(conv(pool(s2), model.c3))
    x = leaky(conv(up(x) + s2, model.c4))
    return (torch.tanh(conv(up(x) + s1, model.c5)) + 1) / 2


def test_paper_ae_has_the_published_parameter_count():
    assert count_parameters(PaperAE()) == 226_563


def test_paper_ae_matches_a_functional_reference():
    torch.manual_seed(0)
    model = PaperAE()
    clip = torch.rand(1, 3, 5, 16, 16)
    with torch.no_grad():
        np.testing.assert_allclose(model(clip), _reference_paper_forward(model, clip), atol=1e-6)


@pytest.mark.parametrize("arch", ["paper", "residual"])
@pytest.mark.parametrize("frames", [1, 7])
def test_shape_and_range_for_any_clip_length(arch, frames):
    torch.manual_seed(0)
    model = build_model(arch)
    clip = torch.rand(2, 3, frames, 32, 48)
    with torch.no_grad():
        out = model(clip)
    assert out.shape == clip.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_paper_ae_mixes_neighbouring_frames_only_within_its_receptive_field():
    torch.manual_seed(0)
    model = PaperAE()
    clip = torch.rand(1, 3, 16, 16, 16)
    changed = clip.clone()
    changed[:, :, 0] = 1.0 - changed[:, :, 0]
    with torch.no_grad():
        diff = (model(clip) - model(changed)).abs().amax(dim=(0, 1, 3, 4))
    assert float(diff[1]) > 0  # its 3D convolutions see the next frame
    assert float(diff[-1]) == 0  # 11-frame receptive field: frame 15 never sees frame 0


def _residual_with_large_output(strength: float = 4 / 255) -> ResidualAE:
    torch.manual_seed(0)
    model = ResidualAE(ResidualConfig(channels=(8, 8, 8), strength=strength))
    with torch.no_grad():
        model.head.weight.mul_(50.0)  # saturate tanh: the strength must still hold
    return model


@pytest.mark.parametrize("project", [False, True])
def test_residual_perturbation_has_the_configured_strength(project):
    strength = 3 / 255
    model = _residual_with_large_output(strength)
    model.config = ResidualConfig(channels=(8, 8, 8), strength=strength, project_skin_mean=project)
    clip = 0.25 + 0.5 * torch.rand(2, 3, 3, 32, 32)  # no clamping
    skin = torch.zeros(2, 1, 3, 32, 32)
    skin[..., 8:20, 6:26] = 1.0
    with torch.no_grad():
        delta = model(clip, skin) - clip
    rms = delta.pow(2).mean(dim=(1, 3, 4)).sqrt()
    np.testing.assert_allclose(rms, strength, rtol=1e-4)


def test_residual_keeps_the_mean_skin_colour_of_every_frame():
    model = _residual_with_large_output()
    clip = 0.25 + 0.5 * torch.rand(2, 3, 4, 32, 32)  # away from 0/1: no clamping
    skin = torch.zeros(2, 1, 4, 32, 32)
    skin[..., 8:20, 6:26] = 1.0
    skin[:, :, 2, :, :10] = 1.0  # the mask may change from frame to frame
    with torch.no_grad():
        out = model(clip, skin)
    masked_mean = lambda v: (v * skin).sum(dim=(-2, -1)) / skin.sum(dim=(-2, -1))  # noqa: E731
    np.testing.assert_allclose(masked_mean(out), masked_mean(clip), atol=1e-6)
    assert float((out - clip).abs().max()) > 1 / 255  # ...while the pixels do change


def test_remove_masked_mean_against_numpy():
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(1, 3, 2, 8, 8))
    mask = (rng.random((1, 1, 2, 8, 8)) > 0.5).astype(float)
    expected = delta.copy()
    for c in range(3):
        for t in range(2):
            m = mask[0, 0, t] > 0
            expected[0, c, t] -= delta[0, c, t][m].mean()
    got = remove_masked_mean(torch.from_numpy(delta), torch.from_numpy(mask))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_residual_runs_per_frame():
    model = _residual_with_large_output()
    clip = torch.rand(1, 3, 6, 32, 32)
    with torch.no_grad():
        whole = model(clip)
        parts = torch.cat([model(clip[:, :, :2]), model(clip[:, :, 2:])], dim=2)
    np.testing.assert_allclose(whole, parts, atol=1e-6)


def test_canonical_skin_mask_is_used_without_a_mask(astronaut_landmarks):
    from deidvid.faces.geometry import crop_box

    model = _residual_with_large_output()
    landmarks = crop_box(astronaut_landmarks).to_crop(astronaut_landmarks)
    model.canonical_landmarks.copy_(torch.as_tensor(landmarks, dtype=torch.float32))
    mask = model.default_skin_mask(128, 128)
    assert mask.shape == (1, 1, 1, 128, 128)
    clip = 0.25 + 0.5 * torch.rand(1, 3, 2, 128, 128)
    with torch.no_grad():
        out = model(clip)
    mean = lambda v: (v * mask).sum(dim=(-2, -1)) / mask.sum()  # noqa: E731
    np.testing.assert_allclose(mean(out), mean(clip), atol=1e-6)


def _bundle(tmp_path, monkeypatch, model, name="ae_residual"):
    from safetensors.torch import save_file

    from deidvid.model.autoencoder import model_config
    from deidvid.weights.manifest import sha256_file

    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    path = tmp_path / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    manifest = {"models": {name: {"file": path.name, "sha256": sha256_file(path), "model": model_config(model)}}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))


def test_load_model_round_trip(tmp_path, monkeypatch):
    model = _residual_with_large_output()
    _bundle(tmp_path, monkeypatch, model)
    loaded = load_model("residual")
    assert not loaded.training
    clip = torch.rand(1, 3, 2, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(clip), model(clip), atol=1e-6)


def test_anonymiser_interface(tmp_path, monkeypatch, astronaut_landmarks):
    from deidvid.faces.geometry import crop_box, cut_crop
    from deidvid.methods import CropClip, PasteMode
    from deidvid.methods.autoencoder import AutoencoderMethod

    _bundle(tmp_path, monkeypatch, _residual_with_large_output())
    anonymiser = AutoencoderMethod("ae_residual", "cpu", max_frames=8)
    assert anonymiser.name == "ae" and anonymiser.paste_mode is PasteMode.RESIDUAL
    import skimage.data

    box = crop_box(astronaut_landmarks)
    crop = cut_crop(np.ascontiguousarray(skimage.data.astronaut()), box).astype(np.float32) / 255.0
    clip = np.repeat(crop[None], 5, axis=0)
    landmarks = np.repeat(box.to_crop(astronaut_landmarks)[None], 5, axis=0)
    out = anonymiser(clip, landmarks)
    assert out.shape == clip.shape and out.dtype == np.float32
    times = np.arange(5) / 30.0
    batch = anonymiser.run(
        [CropClip(c, lm, i, 0, times[: len(c)]) for i, (c, lm) in enumerate([(clip, landmarks), (clip[:3], landmarks[:3]), (clip, landmarks)])]
    )
    assert [b.shape[0] for b in batch] == [5, 3, 5]
    np.testing.assert_allclose(batch[0], out, atol=1e-6)
    from deidvid.faces.skin import skin_mask

    mask = skin_mask(landmarks[0], (128, 128))
    unclamped = (clip[0] > 0.05) & (clip[0] < 0.95)
    if unclamped[mask].all():
        np.testing.assert_allclose(out[0][mask].mean(0), clip[0][mask].mean(0), atol=1e-5)


@pytest.mark.parametrize("strength", [2.0 / 255.0, 8.0 / 255.0])
def test_anonymiser_strength_sets_the_perturbation_rms(tmp_path, monkeypatch, strength):
    from deidvid.methods.autoencoder import AutoencoderMethod

    _bundle(tmp_path, monkeypatch, _residual_with_large_output())
    anonymiser = AutoencoderMethod("ae_residual", "cpu", strength=strength)
    clip = np.full((3, 32, 32, 3), 0.5, np.float32) + np.random.default_rng(0).uniform(-0.1, 0.1, (3, 32, 32, 3))
    out = anonymiser(clip.astype(np.float32))
    rms = np.sqrt(((out - clip) ** 2).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(rms, strength, rtol=1e-3)


def test_anonymiser_strength_is_validated(tmp_path, monkeypatch):
    from deidvid.methods import build_method
    from deidvid.methods.autoencoder import AutoencoderMethod

    _bundle(tmp_path, monkeypatch, _residual_with_large_output())
    with pytest.raises(ValueError, match="strength"):
        AutoencoderMethod("ae_residual", "cpu", strength=0.0)
    with pytest.raises(ValueError, match="residual"):
        build_method("blur", strength=0.02)


def test_bench_model_times_each_method_against_blur_in_the_same_run():
    from deidvid.tools.bench_model import bench_model

    results = bench_model(["pixelate", "ae"], frames=4, runs=2)
    assert [r["method"] for r in results] == ["blur", "pixelate", "ae"]
    blur = results[0]["face_frames_per_s"]
    for r in results:
        assert r["face_frames"] == 4 and len(r["runs_s"]) == 2 and r["face_frames_per_s"] > 0
        assert r["x_blur"] == pytest.approx(r["face_frames_per_s"] / blur, rel=1e-2)
