"""The de-identification autoencoders (``paper`` baseline and ``residual``) and their anonymiser."""

from deidvid.model.autoencoder import (
    ARCHITECTURES,
    PaperAE,
    ResidualAE,
    ResidualConfig,
    build_model,
    count_parameters,
    load_model,
    remove_masked_mean,
)

__all__ = [
    "ARCHITECTURES",
    "PaperAE",
    "ResidualAE",
    "ResidualConfig",
    "build_model",
    "count_parameters",
    "load_model",
    "remove_masked_mean",
]
