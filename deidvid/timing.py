"""Wall time per pipeline stage (reported in every anonymise and verify report)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deidvid.io.ahead import read_ahead
from deidvid.io.decode import Frame, VideoInfo, iter_frames
from deidvid.io.yuv import Window


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
    frames = read_ahead(iter_frames(path, info, deep=deep, keep_yuv=keep_yuv, rgb_part=rgb_part))
    try:
        while True:
            with timer("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            yield frame
    finally:
        frames.close()
