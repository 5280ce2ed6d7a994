"""The local engine: jobs in this process or in spawned workers, results as they finish."""

from __future__ import annotations

from deidvid.batch.pool import ProgressEvent, default_workers, run_jobs, threads_per_worker, usable_cores
from deidvid.testing.batch_jobs import die_on_three, square_in_steps


def test_default_workers_fit_cores_and_jobs() -> None:
    assert default_workers(1) == 1
    assert 1 <= default_workers(100) <= usable_cores()
    assert threads_per_worker(1) == usable_cores()
    assert threads_per_worker(usable_cores() * 4) == 1


def test_jobs_run_here_in_order_with_progress() -> None:
    events: list[ProgressEvent] = []
    results = list(run_jobs(square_in_steps, [1, 2, 3], ["a", "b", "c"], workers=1, threads=None, on_progress=events.append))
    assert [(i, r[0]) for i, r in results] == [(0, 1), (1, 4), (2, 9)]
    assert [(e.label, e.stage, e.done) for e in events[:5]] == [
        ("a", "start", 0), ("a", "render", 1), ("a", "render", 2), ("a", "render", 3), ("a", "end", 0)
    ]


def test_workers_share_the_cores_and_report_progress() -> None:
    events: list[ProgressEvent] = []
    jobs = list(range(6))
    results = dict(run_jobs(square_in_steps, jobs, [str(j) for j in jobs], workers=2, threads=1, on_progress=events.append))
    assert {i: r[0] for i, r in results.items()} == {j: j * j for j in jobs}
    assert len({r[1] for r in results.values()}) == 2  # two worker processes, each doing several jobs
    assert {r[2] for r in results.values()} == {1}  # each limited to its thread share
    assert {e.worker for e in events} == {0, 1}
    assert sum(e.stage == "end" for e in events) == 6


def test_a_dead_worker_fails_its_job_not_the_caller() -> None:
    results = dict(run_jobs(
        die_on_three, [1, 3], ["1", "3"], workers=2, threads=1, on_crash=lambda job, reason: f"crashed: {reason}"
    ))
    assert results[1].startswith("crashed: its worker process died")
    # The other job either finished first or was in the pool that broke: either way, a result.
    assert results[0] == 1 or results[0].startswith("crashed: its worker process died")
