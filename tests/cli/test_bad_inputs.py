"""The bad-input corpus through the command line: one line, the documented exit code,
no traceback, inputs unchanged and nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deidvid.cli.main import app
from deidvid.testing.bad_inputs import (
    CASES,
    Case,
    restore_permissions,
    snapshot,
    without_permission_override,
)


@pytest.fixture
def folder(tmp_path: Path):
    yield tmp_path
    restore_permissions(tmp_path)  # read-only folders and mode-0 files: let pytest remove them


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_one_line_and_its_exit_code(case: Case, folder: Path) -> None:
    prefix = without_permission_override() if case.needs_non_root else None
    if case.needs_non_root and prefix is None:
        pytest.skip("running as root and cannot drop the permission-override capabilities")
    args = case.build(folder)
    before = snapshot(folder)
    if prefix is not None:  # a real process that permission bits stop (CI runs as root)
        proc = subprocess.run([*prefix, sys.executable, "-m", "deidvid", *args],
                              capture_output=True, text=True, timeout=300, check=False)
        exit_code, stdout, stderr_text = proc.returncode, proc.stdout, proc.stderr
    else:
        result = CliRunner().invoke(app, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        exit_code, stdout, stderr_text = result.exit_code, result.stdout, result.stderr
    stderr = stderr_text.strip().splitlines()
    assert exit_code == case.exit_code, stderr_text
    assert len(stderr) == 1 and stderr[0].startswith("deidvid: error:"), stderr_text
    assert "Traceback" not in stderr_text and "internal error" not in stderr_text
    assert case.says in stderr[0], stderr[0]
    assert stdout == "", "errors go to stderr only"
    assert snapshot(folder) == before, "an input changed or a file was left behind"


def test_the_corpus_covers_the_issue() -> None:
    names = {c.name for c in CASES}
    for needed in ("empty", "truncated-mp4", "garbage-bytes", "audio-only", "fifo", "folder-without-out-dir", "folder-without-videos", "symlink-loop",
                   "output-name-too-long", "output-folder-read-only", "json-is-input", "pcm-audio-into-mp4"):
        assert needed in names


def test_the_checks_can_fail(folder: Path) -> None:
    """The snapshot sees a changed input and a leftover file (else the test above proves nothing)."""
    (folder / "in.mp4").write_bytes(b"a")
    before = snapshot(folder)
    (folder / "in.mp4").write_bytes(b"b")
    assert snapshot(folder) != before
    (folder / "in.mp4").write_bytes(b"a")
    (folder / ".in.mp4.0123abcd.part").write_bytes(b"")
    assert snapshot(folder) != before
