"""End-to-end: `deidvid anonymise` on synthetic face videos, and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from deidvid.cli.main import app
from deidvid.io.decode import iter_frames, probe
from deidvid.testing.synthetic_video import (
    face_boxes,
    frame_times,
    make_audio_only_file,
    make_corrupt_video,
    make_face_video,
    make_not_a_video,
    make_pattern_video,
)

N_FRAMES = 45
SIZE = (320, 240)


def run_cli(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    # Typer exits through SystemExit; anything else escaped as a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def frames_of(path: Path) -> np.ndarray:
    return np.stack([f.rgb for f in iter_frames(path)])


def audio_packets(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts, p.size) for p in c.demux(c.streams.audio[0]) if p.size]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    return make_face_video(tmp_path_factory.mktemp("in") / "face.mp4", n_frames=N_FRAMES, size=SIZE)


@pytest.fixture(scope="module")
def blurred(face_video, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out") / "face.deid.mp4"
    report = out.with_suffix(".json")
    result = run_cli("anonymise", face_video, "-o", out, "--method", "blur", "--quiet", "--json", report)
    assert result.exit_code == 0, result.output
    return out, json.loads(report.read_text())["videos"][0]


def test_output_keeps_frames_timestamps_fps_and_audio(face_video, blurred):
    out, report = blurred
    src, dst = probe(face_video), probe(out)
    assert dst.frame_count == src.frame_count == N_FRAMES
    assert dst.fps == src.fps
    assert (dst.width, dst.height) == (src.width, src.height)
    times = [f.time_s for f in iter_frames(out)]
    np.testing.assert_allclose(times, frame_times(N_FRAMES, 30), atol=1e-3)
    assert audio_packets(out) == audio_packets(face_video) != []
    assert report["frames_written"] == N_FRAMES and report["faces"] == 1


def test_face_changes_and_background_stays_within_compression_noise(face_video, blurred):
    out, _ = blurred
    a, b = frames_of(face_video), frames_of(out)
    boxes = face_boxes(N_FRAMES, size=SIZE)[:, 0]
    away = np.ones(a.shape[:3], bool)
    face = np.zeros(a.shape[:3], bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        w, h = x1 - x0, y1 - y0
        # generous margin: the feathered mask may reach a little past the head box
        away[i, max(int(y0 - 0.25 * h), 0) : int(y1 + 0.25 * h), max(int(x0 - 0.25 * w), 0) : int(x1 + 0.25 * w)] = False
        face[i, int(y0 + 0.3 * h) : int(y1 - 0.2 * h), int(x0 + 0.3 * w) : int(x1 - 0.3 * w)] = True
    assert psnr(a[away], b[away]) >= 45.0
    assert np.abs(a[face].astype(int) - b[face]).mean() > 3.0  # the blurred face really changed


def test_report_json_has_tracks_and_stage_timings(blurred):
    _, report = blurred
    assert report["tracks"][0]["frames"] == N_FRAMES
    assert report["frames_unprocessed"] == 0
    for stage in ("decode", "detect", "landmarks", "crop", "model", "paste", "encode", "total"):
        assert report["timings_s"][stage] >= 0


def test_two_faces_get_two_tracks(tmp_path):
    src = make_face_video(tmp_path / "two.mp4", n_frames=20, size=(480, 240), faces=2, audio=False)
    report = tmp_path / "r.json"
    result = run_cli("anonymise", src, "--out-dir", tmp_path, "--method", "pixelate", "-q", "--json", report)
    assert result.exit_code == 0, result.output
    video = json.loads(report.read_text())["videos"][0]
    assert video["faces"] == 2
    assert all(t["frames"] == 20 for t in video["tracks"])
    assert (tmp_path / "two.deid.mp4").exists()


def test_no_face_video_is_re_encoded_and_reported(tmp_path):
    src = make_pattern_video(tmp_path / "noface.mp4", n_frames=12)
    report = tmp_path / "r.json"
    result = run_cli("anonymise", src, "-o", tmp_path / "o.mp4", "-q", "--json", report)
    assert result.exit_code == 0
    video = json.loads(report.read_text())["videos"][0]
    assert video["faces"] == 0 and video["frames_written"] == 12
    assert any("no face" in w for w in video["warnings"])
    assert psnr(frames_of(src), frames_of(tmp_path / "o.mp4")) > 40


def test_one_frame_video(tmp_path):
    src = make_face_video(tmp_path / "one.mp4", n_frames=1, audio=False)
    result = run_cli("anonymise", src, "-o", tmp_path / "o.mp4", "-q")
    assert result.exit_code == 0, result.output
    assert probe(tmp_path / "o.mp4").frame_count == 1


def assert_clean_failure(result, tmp_path: Path, code: int, before: set[Path]) -> None:
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("deidvid: error:"), result.output
    assert "Traceback" not in result.output
    assert set(tmp_path.iterdir()) == before, "a partial or temporary file was left behind"


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda d: d / "missing.mp4", 3),
        (lambda d: make_not_a_video(d / "notes.mp4"), 3),
        (lambda d: make_audio_only_file(d / "tone.m4a"), 3),
        (lambda d: make_corrupt_video(d / "cut.mp4", kind="no_header"), 3),
        (lambda d: make_corrupt_video(d / "trunc.mkv", kind="truncated"), 3),
        (lambda d: make_corrupt_video(d / "garbage.mkv", kind="garbage"), 3),
    ],
    ids=["missing", "not-a-video", "no-video-stream", "mp4-cut", "truncated", "corrupt"],
)
def test_bad_inputs_fail_cleanly(tmp_path, make, code):
    src = make(tmp_path)
    before = set(tmp_path.iterdir())
    result = run_cli("anonymise", src, "--out-dir", tmp_path, "-q")
    assert_clean_failure(result, tmp_path, code, before)


def test_output_equal_to_input_is_refused(tmp_path, face_video):
    src = tmp_path / "in.mp4"
    src.write_bytes(face_video.read_bytes())
    before = set(tmp_path.iterdir())
    result = run_cli("anonymise", src, "-o", src, "-q")
    assert_clean_failure(result, tmp_path, 2, before)
    assert src.read_bytes() == face_video.read_bytes()


def test_missing_output_folder_is_refused(tmp_path, face_video):
    before = set(tmp_path.iterdir())
    result = run_cli("anonymise", face_video, "-o", tmp_path / "nope" / "o.mp4", "-q")
    assert_clean_failure(result, tmp_path, 3, before)


def test_existing_output_needs_overwrite(tmp_path, face_video):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    result = run_cli("anonymise", face_video, "-o", out, "-q")
    assert result.exit_code == 2 and out.read_bytes() == b"keep me"


def test_batch_goes_on_after_a_bad_input_and_reports_each(tmp_path, face_video):
    report = tmp_path / "r.json"
    bad = make_not_a_video(tmp_path / "bad.mp4")
    result = run_cli("anonymise", bad, face_video, "--out-dir", tmp_path, "-q", "--json", report)
    assert result.exit_code == 3
    videos = json.loads(report.read_text())["videos"]
    assert [v["status"] for v in videos] == ["error", "ok"]
    assert (tmp_path / "face.deid.mp4").exists()


def test_real_process_prints_one_line_and_exit_code(tmp_path):
    """Through a real interpreter: no traceback reaches the user."""
    proc = subprocess.run(
        [sys.executable, "-m", "deidvid", "anonymise", str(tmp_path / "missing.mp4")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_face_cut_by_the_frame_edge_is_still_processed(tmp_path, astronaut):
    """The astronaut's face half outside the left edge: crop pads, paste clips to the frame."""
    import av as pyav

    src = tmp_path / "edge.mp4"
    frame = np.ascontiguousarray(astronaut[20:260, 200:520])  # face centre x~225 -> ~25 px from the edge
    with pyav.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": "10"})
        s.width, s.height, s.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        for i in range(12):
            vf = pyav.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    report = tmp_path / "r.json"
    result = run_cli("anonymise", src, "-o", tmp_path / "o.mp4", "-q", "--json", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["videos"][0]["faces"] == 1
    a, b = frames_of(src), frames_of(tmp_path / "o.mp4")
    face_part = (slice(None), slice(70, 150), slice(0, 40))
    assert np.abs(a[face_part].astype(int) - b[face_part]).mean() > 3.0
    assert psnr(a[:, :, 200:], b[:, :, 200:]) > 40  # far side of the frame untouched


def write_frames(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    import av as pyav

    with pyav.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"crf": "10"})
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for i, f in enumerate(frames):
            vf = pyav.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


