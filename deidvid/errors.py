"""User-facing errors: one line, a stable exit code, never a traceback."""

from __future__ import annotations

import os

# Exit codes that batch scripts can rely on (documented in the README).
EXIT_OK = 0
EXIT_GATE_FAILED = 1  # verify: a --max-* gate was violated
EXIT_USAGE = 2  # bad arguments (Typer/Click also uses 2)
EXIT_BAD_INPUT = 3  # missing, unreadable, corrupt or unsupported input
EXIT_PROCESSING = 4  # a video failed while being processed
EXIT_WEIGHTS = 5  # model weights missing or corrupted


class DeidvidError(Exception):
    """An error the user can act on. ``str(err)`` is the one-line message."""

    exit_code = EXIT_PROCESSING


class BadInputError(DeidvidError):
    exit_code = EXIT_BAD_INPUT


class UsageError(DeidvidError):
    exit_code = EXIT_USAGE


class WeightsError(DeidvidError):
    exit_code = EXIT_WEIGHTS


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (see ``deidvid.cli.signals``).

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` blocks let it
    through, while ``try/finally`` and context managers (the atomic writers) still clean
    up on the way out. The process then exits ``128 + signal`` (130, 143), the shell's
    convention for a death by signal.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def run_guarded(fn, *args, **kwargs):  # noqa: ANN001, ANN201
    """Run ``fn``; turn any failure into (None, one-line message, exit code).

    ``Interrupted`` and ``KeyboardInterrupt`` are not failures of ``fn``: they pass through.
    """
    try:
        return fn(*args, **kwargs), None, EXIT_OK
    except DeidvidError as err:
        return None, str(err), err.exit_code
    except Exception as err:  # noqa: BLE001 - the last line of defence: never a traceback
        if os.environ.get("DEIDVID_DEBUG"):
            raise
        return None, internal_error(err), EXIT_PROCESSING


def internal_error(err: BaseException) -> str:
    return f"internal error: {type(err).__name__}: {err} (DEIDVID_DEBUG=1 shows the traceback)"
