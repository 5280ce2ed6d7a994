"""De-identification autoencoders for 128x128 face clips.

Two architectures share one interface, ``model(clip, skin_mask=None) -> clip``, with
``clip [B, 3, T, H, W]`` RGB in [0, 1] (H, W divisible by 4, resp. 8) and any T:

* ``paper`` (:class:`PaperAE`): Savic & Zhao (BMVC 2023), as released: five Conv3d
  3x3x3 layers (replicate padding, bias, no normalisation, LeakyReLU 0.01), two spatial
  average-pools, nearest up-sampling with additive skips, tanh; 226,563 parameters.
  The original compared the tanh output in [-1, 1] against [0, 1] targets; here it is
  mapped with ``(tanh + 1) / 2``.
* ``residual`` (:class:`ResidualAE`): output = input + a perturbation of fixed
  strength, predicted frame by frame by a small 2D U-Net: ``h = tanh(net(frame))``,
  shifted per frame and channel to zero mean over the skin, then scaled to a fixed
  RMS (``config.strength``; 4/255 is 36 dB PSNR before rounding). The skin shift keeps
  the mean skin colour -- all that spatial-averaging rPPG methods (POS, CHROM, GREEN)
  see -- unchanged by construction. Without a mask, the model's canonical skin mask
  (from the median training landmarks, a buffer) stands in. The fixed strength keeps
  gradients alive (a bounded ``eps * tanh`` output either collapses to zero under the
  reconstruction loss or saturates) and makes the quality budget explicit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEAKY_SLOPE = 0.01
CROP_SIZE = 128


def _conv3d(in_channels: int, out_channels: int) -> nn.Conv3d:
    return nn.Conv3d(in_channels, out_channels, 3, padding=1, padding_mode="replicate", bias=True)


def _up2(x: Tensor) -> Tensor:
    """Nearest-neighbour x2 up-sampling of the last two axes."""
    scale = (1, 2, 2) if x.ndim == 5 else (2, 2)
    return F.interpolate(x, scale_factor=scale, mode="nearest")


class PaperAE(nn.Module):
    """The paper's 3D-CNN autoencoder (``--arch paper``), output mapped to [0, 1].

    ``[B, 3, T, H, W]`` in [0, 1] -> same shape in [0, 1]; ``skin_mask`` is ignored.
    Temporal receptive field 11 frames, no temporal pooling: any T works.
    """

    arch = "paper"
    per_frame = False  # its 3D convolutions mix neighbouring frames

    def __init__(self) -> None:
        super().__init__()
        self.c1 = _conv3d(3, 32)
        self.c2 = _conv3d(32, 64)
        self.c3 = _conv3d(64, 64)
        self.c4 = _conv3d(64, 32)
        self.c5 = _conv3d(32, 3)

    def forward(self, clip: Tensor, skin_mask: Tensor | None = None) -> Tensor:  # noqa: ARG002
        act = lambda x: F.leaky_relu(x, LEAKY_SLOPE)  # noqa: E731
        s1 = act(self.c1(clip))
        s2 = act(self.c2(F.avg_pool3d(s1, (1, 2, 2))))
        x = act(self.c3(F.avg_pool3d(s2, (1, 2, 2))))
        x = act(self.c4(_up2(x) + s2))
        x = torch.tanh(self.c5(_up2(x) + s1))
        return (x + 1.0) / 2.0


@dataclass(frozen=True)
class ResidualConfig:
    """Hyper-parameters of :class:`ResidualAE` (stored with the weights)."""

    channels: tuple[int, ...] = (32, 64, 96)  # per U-Net level, at 1/2, 1/4, 1/8 resolution
    strength: float = 4.0 / 255.0  # RMS of the perturbation per frame (over all pixels)
    project_skin_mean: bool = True


def _conv2d(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="replicate")


class ResidualAE(nn.Module):
    """Input plus a bounded, skin-mean-free perturbation (``--arch residual``).

    A 2D U-Net runs on every frame. For speed on CPUs it starts with a space-to-depth
    step (2x2 pixels -> 12 channels) and ends with its inverse, so the perturbation
    still has full-resolution detail; levels ``config.channels`` (average-pool down,
    nearest up, additive skips). A learned map added at the coarsest level gives it
    position awareness in the landmark-aligned crop. Frames are independent, so
    training may run it on a few frames of a clip only. H and W must be divisible
    by ``2 ** len(channels)``.
    """

    arch = "residual"
    per_frame = True

    def __init__(self, config: ResidualConfig | None = None, size: int = CROP_SIZE) -> None:
        super().__init__()
        self.config = config or ResidualConfig()
        ch = self.config.channels
        self.down = nn.ModuleList(
            [_conv2d(12, ch[0])] + [_conv2d(ch[i], ch[i + 1]) for i in range(len(ch) - 1)]
        )
        self.up = nn.ModuleList([_conv2d(ch[i + 1], ch[i]) for i in reversed(range(len(ch) - 1))])
        self.head = _conv2d(ch[0], 12)
        coarse = size // 2 ** len(ch)
        self.position = nn.Parameter(torch.zeros(1, ch[-1], coarse, coarse))
        # Median training landmarks in crop pixels; the skin mask used when none is given.
        self.register_buffer("canonical_landmarks", torch.zeros(68, 2))

    def perturbation(self, frames: Tensor) -> Tensor:
        """``[N, 3, H, W]`` in [0, 1] -> raw perturbation pattern ``[N, 3, H, W]`` in (-1, 1)."""
        act = lambda x: F.leaky_relu(x, LEAKY_SLOPE)  # noqa: E731
        skips = []
        x = F.pixel_unshuffle(frames, 2)
        for level, conv in enumerate(self.down):
            if level:
                x = F.avg_pool2d(x, 2)
            x = act(conv(x))
            skips.append(x)
        position = self.position
        if position.shape[-2:] != x.shape[-2:]:
            position = F.interpolate(position, size=x.shape[-2:], mode="bilinear", align_corners=False)
        x = x + position
        for conv, skip in zip(self.up, reversed(skips[:-1])):
            x = _up2(act(conv(x))) + skip
        return torch.tanh(F.pixel_shuffle(self.head(x), 2))

    def default_skin_mask(self, height: int, width: int) -> Tensor | None:
        """``[1, 1, 1, H, W]`` skin mask of the canonical landmarks (None if unset)."""
        if not bool(self.canonical_landmarks.abs().sum() > 0):
            return None
        from deidvid.faces.skin import skin_mask_torch

        mask = skin_mask_torch(self.canonical_landmarks[None].double(), (height, width))
        return mask.to(self.canonical_landmarks.dtype)[:, :, None]

    def forward(self, clip: Tensor, skin_mask: Tensor | None = None) -> Tensor:
        """``clip [B, 3, T, H, W]``, ``skin_mask [B, 1, T, H, W]`` or ``[B, 1, H, W]`` (or None)."""
        batch, channels, frames, height, width = clip.shape
        flat = clip.transpose(1, 2).reshape(batch * frames, channels, height, width)
        pattern = self.perturbation(flat).reshape(batch, frames, channels, height, width).transpose(1, 2)
        if self.config.project_skin_mean:
            if skin_mask is None:
                skin_mask = self.default_skin_mask(height, width)
            if skin_mask is not None:
                pattern = remove_masked_mean(pattern, skin_mask)
        # Scaling keeps the skin mean at zero; +1e-12 keeps a flat pattern finite.
        rms = (pattern.pow(2).mean(dim=(1, 3, 4), keepdim=True) + 1e-12).sqrt()
        return (clip + self.config.strength * pattern / rms).clamp(0.0, 1.0)


def remove_masked_mean(delta: Tensor, mask: Tensor) -> Tensor:
    """Shift ``delta [B, C, T, H, W]`` per (B, C, T) so its mean over ``mask`` is zero.

    ``mask``: ``[B, 1, T, H, W]``, ``[B, 1, H, W]`` or broadcastable ``[1, 1, 1, H, W]``,
    weights in [0, 1]. Frames with an empty mask are left unchanged. The shift applies
    to the whole frame (not only the skin) so it adds no edge at the mask's border.
    """
    if mask.ndim == 4:
        mask = mask[:, :, None]
    weights = mask.to(delta.dtype)
    total = weights.sum(dim=(-2, -1), keepdim=True)
    mean = (delta * weights).sum(dim=(-2, -1), keepdim=True) / total.clamp_min(1e-8)
    return delta - torch.where(total > 0, mean, torch.zeros_like(mean))


ARCHITECTURES = ("paper", "residual")


def build_model(arch: str, config: dict | None = None) -> nn.Module:
    """A freshly initialised model of ``arch`` (see ``ARCHITECTURES``)."""
    if arch == "paper":
        return PaperAE()
    if arch == "residual":
        cfg = dict(config or {})
        if "channels" in cfg:
            cfg["channels"] = tuple(int(c) for c in cfg["channels"])
        return ResidualAE(ResidualConfig(**cfg))
    raise ValueError(f"unknown architecture '{arch}'; choose from {', '.join(ARCHITECTURES)}")


def model_config(model: nn.Module) -> dict:
    """JSON-able description (``arch`` + hyper-parameters) to rebuild ``model``."""
    config = asdict(model.config) if isinstance(model, ResidualAE) else {}
    if "channels" in config:
        config["channels"] = list(config["channels"])
    return {"arch": model.arch, "config": config}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_model(name: str = "ae_residual", device: str | torch.device = "cpu") -> nn.Module:
    """A bundled model from ``weights/<name>.safetensors`` (sha256-checked), eval mode.

    ``name`` is the manifest entry (``ae_residual`` or ``ae_paper``; a bare
    architecture name gets the ``ae_`` prefix). The entry's ``model`` block holds the
    architecture and its hyper-parameters.
    """
    from deidvid.errors import WeightsError
    from deidvid.weights.manifest import load_safetensors, manifest_entry

    if not name.startswith("ae_"):
        name = f"ae_{name}"
    spec = manifest_entry(name).get("model")
    if not spec:
        raise WeightsError(f"manifest entry '{name}' has no 'model' block (architecture)")
    model = build_model(spec["arch"], spec.get("config"))
    model.load_state_dict(load_safetensors(name))
    return model.eval().requires_grad_(False).to(device)
