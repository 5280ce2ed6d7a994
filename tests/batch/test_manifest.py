"""The run manifest: what it records, when it vouches for an output, and that it survives."""

from __future__ import annotations

import json
from pathlib import Path

from deidvid.batch.manifest import Manifest, bundled_models, file_sha256, fingerprint

OPTIONS = {"method": "blur", "crf": 16, "device": "cpu"}


def test_fingerprint_follows_what_changes_the_output() -> None:
    models = {"retinaface": "abc"}
    base = fingerprint(OPTIONS, "1.0", models)
    assert fingerprint({**OPTIONS, "device": "cuda"}, "1.0", models) == base  # speed, not content
    assert fingerprint({**OPTIONS, "crf": 18}, "1.0", models) != base
    assert fingerprint(OPTIONS, "1.1", models) != base
    assert fingerprint(OPTIONS, "1.0", {"retinaface": "abd"}) != base


def test_bundled_models_name_every_model_with_a_hash() -> None:
    models = bundled_models()
    assert {"retinaface", "ae_residual", "dlib_landmarks68"} <= set(models)
    assert all(len(h) == 64 for h in models.values())


def written(tmp_path: Path, manifest: Manifest) -> tuple[Path, Path, dict]:
    src, dst = tmp_path / "in.mp4", tmp_path / "out" / "in.mp4"
    dst.parent.mkdir(exist_ok=True)
    src.write_bytes(b"input bytes")
    dst.write_bytes(b"output bytes")
    entry = {
        "key": "in.mp4", "input": str(src), "output": str(dst), "status": "ok", "fingerprint": "f",
        "input_sha256": file_sha256(src), "input_bytes": src.stat().st_size,
        "output_sha256": file_sha256(dst), "output_bytes": dst.stat().st_size,
    }
    manifest.record(entry)
    return src, dst, entry


def test_record_and_load_round_trip_one_line_per_key(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "m.jsonl")
    _, _, entry = written(tmp_path, manifest)
    manifest.record({**entry, "status": "ok", "seconds": 1.5})
    manifest.record({"key": "other.mp4", "status": "running"})
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    assert Manifest.load(tmp_path / "m.jsonl").entries == manifest.entries
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_unreadable_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"key": "a.mp4", "status": "ok"}\nnot json\n{"no key": 1}\n\n')
    manifest = Manifest.load(path)
    assert list(manifest.entries) == ["a.mp4"] and manifest.unreadable_lines == 2


def test_complete_only_when_input_output_options_and_status_agree(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "m.jsonl")
    src, dst, entry = written(tmp_path, manifest)
    assert manifest.is_complete("in.mp4", dst, src, "f")
    assert not manifest.is_complete("in.mp4", dst, src, "g")  # other options or models
    assert not manifest.is_complete("other.mp4", dst, src, "f")
    src.write_bytes(b"input bytez")  # same size, other content
    assert not manifest.is_complete("in.mp4", dst, src, "f")
    src.write_bytes(b"input bytes")
    dst.write_bytes(b"output")  # truncated
    assert not manifest.is_complete("in.mp4", dst, src, "f")
    dst.write_bytes(b"output bytes")
    manifest.record({**entry, "status": "running"})
    assert not manifest.is_complete("in.mp4", dst, src, "f")
    assert manifest.owns("in.mp4", dst) and not manifest.owns("in.mp4", src)
    dst.unlink()
    manifest.record(entry)
    assert not manifest.is_complete("in.mp4", dst, src, "f")


def test_a_process_loads_the_models_once_per_options() -> None:
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.batch.jobs import models_for

    first = models_for(AnonymiseOptions())
    assert models_for(AnonymiseOptions()) is first
    assert models_for(AnonymiseOptions(crf=20)) is not first
