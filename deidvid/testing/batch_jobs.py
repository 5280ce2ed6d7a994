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
