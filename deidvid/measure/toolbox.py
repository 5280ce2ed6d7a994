"""The standard rPPG toolchain: would rPPG-Toolbox's default unsupervised path still work?

Researchers who receive a de-identified dataset mostly run `rPPG-Toolbox
<https://github.com/ubicomplab/rPPG-Toolbox>`_ with its default unsupervised settings
(``configs/infer_configs/*_UNSUPERVISED.yaml``), not deidvid's own skin mask. That path
(``dataset/data_loader/BaseLoader.py``: ``face_detection`` and ``crop_face_resize``):

1. OpenCV's Haar frontal-face cascade (``haarcascade_frontalface_default.xml``, default
   ``detectMultiScale`` parameters, the RGB frame passed as it is) on the *first* frame
   only (``DO_DYNAMIC_DETECTION: False``); of several faces the widest.
2. The box enlarged 1.5x about its centre (``LARGE_BOX_COEF: 1.5``); the left/top edge is
   clipped at 0 without shrinking the box, and the coordinates are truncated to integers.
   With no face found, the box is ``[0, 0, H, W]`` (sic: height as the width) before the
   enlargement, which for frames no wider than 1.5x their height is the whole frame.
3. Every frame cut to that box (clipped to the frame) and resized to 72x72 (``INTER_AREA``).
4. The mean RGB of the whole 72x72 image per frame (``unsupervised_methods/utils.py``
   ``process_video``), POS / CHROM (:mod:`deidvid.rppg.methods`, tested against the
   toolbox's code), and the HR of the whole video (no chunking, no smaller evaluation
   window) by the toolbox's FFT post-processing in 0.75-2.5 Hz
   (:func:`deidvid.rppg.hr.heart_rate`), at the video's nominal frame rate (the toolbox
   takes frames as they come at its configured ``FS``).

:class:`ToolboxTraces` runs 1-4 on both videos, each with its own first-frame box, and
:func:`toolbox_scores` compares their HRs. :class:`HaarRate` counts on sampled frames
whether the cascade finds each face track's face at all (the toolbox would lose it on a
first frame like that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, TypedDict

import cv2
import numpy as np

from deidvid.measure.detection import (
    DETECTION_MIN_IOU,
    DetectionCount,
    detected_at,
    face_box,
)
from deidvid.rppg.hr import heart_rate
from deidvid.rppg.methods import RPPG_METHODS

HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"
TOOLBOX_LARGER_BOX_COEF = 1.5  # LARGE_BOX_COEF
TOOLBOX_SIZE = 72  # RESIZE: H, W
TOOLBOX_METHODS: tuple[str, ...] = ("pos", "chrom")
TOOLBOX_BAND_HZ: tuple[float, float] = (0.75, 2.5)  # evaluation/post_process.py, hard-coded there
# HaarRate searches a region this many face-box sides wide around the track's box:
# a detection matching the box (IoU >= 0.3) lies inside it.
HAAR_REGION_GROW = 2.0


class ToolboxMethod(TypedDict):
    """One rPPG method's toolbox HR on both videos (the JSON's ``pulse.toolbox.<method>``)."""

    hr_orig: float | None
    hr_deid: float | None
    abs_diff: float | None
    detected: bool  # Haar found a face on the de-identified video's first frame


class HaarScores(TypedDict):
    """Fraction of a track's sampled frames where the Haar cascade finds its face."""

    original: float | None
    deidentified: float | None


@lru_cache(maxsize=1)
def haar_cascade() -> cv2.CascadeClassifier:
    """OpenCV's bundled frontal-face cascade (the file rPPG-Toolbox ships a copy of)."""
    path = cv2.data.haarcascades + HAAR_CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's Haar cascade {path} could not be loaded")
    return cascade


def haar_faces(image: np.ndarray, **params: Any) -> np.ndarray:
    """``(K, 4)`` int ``[x, y, w, h]`` Haar detections in ``image`` (RGB as the toolbox passes
    it, or grey); ``params`` go to ``detectMultiScale`` (none: the toolbox's defaults)."""
    found = haar_cascade().detectMultiScale(np.ascontiguousarray(image), **params)
    return np.asarray(found, dtype=np.int64).reshape(-1, 4)


