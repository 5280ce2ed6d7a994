"""``deidvid verify`` over many pairs: which pairs, the job each worker runs, the summary table.

Pairs come from two folders (:func:`pair_folders`: every video under the originals'
folder with its counterpart in the de-identified folder, named as ``deidvid anonymise
DIR --out-dir OUT`` names it) or from a run manifest (:func:`pairs_from_manifest`: every
entry whose output was written). Each pair is one job of :func:`deidvid.batch.pool.run_jobs`
(:func:`verify_pair`); one bad pair never stops the others: its error, one line and an exit
code, is its result. The same gates apply to every pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deidvid.batch.discover import default_output, find_inputs, mirrored_output
from deidvid.errors import (
    EXIT_BAD_INPUT,
    EXIT_GATE_FAILED,
    EXIT_OK,
    EXIT_PROCESSING,
    BadInputError,
    run_guarded,
)
from deidvid.verify.options import GateLimits, VerifyOptions, gate_messages

if TYPE_CHECKING:
    from rich.table import Table

    from deidvid.batch.pool import StageProgress
    from deidvid.verify.report import Summary, VerifyReport

#: A pair's status: measured and every gate passed, measured and a gate failed, not measured.
STATUSES = ("ok", "gate_failed", "error")


@dataclass(frozen=True)
class Pair:
    """An original and its de-identified video; ``label`` names the pair in tables and
    progress. ``deidentified`` is None when no counterpart was found (``problem`` says where
    it was looked for)."""

    original: Path
    deidentified: Path | None
    label: str
    problem: str | None = None


@dataclass(frozen=True)
class PairJob:
    """What a worker needs to verify one pair (picklable: it crosses to worker processes)."""

    original: Path
    deidentified: Path
    options: VerifyOptions
    limits: GateLimits


@dataclass
class PairResult:
    """What became of one pair.

    Attributes:
        status: one of :data:`STATUSES`.
        failures: the failed gates' messages.
        report: the report's JSON dict (None on error).
        summary: the report's summary as measured (the JSON dict has ``null`` where PSNR is
            infinite; the table shows ``inf``).
    """

    original: Path
    deidentified: Path | None
    status: str
    exit_code: int
    error: str | None = None
    failures: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    summary: Summary | None = None

    @classmethod
    def failed(cls, original: Path, deidentified: Path | None, error: str, code: int) -> PairResult:
        """A pair that could not be measured: its one-line reason and exit code."""
        return cls(original, deidentified, "error", code, error=error)

    @classmethod
    def judged(cls, original: Path, deidentified: Path, report: VerifyReport, limits: GateLimits) -> PairResult:
        """A measured pair with ``limits`` applied."""
        failures = gate_messages(limits.checks(report))
        status, code = ("gate_failed", EXIT_GATE_FAILED) if failures else ("ok", EXIT_OK)
        return cls(original, deidentified, status, code, failures=failures, report=report.to_dict(),
                   summary=report.summary)

    @property
    def warnings(self) -> list[str]:
        return list((self.report or {}).get("warnings", []))

    def entry(self) -> dict[str, Any]:
        """The pair's JSON line: its paths, status, error, exit code, gates and report.
        ``gates`` is None when nothing was measured."""
        gates = None if self.report is None else {"failed": self.failures, "passed": not self.failures}
        return {
            "original": str(self.original),
            "deidentified": None if self.deidentified is None else str(self.deidentified),
            "status": self.status, "error": self.error, "exit_code": self.exit_code,
            "gates": gates, "report": self.report,
        }


# -- which pairs --------------------------------------------------------------------------------
def counterpart_names(original: Path, root: Path, deid_root: Path) -> list[Path]:
    """Where the de-identified copy of ``original`` (found under ``root``) may be in
    ``deid_root``, in the order they are tried: the same relative path, the mirrored name
    of ``anonymise DIR --out-dir`` (``.mp4`` for containers it does not write), and
    ``NAME.deid.EXT`` (``anonymise FILE --out-dir``) in the same relative folder."""
    rel = original.relative_to(root)
    names = [deid_root / rel, mirrored_output(original, root, deid_root), default_output(original, (deid_root / rel).parent)]
    return list(dict.fromkeys(names))  # without repeats, order kept


def find_counterpart(original: Path, root: Path, deid_root: Path) -> Path | None:
    """The first of :func:`counterpart_names` that is a file other than ``original`` itself
    (both folders may be one), or None."""
    for name in counterpart_names(original, root, deid_root):
        if name.is_file() and name.resolve() != original.resolve():
            return name
    return None


def pair_folders(originals: Path, deidentified: Path) -> list[Pair]:
    """Every video under ``originals`` (recursively, as ``anonymise`` finds them: hidden
    files and the de-identified folder left out), sorted, with its counterpart in
    ``deidentified`` (:func:`find_counterpart`). A video without one is a pair with a
    ``problem``. A video that is another's counterpart (both folders one) is no original.

    Raises:
        BadInputError: ``originals`` holds no video.
    """
    pairs = []
    for original, _ in find_inputs([originals], deidentified):
        label = original.relative_to(originals).as_posix()
        match = find_counterpart(original, originals, deidentified)
        problem = None
        if match is None:
            looked = " or ".join(str(n) for n in counterpart_names(original, originals, deidentified))
            problem = f"no de-identified counterpart (looked for {looked})"
        pairs.append(Pair(original, match, label, problem))
    counterparts = {p.deidentified.resolve() for p in pairs if p.deidentified is not None}
    return [p for p in pairs if p.original.resolve() not in counterparts]


def pairs_from_manifest(path: Path) -> tuple[list[Pair], int]:
    """The pairs of a run manifest (``path``, or ``path/deidvid-manifest.jsonl`` for its
    folder): every entry whose output was written (status ok, incomplete or
    identity_remains), labelled by its key; and the number of lines that could not be read.

    Raises:
        BadInputError: no manifest there, unreadable, or no entry with a written output.
    """
    from deidvid.batch.manifest import MANIFEST_NAME, WRITTEN, Manifest
    from deidvid.io.decode import os_reason

    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise BadInputError(f"--manifest {path}: no such file")
    try:
        manifest = Manifest.load(path)
    except OSError as err:
        raise BadInputError(f"--manifest {path}: cannot read it ({os_reason(err)})") from None
    pairs = [
        Pair(Path(e["input"]), Path(e["output"]), key)
        for key, e in manifest.entries.items()
        if e.get("status") in WRITTEN and isinstance(e.get("input"), str) and isinstance(e.get("output"), str)
    ]
    if not pairs:
        raise BadInputError(f"--manifest {path}: no entry with a written output (status {', '.join(sorted(WRITTEN))})")
    return pairs, manifest.unreadable_lines


def pair_paths(pairs: Iterable[Pair]) -> list[Path]:
    """Every video the pairs read (what no report may overwrite)."""
    return [p for pair in pairs for p in (pair.original, pair.deidentified) if p is not None]


# -- the job ------------------------------------------------------------------------------------
def check_band_for(original: Path, band_hz: tuple[float, float]) -> None:
    """The band must fit the original's frame rate (probe: one frame decoded); UsageError otherwise."""
    from deidvid.cli.options import check_band_fits
    from deidvid.io.decode import probe

    check_band_fits(band_hz, float(probe(original).fps))


