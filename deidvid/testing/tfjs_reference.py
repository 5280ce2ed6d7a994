"""An independent executor of tfjs graph models, for the reference-port tests.

It reads a tfjs ``model.json`` + weights itself (float64; float16-quantised tensors
widened) and runs the graph op by op with convolutions and pooling as sums over
window taps (no torch conv), so it shares no code with the ports it checks.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def needs_weights(*names: str) -> None:
    """Skip the calling test when a bundled model's weights are not built."""
    import pytest  # test-time only: deidvid does not depend on pytest

    from deidvid.weights.manifest import read_manifest, weights_dir

    for name in names:
        entry = read_manifest().get("models", {}).get(name)
        if not entry or not (weights_dir() / entry["file"]).exists():
            pytest.skip(f"weights for {name} not built (deidvid models convert)")


# ------------------------------------------------------------- independent tfjs executor


def read_tfjs_graph(model_json: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Nodes and weights (float64; float16-quantised tensors widened) of a tfjs graph."""
    spec = json.loads(model_json.read_text())
    weights: dict[str, torch.Tensor] = {}
    for group in spec["weightsManifest"]:
        buffer = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            stored = (w.get("quantization") or {}).get("dtype", w["dtype"])
            assert stored in ("float32", "float16", "int32"), f"{w['name']}: {stored} not handled"
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            array = np.frombuffer(buffer, np.dtype(stored), count, offset).reshape(w["shape"])
            offset += array.nbytes
            weights[w["name"]] = torch.from_numpy(array.astype(np.float64 if stored != "int32" else np.int64))
        assert offset == len(buffer)
    return spec["modelTopology"]["node"], weights


def _attr(node: dict, key: str):
    value = node.get("attr", {}).get(key, {})
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        return [int(i) for i in items.get("i", [])]
    return value


def _same_pads(node: dict, shape: tuple[int, int], kernel: tuple[int, int]) -> list[tuple[int, int]]:
    """``[(top, bottom), (left, right)]`` for TensorFlow's ``padding`` attribute
    (``SAME``: the odd pixel at the end; ``VALID``: none)."""
    padding = _attr(node, "padding")
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    assert padding == "SAME", padding
    pads = []
    for size, k, s in zip(shape, kernel, _attr(node, "strides")[1:3]):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _windows(x: torch.Tensor, node: dict, kernel: tuple[int, int], fill: float = 0.0):
    """Yield ``(i, j, x[:, i + s*y, j + s*x, :])`` for each tap of a ``kernel`` window
    over NHWC ``x``, padded as the node says."""
    (top, bottom), (left, right) = _same_pads(node, tuple(x.shape[1:3]), kernel)
    x = F.pad(x, (0, 0, left, right, top, bottom), value=fill)
    sy, sx = _attr(node, "strides")[1:3]
    out_h, out_w = (x.shape[1] - kernel[0]) // sy + 1, (x.shape[2] - kernel[1]) // sx + 1
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i, j, x[:, i : i + sy * (out_h - 1) + 1 : sy, j : j + sx * (out_w - 1) + 1 : sx, :]


def run_tfjs_graph(nodes: list[dict], weights: dict[str, torch.Tensor], x_nhwc: torch.Tensor, outputs: list[str]):
    """Execute the graph node by node in float64 with TensorFlow's NHWC semantics
    (convolutions and pooling as sums / maxima over the window's taps: no torch conv)."""
    values: dict[str, torch.Tensor] = dict(weights)
    for node in nodes:
        op, name = node["op"], node["name"]
        if op == "Const":
            assert name in values, name
            continue
        if op == "Placeholder":
            values[name] = x_nhwc.double()
            continue
        a = [values[i.split(":")[0]] for i in node.get("input", [])]
        assert _attr(node, "data_format") in ({}, "NHWC")
        if op in ("_FusedConv2D", "DepthwiseConv2dNative"):
            assert _attr(node, "dilations") in ({}, [1, 1, 1, 1])
            kernel = a[1]  # (kh, kw, cin, cout), or (kh, kw, c, 1) for depthwise
            if op == "DepthwiseConv2dNative":
                assert kernel.shape[3] == 1
                y = sum(tap * kernel[i, j, :, 0] for i, j, tap in _windows(a[0], node, kernel.shape[:2]))
            else:
                y = sum(tap @ kernel[i, j] for i, j, tap in _windows(a[0], node, kernel.shape[:2]))
                extra = list(a[2:])
                for fused in _attr(node, "fused_ops"):
                    if fused == "BiasAdd":
                        y = y + extra.pop(0)
                    elif fused == "Prelu":
                        alpha = extra.pop(0)
                        y = torch.where(y < 0, y * alpha, y)
                    else:
                        raise NotImplementedError(fused)
                assert not extra
            values[name] = y
        elif op == "MaxPool":
            taps = [tap for _, _, tap in _windows(a[0], node, tuple(_attr(node, "ksize")[1:3]), -np.inf)]
            values[name] = torch.stack(taps).amax(0)
        elif op == "Prelu":
            values[name] = torch.where(a[0] < 0, a[0] * a[1], a[0])
        elif op == "AddV2":
            values[name] = a[0] + a[1]
        elif op == "Pad":
            pads = a[1].long().tolist()  # [[before, after]] per NHWC axis; F.pad wants last axis first
            values[name] = F.pad(a[0], [p for axis in reversed(pads) for p in axis])
        elif op == "Reshape":
            values[name] = a[0].reshape([int(s) for s in a[1].tolist()])
        elif op == "Sigmoid":
            values[name] = 1 / (1 + torch.exp(-a[0]))
        elif op == "ConcatV2":
            values[name] = torch.cat(a[:-1], dim=int(a[-1]))
        elif op == "Identity":
            values[name] = a[0]
        else:
            raise NotImplementedError(op)
    return [values[o] for o in outputs]


def signature_outputs(model_json: Path) -> dict[str, str]:
    """Output name -> node name, from the graph's signature."""
    spec = json.loads(model_json.read_text())
    signature = spec.get("signature") or spec["userDefinedMetadata"]["signature"]
    return {k: v["name"].split(":")[0] for k, v in signature["outputs"].items()}


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """``(max |ours - ref|, that / max |ref|)``."""
    diff = float((ours.double() - reference).abs().max())
    return diff, diff / float(reference.abs().max())


def graph_inputs(size: int, astronaut_crop: np.ndarray) -> torch.Tensor:
    """Random smooth and noisy images in [0, 1] plus a real crop: ``(4, S, S, 3)``."""
    gen = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.rand(1, 3, size // 8, size // 8, generator=gen), size=size, mode="bilinear")
    noise = torch.rand(2, 3, size, size, generator=gen)
    real = torch.from_numpy(astronaut_crop).permute(2, 0, 1)[None].float() / 255
    return torch.cat([smooth, noise, real]).permute(0, 2, 3, 1).contiguous()
