"""Face detection: RetinaFace with a MobileNetV1-0.25 backbone (box + 5 points).

The network is a torch re-implementation of biubug6/Pytorch_Retinaface's
``mobilenet0.25`` RetinaFace (as exported by yakhyo/retinaface-pytorch), with its
BatchNorm layers already folded into the convolutions. Weights come from
``weights/retinaface_mnet025.safetensors`` (``python -m deidvid.tools.convert.main
retinaface``; see ``deidvid/weights/convert_retinaface.py``).

Input conventions of the raw network (training conventions of the source model):
BGR channel order, 0..255 floats minus the per-channel mean ``(104, 117, 123)``, no
scaling; any height and width. Outputs are per-anchor ``loc`` (cx, cy, w, h offsets),
``conf`` (softmax over background / face) and ``landmarks`` (5 x (x, y) offsets),
decoded against SSD-style priors with variances ``(0.1, 0.2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deidvid.errors import BadInputError
from deidvid.faces.types import Detection

WEIGHTS_NAME = "retinaface"

# Per-channel mean of the training images, BGR order (biubug6 ``rgb_mean``).
BGR_MEAN = (104.0, 117.0, 123.0)
# Feature strides and the two square anchor sizes (input pixels) at each stride.
ANCHOR_STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
# SSD box-coding variances: centre offsets, log size ratios.
VARIANCES = (0.1, 0.2)
# Candidates kept before and after NMS (biubug6 defaults).
PRE_NMS_TOP_K = 5000
POST_NMS_TOP_K = 750


# --------------------------------------------------------------------------- network


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


# ------------------------------------------------------------------- box coding, NMS


def prior_boxes(height: int, width: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """SSD priors for an ``height x width`` network input.

    Returns:
        ``(N, 4)`` float ``cx, cy, w, h`` normalised by the input width/height, ordered
        as the network's outputs: stride, then row, column, anchor size.
    """
    priors = []
    for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        cy, cx = torch.meshgrid(
            (torch.arange(rows, dtype=torch.float32) + 0.5) * stride / height,
            (torch.arange(cols, dtype=torch.float32) + 0.5) * stride / width,
            indexing="ij",
        )
        centres = torch.stack([cx, cy], -1).reshape(-1, 1, 2).expand(-1, len(sizes), 2)
        wh = torch.tensor([[s / width, s / height] for s in sizes]).expand(rows * cols, -1, 2)
        priors.append(torch.cat([centres, wh], -1).reshape(-1, 4))
    return torch.cat(priors).to(device)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Box offsets ``(..., N, 4)`` + priors ``(N, 4)`` -> ``(..., N, 4)`` normalised xyxy."""
    centre = priors[:, :2] + loc[..., :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], -1)


