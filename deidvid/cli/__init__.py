"""Command line (typer only: parse options, call the library, print results)."""

from deidvid.cli.main import app

__all__ = ["app"]
