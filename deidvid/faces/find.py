"""Pass 1: find and track every face of a video (anonymise, verify, training clips, tools).

decode -> detect (every N frames) -> 68 landmarks -> track (landmarks follow the face
between detections). Only landmarks are kept, so memory does not grow with video
length. Observers (``deidvid.methods.FaceObserver``) see each original face frame as
it is found, for stages that need the whole track (the pulse transplant).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deidvid.faces.landmarks import LandmarkPredictor, follow_motion, to_grey
from deidvid.faces.roll import detect_any_roll, eye_roll, is_rolled
from deidvid.faces.track import FaceTrack, FaceTracker
from deidvid.io.ahead import close_items, read_ahead
from deidvid.io.decode import Frame, VideoInfo, iter_frames
from deidvid.io.yuv import UNCHANGED, Window, grey_from_luma
from deidvid.timing import StageTimer, timed_ahead

if TYPE_CHECKING:
    from deidvid.faces.detect import FaceDetector
    from deidvid.faces.types import Detection
    from deidvid.methods.base import FaceObserver

Progress = Callable[[str, int, int], None]  # (stage, frames done, frames total)


@dataclass(frozen=True)
class FaceFinding:
    """How pass 1 finds and tracks faces (shared by anonymise, verify and training clips)."""

    detect_every: int = 3
    detector_max_side: int = 640
    # Lower than RetinaFace's usual 0.6: a missed face leaks, a false one costs a blurred patch.
    score_threshold: float = 0.5
    max_gap: int = 15
    # Also detect in the frame turned by 90, 180 and 270 degrees (deidvid.faces.roll): a face
    # rolled past ~40 degrees is otherwise missed and left sharp. Costs 4 detector passes.
    any_roll: bool = True
    # The turned views run on every n-th detection frame, and on every one while a tracked
    # face is rolled; a rolled face that appears in between is tracked back to its first
    # frame (the backward window reaches the last turned detection).
    turned_every: int = 2

    @property
    def backward_frames(self) -> int:
        """How many frames before a new face's first detection are searched for it."""
        every = self.detect_every * (self.turned_every if self.any_roll else 1)
        return max(every - 1, 0)

    def detector(self, device: str = "cpu") -> FaceDetector:
        """The face detector these settings describe."""
        from deidvid.faces.detect import FaceDetector

        return FaceDetector(device=device, score_threshold=self.score_threshold, max_side=self.detector_max_side)


@dataclass
class Analysis:
    """What pass 1 found in a video.

    Attributes:
        frame_count: frames decoded.
        tracks: smoothed landmark tracks, ordered by ID.
        detection_frames: frames the detector ran on.
        detections: faces the detector returned, summed over those frames.
        times_s: ``(frame_count,)`` presentation time of every frame.
    """

    frame_count: int
    tracks: list[FaceTrack]
    detection_frames: int
    detections: int
    times_s: np.ndarray


