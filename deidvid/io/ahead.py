"""Decode ahead and encode behind: the codec's work in its own thread, a few frames apart.

PyAV decodes, converts colours and encodes in native code without holding the GIL, so a
codec thread works while the pipeline's own stages run: measured on a 10 s 720p clip with
~20 ms of other work per frame, 8.3 s -> 6.2 s (the decoding itself takes 2.0 s).
:func:`read_ahead` runs an iterator (the decoder) ahead; :class:`Behind` runs calls (the
encoder's) behind, in order. Queues are bounded, so memory stays a few frames whatever
the video's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

READ_AHEAD = 4  # items waiting at most (decoded frames: ~2.7 MB each at 720p)
_POLL_S = 0.1  # how often a blocked producer checks whether the consumer went away


class _Failed:
    """The producer's exception, passed to the consumer to be raised there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def close_items(items: Iterator[object]) -> None:
    """Close ``items`` if it can be (a generator, a decoder): its files and threads go with it."""
    close = getattr(items, "close", None)
    if close is not None:
        close()


def read_ahead(items: Iterator[T], depth: int = READ_AHEAD) -> Iterator[T]:
    """Yield ``items`` in order, produced by a background thread up to ``depth`` ahead.

    An exception in ``items`` is raised here, after the items before it. When the consumer
    stops early (an error, ``close()``), the thread stops and closes ``items`` itself, so a
    decoder's file is closed in the thread that used it.
    """
    waiting: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failed(error))
        finally:
            close_items(items)

    thread = threading.Thread(target=produce, name="deidvid-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class Behind:
    """Run calls in order in one background thread, at most ``depth`` waiting.

    :meth:`submit` queues a call (blocking while ``depth`` wait) and raises, in the caller's
    thread, the first error an earlier call raised; :meth:`finish` waits for every call and
    raises that error too; :meth:`cancel` drops what waits and stops the thread. After an
    error the remaining calls are skipped.
    """

    def __init__(self, depth: int = READ_AHEAD, name: str = "deidvid-behind") -> None:
        self._calls: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            call = self._calls.get()
            if call is _END:
                return
            if self._error is None and not self._cancelled.is_set():
                try:
                    call()
                except BaseException as error:  # noqa: BLE001 - handed to the caller, raised there
                    self._error = error

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._cancelled.set()  # nothing after a failed call may run
            raise error

    def submit(self, call: Callable[[], object]) -> None:
        self._raise_error()
        self._calls.put(call)

    def finish(self) -> None:
        """Wait for every submitted call; raise the first error one raised."""
        if self._thread.is_alive():
            self._calls.put(_END)
            self._thread.join()
        self._raise_error()

    def cancel(self) -> None:
        """Skip the calls still waiting and stop the thread (the one running finishes)."""
        self._cancelled.set()
        if self._thread.is_alive():
            while True:
                try:
                    self._calls.get_nowait()
                except queue.Empty:
                    break
            self._calls.put(_END)
            self._thread.join()
        self._error = None
