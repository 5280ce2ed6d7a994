"""Shared by the verify tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Detector and recognisers on 1 thread: on a shared 2-core machine, torch's
    default thread pool made the detector 50x slower here."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
