"""The pulse transplant through the product: blur keeps a known pulse, and says when it cannot."""

from __future__ import annotations

import pytest

from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video
from deidvid.rppg.hr import frequency_resolution_bpm
from deidvid.testing.synthetic_video import make_face_video
from deidvid.verify.options import VerifyOptions
from deidvid.verify.run import verify_videos

PULSE_BPM = 72.0
FPS = 30.0
FRAMES = 300


@pytest.fixture(scope="module")
def weak_pulse_video(tmp_path_factory):
    """A faint 72 bpm skin pulse (0.6/255) and a light behind the person flickering at 100 bpm.

    Written losslessly: x264 (PyAV 18, FFmpeg 8) codes the same frames differently from run to
    run, and this faint a pulse must not depend on which coding a run happened to get."""
    path = tmp_path_factory.mktemp("pulse") / "weak.mp4"
    return make_face_video(
        path, n_frames=FRAMES, fps=FPS, pulse_bpm=PULSE_BPM, pulse_amplitude=0.6, audio=False,
        flicker_bpm=100.0, flicker_amplitude=20.0, crf=0,
    )


def _pulse(src, out, keep: bool) -> dict:
    # Lossless output: this measures the transplant, not the encoder.
    report = anonymise_video(src, out, AnonymiseOptions(keep_pulse=keep, identity_check=False, lossless=True))
    options = VerifyOptions(methods=("pos", "green"), windows_s=(10.0,), recognisers=())
    verified = verify_videos(src, out, options)
    return {"report": report, "pulse": verified.faces[0]["pulse"]["methods"]}


@pytest.mark.slow
def test_blur_with_the_transplant_keeps_the_known_pulse(weak_pulse_video, tmp_path):
    kept = _pulse(weak_pulse_video, tmp_path / "kept.mp4", keep=True)
    lost = _pulse(weak_pulse_video, tmp_path / "lost.mp4", keep=False)
    resolution = frequency_resolution_bpm(FRAMES, FPS)
    for method in ("pos", "green"):
        entry = kept["pulse"][method]
        assert abs(entry["hr_deidentified_bpm"] - PULSE_BPM) <= resolution, method
        # 72 bpm falls between two bins of this 10 s spectrum (70.3 and 73.8 bpm): either is
        # the known pulse. Measured: GREEN 70.3 in both; POS 70.3 in both with the band's low
        # edge at 0.7 Hz, 73.8 for the output at 0.3 Hz (whole-clip r 0.918 -> 0.942).
        assert abs(entry["hr_deidentified_bpm"] - entry["hr_original_bpm"]) <= resolution, method
    green_kept = kept["pulse"]["green"]["windows"]["whole"]["summary"]["pearson"]
    green_lost = lost["pulse"]["green"]["windows"]["whole"]["summary"]["pearson"]
    # Measured (session 18): 0.957 with the transplant, 0.887 without, on this (lossless,
    # reproducible) fixture; POS 0.942 and 0.773.
    assert green_kept >= 0.93
    assert green_kept - green_lost > 0.02  # without the transplant the flicker leaks into the face
    track = kept["report"].tracks[0]
    assert track.pulse["transplanted"] and track.pulse["reason"] is None
    red, green, blue = track.pulse["amplitude_rgb"]
    assert green > 0 and kept["report"].keep_pulse
    assert track.pulse["band_hz"] == [0.3, 4.0]
    assert lost["report"].tracks[0].pulse is None and not lost["report"].keep_pulse


@pytest.mark.slow
def test_a_track_shorter_than_two_seconds_is_reported_not_transplanted(tmp_path):
    src = make_face_video(tmp_path / "short.mp4", n_frames=45, fps=FPS, audio=False)  # 1.5 s
    report = anonymise_video(src, tmp_path / "out.mp4", AnonymiseOptions(identity_check=False))
    assert report.keep_pulse  # blur: on by default
    pulse = report.tracks[0].pulse
    assert not pulse["transplanted"] and "shorter than 2 s" in pulse["reason"]
    assert any("pulse transplant: track 0 skipped" in w for w in report.warnings)
    assert report.frames_written == 45



@pytest.mark.slow
def test_an_avi_clip_gets_its_pulse_transplanted(tmp_path):
    # AVI has no presentation times; its frames must still come with increasing times.
    src = make_face_video(tmp_path / "in.avi", n_frames=75, fps=FPS, size=(160, 120), audio=False)
    report = anonymise_video(src, tmp_path / "out.mp4", AnonymiseOptions(identity_check=False))
    assert report.keep_pulse  # blur: on by default
    pulse = report.tracks[0].pulse
    assert pulse["transplanted"] and pulse["reason"] is None, pulse
    assert not any("pulse transplant" in w for w in report.warnings)


@pytest.mark.parametrize("method", ["ae", "pixelate", "surrogate"])
def test_every_bundled_method_transplants_the_pulse_by_default(method, tmp_path):
    # Measured on the 7 pulse videos: it helps the residual autoencoder too (README, pulse transplant).
    src = make_face_video(tmp_path / "in.mp4", n_frames=75, fps=FPS, size=(320, 240), audio=False)
    report = anonymise_video(src, tmp_path / "out.mp4", AnonymiseOptions(method=method, identity_check=False))
    assert report.keep_pulse and report.tracks[0].pulse["transplanted"], method


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.5])  # faces smaller and larger than the 128 px crop
def test_the_transplant_changes_nothing_outside_the_region_coded_finer(scale):
    import numpy as np

    from deidvid.anonymise.run import face_region, skin_region
    from deidvid.anonymise.paste import paste_face
    from deidvid.faces.geometry import crop_box, cut_crop
    from deidvid.methods import PasteMode
    from deidvid.pulse.transplant import transplant_clip
    from deidvid.testing.face_template import FRONTAL_68

    rng = np.random.default_rng(int(scale * 10))
    frames, height, width = 6, 480, 640
    face = FRONTAL_68 * 120 * scale + [150, 120]
    landmarks = face + rng.normal(0, 0.4, (frames, 68, 2))
    box = crop_box(landmarks[0])
    picture = rng.uniform(40, 220, (height, width, 3)).astype(np.float32)
    crops = np.stack([cut_crop(picture.astype(np.uint8), box).astype(np.float32) / 255 for _ in range(frames)])
    crop_points = np.stack([box.to_crop(lm) for lm in landmarks])
    target = np.full((frames, 5, 3), 0.05)  # a large change, so every pixel it touches shows
    moved = transplant_clip(crops, crop_points, target, np.arange(frames) / 30.0)
    for t in range(frames):
        plain, transplanted = picture.copy(), picture.copy()
        paste_face(plain, landmarks[t], box, crops[t], PasteMode.REPLACE)
        paste_face(transplanted, landmarks[t], box, moved[t], PasteMode.REPLACE)
        rows, cols = np.nonzero(np.any(plain != transplanted, axis=2))
        assert rows.size > 0
        x, y, w, h = skin_region(landmarks[t], box)
        assert x <= cols.min() and cols.max() < x + w and y <= rows.min() and rows.max() < y + h
        fx, fy, fw, fh = face_region(box)
        assert w * h < 0.75 * fw * fh  # the point: less than the whole pasted face
