"""``deidvid verify ORIGINAL DEIDENTIFIED``: did the pulse survive, and the identity not?

This module is the wiring; each measurement lives in :mod:`deidvid.measure` and is
testable alone with arrays. Two passes, memory independent of video length:

1. Faces are found and tracked in the *original* only (``deidvid.faces.find``: detector,
   dlib 68 landmarks, tracker, 5-frame smoothing). Every measurement then uses the
   original's landmarks for both videos, so only the pixels differ.
2. Both videos are decoded in lockstep and each frame pair goes to :class:`FrameMeasures`,
   which hands it to one accumulator per concern:

   - image quality (:mod:`deidvid.measure.quality`): PSNR of every frame, SSIM of every
     ``ssim_stride``-th, of the full frame and of each face's 128x128 crop;
   - pulse (:mod:`deidvid.measure.pulse`): per track, the mean skin RGB of both videos;
   - identity (:mod:`deidvid.measure.identity`): every ``identity_stride``-th face frame
     of both videos, embedded by each recogniser at the original's landmarks;
   - detection (:mod:`deidvid.measure.detection`): every ``detect_stride``-th frame, the
     face detector on both videos, and OpenCV's Haar cascade (rPPG-Toolbox's detector,
     :class:`~deidvid.measure.toolbox.HaarRate`);
   - the standard rPPG toolchain (:mod:`deidvid.measure.toolbox`): rPPG-Toolbox's
     first-frame Haar box, 72x72 mean RGB of every frame of both videos;
   - temporal consistency (:mod:`deidvid.measure.temporal`): frame-to-frame change in
     each face box;
   - expression (:mod:`deidvid.measure.expression`): every ``expression_stride``-th frame
     of each track, landmarks fitted to both videos at the original track's box.

Then per face track: the pulse comparison (with a contact PPG ``ppg``, against it too,
for the longest track), the identity scores (match rate at each recogniser's accuracy
threshold and at its FAR 1e-3 threshold, mean and median distance), the detection rates,
the expression signals' agreement and the temporal consistency; for the whole video the
toolbox's HR on both videos; with a gallery, closed-set top-1 accuracy and EER and rank-1 /
rank-5 re-identification with the original enrolled (:mod:`deidvid.measure.gallery`).
:mod:`deidvid.verify.report` shapes the report, :mod:`deidvid.verify.tables` prints it.
:func:`verify_videos_with_series` also returns what the report summarises
(:class:`~deidvid.verify.series.VerifySeries`: each track's pulse waveforms, identity distance
per scored frame and expression signals, and four frames of both videos), which
:mod:`deidvid.verify.html` draws.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deidvid.errors import BadInputError
from deidvid.faces.find import Progress
from deidvid.measure.detection import DETECTION_MIN_IOU, DetectionRate
from deidvid.measure.expression import ExpressionTraces
from deidvid.measure.gallery import (
    gallery_scores,
    gallery_templates,
    largest_face_landmarks,
)
from deidvid.measure.identity import IdentityScorer, PairBatcher
from deidvid.measure.pulse import (
    DEEP_METHODS,
    MIN_PULSE_SECONDS,
    FaceThumbnails,
    SkinTraces,
    TrackPulses,
    compare_pulse_waves,
    long_enough_for_pulse,
    track_pulses,
    track_seconds,
)
from deidvid.measure.quality import BACKGROUND_FACE_MARGIN, BackgroundAgreement, QualityAccumulator
from deidvid.measure.temporal import FrameChange, temporal_scores, track_frame_changes
from deidvid.measure.toolbox import HaarRate, ToolboxTraces, toolbox_scores
from deidvid.rppg.signals import is_uniform
from deidvid.verify.options import VerifyOptions
from deidvid.verify.report import (
    FaceSection,
    VerifyReport,
    gate_checks,
    gate_failures,
    report_settings,
    summarise,
)
from deidvid.verify.series import Snapshots, TrackSeries, VerifySeries
from deidvid.verify.tables import report_tables

if TYPE_CHECKING:
    from deidvid.faces.find import Analysis
    from deidvid.faces.track import FaceTrack
    from deidvid.rppg.ground_truth import GroundTruth
    from deidvid.timing import StageTimer

# What the CLI, the benchmarks and the tests import from here.
__all__ = [
    "Progress", "VerifyOptions", "VerifyReport", "VerifySeries", "check_compatible", "gate_checks", "gate_failures",
    "report_tables", "verify_videos", "verify_videos_with_series",
]


PPG_MIN_COVERAGE = 0.5  # of the primary face track's frames, for a contact PPG to be compared
FPS_TOLERANCE = 0.01  # relative difference of the average frame rates
LAST_FRAME_SLACK = 1.5  # frames: how much the last frame's duration may shift the average rate


def check_compatible(original_info: Any, deid_info: Any) -> None:
    """Raise BadInputError unless both videos have the same size, frame count and rate."""
    a, b = original_info, deid_info
    if (a.width, a.height) != (b.width, b.height):
        raise BadInputError(f"frame sizes differ: {a.width}x{a.height} (original) vs {b.width}x{b.height}")
    if a.frame_count != b.frame_count:
        raise BadInputError(
            f"frame counts differ: {a.frame_count} (original) vs {b.frame_count}; verify compares frame by frame"
        )
    fps_a, fps_b = float(a.fps), float(b.fps)
    # Frames are compared one by one (equal counts); the average rate only has to agree
    # roughly: a re-muxed copy may end on a different last-frame duration, which moves the
    # average of a short clip by up to one frame in frame_count (1.3 % for a 3 s GRID clip).
    tolerance = max(FPS_TOLERANCE, LAST_FRAME_SLACK / max(a.frame_count, 1))
    if abs(fps_a - fps_b) > tolerance * max(fps_a, fps_b):
        raise BadInputError(f"frame rates differ: {fps_a:.3f} (original) vs {fps_b:.3f} fps")


class FrameMeasures:
    """Pass 2: one accumulator per concern, fed frame pair by frame pair.

    Besides the accumulators, it keeps what the ``--html`` page plots
    (:mod:`deidvid.verify.series`): a few frames of both videos (``snapshots``) and the
    frame index of every pair the recognisers score (``identity_frames``, by track).

    Args:
        tracks: the original's face tracks.
        frame_count: frames of the original.
        identity: queues face pairs for the recognisers.
        detections: counts where the detector finds each track's face.
        options: the strides.
        timer: books each concern's time to its stage.
        landmarker: the landmark model of the expression signals (default: the project's
            dlib predictor; only loaded when ``options.expression``).
    """

    def __init__(
        self,
        tracks: list[FaceTrack],
        frame_count: int,
        identity: PairBatcher,
        detections: DetectionRate,
        options: VerifyOptions,
        timer: StageTimer,
        landmarker: Any = None,
    ) -> None:
        self.tracks = tracks
        self.identity = identity
        self.detections = detections
        self.options = options
        self.timer = timer
        self.frame_quality, self.face_quality = QualityAccumulator(), QualityAccumulator()
        self.background = BackgroundAgreement()
        self.skin = SkinTraces({t.track_id: len(t.landmarks) for t in tracks})
        self.deep_methods = available_deep_methods(options.methods)
        self.thumbnails = (
            FaceThumbnails({t.track_id: len(t.landmarks) for t in tracks}) if self.deep_methods else None
        )
        self.times = np.full(frame_count, np.nan)  # (frame_count,) presentation times (s)
        self.snapshots = Snapshots(frame_count)
        self.identity_frames: dict[int, list[int]] = {t.track_id: [] for t in tracks}
        lengths = {t.track_id: len(t.landmarks) for t in tracks}
        self.toolbox = ToolboxTraces() if options.toolbox else None
        self.haar = HaarRate(DETECTION_MIN_IOU) if options.toolbox else None
        self.change = FrameChange() if options.temporal else None
        self.expression = None
        if options.expression:
            from deidvid.measure.expression import MeshSignals

            self.expression = ExpressionTraces(lengths, landmarker, MeshSignals(options.device))
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # frame pair before this one
        self._previous_faces: dict[int, np.ndarray] = {}
        self._previous_index = -2

    def add(self, index: int, time_s: float, original: np.ndarray, deidentified: np.ndarray) -> None:
        """Frame ``index`` (shown at ``time_s``) of both videos, ``(H, W, 3)`` uint8."""
        from deidvid.faces.geometry import crop_box, cut_crop

        opts, timer = self.options, self.timer
        if index < self.times.size:
            self.times[index] = time_s
        self.snapshots.add(index, time_s, original, deidentified)
        with timer("quality"):
            self.frame_quality.update(original, deidentified, with_ssim=index % opts.ssim_stride == 0)
        if self.toolbox is not None:
            with timer("toolbox"):
                self.toolbox.add(original, deidentified)
        here = {t.track_id: t.at(index) for t in self.tracks if t.covers(index)}
        if index % opts.ssim_stride == 0:
            with timer("quality"):
                grown = [crop_box(marks, BACKGROUND_FACE_MARGIN) for marks in here.values()]
                boxes = [(b.x0, b.y0, b.x0 + b.side, b.y0 + b.side) for b in grown]
                self.background.update(original, deidentified, boxes)
        if self.change is not None:
            with timer("temporal"):
                previous = self._previous if index == self._previous_index + 1 else None
                track_frame_changes(self.change, previous, (original, deidentified), here, self._previous_faces)
                self._previous, self._previous_faces, self._previous_index = (original, deidentified), here, index
        greys = None
        for track in self.tracks:
            if track.track_id not in here:
                continue
            landmarks = here[track.track_id]
            offset = index - track.start
            with timer("skin"):
                self.skin.add(track.track_id, offset, original, deidentified, landmarks)
                if self.thumbnails is not None:
                    self.thumbnails.add(track.track_id, offset, original, deidentified, landmarks)
            with timer("quality"):
                box = crop_box(landmarks)
                self.face_quality.update(
                    cut_crop(original, box), cut_crop(deidentified, box), with_ssim=offset % opts.ssim_stride == 0
                )
            if offset % opts.identity_stride == 0:
                with timer("identity"):
                    self.identity.add(track.track_id, original, deidentified, landmarks)
                    self.identity_frames[track.track_id].append(index)
            if self.expression is not None and offset % opts.expression_stride == 0:
                with timer("expression"):
                    if greys is None:
                        from deidvid.faces.landmarks import to_grey

                        greys = to_grey(original), to_grey(deidentified)
                    self.expression.add(track.track_id, offset, *greys, landmarks, (original, deidentified))
        if here and index % opts.detect_stride == 0:
            with timer("detect"):
                self.detections.add(original, deidentified, here)
            if self.haar is not None:
                with timer("haar"):
                    self.haar.add(original, deidentified, here)

    def finish(self) -> None:
        """Score the face pairs still queued."""
        with self.timer("identity"):
            self.identity.flush()

    def quality(self) -> dict[str, dict[str, float | int]]:
        return {"frame": self.frame_quality.summary(), "face": self.face_quality.summary()}


def available_deep_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The requested face-crop rPPG networks that can run here (PhysNet needs the open-rppg wheel)."""
    from deidvid.rppg.physnet import physnet_available

    return tuple(m for m in methods if m in DEEP_METHODS and physnet_available())