def toolbox_face_box(frame: np.ndarray, larger_box_coef: float = TOOLBOX_LARGER_BOX_COEF) -> tuple[np.ndarray, bool]:
    """rPPG-Toolbox's face box of one ``(H, W, 3)`` uint8 RGB frame (backend ``HC``).

    Returns ``([x, y, w, h] int64, detected)``: the widest Haar face (the first of equals)
    enlarged ``larger_box_coef`` times about its centre, left/top clipped at 0, truncated
    to integers; without a face ``[0, 0, H, W]`` enlarged the same way.
    """
    faces = haar_faces(frame[:, :, :3].astype(np.uint8))
    detected = len(faces) > 0
    if detected:
        x, y, w, h = (float(v) for v in faces[int(np.argmax(faces[:, 2]))])
    else:
        x, y, w, h = 0.0, 0.0, float(frame.shape[0]), float(frame.shape[1])
    grow = (larger_box_coef - 1.0) / 2
    box = [max(0.0, x - grow * w), max(0.0, y - grow * h), larger_box_coef * w, larger_box_coef * h]
    return np.asarray(box).astype(np.int64), detected


def toolbox_crop(frame: np.ndarray, box: np.ndarray, size: int = TOOLBOX_SIZE) -> np.ndarray:
    """``frame (H, W, 3)`` uint8 cut to ``box [x, y, w, h]`` (clipped) and resized to
    ``(size, size, 3)`` uint8 with area averaging, as ``crop_face_resize``."""
    x, y, w, h = (int(v) for v in box)
    height, width = frame.shape[:2]
    region = frame[max(y, 0) : min(y + h, height), max(x, 0) : min(x + w, width)]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def toolbox_mean_rgb(frame: np.ndarray, box: np.ndarray, size: int = TOOLBOX_SIZE) -> np.ndarray:
    """``(3,)`` mean RGB of :func:`toolbox_crop` (the toolbox's ``process_video`` per frame)."""
    return toolbox_crop(frame, box, size).reshape(-1, 3).mean(axis=0, dtype=np.float64)


class ToolboxTraces:
    """Both videos through the toolbox's preprocessing, frame by frame (feed frames in order).

    The first frame fed sets each video's box (:func:`toolbox_face_box`); every frame adds
    its :func:`toolbox_mean_rgb` under that box. Memory: 6 numbers per frame.
    """

    def __init__(self, larger_box_coef: float = TOOLBOX_LARGER_BOX_COEF, size: int = TOOLBOX_SIZE) -> None:
        self.larger_box_coef = larger_box_coef
        self.size = size
        self.boxes: tuple[np.ndarray, np.ndarray] | None = None
        self.detected: tuple[bool, bool] = (False, False)
        self._rgb: list[np.ndarray] = []  # per frame: (2, 3) original, de-identified

    def add(self, original: np.ndarray, deidentified: np.ndarray) -> None:
        """The next frame of both videos, ``(H, W, 3)`` uint8 RGB."""
        if self.boxes is None:
            (box_o, found_o), (box_d, found_d) = (
                toolbox_face_box(frame, self.larger_box_coef) for frame in (original, deidentified)
            )
            self.boxes, self.detected = (box_o, box_d), (found_o, found_d)
        box_o, box_d = self.boxes
        self._rgb.append(
            np.stack([toolbox_mean_rgb(original, box_o, self.size), toolbox_mean_rgb(deidentified, box_d, self.size)])
        )

    def traces(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, 3)`` mean RGB of the original and the de-identified video."""
        if not self._rgb:
            return np.zeros((0, 3)), np.zeros((0, 3))
        rgb = np.stack(self._rgb)
        return rgb[:, 0], rgb[:, 1]


def toolbox_hr(rgb: np.ndarray, fs: float, method: str) -> float | None:
    """Whole-video HR (bpm) of one ``(T, 3)`` trace by ``method``; None when it is too short
    or flat (the toolbox would crash or skip it)."""
    if len(rgb) < 2 or not np.isfinite(rgb).all() or (rgb <= 0).any():
        return None
    try:
        pulse = RPPG_METHODS[method](rgb, fs)
        if len(pulse) < 9:  # the toolbox skips windows shorter than filtfilt's pad
            return None
        return heart_rate(pulse, fs, TOOLBOX_BAND_HZ)
    except ValueError:  # a band above Nyquist, a trace too short for the filters
        return None


def toolbox_scores(traces: ToolboxTraces, fs: float, methods: Sequence[str] = TOOLBOX_METHODS) -> dict[str, Any]:
    """The JSON's ``pulse.toolbox``: per method :class:`ToolboxMethod`, then the first-frame
    boxes (``[x, y, w, h]``) and whether Haar found a face on each video's first frame."""
    rgb_o, rgb_d = traces.traces()
    found_o, found_d = traces.detected
    out: dict[str, Any] = {}
    for method in methods:
        hr_o, hr_d = toolbox_hr(rgb_o, fs, method), toolbox_hr(rgb_d, fs, method)
        out[method] = {
            "hr_orig": hr_o,
            "hr_deid": hr_d,
            "abs_diff": None if hr_o is None or hr_d is None else abs(hr_d - hr_o),
            "detected": found_d,
        }
    boxes = traces.boxes
    out["detected_orig"] = found_o
    out["detected_deid"] = found_d
    out["box_orig"] = None if boxes is None else boxes[0].tolist()
    out["box_deid"] = None if boxes is None else boxes[1].tolist()
    out["frames"] = len(rgb_o)
    return out


