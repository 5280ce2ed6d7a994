"""Shared command-line helpers."""

from __future__ import annotations

import torch

from deidvid.cli.common import resolve_device, torch_built_with_gpu


def test_the_gpu_build_is_read_without_importing_torch_as_torch_reports_it() -> None:
    assert torch_built_with_gpu() == (torch.version.cuda is not None or torch.version.hip is not None)


def test_auto_device_is_what_torch_says() -> None:
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
