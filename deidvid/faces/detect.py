"""Face detection: RetinaFace with a MobileNetV1-0.25 backbone (box + 5 points).

The network (:mod:`deidvid.faces.retinaface`) runs with ONNX Runtime on the CPU (from the
bundled graph exported from the torch module, :mod:`deidvid.weights.onnx_graph`: no torch
import) and as the torch module on a GPU. Everything around it is numpy: input
conventions of the raw network (training conventions of the source model) are BGR channel
order, 0..255 floats minus the per-channel mean ``(104, 117, 123)``, no scaling, any height
and width; its per-anchor outputs ``loc`` (cx, cy, w, h offsets), ``conf`` (softmax over
background / face) and ``landmarks`` (5 x (x, y) offsets) are decoded here against
SSD-style priors with variances ``(0.1, 0.2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

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


# ------------------------------------------------------------------- box coding, NMS


def prior_boxes(height: int, width: int) -> np.ndarray:
    """SSD priors for an ``height x width`` network input.

    Returns:
        ``(N, 4)`` float32 ``cx, cy, w, h`` normalised by the input width/height, ordered
        as the network's outputs: stride, then row, column, anchor size.
    """
    priors = []
    for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        cy = (np.arange(rows, dtype=np.float32) + np.float32(0.5)) * np.float32(stride) / np.float32(height)
        cx = (np.arange(cols, dtype=np.float32) + np.float32(0.5)) * np.float32(stride) / np.float32(width)
        grid_y, grid_x = np.meshgrid(cy, cx, indexing="ij")
        centres = np.repeat(np.stack([grid_x, grid_y], -1).reshape(-1, 1, 2), len(sizes), axis=1)
        wh = np.array([[s / width, s / height] for s in sizes], np.float32)
        wh = np.broadcast_to(wh, (rows * cols, len(sizes), 2))
        priors.append(np.concatenate([centres, wh], -1).reshape(-1, 4))
    return np.concatenate(priors)


def decode_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Box offsets ``(..., N, 4)`` + priors ``(N, 4)`` -> ``(..., N, 4)`` normalised xyxy."""
    centre = priors[:, :2] + loc[..., :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[..., 2:] * VARIANCES[1])
    return np.concatenate([centre - size / 2, centre + size / 2], -1)