def verify_pair(job: PairJob, progress: StageProgress | None = None) -> PairResult:
    """Verify one pair and apply the gates; every failure becomes the result's one-line
    error and exit code (run in this process or in a worker: see :mod:`deidvid.batch.pool`)."""
    from deidvid.verify.run import verify_videos

    def measure() -> VerifyReport:
        check_band_for(job.original, job.options.band_hz)
        return verify_videos(job.original, job.deidentified, job.options, progress)

    report, message, code = run_guarded(measure)
    if message is not None:
        return PairResult.failed(job.original, job.deidentified, message, code)
    return PairResult.judged(job.original, job.deidentified, report, job.limits)


def run_pairs(
    pairs: Sequence[Pair], options: VerifyOptions, limits: GateLimits, workers: int | None,
    on_result: Callable[[PairResult], None] = lambda result: None,
) -> tuple[list[PairResult], int]:
    """Verify every pair; results in the order of ``pairs``, and the number of workers used.

    Pairs without a counterpart are results at once; the rest run on ``workers`` processes
    (None: :func:`~deidvid.batch.pool.default_workers`; never more than pairs), each with an
    equal share of the cores. ``on_result`` sees each result as it comes.
    """
    from deidvid.batch.pool import default_workers, run_jobs, threads_per_worker

    results: list[PairResult | None] = [None] * len(pairs)
    ready = []
    for i, pair in enumerate(pairs):
        if pair.deidentified is not None and pair.problem is None:
            ready.append(i)
            continue
        results[i] = PairResult.failed(pair.original, pair.deidentified, pair.problem or "no pair", EXIT_BAD_INPUT)
        on_result(results[i])
    count = max(1, min(workers or default_workers(len(ready)), len(ready)))
    jobs = [PairJob(pairs[i].original, pairs[i].deidentified, options, limits) for i in ready]  # type: ignore[arg-type]
    # One worker keeps the libraries' own thread defaults, as a single pair's run does.
    threads = threads_per_worker(count) if count > 1 else None

    def crashed(job: PairJob, reason: str) -> PairResult:
        return PairResult.failed(job.original, job.deidentified, f"{job.original}: {reason}", EXIT_PROCESSING)

    labels = [pairs[i].label for i in ready]
    for j, result in run_jobs(verify_pair, jobs, labels, count, threads, on_crash=crashed):
        results[ready[j]] = result
        on_result(result)
    return [r for r in results if r is not None], count