def face_sections(
    tracks: list[FaceTrack],
    measures: FrameMeasures,
    scorer: IdentityScorer,
    fps: float,
    options: VerifyOptions,
    truth: GroundTruth | None,
    warnings: list[str],
) -> tuple[list[FaceSection], dict[int, TrackPulses]]:
    """Per face track: pulse comparison (or a warning that it is too short), identity, detection;
    and the pulse waveforms compared, by track ID (tracks too short for a pulse left out)."""
    from deidvid.rppg.ground_truth import ppg_at_frames

    primary_track = max(tracks, key=lambda t: len(t.landmarks))  # the one a contact PPG is compared with
    faces: list[FaceSection] = []
    waveforms: dict[int, TrackPulses] = {}
    for track in tracks:
        track_times = measures.times[track.start : track.end]
        pulse = None
        if long_enough_for_pulse(track_times, fps):
            ppg = None
            if truth is not None and track is primary_track:
                ppg = ppg_at_frames(truth, measures.times)[track.start : track.end]
                covered = float(np.isfinite(ppg).mean()) if len(ppg) else 0.0
                if covered < PPG_MIN_COVERAGE:
                    # The comparison is cut to the recorded span: the videos' own would be cut with it.
                    warnings.append(
                        f"the contact PPG covers {100 * covered:.0f} % of face track {track.track_id}: "
                        f"not compared (needs {100 * PPG_MIN_COVERAGE:.0f} %)"
                    )
                    ppg = None
            rgb_original, rgb_deid = measures.skin.traces(track.track_id)
            deep = {
                m: measures.thumbnails.waveforms(track.track_id, fps, m, options.device)
                for m in measures.deep_methods
                if measures.thumbnails is not None
            }
            waveforms[track.track_id] = track_pulses(rgb_original, rgb_deid, track_times, options.methods, ppg, deep)
            pulse = compare_pulse_waves(waveforms[track.track_id], options.windows_s, options.pulse_settings)
        else:
            warnings.append(
                f"face track {track.track_id} lasts {track_seconds(track_times):.1f} s: too short for pulse "
                f"analysis (needs {MIN_PULSE_SECONDS:g} s)"
            )
        detection: dict[str, Any] = dict(measures.detections.scores(track.track_id))
        if measures.haar is not None:
            detection["haar_rate"] = measures.haar.scores(track.track_id)
        temporal = None
        if measures.change is not None:
            rgb_original, rgb_deid = measures.skin.traces(track.track_id)
            temporal = temporal_scores(measures.change, track.track_id, rgb_original, rgb_deid, fps)
        faces.append({
            "track_id": track.track_id,
            "start_frame": track.start,
            "frames": len(track.landmarks),
            "interpolated_frames": int((~track.observed).sum()),
            "pulse": pulse,
            "identity": scorer.summary(track.track_id),
            "detection": detection,  # type: ignore[typeddict-item]
            "expression": measures.expression.scores(track.track_id) if measures.expression is not None else None,
            "temporal": temporal,
        })
    if truth is not None and len(tracks) > 1:
        warnings.append(f"contact PPG compared with face track {primary_track.track_id} (the longest)")
    return faces, waveforms