def decode_points(points: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Point offsets ``(..., N, 10)`` + priors ``(N, 4)`` -> ``(..., N, 5, 2)`` normalised."""
    offsets = points.reshape(*points.shape[:-1], 5, 2)
    return priors[:, None, :2] + offsets * VARIANCES[0] * priors[:, None, 2:]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes ``(M, 4)`` x ``(K, 4)`` -> ``(M, K)``."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, np.finfo(union.dtype).tiny)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (torchvision.ops.nms semantics).

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        iou_threshold: a box is dropped when its IoU with a kept, higher-scoring box
            is strictly greater than this.

    Returns:
        ``(K,)`` int64 indices into ``boxes`` of the kept boxes, by decreasing score.
    """
    order = np.argsort(-scores, kind="stable")  # ties keep their input order
    keep = []
    # One iteration per kept box (not per candidate): cheap for face counts.
    while order.size > 0:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        if rest.size == 0:
            break
        iou = box_iou(boxes[best][None], boxes[rest])[0]
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


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


MIN_NETWORK_SIDE = 320  # tiny frames are enlarged to this long side: a 20 px face in 64x48 was missed


def network_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Network input ``(h, w)``: long side at most ``max_side`` and at least
    :data:`MIN_NETWORK_SIDE` (or ``max_side`` when that is smaller), aspect kept."""
    long_side = max(height, width)
    smallest = min(MIN_NETWORK_SIDE, max_side)
    scale = max_side / long_side if long_side > max_side else smallest / long_side if long_side < smallest else 1.0
    return max(1, round(height * scale)), max(1, round(width * scale))


Network = Callable[[np.ndarray], "list[np.ndarray]"]


def onnx_network() -> Network:
    """The bundled RetinaFace as an ONNX Runtime CPU session: ``(B, 3, h, w)`` float32 ->
    ``[loc, conf, landmarks]``."""
    from deidvid.weights.onnx_graph import OnnxNetwork

    return OnnxNetwork(WEIGHTS_NAME)


def torch_network(device: str) -> Network:
    """The bundled RetinaFace as the torch module on ``device``, same signature as :func:`onnx_network`."""
    import torch

    from deidvid.faces.retinaface import load_retinaface

    model = load_retinaface(device)

    @torch.inference_mode()
    def run(x: np.ndarray) -> list[np.ndarray]:
        outputs = model(torch.from_numpy(x).to(device, non_blocking=True))
        return [t.cpu().numpy() for t in outputs]

    return run


class FaceDetector:
    """RetinaFace-MobileNet0.25 on RGB frames; boxes and points in frame pixels.

    Args:
        device: where the network runs (``"cpu"``, ``"cuda"``, ...).
        score_threshold: minimum face probability.
        nms_iou: IoU above which the lower-scoring of two boxes is dropped.
        max_side: frames whose long side exceeds this are shrunk to it (aspect kept)
            before detection; smaller frames are used as they are, but tiny ones
            (:data:`MIN_NETWORK_SIDE`) are enlarged. The smallest face
            found is about 10-16 px *at network resolution*, so raise this (e.g. to
            1920 for native 1080p) to find small faces in large frames, at a cost in
            time roughly proportional to the pixel count.
        backend: ``"onnx"`` (ONNX Runtime; the default on the CPU) or ``"torch"`` (the
            default on any other device). Both run the same graph on the same weights;
            their outputs differ by float rounding (about 1e-5).
    """

    def __init__(
        self,
        device: str = "cpu",
        score_threshold: float = 0.6,
        nms_iou: float = 0.4,
        max_side: int = 640,
        backend: str | None = None,
    ) -> None:
        if max_side < 32:
            raise ValueError(f"max_side must be at least 32, got {max_side}")
        self.device = str(device)
        self.backend = backend or ("onnx" if self.device == "cpu" else "torch")
        if self.backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', not {self.backend!r}")
        if self.backend == "onnx" and self.device != "cpu":
            raise ValueError(f"the onnx backend runs on the CPU, not {self.device}")
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_side = int(max_side)
        self.network = onnx_network() if self.backend == "onnx" else torch_network(self.device)
        self._priors: dict[tuple[int, int], np.ndarray] = {}

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
        """``(H, W, 3)`` -> the ``(h, w, 3)`` picture the network sees (the frame itself when it fits)."""
        height, width = frame.shape[:2]
        net_h, net_w = network_size(height, width, self.max_side)
        if (net_h, net_w) == (height, width):
            return frame
        # INTER_AREA averages source pixels, so small faces are not aliased away.
        enlarge = net_w > width
        return cv2.resize(frame, (net_w, net_h), interpolation=cv2.INTER_LINEAR if enlarge else cv2.INTER_AREA)

    def preprocess(self, frames: list[np.ndarray]) -> np.ndarray:
        """Equal-size RGB uint8 frames -> ``(B, 3, h, w)`` float32 network input (BGR minus the mean)."""
        rgb = np.stack([self.shrink(f) for f in frames])
        x = np.empty((rgb.shape[0], 3, *rgb.shape[1:3]), np.float32)
        for channel, mean in enumerate(BGR_MEAN):  # BGR channel c is RGB channel 2 - c
            np.subtract(rgb[..., 2 - channel], np.float32(mean), out=x[:, channel], dtype=np.float32)
        return x

    def _detect_same_size(
        self, frames: list[np.ndarray], height: int, width: int
    ) -> list[list[Detection]]:
        x = self.preprocess(frames)
        loc, conf, points = self.network(x)
        priors = self._priors_for(*x.shape[-2:])
        # Normalised coordinates times the *original* size give frame pixels exactly
        # (the resize maps pixel edges to pixel edges).
        frame_scale = np.array([width, height], np.float32)
        out = []
        for b in range(x.shape[0]):
            scores = conf[b, :, 1]
            candidates = np.flatnonzero(scores > self.score_threshold)
            if candidates.size > PRE_NMS_TOP_K:
                candidates = candidates[np.argsort(-scores[candidates], kind="stable")[:PRE_NMS_TOP_K]]
            boxes = decode_boxes(loc[b, candidates], priors[candidates]) * np.tile(frame_scale, 2)
            pts = decode_points(points[b, candidates], priors[candidates]) * frame_scale
            cand_scores = scores[candidates]
            keep = nms(boxes, cand_scores, self.nms_iou)[:POST_NMS_TOP_K]
            out.append(
                [
                    Detection(box=boxes[k].astype(np.float32), score=float(cand_scores[k]), points=pts[k].astype(np.float32))
                    for k in keep.tolist()
                ]
            )
        return out

    def _priors_for(self, height: int, width: int) -> np.ndarray:
        key = (height, width)
        if key not in self._priors:
            self._priors[key] = prior_boxes(height, width)
        return self._priors[key]
