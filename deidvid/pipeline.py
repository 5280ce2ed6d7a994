"""The anonymisation pipeline, one video at a time.

Pass 1 (``analyse``): decode -> detect (every N frames) -> landmarks -> track.
    Only landmarks are kept, so memory does not grow with video length.
Pass 2 (``render``): decode -> crop -> model (64-frame clips) -> blend -> paste -> encode.
    Frames wait in a queue until every clip covering them has run (at most one
    clip length), then are written.

Faces seen but not processed (a track lost before the face was found again) are
covered by a fallback blur for a while unless the user turns that off; both are
counted in the report.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from deidvid.anonymisers import Anonymiser, GaussianBlur, build_anonymiser
from deidvid.blend import crossfade_weights, plan_clips
from deidvid.crop import CropBox, crop_box, cut_crop, face_mask
from deidvid.decode import Frame, VideoInfo, iter_frames, probe
from deidvid.encode import VideoWriter
from deidvid.identity_check import IdentityCheck
from deidvid.landmarks import LandmarkPredictor, dlib_box_from_detection, to_grey
from deidvid.paste import paste_replace, paste_residual
from deidvid.track import FaceTrack, FaceTracker, landmark_box

Progress = Callable[[str, int, int], None]  # (stage, frames done, frames total)


@dataclass(frozen=True)
class FaceFinding:
    """How pass 1 finds and tracks faces (shared by anonymise, verify and training clips)."""

    detect_every: int = 3
    detector_max_side: int = 640
    # Lower than RetinaFace's usual 0.6: a missed face leaks, a false one costs a blurred patch.
    score_threshold: float = 0.5
    max_gap: int = 15


@dataclass
class AnonymiseOptions:
    method: str = "blur"
    device: str = "cpu"
    strength: float | None = None  # residual AE: perturbation RMS in [0, 1] units (None: as trained)
    finding: FaceFinding = field(default_factory=FaceFinding)
    clip_len: int = 64
    overlap: int = 16
    fallback: str = "blur"  # "blur" | "none"
    fallback_seconds: float = 2.0
    crf: int = 16
    lossless: bool = False
    copy_audio: bool = True
    identity_check: bool = True  # score the model's output crops with the recognisers
    identity_stride: int = 8  # every n-th frame of each clip


class PipelineModels:
    """The models a run needs, each loaded on first use and then kept, so a batch of
    videos loads them once. All follow ``opts`` (method, strength, device, finding)."""

    def __init__(self, opts: AnonymiseOptions) -> None:
        self.opts = opts

    @cached_property
    def detector(self) -> "FaceDetector":  # noqa: F821
        from deidvid.detect import FaceDetector

        finding = self.opts.finding
        return FaceDetector(
            device=self.opts.device, score_threshold=finding.score_threshold, max_side=finding.detector_max_side
        )

    @cached_property
    def landmarker(self) -> LandmarkPredictor:
        return LandmarkPredictor()

    @cached_property
    def anonymiser(self) -> Anonymiser:
        return build_anonymiser(self.opts.method, self.opts.device, self.opts.strength)

    @cached_property
    def recognisers(self) -> dict[str, "Recogniser"]:  # noqa: F821
        """The identity check's recognisers (all bundled ones)."""
        from deidvid.recognise import ALL_RECOGNISERS, load_recogniser

        return {name: load_recogniser(name, self.opts.device) for name in ALL_RECOGNISERS}


