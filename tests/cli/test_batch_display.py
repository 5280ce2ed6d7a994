"""What a batch shows: the overall bar's count of frames, one line per worker, the summary."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from deidvid.batch.discover import BatchItem
from deidvid.batch.pool import ProgressEvent
from deidvid.batch.run import Outcome
from deidvid.cli.batch_display import BatchDisplay


def outcome(name: str, status: str, frames: int = 0) -> Outcome:
    item = BatchItem(Path(f"{name}.mp4"), Path(f"out/{name}.mp4"), f"{name}.mp4")
    entry = {"status": status, "input": str(item.src), "output": str(item.dst), "frames_written": frames,
             "error": "broken" if status == "error" else None}
    return Outcome(item, entry, 3 if status == "error" else 0)


def test_frames_written_add_up_over_workers_and_finished_videos(capsys) -> None:
    display = BatchDisplay(None)  # quiet: no bars, the counts still kept
    display.planned(items=3, to_run=3, workers=2)
    display.rendering = {0: 10, 1: 5}
    assert "15 frames written" in display._overall_label() and "2 workers" in display._overall_label()
    display.finished(outcome("a", "skipped"))
    display.finished(outcome("b", "error"))
    assert "deidvid: error: b.mp4: broken" in capsys.readouterr().err
    assert display.summary(Path("out")) == {
        "workers": 2, "statuses": {"error": 1, "skipped": 1}, "manifest": str(Path("out") / "deidvid-manifest.jsonl")
    }


def test_worker_lines_follow_their_jobs() -> None:
    display = BatchDisplay(Console(file=io.StringIO()))
    display.planned(items=2, to_run=2, workers=2)
    try:
        display.progress(ProgressEvent(1, "b.mp4", "start"))
        display.progress(ProgressEvent(1, "b.mp4", "render", 7, 20))
        task = display.bar.tasks[display.rows[1]]
        assert (task.description, task.completed, task.total) == ("[2] b.mp4: anonymising", 7, 20)
        assert "7 frames written" in display.bar.tasks[display.overall].description
        display.progress(ProgressEvent(1, "b.mp4", "end"))
        assert display.bar.tasks[display.rows[1]].description == "[2] idle"
    finally:
        display.close()
