"""The method contract: what a de-identification method is to the pipeline.

A method turns face clips (128x128, the paper's tight crops; larger when the method asks
for context around the face with ``crop_margin``) into de-identified clips. It says how its output
is pasted back (``PasteMode``), may keep state per face track (``start_track`` is
called before a track's first clip, so a method can keep one choice per person for
the whole track), may watch every original face frame in pass 1 (``observer``), and
may touch each full frame after paste (``finish_frame``). Adding a method means one
module in this package and one line in the registry (``deidvid.methods``).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

if TYPE_CHECKING:
    from deidvid.faces.track import FaceTrack


class PasteMode(enum.Enum):
    """How the pipeline puts a method's output back into the frame (``deidvid.anonymise.paste``)."""

    RESIDUAL = "residual"  # add (output - input): full-resolution detail survives (the autoencoder)
    REPLACE = "replace"  # blend the output over the face: detail is removed at every scale (blur)


@dataclass(frozen=True)
class CropClip:
    """Consecutive square crops of one face track, as a method receives them (128 px, or
    :func:`deidvid.faces.geometry.crop_size` of the method's ``crop_margin``).

    Attributes:
        frames: ``(T, S, S, 3)`` float32 RGB in [0, 1].
        landmarks: ``(T, 68, 2)`` float dlib landmarks in crop pixels (None only outside
            the pipeline: a method then uses its own canonical face layout).
        track_id: the face track the clip belongs to.
        start: index of the clip's first frame in the video.
        times_s: ``(T,)`` presentation times in seconds.
    """

    frames: np.ndarray
    landmarks: np.ndarray | None
    track_id: int
    start: int
    times_s: np.ndarray


class FaceObserver(Protocol):
    """Sees every original face frame of every track during pass 1.

    ``observe`` is called whenever a track gets landmarks in a frame (frames may
    arrive out of order when a new face is tracked backwards); ``finish`` once,
    with the final tracks and every frame's time, after pass 1.
    """

    def observe(self, track_id: int, frame_index: int, rgb: np.ndarray, landmarks: np.ndarray) -> None: ...

    def finish(self, tracks: list[FaceTrack], times_s: np.ndarray) -> None: ...


class Method(ABC):
    """A de-identification method (see the module docstring).

    Class attributes:
        name: the ``--method`` name.
        paste_mode: how the output is pasted back.
        interpolation: cv2 flag for resizing the output to the face's size.
        keeps_pulse_by_default: whether the pulse transplant runs unless ``--no-keep-pulse``
            says otherwise. True for every bundled method: it restores the pulse where the
            method replaced the skin's pixels and, measured on the 7 pulse videos, still
            improves the residual autoencoder's (README, pulse transplant).
        crop_margin: context around the paper's tight face box, as a fraction of its side
            (:func:`deidvid.faces.geometry.crop_box`): 0 gives the paper's crops; a method
            that redraws the face's outline wants room for the pasted face to fade out
            inside the crop rather than along its straight edges.
    """

    name: str = ""
    paste_mode: PasteMode = PasteMode.REPLACE
    interpolation: int = cv2.INTER_LINEAR
    keeps_pulse_by_default: bool = True
    crop_margin: float = 0.0

    def start_video(self) -> None:  # noqa: B027 - optional hook
        """Called before pass 1 of each video (each video stream): forget the last one's
        tracks (track ids start again) and warnings; the loaded models stay."""

    def observer(self) -> FaceObserver | None:
        """A pass-1 observer, or None when the method needs none."""
        return None

    def start_track(self, track: FaceTrack) -> None:  # noqa: B027 - optional hook
        """Called before the first clip of ``track``."""

    @abstractmethod
    def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
        """De-identify clips (possibly of several tracks); one ``(T, S, S, 3)`` float32 each."""

    def finish_frame(self, frame_index: int, canvas: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Called with each frame that has a face, ``(H, W, 3)`` float32 (0..255), after paste, before encode."""

    @property
    def sees_whole_frames(self) -> bool:
        """Whether :meth:`finish_frame` does anything: the pipeline then hands it whole frames
        (otherwise only the faces' part of a frame is converted and written back)."""
        return type(self).finish_frame is not Method.finish_frame

    def warnings(self) -> list[str]:
        """One-line notes for the run's report (faces the method could not treat as intended)."""
        return []

    def track_summary(self, track_id: int) -> dict[str, Any] | None:
        """What the method decided for one track of the video just processed, for the report
        (JSON-ready), or None when it decides nothing per track."""
        return None

    def __call__(self, frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """One clip without track context: ``(T, S, S, 3)`` -> ``(T, S, S, 3)`` (tests, tools, training)."""
        return self.run([CropClip(frames, landmarks, -1, 0, np.arange(len(frames), dtype=np.float64))])[0]