@dataclass
class StageTimer:
    """Wall time spent per pipeline stage, in seconds."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0


def timed_frames(path: Path, info: VideoInfo, timer: StageTimer) -> Iterator[Frame]:
    """``iter_frames`` with the decoding time booked to the 'decode' stage."""
    frames = iter_frames(path, info)
    while True:
        with timer("decode"):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


@dataclass
class Analysis:
    """What pass 1 found in a video."""

    frame_count: int
    tracks: list[FaceTrack]
    detection_frames: int
    detections: int
    # frame -> boxes (4,) xyxy where a face was seen but is not covered by a track
    unprocessed: dict[int, list[np.ndarray]]


def analyse(
    path: Path,
    info: VideoInfo,
    opts: AnonymiseOptions,
    timer: StageTimer,
    progress: Progress | None = None,
    models: PipelineModels | None = None,
) -> Analysis:
    """Pass 1: find and track every face; returns smoothed landmark tracks."""
    models = models or PipelineModels(opts)
    finding = opts.finding
    detector, landmarker = models.detector, models.landmarker
    tracker = FaceTracker(max_gap=finding.max_gap)
    # Frames since the last detection, kept (grey) to track new faces backwards:
    # a face that appears between detections must not pass untouched.
    recent: deque[tuple[int, np.ndarray]] = deque(maxlen=max(finding.detect_every - 1, 0))
    detection_frames = detections = frame_count = 0
    for frame in timed_frames(path, info, timer):
        frame_count += 1
        with timer("landmarks"):
            grey = to_grey(frame.rgb)
        if frame.index % finding.detect_every == 0:
            with timer("detect"):
                found = detector(frame.rgb)
            detection_frames += 1
            detections += len(found)
            with timer("landmarks"):
                faces = [landmarker(grey, dlib_box_from_detection(d)) for d in found]
                ids = tracker.update(frame.index, faces)
                for track_id, lm in zip(ids, faces):
                    if tracker.first_frame(track_id) == frame.index:
                        _track_backwards(tracker, landmarker, track_id, lm, recent)
        else:
            with timer("landmarks"):
                for track_id, last in tracker.active(frame.index):
                    if tracker.last_frame(track_id) == frame.index - 1:
                        followed = landmarker.follow(grey, last)
                        if followed is not None:
                            tracker.add(track_id, frame.index, followed)
        recent.append((frame.index, grey))
        if progress:
            progress("analyse", frame_count, info.frame_count)
    tracks = tracker.finish()
    unprocessed = _lost_face_regions(tracks, frame_count, opts, info)
    return Analysis(frame_count, tracks, detection_frames, detections, unprocessed)


def _track_backwards(
    tracker: FaceTracker,
    landmarker: LandmarkPredictor,
    track_id: int,
    landmarks: np.ndarray,
    recent: deque[tuple[int, np.ndarray]],
) -> None:
    """Extend a new track into the frames since the last detection."""
    for index, grey in reversed(recent):
        followed = landmarker.follow(grey, landmarks)
        if followed is None:
            return
        tracker.add(track_id, index, followed)
        landmarks = followed


def _lost_face_regions(
    tracks: list[FaceTrack], frame_count: int, opts: AnonymiseOptions, info: VideoInfo
) -> dict[int, list[np.ndarray]]:
    """Regions to cover after a track was lost mid-video (fail closed).

    The last known face box is held for ``fallback_seconds`` or until another
    track covers that place again.
    """
    hold = int(round(opts.fallback_seconds * float(info.fps or 25)))
    regions: dict[int, list[np.ndarray]] = defaultdict(list)
    for track in tracks:
        if track.end >= frame_count:
            continue
        box = landmark_box(track.landmarks[-1])
        for f in range(track.end, min(track.end + hold, frame_count)):
            if any(_overlaps(box, landmark_box(o.at(f))) for o in tracks if o.covers(f)):
                break
            regions[f].append(box)
    return dict(regions)


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


@dataclass
class _Job:
    """One clip of one track to run through the anonymiser."""

    track: FaceTrack
    start: int  # global frame indices, [start, end)
    end: int
    weights: np.ndarray


class _ClipScheduler:
    """Collects crops as frames arrive, runs each clip once complete, blends results."""

    def __init__(
        self,
        tracks: list[FaceTrack],
        anonymiser: Anonymiser,
        opts: AnonymiseOptions,
        identity_check: IdentityCheck | None = None,
    ):
        self.anonymiser = anonymiser
        self.identity_check = identity_check
        self.jobs_ending: dict[int, list[_Job]] = defaultdict(list)
        self.ready_at: dict[int, int] = {}  # frame -> frame after which its result is final
        for track in tracks:
            n = len(track.landmarks)
            for s, e in plan_clips(n, opts.clip_len, opts.overlap):
                job = _Job(track, track.start + s, track.start + e, crossfade_weights((s, e), n, opts.overlap))
                self.jobs_ending[job.end - 1].append(job)
                for f in range(job.start, job.end):
                    self.ready_at[f] = max(self.ready_at.get(f, -1), job.end - 1)
        self.boxes: dict[tuple[int, int], CropBox] = {}  # (track, frame) -> crop box
        self.crops: dict[tuple[int, int], np.ndarray] = {}  # (track, frame) -> (128,128,3) f32
        self.points: dict[tuple[int, int], np.ndarray] = {}  # (track, frame) -> (68, 2) crop pixels
        self.sums: dict[tuple[int, int], np.ndarray] = {}
        self.wsums: dict[tuple[int, int], float] = defaultdict(float)
        self.tracks = tracks

    def add_frame(self, frame: Frame, timer: StageTimer) -> None:
        with timer("crop"):
            for track in self.tracks:
                if track.covers(frame.index):
                    box = crop_box(track.at(frame.index))
                    key = (track.track_id, frame.index)
                    self.boxes[key] = box
                    self.crops[key] = cut_crop(frame.rgb, box).astype(np.float32) / 255.0
                    self.points[key] = box.to_crop(track.at(frame.index))
        jobs = self.jobs_ending.pop(frame.index, [])
        if not jobs:
            return
        keys = [[(job.track.track_id, f) for f in range(job.start, job.end)] for job in jobs]
        clips = [np.stack([self.crops[k] for k in clip_keys]) for clip_keys in keys]
        points = [np.stack([self.points[k] for k in clip_keys]) for clip_keys in keys]
        with timer("model"):
            # Clips of several faces that end on the same frame share forward passes.
            run_batch = getattr(self.anonymiser, "run_batch", None)
            outs = run_batch(clips, points) if run_batch else [self.anonymiser(c, p) for c, p in zip(clips, points)]
        for job, clip_keys, clip, clip_points, out in zip(jobs, keys, clips, points, outs):
            if self.identity_check is not None:
                with timer("identity_check"):
                    self.identity_check.observe(clip, out, clip_points)
            with timer("blend"):
                value = out - clip if self.anonymiser.residual else out
                for i, k in enumerate(clip_keys):
                    w = float(job.weights[i])
                    self.sums[k] = self.sums.get(k, 0.0) + w * value[i]
                    self.wsums[k] += w

    def is_final(self, frame_index: int, decoded_up_to: int) -> bool:
        return self.ready_at.get(frame_index, -1) <= decoded_up_to

    def take(self, frame_index: int) -> list[tuple[FaceTrack, CropBox, np.ndarray]]:
        """Blended results ``(track, box, (128,128,3) float in [0,1] units)`` for a final frame."""
        results = []
        for track in self.tracks:
            key = (track.track_id, frame_index)
            if key in self.sums:
                results.append((track, self.boxes.pop(key), self.sums.pop(key) / self.wsums.pop(key)))
            self.crops.pop(key, None)
            self.points.pop(key, None)
        return results


def render(
    path: Path,
    out_path: Path,
    info: VideoInfo,
    analysis: Analysis,
    anonymiser: Anonymiser,
    opts: AnonymiseOptions,
    timer: StageTimer,
    progress: Progress | None = None,
    identity_check: IdentityCheck | None = None,
) -> int:
    """Pass 2: anonymise every tracked face and write the video. Returns frames written."""
    scheduler = _ClipScheduler(analysis.tracks, anonymiser, opts, identity_check)
    fallback = GaussianBlur() if opts.fallback == "blur" else None
    pending: deque[Frame] = deque()
    written = 0
    with VideoWriter(
        out_path, info, crf=opts.crf, lossless=opts.lossless, copy_audio=opts.copy_audio
    ) as writer:

        def flush(decoded_up_to: int) -> None:
            nonlocal written
            while pending and scheduler.is_final(pending[0].index, decoded_up_to):
                frame = pending.popleft()
                with timer("paste"):
                    rgb = _composite(frame, scheduler.take(frame.index), anonymiser, analysis, fallback)
                with timer("encode"):
                    writer.write(frame, rgb)
                written += 1
                if progress:
                    progress("render", written, analysis.frame_count)

        for frame in timed_frames(path, info, timer):
            scheduler.add_frame(frame, timer)
            pending.append(frame)
            flush(frame.index)
        flush(np.iinfo(np.int64).max)
    return written


def _composite(
    frame: Frame,
    results: list[tuple[FaceTrack, CropBox, np.ndarray]],
    anonymiser: Anonymiser,
    analysis: Analysis,
    fallback: GaussianBlur | None,
) -> np.ndarray:
    """Paste every face's result into one frame; returns ``(H, W, 3)`` uint8."""
    lost = analysis.unprocessed.get(frame.index, []) if fallback else []
    if not results and not lost:
        return frame.rgb
    canvas = frame.rgb.astype(np.float32)
    for track, box, value in results:
        mask = face_mask(track.at(frame.index), box)
        if anonymiser.residual:
            paste_residual(canvas, box, value * 255.0, mask)
        else:
            paste_replace(canvas, box, value * 255.0, mask, anonymiser.interpolation)
    for region in lost:
        _blur_region(canvas, frame.rgb, region, fallback)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def _blur_region(canvas: np.ndarray, rgb: np.ndarray, region: np.ndarray, blur: GaussianBlur) -> None:
    """Cover a face box with the blur baseline through a feathered ellipse."""
    centre = (region[:2] + region[2:]) / 2
    side = int(round(float(max(region[2:] - region[:2])) * 1.4))
    box = CropBox(int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2)), max(side, 4))
    crop = cut_crop(rgb, box).astype(np.float32) / 255.0
    blurred = blur(crop[None])[0]
    paste_replace(canvas, box, blurred * 255.0, _ellipse_mask(crop.shape[0]))


