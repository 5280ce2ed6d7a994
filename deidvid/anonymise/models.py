"""The models a run needs, each loaded on first use and kept for the whole batch."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING

from deidvid.anonymise.options import AnonymiseOptions

if TYPE_CHECKING:
    from deidvid.faces.detect import FaceDetector
    from deidvid.faces.landmarks import LandmarkPredictor
    from deidvid.methods.base import Method
    from deidvid.recognise import Embedder


class PipelineModels:
    """Detector, landmarks, method and recognisers for ``opts``; a batch of videos loads them once."""

    def __init__(self, opts: AnonymiseOptions) -> None:
        self.opts = opts
        self._recognisers: Future[dict[str, Embedder]] | None = None

    @cached_property
    def detector(self) -> FaceDetector:
        return self.opts.finding.detector(self.opts.device)

    @cached_property
    def landmarker(self) -> LandmarkPredictor:
        from deidvid.faces.landmarks import LandmarkPredictor

        return LandmarkPredictor()

    @cached_property
    def method(self) -> Method:
        from deidvid.methods import build_method

        return build_method(self.opts.method, self.opts.device, self.opts.strength, self.opts.seed, self.opts.surrogate_look)

    @property
    def recognisers(self) -> dict[str, Embedder]:
        """The identity check's recognisers (all bundled ones); waits for :meth:`prefetch_recognisers`."""
        self.prefetch_recognisers()
        assert self._recognisers is not None
        return self._recognisers.result()

    def prefetch_recognisers(self) -> None:
        """Start loading the recognisers in a thread (ONNX Runtime sessions on the CPU; torch on a GPU).

        They are first needed in pass 2; pass 1 leaves a core part-idle, so loading
        beside it takes those seconds off the run. A failure is raised by :attr:`recognisers`.
        """
        if self._recognisers is None:
            loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-recognisers")
            self._recognisers = loader.submit(self._load_recognisers)
            loader.shutdown(wait=False)

    def _load_recognisers(self) -> dict[str, Embedder]:
        from deidvid.recognise import ALL_RECOGNISERS, load_embedder

        return {name: load_embedder(name, self.opts.device) for name in ALL_RECOGNISERS}
