"""Bundled networks run by ONNX Runtime: the graph from ``weights/``, the weights from safetensors.

On the CPU, ONNX Runtime runs deidvid's small convolutional networks 2-3x faster than
torch's eager kernels and starts without importing torch (seconds). The graph file
(``weights/<model>.onnx``, listed as the manifest entry's ``graph`` block) is exported
from deidvid's own torch module by ``python -m deidvid.tools.convert.main graphs`` and
holds only the structure: every initializer is marked external and carries no data, so
the weights exist once, in the model's safetensors file, and both files are
sha256-verified on load like every other bundled file.
"""

from __future__ import annotations

import os

import numpy as np

from deidvid.weights.manifest import load_arrays, weights_file


def inference_threads() -> int:
    """Threads one network may use: the process's limit (``OMP_NUM_THREADS``, which a
    batch worker sets to its share of the cores, as torch reads it), else every usable core."""
    from deidvid.batch.pool import usable_cores

    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(limit)) if limit.isdigit() else usable_cores()


class OnnxNetwork:
    """Model ``name`` (a manifest entry with a ``graph`` block) as an ONNX Runtime CPU session.

    Args:
        name: the manifest entry.
        threads: intra-op threads; default :func:`inference_threads`.

    Call it with the graph's inputs, in order, as float32 arrays; it returns the outputs.
    """

    def __init__(self, name: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        graph = weights_file(name, "graph").read_bytes()
        # ORT may use these buffers in place: they live as long as the session.
        self._weights = load_arrays(name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or inference_threads()
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: the decoder, encoder and OpenCV share the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        names = list(self._weights)
        values = [ort.OrtValue.ortvalue_from_numpy(self._weights[n]) for n in names]
        options.add_external_initializers(names, values)
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self._inputs, inputs, strict=True)))
