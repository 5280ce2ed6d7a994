"""Wall time per pipeline stage (reported in every anonymise and verify report)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from deidvid.io.ahead import close_items, read_ahead
from deidvid.io.decode import Frame, VideoInfo, iter_frames
from deidvid.io.yuv import Window

T = TypeVar("T")


@dataclass
class StageTimer:
    """Wall time spent per pipeline stage, in seconds."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0


def timed_frames(
    path: Path,
    info: VideoInfo,
    timer: StageTimer,
    deep: bool = False,
    keep_yuv: bool = False,
    rgb_part: Callable[[int], Window | None] | None = None,
) -> Iterator[Frame]:
    """``iter_frames``, decoded a few frames ahead in a thread (:func:`read_ahead`), with the
    time spent waiting for the decoder booked to the 'decode' stage."""
    return timed_ahead(read_ahead(iter_frames(path, info, deep=deep, keep_yuv=keep_yuv, rgb_part=rgb_part)), timer, "decode")


def timed_ahead(items: Iterator[T], timer: StageTimer, stage: str) -> Iterator[T]:
    """``items`` (made ahead in a thread: :func:`read_ahead`), the time spent waiting for
    each booked to ``stage``; closes ``items`` when done or abandoned."""
    try:
        while True:
            with timer(stage):
                item = next(items, _END)
            if item is _END:
                return
            yield item
    finally:
        close_items(items)


_END = object()
