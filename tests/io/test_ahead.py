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


def test_behind_runs_calls_in_order_and_finish_waits_for_them():
    from deidvid.io.ahead import Behind

    done = []
    behind = Behind(depth=2)
    for i in range(20):
        behind.submit(lambda i=i: (time.sleep(0.001), done.append(i)))
    behind.finish()
    assert done == list(range(20))


def test_behind_raises_a_calls_error_in_the_caller_and_runs_nothing_after_it():
    from deidvid.io.ahead import Behind

    done = []

    def fail():
        raise RuntimeError("encoding failed at frame 3")

    behind = Behind(depth=1)
    behind.submit(lambda: done.append(1))
    behind.submit(fail)
    with pytest.raises(RuntimeError, match="frame 3"):
        for i in range(100):  # a later submit (or finish) raises it
            behind.submit(lambda i=i: done.append(i + 10))
            time.sleep(0.01)
        behind.finish()
    behind.cancel()
    assert done[0] == 1 and len(done) == 1


def test_behind_cancel_skips_what_waits():
    from deidvid.io.ahead import Behind

    started, done = threading.Event(), []
    release = threading.Event()
    behind = Behind(depth=5)
    behind.submit(lambda: (started.set(), release.wait(5), done.append(0)))
    started.wait(5)
    for i in range(1, 5):
        behind.submit(lambda i=i: done.append(i))
    threading.Timer(0.2, release.set).start()  # the running call ends while cancel() waits for it
    behind.cancel()
    assert done == [0]
    assert not any(t.name == "deidvid-behind" for t in threading.enumerate())
