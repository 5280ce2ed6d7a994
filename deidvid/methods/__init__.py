"""De-identification methods behind one contract (``base.Method``), and their registry.

A new method: one module here with a ``Method`` subclass, and one entry in ``_BUILDERS``.
"""

from __future__ import annotations

from collections.abc import Callable

from deidvid.methods.base import CropClip, FaceObserver, Method, PasteMode

# name -> bundled autoencoder weights (manifest names)
AUTOENCODERS = {"ae": "ae_residual", "ae-paper": "ae_paper"}


def _blur(device: str, strength: float | None, seed: int) -> Method:  # noqa: ARG001
    from deidvid.methods.blur import GaussianBlur

    return GaussianBlur()


def _pixelate(device: str, strength: float | None, seed: int) -> Method:  # noqa: ARG001
    from deidvid.methods.pixelate import Pixelate

    return Pixelate()


def _autoencoder(name: str) -> Callable[[str, float | None, int], Method]:
    def build(device: str, strength: float | None, seed: int) -> Method:  # noqa: ARG001
        from deidvid.methods.autoencoder import AutoencoderMethod

        return AutoencoderMethod(AUTOENCODERS[name], device=device, strength=strength, name=name)

    return build


def _surrogate(device: str, strength: float | None, seed: int) -> Method:  # noqa: ARG001
    from deidvid.methods.surrogate import SurrogateFace

    return SurrogateFace(device=device, seed=seed)


def _surrogate_ae(device: str, strength: float | None, seed: int) -> Method:
    from deidvid.methods.composed import Composed

    return Composed(_surrogate(device, None, seed), _autoencoder("ae")(device, strength, seed))


# Builders import lazily: a blur run never imports the autoencoder's torch model.
_BUILDERS: dict[str, Callable[[str, float | None, int], Method]] = {
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


def build_method(name: str, device: str = "cpu", strength: float | None = None, seed: int = 0) -> Method:
    """The method called ``name`` (see ``METHODS``) on ``device``.

    ``strength``: the residual autoencoder's perturbation RMS in [0, 1] units (None: as
    trained); a ValueError for a method without it (see ``WITH_STRENGTH``). ``seed``: the surrogate choice (other
    methods have no randomness).
    """
    if strength is not None and name not in WITH_STRENGTH:
        raise ValueError(f"a strength applies to the residual autoencoder ({', '.join(WITH_STRENGTH)}) only, not '{name}'")
    if name not in _BUILDERS:
        raise ValueError(f"unknown method '{name}'; choose from {', '.join(METHODS)}")
    return _BUILDERS[name](device, strength, seed)


__all__ = ["AUTOENCODERS", "METHODS", "WITH_STRENGTH", "CropClip", "FaceObserver", "Method", "PasteMode", "build_method"]