def collect_series(
    tracks: list[FaceTrack], measures: FrameMeasures, scorer: IdentityScorer, waveforms: dict[int, TrackPulses]
) -> VerifySeries:
    """The series behind the report (:class:`~deidvid.verify.series.VerifySeries`), per face track."""
    series = VerifySeries(snapshots=sorted(measures.snapshots.frames, key=lambda s: s.index))
    for track in tracks:
        tid = track.track_id
        original = deidentified = None
        signals: tuple[str, ...] = ()
        if measures.expression is not None:
            original, deidentified = measures.expression.series(tid)
            signals = measures.expression.signals
        series.tracks.append(TrackSeries(
            track_id=tid,
            start_frame=track.start,
            times=measures.times[track.start : track.end].copy(),
            pulse=waveforms.get(tid),
            identity_frames=np.asarray(measures.identity_frames[tid], dtype=np.int64),
            identity_distances={name: scorer.distances(name, tid) for name in scorer.recognisers},
            expression_signals=signals,
            expression_original=original,
            expression_deidentified=deidentified,
        ))
    return series


def verify_videos(
    original: str | Path,
    deidentified: str | Path,
    options: VerifyOptions | None = None,
    progress: Progress | None = None,
    analysis: Analysis | None = None,
) -> VerifyReport:
    """Compare a de-identified video with its original; see the module docstring.

    The report of :func:`verify_videos_with_series` (same arguments, same errors).
    """
    return verify_videos_with_series(original, deidentified, options, progress, analysis)[0]


