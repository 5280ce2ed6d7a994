"""SIGINT and SIGTERM become :class:`~deidvid.errors.Interrupted`, so a stopped run unwinds.

Unwinding runs every ``finally`` and ``__exit__`` on the way out: the video writer and the
report writer delete their temporaries, and the command line prints one line and exits
130 (SIGINT) or 143 (SIGTERM). Python's default SIGTERM action kills the process on the
spot, which is how ``.part`` files used to be left behind.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from deidvid.interrupts import interrupt

HANDLED = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_unwind() -> Iterator[None]:
    """Inside the block, SIGINT/SIGTERM raise :class:`Interrupted` in the main thread.

    Only the first signal raises: a second one (an impatient Ctrl-C) while the first is
    unwinding is ignored, so it cannot cut the clean-up short. SIGKILL cannot be caught;
    the temporaries it leaves are removed by the next run (``deidvid.io.atomic``).
    The previous handlers are restored on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:
            return
        received.append(signum)
        interrupt(signum)

    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    for sig in HANDLED:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
