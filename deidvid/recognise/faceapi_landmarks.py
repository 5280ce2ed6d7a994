"""face-api.js 68-point landmark network as a torch module (optional GPU landmark path).

Weights: npm ``@vladmandic/face-api`` ``model/face_landmark_68_model.*`` (MIT), converted
to ``weights/faceapi_landmarks68.safetensors`` by ``python -m deidvid.tools.convert.main
faceapi``. The 68 points follow dlib's iBUG 300-W order, so they can feed the same
alignment as dlib's shape predictor. It is less precise than dlib's ERT predictor (a few
percent of the interocular distance) but batched, differentiable and runs on CUDA.

Network: four densely connected blocks of depthwise-separable 3x3 convs (TF SAME
padding), 7x7/2 average pool, a 256 -> 136 linear layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deidvid.recognise.mobilefacenet import tf_same_pad

CROP_SIZE = 112
#: face-api.js subtracts this mean (RGB, 0..255) and divides by 255.
FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)


class _SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(tf_same_pad(x, 3, self.stride)))


class _DenseBlock(nn.Module):
    """Four convs; each sees the sum of all previous outputs of the block."""

    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        # The very first block starts with a plain conv on the RGB input.
        self.conv0 = nn.Conv2d(cin, cout, 3, stride=2) if first else _SeparableConv(cin, cout, 2)
        self.conv1 = _SeparableConv(cout, cout, 1)
        self.conv2 = _SeparableConv(cout, cout, 1)
        self.conv3 = _SeparableConv(cout, cout, 1)
        self.first = first

    def forward(self, x: Tensor) -> Tensor:
        out1 = F.relu(self.conv0(tf_same_pad(x, 3, 2) if self.first else x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class FaceApiLandmarks68(nn.Module):
    """Input ``(B, 3, 112, 112)`` RGB in [0, 1], a square face crop; output ``(B, 68, 2)``
    (x, y) in [0, 1] crop coordinates (multiply by the crop side)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense0 = _DenseBlock(3, 32, first=True)
        self.dense1 = _DenseBlock(32, 64, first=False)
        self.dense2 = _DenseBlock(64, 128, first=False)
        self.dense3 = _DenseBlock(128, 256, first=False)
        self.fc = nn.Linear(256, 136)
        self.register_buffer("mean", torch.tensor(FACEAPI_MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, crops_rgb01: Tensor) -> Tensor:
        x = (crops_rgb01 * 255.0 - self.mean) / 255.0
        x = self.dense3(self.dense2(self.dense1(self.dense0(x))))
        x = F.avg_pool2d(x, 7, 2).flatten(1)
        return self.fc(x).view(-1, 68, 2)


def square_crop_boxes(boxes: Tensor, scale: float = 1.0) -> Tensor:
    """``(B, 4)`` xyxy boxes -> ``(B, 4)`` squares on the same centre, side ``scale * max(w, h)``."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True) * scale / 2
    return torch.cat([centre - half, centre + half], dim=1)


def crop_resize(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Differentiable crop of ``(B, 3, H, W)`` to ``(B, 3, size, size)`` over xyxy boxes.

    Box edges are pixel edges (a box (0, 0, W, H) covers the whole image); outside the
    image is black, as face-api.js pads.
    """
    batch, _, height, width = images.shape
    steps = (torch.arange(size, device=images.device, dtype=images.dtype) + 0.5) / size
    x = boxes[:, 0:1] + steps * (boxes[:, 2:3] - boxes[:, 0:1])  # (B, size) pixel-edge coords
    y = boxes[:, 1:2] + steps * (boxes[:, 3:4] - boxes[:, 1:2])
    gx = (2 * x / width - 1)[:, None, :].expand(batch, size, size)
    gy = (2 * y / height - 1)[:, :, None].expand(batch, size, size)
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


#: Crop enlargement that best matches dlib's landmarks from dlib HOG boxes (measured on
#: LFW + astronaut: mean error 8 % of the interocular distance over all 68 points, 6 %
#: without the jaw line).
DLIB_BOX_SCALE = 1.2


def landmarks_from_boxes(
    net: FaceApiLandmarks68, images: Tensor, boxes: Tensor, box_scale: float = DLIB_BOX_SCALE
) -> Tensor:
    """68 landmarks ``(B, 68, 2)`` in image pixels for one face box per image.

    Args:
        images: ``(B, 3, H, W)`` RGB in [0, 1].
        boxes: ``(B, 4)`` xyxy face boxes in pixels.
        box_scale: enlarge the square crop by this factor (face-api.js's own detectors
            give looser boxes than dlib's HOG detector).
    """
    squares = square_crop_boxes(boxes.to(images.dtype), box_scale)
    crops = crop_resize(images, squares, CROP_SIZE)
    relative = net(crops)
    side = (squares[:, 2:] - squares[:, :2])[:, None, :]
    return squares[:, None, :2] + relative * side


def load_faceapi_landmarks(device: str | torch.device = "cpu") -> FaceApiLandmarks68:
    """The frozen network with sha256-verified weights ("faceapi_landmarks68")."""
    from deidvid.weights.manifest import load_safetensors

    net = FaceApiLandmarks68()
    net.load_state_dict(load_safetensors("faceapi_landmarks68"))
    return net.eval().requires_grad_(False).to(device)
