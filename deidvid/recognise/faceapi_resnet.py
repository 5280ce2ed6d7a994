"""Recogniser A: dlib's ResNet-29 face descriptor (128-D) as a torch module.

The weights are face-api.js's port of dlib's ``dlib_face_recognition_resnet_model_v1``
(npm ``@vladmandic/face-api``, MIT), converted to ``weights/faceapi_resnet.safetensors``
by ``python -m deidvid.tools.convert.main faceapi``. The per-channel affine layers that
follow every convolution are folded into the convolution at conversion time, so the
module is plain ``Conv2d`` / ``Linear``.

Architecture (dlib's ``anet_type``): conv 7x7/2 -> max-pool 3x3/2 -> residual stages of
32, 64, 128, 256 channels (the first block of every stage after the first halves the
resolution) -> a final down-sampling block -> global average -> 256x128 linear map.
dlib published 99.38 % LFW accuracy for it, at a Euclidean threshold of 0.6.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Mean RGB (0..255) dlib subtracts from the 150x150 chip before the network.
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
#: dlib's ``input_rgb_image`` divides by 256 after subtracting the mean (face-api.js
#: uses 255; 256 matches dlib's own descriptors more closely).
DLIB_INPUT_DIVISOR = 256.0
CHIP_SIZE = 150
EMBEDDING_DIM = 128


class _Residual(nn.Module):
    """Two 3x3 convs with a ReLU between them, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class _ResidualDown(nn.Module):
    """dlib's ``ares_down``: a stride-2 branch added to a 2x2 average-pooled shortcut.

    dlib zero-fills the shortcut's missing channels when the width doubles, and its
    stride-2 3x3 conv has no padding, so odd sizes can leave the branch one pixel short
    of the pooled shortcut: it is zero-padded at the bottom/right, as dlib does.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=2)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.extra_channels = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        branch = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2)
        dh = shortcut.shape[-2] - branch.shape[-2]
        dw = shortcut.shape[-1] - branch.shape[-1]
        if dh or dw:
            branch = F.pad(branch, (0, dw, 0, dh))
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(shortcut + branch)


class FaceApiResNet(nn.Module):
    """dlib ResNet-29 face descriptor.

    Input: ``(B, 3, 150, 150)`` RGB in [0, 1], a dlib face chip (see
    :func:`deidvid.recognise.align.extract_dlib_chip`). Output: ``(B, 128)``
    unnormalised descriptors (dlib's are close to unit length); compare them with the
    Euclidean distance, same person below 0.6.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv32_down = nn.Conv2d(3, 32, 7, stride=2)
        self.conv32_1 = _Residual(32)
        self.conv32_2 = _Residual(32)
        self.conv32_3 = _Residual(32)
        self.conv64_down = _ResidualDown(32, 64)
        self.conv64_1 = _Residual(64)
        self.conv64_2 = _Residual(64)
        self.conv64_3 = _Residual(64)
        self.conv128_down = _ResidualDown(64, 128)
        self.conv128_1 = _Residual(128)
        self.conv128_2 = _Residual(128)
        self.conv256_down = _ResidualDown(128, 256)
        self.conv256_1 = _Residual(256)
        self.conv256_2 = _Residual(256)
        self.conv256_down_out = _ResidualDown(256, 256)
        self.fc = nn.Linear(256, EMBEDDING_DIM, bias=False)
        self.register_buffer("mean", torch.tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, chips_rgb01: Tensor) -> Tensor:
        x = (chips_rgb01 * 255.0 - self.mean) / DLIB_INPUT_DIVISOR
        x = x.contiguous(memory_format=torch.channels_last)  # faster convs on CPU
        x = F.max_pool2d(F.relu(self.conv32_down(x)), 3, 2)
        x = self.conv32_3(self.conv32_2(self.conv32_1(x)))
        x = self.conv64_3(self.conv64_2(self.conv64_1(self.conv64_down(x))))
        x = self.conv128_2(self.conv128_1(self.conv128_down(x)))
        x = self.conv256_2(self.conv256_1(self.conv256_down(x)))
        x = self.conv256_down_out(x)
        return self.fc(x.mean(dim=(2, 3)))


def load_faceapi_resnet(device: str | torch.device = "cpu") -> FaceApiResNet:
    """The frozen network with sha256-verified weights from the manifest ("faceapi_resnet")."""
    from deidvid.weights.manifest import load_safetensors

    net = FaceApiResNet()
    net.load_state_dict(load_safetensors("faceapi_resnet"))
    return net.eval().requires_grad_(False).to(device)
