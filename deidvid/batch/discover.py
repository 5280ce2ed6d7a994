"""Which videos a batch reads, and where each output goes.

A file argument is one input; its output is ``NAME.deid.EXT`` in ``--out-dir`` (or beside
it). A folder argument is searched recursively and mirrored into ``--out-dir``: its file
``a/b/NAME.EXT`` becomes ``OUT/a/b/NAME.EXT`` (``.mp4`` when deidvid cannot write ``EXT``),
so a dataset's loaders find the de-identified copy where they found the original.
Hidden files and folders (names starting with ``.``: deidvid's own temporaries among
them), the output folder itself and any folder holding a run manifest (an earlier run's
output folder, :data:`~deidvid.batch.manifest.MANIFEST_NAME`) are never inputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from deidvid.errors import BadInputError, UsageError

#: Files a folder search takes when no ``--include`` is given (case-insensitive).
VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".mts", ".m2ts", ".ts", ".3gp",
)


# Containers the encoder writes; other inputs (.avi, .mpg, ...) get .mp4 outputs.
OUTPUT_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v"}


@dataclass(frozen=True)
class BatchItem:
    """One input and its output; ``key`` is the output relative to the output folder;
    ``mirrored``: found in a folder argument (its output's sub-folder may need making)."""

    src: Path
    dst: Path
    key: str
    mirrored: bool = False


def find_inputs(
    arguments: Sequence[Path], out_dir: Path | None, include: Sequence[str] = (), exclude: Sequence[str] = (),
    on_skip: Callable[[Path], None] | None = None,
) -> list[tuple[Path, Path | None]]:
    """Every input file: ``(file, folder argument it was found under or None)``, folders'
    files in sorted order. Raises UsageError for a folder without ``out_dir`` and
    BadInputError for a folder with no matching file. ``on_skip`` hears of each earlier
    run's output folder found inside a folder argument (left out)."""
    found: list[tuple[Path, Path | None]] = []
    for argument in arguments:
        if not _is_folder(argument):
            found.append((argument, None))  # missing or unreadable: that input's own error, later
            continue
        if out_dir is None:
            raise UsageError(f"{argument} is a folder: give --out-dir, where its tree is mirrored")
        files = sorted(_walk(argument, out_dir, include, exclude, on_skip), key=lambda f: f.relative_to(argument).parts)
        if not files:
            wanted = ", ".join(include) if include else "video files"
            raise BadInputError(f"{argument}: no {wanted} found (searched recursively)")
        found.extend((f, argument) for f in files)
    return found


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, a loop: that input's own error, later
        return False


def _walk(  # noqa: ANN202
    root: Path, out_dir: Path, include: Sequence[str], exclude: Sequence[str], on_skip: Callable[[Path], None] | None
):
    from deidvid.batch.manifest import MANIFEST_NAME

    out_real = os.path.realpath(out_dir)
    for folder, dirs, files in os.walk(root):
        # Hidden folders left out, the output folder too (it may be inside the input tree).
        dirs[:] = [d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(folder, d)) != out_real]
        if MANIFEST_NAME in files and Path(folder) != root:
            # An earlier run's output folder: its videos are de-identified copies, not inputs.
            dirs.clear()
            if on_skip is not None:
                on_skip(Path(folder))
            continue
        for name in files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if not name.startswith(".") and wanted(rel, include, exclude):
                yield path


def wanted(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a file at ``rel`` (POSIX, relative to the folder argument) is an input.

    A pattern with a ``/`` is matched against the relative path, one without against the
    file name (``*`` matches across folders, as in ``fnmatch``).
    """

    def matches(pattern: str) -> bool:
        return fnmatchcase(rel if "/" in pattern else rel.rsplit("/", 1)[-1], pattern)

    if include:
        taken = any(matches(p) for p in include)
    else:
        taken = rel.lower().endswith(VIDEO_SUFFIXES)
    return taken and not any(matches(p) for p in exclude)


def mirrored_output(src: Path, root: Path, out_dir: Path) -> Path:
    """Where a file found under the folder ``root`` goes: the same place under ``out_dir``."""
    rel = src.relative_to(root)
    suffix = rel.suffix if rel.suffix.lower() in OUTPUT_SUFFIXES else ".mp4"
    return out_dir / rel.with_suffix(suffix)


def default_output(src: Path, out_dir: Path | None) -> Path:
    """``NAME.deid.EXT`` in ``out_dir`` or beside the input."""
    suffix = src.suffix.lower() if src.suffix.lower() in OUTPUT_SUFFIXES else ".mp4"
    return (out_dir or src.parent) / f"{src.stem}.deid{suffix}"


def plan_outputs(inputs: Sequence[Path], output: Path | None, out_dir: Path | None) -> list[Path]:
    """The output path of each file argument (whole-command problems only; see
    ``deidvid.cli.paths.preflight`` for each input's own)."""
    if output is not None and len(inputs) > 1:
        raise UsageError("-o/--output takes one input; use --out-dir for several")
    if output is not None and out_dir is not None:
        raise UsageError("use either -o/--output or --out-dir, not both")
    if out_dir is not None and not out_dir.is_dir():
        problem = "is not a folder" if out_dir.exists() else "does not exist"
        raise BadInputError(f"output folder {out_dir} {problem}")
    return [output] if output is not None else [default_output(p, out_dir) for p in inputs]


def plan_items(
    arguments: Sequence[Path], output: Path | None, out_dir: Path | None,
    include: Sequence[str] = (), exclude: Sequence[str] = (), on_skip: Callable[[Path], None] | None = None,
) -> list[BatchItem]:
    """Every input with its output and manifest key (whole-command problems raise);
    ``on_skip``: see :func:`find_inputs`."""
    found = find_inputs(arguments, out_dir, include, exclude, on_skip)
    files = [f for f, root in found if root is None]
    flat = iter(plan_outputs(files, output, out_dir)) if files or output is not None else iter(())
    items = []
    for src, root in found:
        dst = next(flat) if root is None else mirrored_output(src, root, out_dir)  # type: ignore[arg-type]
        key = dst.relative_to(out_dir).as_posix() if out_dir is not None else str(dst)
        items.append(BatchItem(src, dst, key, mirrored=root is not None))
    return items