def test_lost_face_is_covered_by_fallback_and_reported(tmp_path, astronaut):
    """A face vanishes mid-video: its last place is blurred (and counted) unless --fallback none."""
    with_face = astronaut[:256, 96:352]
    gone = with_face.copy()
    gone[40:200, 60:200] = np.random.default_rng(0).integers(0, 255, (160, 140, 3))  # texture, no face
    src = write_frames(tmp_path / "vanish.mp4", [with_face] * 20 + [gone] * 20)
    reports = {}
    for fallback in ("blur", "none"):
        report = tmp_path / f"{fallback}.json"
        result = run_cli("anonymise", src, "-o", tmp_path / f"{fallback}.mp4", "-q", "--fallback", fallback,
                         "--json", report, "--strict")
        reports[fallback] = (result, json.loads(report.read_text())["videos"][0])
    for result, video in reports.values():
        assert result.exit_code == 1  # --strict: lost-face frames exist
        last_tracked = video["tracks"][0]["end_frame"]
        assert 19 <= last_tracked <= 21  # landmark tracking may carry the track a frame on
        assert video["frames_unprocessed"] == 39 - last_tracked and video["status"] == "incomplete"
    a = frames_of(src)[25]
    blurred, untouched = frames_of(tmp_path / "blur.mp4")[25], frames_of(tmp_path / "none.mp4")[25]
    region = (slice(80, 160), slice(100, 180))
    blur_change = np.abs(a[region].astype(int) - blurred[region]).mean()
    noise_only = np.abs(a[region].astype(int) - untouched[region]).mean()  # re-encoding noise texture
    assert blur_change > 10 and noise_only < blur_change / 3


