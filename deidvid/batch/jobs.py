"""One video of a batch: the job every engine runs (here, a worker process or a Ray task).

A job and its result are plain picklable records. The models are loaded once per process
and kept for every later job with the same options (a worker does many videos).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deidvid.errors import EXIT_OK, run_guarded

if TYPE_CHECKING:
    from deidvid.anonymise.models import PipelineModels
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.batch.pool import StageProgress


@dataclass(frozen=True)
class Job:
    """Anonymise ``src`` into ``dst``; ``key`` names it in the manifest."""

    src: Path
    dst: Path
    key: str
    opts: AnonymiseOptions


@dataclass
class JobResult:
    """What became of a job. ``report`` is the video's report as a dict (None on error)."""

    key: str
    report: dict[str, Any] | None
    error: str | None
    exit_code: int
    input_sha256: str | None = None
    input_bytes: int | None = None
    output_sha256: str | None = None
    output_bytes: int | None = None
    started: str = ""
    finished: str = ""
    seconds: float = 0.0
    host: str = ""
    pid: int = 0


_models: dict[str, PipelineModels] = {}  # per process: options -> loaded models


def models_for(opts: AnonymiseOptions) -> PipelineModels:
    """The models for ``opts``, loaded on first use in this process and then kept."""
    from deidvid.anonymise.models import PipelineModels

    key = repr(dataclasses.astuple(opts))
    if key not in _models:
        _models.clear()  # a process serves one batch: never two model sets at once
        _models[key] = PipelineModels(opts)
    return _models[key]


def forget_models() -> None:
    """Drop this process's models: the next batch run here loads its own (a batch run in
    this process, with one worker, must not reuse another batch's models)."""
    _models.clear()


def run_job(job: Job, progress: StageProgress | None = None) -> JobResult:
    """Anonymise one video; every failure becomes the result's one-line error and exit code."""
    from deidvid.anonymise.run import anonymise_video
    from deidvid.batch.manifest import file_sha256

    started, t0 = _now(), time.perf_counter()
    result = JobResult(job.key, None, None, EXIT_OK, started=started, host=socket.gethostname(), pid=os.getpid())
    sha, message, code = run_guarded(file_sha256, job.src)
    if message is None:
        result.input_sha256, result.input_bytes = sha, job.src.stat().st_size
        report, message, code = run_guarded(anonymise_video, job.src, job.dst, job.opts, progress, models_for(job.opts))
    if message is None:
        result.report = report.to_dict()
        result.output_sha256, result.output_bytes = file_sha256(job.dst), job.dst.stat().st_size
    result.error, result.exit_code = message, code
    result.finished, result.seconds = _now(), round(time.perf_counter() - t0, 3)
    return result


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