def decode_points(points: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Point offsets ``(..., N, 10)`` + priors ``(N, 4)`` -> ``(..., N, 5, 2)`` normalised."""
    offsets = points.unflatten(-1, (5, 2))
    return priors[:, None, :2] + offsets * VARIANCES[0] * priors[:, None, 2:]


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes ``(M, 4)`` x ``(K, 4)`` -> ``(M, K)``."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=torch.finfo(union.dtype).tiny)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (torchvision.ops.nms semantics).

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        iou_threshold: a box is dropped when its IoU with a kept, higher-scoring box
            is strictly greater than this.

    Returns:
        ``(K,)`` long indices into ``boxes`` of the kept boxes, by decreasing score.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    keep = []
    # One iteration per kept box (not per candidate): cheap for face counts.
    while order.numel() > 0:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        if rest.numel() == 0:
            break
        iou = box_iou(boxes[best].unsqueeze(0), boxes[rest])[0]
        order = rest[iou <= iou_threshold]
    if not keep:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    return torch.stack(keep)


# ------------------------------------------------------------------------ detector


def as_rgb_frame(frame: np.ndarray) -> np.ndarray:
    """Check a ``(H, W, 3)`` uint8 frame and make it C-contiguous (PyAV pads rows)."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise BadInputError(f"face detector needs an (H, W, 3) RGB frame, got {shape}")
    if frame.dtype != np.uint8:
        raise BadInputError(f"face detector needs a uint8 frame, got {frame.dtype}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise BadInputError(f"face detector got an empty frame {frame.shape}")
    return np.ascontiguousarray(frame)


def network_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Network input ``(h, w)``: long side at most ``max_side``, aspect kept, no upscaling."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


class FaceDetector:
    """RetinaFace-MobileNet0.25 on RGB frames; boxes and points in frame pixels.

    Args:
        device: where the network runs (``"cpu"``, ``"cuda"``, ...).
        score_threshold: minimum face probability.
        nms_iou: IoU above which the lower-scoring of two boxes is dropped.
        max_side: frames whose long side exceeds this are shrunk to it (aspect kept)
            before detection; smaller frames are used as they are. The smallest face
            found is about 10-16 px *at network resolution*, so raise this (e.g. to
            1920 for native 1080p) to find small faces in large frames, at a cost in
            time roughly proportional to the pixel count.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        score_threshold: float = 0.6,
        nms_iou: float = 0.4,
        max_side: int = 640,
    ) -> None:
        if max_side < 32:
            raise ValueError(f"max_side must be at least 32, got {max_side}")
        self.device = torch.device(device)
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_side = int(max_side)
        self.model = load_retinaface(self.device)
        self._mean = torch.tensor(BGR_MEAN, device=self.device).view(1, 3, 1, 1)
        self._priors: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, frame_rgb: np.ndarray) -> list[Detection]:
        """Faces in one ``(H, W, 3)`` uint8 RGB frame, by decreasing score.

        Boxes (xyxy) and points are in frame pixels, not clipped: a face cut by the
        frame edge can have a box reaching past it.
        """
        return self.detect_batch([frame_rgb])[0]

    def detect_batch(self, frames_rgb: list[np.ndarray]) -> list[list[Detection]]:
        """Faces in each frame; frames of equal size share one network pass."""
        frames = [as_rgb_frame(f) for f in frames_rgb]
        results: list[list[Detection]] = [[] for _ in frames]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, frame in enumerate(frames):
            groups.setdefault(frame.shape[:2], []).append(i)
        for (height, width), indices in groups.items():
            batch = [frames[i] for i in indices]
            for i, dets in zip(indices, self._detect_same_size(batch, height, width)):
                results[i] = dets
        return results

    def shrink(self, frame: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` -> the ``(h, w, 3)`` picture the network sees (the frame itself when small enough)."""
        height, width = frame.shape[:2]
        net_h, net_w = network_size(height, width, self.max_side)
        if (net_h, net_w) == (height, width):
            return frame
        # INTER_AREA averages source pixels, so small faces are not aliased away.
        return cv2.resize(frame, (net_w, net_h), interpolation=cv2.INTER_AREA)

    def preprocess(self, frames: list[np.ndarray], height: int, width: int) -> torch.Tensor:
        """Equal-size RGB uint8 frames -> ``(B, 3, h, w)`` network input on the device."""
        batch = torch.from_numpy(np.stack([self.shrink(f) for f in frames])).to(self.device, non_blocking=True)
        bgr = batch.permute(0, 3, 1, 2).flip(1).float()
        return bgr - self._mean

    @torch.inference_mode()
    def _detect_same_size(
        self, frames: list[np.ndarray], height: int, width: int
    ) -> list[list[Detection]]:
        x = self.preprocess(frames, height, width)
        loc, conf, points = self.model(x)
        priors = self._priors_for(*x.shape[-2:])
        # Normalised coordinates times the *original* size give frame pixels exactly
        # (the resize maps pixel edges to pixel edges).
        frame_scale = torch.tensor([width, height], dtype=torch.float32, device=self.device)
        out = []
        for b in range(x.shape[0]):
            scores = conf[b, :, 1]
            candidates = torch.nonzero(scores > self.score_threshold).squeeze(1)
            if candidates.numel() > PRE_NMS_TOP_K:
                top = scores[candidates].topk(PRE_NMS_TOP_K).indices
                candidates = candidates[top]
            boxes = decode_boxes(loc[b, candidates], priors[candidates]) * frame_scale.repeat(2)
            pts = decode_points(points[b, candidates], priors[candidates]) * frame_scale
            cand_scores = scores[candidates]
            # NMS on the CPU: a handful of boxes, and no per-box device syncs.
            boxes, pts, cand_scores = boxes.cpu(), pts.cpu(), cand_scores.cpu()
            keep = nms(boxes, cand_scores, self.nms_iou)[:POST_NMS_TOP_K]
            out.append(
                [
                    Detection(
                        box=boxes[k].numpy().astype(np.float32),
                        score=float(cand_scores[k]),
                        points=pts[k].numpy().astype(np.float32),
                    )
                    for k in keep.tolist()
                ]
            )
        return out

    def _priors_for(self, height: int, width: int) -> torch.Tensor:
        key = (height, width)
        if key not in self._priors:
            self._priors[key] = prior_boxes(height, width, self.device)
        return self._priors[key]