# -- the record ---------------------------------------------------------------------------------
def worst_exit_code(results: Iterable[PairResult]) -> int:
    """The batch's exit code: the highest of its pairs' (0 for none)."""
    return max((r.exit_code for r in results), default=EXIT_OK)


def status_counts(results: Iterable[PairResult]) -> dict[str, int]:
    """How many pairs ended in each status (statuses no pair has left out)."""
    counts = {status: 0 for status in STATUSES}
    for r in results:
        counts[r.status] += 1
    return {status: n for status, n in counts.items() if n}


def jsonl_text(results: Iterable[PairResult]) -> str:
    """The ``--jsonl`` file: one JSON object per pair, one line each."""
    import json

    return "".join(json.dumps(r.entry(), default=str) + "\n" for r in results)


def gate_text(limits: GateLimits) -> str:
    """The requested gates as their options, e.g. ``--max-match-rate 0.05, --min-pearson 0.9``."""
    words = [f"--{name.replace('_', '-')} {value:g}" for name, value in limits.requested().items()]
    return ", ".join(words) if words else "none requested"


def batch_table(pairs: Sequence[Pair], results: Sequence[PairResult], limits: GateLimits, method: str) -> Table:
    """One row per pair: a few key numbers of its summary and its status (with the first
    failed gate, or the exit code of an error: its line was said when it came); the gates
    applied to every pair in the caption."""
    from rich.table import Table

    from deidvid.verify.tables import fmt

    counts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in status_counts(results).items())
    table = Table(title=f"{len(results)} pairs verified: {counts}", caption=f"gates: {gate_text(limits)}")
    for header in ("pair", f"HR MAE {method.upper()} (bpm)", "waveform r", "match rate (max)", "face PSNR (dB)", "status"):
        table.add_column(header, justify="left" if header in ("pair", "status") else "right")
    for pair, result in zip(pairs, results):
        s: dict[str, Any] = dict(result.summary or {})
        status = {"ok": "ok", "gate_failed": "GATE FAILED", "error": f"ERROR (exit {result.exit_code})"}[result.status]
        if result.failures:
            status += f": {result.failures[0]}" + (f" (+{len(result.failures) - 1})" if len(result.failures) > 1 else "")
        table.add_row(
            pair.label, fmt(s.get("hr_mae_bpm")), fmt(s.get("pearson"), 3), fmt(s.get("match_rate"), 3),
            fmt(s.get("face_psnr_db")), status,
        )
    return table