@pytest.mark.parametrize(
    "args",
    [["--strength", "4"], ["--method", "ae", "--strength", "0"], ["--method", "ae", "--strength", "64.5"]],
    ids=["not-ae", "zero", "too-strong"],
)
def test_bad_strength_is_a_usage_error(tmp_path, face_video, args):
    before = set(tmp_path.iterdir())
    result = run_cli("anonymise", face_video, "-o", tmp_path / "o.mp4", "-q", *args)
    assert_clean_failure(result, tmp_path, 2, before)


def test_report_carries_the_identity_check(blurred):
    _, video = blurred
    check = video["identity_check"]
    assert set(check) == {"faceapi_resnet", "mobilefacenet", "mobileface"}
    for scores in check.values():
        assert scores["frames"] >= N_FRAMES // 8 and 0.0 <= scores["match_rate"] <= 1.0
    # Blur at sigma 12 px moves the embeddings far from the original face's.
    assert check["faceapi_resnet"]["mean_distance"] > 0.3


def test_identity_gate_fails_when_the_face_is_left_recognisable(tmp_path, face_video):
    # A near-zero autoencoder perturbation leaves the face as it was: both recognisers match.
    result = run_cli(
        "anonymise", face_video, "-o", tmp_path / "o.mp4", "--method", "ae", "--strength", "0.01",
        "--max-match-rate", "0.5", "-q", "--json", tmp_path / "r.json",
    )
    assert result.exit_code == 1, result.output
    video = json.loads((tmp_path / "r.json").read_text())["videos"][0]
    assert video["status"] == "identity_remains"
    assert video["identity_check"]["faceapi_resnet"]["match_rate"] == 1.0
    assert (tmp_path / "o.mp4").exists()  # the video is still written; the exit code tells
    assert "identity check: recogniser" in result.output


def test_identity_check_can_be_switched_off(tmp_path, face_video):
    result = run_cli("anonymise", face_video, "-o", tmp_path / "o.mp4", "--no-identity-check", "-q", "--json", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["videos"][0]["identity_check"] is None


def test_a_batch_loads_the_models_once(tmp_path, face_video, monkeypatch):
    import deidvid.methods as registry

    calls = []
    real_build = registry.build_method

    def counting_build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(registry, "build_method", counting_build)
    second = tmp_path / "second.mp4"
    second.write_bytes(face_video.read_bytes())
    (tmp_path / "out").mkdir()
    # One process (--workers 1); each worker of a larger pool does the same (deidvid.batch.jobs.models_for).
    result = run_cli("anonymise", face_video, second, "--out-dir", tmp_path / "out", "-q", "--json", "-", "--workers", "1")
    assert result.exit_code == 0, result.output
    videos = json.loads(result.stdout)["videos"]
    assert [v["status"] for v in videos] == ["ok", "ok"] and len(calls) == 1
    assert videos[0]["identity_check"] == videos[1]["identity_check"]  # same input: same fresh tallies
