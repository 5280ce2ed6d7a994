"""A stand-in recogniser whose distances can be computed by hand (embedding = mean RGB)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch

from deidvid.recognise import RECOGNISERS, Recogniser


class MeanColour(torch.nn.Module):
    """``(B, 3, S, S)`` -> ``(B, 3)`` mean colour, through a 1x1 identity convolution (so it has parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = torch.nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(3)[:, :, None, None])

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.mix(chips).mean(dim=(2, 3))


def make_mean_colour_recogniser(threshold: float | None, far1e3: float | None = None) -> Recogniser:
    """A real :class:`Recogniser` (thresholds from its calibration: ``threshold`` and the strict
    one at FAR 1e-3, ``far1e3``) whose chip is the whole image."""
    spec = dataclasses.replace(
        RECOGNISERS["mobilefacenet"], name="mean_colour", dim=3, standard_threshold=None,
        chip="whole",
    )
    calibration: dict = {} if threshold is None else {"threshold": threshold}
    if far1e3 is not None:
        calibration["far_1e-3"] = {"threshold": far1e3, "tar": 0.5}
    return Recogniser(spec, MeanColour(), calibration or None)


@pytest.fixture
def mean_colour_recogniser() -> Callable[[float | None], Recogniser]:
    """Factory: ``mean_colour_recogniser(threshold or None, far1e3=None)``."""
    return make_mean_colour_recogniser
