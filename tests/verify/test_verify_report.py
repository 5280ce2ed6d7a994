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
    gate_checks,
    gate_failures,
    json_safe,
    summarise,
)
from deidvid.verify.run import check_compatible
from deidvid.verify.tables import fmt, report_tables


def _comparison(hr_mae, pearson, key="whole"):
    window = {"hr_reference_bpm": 70.0, "hr_test_bpm": 70.0 + hr_mae}
    summary = {"window_s": None if key == "whole" else float(key), "hr_mae": hr_mae, "pearson": pearson, "macc": 0.5,
               "snr_test_db": 1.0, "spectral_similarity": 0.9}
    return {"windows": [window], "summary": summary}


def _face(track_id, hr_mae, pearson, match_rates, detected, windows=("10", "whole"), haar=None, expression_r=None,
          flicker=None):
    pulse = None
    if hr_mae is not None:
        pulse = {"methods": {"pos": {"windows": {key: _comparison(hr_mae, pearson, key) for key in windows}}}}
    identity = {
        name: {"frames": 4, "threshold": None if rate is None else 0.6, "match_rate": rate,
               "mean_distance": 0.7, "median_distance": 0.7, "threshold_far1e3": None if rate is None else 0.5,
               "match_rate_far1e3": None if rate is None else rate / 2}
        for name, rate in match_rates.items()
    }
    detection = {"frames": 30, "rate_original": 1.0, "rate_deidentified": detected}
    if haar is not None:
        detection["haar_rate"] = {"original": 1.0, "deidentified": haar}
    expression = None
    if expression_r is not None:  # mouth_open at r, a constant signal (r undefined) beside it
        expression = {"mouth_open": {"r": expression_r, "mad": 0.01, "frames": 150},
                      "roll": {"r": None, "mad": 0.0, "frames": 150}}
    temporal = None
    if flicker is not None:
        temporal = {"frames": 299, "change_orig": 2.0, "change_deid": 2.0 * flicker, "flicker_ratio": flicker,
                    "band_hz": [0.7, 4.0], "added_band_rms": 0.1, "orig_band_rms": 1.0, "added_band_power_ratio": 0.01}
    return {
        "track_id": track_id, "start_frame": 0, "frames": 300, "interpolated_frames": 0, "pulse": pulse,
        "identity": identity, "detection": detection, "expression": expression, "temporal": temporal,
    }


def _toolbox(diff_pos, diff_chrom, detected=True):
    def entry(diff):
        return {"hr_orig": 70.0, "hr_deid": None if diff is None else 70.0 + diff, "abs_diff": diff, "detected": detected}

    return {"toolbox": {"pos": entry(diff_pos), "chrom": entry(diff_chrom), "detected_orig": True,
                        "detected_deid": detected, "box_orig": [1, 2, 30, 30], "box_deid": [1, 2, 30, 30], "frames": 300}}


QUALITY = {
    "frame": {"psnr_mean": math.inf, "psnr_pooled": 40.0, "ssim_mean": 0.99, "frames": 300, "ssim_frames": 60},
    "face": {"psnr_mean": 31.0, "psnr_pooled": 30.0, "ssim_mean": 0.9, "frames": 300, "ssim_frames": 60},
}
OPTIONS = VerifyOptions(methods=("pos",), windows_s=(10.0,))


def _report(faces, pulse=None):
    return VerifyReport(
        original="a.mp4", deidentified="b.mp4",
        video={"width": 64, "height": 48, "fps": 30.0, "frames": 300, "variable_frame_rate": False,
               "face_tracks": len(faces)},
        settings={"path": Path("x")}, quality=QUALITY, faces=faces, pulse=pulse, gallery=None,
        summary=summarise(faces, QUALITY, OPTIONS, pulse),
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
        "face_ssim": 0.9, "match_rate_far1e3": 0.25, "toolbox_hr_diff_bpm": None, "toolbox_detected": None,
        "haar_rate_deidentified": None, "expression_r": None, "flicker_ratio": None,
    }


def test_summary_names_the_whole_track_when_every_track_was_too_short_for_the_window():
    faces = [_face(0, 1.0, 0.95, {"A": 0.0}, 0.1, windows=("whole",)), _face(1, 2.0, 0.9, {"A": 0.0}, 0.1, windows=("whole",))]
    assert summarise(faces, QUALITY, OPTIONS)["window_s"] is None
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(report_tables(_report(faces))[0])
    text = console.export_text()
    assert "whole track" in text and "10 s windows" not in text


def test_summary_of_the_new_measures_is_the_worst_case():
    faces = [
        _face(0, 1.0, 0.9, {"A": 0.2}, 1.0, haar=0.9, expression_r=0.95, flicker=1.1),
        _face(1, 1.0, 0.9, {"A": 0.0}, 1.0, haar=0.4, expression_r=0.7, flicker=1.8),
        _face(2, None, None, {"A": 0.0}, None),  # skipped measurements: left out
    ]
    summary = summarise(faces, QUALITY, OPTIONS, _toolbox(2.5, 7.0, detected=False))
    assert summary["match_rate_far1e3"] == 0.1
    assert summary["toolbox_hr_diff_bpm"] == 7.0 and summary["toolbox_detected"] is False
    assert summary["haar_rate_deidentified"] == 0.4
    assert summary["expression_r"] == 0.7  # the lowest defined r; the constant signal's None is left out
    assert summary["flicker_ratio"] == 1.8
    # one toolbox method without an HR: the difference could not be measured
    assert summarise(faces, QUALITY, OPTIONS, _toolbox(2.5, None))["toolbox_hr_diff_bpm"] is None


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


