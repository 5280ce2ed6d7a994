"""Synthetic test material made by the project: face videos with a known pulse, pulse signals."""