def haar_search_region(target: np.ndarray, height: int, width: int, grow: float = HAAR_REGION_GROW) -> tuple[int, int, int, int]:
    """Integer ``(x0, y0, x1, y1)`` of the frame region :class:`HaarRate` searches for a face
    matching ``target (4,)`` xyxy: the box grown ``grow`` times about its centre, clipped."""
    cx, cy = (target[0] + target[2]) / 2, (target[1] + target[3]) / 2
    half = grow * max(target[2] - target[0], target[3] - target[1]) / 2
    x0, y0 = max(int(np.floor(cx - half)), 0), max(int(np.floor(cy - half)), 0)
    x1, y1 = min(int(np.ceil(cx + half)), width), min(int(np.ceil(cy + half)), height)
    return x0, y0, x1, y1


def haar_found_at(grey: np.ndarray, target: np.ndarray, min_iou: float = DETECTION_MIN_IOU) -> bool:
    """Whether the Haar cascade finds a face overlapping ``target (4,)`` xyxy (IoU >= ``min_iou``).

    Searches only :func:`haar_search_region` and window sizes that could reach that IoU
    (a square of side ``s`` overlaps a ``w x h`` box with IoU >= 0.3 only for ``s`` between
    about 0.55 ``min(w, h)`` and 1.8 ``max(w, h)``): detections elsewhere cannot count, and
    the search costs a fraction of the whole frame's.
    """
    height, width = grey.shape[:2]
    x0, y0, x1, y1 = haar_search_region(target, height, width)
    if x1 - x0 < 24 or y1 - y0 < 24:  # smaller than the cascade's window
        return False
    box_w, box_h = float(target[2] - target[0]), float(target[3] - target[1])
    smallest = max(int(0.5 * min(box_w, box_h)), 24)
    largest = int(np.ceil(2.0 * max(box_w, box_h)))
    found = haar_faces(grey[y0:y1, x0:x1], minSize=(smallest, smallest), maxSize=(largest, largest))
    if not len(found):
        return False
    boxes = np.concatenate([found[:, :2] + [x0, y0], found[:, :2] + found[:, 2:] + [x0, y0]], axis=1)
    return detected_at(boxes.astype(np.float64), target, min_iou)


class HaarRate:
    """Per face track, the sampled frames where the Haar cascade finds its face, in both videos.

    A track's face counts as found when a Haar detection overlaps its face box
    (:func:`deidvid.measure.detection.face_box`) with IoU >= ``min_iou``, the rule of
    :class:`deidvid.measure.detection.DetectionRate`.
    """

    def __init__(self, min_iou: float = DETECTION_MIN_IOU) -> None:
        self.min_iou = min_iou
        self.counts: dict[int, DetectionCount] = {}

    def add(self, original: np.ndarray, deidentified: np.ndarray, faces: Mapping[int, np.ndarray]) -> None:
        """One sampled frame pair ``(H, W, 3)`` uint8 RGB and the tracks there: ``{track id: (68, 2)}``."""
        # The grey image OpenCV makes of the toolbox's RGB input (it reads it as BGR).
        greys = [cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in (original, deidentified)]
        for track_id, landmarks in faces.items():
            target = face_box(landmarks)
            found = [haar_found_at(grey, target, self.min_iou) for grey in greys]
            self.counts.setdefault(track_id, DetectionCount()).add(*found)

    def scores(self, track_id: int) -> HaarScores:
        """Haar detection rates of one track (None when never sampled)."""
        scores = self.counts.get(track_id, DetectionCount()).scores()
        return {"original": scores["rate_original"], "deidentified": scores["rate_deidentified"]}
