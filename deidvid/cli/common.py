"""What every command shares: one-line errors, exit codes, device choice, report writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from deidvid.cli.paths import STDOUT
from deidvid.errors import EXIT_OK, EXIT_PROCESSING, UsageError

err_console = Console(stderr=True)
out_console = Console()


def table_console(json_path: Path | None) -> Console:
    """Where tables go: stdout, unless the JSON report goes there (then stderr, so that
    ``--json -`` output parses as JSON)."""
    return err_console if json_path is not None and str(json_path) == STDOUT else out_console


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, not '{device}'")
    if device == "cpu" or (device == "auto" and not torch_built_with_gpu()):
        return "cpu"  # known without importing torch (seconds a run on the CPU may never need)
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is visible")
    return device


def torch_built_with_gpu() -> bool:
    """Whether the installed torch is a CUDA or ROCm build, read from its ``version.py``
    (importing torch takes seconds). True when unsure: the caller then asks torch itself."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return True
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        return True
    builds = re.findall(r"^(cuda|hip)\b[^=]*=\s*(.+)$", text, flags=re.MULTILINE)
    return len(builds) != 2 or any(value.strip() != "None" for _, value in builds)


def write_report(path: Path, payload: Any) -> int:
    """Write the JSON report (atomically, or to stdout for '-'); returns the exit code."""
    return write_report_text(path, json.dumps(payload, indent=2, default=str) + "\n", "--json")


def write_report_text(path: Path, text: str, option: str) -> int:
    """Write a report (``option``'s file) atomically, or to stdout for '-'; returns the exit code.

    The path was checked before the work started; a failure now (disk full, folder
    removed) is one line and exit 4, never a traceback, and never 1 (a failed gate).
    """
    from deidvid.io.atomic import write_text
    from deidvid.io.decode import os_reason

    if str(path) == STDOUT:
        typer.echo(text, nl=False)
        return EXIT_OK
    try:
        write_text(path, text)
    except OSError as err:
        say("error", f"cannot write the {option} report ({os_reason(err)})", path)
        return EXIT_PROCESSING
    return EXIT_OK


def say(kind: str, message: str, about: Path | None = None) -> None:
    """One unwrapped line on stderr: ``deidvid: error: FILE: message``."""
    if about is not None and str(about) not in message:
        message = f"{about}: {message}"
    typer.echo(f"deidvid: {kind}: {one_line(message)}", err=True)


def one_line(message: str) -> str:
    """Messages from libraries may hold newlines; the contract is one line per error."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def fail(message: str, code: int) -> None:
    say("error", message)
    raise typer.Exit(code)
