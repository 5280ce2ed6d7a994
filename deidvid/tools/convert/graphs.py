"""Export the ONNX graphs ONNX Runtime runs on the CPU: ``python -m deidvid.tools.convert.main graphs``.

Each graph is exported from deidvid's own torch module loaded with the bundled weights
(torch's TorchScript exporter, opset :data:`OPSET`), then emptied of weights: every
initializer is marked external with no data and named as the safetensors key it is read
from (:class:`deidvid.weights.onnx_graph.OnnxNetwork`). The file and its sha256 go in the
manifest entry's ``graph`` block. Run it after a converter rewrites a model's weights.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from deidvid.weights.manifest import load_safetensors, sha256_file, update_manifest_entry, weights_dir

OPSET = 17


@dataclass(frozen=True)
class GraphSpec:
    """How to export one bundled model: its module, an example input and the axes that vary."""

    name: str  # manifest entry
    file: str  # in weights/
    module: str  # "package.module:loader", the loader returns the module with its weights
    example_shape: tuple[int, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    # Folding would bake transposed / reshaped copies of bundled tensors into the graph
    # (a Linear's weight, a PReLU's slopes); unfolded, ONNX Runtime folds them when it loads.
    constant_folding: bool = True


def _recogniser_graph(name: str, file: str, loader: str, chip_size: int) -> GraphSpec:
    """A recogniser's network: ``(B, 3, S, S)`` chips in [0, 1] -> ``(B, D)`` embeddings."""
    return GraphSpec(
        name=name,
        file=file,
        module=loader,
        example_shape=(1, 3, chip_size, chip_size),
        inputs=("chips",),
        outputs=("embedding",),
        dynamic_axes={"chips": {0: "batch"}, "embedding": {0: "batch"}},
        constant_folding=False,
    )


GRAPHS: tuple[GraphSpec, ...] = (
    GraphSpec(
        name="retinaface",
        file="retinaface_mnet025.onnx",
        module="deidvid.faces.retinaface:load_retinaface",
        example_shape=(1, 3, 360, 640),
        inputs=("input",),
        outputs=("loc", "conf", "landmarks"),
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}},
    ),
    _recogniser_graph("faceapi_resnet", "faceapi_resnet.onnx", "deidvid.recognise.faceapi_resnet:load_faceapi_resnet", 150),
    _recogniser_graph("mobilefacenet", "mobilefacenet.onnx", "deidvid.recognise.mobilefacenet:load_mobilefacenet", 112),
    _recogniser_graph("mobileface", "mobileface.onnx", "deidvid.recognise.mobileface:load_mobileface", 112),
)


def _loader(spec: GraphSpec) -> Callable[[], torch.nn.Module]:
    import importlib

    module, attr = spec.module.split(":")
    return getattr(importlib.import_module(module), attr)


def weightless_graph(model: torch.nn.Module, spec: GraphSpec, weights_file: str) -> bytes:
    """``model`` exported to ONNX with every initializer external and empty.

    Raises:
        SystemExit: an initializer is not one of the model's bundled tensors, or differs from it.
    """
    import onnx
    from onnx import TensorProto, numpy_helper

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: pinned torch
        torch.onnx.export(
            model,
            (torch.zeros(spec.example_shape),),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=list(spec.inputs),
            output_names=list(spec.outputs),
            dynamic_axes=spec.dynamic_axes,
            do_constant_folding=spec.constant_folding,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    bundled = load_safetensors(spec.name)
    for init in proto.graph.initializer:
        if init.name not in bundled or not torch.equal(
            torch.from_numpy(numpy_helper.to_array(init).copy()), bundled[init.name]
        ):
            raise SystemExit(f"{spec.name}: graph initializer {init.name} is not a bundled tensor")
        for field in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
            init.ClearField(field)
        init.data_location = TensorProto.EXTERNAL
        del init.external_data[:]
        entry = init.external_data.add()
        entry.key, entry.value = "location", weights_file
    return proto.SerializeToString()


def export(spec: GraphSpec) -> Path:
    """Write ``weights/<spec.file>`` and record it in the manifest's ``graph`` block."""
    from deidvid.weights.manifest import manifest_entry

    model = _loader(spec)().eval()
    graph = weightless_graph(model, spec, manifest_entry(spec.name)["file"])
    path = weights_dir() / spec.file
    tmp = path.with_suffix(".onnx.tmp")
    tmp.write_bytes(graph)
    tmp.chmod(0o644)
    tmp.replace(path)
    update_manifest_entry(
        spec.name,
        {
            "graph": {
                "file": spec.file,
                "sha256": sha256_file(path),
                "exported_from": spec.module,
                "exporter": f"torch {torch.__version__.split('+')[0]} torch.onnx.export (TorchScript), opset {OPSET}",
                "note": "structure only: initializers are external, read from the safetensors file by name",
            }
        },
    )
    return path


def convert(workdir: Path) -> None:  # workdir: unused (the graphs come from the bundled weights)
    for spec in GRAPHS:
        print(f"[graphs] {spec.name} -> {export(spec)}")
