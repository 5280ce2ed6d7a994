"""Signals as :class:`~deidvid.errors.Interrupted`, held back over short critical sections.

A signal handler (the command line's, a batch worker's) calls :func:`interrupt`, which
raises ``Interrupted`` in the main thread at once, unwinding the run so that every
temporary is deleted. Between creating a temporary and arming its clean-up there are a
few bytecodes where an exception would leak the file; :func:`uninterrupted` holds a
signal back over such a section and raises it at the section's end, where the clean-up
is armed. (Blocking the signal with ``pthread_sigmask`` would not do: another thread
may take it, and Python then runs the handler in the main thread all the same.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from deidvid.errors import Interrupted

_depth = 0  # how many uninterrupted() sections the main thread is in
_held: int | None = None  # the signal that arrived inside one


def interrupt(signum: int) -> None:
    """Raise :class:`Interrupted` for ``signum`` now, or at the end of the current :func:`uninterrupted` section."""
    global _held
    if _depth:
        _held = _held or signum
        return
    raise Interrupted(signum)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """A section that a signal does not cut: one arriving inside is raised when it ends.

    Keep it short (creating a file and recording it for clean-up): the run stops only after it.
    Only the main thread runs signal handlers, so only its sections matter.
    """
    global _depth, _held
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _held is not None:
            signum, _held = _held, None
            raise Interrupted(signum)
