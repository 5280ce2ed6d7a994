"""Checks made before anything is written: output paths (never an input, a folder, a FIFO;
the folder writable) and whether the audio fits the output container."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import av

from deidvid.errors import BadInputError, UsageError
from deidvid.io.atomic import TempFile, name_max
from deidvid.io.decode import open_input, os_reason

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def check_output_path(out_path: Path, input_path: Path | None = None, *, overwrite: bool = True) -> str:
    """Validate an output path before anything is written; returns the PyAV format name.

    Raises:
        UsageError: unsupported suffix, a name too long for the file system, an existing
            folder or special file at the path, or (``overwrite=False``) an existing file.
        BadInputError: the output is the input file, or its folder is missing, not a
            folder or not writable.
    """
    out_format = CONTAINER_FORMATS.get(out_path.suffix.lower())
    if out_format is None:
        supported = ", ".join(sorted(CONTAINER_FORMATS))
        raise UsageError(f"{out_path}: unsupported output type {out_path.suffix!r} (use {supported})")
    if input_path is not None and same_file(out_path, input_path):
        raise BadInputError(f"{out_path}: the output would overwrite the input; choose another path")
    check_output_folder(out_path)
    check_output_target(out_path, overwrite)
    return out_format


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same path after resolving symbolic links,
    or the same inode (hard links, bind mounts). Never raises (loops resolve as they are)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_folder(target: Path) -> None:
    """Raise BadInputError unless ``target``'s folder exists and may be written.

    Only permission bits and read-only mounts are checked here (no file is made);
    :func:`probe_writable` tries for real.
    """
    folder = target.parent
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise BadInputError(f"{target}: output folder {folder} does not exist") from None
    except OSError as err:
        raise BadInputError(f"{target}: output folder {folder}: {os_reason(err)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"{target}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"{target}: cannot write to folder {folder} (permission denied or read-only)")


def check_output_target(target: Path, overwrite: bool) -> None:
    """Raise UsageError when ``target`` cannot (or, without ``overwrite``, must not) be replaced."""
    limit = name_max(target.parent)
    length = len(os.fsencode(target.name))
    if length > limit:
        raise UsageError(
            f"{target}: the file name is {length} bytes, the file system allows {limit}; choose a shorter one"
        )
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as err:
        raise BadInputError(f"{target}: {os_reason(err)}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(target)
        except OSError:
            st = None  # a dangling link or a loop: the rename replaces the link itself
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{target}: is a folder; give the output a file name")
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        raise UsageError(f"{target}: is not a regular file; deidvid only replaces regular files")
    if not overwrite:
        raise UsageError(f"{target} exists; pass --overwrite to replace it")


def probe_writable(target: Path) -> None:
    """Create and delete one of ``target``'s temporaries: the only test a read-only mount,
    a forbidden folder (``/proc``), a full inode table or root's rights all answer truly.

    Raises:
        BadInputError: the folder cannot be written.
    """
    try:
        TempFile(target).discard()
    except OSError as err:
        raise BadInputError(f"{target}: cannot write to folder {target.parent} ({os_reason(err)})") from None


def _mp4_refuses(suffix: str, stream: av.stream.Stream) -> bool:
    # FFmpeg's mp4 muxer accepts PCM streams but then fails writing the trailer (EINVAL)
    # for ordinary layouts (44.1/48 kHz stereo, measured): after the whole run. .mov and
    # .mkv hold the same packets.
    return CONTAINER_FORMATS[suffix] == "mp4" and stream.codec_context.name.startswith("pcm_")


def _holds(suffix: str, stream: av.stream.Stream) -> bool:
    """Whether the container of ``suffix`` takes ``stream``'s packets as they are."""
    if _mp4_refuses(suffix, stream):
        return False
    with av.open(os.devnull, "w", format=CONTAINER_FORMATS[suffix]) as probe_container:
        try:
            probe_container.add_stream_from_template(stream)
        except ValueError:
            return False
    return True


def _suffixes_holding(stream: av.stream.Stream) -> list[str]:
    """Output suffixes whose container accepts ``stream``'s codec as is."""
    return [suffix for suffix in (".mp4", ".mov", ".mkv") if _holds(suffix, stream)]


def audio_misfit(stream: av.stream.Stream, src: Path, out_path: Path) -> UsageError | None:
    """The error to raise when ``stream`` cannot be copied into ``out_path``'s container."""
    suffix = out_path.suffix.lower()
    if _holds(suffix, stream):
        return None
    others = [s for s in _suffixes_holding(stream) if s != suffix]
    instead = f"write {' or '.join(others)} instead, or " if others else ""
    return UsageError(
        f"{src}: its audio codec '{stream.codec_context.name}' cannot be "
        f"stored in {out_path.suffix}; {instead}drop the audio (--no-audio)"
    )


def check_audio_fits(src: Path, out_path: Path) -> None:
    """Raise before any work when an audio stream of ``src`` cannot be copied into ``out_path``.

    Raises:
        UsageError: an audio codec the output container cannot hold.
        BadInputError: ``src`` cannot be opened.
    """
    with open_input(Path(src)) as container:
        for stream in container.streams.audio:
            error = audio_misfit(stream, Path(src), out_path)
            if error is not None:
                raise error
