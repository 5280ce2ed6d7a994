"""Batches through the command line: mirrored folders, the manifest, resume, workers, Ray,
one bad file among good ones, and a batch killed with SIGKILL then run again."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from deidvid.batch.manifest import MANIFEST_NAME
from deidvid.cli.main import app
from deidvid.testing.synthetic_video import make_corrupt_video, make_face_video

FAST = ["-q", "--no-identity-check", "--upright-only"]


def run_cli(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """data/s1/vid.mp4, data/s2/vid.mp4, data/s3/clip.avi: three short face videos."""
    root = tmp_path_factory.mktemp("dataset") / "data"
    for rel in ("s1/vid.mp4", "s2/vid.mp4", "s3/clip.avi"):
        (root / rel).parent.mkdir(parents=True)
        make_face_video(root / rel, n_frames=24, size=(160, 120))
    return root


def manifest(out: Path) -> dict[str, dict]:
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    return {e["key"]: e for e in map(json.loads, lines)}


def statuses(report: Path) -> dict[str, str]:
    videos = json.loads(report.read_text())["videos"]
    return {Path(v["output"]).relative_to(report.parent / "out").as_posix(): v["status"] for v in videos}


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


def test_a_folder_is_mirrored_recorded_and_resumed(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    first = run_cli("anonymise", dataset, "--out-dir", out, "--workers", "1", "--json", tmp_path / "r1.json", *FAST)
    assert first.exit_code == 0, first.stderr
    keys = ["s1/vid.mp4", "s2/vid.mp4", "s3/clip.mp4"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4")) == keys
    entries = manifest(out)
    assert sorted(entries) == keys
    for key, entry in entries.items():
        assert entry["status"] == "ok" and entry["method"] == "blur" and entry["options"]["crf"] == 16
        assert entry["output"] == str((out / key).absolute())
        assert len(entry["input_sha256"]) == len(entry["output_sha256"]) == 64
        assert entry["summary"]["frames_written"] == 24 and entry["models"]["retinaface"]
    mtimes = {k: (out / k).stat().st_mtime_ns for k in keys}

    # Same inputs, same options: nothing redone.
    again = run_cli("anonymise", dataset, "--out-dir", out, "--json", tmp_path / "r2.json", *FAST)
    assert again.exit_code == 0, again.stderr
    assert set(statuses(tmp_path / "r2.json").values()) == {"skipped"}
    assert {k: (out / k).stat().st_mtime_ns for k in keys} == mtimes

    # A changed input and a damaged output are redone; the rest is not.
    changed = tmp_path / "data"
    shutil.copytree(dataset, changed)
    make_face_video(changed / "s2" / "vid.mp4", n_frames=20, size=(160, 120))
    (out / "s3" / "clip.mp4").write_bytes((out / "s3" / "clip.mp4").read_bytes()[:1000])
    third = run_cli("anonymise", changed, "--out-dir", out, "--json", tmp_path / "r3.json", *FAST)
    assert third.exit_code == 0, third.stderr
    assert statuses(tmp_path / "r3.json") == {"s1/vid.mp4": "skipped", "s2/vid.mp4": "ok", "s3/clip.mp4": "ok"}
    assert manifest(out)["s2/vid.mp4"]["summary"]["frames_written"] == 20

    # Other options redo everything; so does --force.
    fourth = run_cli("anonymise", changed, "--out-dir", out, "--crf", "20", "--json", tmp_path / "r4.json", *FAST)
    assert set(statuses(tmp_path / "r4.json").values()) == {"ok"}, fourth.stderr
    fifth = run_cli("anonymise", changed, "--out-dir", out, "--crf", "20", "--force", "--json", tmp_path / "r5.json", *FAST)
    assert set(statuses(tmp_path / "r5.json").values()) == {"ok"}, fifth.stderr
    assert not leftovers(out)


def test_one_bad_file_is_recorded_and_the_others_are_done(dataset: Path, tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    shutil.copytree(dataset, data)
    make_corrupt_video(data / "s2" / "broken.mp4", kind="no_header")
    out.mkdir()
    result = run_cli("anonymise", data, "--out-dir", out, "--workers", "2", "--json", tmp_path / "r.json", *FAST)
    assert result.exit_code == 3  # bad input: the highest code seen
    assert [line for line in result.stderr.splitlines() if line.startswith("deidvid: error:")] == [
        line for line in result.stderr.splitlines() if "broken.mp4" in line and line.startswith("deidvid: error:")
    ]
    entries = manifest(out)
    assert entries["s2/broken.mp4"]["status"] == "error" and entries["s2/broken.mp4"]["exit_code"] == 3
    assert "\n" not in entries["s2/broken.mp4"]["error"]
    assert {k: e["status"] for k, e in entries.items() if k != "s2/broken.mp4"} == dict.fromkeys(
        ["s1/vid.mp4", "s2/vid.mp4", "s3/clip.mp4"], "ok"
    )
    assert json.loads((tmp_path / "r.json").read_text())["batch"]["workers"] == 2


def _ray_starts() -> bool:
    return importlib.util.find_spec("ray") is not None


@pytest.mark.skipif(not _ray_starts(), reason="Ray is not installed (pip install 'deidvid[ray]')")
def test_ray_engine_writes_what_the_local_workers_write(dataset: Path, tmp_path: Path) -> None:
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    local.mkdir()
    on_ray.mkdir()
    assert run_cli("anonymise", dataset, "--out-dir", local, "--workers", "2", *FAST).exit_code == 0
    result = run_cli("anonymise", dataset, "--out-dir", on_ray, "--workers", "2", "--engine", "ray", *FAST)
    if result.exit_code == 2 and "--engine ray: cannot" in result.stderr:
        pytest.skip(f"Ray cannot start here: {result.stderr.strip()}")
    assert result.exit_code == 0, result.stderr
    a, b = manifest(local), manifest(on_ray)
    assert sorted(a) == sorted(b)
    for key in a:
        assert (local / key).read_bytes() == (on_ray / key).read_bytes(), key
        same = ("status", "input_sha256", "output_sha256", "fingerprint", "summary", "options", "models")
        assert {k: a[key][k] for k in same} == {k: b[key][k] for k in same}
    # The Ray manifest is resumed by a local run, and the other way round.
    again = run_cli("anonymise", dataset, "--out-dir", on_ray, "--json", tmp_path / "r.json", *FAST)
    assert {v["status"] for v in json.loads((tmp_path / "r.json").read_text())["videos"]} == {"skipped"}, again.stderr


@pytest.mark.parametrize(
    ("stop", "workers"), [(signal.SIGKILL, 1), (signal.SIGKILL, 2), (signal.SIGINT, 2)], ids=["kill-1", "kill-2", "ctrl-c-2"]
)
def test_a_stopped_batch_resumes_without_redoing_or_leaving_anything(
    dataset: Path, tmp_path: Path, stop: signal.Signals, workers: int
) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    for i in range(3):  # nine videos: the signal lands while some are still to do
        shutil.copytree(dataset, data / f"part{i}")
    out.mkdir()
    command = [sys.executable, "-m", "deidvid", "anonymise", str(data), "--out-dir", str(out), "--workers", str(workers), *FAST]
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    done = _wait_for_first_output(out, process)
    os.killpg(process.pid, stop)  # the whole process group, as Ctrl-C or a killed session does
    code = process.wait(timeout=60)
    if stop == signal.SIGINT:
        assert code == 130 and process.stderr.read().decode().strip().endswith("deidvid: error: interrupted")
        assert not leftovers(out), "an interrupted run deletes its temporaries"
        assert {e["status"] for e in manifest(out).values()} <= {"ok", "interrupted"}
    time.sleep(1.0)  # an orphaned worker would go on writing: there must be none
    finished = {k: (out / k).stat().st_mtime_ns for k in done}
    files = {p.name for p in out.rglob("*") if p.is_file()}
    time.sleep(1.0)
    assert {p.name for p in out.rglob("*") if p.is_file()} == files, "something kept writing after the batch stopped"

    result = run_cli("anonymise", data, "--out-dir", out, "--json", tmp_path / "r.json", *FAST)
    assert result.exit_code == 0, result.stderr
    videos = json.loads((tmp_path / "r.json").read_text())["videos"]
    skipped = {Path(v["output"]).relative_to(out).as_posix() for v in videos if v["status"] == "skipped"}
    assert set(done) <= skipped
    assert len(videos) == 9 and {v["status"] for v in videos} <= {"skipped", "ok"}
    assert any(v["status"] == "ok" for v in videos)
    assert {k: (out / k).stat().st_mtime_ns for k in done} == finished  # not redone
    assert {e["status"] for e in manifest(out).values()} == {"ok"}
    assert not leftovers(out), "temporaries left behind"


def _wait_for_first_output(out: Path, process: subprocess.Popen, timeout_s: float = 120.0) -> list[str]:
    """Keys the manifest records as done, once at least one is and another is being written."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the batch ended before it could be killed: {process.stderr.read().decode()}")
        try:
            entries = manifest(out)
        except (FileNotFoundError, json.JSONDecodeError):
            entries = {}
        done = [k for k, e in entries.items() if e["status"] == "ok"]
        writing = [p for p in leftovers(out) if p.name != f".{MANIFEST_NAME}" and ".mp4." in p.name]
        if done and any(e["status"] == "running" for e in entries.values()) and writing:
            return done
        time.sleep(0.02)
    pytest.fail("no output was finished in time")
