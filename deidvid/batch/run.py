"""A batch, start to end: what is done already, what to run, on which engine, and the record.

    items -> skip those the manifest vouches for (--resume) -> check the rest before any
    decoding (preflight) -> mark them ``running`` in the manifest -> run them on the engine
    -> judge each report against the gates -> record it in the manifest -> tell the caller.

One bad input never stops the others: its error is its outcome. The exit code of the batch
is the highest seen (the caller's business).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from deidvid.batch.discover import BatchItem
from deidvid.batch.jobs import Job, JobResult, forget_models, run_job
from deidvid.batch.manifest import (
    MANIFEST_NAME,
    WRITTEN,
    Manifest,
    bundled_models,
    fingerprint,
)
from deidvid.batch.pool import (
    ProgressEvent,
    default_workers,
    run_jobs,
    threads_per_worker,
)
from deidvid.errors import (
    EXIT_GATE_FAILED,
    EXIT_OK,
    EXIT_PROCESSING,
    BadInputError,
    Interrupted,
    run_guarded,
)
from deidvid.io.atomic import remove_stale

if TYPE_CHECKING:
    from deidvid.anonymise.options import AnonymiseOptions

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Gates:
    """What turns a written output into a failure (exit 1): ``--strict``, ``--max-match-rate``."""

    strict: bool = False
    max_match_rate: float | None = None


@dataclass(frozen=True)
class BatchSettings:
    """How a batch runs (none of it changes what is written, so none is in the fingerprint).

    Attributes:
        workers: videos at once (None: :func:`~deidvid.batch.pool.default_workers`).
        resume: skip outputs the manifest vouches for (``--force``: False).
        overwrite: replace existing outputs the manifest does not name.
        engine: ``local`` (this machine) or ``ray``.
        ray_address: an existing cluster (None: a local Ray instance started on the spot).
        task_cpus: CPUs (= threads) each Ray task asks for (None: a local worker's share).
        task_gpus: GPUs each Ray task asks for.
        retries: times Ray re-runs a task whose worker died.
    """

    workers: int | None = None
    resume: bool = True
    overwrite: bool = False
    engine: str = "local"
    ray_address: str | None = None
    task_cpus: int | None = None
    task_gpus: float = 0.0
    retries: int = 2


@dataclass
class Outcome:
    """What the batch did with one item: ``entry`` is its JSON report entry."""

    item: BatchItem
    entry: dict[str, Any]
    exit_code: int

    @property
    def status(self) -> str:
        return str(self.entry["status"])


class BatchEvents(Protocol):
    """What a batch tells its caller (the command line shows it)."""

    def planned(self, items: int, to_run: int, workers: int) -> None: ...

    def progress(self, event: ProgressEvent) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...


def run_batch(
    items: Sequence[BatchItem], opts: AnonymiseOptions, settings: BatchSettings, gates: Gates,
    out_dir: Path | None, events: BatchEvents,
) -> list[Outcome]:
    """Anonymise every item (see the module docstring); outcomes in the order of ``items``.

    A manifest is kept when ``out_dir`` is given. Raises :class:`Interrupted` after
    recording the unfinished items as ``interrupted``.
    """
    from deidvid import __version__

    forget_models()
    manifest = _open_manifest(out_dir)
    manifest_existed = manifest is not None and manifest.path.exists()
    options, models = dataclasses.asdict(opts), bundled_models()
    run_fingerprint = fingerprint(options, __version__, models)
    record = _Recorder(manifest, options, run_fingerprint, __version__, models)
    outcomes: list[Outcome | None] = [None] * len(items)
    ready: list[int] = []
    for i, item in enumerate(items):
        if manifest is not None and settings.resume and manifest.is_complete(item.key, item.dst, item.src, run_fingerprint):
            outcomes[i] = _skipped(item, manifest.entries[item.key], gates)
            continue
        message, code = _preflight(item, opts, settings.overwrite or (manifest is not None and manifest.owns(item.key, item.dst)))
        if message is None:
            ready.append(i)
        else:
            outcomes[i] = Outcome(item, _error_entry(item, message, code), code)
            record.error(item, message, code)
    workers = 1 if not ready else settings.workers or default_workers(len(ready))
    events.planned(len(items), len(ready), workers)
    for i, outcome in enumerate(outcomes):
        if outcome is not None:
            events.finished(outcome)
    # Threads per video: every worker gets an equal share of the cores. A single worker
    # keeps the libraries' own defaults (all cores), as a run of one video always has.
    threads = threads_per_worker(workers) if workers > 1 or settings.engine == "ray" else None
    if settings.engine == "ray" and settings.task_cpus:
        threads = settings.task_cpus
    job_opts = dataclasses.replace(opts, threads=threads)
    jobs = [Job(items[i].src, items[i].dst, items[i].key, job_opts) for i in ready]
    results = _engine_results(jobs, workers, threads, settings, events)
    try:
        record.running([items[i] for i in ready])
        for j, result in results:
            item = items[ready[j]]
            outcome = _finished(item, result, gates)
            record.finished(item, result, outcome)
            outcomes[ready[j]] = outcome
            events.finished(outcome)
    except (Interrupted, KeyboardInterrupt):
        results.close()  # the workers are stopped (each deletes its temporary) and gone
        unfinished = [items[i] for i in ready if outcomes[i] is None]
        for item in unfinished:
            remove_stale(item.dst)  # left by a worker that had to be killed
        record.interrupted(unfinished)
        raise
    done = [o for o in outcomes if o is not None]
    if manifest is not None and not manifest_existed and not any(o.status in WRITTEN for o in done):
        # Nothing was written: the output folder is left as it was (the errors are on stderr and
        # in the --json report), as for a single bad file.
        manifest.path.unlink(missing_ok=True)
    return done


def _engine_results(jobs: list[Job], workers: int, threads: int | None, settings: BatchSettings, events: BatchEvents):  # noqa: ANN202
    if settings.engine == "ray":
        from deidvid.batch.ray_engine import run_on_ray

        return run_on_ray(jobs, threads or 1, settings)
    labels = [job.src.name for job in jobs]
    return run_jobs(run_job, jobs, labels, workers, threads, events.progress, on_crash=_crashed)


def _crashed(job: Job, reason: str) -> JobResult:
    return JobResult(job.key, None, f"{job.src}: {reason}", EXIT_PROCESSING)


def _open_manifest(out_dir: Path | None) -> Manifest | None:
    if out_dir is None:
        return None
    path = out_dir / MANIFEST_NAME
    remove_stale(path)  # a temporary a killed run left for the manifest
    return Manifest.load(path)


def _preflight(item: BatchItem, opts: AnonymiseOptions, overwrite: bool) -> tuple[str | None, int]:
    from deidvid.cli.paths import preflight

    def check() -> None:
        if item.mirrored:
            make_folder(item.dst.parent)  # the mirrored tree's sub-folder
        preflight(item.src, item.dst, overwrite, opts.copy_audio)

    _, message, code = run_guarded(check)
    return message, code


def make_folder(folder: Path) -> None:
    from deidvid.io.decode import os_reason

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInputError(f"cannot make the output folder {folder} ({os_reason(err)})") from None


def judge(summary: dict[str, Any], gates: Gates) -> tuple[str, int]:
    """A written output's status and exit code under ``gates``."""
    if gates.max_match_rate is not None:
        rates = [r for r in summary.get("identity_match_rates", {}).values() if r is not None]
        if max(rates, default=0.0) > gates.max_match_rate:
            return "identity_remains", EXIT_GATE_FAILED
    if gates.strict and summary.get("frames_unprocessed"):
        return "incomplete", EXIT_GATE_FAILED
    return "ok", EXIT_OK


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of a video's report that the manifest keeps."""
    checks = report.get("identity_check") or {}
    keep = ("frames", "frames_written", "fps", "faces", "face_frames_processed", "frames_unprocessed", "keep_pulse")
    return {
        **{k: report[k] for k in keep},
        "identity_match_rates": {name: check["match_rate"] for name, check in checks.items()},
        "warnings": report.get("warnings", []),
    }


def _finished(item: BatchItem, result: JobResult, gates: Gates) -> Outcome:
    if result.report is None:
        return Outcome(item, _error_entry(item, result.error or "failed", result.exit_code), result.exit_code)
    status, code = judge(summarise(result.report), gates)
    return Outcome(item, {"status": status, **result.report}, code)


def _skipped(item: BatchItem, entry: dict[str, Any], gates: Gates) -> Outcome:
    status, code = judge(entry.get("summary", {}), gates)
    return Outcome(
        item,
        {"status": "skipped", "result": status, "input": str(item.src), "output": str(item.dst),
         "finished": entry.get("finished"), "summary": entry.get("summary", {})},
        code,
    )


def _error_entry(item: BatchItem, message: str, code: int) -> dict[str, Any]:
    return {"input": str(item.src), "output": str(item.dst), "status": "error", "error": message, "exit_code": code}


@dataclass
class _Recorder:
    """Writes each item's manifest line (nothing when there is no manifest)."""

    manifest: Manifest | None
    options: dict[str, Any]
    run_fingerprint: str
    version: str
    models: dict[str, str]

    def _base(self, item: BatchItem, status: str) -> dict[str, Any]:
        return {
            "key": item.key, "input": str(item.src.absolute()), "output": str(item.dst.absolute()), "status": status,
            "method": self.options["method"], "options": self.options, "fingerprint": self.run_fingerprint,
            "deidvid_version": self.version,
        }

    def _write(self, entry: dict[str, Any]) -> None:
        if self.manifest is not None:
            self.manifest.record(entry)

    def _mark(self, items: Sequence[BatchItem], status: str) -> None:
        """Every item gets ``status``, in one rewrite of the manifest (not one per item)."""
        if self.manifest is None or not items:
            return
        for item in items[:-1]:
            self.manifest.record(self._base(item, status), write=False)
        self.manifest.record(self._base(items[-1], status))

    def running(self, items: Sequence[BatchItem]) -> None:
        self._mark(items, "running")

    def interrupted(self, items: Sequence[BatchItem]) -> None:
        self._mark(items, "interrupted")

    def error(self, item: BatchItem, message: str, code: int) -> None:
        """An input that failed its checks; the record of an output written earlier is kept."""
        previous = self.manifest.get(item.key) if self.manifest is not None else None
        if previous is not None and previous.get("status") in WRITTEN:
            return
        # Written with the first video started (a run that starts none leaves no new manifest).
        if self.manifest is not None:
            entry = {**self._base(item, "error"), "error": message, "exit_code": code}
            self.manifest.record(entry, write=self.manifest.path.exists())

    def finished(self, item: BatchItem, result: JobResult, outcome: Outcome) -> None:
        entry = {
            **self._base(item, outcome.status),
            "exit_code": outcome.exit_code, "error": result.error,
            "input_sha256": result.input_sha256, "input_bytes": result.input_bytes,
            "output_sha256": result.output_sha256, "output_bytes": result.output_bytes,
            "models": self.models, "started": result.started, "finished": result.finished,
            "seconds": result.seconds, "host": result.host, "pid": result.pid,
        }
        if result.report is not None:
            entry["summary"] = summarise(result.report)
            entry["timings_s"] = result.report.get("timings_s", {})
        self._write(entry)
