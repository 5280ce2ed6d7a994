"""``deidvid.verify`` report, options and tables on hand-made data (no video)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from deidvid.errors import BadInputError
from deidvid.verify.options import VerifyOptions
from deidvid.verify.report import (
    SCHEMA_VERSION,
    VerifyReport,
    gate_failures,
    json_safe,
    summarise,
)
from deidvid.verify.run import check_compatible
from deidvid.verify.tables import fmt, report_tables


def _comparison(hr_mae, pearson):
    window = {"hr_reference_bpm": 70.0, "hr_test_bpm": 70.0 + hr_mae}
    summary = {"hr_mae": hr_mae, "pearson": pearson, "macc": 0.5, "snr_test_db": 1.0, "spectral_similarity": 0.9}
    return {"windows": [window], "summary": summary}


def _face(track_id, hr_mae, pearson, match_rates, detected, windows=("10", "whole")):
    pulse = None
    if hr_mae is not None:
        pulse = {"methods": {"pos": {"windows": {key: _comparison(hr_mae, pearson) for key in windows}}}}
    identity = {
        name: {"frames": 4, "threshold": None if rate is None else 0.6, "match_rate": rate,
               "mean_distance": 0.7, "median_distance": 0.7}
        for name, rate in match_rates.items()
    }
    return {
        "track_id": track_id, "start_frame": 0, "frames": 300, "interpolated_frames": 0, "pulse": pulse,
        "identity": identity, "detection": {"frames": 30, "rate_original": 1.0, "rate_deidentified": detected},
    }


QUALITY = {
    "frame": {"psnr_mean": math.inf, "psnr_pooled": 40.0, "ssim_mean": 0.99, "frames": 300, "ssim_frames": 60},
    "face": {"psnr_mean": 31.0, "psnr_pooled": 30.0, "ssim_mean": 0.9, "frames": 300, "ssim_frames": 60},
}
OPTIONS = VerifyOptions(methods=("pos",), windows_s=(10.0,))


def _report(faces):
    return VerifyReport(
        original="a.mp4", deidentified="b.mp4",
        video={"width": 64, "height": 48, "fps": 30.0, "frames": 300, "variable_frame_rate": False,
               "face_tracks": len(faces)},
        settings={"path": Path("x")}, quality=QUALITY, faces=faces, gallery=None,
        summary=summarise(faces, QUALITY, OPTIONS),
    )


def test_summary_is_the_worst_track():
    faces = [
        _face(0, 1.0, 0.95, {"A": 0.0, "B": None}, 0.1),
        _face(1, 4.0, 0.80, {"A": 0.25, "B": None}, 0.0, windows=("whole",)),  # too short for 10 s: whole
        _face(2, None, None, {"A": 0.5, "B": None}, None),  # no pulse, no detection sample
    ]
    summary = summarise(faces, QUALITY, OPTIONS)
    assert summary == {
        "method": "pos", "window_s": 10.0, "hr_mae_bpm": 4.0, "pearson": 0.80, "match_rate": 0.5,
        "detection_rate_deidentified": 0.1, "psnr_db": math.inf, "ssim": 0.99, "face_psnr_db": 31.0,
        "face_ssim": 0.9,
    }


def test_summary_without_measurements_is_none():
    summary = summarise([_face(0, None, None, {"B": None}, None)], QUALITY, OPTIONS)
    assert summary["hr_mae_bpm"] is None and summary["pearson"] is None
    assert summary["match_rate"] is None and summary["detection_rate_deidentified"] is None


def test_gates():
    report = _report([_face(0, 4.0, 0.8, {"A": 0.25}, 0.0)])
    assert gate_failures(report) == []
    assert gate_failures(report, max_match_rate=0.25, max_hr_mae=4.0, min_pearson=0.8, min_psnr=31.0) == []
    assert gate_failures(report, max_match_rate=0.1, max_hr_mae=5.0, min_pearson=0.9, min_psnr=35.0) == [
        "match rate 0.25 > 0.1", "pulse Pearson r 0.8 < 0.9", "face-crop PSNR (dB) 31 < 35",
    ]
    unmeasured = _report([_face(0, None, None, {"B": None}, None)])
    assert gate_failures(unmeasured, max_match_rate=0.1, max_hr_mae=5.0) == [
        "match rate could not be measured (gate max 0.1)", "HR MAE (bpm) could not be measured (gate max 5)",
    ]


def test_json_has_a_schema_version_and_no_non_finite_numbers():
    report = _report([_face(0, 1.0, float("nan"), {"A": 0.0}, 1.0)])
    payload = report.to_dict()
    assert payload["schema_version"] == SCHEMA_VERSION
    assert list(payload) == [
        "schema_version", "original", "deidentified", "video", "settings", "quality", "faces", "gallery", "summary", "warnings",
        "timings_s",
    ]
    assert payload["quality"]["frame"]["psnr_mean"] is None and payload["summary"]["psnr_db"] is None
    assert payload["faces"][0]["pulse"]["methods"]["pos"]["windows"]["10"]["summary"]["pearson"] is None
    assert payload["settings"]["path"] == "x"
    json.dumps(payload, allow_nan=False)


def test_json_safe_types():
    value = {1: (np.float32(0.5), np.int64(3), np.bool_(True), float("-inf"), Path("p"), None, "s")}
    assert json_safe(value) == {"1": [0.5, 3, True, None, "p", None, "s"]}
    assert type(json_safe(np.int64(3))) is int and type(json_safe(np.bool_(False))) is bool


def test_tables_summary_then_pulse_and_identity_per_track():
    report = _report([_face(0, 1.0, 0.9, {"A": 0.0, "B": None}, 1.0), _face(1, None, None, {"A": 0.5}, None)])
    tables = report_tables(report)
    assert len(tables) == 1 + 2 * 2
    assert tables[1].row_count == 2  # POS at 10 s and whole track
    assert tables[3].row_count == 0  # the second track had no pulse analysis
    assert tables[2].row_count == 2 and "face detected in 1.000" in tables[2].caption
    assert fmt(None) == "-" and fmt(math.inf) == "inf" and fmt(0.12345, 3) == "0.123" and fmt(7) == "7"


def test_options_are_checked():
    with pytest.raises(ValueError, match="rPPG methods"):
        VerifyOptions(methods=("nope",)).check()
    with pytest.raises(ValueError, match="rPPG methods"):
        VerifyOptions(methods=()).check()
    with pytest.raises(ValueError, match="ssim_stride"):
        VerifyOptions(ssim_stride=0).check()
    options = VerifyOptions(windows_s=(), band_hz=(0.7, 3.0), macc_max_lag_s=0.5)
    assert options.primary_window is None and options.primary_method == "pos"
    assert options.pulse_settings.band_hz == (0.7, 3.0) and options.pulse_settings.macc_max_lag_s == 0.5


def test_incompatible_videos_are_refused():
    info = SimpleNamespace(width=64, height=48, frame_count=10, fps=30.0)
    check_compatible(info, SimpleNamespace(**{**vars(info), "fps": 30.0 + 1e-4}))
    for change, message in [({"width": 32}, "sizes differ"), ({"frame_count": 9}, "frame counts differ"),
                            ({"fps": 25.0}, "frame rates differ")]:
        with pytest.raises(BadInputError, match=message):
            check_compatible(info, SimpleNamespace(**{**vars(info), **change}))
