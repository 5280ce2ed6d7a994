"""The training loop: seeded, resumable from safetensors checkpoints, CPU or CUDA.

A run folder holds ``checkpoint.safetensors`` (model, optimiser state, torch RNG),
``state.json`` (step, configuration, numpy RNG, wall time), ``log.jsonl`` (training
losses) and ``val.jsonl`` (validation metrics). Running the same command again
resumes from the checkpoint; ``--steps`` is the total to reach, and the command line's
learning rate and weight decay apply from the resumed step on.

Per-frame models (``residual``) whose perturbation is skin-mean free train on the K
identity frames of each clip only: the mean skin colour is preserved by construction,
so ``L_rppg`` (~0) is skipped in training and measured on validation instead.

Why one module of ~530 lines: configuration, the step, validation and checkpointing share
the run's state (``Trainer``); split apart they would pass that state around. A later
change that grows it should move validation into ``train/validate.py`` first.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deidvid.measure.identity import IdentityScorer
from deidvid.model.autoencoder import ResidualAE, build_model, count_parameters, model_config
from deidvid.recognise import DLIB_THRESHOLD, Recogniser
from deidvid.train import data as D
from deidvid.train.filters import gaussian_blur2d
from deidvid.train.losses import (
    IdentityEmbedder,
    closed_set_identity_loss,
    embedding_distance,
    frames_of,
    open_set_identity_loss,
    prototype_logits,
    reconstruction_loss,
    rppg_loss,
    rppg_signal,
    ssim,
)

log = logging.getLogger("deidvid.train")

CHECKPOINT = "checkpoint.safetensors"
STATE = "state.json"


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in ``state.json``)."""

    arch: str = "residual"
    steps: int = 1000
    out: str = "runs/ae"
    batch: int = 2
    clip_len: int = 32
    id_frames: int = 8  # K frames per clip through recogniser A
    lr: float = 3e-4
    weight_decay: float = 0.05
    alpha: float = 1.5
    rec_budget: float = 0.0  # L_rec below this is free (hinge): room for the perturbation
    beta: float = 0.3
    gamma: float = 0.1
    reg_lambda: float = 0.1
    id_loss: str = "open"  # "open" (hinge on distance) or "closed" (paper's CE + regulariser)
    recognisers: str = "A"  # comma-separated training recognisers (never B: evaluation only)
    # The identity hinge's threshold for recogniser A (others use their calibrated ones). Validation
    # counts matches at each recogniser's own threshold (the registry's), as verify does.
    threshold: float = DLIB_THRESHOLD
    margin: float = 0.2  # hinge beyond the threshold, in A's units (scaled to each recogniser's threshold)
    rppg_method: str = "chrom"
    jitter: float = 1.0  # landmark noise (px) for the output's chip
    resize_aug: float = 0.5  # probability of a random down/up-scale before the recogniser
    blur_aug: float = 0.0  # probability of a slight blur (sigma 0.3-0.8 px; what H.264 does) before it
    strength: float = 4.0 / 255.0  # residual arch: RMS of the perturbation
    skin_projection: bool = True  # residual arch: zero-mean perturbation over the skin (ablation: off)
    channels: str = "32,64,96"  # residual arch: U-Net width per level (1/2, 1/4, 1/8 resolution)
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0: torch's default)
    # Data processes: 0 samples in the training process (a resumed run replays exactly);
    # N > 0 keeps a GPU fed (each worker seeded by seed, step and its index; not replayable).
    workers: int = 0
    log_every: int = 10
    val_every: int = 250
    ckpt_every: int = 50
    val_clips_per_video: int = 3
    val_id_frames: int = 16  # frames per validation clip scored by recogniser A
    video_fraction: float = 0.4
    data_root: str = ""  # default: ../shared/data
    cache_dir: str = "runs/cache"
    synthetic: bool = False  # tiny random data (tests, smoke runs)
    max_minutes: float = 0.0  # stop (with a checkpoint) after this much wall time; 0: no limit
    # A new run starts from these bundled weights (manifest name, e.g. "ae_paper") instead of
    # random ones: more training for a shipped model. The optimiser state starts afresh.
    init_weights: str = ""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(run: Path, model: torch.nn.Module, optimiser: torch.optim.Optimizer, state: dict) -> None:
    """Model + optimiser tensors to safetensors, the rest to JSON (atomic replace)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for index, param_state in optimiser.state_dict()["state"].items():
        for key, value in param_state.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = run / (CHECKPOINT + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, run / CHECKPOINT)
    state = dict(state, param_groups=[
        {k: v for k, v in g.items() if k != "params"} for g in optimiser.state_dict()["param_groups"]
    ])
    tmp_state = run / (STATE + ".tmp")
    tmp_state.write_text(json.dumps(state, indent=1))
    os.replace(tmp_state, run / STATE)


def load_checkpoint(run: Path, model: torch.nn.Module, optimiser: torch.optim.Optimizer | None) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns the JSON state."""
    from safetensors.torch import load_file

    tensors = load_file(str(run / CHECKPOINT))
    state = json.loads((run / STATE).read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimiser is not None:
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = value
        groups = optimiser.state_dict()["param_groups"]
        for group, saved in zip(groups, state.get("param_groups", [])):
            group.update({k: v for k, v in saved.items() if k != "params"})
        optimiser.load_state_dict({"state": per_param, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    return state


def model_weights_from_run(run: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The model tensors and the JSON state of a run's checkpoint."""
    from safetensors.torch import load_file

    tensors = load_file(str(run / CHECKPOINT))
    state = json.loads((run / STATE).read_text())
    return {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, state


# ----------------------------------------------------------------------------- data


@dataclass
class Datasets:
    train: D.TrainingSource
    validation: dict[str, list[D.ClipSample]] = field(default_factory=dict)
    canonical_landmarks: np.ndarray | None = None


def build_datasets(cfg: TrainConfig, rng: np.random.Generator) -> Datasets:
    """Training source and validation clips (cached under ``cfg.cache_dir``)."""
    if cfg.synthetic:
        stills = D.synthetic_stills(4, rng)
        validation = {
            "synthetic": [D.animate_still(stills.images[0], stills.landmarks[0], max(cfg.clip_len, 16), rng, "v")]
        }
        return Datasets(D.TrainingSource([], stills), validation, np.median(stills.landmarks, axis=0))
    root = Path(cfg.data_root) if cfg.data_root else D.default_data_root()
    cache = Path(cfg.cache_dir)
    video_clips = []
    if cfg.video_fraction > 0:
        video_clips = D.load_cached_clips(D.cache_video_clips(root, D.TRAINING_VIDEOS, cache / "clips"))
    stills_path = cache / "stills.npz"
    if not stills_path.exists():
        paths, names = D.list_lfw(root / "images" / "lfw")
        orl_paths, orl_names = D.list_orl(root / "images" / "orl")
        D.save_stills(D.prepare_stills(paths + orl_paths, names + orl_names), stills_path)
    stills = D.load_stills(stills_path)
    validation = {}
    for relative in D.VALIDATION_VIDEOS:
        files = D.cache_video_clips(root, [relative], cache / "clips")
        if files:
            validation[relative] = D.load_cached_clips(files, cfg.val_clips_per_video)
    landmarks = [c.landmarks for c in video_clips] + [stills.landmarks[:, None]]
    # (stills' landmarks are in context pixels: map them through the crop as animation does)
    landmarks[-1] = np.stack([D.crop_box(lm).to_crop(lm) for lm in stills.landmarks])[:, None]
    canonical = np.median(np.concatenate([lm.reshape(-1, 68, 2) for lm in landmarks]), axis=0)
    log.info(
        "data: %d training video clips, %d stills, %d validation clips",
        len(video_clips), len(stills), sum(len(v) for v in validation.values()),
    )
    return Datasets(D.TrainingSource(video_clips, stills, cfg.video_fraction), validation, canonical)


# ----------------------------------------------------------------------------- recognisers

# Short names in validation keys (match_rate_a, ...); A keeps the historical "a".
RECOGNISER_TAGS = {"faceapi_resnet": "a", "mobileface": "c"}


@dataclass
class TrainingRecogniser:
    recogniser: Recogniser  # what validation scores with
    embedder: IdentityEmbedder  # its network on crops, with landmark jitter: what the loss sees
    threshold: float  # the loss's same-person distance (A: ``cfg.threshold``; others: calibrated)


def training_recognisers(cfg: TrainConfig, device: torch.device) -> dict[str, TrainingRecogniser]:
    """The recognisers of ``cfg.recognisers`` ("A", "A,C", ...) by canonical name.

    Raises ValueError for an unknown one or an evaluation-only one (B).
    """
    from deidvid.recognise import load_recogniser, resolve_name

    chosen: dict[str, TrainingRecogniser] = {}
    for alias in (a.strip() for a in cfg.recognisers.split(",") if a.strip()):
        name = resolve_name(alias)
        recogniser = load_recogniser(name, device)
        if recogniser.evaluation_only:
            raise ValueError(f"recogniser '{alias}' is evaluation only: never train against it")
        threshold = cfg.threshold if name == "faceapi_resnet" else recogniser.threshold
        embedder = IdentityEmbedder(recogniser.network, recogniser.chips)
        chosen[name] = TrainingRecogniser(recogniser, embedder, threshold)
    if not chosen:
        raise ValueError("--recognisers names no recogniser")
    return chosen


# ----------------------------------------------------------------------------- steps


def random_rescale(
    frames: torch.Tensor, rng: np.random.Generator, low: float = 0.75, high: float = 1.3
) -> torch.Tensor:
    """Down/up-scale round trip of ``[N, C, H, W]`` frames, as resizing for paste-back does."""
    size = frames.shape[-1]
    scale = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    inner = max(int(round(size * scale)), 16)
    resized = torch.nn.functional.interpolate(frames, size=(inner, inner), mode="bilinear", align_corners=False)
    back = torch.nn.functional.interpolate(resized, size=(size, size), mode="bilinear", align_corners=False)
    return back


def random_blur(frames: torch.Tensor, rng: np.random.Generator, low: float = 0.3, high: float = 0.8) -> torch.Tensor:
    """A slight Gaussian blur of ``[N, C, H, W]`` frames (sigma uniform in [low, high] px)."""
    sigma = float(rng.uniform(low, high))
    return gaussian_blur2d(frames, sigma, 5, padding="replicate")


def sample_batch(
    source: D.TrainingSource, rng: np.random.Generator, cfg: TrainConfig, frames_mode: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training batch on the CPU: :func:`deidvid.train.data.stack_samples`' four tensors
    and ``id_index [B, K]``, the frames of each clip the identity loss sees.

    A per-frame model (``frames_mode``) gets only those K frames of each clip.
    """
    samples, id_index = [], []
    k = min(cfg.id_frames, cfg.clip_len)
    for _ in range(cfg.batch):
        chosen = np.sort(rng.choice(cfg.clip_len, size=k, replace=False))
        if frames_mode:
            samples.append(source.sample(rng, cfg.clip_len, pick=chosen))
            chosen = np.arange(k)
        else:
            samples.append(source.sample(rng, cfg.clip_len))
        id_index.append(chosen)
    return (*D.stack_samples(samples), torch.as_tensor(np.stack(id_index)))


class BatchStream(torch.utils.data.IterableDataset):
    """Endless :func:`sample_batch` batches, for ``torch.utils.data.DataLoader`` workers."""

    def __init__(self, source: D.TrainingSource, cfg: TrainConfig, frames_mode: bool, first_step: int) -> None:
        super().__init__()
        self.source, self.cfg, self.frames_mode, self.first_step = source, cfg, frames_mode, first_step

    def __iter__(self):  # noqa: ANN204
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.cfg.seed, self.first_step, info.id if info else 0])
        while True:
            yield sample_batch(self.source, rng, self.cfg, self.frames_mode)


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its conv algorithms once
        self.run = Path(cfg.out)
        self.run.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        model_cfg = (
            {
                "strength": cfg.strength,
                "project_skin_mean": cfg.skin_projection,
                "channels": [int(c) for c in cfg.channels.split(",")],
            }
            if cfg.arch == "residual"
            else None
        )
        self.model = build_model(cfg.arch, model_cfg).to(self.device)
        self.optimiser = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=cfg.weight_decay
        )
        self.embedders = training_recognisers(cfg, self.device)
        self.step = 0
        self.wall_s = 0.0
        resumed = (self.run / CHECKPOINT).exists() and (self.run / STATE).exists()
        if resumed:
            state = load_checkpoint(self.run, self.model, self.optimiser)
            for group in self.optimiser.param_groups:  # the command line's schedule applies
                group["lr"], group["weight_decay"] = cfg.lr, cfg.weight_decay
            if state["config"]["arch"] != cfg.arch:
                raise ValueError(f"{self.run} holds a '{state['config']['arch']}' run, not '{cfg.arch}'")
            self.step = int(state["step"])
            self.wall_s = float(state.get("wall_s", 0.0))
            self.rng.bit_generator.state = state["numpy_rng"]
            log.info("resumed %s at step %d", self.run, self.step)
        elif cfg.init_weights:
            from deidvid.weights.manifest import load_safetensors, manifest_entry

            bundled = manifest_entry(cfg.init_weights).get("model", {})
            shape = (bundled.get("arch"), bundled.get("config", {}).get("channels"))
            wanted = (cfg.arch, model_cfg["channels"] if model_cfg else None)
            if shape != wanted:
                raise ValueError(f"--init-weights {cfg.init_weights} is arch/channels {shape}, this run {wanted}")
            self.model.load_state_dict(load_safetensors(cfg.init_weights))
            log.info("started %s from the bundled weights %s", self.run, cfg.init_weights)
        self.data = build_datasets(cfg, np.random.default_rng(cfg.seed + 1))
        if cfg.arch == "residual" and self.data.canonical_landmarks is not None:
            self.model.canonical_landmarks.copy_(torch.as_tensor(self.data.canonical_landmarks, dtype=torch.float32))
        # A per-frame model needs whole clips only for L_rppg, which is ~0 (skipped) when
        # the perturbation is skin-mean free by construction.
        skin_free = isinstance(self.model, ResidualAE) and self.model.config.project_skin_mean
        self.frames_mode = bool(self.model.per_frame and (skin_free or cfg.gamma <= 0))
        self.galleries = self._galleries() if cfg.id_loss == "closed" else {}
        # (recogniser, validation clip) -> (K, D) embeddings of the input frames: fixed, so made once.
        self._val_reference: dict[tuple[str, int], np.ndarray] = {}
        self._batches = None  # the workers' batch iterator, made on first use

    def _next_batch(self) -> tuple[torch.Tensor, ...]:
        """The next training batch on the training device (see :func:`sample_batch`)."""
        cfg = self.cfg
        if cfg.workers <= 0:
            batch = sample_batch(self.data.train, self.rng, cfg, self.frames_mode)
        else:
            if self._batches is None:
                # torch gives each worker one thread; cv2.setNumThreads would hang in a
                # forked worker, so cv2 keeps its own default.
                loader = torch.utils.data.DataLoader(
                    BatchStream(self.data.train, cfg, self.frames_mode, self.step),
                    batch_size=None,
                    num_workers=cfg.workers,
                    prefetch_factor=4,
                    pin_memory=self.device.type == "cuda",
                )
                self._batches = iter(loader)
            batch = next(self._batches)
        *tensors, id_index = batch
        return (*D.batch_on_device(*tensors, device=self.device), id_index)

    # -- identity -------------------------------------------------------------------

    def _galleries(self, size: int = 64) -> dict[str, torch.Tensor]:
        """Embeddings of other people per recogniser: the closed-set classifier's negatives."""
        rng = np.random.default_rng(self.cfg.seed + 2)
        samples = [self.data.train.sample(rng, 1) for _ in range(size)]
        frames, landmarks, _, _ = D.to_tensors(samples, self.device)
        with torch.no_grad():
            return {
                name: rec.embedder(frames_of(frames), landmarks.reshape(-1, 68, 2))
                for name, rec in self.embedders.items()
            }

    def identity_loss(self, out_frames, in_frames, landmarks, batch: int):
        """``L_id`` on ``[B*K, 3, H, W]`` frames, averaged over the training recognisers.

        Returns the loss and, per recogniser, the distances divided by its threshold
        (> 1: not matched), for logging.
        """
        cfg = self.cfg
        seen = out_frames
        if cfg.resize_aug > 0 and self.rng.random() < cfg.resize_aug:
            seen = random_rescale(out_frames, self.rng)
        if cfg.blur_aug > 0 and self.rng.random() < cfg.blur_aug:
            seen = random_blur(seen, self.rng)
        losses, relative = [], {}
        for name, rec in self.embedders.items():
            with torch.no_grad():
                emb_in = rec.embedder(in_frames, landmarks)
            emb_out = rec.embedder(seen, landmarks, jitter=cfg.jitter)
            relative[name] = embedding_distance(emb_out, emb_in) / rec.threshold
            if cfg.id_loss == "open":
                # The hinge in A's units whatever the recogniser's scale.
                scale = cfg.threshold / rec.threshold
                margin = cfg.margin / scale
                losses.append(scale * open_set_identity_loss(emb_out, emb_in, rec.threshold, margin))
                continue
            # Closed set: classes = the batch's own identities (mean input embedding) + gallery.
            per_clip = emb_in.reshape(batch, -1, emb_in.shape[-1]).mean(dim=1)
            prototypes = torch.cat([per_clip, self.galleries[name]])
            labels = torch.arange(batch, device=emb_out.device).repeat_interleave(emb_out.shape[0] // batch)
            logits = prototype_logits(emb_out, prototypes, scale=10.0 * (cfg.threshold / rec.threshold) ** 2)
            losses.append(closed_set_identity_loss(logits, labels, cfg.reg_lambda))
        return torch.stack(losses).mean(), relative

    # -- one step -------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        clip, landmarks, skin, fps, id_index = self._next_batch()
        self.model.train()
        out = self.model(clip, skin)
        rec = reconstruction_loss(out, clip)
        idx = id_index.to(self.device)  # [B, K]
        gather = lambda v: torch.stack([v[b, :, idx[b]] for b in range(v.shape[0])])  # noqa: E731
        out_k, in_k = frames_of(gather(out)), frames_of(gather(clip))
        lm_k = torch.stack([landmarks[b, idx[b]] for b in range(landmarks.shape[0])]).reshape(-1, 68, 2)
        ident, relative = self.identity_loss(out_k, in_k, lm_k, cfg.batch)
        total = cfg.alpha * torch.relu(rec - cfg.rec_budget) + cfg.beta * ident
        pulse = None
        if not self.frames_mode and cfg.gamma > 0:
            pulse = rppg_loss(out, clip, skin, fps, cfg.rppg_method)
            total = total + cfg.gamma * pulse
        self.optimiser.zero_grad(set_to_none=True)
        total.backward()
        self.optimiser.step()
        with torch.no_grad():
            mse = (out - clip).pow(2).mean()
        metrics = {
            "loss": float(total.detach()),
            "rec": float(rec.detach()),
            "id": float(ident.detach()),
            "rppg": float(pulse.detach()) if pulse is not None else float("nan"),
            "psnr": float(10 * torch.log10(1.0 / mse.clamp_min(1e-12))),
        }
        for name, ratio in relative.items():
            ratio = ratio.detach()
            suffix = "" if name == "faceapi_resnet" else f"_{name}"  # A keeps the historical keys
            metrics[f"dist{suffix}"] = float(ratio.mean() * (cfg.threshold if not suffix else 1.0))
            metrics[f"fooled{suffix}"] = float((ratio > 1.0).float().mean())
        return metrics

    # -- validation -----------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Per validation video and as means: each training recogniser's match rate and mean
        distance (same frame, the verify measure: :class:`deidvid.measure.identity.IdentityScorer`),
        PSNR/SSIM of the uint8 output, POS rPPG Pearson."""
        self.model.eval()
        per_video: dict[str, dict[str, float]] = {}
        scorer = IdentityScorer({rec_name: rec.recogniser for rec_name, rec in self.embedders.items()})
        clip_id = 0
        for name, clips in self.data.validation.items():
            sq_err, ssims, pearsons, count = 0.0, [], [], 0
            for sample in clips:
                clip, landmarks, skin, fps = D.to_tensors([sample], self.device)
                # Per-frame models run in chunks (memory); 3D models see the whole clip.
                step = 16 if self.model.per_frame else clip.shape[2]
                out = torch.cat(
                    [self.model(clip[:, :, s : s + step], skin[:, :, s : s + step]) for s in range(0, clip.shape[2], step)],
                    dim=2,
                )
                out = torch.round(out * 255.0) / 255.0  # what a video would store
                sq_err += float(((out - clip) * 255.0).pow(2).sum())
                count += out.numel()
                ssims.extend(ssim(frames_of(out), frames_of(clip)).tolist())
                every = np.arange(0, clip.shape[2], max(clip.shape[2] // self.cfg.val_id_frames, 1))
                frames_in, frames_out = frames_of(clip[:, :, every]), frames_of(out[:, :, every])
                lm = landmarks[0, every]
                for rec_name, rec in self.embedders.items():
                    key = (rec_name, clip_id)
                    if key not in self._val_reference:
                        self._val_reference[key] = rec.recogniser.embed(frames_in, lm).cpu().numpy()
                    embedded_out = rec.recogniser.embed(frames_out, lm).cpu().numpy()
                    scorer.add_embeddings(rec_name, self._val_reference[key], embedded_out, [name] * len(every))
                rate = float(fps[0])
                ref = rppg_signal(clip, skin, rate, "pos")
                got = rppg_signal(out, skin, rate, "pos")
                from deidvid.rppg.torch_methods import pearson_torch

                if float(ref.abs().sum()) > 0:
                    pearsons.append(float(pearson_torch(got, ref)[0]))
                clip_id += 1
            mse = sq_err / max(count, 1)
            per_video[name] = {"clips": len(clips)}
            for rec_name, scores in scorer.summary(name).items():
                tag = RECOGNISER_TAGS.get(rec_name, rec_name)
                per_video[name][f"match_rate_{tag}"] = _number(scores["match_rate"])
                per_video[name][f"distance_{tag}"] = _number(scores["mean_distance"])
            per_video[name] |= {
                "psnr": 10 * math.log10(255.0**2 / mse) if mse > 0 else float("inf"),
                "ssim": float(np.mean(ssims)),
                "rppg_r_pos": float(np.mean(pearsons)) if pearsons else float("nan"),
            }
        keys = [k for k in next(iter(per_video.values())) if k != "clips"]
        means = {key: float(np.nanmean([v[key] for v in per_video.values()])) for key in keys}
        return {"step": self.step, "mean": means, "videos": per_video}

    # -- run --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "wall_s": self.wall_s,
            "config": asdict(self.cfg),
            "model": model_config(self.model),
            "parameters": count_parameters(self.model),
            "numpy_rng": self.rng.bit_generator.state,
            "device": str(self.device),
            "hardware": hardware_description(self.device),
            "torch": torch.__version__,
        }

    def checkpoint(self) -> None:
        save_checkpoint(self.run, self.model, self.optimiser, self.state())

    def _append(self, name: str, record: dict[str, Any]) -> None:
        with open(self.run / name, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def fit(self) -> dict[str, Any] | None:
        cfg = self.cfg
        started = time.perf_counter()
        wall_at_start = self.wall_s
        window: list[dict[str, float]] = []
        last_val = None
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            metrics = self.train_step()
            self.step += 1
            self.wall_s = wall_at_start + time.perf_counter() - started
            metrics["s_per_step"] = time.perf_counter() - t0
            window.append(metrics)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                mean = {k: float(np.nanmean([m[k] for m in window])) if not all(
                    math.isnan(m[k]) for m in window) else None for k in window[0]}
                self._append("log.jsonl", {"step": self.step, "wall_s": round(self.wall_s, 1), **mean})
                log.info("step %d %s", self.step, " ".join(
                    f"{k}={v:.4g}" for k, v in mean.items() if v is not None))
                window = []
            if self.step % cfg.ckpt_every == 0:
                self.checkpoint()
            if cfg.val_every and self.step % cfg.val_every == 0:
                last_val = self.validate_and_record()
            if cfg.max_minutes and (time.perf_counter() - started) / 60 >= cfg.max_minutes:
                log.info("time budget reached at step %d", self.step)
                break
        self.checkpoint()
        if cfg.val_every and (last_val is None or last_val["step"] != self.step):
            last_val = self.validate_and_record()
        return last_val

    def validate_and_record(self) -> dict[str, Any]:
        """:meth:`validate`, appended to the run's ``val.jsonl`` (export reads the last entry)."""
        t0 = time.perf_counter()
        result = self.validate()
        result["seconds"] = round(time.perf_counter() - t0, 1)
        self._append("val.jsonl", result)
        log.info("validation step %d: %s", self.step, json.dumps(result["mean"]))
        return result


def _number(value: float | None) -> float:
    """A validation number: NaN for one that could not be measured (``np.nanmean`` skips it)."""
    return float("nan") if value is None else float(value)


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def train(cfg: TrainConfig) -> dict[str, Any] | None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return Trainer(cfg).fit()
