"""The models a run needs, each loaded on first use and kept for the whole batch."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from deidvid.anonymise.options import AnonymiseOptions

if TYPE_CHECKING:
    from deidvid.faces.detect import FaceDetector
    from deidvid.faces.landmarks import LandmarkPredictor
    from deidvid.methods.base import Method
    from deidvid.recognise import Recogniser


class PipelineModels:
    """Detector, landmarks, method and recognisers for ``opts``; a batch of videos loads them once."""

    def __init__(self, opts: AnonymiseOptions) -> None:
        self.opts = opts

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

        return build_method(self.opts.method, self.opts.device, self.opts.strength, self.opts.seed)

    @cached_property
    def recognisers(self) -> dict[str, Recogniser]:
        """The identity check's recognisers (all bundled ones)."""
        from deidvid.recognise import ALL_RECOGNISERS, load_recogniser

        return {name: load_recogniser(name, self.opts.device) for name in ALL_RECOGNISERS}
