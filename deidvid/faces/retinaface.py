"""RetinaFace-MobileNet0.25 as a torch module: the raw network, for the GPU and the exporters.

A torch re-implementation of biubug6/Pytorch_Retinaface's ``mobilenet0.25`` RetinaFace
(as exported by yakhyo/retinaface-pytorch), with its BatchNorm layers already folded into
the convolutions. Weights: ``weights/retinaface_mnet025.safetensors`` (``python -m
deidvid.tools.convert.main retinaface``). On the CPU, :class:`deidvid.faces.detect.FaceDetector`
runs the same network with ONNX Runtime from a graph exported from this module
(``weights/retinaface_mnet025.onnx``).

Input conventions (training conventions of the source model): BGR channel order, 0..255
floats minus the per-channel mean ``(104, 117, 123)``, no scaling; any height and width.
Outputs are per-anchor ``loc`` (cx, cy, w, h offsets), ``conf`` (softmax over background /
face) and ``landmarks`` (5 x (x, y) offsets), decoded by :mod:`deidvid.faces.detect`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_NAME = "retinaface"

class ConvAct(nn.Module):
    """Conv2d (BatchNorm folded into its bias) followed by an optional LeakyReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        negative_slope: float | None = 0.1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups
        )
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.negative_slope is None:
            return x
        return F.leaky_relu(x, self.negative_slope)


def depthwise_separable(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """MobileNetV1 block: 3x3 depthwise conv, then 1x1 pointwise conv."""
    return nn.Sequential(
        ConvAct(in_channels, in_channels, 3, stride, groups=in_channels),
        ConvAct(in_channels, out_channels, 1),
    )


class MobileNetV1Quarter(nn.Module):
    """MobileNetV1 with width multiplier 0.25; returns the stride 8, 16, 32 features."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            ConvAct(3, 8, 3, stride=2),
            depthwise_separable(8, 16, 1),
            depthwise_separable(16, 32, 2),
            depthwise_separable(32, 32, 1),
            depthwise_separable(32, 64, 2),
            depthwise_separable(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            depthwise_separable(64, 128, 2),
            *(depthwise_separable(128, 128, 1) for _ in range(5)),
        )
        self.stage3 = nn.Sequential(
            depthwise_separable(128, 256, 2),
            depthwise_separable(256, 256, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        return c1, c2, c3


class FeaturePyramid(nn.Module):
    """Top-down FPN with nearest upsampling; 64 channels at every level."""

    def __init__(self, in_channels: Sequence[int] = (64, 128, 256), channels: int = 64) -> None:
        super().__init__()
        self.output1 = ConvAct(in_channels[0], channels, 1)
        self.output2 = ConvAct(in_channels[1], channels, 1)
        self.output3 = ConvAct(in_channels[2], channels, 1)
        self.merge1 = ConvAct(channels, channels, 3)
        self.merge2 = ConvAct(channels, channels, 3)

    def forward(
        self, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3 = self.output3(c3)
        p2 = self.output2(c2) + F.interpolate(p3, size=c2.shape[-2:], mode="nearest")
        p2 = self.merge2(p2)
        p1 = self.output1(c1) + F.interpolate(p2, size=c1.shape[-2:], mode="nearest")
        p1 = self.merge1(p1)
        return p1, p2, p3


class ContextModule(nn.Module):
    """SSH context module: 3x3, 5x5 and 7x7 receptive fields (stacked 3x3 convs)."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.conv3x3 = ConvAct(channels, half, 3, negative_slope=None)
        self.conv5x5_1 = ConvAct(channels, quarter, 3)
        self.conv5x5_2 = ConvAct(quarter, quarter, 3, negative_slope=None)
        self.conv7x7_2 = ConvAct(quarter, quarter, 3)
        self.conv7x7_3 = ConvAct(quarter, quarter, 3, negative_slope=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5 = self.conv5x5_1(x)  # shared by the 5x5 and 7x7 branches
        out = torch.cat(
            [self.conv3x3(x), self.conv5x5_2(branch5), self.conv7x7_3(self.conv7x7_2(branch5))],
            dim=1,
        )
        return F.relu(out)


def _flatten_head(x: torch.Tensor, values: int) -> torch.Tensor:
    """``(B, A*values, h, w)`` -> ``(B, h*w*A, values)`` (row-major, anchors innermost)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, values)


class RetinaFaceMobileNet(nn.Module):
    """RetinaFace-MobileNet0.25, the raw network.

    Input ``(B, 3, H, W)`` float: BGR, 0..255 minus ``BGR_MEAN``. Outputs, with
    ``N = sum over strides s of ceil(H/s) * ceil(W/s) * 2`` anchors:
    ``loc (B, N, 4)``, ``conf (B, N, 2)`` (softmax; column 1 = face),
    ``landmarks (B, N, 10)``.
    """

    anchors_per_location = 2

    def __init__(self) -> None:
        super().__init__()
        self.body = MobileNetV1Quarter()
        self.fpn = FeaturePyramid()
        self.ssh1 = ContextModule()
        self.ssh2 = ContextModule()
        self.ssh3 = ContextModule()
        a = self.anchors_per_location
        self.class_head = nn.ModuleList(nn.Conv2d(64, a * 2, 1) for _ in range(3))
        self.bbox_head = nn.ModuleList(nn.Conv2d(64, a * 4, 1) for _ in range(3))
        self.landmark_head = nn.ModuleList(nn.Conv2d(64, a * 10, 1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p1, p2, p3 = self.fpn(*self.body(x))
        features = (self.ssh1(p1), self.ssh2(p2), self.ssh3(p3))
        loc = torch.cat([_flatten_head(h(f), 4) for h, f in zip(self.bbox_head, features)], 1)
        logits = torch.cat([_flatten_head(h(f), 2) for h, f in zip(self.class_head, features)], 1)
        points = torch.cat(
            [_flatten_head(h(f), 10) for h, f in zip(self.landmark_head, features)], 1
        )
        return loc, logits.softmax(dim=-1), points


def load_retinaface(device: str | torch.device = "cpu") -> RetinaFaceMobileNet:
    """The network with the bundled weights (sha256-verified), in eval mode."""
    from deidvid.weights.manifest import load_safetensors

    model = RetinaFaceMobileNet()
    model.load_state_dict(load_safetensors(WEIGHTS_NAME), strict=True)
    return model.eval().to(device)
