"""The run manifest: ``OUT/deidvid-manifest.jsonl``, one line per input, what became of it.

Each line is a JSON object (one per output, keyed by the output's path relative to the
output folder): the input and its sha256, the output and its sha256, the method, every
option, deidvid's and the bundled models' versions (``fingerprint`` hashes the three),
the status, the exit code, the error, timings and the report's summary.

The file is rewritten whole and atomically after every video (``deidvid.io.atomic``), so
a run killed at any point leaves the manifest of the last finished video, never a torn
line. An entry is written with status ``running`` before its video starts: an output
named in the manifest belongs to the batch, which may replace it when it redoes the video.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deidvid.weights.manifest import sha256_file as file_sha256

MANIFEST_NAME = "deidvid-manifest.jsonl"

#: Statuses whose output was written completely (a gate may have failed on it).
WRITTEN = frozenset({"ok", "incomplete", "identity_remains"})

#: Options that change how fast a video is done, not what it shows (threads: x264 splits its
#: work differently, so the bits differ, not the picture).
NOT_IN_FINGERPRINT = frozenset({"device", "threads"})


def bundled_models() -> dict[str, str]:
    """Bundled model name -> sha256 of its weights (``deidvid/weights/MANIFEST.json``)."""
    from deidvid.weights.manifest import read_manifest

    models = read_manifest().get("models", {})
    return {name: entry.get("sha256") or entry.get("package", {}).get("sha256", "") for name, entry in sorted(models.items())}


def fingerprint(options: dict[str, Any], version: str, models: dict[str, str]) -> str:
    """What an output depends on besides its input, as one hash: same hash, same output."""
    relevant = {k: v for k, v in options.items() if k not in NOT_IN_FINGERPRINT}
    text = json.dumps({"options": relevant, "deidvid": version, "models": models}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Manifest:
    """The manifest of one output folder; :meth:`record` rewrites it atomically."""

    path: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreadable_lines: int = 0

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest at ``path`` (empty when there is none). Lines that are not JSON
        objects with a ``key`` are counted and skipped (their videos are redone)."""
        manifest = cls(path)
        if not path.exists():
            return manifest
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                manifest.entries[str(entry["key"])] = entry
            except (ValueError, KeyError, TypeError):
                manifest.unreadable_lines += 1
        return manifest

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def owns(self, key: str, output: Path) -> bool:
        """Whether ``output`` was written (or was being written) by this batch."""
        entry = self.entries.get(key)
        return entry is not None and Path(entry.get("output", "")) == output.absolute()

    def record(self, entry: dict[str, Any], write: bool = True) -> None:
        """Add or replace ``entry`` (by its ``key``) and rewrite the file atomically
        (``write=False``: kept for the next write)."""
        from deidvid.io.atomic import write_text

        self.entries[str(entry["key"])] = entry
        if not write:
            return
        lines = (json.dumps(e, sort_keys=True, default=str) for e in self.entries.values())
        write_text(self.path, "".join(line + "\n" for line in lines))

    def is_complete(self, key: str, output: Path, input_path: Path, run_fingerprint: str) -> bool:
        """Whether ``key`` needs no redoing: written with the same fingerprint, from an input
        with the recorded sha256, and the output still has the recorded sha256."""
        entry = self.entries.get(key)
        if entry is None or entry.get("status") not in WRITTEN or entry.get("fingerprint") != run_fingerprint:
            return False
        if Path(entry.get("output", "")) != output.absolute() or not output.is_file() or not input_path.is_file():
            return False
        if output.stat().st_size != entry.get("output_bytes") or input_path.stat().st_size != entry.get("input_bytes"):
            return False  # cheap checks first: a changed size needs no hashing
        return file_sha256(output) == entry.get("output_sha256") and file_sha256(input_path) == entry.get("input_sha256")
