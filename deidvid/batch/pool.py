"""Run jobs in this process or in worker processes on this machine, results as they finish.

Workers are spawned (not forked: torch and OpenCV thread pools do not survive a fork),
each limited to ``threads`` threads so that N workers share the cores instead of
fighting over them. A worker dies with its parent (Linux ``PR_SET_PDEATHSIG``): a batch
killed with SIGKILL leaves no orphan still writing outputs. SIGINT (Ctrl-C reaches the
whole process group) is left to the parent, which stops the workers with SIGTERM; a worker
unwinds on it, so its temporaries are deleted, and exits, never taking another job. One
that is still alive after a grace period is killed.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, TypeVar

from deidvid.errors import Interrupted
from deidvid.interrupts import interrupt

J = TypeVar("J")
R = TypeVar("R")

#: What one worker may need at its peak (720p video, the autoencoder, the identity check's
#: recognisers; README "Speed"): the default number of workers keeps them all in memory.
WORKER_MEMORY_BYTES = int(1.5 * 2**30)

#: Seconds between two progress messages of one worker (the bar needs no more).
PROGRESS_INTERVAL_S = 0.25

#: Seconds a stopped worker has to unwind its job (deleting the temporaries: well under a
#: second) before it is killed; the worker's own watchdog ends it a little earlier.
STOP_GRACE_S = 20.0


@dataclass(frozen=True)
class ProgressEvent:
    """A worker's news: ``stage`` is ``start`` (``label`` is the job's), a pipeline stage, or ``end``."""

    worker: int
    label: str
    stage: str
    done: int = 0
    total: int = 0


OnProgress = Callable[[ProgressEvent], None]
StageProgress = Callable[[str, int, int], None]  # (stage, done, total), as the pipeline reports it
JobFunction = Callable[[Any, StageProgress], Any]  # module-level, so that workers can import it


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes of memory available to new processes (MemAvailable), or total memory if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_workers(jobs: int) -> int:
    """One worker per core, as many as fit in available memory, never more than the jobs."""
    fit = max(1, available_memory() // WORKER_MEMORY_BYTES)
    return max(1, min(usable_cores(), fit, jobs))


def threads_per_worker(workers: int) -> int:
    """Threads each worker may use so that ``workers`` of them fill the cores, no more."""
    return max(1, usable_cores() // max(1, workers))


def limit_threads(threads: int) -> None:
    """Make torch, OpenCV and OpenMP use at most ``threads`` threads in this process."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def run_jobs(
    fn: JobFunction,
    jobs: Sequence[J],
    labels: Sequence[str],
    workers: int,
    threads: int | None,
    on_progress: OnProgress | None = None,
    on_crash: Callable[[J, str], R] | None = None,
    stop_grace_s: float = STOP_GRACE_S,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(jobs[index], progress))`` for every job, in the order they finish.

    ``workers <= 1`` runs the jobs here, one after another (``threads`` still applies when
    given). ``on_crash(job, reason)`` makes the result of a job whose worker died (killed,
    out of memory) instead of raising. Closing the iterator early (an error, an interrupt)
    stops the workers: each job unwinds, and a worker still alive ``stop_grace_s`` later is killed.
    """
    if workers <= 1:
        if threads is not None:
            limit_threads(threads)
        for i, job in enumerate(jobs):
            yield i, _run_here(fn, job, labels[i], on_progress)
        return
    yield from _run_in_workers(
        fn, jobs, labels, workers, threads or threads_per_worker(workers), on_progress, on_crash, stop_grace_s
    )


def _run_here(fn: JobFunction, job: Any, label: str, on_progress: OnProgress | None) -> Any:
    def progress(stage: str, done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(ProgressEvent(0, label, stage, done, total))

    progress("start", 0, 0)
    try:
        return fn(job, progress)
    finally:
        progress("end", 0, 0)


def _run_in_workers(
    fn: JobFunction, jobs: Sequence[Any], labels: Sequence[str], workers: int, threads: int,
    on_progress: OnProgress | None, on_crash: Callable[[Any, str], Any] | None, stop_grace_s: float,
) -> Iterator[tuple[int, Any]]:
    context = get_context("spawn")
    events = context.Queue()
    slots = context.Queue()
    for slot in range(workers):
        slots.put(slot)
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads, events, slots, stop_grace_s)
    )
    stop_relay = threading.Event()
    relay = threading.Thread(target=_relay_events, args=(events, on_progress, stop_relay), daemon=True)
    relay.start()
    finished = False
    try:
        futures: dict[Future, int] = {executor.submit(_call, fn, job, labels[i]): i for i, job in enumerate(jobs)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                i = futures[future]
                try:
                    yield i, future.result()
                except BrokenProcessPool as err:
                    if on_crash is None:
                        raise
                    yield i, on_crash(jobs[i], f"its worker process died ({err or 'killed or out of memory'})")
        finished = True
    finally:
        if not finished:
            _stop_workers(executor, stop_grace_s)
        executor.shutdown(wait=True, cancel_futures=True)
        stop_relay.set()
        relay.join(timeout=2)


def _stop_workers(executor: ProcessPoolExecutor, grace_s: float) -> None:
    """SIGTERM every worker: each unwinds (deleting its temporaries) and exits. One still
    alive after ``grace_s`` is killed (its temporary is then the caller's to remove)."""
    processes = list((executor._processes or {}).values())  # noqa: SLF001 - no public handle on them
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()


def _relay_events(events: Any, on_progress: OnProgress | None, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
        if on_progress is not None:
            on_progress(event)


# -- in the worker process ------------------------------------------------------------------
_events: Any = None
_slot = 0
_in_job = False  # between the start and the end of _call's job
_stopping = False  # SIGTERM has come: no further job may start
_grace_s = STOP_GRACE_S


def _init_worker(threads: int, events: Any, slots: Any, grace_s: float) -> None:
    global _events, _slot, _grace_s
    _grace_s = grace_s
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM
    signal.signal(signal.SIGTERM, _on_term)
    events.cancel_join_thread()  # exiting never waits for undelivered progress messages
    _events, _slot = events, slots.get()
    limit_threads(threads)


def _on_term(signum: int, frame: Any) -> None:
    """SIGTERM: a job unwinds (its temporaries deleted) and the worker exits; an idle worker exits at once."""
    global _stopping
    if _stopping:
        return  # a second signal cannot cut the unwinding short
    _stopping = True
    if not _in_job:
        os._exit(128 + signum)
    # Whatever the unwinding meets, the worker does not outlive it by much.
    watchdog = threading.Timer(_grace_s * 0.75, os._exit, (128 + signum,))
    watchdog.daemon = True
    watchdog.start()
    interrupt(signum)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _call(fn: JobFunction, job: Any, label: str) -> Any:
    global _in_job
    if _stopping:  # SIGTERM came after the last job's end: this one must not run
        os._exit(143)
    last: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage in ("start", "end") or done >= total or now - last.get(stage, 0.0) >= PROGRESS_INTERVAL_S:
            last[stage] = now
            _events.put(ProgressEvent(_slot, label, stage, done, total))

    _in_job = True
    try:
        progress("start", 0, 0)
        try:
            return fn(job, progress)
        finally:
            progress("end", 0, 0)
    except Interrupted as stop:
        # The job has unwound (its temporaries are gone). The pool would catch the exception
        # and wait for more work, so leave now, as the signal meant.
        os._exit(stop.exit_code)
    finally:
        _in_job = False
        if _stopping:  # the signal came as the job ended: leave all the same
            os._exit(143)
