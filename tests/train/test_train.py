"""Training: losses against references, gradient flow, data, and a resumable smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deidvid.train import data as D
from deidvid.train.losses import (
    closed_set_identity_loss,
    open_set_identity_loss,
    prototype_logits,
    reconstruction_loss,
    rppg_loss,
    ssim,
    uniformity_regulariser,
)

# ----------------------------------------------------------------------------- losses


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((40, 48, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
    )
    to_t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None]  # noqa: E731
    assert float(ssim(to_t(a), to_t(b))[0]) == pytest.approx(expected, abs=2e-3)


def test_reconstruction_loss_is_zero_for_identity_and_grows_with_noise():
    torch.manual_seed(0)
    clip = torch.rand(1, 3, 2, 32, 32)
    assert float(reconstruction_loss(clip, clip)) == pytest.approx(0.0, abs=1e-6)
    small = reconstruction_loss((clip + 0.01 * torch.randn_like(clip)).clamp(0, 1), clip)
    large = reconstruction_loss((clip + 0.1 * torch.randn_like(clip)).clamp(0, 1), clip)
    assert 0 < float(small) < float(large)


def test_open_set_identity_loss_decreases_as_embeddings_separate():
    torch.manual_seed(0)
    reference = torch.randn(4, 128)
    direction = torch.nn.functional.normalize(torch.randn(4, 128), dim=1)
    losses = [float(open_set_identity_loss(reference + d * direction, reference, 0.6, 0.2)) for d in (0.1, 0.4, 0.7, 0.9)]
    assert losses[0] > losses[1] > losses[2] > 0
    assert losses[3] == 0.0  # beyond threshold + margin: nothing left to push
    assert losses[0] == pytest.approx(0.8 - 0.1, abs=1e-5)


def test_open_set_identity_loss_gives_gradient_even_at_zero_distance():
    reference = torch.randn(2, 128)
    out = reference.clone().requires_grad_(True)
    open_set_identity_loss(out, reference).backward()
    assert torch.isfinite(out.grad).all()


def test_closed_set_loss_signs():
    labels = torch.tensor([0])
    confident_right = torch.tensor([[8.0, 0.0, 0.0]])
    confident_wrong = torch.tensor([[0.0, 8.0, 0.0]])
    uniform = torch.zeros(1, 3)
    # Lower (better) when the true identity is not recognised; best near uniform.
    right = float(closed_set_identity_loss(confident_right, labels))
    wrong = float(closed_set_identity_loss(confident_wrong, labels))
    flat = float(closed_set_identity_loss(uniform, labels))
    assert right > wrong
    assert right > flat
    assert float(uniformity_regulariser(torch.full((1, 5), 0.2))[0]) == pytest.approx(0.0, abs=1e-7)
    one_hot = torch.tensor([[1.0, 0, 0, 0, 0]])
    expected = np.linalg.norm([0.8, -0.2, -0.2, -0.2, -0.2]) / (1 + np.sqrt(5 * 0.04))
    assert float(uniformity_regulariser(one_hot)[0]) == pytest.approx(expected, rel=1e-6)


def test_prototype_logits_prefer_the_nearest_identity():
    prototypes = torch.eye(3, 8)
    logits = prototype_logits(torch.eye(3, 8)[[2, 0]] + 0.01, prototypes)
    assert logits.argmax(dim=1).tolist() == [2, 0]


def _pulse_clip(bpm: float, frames: int = 96, fps: float = 30.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    pulse = np.sin(2 * np.pi * bpm / 60 * t)
    clip = 0.5 + 0.05 * rng.random((1, 3, 1, 16, 16)) + 0.002 * pulse[None, None, :, None, None] * np.array(
        [0.5, 1.0, 0.6]
    )[None, :, None, None, None]
    clip = clip + 0.0005 * rng.normal(size=(1, 3, frames, 16, 16))
    return torch.from_numpy(clip).float(), torch.ones(1, 1, frames, 16, 16)


@pytest.mark.parametrize("method", ["chrom", "pos"])
def test_rppg_loss_is_zero_for_identical_signals_and_large_for_different_ones(method):
    clip, skin = _pulse_clip(72)
    other, _ = _pulse_clip(110, seed=1)
    assert float(rppg_loss(clip, clip, skin, [30.0], method)) == pytest.approx(0.0, abs=1e-4)
    assert float(rppg_loss(other, clip, skin, [30.0], method)) > 0.5


def test_gradients_flow_through_all_losses_to_the_model():
    from deidvid.model.autoencoder import PaperAE
    from deidvid.recognise.faceapi_resnet import FaceApiResNet
    from deidvid.train.losses import IdentityEmbedder

    torch.manual_seed(0)
    model = PaperAE()
    clip, skin = _pulse_clip(72, frames=32)
    clip = torch.nn.functional.interpolate(clip, size=(32, 64, 64))
    skin = torch.ones(1, 1, 32, 64, 64)
    out = model(clip)
    embedder = IdentityEmbedder(FaceApiResNet())  # random weights suffice for gradient flow
    from deidvid.recognise.align import dlib_chip_template

    landmarks = dlib_chip_template(150).float()
    landmarks[:17] = torch.stack([torch.linspace(20, 130, 17), 75 + 50 * torch.sin(torch.linspace(0, 3.14, 17))], 1)
    landmarks = (landmarks * 0.4 + 2).expand(2, 68, 2)
    frames_out = out[0, :, :2].transpose(0, 1)
    frames_in = clip[0, :, :2].transpose(0, 1)
    ident = open_set_identity_loss(embedder(frames_out, landmarks), embedder(frames_in, landmarks))
    total = reconstruction_loss(out, clip) + ident + rppg_loss(out, clip, skin, [30.0])
    total.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and float(param.grad.abs().sum()) > 0, name
    assert all(p.grad is None for p in embedder.parameters())  # the recogniser stays frozen


# ----------------------------------------------------------------------------- data


def test_split_is_disjoint_and_names_the_held_out_videos():
    assert not set(D.TRAINING_VIDEOS) & set(D.VALIDATION_VIDEOS)
    names = " ".join(D.VALIDATION_VIDEOS)
    for held_out in ("subject14", "subject17", "sbia1a", "swiz3n", "hdtf_khill"):
        assert held_out in names


def test_hflip_mirrors_points_and_is_an_involution(astronaut_landmarks):
    frames = np.zeros((1, 128, 128, 3), np.uint8)
    lm = astronaut_landmarks[None] * 0.2
    flipped_frames, flipped = D.hflip_clip(frames, lm)
    # The subject's right eye corner (36) becomes the left one (45), mirrored in x.
    assert flipped[0, 45, 0] == pytest.approx(127 - lm[0, 36, 0])
    assert flipped[0, 45, 1] == pytest.approx(lm[0, 36, 1])
    _, back = D.hflip_clip(flipped_frames, flipped)
    np.testing.assert_allclose(back, lm)


@pytest.mark.parametrize("bpm", [66.0, 100.0])
def test_animated_still_carries_the_synthetic_pulse(astronaut, astronaut_landmarks, bpm):
    from deidvid.rppg import heart_rate, pos

    context, landmarks = D.face_context(astronaut, astronaut_landmarks)
    clip = D.animate_still(context, landmarks, 300, np.random.default_rng(3), bpm=bpm)
    assert clip.frames.shape == (300, 128, 128, 3) and clip.frames.dtype == np.uint8
    assert clip.landmarks.shape == (300, 68, 2) and clip.bpm == bpm
    masks = clip.skin_masks().astype(bool)
    rgb = np.stack([f[m].mean(axis=0) for f, m in zip(clip.frames.astype(float), masks)])
    assert heart_rate(pos(rgb, 30.0), 30.0) == pytest.approx(bpm, abs=3.0)


def test_augmentation_keeps_shapes_and_types():
    rng = np.random.default_rng(0)
    stills = D.synthetic_stills(2, rng)
    source = D.TrainingSource([], stills)
    for _ in range(3):
        sample = source.sample(rng, 8)
        assert sample.frames.shape == (8, 128, 128, 3) and sample.frames.dtype == np.uint8
        assert sample.landmarks.shape == (8, 68, 2)


# ----------------------------------------------------------------------------- loop


def _smoke_args(out, steps):
    return [
        "--synthetic", "--steps", str(steps), "--out", str(out), "--batch", "1", "--clip-len", "8",
        "--id-frames", "2", "--val-every", "0", "--log-every", "1", "--threads", "1",
    ]  # fmt: skip


def test_two_step_training_with_resume_is_deterministic(tmp_path):
    from safetensors.torch import load_file

    from deidvid.train.cli import main

    assert main(_smoke_args(tmp_path / "a", 1)) == 0
    state = json.loads((tmp_path / "a" / "state.json").read_text())
    assert state["step"] == 1
    assert main(_smoke_args(tmp_path / "a", 2)) == 0  # resumes at step 1
    assert main(_smoke_args(tmp_path / "b", 2)) == 0  # straight through
    resumed = load_file(str(tmp_path / "a" / "checkpoint.safetensors"))
    straight = load_file(str(tmp_path / "b" / "checkpoint.safetensors"))
    assert json.loads((tmp_path / "a" / "state.json").read_text())["step"] == 2
    assert any(k.startswith("optim.") for k in resumed)
    for key, value in straight.items():
        if key.startswith(("model.", "optim.")):
            torch.testing.assert_close(resumed[key], value, msg=key)
    logged = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in logged)


def test_export_writes_weights_and_manifest_entry(tmp_path, monkeypatch):
    from deidvid.model.autoencoder import load_model
    from deidvid.train.cli import main
    from deidvid.weights.manifest import manifest_entry, sha256_file

    assert main(_smoke_args(tmp_path / "run", 1)) == 0
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path / "weights"))  # after training: it needs recogniser A
    (tmp_path / "weights").mkdir()
    assert main(["export", "--run", str(tmp_path / "run")]) == 0
    entry = manifest_entry("ae_residual")
    assert entry["sha256"] == sha256_file(tmp_path / "weights" / "ae_residual.safetensors")
    assert main(["export", "--run", str(tmp_path / "run")]) == 0  # byte-identical again
    assert manifest_entry("ae_residual")["sha256"] == entry["sha256"]
    assert entry["model"]["arch"] == "residual" and entry["training"]["steps"] == 1
    model = load_model("ae_residual")
    clip = torch.rand(1, 3, 2, 128, 128)
    with torch.no_grad():
        assert model(clip).shape == clip.shape


def test_skin_projection_ablation_trains_frames_only_and_is_recorded(tmp_path):
    """``--no-skin-projection --gamma 0``: the paper's "without L_rppg" ablation."""
    from deidvid.train.cli import main
    from deidvid.train.loop import TrainConfig, Trainer

    args = _smoke_args(tmp_path / "abl", 1) + ["--no-skin-projection", "--gamma", "0"]
    assert main(args) == 0
    state = json.loads((tmp_path / "abl" / "state.json").read_text())
    assert state["model"]["config"]["project_skin_mean"] is False
    trainer = Trainer(TrainConfig(synthetic=True, out=str(tmp_path / "x"), skin_projection=False, gamma=0.1))
    assert not trainer.frames_mode  # L_rppg needs whole clips


