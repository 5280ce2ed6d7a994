"""Anonymisers: what is done to a 128x128 face clip. One interface for all methods.

An anonymiser maps a clip ``(T, 128, 128, 3)`` float32 in [0, 1], with the
landmarks ``(T, 68, 2)`` in crop pixels, to a clip of the same shape. ``residual``
says how the pipeline pastes it back (see ``paste``).
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np


class Anonymiser(Protocol):
    name: str
    residual: bool  # paste (output - input) (True) or replace the face (False)
    interpolation: int  # cv2 flag for resizing the output to the face's size

    def __call__(self, clip: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray: ...


class GaussianBlur:
    """The paper's blur baseline: Gaussian, sigma 12 px at the 128-px crop scale."""

    name = "blur"
    residual = False
    interpolation = cv2.INTER_LINEAR

    def __init__(self, sigma: float = 12.0) -> None:
        self.sigma = sigma

    def __call__(self, clip: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:  # noqa: ARG002
        return np.stack(
            [cv2.GaussianBlur(f, (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE) for f in clip]
        )


class Pixelate:
    """The paper's pixelation baseline: average to 10x10 blocks, nearest-neighbour back."""

    name = "pixelate"
    residual = False
    interpolation = cv2.INTER_NEAREST

    def __init__(self, blocks: int = 10) -> None:
        self.blocks = blocks

    def __call__(self, clip: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:  # noqa: ARG002
        size = clip.shape[1:3][::-1]
        return np.stack(
            [
                cv2.resize(
                    cv2.resize(f, (self.blocks, self.blocks), interpolation=cv2.INTER_AREA),
                    size,
                    interpolation=cv2.INTER_NEAREST,
                )
                for f in clip
            ]
        )


# name -> bundled autoencoder weights (manifest names)
AUTOENCODERS = {"ae": "ae_residual", "ae-paper": "ae_paper"}
METHODS = ("ae", "ae-paper", "blur", "pixelate")


def build_anonymiser(method: str, device: str = "cpu", strength: float | None = None) -> Anonymiser:
    """The anonymiser called ``method`` (see ``METHODS``) on ``device``.

    ``strength``: the residual autoencoder's perturbation RMS in [0, 1] units (None: as
    trained); a ValueError for any other method.
    """
    if strength is not None and method != "ae":
        raise ValueError(f"a strength applies to the residual autoencoder (--method ae) only, not '{method}'")
    if method == "blur":
        return GaussianBlur()
    if method == "pixelate":
        return Pixelate()
    if method in AUTOENCODERS:
        from deidvid.model.anonymiser import AutoencoderAnonymiser

        return AutoencoderAnonymiser(AUTOENCODERS[method], device=device, strength=strength)
    raise ValueError(f"unknown method '{method}'; choose from {', '.join(METHODS)}")
