"""What a batch shows while it runs: one overall bar, a line per worker, and each video's
table, warnings and errors as it finishes (``-q``: errors and warnings only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from deidvid.cli.common import err_console, say

if TYPE_CHECKING:
    from deidvid.batch.pool import ProgressEvent
    from deidvid.batch.run import Outcome

STAGE_LABELS = {"analyse": "finding faces", "render": "anonymising"}


class BatchDisplay:
    """The :class:`~deidvid.batch.run.BatchEvents` of the command line; ``console`` is
    where tables go (None: quiet)."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.bar: Progress | None = None
        self.overall: TaskID | None = None
        self.rows: dict[int, TaskID] = {}
        self.counts: dict[str, int] = {}
        self.workers = 1
        self.frames_done = 0  # frames written by finished videos
        self.rendering: dict[int, int] = {}  # worker -> frames written of its current video

    # -- BatchEvents ------------------------------------------------------------------------
    def planned(self, items: int, to_run: int, workers: int) -> None:
        self.workers = workers
        if self.console is None or to_run == 0:
            return
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err_console, transient=True,
        )
        if to_run > 1:
            self.overall = self.bar.add_task(self._overall_label(), total=to_run)
        self.bar.start()

    def _overall_label(self) -> str:
        frames = self.frames_done + sum(self.rendering.values())
        return f"videos ({self.workers} worker{'s' if self.workers > 1 else ''}, {frames:,} frames written)"

    def progress(self, event: ProgressEvent) -> None:
        if self.bar is None:
            return
        row = self.rows.get(event.worker)
        if row is None:
            row = self.rows[event.worker] = self.bar.add_task("", total=None)
        prefix = f"[{event.worker + 1}] " if self.workers > 1 else ""
        if event.stage in ("start", "end"):
            self.rendering.pop(event.worker, None)
            self.bar.update(row, description=f"{prefix}{event.label}" if event.stage == "start" else f"{prefix}idle",
                            completed=0, total=None)
            return
        stage = STAGE_LABELS.get(event.stage, event.stage)
        self.bar.update(row, description=f"{prefix}{event.label}: {stage}", completed=event.done, total=event.total or None)
        if event.stage == "render" and self.overall is not None:
            self.rendering[event.worker] = event.done
            self.bar.update(self.overall, description=self._overall_label())

    def finished(self, outcome: Outcome) -> None:
        status = outcome.status
        self.counts[status] = self.counts.get(status, 0) + 1
        with self._paused():
            if status == "error":
                say("error", outcome.entry["error"], outcome.item.src)
                return
            if status == "skipped":
                if self.console is not None:
                    say("note", f"skipped: {outcome.item.dst} is complete (run manifest; --force redoes it)", outcome.item.src)
            elif self.console is not None:
                self.console.print(report_table(outcome.entry))
            for warning in outcome.entry.get("warnings", []):
                say("warning", warning, outcome.item.src)
        self.frames_done += int(outcome.entry.get("frames_written", 0))
        if self.bar is not None and self.overall is not None and status != "skipped":
            self.bar.update(self.overall, advance=1, description=self._overall_label())

    # -- the rest ---------------------------------------------------------------------------
    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def summary(self, out_dir: Path | None) -> dict[str, Any]:
        """The ``batch`` section of the JSON report."""
        from deidvid.batch.manifest import MANIFEST_NAME

        return {
            "workers": self.workers,
            "statuses": dict(sorted(self.counts.items())),
            "manifest": str(out_dir / MANIFEST_NAME) if out_dir is not None else None,
        }

    @contextmanager
    def _paused(self) -> Iterator[None]:
        """Tables and messages print while the live bars are stopped, so neither garbles the other."""
        if self.bar is None:
            yield
            return
        self.bar.stop()
        try:
            yield
        finally:
            self.bar.start()


def report_table(entry: dict[str, Any]) -> Table:
    """One video's report as a table."""
    table = Table(title=f"{entry['input']} -> {entry['output']}", show_header=False)
    table.add_row("method", entry["method"])
    streams = len(entry.get("video_streams") or ()) or 1
    where = f" in {streams} video streams, the first" if streams > 1 else ""
    table.add_row("frames", f"{entry['frames_written']}/{entry['frames']}{where} at {entry['fps']:.3f} fps")
    table.add_row("faces (tracks)", str(entry["faces"]))
    table.add_row("face frames processed", f"{entry['face_frames_processed']} ({entry['face_frames_interpolated']} interpolated)")
    table.add_row("frames with a lost face", f"{entry['frames_unprocessed']} (fallback: {entry['fallback']})")
    for name, check in (entry.get("identity_check") or {}).items():
        if check["match_rate"] is not None:
            table.add_row(
                f"identity check: {name}",
                f"matches {check['match_rate']:.0%} of {check['frames']} sampled face frames (threshold {check['threshold']:.3g})",
            )
    table.add_row("time", f"{entry['timings_s']['total']:.1f} s")
    if entry["status"] != "ok":
        table.add_row("status", entry["status"])
    return table