def _ellipse_mask(size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot((xx - size / 2 + 0.5) / (size * 0.42), (yy - size / 2 + 0.5) / (size * 0.42))
    return np.clip((1.15 - r) / 0.3, 0.0, 1.0).astype(np.float32)


@dataclass
class VideoReport:
    """Everything the JSON report says about one anonymised video."""

    input: str
    output: str
    method: str
    width: int
    height: int
    fps: float
    frames: int
    frames_written: int
    faces: int
    tracks: list[dict]
    frames_with_faces: int
    face_frames_processed: int
    face_frames_interpolated: int
    frames_unprocessed: int
    fallback: str
    detection_frames: int
    detections: int
    # Per recogniser: match rate of output vs input crops (model output, before paste/encode).
    identity_check: dict[str, dict] | None
    timings_s: dict[str, float]
    warnings: list[str]


def anonymise_video(
    src: Path,
    dst: Path,
    opts: AnonymiseOptions,
    progress: Progress | None = None,
    models: PipelineModels | None = None,
) -> VideoReport:
    """Anonymise ``src`` into ``dst`` (written atomically) and report what was done.

    ``models`` (built from ``opts``) may be shared by the videos of a batch.
    """
    timer = StageTimer()
    t0 = time.perf_counter()
    models = models or PipelineModels(opts)
    info = probe(src)
    analysis = analyse(src, info, opts, timer, progress, models)
    with timer("model"):
        anonymiser = models.anonymiser
    check = None
    if opts.identity_check and analysis.tracks:
        with timer("identity_check"):
            check = IdentityCheck(models.recognisers, stride=opts.identity_stride)
    written = render(src, dst, info, analysis, anonymiser, opts, timer, progress, check)
    face_frames = set()
    for t in analysis.tracks:
        face_frames.update(range(t.start, t.end))
    warnings = []
    if not analysis.tracks:
        warnings.append("no face found: the output is the input re-encoded")
    if analysis.unprocessed:
        action = "covered by blur" if opts.fallback == "blur" else "LEFT UNTOUCHED (--fallback none)"
        warnings.append(f"{len(analysis.unprocessed)} frame(s) had a lost face {action}")
    if check is not None:
        warnings.extend(check.warnings())
    timings = {k: round(v, 3) for k, v in timer.seconds.items()}
    timings["total"] = round(time.perf_counter() - t0, 3)
    return VideoReport(
        input=str(src),
        output=str(dst),
        method=opts.method,
        width=info.width,
        height=info.height,
        fps=float(info.fps),
        frames=analysis.frame_count,
        frames_written=written,
        faces=len(analysis.tracks),
        tracks=[
            {
                "id": t.track_id,
                "start_frame": t.start,
                "end_frame": t.end - 1,
                "frames": len(t.landmarks),
                "interpolated_frames": int((~t.observed).sum()),
            }
            for t in analysis.tracks
        ],
        frames_with_faces=len(face_frames | set(analysis.unprocessed)),
        face_frames_processed=sum(len(t.landmarks) for t in analysis.tracks),
        face_frames_interpolated=sum(int((~t.observed).sum()) for t in analysis.tracks),
        frames_unprocessed=len(analysis.unprocessed),
        fallback=opts.fallback,
        detection_frames=analysis.detection_frames,
        detections=analysis.detections,
        identity_check=check.summary() if check is not None else None,
        timings_s=timings,
        warnings=warnings,
    )