def test_training_recognisers_refuse_the_evaluation_only_one():
    from deidvid.train.loop import TrainConfig, training_recognisers

    with pytest.raises(ValueError, match="evaluation only"):
        training_recognisers(TrainConfig(recognisers="A,B"), torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown"):
        training_recognisers(TrainConfig(recognisers="Z"), torch.device("cpu"))
    chosen = training_recognisers(TrainConfig(recognisers="A"), torch.device("cpu"))
    assert list(chosen) == ["faceapi_resnet"] and chosen["faceapi_resnet"].threshold == 0.6


def test_closed_set_training_step_runs_and_logs_identity(tmp_path):
    from deidvid.train.cli import main

    assert main(_smoke_args(tmp_path / "closed", 1) + ["--id-loss", "closed", "--reg-lambda", "0"]) == 0
    logged = json.loads((tmp_path / "closed" / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(logged["id"]) and 0.0 <= logged["fooled"] <= 1.0


def _verify_report(match_a: float, hr: tuple[float, float], psnr: float) -> dict:
    window = {"hr_mae": abs(hr[0] - hr[1]), "pearson": 0.9, "snr_reference_db": 2.0, "snr_test_db": 1.5}
    return {
        "faces": [{
            "identity": {"faceapi_resnet": {"match_rate": match_a, "mean_distance": 0.5}},
            "pulse": {"methods": {"pos": {"hr_original_bpm": hr[0], "hr_deidentified_bpm": hr[1],
                                          "windows": {"10": {"summary": window}}}}},
            "detection": {"rate_deidentified": 1.0},
        }],
        "quality": {"face": {"psnr_mean": psnr, "ssim_mean": 0.95}},
    }  # fmt: skip


def test_evaluation_rows_means_and_table():
    from deidvid.tools.evaluate import markdown_table, mean_rows, summary_row, video_name

    assert video_name("ubfc/subject14/vid.mp4") == "subject14" and video_name("videos/grid/sbia1a.mpg") == "sbia1a"
    rows = [
        summary_row(_verify_report(1.0, (70.0, 72.0), 36.0), "ae", "v1"),
        summary_row(_verify_report(0.0, (80.0, 80.0), 34.0), "ae", "v2"),
    ]
    assert rows[0]["dhr_whole_bpm"] == 2.0 and rows[0]["snr_drop_db"] == 0.5 and "match_B" not in rows[0]
    (mean,) = mean_rows(rows)
    assert mean["video"] == "mean" and mean["match_A"] == 0.5 and mean["face_psnr_db"] == 35.0
    table = markdown_table(rows + [mean])
    assert "B match" not in table and "| ae | **mean** | 0.50 (0.50) |" in table


def test_random_blur_keeps_flat_frames_and_smooths_edges():
    from deidvid.train.loop import random_blur

    rng = np.random.default_rng(0)
    flat = torch.full((1, 3, 16, 16), 0.4)
    torch.testing.assert_close(random_blur(flat, rng), flat)
    edge = torch.zeros(1, 3, 16, 16)
    edge[..., 8:] = 1.0
    blurred = random_blur(edge, rng)
    assert 0.0 < float(blurred[0, 0, 0, 7]) < 0.5 < float(blurred[0, 0, 0, 8]) < 1.0


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # rppg_r_pos: no pulse in an 8-frame synthetic clip
def test_validation_counts_matches_at_the_recognisers_threshold(tmp_path):
    """Validation scores with the verify measure (``IdentityScorer``): a model that returns its
    input is matched on every frame, at recogniser A's own threshold whatever the hinge's."""
    from deidvid.recognise import load_recogniser
    from deidvid.train.loop import TrainConfig, Trainer

    class Passthrough(torch.nn.Module):
        per_frame = True

        def forward(self, clip, skin):
            return clip

    # threshold 0: the loss's hinge; a match rate counted at it would be 0 (no distance is < 0)
    trainer = Trainer(TrainConfig(synthetic=True, out=str(tmp_path / "v"), threshold=0.0, clip_len=8, val_id_frames=4))
    trainer.model = Passthrough()
    video = trainer.validate()["videos"]["synthetic"]
    assert video["match_rate_a"] == 1.0
    assert 0.0 <= video["distance_a"] < 0.1 * load_recogniser("A").threshold  # only uint8 rounding differs


def test_worker_processes_feed_the_same_kind_of_batches(tmp_path):
    """``--workers 2``: batches come from data processes and training proceeds."""
    from deidvid.train.cli import main

    for arch in ("residual", "paper"):
        out = tmp_path / arch
        assert main(_smoke_args(out, 2) + ["--workers", "2", "--arch", arch]) == 0
        logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in logged] == [1, 2]
        assert all(np.isfinite(r["loss"]) for r in logged)
        assert json.loads((out / "state.json").read_text())["config"]["workers"] == 2


def test_batch_stream_workers_draw_different_clips():
    from deidvid.train import data as D
    from deidvid.train.loop import BatchStream, TrainConfig, sample_batch

    rng = np.random.default_rng(0)
    source = D.TrainingSource([], D.synthetic_stills(6, rng))
    cfg = TrainConfig(batch=2, clip_len=4, id_frames=2)
    frames, landmarks, skin, fps, id_index = sample_batch(source, rng, cfg, frames_mode=True)
    assert frames.shape == (2, 2, 128, 128, 3) and frames.dtype == torch.uint8
    assert skin.shape == (2, 2, 128, 128) and skin.dtype == torch.bool and skin.any()
    assert landmarks.shape == (2, 2, 68, 2) and id_index.tolist() == [[0, 1], [0, 1]]
    full = sample_batch(source, rng, cfg, frames_mode=False)
    assert full[0].shape == (2, 4, 128, 128, 3) and full[4].shape == (2, 2)
    first = next(iter(BatchStream(source, cfg, True, first_step=0)))[0]
    resumed = next(iter(BatchStream(source, cfg, True, first_step=10)))[0]
    again = next(iter(BatchStream(source, cfg, True, first_step=0)))[0]
    assert torch.equal(first, again) and not torch.equal(first, resumed)
    on_device = D.batch_on_device(frames, landmarks, skin, fps)
    assert on_device[0].shape == (2, 3, 2, 128, 128) and float(on_device[0].max()) <= 1.0
    assert on_device[2].shape == (2, 1, 2, 128, 128) and on_device[2].dtype == torch.float32


def test_a_new_run_can_start_from_the_bundled_weights(tmp_path):
    from deidvid.train.loop import TrainConfig, Trainer
    from deidvid.weights.manifest import load_safetensors

    bundled = load_safetensors("ae_paper")
    config = dict(synthetic=True, arch="paper", clip_len=8)
    started = Trainer(TrainConfig(out=str(tmp_path / "p"), init_weights="ae_paper", **config)).model.state_dict()
    assert started.keys() == bundled.keys()
    for key, value in bundled.items():
        torch.testing.assert_close(started[key], value, msg=key)
    fresh = Trainer(TrainConfig(out=str(tmp_path / "q"), **config)).model.state_dict()
    assert any(not torch.equal(fresh[key], value) for key, value in bundled.items())


def test_bundled_weights_of_another_architecture_are_refused(tmp_path):
    from deidvid.train.loop import TrainConfig, Trainer

    with pytest.raises(ValueError, match="init-weights ae_paper"):
        Trainer(TrainConfig(synthetic=True, arch="residual", out=str(tmp_path / "r"), init_weights="ae_paper"))
    with pytest.raises(ValueError, match="init-weights ae_residual"):  # the bundled one is 64,128,192 wide
        Trainer(TrainConfig(synthetic=True, arch="residual", channels="32,64,96", out=str(tmp_path / "s"),
                            init_weights="ae_residual"))
