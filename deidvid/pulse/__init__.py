"""Pulse transplant: carry the original's remote-PPG pulse into de-identified faces.

Blurring or replacing a face destroys the skin's tiny periodic colour change (the
pulse: 0.7-4 Hz, ~0.1-1 % of the reflected light, strongest in green). Per clip of
the method's output, the original crops' pulse-band relative variation per skin region
(forehead, cheeks, nose, chin) replaces the output's own, through a smooth
multiplicative field over the skin in linear light: each region's mean light follows
the original's pulse exactly while no pixel detail of the original comes back.

Modules: :mod:`~deidvid.pulse.regions` (skin regions from 68 landmarks),
:mod:`~deidvid.pulse.variation` (pulse-band relative variation in time),
:mod:`~deidvid.pulse.iir` (Butterworth filters, zero-phase, in numpy),
:mod:`~deidvid.pulse.transplant` (the field per clip), :mod:`~deidvid.pulse.stage`
(the pipeline stage). numpy and OpenCV (scipy only for variable frame rates).
"""