def test_gates_of_the_toolbox_haar_and_expression():
    report = _report([_face(0, 1.0, 0.9, {"A": 0.0}, 1.0, haar=0.5, expression_r=0.8)], _toolbox(1.5, 3.0))
    assert gate_failures(report, max_hr_diff_toolbox=3.0, min_haar_rate=0.5, min_expression_r=0.8) == []
    assert gate_failures(report, max_hr_diff_toolbox=2.0, min_haar_rate=0.6, min_expression_r=0.9) == [
        "rPPG-Toolbox HR difference (bpm) 3 > 2", "Haar detection rate 0.5 < 0.6", "expression r 0.8 < 0.9",
    ]
    skipped = _report([_face(0, 1.0, 0.9, {"A": 0.0}, 1.0)])
    assert gate_failures(skipped, max_hr_diff_toolbox=2.0, min_haar_rate=0.6, min_expression_r=0.9) == [
        "rPPG-Toolbox HR difference (bpm) could not be measured (gate max 2)",
        "Haar detection rate could not be measured (gate min 0.6)",
        "expression r could not be measured (gate min 0.9)",
    ]


def test_gate_checks_say_which_gate_passed():
    """What the --html page shows: every requested gate with its value, limit and verdict."""
    report = _report([_face(0, 4.0, 0.8, {"A": 0.25}, 0.0)])
    assert gate_checks(report) == []
    checks = gate_checks(report, max_match_rate=0.1, max_hr_mae=4.0, min_psnr=35.0, min_haar_rate=0.5)
    assert [(c.label, c.value, c.limit, c.kind, c.passed) for c in checks] == [
        ("match rate", 0.25, 0.1, "max", False),
        ("HR MAE (bpm)", 4.0, 4.0, "max", True),  # at the limit passes
        ("face-crop PSNR (dB)", 31.0, 35.0, "min", False),
        ("Haar detection rate", None, 0.5, "min", False),  # not measured: fails
    ]
    assert not checks[3].measured and checks[1].failure() is None
    assert [c.failure() for c in checks if not c.passed] == gate_failures(
        report, max_match_rate=0.1, max_hr_mae=4.0, min_psnr=35.0, min_haar_rate=0.5
    )


def test_json_has_a_schema_version_and_no_non_finite_numbers():
    report = _report([_face(0, 1.0, float("nan"), {"A": 0.0}, 1.0)])
    payload = report.to_dict()
    assert payload["schema_version"] == SCHEMA_VERSION
    assert list(payload) == [
        "schema_version", "original", "deidentified", "video", "settings", "quality", "faces", "pulse", "gallery",
        "summary", "warnings", "timings_s",
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
    assert len(tables) == 1 + 2 * 2  # toolbox, expression and temporal skipped: no tables
    assert tables[1].row_count == 2  # POS at 10 s and whole track
    assert tables[3].row_count == 0  # the second track had no pulse analysis
    assert tables[2].row_count == 2 and "face detected in 1.000" in tables[2].caption
    assert fmt(None) == "-" and fmt(math.inf) == "inf" and fmt(0.12345, 3) == "0.123" and fmt(7) == "7"


def test_tables_of_the_toolbox_expression_and_temporal():
    face = _face(0, 1.0, 0.9, {"A": 0.0}, 1.0, haar=0.5, expression_r=0.8, flicker=1.2)
    tables = report_tables(_report([face], _toolbox(1.5, 3.0, detected=False)))
    assert len(tables) == 1 + 1 + 3  # summary, toolbox; pulse, identity, expression
    assert tables[1].row_count == 2 and "de-identified no (whole frame)" in tables[1].caption
    assert "Haar cascade: 0.500" in tables[3].caption
    assert tables[4].row_count == 2 and "flicker ratio 1.200" in tables[4].caption
    labels = list(tables[0].columns[0].cells)
    for label in ("identity match rate at FAR 1e-3 (max)", "rPPG-Toolbox HR difference (max)", "expression / pose r (min)",
                  "flicker ratio (max)"):
        assert label in labels


def test_options_are_checked():
    with pytest.raises(ValueError, match="rPPG methods"):
        VerifyOptions(methods=("nope",)).check()
    with pytest.raises(ValueError, match="rPPG methods"):
        VerifyOptions(methods=()).check()
    with pytest.raises(ValueError, match="ssim_stride"):
        VerifyOptions(ssim_stride=0).check()
    with pytest.raises(ValueError, match="expression_stride"):
        VerifyOptions(expression_stride=0).check()
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


def test_a_short_clip_may_end_on_another_last_frame_duration():
    # A 3 s, 75-frame clip packet-copied into .mp4 lost its last frame's duration (1875/74 fps);
    # written again it has one (25.005 fps): the same 75 frames, 1.3 % apart on average.
    original = SimpleNamespace(width=360, height=288, frame_count=75, fps=1875 / 74)
    check_compatible(original, SimpleNamespace(**{**vars(original), "fps": 140625 / 5624}))
    with pytest.raises(BadInputError, match="frame rates differ"):  # 2 frames longer (2.96 + 0.08 s): not a last frame
        check_compatible(original, SimpleNamespace(**{**vars(original), "fps": 75 / 3.04}))