def find_faces(
    path: Path,
    info: VideoInfo,
    finding: FaceFinding,
    detector: FaceDetector,
    landmarker: LandmarkPredictor,
    timer: StageTimer | None = None,
    progress: Progress | None = None,
    observers: Sequence[FaceObserver] = (),
) -> Analysis:
    """Pass 1: find and track every face; returns smoothed landmark tracks."""
    timer = timer or StageTimer()
    tracker = FaceTracker(max_gap=finding.max_gap)
    # Frames since the last detection, kept to track new faces backwards:
    # a face that appears between detections must not pass untouched.
    recent: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=finding.backward_frames)
    times: list[float] = []
    detection_frames = detections = 0
    previous_grey: np.ndarray | None = None  # the frame before, for the follower's motion estimate

    def found(track_id: int, index: int, rgb: np.ndarray, landmarks: np.ndarray) -> None:
        for observer in observers:
            observer.observe(track_id, index, rgb, landmarks)

    # Grey comes from the decoded luma where the stream allows (no RGB conversion); RGB is
    # needed only on detection frames, or on every frame when someone observes the faces.
    def rgb_part(index: int) -> Window | None:
        return None if observers or index % finding.detect_every == 0 else UNCHANGED

    # The detector runs a frame ahead, in its own thread, while this one fits and follows
    # landmarks: the two share the cores (waiting for it is booked to 'detect', and the
    # decoder's time with it).
    frames = read_ahead(iter_frames(path, info, keep_yuv=True, rgb_part=rgb_part))
    for frame, faces_found, turned in timed_ahead(read_ahead(_detect_ahead(frames, finding, detector), 2), timer, "detect"):
        times.append(frame.time_s)
        with timer("landmarks"):
            grey = grey_from_luma(frame.yuv) if frame.yuv is not None else to_grey(frame.rgb)
        if faces_found is not None:
            if finding.any_roll and not turned and _any_rolled(tracker.active(frame.index)):
                # A tracked face is rolled: search the turned views on every detection frame.
                with timer("detect"):
                    faces_found = detect_any_roll(detector, frame.rgb)
            detection_frames += 1
            detections += len(faces_found)
            with timer("landmarks"):
                faces = [landmarker.fit(grey, d) for d in faces_found]
                expected = _expected_landmarks(tracker, frame.index, previous_grey, grey) if faces else {}
                ids = tracker.update(frame.index, faces, expected)
            for track_id, lm in zip(ids, faces):
                with timer("observe"):
                    found(track_id, frame.index, frame.rgb, lm)
                if tracker.first_frame(track_id) == frame.index:
                    with timer("landmarks"):
                        back = _track_backwards(landmarker, lm, grey, recent)
                    for index, rgb, marks in back:
                        tracker.add(track_id, index, marks)
                        with timer("observe"):
                            found(track_id, index, rgb, marks)
        else:
            for track_id, last in tracker.active(frame.index):
                if tracker.last_frame(track_id) == frame.index - 1:
                    with timer("landmarks"):
                        followed = landmarker.follow(grey, last, previous_grey)
                    if followed is not None:
                        tracker.add(track_id, frame.index, followed)
                        with timer("observe"):
                            found(track_id, frame.index, frame.rgb, followed)
        if recent.maxlen:
            # RGB only when someone observes: the backward tracker itself needs grey.
            recent.append((frame.index, grey, frame.rgb if observers else grey))
        previous_grey = grey
        if progress:
            progress("analyse", len(times), info.frame_count)
    tracks = tracker.finish()
    times_s = np.asarray(times, dtype=np.float64)
    with timer("observe"):
        for observer in observers:
            observer.finish(tracks, times_s)
    return Analysis(len(times), tracks, detection_frames, detections, times_s)


def _detect_ahead(
    frames: Iterator[Frame], finding: FaceFinding, detector: FaceDetector
) -> Iterator[tuple[Frame, list[Detection] | None, bool]]:
    """``(frame, faces, turned)`` for each frame: the faces the detector finds on detection
    frames (None on the others) and whether the turned views were searched -- on every
    :attr:`FaceFinding.turned_every`-th detection frame (:func:`find_faces` adds them where
    a tracked face is rolled). Needs nothing from the tracker, so it can run ahead."""
    try:
        for frame in frames:
            if frame.index % finding.detect_every:
                yield frame, None, False
                continue
            turned = finding.any_roll and (frame.index // finding.detect_every) % finding.turned_every == 0
            yield frame, detect_any_roll(detector, frame.rgb) if turned else detector(frame.rgb), turned
    finally:
        close_items(frames)


def _expected_landmarks(
    tracker: FaceTracker, frame_index: int, previous_grey: np.ndarray | None, grey: np.ndarray
) -> dict[int, np.ndarray]:
    """Track ID -> where the landmarks of each track seen in the frame before are expected in
    this one (moved by :func:`follow_motion`), for matching this frame's detections to tracks."""
    if previous_grey is None:
        return {}
    return {
        track_id: follow_motion(previous_grey, grey, last)
        for track_id, last in tracker.active(frame_index)
        if tracker.last_frame(track_id) == frame_index - 1
    }


def _any_rolled(active: list[tuple[int, np.ndarray]]) -> bool:
    """Whether any of the open tracks' last landmarks ``(68, 2)`` show a rolled face."""
    return any(is_rolled(eye_roll(marks[36:42].mean(axis=0), marks[42:48].mean(axis=0))) for _, marks in active)


def _track_backwards(
    landmarker: LandmarkPredictor,
    landmarks: np.ndarray,
    grey: np.ndarray,
    recent: deque[tuple[int, np.ndarray, np.ndarray]],
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Follow a new face, found with ``landmarks`` in the grey frame ``grey``, into the frames
    since the last detection: ``(index, rgb, landmarks)``, newest first."""
    out = []
    for index, earlier, rgb in reversed(recent):
        followed = landmarker.follow(earlier, landmarks, grey)
        if followed is None:
            break
        out.append((index, rgb, followed))
        landmarks, grey = followed, earlier
    return out


def analyse_video(
    path: Path,
    finding: FaceFinding | None = None,
    device: str = "cpu",
    info: VideoInfo | None = None,
    timer: StageTimer | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """``find_faces`` with its own detector and landmark model (verify, training clips, tools)."""
    from deidvid.faces.landmarks import LandmarkPredictor
    from deidvid.io.decode import probe

    finding = finding or FaceFinding()
    info = info or probe(path)
    return find_faces(path, info, finding, finding.detector(device), LandmarkPredictor(), timer, progress)
