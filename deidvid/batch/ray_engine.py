"""``--engine ray``: the batch's videos as Ray tasks (``pip install "deidvid[ray]"``).

Each video is one task asking for ``threads`` CPUs (and ``task_gpus`` GPUs), re-run by
Ray up to ``retries`` times when its worker dies; a failure inside the video is the job's
own result, not retried (it would fail again). Inputs and outputs must be on a file system
every node sees at the same path, and deidvid must be installed on every node. Without
``ray_address`` a local Ray instance is started for the run and stopped after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from deidvid.batch.jobs import Job, JobResult, run_job
from deidvid.batch.pool import limit_threads, usable_cores
from deidvid.errors import EXIT_PROCESSING, UsageError

if TYPE_CHECKING:
    from deidvid.batch.run import BatchSettings


def ray_task(job: Job, threads: int) -> JobResult:
    """What a Ray worker runs: one video, with the CPU share the task was given."""
    limit_threads(threads)
    return run_job(job)


RAY_CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Raise UsageError when a ``host:port`` (or ``ray://host:port``) Ray address takes no TCP
    connection: Ray itself retries an unreachable head for ever, logging as it goes."""
    import socket

    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise UsageError(f"--engine ray: cannot reach the Ray cluster at {address} ({err.strerror or err})") from None


def run_on_ray(jobs: Sequence[Job], threads: int, settings: BatchSettings) -> Iterator[tuple[int, JobResult]]:
    """Yield ``(index, result)`` for every job as its task finishes."""
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'deidvid[ray]'") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if settings.ray_address:
                check_reachable(settings.ray_address)
                ray.init(address=settings.ray_address, log_to_driver=False)
            else:
                ray.init(num_cpus=usable_cores(), include_dashboard=False, log_to_driver=False)
        except Exception as err:  # noqa: BLE001 - Ray raises many kinds; each is "cannot start"
            where = settings.ray_address or "a local Ray instance"
            raise UsageError(f"--engine ray: cannot connect to {where} ({type(err).__name__}: {err})") from None
    remote = ray.remote(ray_task).options(
        num_cpus=threads, num_gpus=settings.task_gpus, max_retries=settings.retries, retry_exceptions=False
    )
    refs = {remote.remote(job, threads): i for i, job in enumerate(jobs)}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    yield i, ray.get(ref)
                except Exception as err:  # noqa: BLE001 - the task's worker died after every retry
                    job = jobs[i]
                    yield i, JobResult(job.key, None, f"{job.src}: Ray task failed ({type(err).__name__})", EXIT_PROCESSING)
    finally:
        for ref in pending:
            ray.cancel(ref)  # KeyboardInterrupt in the task: the video unwinds, its temporary is deleted
        if started_here:
            ray.shutdown()
