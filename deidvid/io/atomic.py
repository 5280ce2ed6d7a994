"""Atomic writes: a hidden temporary file beside the target, renamed over it when complete.

Every file deidvid writes (videos, JSON reports) goes through :class:`TempFile`, so a
target is either its old self or complete, never half written.

The temporary is ``.NAME.<8 hex>.part`` in the target's folder. A name that would not
fit the file system's 255-byte limit is shortened to ``.PREFIX~<8 hex of NAME>.<8 hex>.part``,
so every target up to the limit can be written and two long names never share a pattern.

A run killed with SIGKILL cannot clean up. Its temporary stays, still matching the
pattern of its target only; :func:`remove_stale` (called by the next run that writes the
same target) deletes it. Each live temporary is held under an exclusive ``flock`` that
the kernel drops when its process dies, so a concurrent run's temporary is never taken
for a stale one.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from deidvid.interrupts import uninterrupted

# Longest file name (bytes) on every common Linux/macOS file system.
NAME_MAX = 255
_TOKEN_HEX = 8  # random hex characters that make each temporary unique
_SUFFIX = ".part"
# "." + prefix + "." + token + ".part" must fit NAME_MAX.
_PREFIX_ROOM = NAME_MAX - 2 - _TOKEN_HEX - len(_SUFFIX)


def name_max(folder: Path) -> int:
    """The folder's longest file name in bytes (NAME_MAX when it cannot be asked)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def temp_prefix(target: Path) -> str:
    """The part of a temporary's name that stands for ``target``: its name, or a shortened
    name plus a hash of the full one when the name leaves no room for the rest."""
    encoded = os.fsencode(target.name)
    if len(encoded) <= _PREFIX_ROOM:
        return target.name
    digest = hashlib.sha256(encoded).hexdigest()[:8]
    return os.fsdecode(encoded[: _PREFIX_ROOM - 1 - len(digest)]) + "~" + digest


def temp_pattern(target: Path) -> re.Pattern[str]:
    """Names of the temporaries of ``target`` (and of no other target)."""
    return re.compile(rf"\.{re.escape(temp_prefix(target))}\.[0-9a-f]{{{_TOKEN_HEX}}}{re.escape(_SUFFIX)}")


def is_temp_of(path: Path, target: Path) -> bool:
    """Whether ``path`` has the name of one of ``target``'s temporaries, in its folder."""
    return _same_folder(path.parent, target.parent) and temp_pattern(target).fullmatch(path.name) is not None


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


class TempFile:
    """A new, locked, empty temporary for ``target``; :meth:`commit` renames it over the
    target, :meth:`discard` deletes it. Either closes the lock.

    Create it inside :func:`~deidvid.interrupts.uninterrupted` within the ``try`` that
    discards it, so that a signal cannot come between the two.

    Raises:
        OSError: the folder cannot be written (the caller words the message).
    """

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        prefix = temp_prefix(self.target)
        with uninterrupted():  # a signal between creating the file and knowing its name would leak it
            while True:
                self.path = self.target.parent / f".{prefix}.{secrets.token_hex(_TOKEN_HEX // 2)}{_SUFFIX}"
                try:
                    self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                    break
                except FileExistsError:
                    continue  # another temporary has this token: draw again
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BaseException:
                self.discard()
                raise

    def commit(self) -> None:
        """Move the finished temporary onto the target (atomic on one file system)."""
        try:
            os.replace(self.path, self.target)
        finally:
            self._release()

    def discard(self) -> None:
        """Delete the temporary; the target is not touched. Safe to call twice."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_text(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically: :func:`write_bytes`."""
    write_bytes(target, text.encode("utf-8"))


def write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (stale temporaries of ``target`` are removed).

    Raises:
        OSError: the write or the rename failed; the target is unchanged, nothing is left.
    """
    remove_stale(target)
    temp: TempFile | None = None
    try:
        with uninterrupted():
            temp = TempFile(target)
        with open(temp.path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        if temp is not None:
            temp.discard()
        raise
    temp.commit()


def remove_stale(target: Path, keep: Iterable[Path] = ()) -> list[Path]:
    """Delete the temporaries of ``target`` that no live process holds; returns them.

    ``keep``: files never to delete even when their names match (e.g. the run's inputs).
    Folders that cannot be listed are skipped: this is housekeeping, not a check.
    """
    pattern = temp_pattern(target)
    kept = [_identity(p) for p in keep]
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        path = target.parent / name
        if pattern.fullmatch(name) and _identity(path) not in kept and _remove_if_unlocked(path):
            removed.append(path)
    return removed


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _remove_if_unlocked(path: Path) -> bool:
    """Delete ``path`` if it is a regular file no process holds locked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False  # a running deidvid is writing it
            raise
        path.unlink(missing_ok=True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
