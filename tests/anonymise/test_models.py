"""PipelineModels: each model loaded once, the recognisers beside pass 1."""

from __future__ import annotations

import threading

import pytest

from deidvid.anonymise import models as models_module
from deidvid.anonymise.models import PipelineModels
from deidvid.anonymise.options import AnonymiseOptions
from deidvid.errors import WeightsError


def test_recognisers_load_once_in_a_thread(monkeypatch):
    calls: list[str] = []
    release = threading.Event()

    def load(self: PipelineModels) -> dict:
        calls.append(threading.current_thread().name)
        release.wait(5)
        return {"A": object()}

    monkeypatch.setattr(models_module.PipelineModels, "_load_recognisers", load)
    models = PipelineModels(AnonymiseOptions())
    models.prefetch_recognisers()
    models.prefetch_recognisers()  # already under way: not a second load
    release.set()
    first = models.recognisers
    assert models.recognisers is first
    assert len(calls) == 1 and calls[0].startswith("load-recognisers")


def test_recognisers_without_prefetch_and_failures(monkeypatch):
    def broken(self: PipelineModels) -> dict:
        raise WeightsError("recogniser weights missing")

    monkeypatch.setattr(models_module.PipelineModels, "_load_recognisers", broken)
    with pytest.raises(WeightsError, match="missing"):
        _ = PipelineModels(AnonymiseOptions()).recognisers  # loads on first use, raises in the caller
