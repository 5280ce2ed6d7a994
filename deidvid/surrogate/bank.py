"""The bundled surrogate bank: faces that are nobody.

Each surrogate is an aggregate over at least :data:`MIN_PEOPLE` different people (k-Same):
a UV texture averaged after mesh alignment and a neutral 3D shape averaged in the
canonical model's space. Each surrogate looks female or male (it averages people of one
apparent presentation), and the bank carries the probe that reads a person's apparent
presentation from recogniser A (:mod:`deidvid.surrogate.presentation`). Built by ``python -m deidvid.tools.build_surrogates`` into
``weights/surrogates.safetensors`` (sha256-verified on load); how, from whom and the
check that no source person is recognisable in any surrogate are in the manifest and
``weights/MODEL_CARD.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from deidvid.surrogate.presentation import FEMALE, MALE, PresentationProbe

MIN_PEOPLE = 25


@dataclass(frozen=True)
class Surrogate:
    """One surrogate identity.

    Attributes:
        texture: ``(T, T, 3)`` uint8 RGB in the canonical UV space.
        shape: ``(468, 3)`` float64 neutral shape in canonical centimetres.
        tone: ``(3,)`` CIE L*a*b* mean of the skin texels.
        people: how many different people it averages.
        presentation: :data:`~deidvid.surrogate.presentation.FEMALE` or ``MALE``: how its people look.
    """

    texture: np.ndarray
    shape: np.ndarray
    tone: np.ndarray
    people: int
    presentation: str


def skin_tone_lab(texture: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Mean CIE L*a*b* (L in 0..100) of ``texture (T, T, 3)`` uint8 RGB over ``skin (T, T)``."""
    import cv2

    mean = texture[skin].reshape(-1, 1, 3).astype(np.float32).mean(axis=0, keepdims=True) / 255.0
    return cv2.cvtColor(mean, cv2.COLOR_RGB2Lab).reshape(3).astype(np.float64)


def individual_typology_angle(lab: np.ndarray) -> float:
    """ITA in degrees (> 55 very light ... < -30 dark skin; Chardon et al. 1991)."""
    return float(np.degrees(np.arctan2(lab[0] - 50.0, lab[2])))


@lru_cache(maxsize=1)
def _load() -> dict[str, np.ndarray]:
    from deidvid.weights.manifest import load_safetensors

    return {name: tensor.numpy() for name, tensor in load_safetensors("surrogates").items()}


@lru_cache(maxsize=1)
def load_bank() -> tuple[Surrogate, ...]:
    """The bundled surrogates (sha256-verified)."""
    from deidvid.errors import WeightsError

    tensors = _load()
    textures, shapes = tensors["textures"], tensors["shapes"].astype(np.float64)
    tones, people = tensors["tones"].astype(np.float64), tensors["people"]
    if len(textures) == 0 or int(people.min()) < MIN_PEOPLE:
        raise WeightsError(f"the surrogate bank must hold aggregates of >= {MIN_PEOPLE} people each")
    looks = [FEMALE if female else MALE for female in tensors["female"]]
    return tuple(Surrogate(textures[i], shapes[i], tones[i], int(people[i]), looks[i]) for i in range(len(textures)))


def load_presentation_probe() -> PresentationProbe:
    """The bank's probe of apparent presentation from recogniser A's embedding."""
    probe = _load()["presentation_probe"].astype(np.float64)
    return PresentationProbe(probe[:-1], float(probe[-1]))
