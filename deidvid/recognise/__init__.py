"""Bundled face recognisers: three embedders, two implementations, one set of thresholds.

Three recognisers, all loaded from sha256-verified ``weights/*.safetensors``:

* ``"faceapi_resnet"`` (alias ``"A"``, ``"dlib"``): dlib's ResNet-29, 128-D, via the
  face-api.js port; 150x150 dlib chip. The recogniser the autoencoder trains against.
* ``"mobilefacenet"`` (alias ``"B"``): MobileFaceNet, 192-D, 112x112 ArcFace chip.
  **Evaluation only**: it is never used in training, so ``verify`` measures how
  de-identification transfers to a recogniser the model never saw.
* ``"mobileface"`` (alias ``"C"``): MobileFace Identification V3 (becauseofAI), 256-D,
  112x112 ArcFace chip; a small, weaker model of another family. A second recogniser to
  train against (an ensemble with A), so de-identification does not overfit to one model.

Each runs two ways: :func:`load_recogniser` gives the differentiable torch module
(:mod:`deidvid.recognise.differentiable`: training, the GPU); :func:`load_embedder` gives
what scoring uses (verify, the anonymise identity check, the surrogate's choice): on the
CPU the same network run by ONNX Runtime (:mod:`deidvid.recognise.runtime`), which starts
without importing torch. Same-person thresholds live in :mod:`deidvid.recognise.specs`
only. Match rates over many face pairs are counted by
:class:`deidvid.measure.identity.IdentityScorer` at these thresholds.

This package imports no torch until a torch name (:class:`Recogniser`,
:func:`load_recogniser`) is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deidvid.recognise.specs import (
    ALIASES,
    ALL_RECOGNISERS,
    DLIB_THRESHOLD,
    FAR_1E3_KEY,
    RECOGNISERS,
    Embedder,
    RecogniserSpec,
    resolve_name,
)

if TYPE_CHECKING:
    from deidvid.recognise.differentiable import Recogniser, load_recogniser

_TORCH_NAMES = {"Recogniser", "load_recogniser"}


def __getattr__(name: str) -> Any:
    # The torch implementation only when asked for: `import torch` takes seconds.
    if name in _TORCH_NAMES:
        from deidvid.recognise import differentiable

        return getattr(differentiable, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_embedder(name: str, device: str = "cpu") -> Embedder:
    """Recogniser ``name`` for scoring on ``device``: ONNX Runtime on the CPU, the torch
    module elsewhere (a GPU). Both give the same embeddings to float32 rounding.

    Raises :class:`deidvid.errors.WeightsError` when its weights are missing or corrupted.
    """
    if str(device) == "cpu":
        from deidvid.recognise.runtime import load_onnx_recogniser

        return load_onnx_recogniser(name)
    from deidvid.recognise.differentiable import load_recogniser

    return load_recogniser(name, device)


__all__ = [
    "ALIASES",
    "ALL_RECOGNISERS",
    "DLIB_THRESHOLD",
    "FAR_1E3_KEY",
    "RECOGNISERS",
    "Embedder",
    "Recogniser",
    "RecogniserSpec",
    "load_embedder",
    "load_recogniser",
    "resolve_name",
]
