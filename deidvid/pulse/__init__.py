"""Pulse transplant: carry the original's remote-PPG pulse into de-identified faces.

Blurring or replacing a face destroys the skin's tiny periodic colour change (the
pulse: 0.7-4 Hz, ~0.1-1 % of the reflected light, strongest in green). Pass 1 measures
the original's pulse-band relative variation per skin region (forehead, cheeks, nose,
chin) over each whole face track; pass 2, per clip of the method's output, swaps the
output's own in-band variation for the original's with a smooth multiplicative field
over the skin, in linear light, so each region's mean light follows the original's
pulse exactly while no pixel detail of the original comes back.

Modules: :mod:`~deidvid.pulse.regions` (skin regions from 68 landmarks),
:mod:`~deidvid.pulse.measure` (pass 1: region means, track recording),
:mod:`~deidvid.pulse.variation` (pulse-band relative variation in time),
:mod:`~deidvid.pulse.transplant` (pass 2: the field per clip). numpy/scipy/OpenCV only.
"""

from deidvid.pulse.measure import (
    DEFAULT_BAND_HZ,
    MIN_TRACK_SECONDS,
    TrackPulse,
    TrackPulseRecorder,
    region_means,
    relative_variation,
    rms_amplitude,
)
from deidvid.pulse.regions import (
    REGION_NAMES,
    region_centres,
    region_masks,
    region_polygons,
    skin_field_mask,
)
from deidvid.pulse.transplant import (
    carried_amplitude,
    clip_region_means,
    transplant_clip,
)

__all__ = [
    "DEFAULT_BAND_HZ",
    "MIN_TRACK_SECONDS",
    "REGION_NAMES",
    "TrackPulse",
    "TrackPulseRecorder",
    "carried_amplitude",
    "clip_region_means",
    "region_centres",
    "region_masks",
    "region_means",
    "region_polygons",
    "relative_variation",
    "rms_amplitude",
    "skin_field_mask",
    "transplant_clip",
]
