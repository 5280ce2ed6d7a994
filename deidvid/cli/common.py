"""What every command shares: one-line errors, exit codes, output planning, JSON writing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from deidvid.errors import EXIT_OK, EXIT_PROCESSING, BadInputError, DeidvidError, UsageError

err_console = Console(stderr=True)
out_console = Console()

# Containers the encoder writes; other inputs (.avi, .mpg, ...) default to .mp4 output.
OUTPUT_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v"}


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, not '{device}'")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is visible")
    return device


def default_output(src: Path, out_dir: Path | None) -> Path:
    suffix = src.suffix.lower() if src.suffix.lower() in OUTPUT_SUFFIXES else ".mp4"
    return (out_dir or src.parent) / f"{src.stem}.deid{suffix}"


def plan_outputs(
    inputs: list[Path], output: Path | None, out_dir: Path | None, overwrite: bool
) -> list[Path]:
    """Output path for each input; refuses anything that could lose data."""
    if output is not None and len(inputs) > 1:
        raise UsageError("-o/--output takes one input; use --out-dir for several")
    if output is not None and out_dir is not None:
        raise UsageError("use either -o/--output or --out-dir, not both")
    if out_dir is not None and not out_dir.is_dir():
        raise BadInputError(f"output folder {out_dir} does not exist")
    outputs = [output] if output is not None else [default_output(p, out_dir) for p in inputs]
    resolved_inputs = {p.resolve() for p in inputs}
    seen: set[Path] = set()
    for dst in outputs:
        target = dst.resolve()
        if target in resolved_inputs:
            raise UsageError(f"output {dst} is an input; deidvid never overwrites its input")
        if target in seen:
            raise UsageError(f"two inputs would both be written to {dst}")
        seen.add(target)
        if not dst.parent.is_dir():
            raise BadInputError(f"output folder {dst.parent} does not exist")
        if dst.exists() and not overwrite:
            raise UsageError(f"{dst} exists; pass --overwrite to replace it")
    return outputs


def write_json(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` atomically, or to stdout for '-'."""
    text = json.dumps(payload, indent=2, default=str) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        return
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def say(kind: str, message: str, about: Path | None = None) -> None:
    """One unwrapped line on stderr: ``deidvid: error: FILE: message``."""
    if about is not None and str(about) not in message:
        message = f"{about}: {message}"
    typer.echo(f"deidvid: {kind}: {message}", err=True)


def fail(message: str, code: int) -> None:
    say("error", message)
    raise typer.Exit(code)


def run_guarded(fn, *args, **kwargs):  # noqa: ANN001, ANN201
    """Run ``fn``; turn any failure into (None, one-line message, exit code)."""
    try:
        return fn(*args, **kwargs), None, EXIT_OK
    except DeidvidError as err:
        return None, str(err), err.exit_code
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - the last line of defence: never a traceback
        if os.environ.get("DEIDVID_DEBUG"):
            raise
        return None, f"internal error: {type(err).__name__}: {err} (DEIDVID_DEBUG=1 shows the traceback)", EXIT_PROCESSING


def parse_floats(text: str, option: str, count: int | None = None) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, not '{text}'") from None
    if count is not None and len(values) != count:
        raise UsageError(f"{option} takes {count} comma-separated numbers, not '{text}'")
    return values
