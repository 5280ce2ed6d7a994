"""``deidvid verify --html``: one self-contained page (``deidvid.verify.html``) and the series
behind it (``deidvid.verify.run.verify_videos_with_series``).

One verify run (a 4 s synthetic face video against a blurred copy) feeds every test; the
CLI tests reuse its result, so they check the wiring of ``--html``, not the measurements
(``test_verify.py`` and ``test_verify_cli_gates.py`` do).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from deidvid.cli.main import app
from deidvid.measure.pulse import compare_pulse_waves, track_pulses
from deidvid.rppg.compare import PulseSettings
from deidvid.testing.synthetic_pulse import PBV_SIGNATURE, SKIN_RGB, pulse_waveform
from deidvid.testing.synthetic_video import make_face_video, write_blurred_copy
from deidvid.verify.html import chosen_windows, render_html, write_html
from deidvid.verify.report import VerifyReport, gate_checks
from deidvid.verify.run import VerifyOptions, verify_videos_with_series
from deidvid.verify.series import FrameSnapshot, TrackSeries, VerifySeries

FPS = 30
N_FRAMES = 120
SIZE = (320, 240)
FAST = VerifyOptions(
    methods=("pos", "chrom"), windows_s=(2.0,), recognisers=("faceapi_resnet", "mobilefacenet"),
    identity_stride=10, ssim_stride=15, detect_stride=15, expression_stride=4,
)
MAX_PAGE_BYTES = 5 * 1024 * 1024
HEADINGS = (
    "Summary and gates", "Gates", "rPPG-Toolbox default path", "Frames: original | de-identified", "Face track 0",
    "Pulse", "Heart rate per window", "Identity", "Expression and pose",
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[Path, Path]:
    """The synthetic face video and a blurred copy (Haar loses the face; the pulse stays)."""
    folder = tmp_path_factory.mktemp("html")
    original = make_face_video(folder / "face.mp4", n_frames=N_FRAMES, size=SIZE, fps=FPS, audio=False)
    blurred = write_blurred_copy(original, folder / "blur.mp4")
    return original, blurred


@pytest.fixture(scope="module")
def verified(videos) -> tuple[VerifyReport, VerifySeries]:
    return verify_videos_with_series(*videos, FAST)


@pytest.fixture(scope="module")
def page(verified, tmp_path_factory) -> Path:
    """The page of the verify run, with a gate that passes and one that fails."""
    report, series = verified
    path = tmp_path_factory.mktemp("page") / "report.html"
    write_html(path, report, series, gate_checks(report, max_hr_mae=50.0, min_haar_rate=0.9))
    return path


def test_series_hold_what_the_report_summarises(verified):
    report, series = verified
    face = report.faces[0]
    track = series.track(face["track_id"])
    assert track is not None and series.track(99) is None
    assert [s.index for s in series.snapshots] == [15, 45, 75, 105]  # middles of 4 equal parts
    for shot in series.snapshots:
        assert shot.original.shape == shot.deidentified.shape == (240, 320, 3)  # already <= 320 wide
        assert shot.time_s == pytest.approx(shot.index / FPS)
    assert track.times.shape == (face["frames"],)
    # identity: one distance per scored pair, at every identity_stride-th frame of the track
    assert np.array_equal(track.identity_frames, face["start_frame"] + np.arange(0, face["frames"], FAST.identity_stride))
    for name, scores in face["identity"].items():
        distances = track.identity_distances[name]
        assert distances.size == scores["frames"] == track.identity_frames.size
        assert float(distances.mean()) == pytest.approx(scores["mean_distance"], rel=1e-6)
    assert track.identity_times == pytest.approx(track.identity_frames / FPS)
    # pulse: the waveforms the windows were cut from
    assert set(track.pulse.methods) == {"pos", "chrom"} and track.pulse.frames == face["pulse"]["frames"]
    assert track.pulse.fs == pytest.approx(face["pulse"]["fs"])
    original, deidentified = track.pulse.methods["pos"]
    assert original.shape == deidentified.shape == (face["pulse"]["frames"],)
    # expression: NaN except at the sampled frames, as many as the report counts
    assert track.expression_signals[:2] == ("mouth_open", "eye_left")
    assert track.expression_original.shape == (face["frames"], len(track.expression_signals))
    for k, name in enumerate(track.expression_signals):
        both = np.isfinite(track.expression_original[:, k]) & np.isfinite(track.expression_deidentified[:, k])
        assert int(both.sum()) == face["expression"][name]["frames"], name


def test_the_page_is_one_self_contained_file(page, verified):
    report, _ = verified
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]  # no temporary left beside it
    text = page.read_text(encoding="utf-8")
    size = page.stat().st_size
    print(f"page of the {N_FRAMES}-frame test video: {size / 1024:.0f} KiB")
    assert size < MAX_PAGE_BYTES
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    for heading in HEADINGS:
        assert re.search(rf"<h[1-4][^>]*>{re.escape(heading)}</h[1-4]>", text), heading
    # every image inline: 4 frame pairs (JPEG) and the plots (PNG: waveforms, HR, identity, expression)
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert sum(s.startswith("data:image/jpeg;base64,") for s in sources) == 8
    assert sum(s.startswith("data:image/png;base64,") for s in sources) == 4
    # nothing fetched from anywhere: no scripts, no linked style sheets, no URLs at all
    lowered = text.lower()
    assert "<script" not in lowered and "<link" not in lowered and "@import" not in lowered
    assert "http://" not in lowered and "https://" not in lowered
    assert re.findall(r'href="([^"]*)"', text) == ["#summary", "#frames", "#track-0"]
    # the summary and the gates: one passed, one failed (blur hides the face from Haar)
    assert '<td class="pass">pass</td>' in text and '<td class="fail">FAIL</td>' in text
    assert "1 of 2 gates failed" in text and "Haar detection rate" in text
    assert "faceapi_resnet" in text and "mobilefacenet" in text
    assert escape(report.original) in text and escape(report.deidentified) in text


def test_the_decoded_images_are_what_they_claim(page, verified):
    _, series = verified
    text = page.read_text(encoding="utf-8")
    jpegs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', text)
    first = cv2.imdecode(np.frombuffer(base64.b64decode(jpegs[0]), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert first.shape == series.snapshots[0].original.shape
    assert np.abs(first.astype(int) - series.snapshots[0].original).mean() < 4  # JPEG of the first original frame
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    for data in pngs:
        plot = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert plot is not None and plot.shape[1] == 720 and plot.std() > 10  # drawn, not blank


def _page_of_a_long_video(report: VerifyReport, series: VerifySeries, seconds: float, size=(640, 480)):
    """The report and series of a ``seconds``-long video made from the test run's: 3 recognisers,
    10 expression signals, noise frames (JPEG's worst case), the default 10 s / 30 s windows."""
    rng = np.random.default_rng(0)
    frames = int(seconds * FPS)
    times = np.arange(frames) / FPS
    rgb = SKIN_RGB * (1 + 0.01 * pulse_waveform(times, 75)[:, None] * PBV_SIGNATURE)
    pulses = track_pulses(rgb + rng.normal(0, 0.3, rgb.shape), rgb + rng.normal(0, 0.3, rgb.shape), times,
                          ("pos", "chrom", "green"))
    pulse = compare_pulse_waves(pulses, (10.0, 30.0), PulseSettings())
    face = report.faces[0]
    identity = {**face["identity"], "mobileface": face["identity"]["faceapi_resnet"]}
    face = {**face, "frames": frames, "pulse": pulse, "identity": identity}
    stride = 5
    identity_frames = np.arange(0, frames, stride)
    names = series.tracks[0].expression_signals
    walk = np.cumsum(rng.normal(0, 0.01, (frames, len(names))), axis=0)
    walk[1::2] = np.nan  # every 2nd frame sampled
    track = TrackSeries(
        track_id=face["track_id"], start_frame=0, times=times, pulse=pulses, identity_frames=identity_frames,
        identity_distances={name: rng.uniform(0.2, 1.2, identity_frames.size) for name in identity},
        expression_signals=names, expression_original=walk, expression_deidentified=walk + rng.normal(0, 0.005, walk.shape),
    )
    shots = [
        FrameSnapshot(i, i / FPS, *(rng.integers(0, 256, (size[1] // 2, size[0] // 2, 3), np.uint8) for _ in range(2)))
        for i in (frames // 8, 3 * frames // 8, 5 * frames // 8, 7 * frames // 8)
    ]
    video = {**report.video, "frames": frames, "width": size[0], "height": size[1]}
    long_report = dataclasses.replace(report, video=video, faces=[face],
                                      summary={**report.summary, "window_s": 10.0, "method": "pos"})
    return long_report, VerifySeries(snapshots=shots, tracks=[track])


def test_a_30_s_page_is_under_5_mb(verified):
    """Issue 13's target: the page of a 30 s 640x480 video (here with noise for frames) < 5 MB."""
    report, series = _page_of_a_long_video(*verified, seconds=30.0)
    text = render_html(report, series)
    size = len(text.encode("utf-8"))
    print(f"page of a 30 s video: {size / 1024:.0f} KiB")
    assert size < MAX_PAGE_BYTES
    assert "windows shown" not in text  # all three 10 s windows drawn
    assert text.count("data:image/png;base64,") == 4 and "No gates were requested" in text


def test_many_windows_are_thinned():
    windows = [{"start": k} for k in range(60)]
    shown = chosen_windows(windows, 12)
    assert len(shown) == 12 and shown[0] is windows[0] and shown[-1] is windows[-1]
    assert chosen_windows(windows[:5], 12) == windows[:5]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_chromium_renders_the_page(page, tmp_path):
    """Headless Chromium (Debian's ``chromium``), offline: the screenshot is not blank."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium or chromium-browser on PATH (apt-get install chromium)")
    shot = tmp_path / "page.png"
    command = [
        browser, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1000,2600", f"--screenshot={shot}",
        page.as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "Chromium wrote no screenshot"
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (2600, 1000)
    assert image.std() > 20  # text, tables and frames, not one colour
    # the frames section is drawn: some rows hold the astronaut's colours, not only white and grey
    saturation = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[:, :, 1]
    assert (saturation > 60).mean() > 0.01


# ---- the command line ---------------------------------------------------------------


def _verify(*args):
    return CliRunner().invoke(app, ["verify", *[str(a) for a in args]])


@pytest.fixture
def reuse_run(monkeypatch, verified):
    """The CLI gets the module's verify result instead of measuring again."""
    from deidvid.verify import run

    monkeypatch.setattr(run, "verify_videos_with_series", lambda *args, **kwargs: verified)


def test_cli_writes_the_page_and_the_json_beside_it(videos, reuse_run, tmp_path):
    original, blurred = videos
    html, report = tmp_path / "out" / "report.html", tmp_path / "out" / "report.json"
    html.parent.mkdir()
    result = _verify(original, blurred, "--methods", "pos", "--device", "cpu", "--min-haar-rate", "0.9",
                     "--html", html, "--json", report, "-q")
    assert result.exit_code == 1, result.output  # the Haar gate fails; the page is written anyway
    assert sorted(p.name for p in html.parent.iterdir()) == ["report.html", "report.json"]
    text = html.read_text(encoding="utf-8")
    assert '<td class="fail">FAIL</td>' in text and "1 of 1 gates failed" in text
    payload = json.loads(report.read_text())
    assert list(payload) == [
        "schema_version", "original", "deidentified", "video", "settings", "quality", "faces", "pulse", "gallery",
        "summary", "warnings", "timings_s", "gates",
    ]
    # an existing page is replaced
    result = _verify(original, blurred, "--methods", "pos", "--device", "cpu", "--html", html, "-q")
    assert result.exit_code == 0, result.output
    assert "No gates were requested" in html.read_text(encoding="utf-8")


def test_cli_does_not_import_matplotlib_without_html():
    code = (
        "import sys; from deidvid.cli.main import app; import deidvid.verify.run; "
        "print('matplotlib' in sys.modules, 'deidvid.verify.html' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        ("missing/report.html", 3, "--html"),
        ("ORIGINAL", 2, "is the input"),
        ("-", 2, "--html needs a file name"),
        ("SAME_AS_JSON", 2, "are both"),
        ("FOLDER", 2, "is a folder"),
    ],
)
def test_bad_html_paths_are_one_line_errors(videos, reuse_run, tmp_path, where, code, message):
    original, blurred = videos
    json_path = tmp_path / "r.json"
    path = {"ORIGINAL": original, "SAME_AS_JSON": json_path, "FOLDER": tmp_path}.get(where, tmp_path / where)
    if where == "-":
        path = "-"
    before = original.stat().st_size
    result = _verify(original, blurred, "--methods", "pos", "--html", path, "--json", json_path, "-q")
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("deidvid: error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert original.stat().st_size == before and not json_path.exists()
