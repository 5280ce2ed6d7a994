"""Convert face-api.js's dlib ResNet and 68-point landmark nets to safetensors.

Source: npm ``@vladmandic/face-api`` (MIT), fetched from the registry into ``workdir``
(:func:`deidvid.tools.convert.sources.npm_fetch`, no ``npm`` binary needed).
Its ``model/*-weights_manifest.json`` + ``*.bin`` files are tfjs weight shards, mostly
uint8-quantised (value = q * scale + min); they are dequantised to float32 here.
Outputs ``weights/faceapi_resnet.safetensors`` and ``weights/faceapi_landmarks68.safetensors``
with state-dict names of :mod:`deidvid.recognise.faceapi_resnet` /
:mod:`deidvid.recognise.faceapi_landmarks`, and their manifest entries.

Run: ``python -m deidvid.tools.convert.main faceapi``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deidvid.tools.convert.sources import npm_fetch
from deidvid.weights.manifest import bundle_weights, sha256_file

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
LICENCE = "MIT (face-api.js port by Vladimir Mandic); original dlib model CC0 (Davis King)"


def read_tfjs_weights(manifest_path: Path) -> dict[str, np.ndarray]:
    """Tensors of a tfjs ``*-weights_manifest.json`` (dequantised to float32)."""
    return read_tfjs_groups(json.loads(manifest_path.read_text()), manifest_path.parent, manifest_path.name)


def read_tfjs_groups(groups: list[dict], folder: Path, label: str = "tfjs weights") -> dict[str, np.ndarray]:
    """Tensors of tfjs weight groups (a weights manifest's list) whose shard paths are
    relative to ``folder``, dequantised to float32."""
    tensors: dict[str, np.ndarray] = {}
    for group in groups:
        buffer = b"".join((Path(folder) / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            quant = spec.get("quantization")
            if quant:
                dtype = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}[quant["dtype"]]
                raw = np.frombuffer(buffer, dtype, count, offset)
                values = (
                    raw.astype(np.float32)
                    if quant["dtype"] == "float16"
                    else raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
                )
            else:
                dtype = {"float32": np.float32, "int32": np.int32}[spec["dtype"]]
                raw = np.frombuffer(buffer, dtype, count, offset)
                values = raw.astype(np.float32)
            offset += raw.nbytes
            tensors[spec["name"]] = values.reshape(spec["shape"])
        if offset != len(buffer):
            raise ValueError(f"{label}: read {offset} of {len(buffer)} bytes")
    return tensors


def _hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def resnet_state_dict(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """face-api names -> :class:`FaceApiResNet` names, folding each per-channel affine
    (``scale/weights``, ``scale/biases``) into the conv before it."""
    out: dict[str, np.ndarray] = {}
    prefixes = sorted({k.rsplit("/conv/filters", 1)[0] for k in tf if k.endswith("/conv/filters")})
    for prefix in prefixes:
        scale, shift = tf[f"{prefix}/scale/weights"], tf[f"{prefix}/scale/biases"]
        weight = _hwio_to_oihw(tf[f"{prefix}/conv/filters"]) * scale[:, None, None, None]
        bias = tf[f"{prefix}/conv/bias"] * scale + shift
        name = prefix.replace("/", ".")
        out[f"{name}.weight"] = weight.astype(np.float32)
        out[f"{name}.bias"] = bias.astype(np.float32)
    out["fc.weight"] = np.ascontiguousarray(tf["fc"].T)
    return out


def landmarks_state_dict(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """face-api names -> :class:`FaceApiLandmarks68` names."""
    out: dict[str, np.ndarray] = {}
    for key, value in tf.items():
        prefix, leaf = key.rsplit("/", 1)
        name = prefix.replace("/", ".")
        if key == "fc/weights":
            out["fc.weight"] = np.ascontiguousarray(value.T)
        elif key == "fc/bias":
            out["fc.bias"] = value
        elif leaf == "filters":  # dense0/conv0: plain conv, HWIO
            out[f"{name}.weight"] = _hwio_to_oihw(value)
        elif leaf == "depthwise_filter":  # (kh, kw, C, 1) -> (C, 1, kh, kw)
            out[f"{name}.depthwise.weight"] = np.ascontiguousarray(value.transpose(2, 3, 0, 1))
        elif leaf == "pointwise_filter":
            out[f"{name}.pointwise.weight"] = _hwio_to_oihw(value)
        elif leaf == "bias":
            plain = f"{prefix}/filters" in tf
            out[f"{name}.bias" if plain else f"{name}.pointwise.bias"] = value
        else:
            raise KeyError(f"unexpected face-api tensor {key}")
    return out


def _source_block(root: Path, stem: str) -> dict:
    files = [f"model/{stem}-weights_manifest.json", f"model/{stem}.bin"]
    return {
        "registry": "npm",
        "name": PACKAGE,
        "version": VERSION,
        "file": files[1],
        "sha256": sha256_file(root / files[1]),
        "files": {f: sha256_file(root / f) for f in files},
    }


def _convert_model(root: Path, stem: str, name: str, to_state_dict, module, entry: dict) -> None:
    """Convert one tfjs model of the package to ``weights/NAME.safetensors`` + manifest entry."""
    import torch

    tf = read_tfjs_weights(root / "model" / f"{stem}-weights_manifest.json")
    state = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in to_state_dict(tf).items()}
    module.load_state_dict(state)  # strict: every name and shape must match the module
    path = bundle_weights(name, state, f"npm:{PACKAGE}@{VERSION}", {"package": _source_block(root, stem), **entry})
    print(f"  {name}: {path}")


def convert(workdir: Path) -> None:
    from deidvid.recognise.faceapi_landmarks import FaceApiLandmarks68
    from deidvid.recognise.faceapi_resnet import FaceApiResNet

    root = npm_fetch(PACKAGE, VERSION, Path(workdir))
    _convert_model(
        root, "face_recognition_model", "faceapi_resnet", resnet_state_dict, FaceApiResNet(),
        {
            "licence": LICENCE,
            "input": (
                "(B,3,150,150) RGB float in [0,1]: dlib face chip (get_face_chip_details, "
                "size 150, padding 0.25); network sees (255*x - mean(122.782,117.001,104.298))/256"
            ),
            "output": "(B,128) descriptor; Euclidean distance, same person < 0.6 (dlib)",
            "module": "deidvid.recognise.faceapi_resnet.FaceApiResNet",
            "notes": "uint8-quantised tfjs weights dequantised; per-channel affine folded into convs",
        },
    )
    _convert_model(
        root, "face_landmark_68_model", "faceapi_landmarks68", landmarks_state_dict, FaceApiLandmarks68(),
        {
            "licence": "MIT (face-api.js, Vincent Muehler; fork by Vladimir Mandic)",
            "input": (
                "(B,3,112,112) RGB float in [0,1]: square face crop resized to 112; "
                "network sees (255*x - mean(122.782,117.001,104.298))/255"
            ),
            "output": "(B,68,2) x,y in [0,1] of the crop, iBUG 300-W (dlib) point order",
            "module": "deidvid.recognise.faceapi_landmarks.FaceApiLandmarks68",
        },
    )
