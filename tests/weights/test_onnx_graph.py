"""ONNX Runtime graphs: weightless, reproducible from the torch modules, same outputs as
torch, verified on load like every bundled file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from deidvid.errors import WeightsError
from deidvid.tools.convert.graphs import GRAPHS, _loader, weightless_graph
from deidvid.weights.manifest import manifest_entry, weights_dir
from deidvid.weights.onnx_graph import OnnxNetwork, inference_threads

onnx = pytest.importorskip("onnx")  # the test extra


@pytest.mark.parametrize("spec", GRAPHS, ids=lambda s: s.name)
def test_bundled_graph_is_a_fresh_export_without_weights(spec):
    entry = manifest_entry(spec.name)
    bundled = (weights_dir() / entry["graph"]["file"]).read_bytes()
    assert weightless_graph(_loader(spec)().eval(), spec, entry["file"]) == bundled
    proto = onnx.load_from_string(bundled)
    assert proto.graph.initializer, "no initializers: nothing read from the safetensors"
    for init in proto.graph.initializer:
        assert init.data_location == onnx.TensorProto.EXTERNAL and not init.raw_data, init.name
    assert len(bundled) < 100_000  # structure only; the weights are megabytes


@pytest.mark.parametrize("spec", GRAPHS, ids=lambda s: s.name)
@pytest.mark.parametrize("scale", [1.0, 0.37])  # another size along every dynamic axis (recognisers: batch only)
def test_onnx_runtime_matches_the_torch_module(spec, scale: float):
    dynamic = spec.dynamic_axes[spec.inputs[0]]
    shape = [max(8, round(n * scale)) if i > 1 and i in dynamic else n for i, n in enumerate(spec.example_shape)]
    shape[0] = 2
    x = np.random.default_rng(0).normal(0, 40, shape).astype(np.float32)
    with torch.inference_mode():
        outputs = _loader(spec)().eval()(torch.from_numpy(x))
    expected = [outputs.numpy()] if isinstance(outputs, torch.Tensor) else [t.numpy() for t in outputs]
    got = OnnxNetwork(spec.name)(x)
    assert len(got) == len(expected)
    for out, ref in zip(got, expected):
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_corrupted_or_missing_graph_is_a_weights_error(tmp_path: Path, monkeypatch):
    spec = GRAPHS[0]
    entry = manifest_entry(spec.name)
    for name in ("MANIFEST.json", entry["file"]):
        shutil.copy(weights_dir() / name, tmp_path / name)
    data = bytearray((weights_dir() / entry["graph"]["file"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / entry["graph"]["file"]).write_bytes(bytes(data))
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"\.onnx.*corrupted.*deidvid models convert"):
        OnnxNetwork(spec.name)
    (tmp_path / entry["graph"]["file"]).unlink()
    with pytest.raises(WeightsError, match=r"\.onnx.*missing"):
        OnnxNetwork(spec.name)


def test_threads_follow_the_process_limit(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert inference_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert inference_threads() >= 1
