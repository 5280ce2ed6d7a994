"""The built wheel carries the bundled weights: every file MANIFEST.json names, byte for byte.

Builds with ``pip wheel --no-deps`` from a copy of ``pyproject.toml``, ``README.md`` and
``deidvid/`` (a stale ``build/`` in the checkout cannot leak into it). The full check,
a fresh venv + ``deidvid anonymise`` from site-packages, is ``.ci/wheel-check.sh``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deidvid.tools.convert.sources import sources_required

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = "deidvid/weights"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "deidvid", src / "deidvid", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if build.returncode != 0:
        # Build isolation fetches setuptools: offline, skip (CI sets DEIDVID_REQUIRE_SOURCES=1 and fails).
        offline = "No matching distribution found for setuptools" in build.stderr
        if offline and not sources_required():
            pytest.skip("pip wheel could not fetch its build backend (offline)")
        pytest.fail(f"pip wheel failed:\n{build.stdout}\n{build.stderr}")
    (path,) = out.glob("deidvid-*.whl")
    return path


@pytest.mark.slow
def test_wheel_carries_every_manifest_weights_file(wheel: Path):
    manifest = json.loads((ROOT / WEIGHTS / "MANIFEST.json").read_text())
    expected = {name: entry for name, entry in manifest["models"].items() if "file" in entry}
    assert expected, "no bundled weights in MANIFEST.json"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert json.loads(zf.read(f"{WEIGHTS}/MANIFEST.json")) == manifest
        assert f"{WEIGHTS}/MODEL_CARD.md" in names
        for name, entry in expected.items():
            member = f"{WEIGHTS}/{entry['file']}"
            assert member in names, f"{name}: {member} not in {wheel.name}"
            assert hashlib.sha256(zf.read(member)).hexdigest() == entry["sha256"], member
            if "graph" in entry:  # the ONNX Runtime graph beside its weights
                member = f"{WEIGHTS}/{entry['graph']['file']}"
                assert hashlib.sha256(zf.read(member)).hexdigest() == entry["graph"]["sha256"], member
    # nothing but the package and its metadata: no tests, no caches, no stray weights
    assert all(n.startswith(("deidvid/", "deidvid-")) for n in names), sorted(names)[:20]
    shipped = {Path(n).name for n in names if n.startswith(f"{WEIGHTS}/") and n.endswith(".safetensors")}
    assert shipped == {entry["file"] for entry in expected.values()}
