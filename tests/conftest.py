"""Shared fixtures. Tests needing ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data, or skip the test."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def astronaut() -> "np.ndarray":  # noqa: F821
    """skimage's public-domain astronaut still, (512, 512, 3) uint8 RGB."""
    import numpy as np
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut) -> "np.ndarray":  # noqa: F821
    """dlib 68 landmarks (68, 2) of the astronaut's face (dlib HOG box, no detector needed)."""
    import dlib

    from deidvid.faces.landmarks import LandmarkPredictor, to_grey

    rects = dlib.get_frontal_face_detector()(astronaut, 0)
    r = max(rects, key=lambda r: r.width())
    import numpy as np

    return LandmarkPredictor()(to_grey(astronaut), np.array([r.left(), r.top(), r.right(), r.bottom()], float))
