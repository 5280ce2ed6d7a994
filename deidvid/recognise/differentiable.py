"""A bundled recogniser as a differentiable torch module: alignment + frozen network.

Gradients flow from the embedding to the input pixels (and landmarks); the network's own
parameters are frozen. This is the implementation training uses (the identity loss), and
the one that runs on a GPU; on the CPU, scoring uses the same networks through ONNX
Runtime (:mod:`deidvid.recognise.runtime`), which starts without importing torch.

Usage::

    rec = load_recogniser("A", device="cpu")
    emb = rec.embed(frames_rgb01, landmarks68)     # (B, 128), differentiable
    same = rec.distance(emb, reference) < rec.threshold
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from deidvid.recognise.align import extract_arcface_chip, extract_dlib_chip, five_points_from_68
from deidvid.recognise.specs import RECOGNISERS, Calibrated, ChipKind, RecogniserSpec, manifest_calibration, resolve_name


def _arcface_chips(images: Tensor, landmarks: Tensor) -> Tensor:
    points5 = five_points_from_68(landmarks) if landmarks.shape[-2] == 68 else landmarks
    return extract_arcface_chip(images, points5)


CHIP_MAKERS: dict[ChipKind, Callable[[Tensor, Tensor], Tensor]] = {
    "dlib": extract_dlib_chip,
    "arcface": _arcface_chips,
    "whole": lambda images, landmarks: images,
}


def _load_network(name: str, device: str | torch.device) -> nn.Module:
    """Recogniser ``name``'s network with its sha256-verified weights."""
    if name == "faceapi_resnet":
        from deidvid.recognise.faceapi_resnet import load_faceapi_resnet

        return load_faceapi_resnet(device)
    if name == "mobilefacenet":
        from deidvid.recognise.mobilefacenet import load_mobilefacenet

        return load_mobilefacenet(device)
    if name == "mobileface":
        from deidvid.recognise.mobileface import load_mobileface

        return load_mobileface(device)
    raise ValueError(f"no network for recogniser '{name}'")


def image_batch(images: np.ndarray, device: str | torch.device = "cpu") -> Tensor:
    """``(B, H, W, 3)`` uint8 (0..255) or float (0..1) RGB -> ``(B, 3, H, W)`` float32 in [0, 1]."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3), got {images.shape}")
    if images.dtype == np.uint8:
        # Scaled on the device: moves a quarter of the bytes a float copy would.
        return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float() / 255.0
    batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)
    return batch.permute(0, 3, 1, 2)


def landmark_batch(landmarks: np.ndarray, device: str | torch.device = "cpu") -> Tensor:
    """``(B, N, 2)`` pixel landmarks -> float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(landmarks, dtype=np.float32)).to(device)


class Recogniser(Calibrated, nn.Module):
    """Alignment + frozen network with a uniform interface (thresholds: :class:`Calibrated`)."""

    def __init__(self, spec: RecogniserSpec, network: nn.Module, calibration: dict[str, Any] | None) -> None:
        super().__init__()
        self.spec = spec
        self.network = network
        self.calibration = calibration or {}

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return next(self.parameters()).device

    def chips(self, images_rgb01: Tensor, landmarks: Tensor) -> Tensor:
        """Aligned chips ``(B, 3, S, S)`` from ``(B, 3, H, W)`` frames and ``(B, 68, 2)``
        dlib landmarks (or ``(B, 5, 2)`` detector points), one face per row."""
        if images_rgb01.dim() != 4 or images_rgb01.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images_rgb01.shape)}")
        if landmarks.shape[0] != images_rgb01.shape[0]:
            raise ValueError("need one landmark set per image (repeat a frame for several faces)")
        return CHIP_MAKERS[self.spec.chip](images_rgb01, landmarks.to(images_rgb01.device))

    def embed_chips(self, chips_rgb01: Tensor) -> Tensor:
        """``(B, 3, S, S)`` aligned chips -> ``(B, D)`` embeddings."""
        return self.network(chips_rgb01)

    def embed(self, images_rgb01: Tensor, landmarks68: Tensor) -> Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] + ``(B, 68, 2)`` landmarks -> ``(B, D)``."""
        return self.embed_chips(self.chips(images_rgb01, landmarks68))

    forward = embed

    @torch.inference_mode()
    def embed_images(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """:meth:`deidvid.recognise.specs.Embedder.embed_images`: numpy in, numpy out, run on :attr:`device`."""
        device = self.device
        return self.embed(image_batch(images, device), landmark_batch(landmarks, device)).cpu().numpy()

    @staticmethod
    def distance(a: Tensor, b: Tensor) -> Tensor:
        """Euclidean distance between embeddings ``(..., D)`` -> ``(...)``."""
        return torch.linalg.vector_norm(a - b, dim=-1)


def load_recogniser(name: str, device: str | torch.device = "cpu") -> Recogniser:
    """Load recogniser ``name`` ("faceapi_resnet"/"A"/"dlib", "mobilefacenet"/"B" or
    "mobileface"/"C") as a differentiable torch module on ``device``.

    Raises :class:`deidvid.errors.WeightsError` when its weights are missing or corrupted.
    """
    spec = RECOGNISERS[resolve_name(name)]
    network = _load_network(spec.name, device)
    return Recogniser(spec, network, manifest_calibration(spec.name)).to(device)
