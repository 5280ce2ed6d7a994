"""deidvid.io.ahead: items in order, errors where they happened, the thread gone when the consumer stops."""

from __future__ import annotations

import threading
import time

import pytest

from deidvid.io.ahead import read_ahead


def _threads() -> int:
    return sum(t.name == "deidvid-read-ahead" for t in threading.enumerate())


def test_items_come_in_order_and_the_thread_ends():
    assert list(read_ahead(iter(range(100)), depth=3)) == list(range(100))
    assert _threads() == 0


def test_an_error_comes_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("frame 3 is corrupt")

    got = []
    with pytest.raises(ValueError, match="frame 3"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_closes_the_source_in_its_thread():
    closed = []

    def items():
        try:
            for i in range(10_000):
                yield i
        finally:
            closed.append(threading.current_thread().name)

    reader = read_ahead(items(), depth=2)
    assert next(reader) == 0
    reader.close()
    assert closed == ["deidvid-read-ahead"] and _threads() == 0


def test_the_producer_runs_at_most_depth_ahead():
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    reader = read_ahead(items(), depth=4)
    next(reader)
    time.sleep(0.3)
    assert len(produced) <= 1 + 4 + 1  # the one taken, the queue, one waiting to be put
    reader.close()
