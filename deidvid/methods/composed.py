"""Two methods in a row: the second runs on the first's output clips (e.g. ``surrogate+ae``:
the residual autoencoder's adversarial perturbation on top of a surrogate face).

The first method decides how the result is pasted, the crops' margin and whether it
replaces the original's pixels (the second only perturbs what the first drew); both see every hook of the
contract, the first before the second.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from deidvid.methods.base import CropClip, FaceObserver, Method

if TYPE_CHECKING:
    from deidvid.faces.track import FaceTrack


class Composed(Method):
    """``then`` applied to ``first``'s output, as one method called ``first.name+then.name``."""

    def __init__(self, first: Method, then: Method) -> None:
        self.first, self.then = first, then
        self.name = f"{first.name}+{then.name}"
        self.paste_mode = first.paste_mode
        self.interpolation = first.interpolation
        self.keeps_pulse_by_default = first.keeps_pulse_by_default
        self.crop_margin = first.crop_margin

    def start_video(self) -> None:
        self.first.start_video()
        self.then.start_video()

    def observer(self) -> FaceObserver | None:
        # A second observer would need a fan-out; no method that runs second has one.
        if self.then.observer() is not None:
            raise ValueError(f"'{self.then.name}' watches pass 1: it cannot run second")
        return self.first.observer()

    def start_track(self, track: FaceTrack) -> None:
        self.first.start_track(track)
        self.then.start_track(track)

    def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
        drawn = self.first.run(clips)
        return self.then.run([dataclasses.replace(clip, frames=out) for clip, out in zip(clips, drawn, strict=True)])

    def finish_frame(self, frame_index: int, canvas: np.ndarray) -> None:
        self.first.finish_frame(frame_index, canvas)
        self.then.finish_frame(frame_index, canvas)

    @property
    def sees_whole_frames(self) -> bool:
        # Its own finish_frame only forwards: whole frames only when a part has a hook.
        return self.first.sees_whole_frames or self.then.sees_whole_frames

    def warnings(self) -> list[str]:
        return [*self.first.warnings(), *self.then.warnings()]
