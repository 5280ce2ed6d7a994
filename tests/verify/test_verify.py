"""``deidvid.verify.run`` end to end: pulse, identity and quality of a de-identified video vs its original.

Each measurement alone, on arrays: ``tests/measure`` (identity, detection, gallery, pulse,
quality) and ``test_verify_report.py`` (summary, gates, JSON, tables).
"""

from __future__ import annotations

import dataclasses
import json
import math

import av
import numpy as np
import pytest

from deidvid.errors import BadInputError
from deidvid.testing.synthetic_video import make_face_video, make_pattern_video
from deidvid.verify.run import (
    VerifyOptions,
    VerifyReport,
    gate_failures,
    report_tables,
    verify_videos,
)

FPS = 30
N_FRAMES = 150
SIZE = (320, 240)
FAST = VerifyOptions(windows_s=(2.5,), identity_stride=15, ssim_stride=15, detect_stride=15)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify") / "face.mp4"
    return make_face_video(path, n_frames=N_FRAMES, size=SIZE, fps=FPS, audio=False)


@pytest.fixture(scope="module")
def self_report(face_video) -> VerifyReport:
    return verify_videos(face_video, face_video, FAST)


def _rewrite(src, dst, transform, n_frames=None, size=None):
    """Re-encode ``src`` near-losslessly with ``transform(rgb, index) -> rgb``."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        width, height = size or SIZE
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        stream.options = {"qp": "0"}
        for index, frame in enumerate(inp.decode(video=0)):
            if n_frames is not None and index >= n_frames:
                break
            rgb = transform(np.ascontiguousarray(frame.to_ndarray(format="rgb24")), index)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return dst


def test_same_video_is_perfect(self_report):
    report = self_report.to_dict()
    summary = report["summary"]
    assert summary["hr_mae_bpm"] == 0.0
    assert summary["pearson"] == pytest.approx(1.0)
    assert summary["match_rate"] == 1.0
    assert summary["psnr_db"] is None  # infinite PSNR is null in JSON
    assert self_report.summary["psnr_db"] == math.inf
    assert summary["ssim"] == pytest.approx(1.0)
    face = report["faces"][0]
    for name, identity in face["identity"].items():
        assert identity["mean_distance"] == 0.0, name
        if identity["threshold"] is not None:
            assert identity["match_rate"] == 1.0
    assert face["detection"]["rate_original"] == face["detection"]["rate_deidentified"] == 1.0
    for method in ("pos", "chrom", "green"):
        entry = face["pulse"]["methods"][method]
        assert entry["hr_original_bpm"] == entry["hr_deidentified_bpm"]
        assert set(entry["windows"]) == {"2.5", "whole"}
    json.dumps(report, allow_nan=False)  # strict JSON
    assert report["settings"]["band_hz"] == [0.75, 2.5]
    assert report["settings"]["versions"]["numpy"] == np.__version__


def test_same_video_on_the_new_measures(self_report):
    """Issue 13's targets for a video against itself: identity 1 at both thresholds, toolbox HR
    difference 0, Haar on both, expression r 1 (or undefined: constant), flicker ratio 1."""
    report = self_report.to_dict()
    face = report["faces"][0]
    for name, identity in face["identity"].items():
        assert identity["threshold_far1e3"] < identity["threshold"], name
        assert identity["match_rate_far1e3"] == 1.0, name
    toolbox = report["pulse"]["toolbox"]
    assert toolbox["detected_orig"] and toolbox["detected_deid"] and toolbox["box_orig"] == toolbox["box_deid"]
    for method in ("pos", "chrom"):
        assert toolbox[method]["abs_diff"] == 0.0 and toolbox[method]["detected"] is True
        assert 40 <= toolbox[method]["hr_orig"] <= 180
    assert face["detection"]["haar_rate"] == {"original": 1.0, "deidentified": 1.0}
    assert set(face["expression"]) == {
        "mouth_open", "eye_left", "eye_right", "brow_raise", "yaw", "pitch", "roll",
        "mesh_mouth_open", "mesh_eye_right", "mesh_eye_left", "gaze_x", "gaze_y",
    }
    for signal, values in face["expression"].items():
        assert values["mad"] == 0.0 and values["frames"] == N_FRAMES // FAST.expression_stride, signal
        assert values["r"] is None or values["r"] == pytest.approx(1.0), signal
    temporal = face["temporal"]
    assert temporal["flicker_ratio"] == 1.0 and temporal["frames"] == N_FRAMES - 1
    assert temporal["added_band_rms"] == 0.0 and temporal["added_band_power_ratio"] == 0.0
    summary = report["summary"]
    assert summary["match_rate_far1e3"] == 1.0 and summary["toolbox_hr_diff_bpm"] == 0.0
    assert summary["toolbox_detected"] is True and summary["haar_rate_deidentified"] == 1.0
    assert summary["expression_r"] == pytest.approx(1.0) and summary["flicker_ratio"] == 1.0
    assert gate_failures(self_report, max_hr_diff_toolbox=0.0, min_haar_rate=1.0, min_expression_r=0.99) == []
    assert report["settings"]["recogniser_thresholds_far1e3"]["faceapi_resnet"] == pytest.approx(0.5432, abs=1e-4)


def test_skipped_measurements_are_null(face_video):
    options = dataclasses.replace(
        FAST, methods=("pos",), recognisers=("faceapi_resnet",), toolbox=False, expression=False, temporal=False,
    )
    report = verify_videos(face_video, face_video, options).to_dict()
    face = report["faces"][0]
    assert report["pulse"] is None and face["expression"] is None and face["temporal"] is None
    assert "haar_rate" not in face["detection"]
    assert report["summary"]["toolbox_hr_diff_bpm"] is None and report["summary"]["expression_r"] is None
    assert "toolbox" not in report["timings_s"] and "expression" not in report["timings_s"]


def test_blurred_copy_loses_haar_and_flickering_copy_is_seen(face_video, tmp_path):
    """Blur: the Haar cascade (and so rPPG-Toolbox's crop) loses the face. Per-frame noise
    in the face: the frame-to-frame change and the pulse-band power grow."""
    import cv2

    blurred = _rewrite(face_video, tmp_path / "blur.mp4", lambda rgb, i: cv2.GaussianBlur(rgb, (0, 0), 8))
    options = dataclasses.replace(FAST, methods=("pos",), recognisers=("faceapi_resnet",), expression=False)
    report = verify_videos(face_video, blurred, options)
    toolbox = report.pulse["toolbox"]
    assert toolbox["detected_orig"] and not toolbox["detected_deid"] and not toolbox["pos"]["detected"]
    assert toolbox["box_deid"] == [0, 0, 360, 480]  # the whole 320x240 frame
    assert report.summary["haar_rate_deidentified"] < 0.5
    assert report.faces[0]["detection"]["haar_rate"]["original"] == 1.0
    assert any("Haar detection rate" in f for f in gate_failures(report, min_haar_rate=0.9))

    rng = np.random.default_rng(3)

    def flicker(rgb, index):
        level = rng.normal(0, 3)  # one brightness step per frame, all pixels alike
        return np.clip(rgb.astype(float) + level, 0, 255).astype(np.uint8)

    flickering = _rewrite(face_video, tmp_path / "flicker.mp4", flicker)
    options = dataclasses.replace(options, toolbox=False)
    temporal = verify_videos(face_video, flickering, options).faces[0]["temporal"]
    assert temporal["flicker_ratio"] > 1.1
    assert temporal["added_band_rms"] > 0.5 and temporal["added_band_power_ratio"] > 0.1


def test_gates(self_report):
    assert gate_failures(self_report, max_hr_mae=1.0, min_pearson=0.9) == []
    failures = gate_failures(self_report, max_match_rate=0.05, min_psnr=30.0)
    assert len(failures) == 1 and "match rate" in failures[0]
    tables = report_tables(self_report)
    assert len(tables) == 5  # summary, toolbox, pulse, identity, expression


def test_noisy_copy_keeps_pulse_and_identity(face_video, tmp_path):
    rng = np.random.default_rng(0)
    pattern = rng.integers(-3, 4, size=(SIZE[1], SIZE[0], 3))
    noisy = _rewrite(
        face_video, tmp_path / "noisy.mp4",
        lambda rgb, i: np.clip(rgb.astype(int) + pattern, 0, 255).astype(np.uint8),
    )
    report = verify_videos(face_video, noisy, FAST)
    summary = report.summary
    assert 35.0 < summary["psnr_db"] < 50.0
    assert summary["ssim"] < 1.0
    assert summary["match_rate"] == 1.0
    assert summary["pearson"] > 0.9
    assert summary["hr_mae_bpm"] < 5.0


@pytest.mark.slow
def test_destroyed_pulse_is_reported(face_video, tmp_path):
    """The skin of a frozen first frame carries no pulse: Pearson r collapses."""
    first = {}

    def freeze(rgb, index):
        first.setdefault("frame", rgb)
        noise = np.random.default_rng(index).integers(-1, 2, size=rgb.shape)
        return np.clip(first["frame"].astype(int) + noise, 0, 255).astype(np.uint8)

    frozen = _rewrite(face_video, tmp_path / "frozen.mp4", freeze)
    report = verify_videos(face_video, frozen, FAST)
    assert report.summary["pearson"] < 0.5
    assert gate_failures(report, min_pearson=0.9)


def test_mismatched_inputs(face_video, tmp_path):
    shorter = _rewrite(face_video, tmp_path / "short.mp4", lambda rgb, i: rgb, n_frames=100)
    with pytest.raises(BadInputError, match="frame counts differ"):
        verify_videos(face_video, shorter, FAST)
    import cv2

    smaller = _rewrite(
        face_video, tmp_path / "small.mp4", lambda rgb, i: cv2.resize(rgb, (160, 120)),
        size=(160, 120),
    )
    with pytest.raises(BadInputError, match="sizes differ"):
        verify_videos(face_video, smaller, FAST)


def test_an_unrelated_second_video_is_flagged(face_video, self_report, tmp_path):
    other = make_pattern_video(tmp_path / "other.mp4", n_frames=N_FRAMES, size=SIZE, fps=FPS)
    report = verify_videos(face_video, other, FAST)
    assert any("outside the faces the two videos differ" in w for w in report.warnings)
    assert not any("outside the faces" in w for w in self_report.warnings)


def test_no_face_is_an_error(tmp_path):
    pattern = make_pattern_video(tmp_path / "pattern.mp4", n_frames=60)
    with pytest.raises(BadInputError, match="no face"):
        verify_videos(pattern, pattern, FAST)


def test_ppg_ground_truth_is_compared(face_video, tmp_path):
    times = np.arange(0, N_FRAMES / FPS + 1, 0.01)
    csv = tmp_path / "ppg.csv"
    rows = (f"{t:.3f},{np.sin(2 * np.pi * 1.2 * t):.6f}" for t in times)
    csv.write_text("time,ppg\n" + "\n".join(rows))
    options = VerifyOptions(
        methods=("pos",), windows_s=(), identity_stride=50, ssim_stride=50, detect_stride=50,
        recognisers=("faceapi_resnet",), ppg=csv,
    )
    report = verify_videos(face_video, face_video, options)
    ppg = report.faces[0]["pulse"]["methods"]["pos"]["ppg"]
    for label in ("original", "deidentified"):
        window = ppg[label]["whole"]["windows"][0]
        assert window["hr_reference_bpm"] == pytest.approx(72.0, abs=3.6)  # 1.2 Hz PPG
    same = [w["hr_test_bpm"] for w in ppg["original"]["whole"]["windows"]]
    assert same == [w["hr_test_bpm"] for w in ppg["deidentified"]["whole"]["windows"]]


def test_a_ppg_covering_too_little_is_not_compared_and_said_so(face_video, tmp_path):
    csv = tmp_path / "ppg.csv"
    csv.write_text("time,ppg\n" + "\n".join(f"{t:.2f},{np.sin(7.5 * t):.4f}" for t in np.arange(0, 0.5, 0.01)))  # 0.5 of 5 s
    options = VerifyOptions(
        methods=("pos",), windows_s=(), identity_stride=50, ssim_stride=50, detect_stride=50,
        recognisers=("faceapi_resnet",), ppg=csv,
    )
    report = verify_videos(face_video, face_video, options)
    pos = report.faces[0]["pulse"]["methods"]["pos"]
    assert "ppg" not in pos or pos["ppg"] is None
    whole = pos["windows"]["whole"]["windows"]
    assert [(w["start"], w["stop"]) for w in whole] == [(0, N_FRAMES)]  # compared in full, not cut to the PPG's 2 frames
    assert any("the contact PPG covers" in w for w in report.warnings)


@pytest.mark.slow
def test_gallery_top1_and_eer(face_video, shared_data, tmp_path):
    """Gallery: the astronaut (frames of the video) among three LFW people."""
    import cv2

    gallery = tmp_path / "gallery"
    (gallery / "astronaut").mkdir(parents=True)
    with av.open(str(face_video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in (0, 60, 120):
                rgb = frame.to_ndarray(format="rgb24")
                cv2.imwrite(str(gallery / "astronaut" / f"{index}.png"), rgb[:, :, ::-1])
    lfw = shared_data / "images" / "lfw"
    people = sorted(p for p in lfw.iterdir() if len(list(p.glob("*.jpg"))) >= 3)[:3]
    for person in people:
        (gallery / person.name).mkdir()
        for image in sorted(person.glob("*.jpg"))[:3]:
            (gallery / person.name / image.name).write_bytes(image.read_bytes())
    options = VerifyOptions(
        methods=("pos",), windows_s=(), identity_stride=10, ssim_stride=50, detect_stride=50,
        recognisers=("faceapi_resnet",), gallery=gallery,
    )
    report = verify_videos(face_video, face_video, options).to_dict()
    assert report["gallery"]["identities"] == sorted(["astronaut", *[p.name for p in people]])
    scores = report["gallery"]["tracks"]["0"]["faceapi_resnet"]
    assert scores["identity"] == "astronaut"
    assert scores["top1_original"] == scores["top1_deidentified"] == 1.0
    assert scores["eer_original"] == scores["eer_deidentified"] < 0.2
    # the original enrolled beside the gallery's astronaut (the same person: not a distractor)
    assert scores["same_person_in_gallery"] == ["astronaut"] and scores["gallery_size"] == 5
    assert scores["rank1_original"] == scores["rank1_deidentified"] == 1.0
    assert scores["rank5_deidentified"] == 1.0


def test_physnet_judges_beside_the_skin_mean_methods(face_video):
    from deidvid.rppg.physnet import physnet_available

    if not physnet_available():
        pytest.skip("open-rppg wheel not installed (bash tests/run.sh installs it)")
    options = dataclasses.replace(FAST, methods=("pos", "physnet"))
    face = verify_videos(face_video, face_video, options).to_dict()["faces"][0]
    physnet = face["pulse"]["methods"]["physnet"]
    assert physnet["hr_original_bpm"] == physnet["hr_deidentified_bpm"]
    assert physnet["windows"]["whole"]["summary"]["pearson"] == pytest.approx(1.0)


def test_physnet_missing_is_a_warning_not_a_failure(face_video, monkeypatch):
    import deidvid.rppg.physnet as physnet

    monkeypatch.setattr(physnet, "physnet_available", lambda variant="rlap": False)
    options = dataclasses.replace(FAST, methods=("pos", "physnet"))
    report = verify_videos(face_video, face_video, options)
    assert "physnet" not in report.faces[0]["pulse"]["methods"]
    assert any("rPPG method physnet skipped" in w for w in report.warnings)
