"""Where the development data lives: ``$DEIDVID_SHARED_DATA``, else ``../shared/data`` beside the checkout.

Only developer tools (training, calibration, the UBFC table) and tests use it; the
product never reads it.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """The shared data folder (it may not exist: callers skip or fail with a message)."""
    env = os.environ.get("DEIDVID_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"
