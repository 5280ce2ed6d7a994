"""Identity-free skin colour and lighting: a log-linear fit over the skin in UV space.

Per colour channel, ``log(colour) ~ a + b (u - 1/2) + c (v - 1/2)`` over the skin texels:
``a`` is the skin's mean colour (in log), ``b`` and ``c`` the left-right and top-bottom
shading gradients. Nine numbers per frame describe how the original is lit without
carrying its features (a per-pixel ratio image would carry them, and with them identity:
SURROGATE-NOTES.md). A surrogate is relit by swapping its own fit for the original's.
"""

from __future__ import annotations

import numpy as np

from deidvid.surrogate.uvspace import UVSpace

EPS = 1.0 / 255.0


def basis(space: UVSpace, mask: np.ndarray) -> np.ndarray:
    """``(P, 3)`` rows ``[1, u - 1/2, v - 1/2]`` for the texels where ``mask (T, T)`` is true."""
    u, v = space.grid()
    return np.stack([np.ones(int(mask.sum())), u[mask] - 0.5, v[mask] - 0.5], axis=1)


def fit(texture: np.ndarray, mask: np.ndarray, space: UVSpace) -> np.ndarray:
    """Log-linear lighting of ``texture (T, T, 3)`` (0..255 or 0..1: units cancel in a
    relight) over ``mask (T, T)``: ``(3, 3)`` coefficients, one row ``(a, b, c)`` per channel.

    Raises ValueError when fewer than 16 texels are usable.
    """
    if mask.sum() < 16:
        raise ValueError("too few skin texels for a lighting fit")
    design = basis(space, mask)
    values = np.log(np.maximum(texture[mask].astype(np.float64), EPS))  # (P, 3)
    coeffs, *_ = np.linalg.lstsq(design, values, rcond=None)
    return coeffs.T


def field(coeffs: np.ndarray, space: UVSpace) -> np.ndarray:
    """The fitted log-colour over the whole texture: ``(T, T, 3)`` float32."""
    u, v = space.grid()
    terms = np.stack([np.ones_like(u), u - 0.5, v - 0.5], axis=-1)  # (T, T, 3)
    return (terms @ coeffs.T).astype(np.float32)


def relight(texture: np.ndarray, own: np.ndarray, target: np.ndarray, space: UVSpace) -> np.ndarray:
    """``texture (T, T, 3)`` with its lighting ``own (3, 3)`` replaced by ``target (3, 3)``:
    ``texture * exp(field(target - own))``, as float32.

    The field is linear in ``u`` and ``v``, so its exponential is a product of a factor per
    texel column and one per texel row: ``2 T`` exponentials instead of ``T^2`` (a
    surrogate is relit every frame)."""
    delta = np.asarray(target, np.float64) - np.asarray(own, np.float64)  # rows (a, b, c) per channel
    c = space.centres() - 0.5  # u along a row, v down a column
    per_column = np.exp(delta[:, 0] + np.outer(c, delta[:, 1])).astype(np.float32)  # (T, 3)
    per_row = np.exp(np.outer(c, delta[:, 2])).astype(np.float32)  # (T, 3)
    return texture * (per_row[:, None, :] * per_column[None, :, :])
