"""Tiny job functions for the worker-pool tests: spawned workers import them by name."""

from __future__ import annotations

import os
import time

from deidvid.batch.pool import StageProgress


def square_in_steps(job: int, progress: StageProgress) -> tuple[int, int, int]:
    """``(job**2, worker pid, torch threads)``, reporting three steps of progress over 0.3 s
    (long enough that every worker of a small pool gets jobs)."""
    import torch

    for step in range(1, 4):
        time.sleep(0.1)
        progress("render", step, 3)
    return job * job, os.getpid(), torch.get_num_threads()


def die_on_three(job: int, progress: StageProgress) -> int:
    """Kills its worker process for job 3 (as the OOM killer would), else returns the job."""
    if job == 3:
        os._exit(9)
    return job


def hold_a_temporary(job: tuple[str, int, bool], progress: StageProgress) -> int:
    """Job ``(folder, n, stubborn)``: write a temporary for ``folder/out<n>`` and wait to be
    stopped, like a video being written. ``folder/started<n>`` (holding the worker's pid)
    says it is under way. ``stubborn`` jobs ignore the stop and keep waiting (a job stuck
    in native code); others unwind, deleting the temporary. ``n == 0`` returns at once."""
    from pathlib import Path

    from deidvid.errors import Interrupted
    from deidvid.io.atomic import TempFile
    from deidvid.interrupts import uninterrupted

    folder, n, stubborn = Path(job[0]), job[1], job[2]
    if n == 0:
        return 0
    temp = None
    try:
        with uninterrupted():
            temp = TempFile(folder / f"out{n}")
        (folder / f"started{n}").write_text(str(os.getpid()))
        while True:
            try:
                time.sleep(0.05)
            except Interrupted:
                if not stubborn:
                    raise
    except BaseException:
        if temp is not None:
            temp.discard()
        raise
