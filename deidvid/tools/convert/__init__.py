"""Converters: registry package -> ``deidvid/weights/*.safetensors`` + manifest entry (``deidvid models convert``)."""
