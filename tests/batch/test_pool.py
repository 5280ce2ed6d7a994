"""The local engine: jobs in this process or in spawned workers, results as they finish."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from deidvid.batch.pool import (
    ProgressEvent,
    default_workers,
    run_jobs,
    threads_per_worker,
    usable_cores,
)
from deidvid.io.atomic import remove_stale
from deidvid.testing.batch_jobs import die_on_three, hold_a_temporary, square_in_steps


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


def _start_holding_jobs(tmp_path: Path, stubborn: bool, grace_s: float):  # noqa: ANN202
    """Two workers each holding a temporary (after a quick job): the iterator, and the workers' pids."""
    jobs = [(str(tmp_path), n, stubborn) for n in (0, 1, 2)]
    results = run_jobs(hold_a_temporary, jobs, ["0", "1", "2"], workers=2, threads=1, stop_grace_s=grace_s)
    assert next(results) == (0, 0)
    deadline = time.monotonic() + 120
    started = [tmp_path / "started1", tmp_path / "started2"]
    while not all(p.exists() for p in started):
        assert time.monotonic() < deadline, "the jobs did not start"
        time.sleep(0.05)
    time.sleep(0.1)  # the pid is written
    return results, [int(p.read_text()) for p in started]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stopping_the_workers_unwinds_their_jobs(tmp_path: Path) -> None:
    results, pids = _start_holding_jobs(tmp_path, stubborn=False, grace_s=30.0)
    t0 = time.monotonic()
    results.close()  # as an interrupt or an error in the caller does
    assert time.monotonic() - t0 < 10, "the workers were not stopped promptly"
    assert not any(_alive(pid) for pid in pids)
    assert not list(tmp_path.glob(".*.part")), "a stopped job deletes its temporary"


def test_a_worker_that_does_not_stop_is_killed(tmp_path: Path) -> None:
    results, pids = _start_holding_jobs(tmp_path, stubborn=True, grace_s=2.0)
    t0 = time.monotonic()
    results.close()
    assert time.monotonic() - t0 < 2.0 + 8, "a stuck worker held up the stop"
    assert not any(_alive(pid) for pid in pids)
    # Its temporary stays (the caller removes it: deidvid.batch.run) but nobody holds it.
    assert len(remove_stale(tmp_path / "out1") + remove_stale(tmp_path / "out2")) == 2


def test_an_unreachable_ray_address_is_one_line_not_a_hang():
    import socket

    from deidvid.batch.ray_engine import check_reachable
    from deidvid.errors import UsageError

    with socket.socket() as listener:  # a port nothing listens on: bound, never listening
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        with pytest.raises(UsageError, match="cannot reach the Ray cluster"):
            check_reachable(f"127.0.0.1:{port}", timeout_s=2.0)
        listener.listen()
        check_reachable(f"ray://127.0.0.1:{port}", timeout_s=2.0)  # listening: passes
    check_reachable("auto")  # left to Ray