def verify_videos_with_series(
    original: str | Path,
    deidentified: str | Path,
    options: VerifyOptions | None = None,
    progress: Progress | None = None,
    analysis: Analysis | None = None,
) -> tuple[VerifyReport, VerifySeries]:
    """Compare a de-identified video with its original; the report and the series behind it
    (pulse waveforms, identity distances, expression signals, a few frames: what
    ``--html`` plots).

    Args:
        original, deidentified: the two videos (same size, frame count and rate).
        options: what to measure (default: :class:`VerifyOptions` ()).
        progress: called with (stage, frames done, frames total) as frames are decoded.
        analysis: pass 1 of the original, when the caller has it already (several
            de-identified versions of one original); found here otherwise.

    Raises:
        BadInputError: the videos differ in size, length or rate; no face in the original.
    """
    options = options if options is not None else VerifyOptions()
    from deidvid.faces.find import analyse_video
    from deidvid.faces.landmarks import LandmarkPredictor
    from deidvid.io.decode import iter_frames, probe
    from deidvid.recognise import load_embedder, resolve_name
    from deidvid.rppg.ground_truth import read_ground_truth
    from deidvid.timing import StageTimer

    options.check()
    original, deidentified = Path(original), Path(deidentified)
    started = time.perf_counter()
    timer = StageTimer()
    warnings: list[str] = []
    info = probe(original)
    deid_info = probe(deidentified)
    check_compatible(info, deid_info)
    if info.video_streams > 1:
        warnings.append(
            f"the original has {info.video_streams} video streams: verify compares the first (#{info.stream_index}) only"
        )
    truth = read_ground_truth(options.ppg) if options.ppg is not None else None

    if analysis is None:
        analysis = analyse_video(original, options.finding, options.device, info, timer, progress)
    tracks = analysis.tracks
    if not tracks:
        raise BadInputError(f"{original}: no face found in the original video; nothing to verify")

    with timer("load models"):
        recognisers = {resolve_name(n): load_embedder(n, options.device) for n in options.recognisers}
        scorer = IdentityScorer(recognisers, keep_embeddings=options.gallery is not None)
        detector = options.finding.detector(options.device)
    for method in options.methods:
        if method in DEEP_METHODS and method not in available_deep_methods(options.methods):
            from deidvid.rppg.physnet import physnet_unavailable_reason

            warnings.append(f"rPPG method {method} skipped: {physnet_unavailable_reason()}")
    for name, threshold in scorer.thresholds.items():
        if threshold is None:
            warnings.append(f"recogniser '{name}' has no calibrated threshold: distances only")
        elif scorer.thresholds_far1e3[name] is None:
            warnings.append(f"recogniser '{name}' has no FAR 1e-3 threshold in the manifest: one match rate only")

    measures = FrameMeasures(
        tracks,
        analysis.frame_count,
        PairBatcher(scorer, options.batch_size),
        DetectionRate(detector.detect_batch, DETECTION_MIN_IOU),
        options,
        timer,
    )
    decoded = 0
    pairs = zip(iter_frames(original, info), iter_frames(deidentified, deid_info))
    while True:
        with timer("decode"):
            pair = next(pairs, None)
        if pair is None:
            break
        frame_o, frame_d = pair
        decoded += 1
        measures.add(frame_o.index, frame_o.time_s, frame_o.rgb, frame_d.rgb)
        if progress:
            progress("verify", decoded, info.frame_count)
    measures.finish()
    if decoded != analysis.frame_count:
        raise BadInputError(f"decoded {decoded} frame pairs but the original has {analysis.frame_count} frames")

    with timer("pulse"):
        faces, waveforms = face_sections(tracks, measures, scorer, float(info.fps), options, truth, warnings)
    pulse = None
    if measures.toolbox is not None:
        with timer("toolbox"):
            pulse = {"toolbox": toolbox_scores(measures.toolbox, float(info.fps))}
        if not pulse["toolbox"]["detected_orig"]:
            warnings.append("rPPG-Toolbox's Haar cascade finds no face on the original's first frame: "
                            "the toolbox would use the whole frame for both videos")

    gallery = None
    if options.gallery is not None:
        with timer("gallery"):
            find = largest_face_landmarks(detector, LandmarkPredictor())
            names, templates = gallery_templates(Path(options.gallery), scorer.recognisers, find, warnings)
            gallery = gallery_scores(names, templates, scorer, [t.track_id for t in tracks])

    quality = measures.quality()
    if measures.background.looks_unrelated():
        warnings.append(
            f"outside the faces the two videos differ everywhere (median PSNR {measures.background.median_psnr():.1f} dB): "
            "is the second really a de-identified copy of the first?"
        )
    times = measures.times
    report = VerifyReport(
        original=str(original),
        deidentified=str(deidentified),
        video={
            "width": info.width,
            "height": info.height,
            "fps": float(info.fps),
            "frames": analysis.frame_count,
            "variable_frame_rate": not is_uniform(times[np.isfinite(times)]),
            "face_tracks": len(tracks),
        },
        settings=report_settings(options, scorer.thresholds, DETECTION_MIN_IOU, scorer.thresholds_far1e3),
        quality=quality,
        faces=faces,
        pulse=pulse,
        gallery=gallery,
        summary=summarise(faces, quality, options, pulse),
        warnings=warnings,
    )
    timings = {k: round(v, 3) for k, v in timer.seconds.items()}
    timings["total"] = round(time.perf_counter() - started, 3)
    report.timings_s = timings
    return report, collect_series(tracks, measures, scorer, waveforms)
