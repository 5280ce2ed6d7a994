"""Measurements usable alone: identity (match rates with the bundled recognisers), image quality."""
