"""Batches try every input; reports are written atomically, never over an input, and a
report that fails at the end is one line with exit 4; ``--json -`` keeps stdout pure JSON."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner, Result

from deidvid.cli.main import app
from deidvid.testing.bad_inputs import without_permission_override
from deidvid.testing.synthetic_video import make_face_video


def run_cli(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def errors(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("deidvid: error:")]


def container_tags(path: Path) -> dict[str, str]:
    with av.open(str(path)) as container:
        return {k.lower(): v for k, v in container.metadata.items()}


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    """20 frames with audio, tagged with a title and a comment that name a person."""
    return make_face_video(
        tmp_path_factory.mktemp("in") / "face.mp4", n_frames=20, size=(160, 120),
        metadata={"title": "patient 17 Jane Doe", "comment": "ward 3", "creation_time": "2024-01-01T00:00:00.000000Z"},
    )


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def test_batch_tries_every_input_and_exits_with_the_highest_code(face_video: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    exists = copy(face_video, tmp_path / "a.mp4")
    (tmp_path / "a.deid.mp4").write_bytes(b"an earlier result")
    good = copy(face_video, tmp_path / "b.mp4")
    folder_in_the_way = copy(face_video, tmp_path / "c.mp4")
    (tmp_path / "c.deid.mp4").mkdir()
    report = tmp_path / "r.json"
    result = run_cli("anonymise", missing, exists, good, folder_in_the_way, "-q", "--no-identity-check", "--json", report)
    assert result.exit_code == 3, result.stderr  # the highest of 3, 2, 0, 2
    videos = json.loads(report.read_text())["videos"]
    assert [v["status"] for v in videos] == ["error", "error", "ok", "error"]
    assert [v.get("exit_code") for v in videos] == [3, 2, None, 2]
    assert len(errors(result)) == 3 and all(str(p) in line for p, line in
                                            zip((missing, tmp_path / "a.deid.mp4", tmp_path / "c.deid.mp4"), errors(result)))
    assert (tmp_path / "a.deid.mp4").read_bytes() == b"an earlier result"
    # Free-text tags that name people are stripped by default; technical ones stay.
    tags = container_tags(tmp_path / "b.deid.mp4")
    assert "title" not in tags and "comment" not in tags and tags["creation_time"].startswith("2024-01-01")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_batch_goes_on_past_unreadable_inputs_and_unwritable_folders(face_video: Path, tmp_path: Path) -> None:
    prefix = without_permission_override()  # root (CI) ignores permission bits unless told not to
    if prefix is None:
        pytest.skip("running as root and cannot drop the permission-override capabilities")
    locked = copy(face_video, tmp_path / "locked.mp4")
    locked.chmod(0)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    in_read_only = copy(face_video, read_only / "v.mp4")
    read_only.chmod(0o555)
    good = copy(face_video, tmp_path / "good.mp4")
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "deidvid", "anonymise", str(locked), str(in_read_only), str(good),
             "-q", "--no-identity-check", "--json", "-"],
            capture_output=True, text=True, timeout=600, check=False,
        )
    finally:
        locked.chmod(0o644)
        read_only.chmod(0o755)
    assert proc.returncode == 3, proc.stderr
    assert [v["status"] for v in json.loads(proc.stdout)["videos"]] == ["error", "error", "ok"]
    errors_ = [line for line in proc.stderr.splitlines() if line.startswith("deidvid: error:")]
    assert len(errors_) == 2 and "permission denied" in errors_[0] and "cannot write" in errors_[1]
    assert (tmp_path / "good.deid.mp4").exists()


def test_json_to_stdout_without_quiet_is_pure_json(face_video: Path, tmp_path: Path) -> None:
    result = run_cli("anonymise", face_video, "-o", tmp_path / "o.mp4", "--no-identity-check", "--keep-metadata",
                     "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)  # the tables went to stderr
    assert payload["videos"][0]["status"] == "ok" and payload["options"]["keep_metadata"] is True
    assert "face frames processed" in result.stderr
    assert container_tags(tmp_path / "o.mp4")["title"] == "patient 17 Jane Doe"  # --keep-metadata


def test_verify_json_to_stdout_without_quiet_is_pure_json(face_video: Path, tmp_path: Path) -> None:
    copy_ = copy(face_video, tmp_path / "copy.mp4")
    result = run_cli("verify", face_video, copy_, "--methods", "pos", "--json", "-")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["gates"]["passed"] is True


def test_report_replaces_an_old_one_atomically_and_sweeps_stale_temporaries(face_video: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text("old")
    stale = tmp_path / ".r.json.0123abcd.part"  # what a SIGKILL during the report write leaves
    stale.write_text("{")
    result = run_cli("anonymise", tmp_path / "missing.mp4", "-q", "--json", report)
    assert result.exit_code == 3
    assert json.loads(report.read_text())["videos"][0]["status"] == "error"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_report_write_failure_at_the_end_is_one_line_and_exit_4(tmp_path: Path, monkeypatch) -> None:
    from deidvid.io import atomic

    def full_disk(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic, "write_text", full_disk)
    result = run_cli("anonymise", tmp_path / "missing.mp4", "-q", "--json", tmp_path / "r.json")
    assert result.exit_code == 4  # above the input's 3; never 1, which means "a gate failed"
    assert errors(result)[-1] == f"deidvid: error: {tmp_path / 'r.json'}: cannot write the --json report (No space left on device)"
    assert len(result.stderr.splitlines()) == 2


def test_json_naming_an_input_never_touches_it(face_video: Path, tmp_path: Path) -> None:
    src = copy(face_video, tmp_path / "v.mp4")
    linked = tmp_path / "link.json"
    linked.symlink_to(src.name)
    for report in (src, linked):
        result = run_cli("anonymise", src, "-o", tmp_path / "o.mp4", "-q", "--json", report)
        assert result.exit_code == 2 and "is the input" in result.stderr
    assert src.read_bytes() == face_video.read_bytes() and not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("length", [241, 246])
def test_long_names_up_to_the_limit_are_processed(tmp_path: Path, length: int) -> None:
    """NAME.deid.mp4 of 246 and 251 bytes: the temporaries (15 bytes longer) are shortened."""
    from deidvid.testing.synthetic_video import make_pattern_video

    src = make_pattern_video(tmp_path / ("v" * (length - 4) + ".mp4"), n_frames=5, size=(64, 48))
    report = tmp_path / ("r" * 250 + ".json")
    result = run_cli("anonymise", src, "-q", "--no-identity-check", "--json", report)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / f"{src.stem}.deid.mp4"
    assert sorted(tmp_path.iterdir()) == sorted([src, out, report])
