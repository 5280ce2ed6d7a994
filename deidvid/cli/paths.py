"""Which files a command reads and writes, checked before any work starts.

Nothing deidvid writes may be something it reads or another thing it writes: an overlap
(by path after resolving symbolic links, or by inode for hard links) is a usage error.
Problems of a single input of a batch (missing, unreadable, output exists, output folder
not writable) are that input's own error, so the rest of the batch still runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deidvid.errors import BadInputError, UsageError

# deidvid.io is imported inside the functions: it loads PyAV and numpy, which `--help`
# and usage errors do not need.

STDOUT = "-"  # ``--json -``


@dataclass(frozen=True)
class Written:
    """A path the command will write and what it is, for messages ("output", "--json report")."""

    path: Path
    role: str


def check_no_overlap(inputs: Sequence[Path], written: Sequence[Written]) -> None:
    """Raise UsageError when a written path is an input, another written path, or would be
    swept as one of an output's stale temporaries."""
    from deidvid.io.atomic import is_temp_of
    from deidvid.io.output_checks import same_file

    for i, item in enumerate(written):
        for src in inputs:
            if same_file(item.path, src):
                raise UsageError(f"{item.role} {item.path} is the input {src}; deidvid never overwrites its input")
            if is_temp_of(src, item.path):
                raise UsageError(f"input {src} has the name of a temporary file of {item.path}; rename it")
        for other in written[:i]:
            if same_file(item.path, other.path):
                both = f"two {item.role}s" if item.role == other.role else f"{item.role} and {other.role}"
                raise UsageError(f"{both} are both {item.path}; give them different names")


def check_report_path(path: Path | None, option: str = "--json") -> None:
    """``--json FILE`` (or ``option`` FILE, e.g. ``--html``) must be writable before the work
    starts (not a folder, folder exists...).

    An existing report is replaced (reports are not videos: no --overwrite needed), but
    never when it is an input or an output (:func:`check_no_overlap`), nor any other file
    that is not such a report (a video given to ``--json`` by mistake is not lost).
    """
    from deidvid.io.atomic import remove_stale
    from deidvid.io.output_checks import (
        check_output_folder,
        check_output_target,
        probe_writable,
    )

    if path is None or str(path) == STDOUT:
        return
    try:
        check_output_folder(path)
        check_output_target(path, overwrite=True)
        if not _is_report(path, option):
            raise UsageError(f"{path}: exists and is not a report deidvid writes; remove it or choose another path")
        remove_stale(path)  # temporaries a killed run (SIGKILL) left for this report
        probe_writable(path)
    except (UsageError, BadInputError) as err:
        raise type(err)(f"{option} {err}") from None


_REPORT_SUFFIXES = {"--json": (".json",), "--jsonl": (".jsonl", ".json"), "--html": (".html", ".htm")}


def _is_report(path: Path, option: str) -> bool:
    """Whether ``path`` is missing, named like the report ``option`` writes, empty, or starts
    like one (JSON, JSON lines, HTML): the only files a report may replace without asking."""
    if path.suffix.lower() in _REPORT_SUFFIXES.get(option, (".json",)):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip()
    except OSError:
        return True  # missing, or unreadable: probe_writable and the write itself say why
    if not head:
        return True
    if option == "--html":
        return head.lower().startswith((b"<!doctype html", b"<html"))
    return head.startswith((b"{", b"["))


def written_paths(outputs: Sequence[Path], report: Path | None, html: Path | None = None) -> list[Written]:
    """Every path a command writes: its outputs, the ``--json`` report (not stdout) and the
    ``--html`` page."""
    items = [Written(p, "output") for p in outputs]
    if report is not None and str(report) != STDOUT:
        items.append(Written(report, "--json report"))
    if html is not None:
        items.append(Written(html, "--html report"))
    return items


def preflight(src: Path, dst: Path, overwrite: bool, copy_audio: bool) -> None:
    """Everything about one input and its output that can fail before pass 1.

    Raises:
        BadInputError: the input is missing or unreadable, or the output folder cannot be written.
        UsageError: the output exists (without ``overwrite``), is a folder, has an
            unsupported suffix or too long a name, or the audio cannot go into it.
    """
    from deidvid.io.atomic import remove_stale
    from deidvid.io.decode import check_input_file
    from deidvid.io.output_checks import (
        check_audio_fits,
        check_output_path,
        probe_writable,
    )

    check_input_file(src)
    check_output_path(dst, src, overwrite=overwrite)
    remove_stale(dst, keep=[src])  # temporaries a killed run (SIGKILL) left for this output
    probe_writable(dst)
    if copy_audio:
        check_audio_fits(src, dst)
