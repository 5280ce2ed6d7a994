"""``deidvid verify``'s gates of issue 13 on the command line: --max-hr-diff-toolbox,
--min-haar-rate, --min-expression-r (exit 1 when violated) and --skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deidvid.cli.main import app
from deidvid.testing.synthetic_video import make_face_video, write_blurred_copy

SIZE = (320, 240)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("gates")
    original = make_face_video(folder / "face.mp4", n_frames=120, size=SIZE, fps=30, audio=False)
    blurred = write_blurred_copy(original, folder / "blur.mp4")
    return original, blurred


def _verify(*args):
    return CliRunner().invoke(app, ["verify", *[str(a) for a in args]])


FAST = ("--methods", "pos", "--windows", "2", "--device", "cpu")


def test_gates_pass_for_the_same_video(videos, tmp_path):
    original, _ = videos
    out = tmp_path / "same.json"
    result = _verify(original, original, *FAST, "--max-hr-diff-toolbox", "0.5", "--min-haar-rate", "0.9",
                     "--min-expression-r", "0.9", "--json", out, "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["gates"] == {"failed": [], "passed": True}
    assert report["pulse"]["toolbox"]["pos"]["abs_diff"] == 0.0
    face = report["faces"][0]
    assert face["detection"]["haar_rate"]["deidentified"] == 1.0
    assert all(r["match_rate_far1e3"] == 1.0 for r in face["identity"].values())
    assert report["summary"]["expression_r"] == pytest.approx(1.0)
    assert face["temporal"]["flicker_ratio"] == 1.0
    assert report["settings"]["toolbox"] is True and report["settings"]["expression"] is True


def test_haar_gate_fails_for_a_blurred_copy(videos, tmp_path):
    original, blurred = videos
    out = tmp_path / "blur.json"
    result = _verify(original, blurred, *FAST, "--min-haar-rate", "0.9", "--skip", "expression,temporal",
                     "--json", out, "-q")
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    assert any(f.startswith("Haar detection rate") for f in report["gates"]["failed"])
    assert report["pulse"]["toolbox"]["detected_deid"] is False
    assert report["faces"][0]["expression"] is None and report["faces"][0]["temporal"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--min-haar-rate", "1.5"), "--min-haar-rate must be between 0 and 1"),
        (("--min-expression-r", "-2"), "--min-expression-r must be between -1 and 1"),
        (("--max-hr-diff-toolbox", "-1"), "--max-hr-diff-toolbox must be at least 0"),
        (("--skip", "toolbox,pulse"), "--skip: unknown measurement pulse"),
        (("--skip", "toolbox", "--min-haar-rate", "0.5"), "--min-haar-rate gates a measurement that --skip toolbox"),
        (("--skip", "expression", "--min-expression-r", "0.5"), "--skip expression leaves out"),
    ],
)
def test_bad_gate_options_are_usage_errors(videos, args, message):
    original, _ = videos
    result = _verify(original, original, *args)
    assert result.exit_code == 2
    assert message in result.output
