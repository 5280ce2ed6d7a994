"""A bundled recogniser run by ONNX Runtime: numpy chips, the exported network, no torch.

Scoring (verify, the anonymise identity check, the surrogate's choice) needs
embeddings, not gradients. On the CPU this runs the network exported from deidvid's own
torch module (``weights/<recogniser>.onnx``, structure only, weights from the bundled
safetensors: :class:`deidvid.weights.onnx_graph.OnnxNetwork`) on chips cut in numpy
(:mod:`deidvid.recognise.chips`): the embeddings equal the torch module's to float32
rounding, and a process that only scores never imports torch (seconds at start-up,
~190 MB of memory).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deidvid.recognise.chips import face_chips
from deidvid.recognise.specs import RECOGNISERS, Calibrated, RecogniserSpec, manifest_calibration, resolve_name
from deidvid.weights.onnx_graph import OnnxNetwork


class OnnxRecogniser(Calibrated):
    """Recogniser ``spec`` as chips in numpy + its network in ONNX Runtime (thresholds: :class:`Calibrated`)."""

    def __init__(self, spec: RecogniserSpec, network: OnnxNetwork, calibration: dict[str, Any] | None) -> None:
        self.spec = spec
        self.network = network
        self.calibration = calibration or {}

    def embed_chips(self, chips_rgb01: np.ndarray) -> np.ndarray:
        """``(B, S, S, 3)`` float32 aligned chips in [0, 1] -> ``(B, D)`` float32 embeddings."""
        return self.network(np.ascontiguousarray(chips_rgb01.transpose(0, 3, 1, 2)))[0]

    def embed_images(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """:meth:`deidvid.recognise.specs.Embedder.embed_images`."""
        return self.embed_chips(face_chips(self.spec.chip, images, np.asarray(landmarks, np.float64), self.spec.chip_size))


def load_onnx_recogniser(name: str) -> OnnxRecogniser:
    """Recogniser ``name`` (or an alias) on ONNX Runtime's CPU provider.

    Raises :class:`deidvid.errors.WeightsError` when its weights or graph are missing or corrupted.
    """
    spec = RECOGNISERS[resolve_name(name)]
    return OnnxRecogniser(spec, OnnxNetwork(spec.name), manifest_calibration(spec.name))
