"""De-identification methods behind one contract (``base.Method``), and their registry.

A new method: one module here with a ``Method`` subclass, and one entry in ``_BUILDERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from deidvid.methods.base import CropClip, FaceObserver, Method, PasteMode

# name -> bundled autoencoder weights (manifest names)
AUTOENCODERS = {"ae": "ae_residual", "ae-paper": "ae_paper"}


@dataclass(frozen=True)
class MethodSettings:
    """What a builder may need: the device, the residual AE's strength, the surrogate's seed and look."""

    device: str = "cpu"
    strength: float | None = None
    seed: int = 0
    surrogate_look: str = "any"


def _blur(settings: MethodSettings) -> Method:  # noqa: ARG001
    from deidvid.methods.blur import GaussianBlur

    return GaussianBlur()


def _pixelate(settings: MethodSettings) -> Method:  # noqa: ARG001
    from deidvid.methods.pixelate import Pixelate

    return Pixelate()


def _autoencoder(name: str) -> Callable[[MethodSettings], Method]:
    def build(settings: MethodSettings) -> Method:
        from deidvid.methods.autoencoder import AutoencoderMethod

        return AutoencoderMethod(AUTOENCODERS[name], device=settings.device, strength=settings.strength, name=name)

    return build


def _surrogate(settings: MethodSettings) -> Method:
    from deidvid.methods.surrogate import SurrogateFace

    return SurrogateFace(device=settings.device, seed=settings.seed, look=settings.surrogate_look)


def _surrogate_ae(settings: MethodSettings) -> Method:
    from deidvid.methods.composed import Composed

    return Composed(_surrogate(settings), _autoencoder("ae")(settings))


# Builders import lazily: a blur run never imports the autoencoder's torch model.
_BUILDERS: dict[str, Callable[[MethodSettings], Method]] = {
    "ae": _autoencoder("ae"),
    "ae-paper": _autoencoder("ae-paper"),
    "blur": _blur,
    "pixelate": _pixelate,
    "surrogate": _surrogate,
    "surrogate+ae": _surrogate_ae,  # the residual autoencoder's perturbation on the surrogate
}
# Methods whose output --strength (the residual autoencoder's perturbation RMS) applies to.
WITH_STRENGTH = ("ae", "surrogate+ae")
METHODS = tuple(sorted(_BUILDERS))
SURROGATE_LOOKS = ("any", "same")


def build_method(
    name: str, device: str = "cpu", strength: float | None = None, seed: int = 0, surrogate_look: str = "any"
) -> Method:
    """The method called ``name`` (see ``METHODS``) on ``device``.

    ``strength``: the residual autoencoder's perturbation RMS in [0, 1] units (None: as
    trained); a ValueError for a method without it (see ``WITH_STRENGTH``). ``seed``: the surrogate choice (other
    methods have no randomness). ``surrogate_look``: ``any`` (the surrogate farthest from the
    person, of either look) or ``same`` (of the person's apparent look); see
    :mod:`deidvid.surrogate.choose`.
    """
    if strength is not None and name not in WITH_STRENGTH:
        raise ValueError(f"a strength applies to the residual autoencoder ({', '.join(WITH_STRENGTH)}) only, not '{name}'")
    if name not in _BUILDERS:
        raise ValueError(f"unknown method '{name}'; choose from {', '.join(METHODS)}")
    if surrogate_look not in SURROGATE_LOOKS:
        raise ValueError(f"unknown surrogate look '{surrogate_look}'; choose from {', '.join(SURROGATE_LOOKS)}")
    return _BUILDERS[name](MethodSettings(device, strength, seed, surrogate_look))


__all__ = ["AUTOENCODERS", "METHODS", "SURROGATE_LOOKS", "WITH_STRENGTH", "MethodSettings", "CropClip", "FaceObserver", "Method", "PasteMode", "build_method"]
