"""Small value types passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One face found by a detector in one frame (display orientation, pixels).

    Attributes:
        box: ``(4,)`` float ``x0, y0, x1, y1``.
        score: detector confidence in [0, 1].
        points: ``(5, 2)`` float: right eye, left eye, nose tip, right and left mouth
            corner, as (x, y) -- the subject's right eye is on the image's left.
    """

    box: np.ndarray
    score: float
    points: np.ndarray
