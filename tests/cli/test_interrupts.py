"""Interrupts through real processes: SIGTERM and SIGINT mid-run leave nothing behind and
exit 143 / 130 with one line; the temporary a SIGKILL leaves is removed by the next run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deidvid.testing.synthetic_video import make_pattern_video


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """Long enough that pass 2 (when the temporary exists) lasts a while; no face, so fast."""
    return make_pattern_video(tmp_path_factory.mktemp("in") / "long.mp4", n_frames=450, size=(160, 120))


def start(src: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deidvid", "anonymise", str(src), "-o", str(out), "-q", "--no-identity-check"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_temporary(folder: Path, proc: subprocess.Popen, timeout_s: float = 300) -> Path:
    """The video's temporary once it holds data (pass 2 has started)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in folder.iterdir():
            if path.name.endswith(".part") and path.stat().st_size > 0:
                return path
        if proc.poll() is not None:
            pytest.fail(f"the run ended before pass 2 was seen: {proc.communicate()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no temporary appeared")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_run_removes_the_temporary(long_video: Path, tmp_path: Path, sig: int, code: int) -> None:
    proc = start(long_video, tmp_path / "out.mp4")
    wait_for_temporary(tmp_path, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert stderr.splitlines() == ["deidvid: error: interrupted"] and stdout == ""
    assert list(tmp_path.iterdir()) == [], "the output or its temporary was left behind"


def test_sigkill_leftover_is_removed_by_the_next_run(long_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    # Names that only look like out.mp4's temporaries, or belong to another output: kept.
    decoys = [tmp_path / ".out.mp4.nothex00.part", tmp_path / ".other.mp4.0123abcd.part", tmp_path / "out.mp4.0123abcd.part"]
    for decoy in decoys:
        decoy.write_bytes(b"not ours")
    proc = start(long_video, out)
    temporary = wait_for_temporary(tmp_path, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert temporary.exists(), "SIGKILL cannot clean up: the leftover this test is about"
    short = make_pattern_video(tmp_path.parent / f"{tmp_path.name}-short.mp4", n_frames=10, size=(64, 48))
    rerun = subprocess.run(
        [sys.executable, "-m", "deidvid", "anonymise", str(short), "-o", str(out), "-q", "--no-identity-check"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(tmp_path.iterdir()) == sorted([out, *decoys])
