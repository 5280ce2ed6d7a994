"""Training losses: L = alpha L_rec + beta L_id + gamma L_rppg.

* :func:`reconstruction_loss`: ``0.5 (1 - SSIM) + 0.5 MSE`` per frame (SSIM 11x11
  Gaussian, sigma 1.5, K = (0.01, 0.03); the valid region, as the original SSIM code).
* :func:`open_set_identity_loss`: hinge that pushes recogniser A's embedding of the
  output at least ``threshold + margin`` (Euclidean) from the input's; works for people
  never seen in training.
* :func:`closed_set_identity_loss`: the paper's form over a known set of identities,
  with the signs written out (minimised): ``-CE(softmax(p), y) + lambda R(p)``.
* :func:`rppg_loss`: ``1 - Pearson(rPPG(output), rPPG(input))``, target without
  gradient, differentiable POS or CHROM over the skin mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deidvid.recognise import DLIB_THRESHOLD
from deidvid.train.filters import gaussian_blur2d
from deidvid.recognise.align import extract_dlib_chip
from deidvid.rppg.torch_methods import (
    chrom_torch,
    masked_mean_rgb_torch,
    pearson_torch,
    pos_torch,
)

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def frames_of(clip: Tensor) -> Tensor:
    """``[B, C, T, H, W]`` -> ``[B*T, C, H, W]``."""
    batch, channels, frames, height, width = clip.shape
    return clip.transpose(1, 2).reshape(batch * frames, channels, height, width)


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Mean SSIM per image, ``[N, C, H, W]`` x2 in [0, 1] -> ``[N]`` (valid region)."""
    c1, c2 = 0.01**2, 0.03**2

    def local_mean(v: Tensor) -> Tensor:
        return gaussian_blur2d(v, SSIM_SIGMA, SSIM_WINDOW, padding="valid")

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.mean(dim=(1, 2, 3))


def reconstruction_loss(output: Tensor, target: Tensor) -> Tensor:
    """``0.5 (1 - SSIM) + 0.5 MSE`` averaged over frames; clips ``[B, 3, T, H, W]``."""
    out, ref = frames_of(output), frames_of(target)
    mse = (out - ref).pow(2).mean(dim=(1, 2, 3))
    return (0.5 * (1.0 - ssim(out, ref)) + 0.5 * mse).mean()


def embedding_distance(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distance along the last axis, with a finite gradient at zero."""
    return ((a - b).pow(2).sum(dim=-1) + 1e-12).sqrt()


def open_set_identity_loss(
    embedding_out: Tensor,
    embedding_in: Tensor,
    threshold: float = DLIB_THRESHOLD,
    margin: float = 0.2,
) -> Tensor:
    """``mean(relu(threshold + margin - ||e_out - e_in||))``; zero once every frame is
    at least ``margin`` beyond the verification threshold. ``[N, D]`` x2 -> scalar."""
    distance = embedding_distance(embedding_out, embedding_in.detach())
    return F.relu(threshold + margin - distance).mean()


def prototype_logits(embeddings: Tensor, prototypes: Tensor, scale: float = 10.0) -> Tensor:
    """Closed-set logits ``[N, C]``: ``-scale * ||e - c_k||^2`` to identity prototypes ``[C, D]``."""
    return -scale * torch.cdist(embeddings, prototypes).pow(2)


def uniformity_regulariser(probabilities: Tensor) -> Tensor:
    """The paper's ``||p - u|| / (||p|| + ||u||)`` per row, ``[N, C] -> [N]``, u uniform."""
    uniform = torch.full_like(probabilities, 1.0 / probabilities.shape[-1])
    return (probabilities - uniform).norm(dim=-1) / (probabilities.norm(dim=-1) + uniform.norm(dim=-1))


def closed_set_identity_loss(logits: Tensor, labels: Tensor, reg_weight: float = 0.1) -> Tensor:
    """The paper's identity loss with explicit signs (to be minimised with beta > 0).

    ``-CE(softmax(logits), y) + reg_weight * R(softmax(logits))``: raising the
    cross-entropy of the true identity, and pulling the prediction towards uniform so
    the recogniser is not confidently wrong either. As in the released code, CE is
    applied to the probabilities (a second softmax), which keeps it bounded.
    """
    probabilities = logits.softmax(dim=-1)
    cross_entropy = F.cross_entropy(probabilities, labels)
    return -cross_entropy + reg_weight * uniformity_regulariser(probabilities).mean()


def rppg_signal(clip: Tensor, skin: Tensor, fps: float, method: str = "chrom") -> Tensor:
    """Differentiable pulse ``[B, T]`` of ``clip [B, 3, T, H, W]`` over ``skin [B, 1, T, H, W]``."""
    rgb = masked_mean_rgb_torch(clip, skin).clamp_min(1e-4)  # POS/CHROM divide by the mean
    if method == "chrom":
        return chrom_torch(rgb, fps, window_s=None)
    if method == "pos":
        return pos_torch(rgb, fps)
    raise ValueError(f"unknown rPPG method '{method}' (chrom or pos)")


def rppg_loss(output: Tensor, target: Tensor, skin: Tensor, fps: Tensor | list[float], method: str = "chrom") -> Tensor:
    """``1 - Pearson(rPPG(output), rPPG(target))`` averaged over the batch (target detached).

    ``fps`` per clip; clips of equal rate are processed together.
    """
    rates = [float(f) for f in fps]
    losses = []
    for rate in sorted(set(rates)):
        rows = [i for i, r in enumerate(rates) if r == rate]
        out = rppg_signal(output[rows], skin[rows], rate, method)
        with torch.no_grad():
            ref = rppg_signal(target[rows].detach(), skin[rows], rate, method)
        losses.append(1.0 - pearson_torch(out, ref))
    return torch.cat(losses).mean()


class IdentityEmbedder(nn.Module):
    """A frozen recogniser on face crops: aligned chip from the crop's landmarks, then the network.

    ``frames [N, 3, H, W]`` in [0, 1], ``landmarks [N, 68, 2]`` (crop pixels) -> ``[N, D]``.
    ``make_chips(frames, landmarks)`` aligns (default: the dlib chip of recogniser A).
    ``jitter`` (pixels, std) perturbs the landmarks so the model cannot rely on one
    exact alignment (the evaluation re-detects landmarks on the output).
    """

    def __init__(self, recogniser: nn.Module, make_chips: Callable[[Tensor, Tensor], Tensor] = extract_dlib_chip) -> None:
        super().__init__()
        self.recogniser = recogniser.eval().requires_grad_(False)
        self.make_chips = make_chips

    def forward(self, frames: Tensor, landmarks: Tensor, jitter: float = 0.0) -> Tensor:
        if jitter > 0:
            shift = torch.randn(landmarks.shape[0], 1, 2, device=landmarks.device) * jitter
            landmarks = landmarks + shift + 0.25 * jitter * torch.randn_like(landmarks)
        return self.recogniser(self.make_chips(frames, landmarks))


@dataclass(frozen=True)
class LossWeights:
    alpha: float = 1.5  # reconstruction
    beta: float = 0.3  # identity
    gamma: float = 0.1  # rPPG
    reg_lambda: float = 0.1  # uniformity regulariser (closed set)
