"""The UBFC table runs through the product's own face finding and decoder."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_ubfc_pos_follows_the_finger_ppg(shared_data, tmp_path):
    """UBFC subject 5: product pass 1 -> skin RGB -> POS HR per 10 s window within 8 bpm of the PPG's."""
    from deidvid.rppg.compare import PulseSettings
    from deidvid.tools.ubfc_table import evaluate_subject, load_or_extract

    subject = shared_data / "ubfc" / "subject5"
    trace = load_or_extract(subject / "vid.mp4", tmp_path, detect_every=3)  # cached for evaluate_subject
    assert np.isfinite(trace.rgb).all()  # the face is found in every frame
    assert np.all(np.diff(trace.times) > 0)
    result = evaluate_subject(subject, [10.0], ["pos"], tmp_path, 3, PulseSettings())
    summary = result["methods"]["pos"]["10.0"]["summary"]
    assert summary["windows"] >= 4
    assert summary["hr_mae"] < 8.0
    assert summary["macc"] > 0.4
