"""Anonymise one video: the two passes, wired together, for each of its video streams in turn.

Pass 1 (``deidvid.faces.find``): decode -> detect -> landmarks -> track; a method's
    observer sees every original face frame.
Pass 2 (``render``): decode -> crop -> method (clips) -> pulse transplant -> blend ->
    paste -> fallback cover -> encode. Frames wait in a queue until every clip covering
    them has run (at most one clip length), then are written. The decoder runs a few
    frames ahead and the encoder behind, each in its own thread (``deidvid.io.ahead``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deidvid.anonymise.clips import ClipAccumulator, FaceResult
from deidvid.anonymise.fallback import cover_box, cover_region, lost_face_regions
from deidvid.anonymise.models import PipelineModels
from deidvid.anonymise.options import PULSE_FACE_QP_OFFSET, AnonymiseOptions
from deidvid.anonymise.paste import paste_face
from deidvid.anonymise.report import StreamReport, TrackReport, VideoReport
from deidvid.faces.find import Analysis, Progress, find_faces
from deidvid.faces.geometry import CropBox, frame_window
from deidvid.io.decode import DEEP_SCALE, Frame, VideoInfo, probe
from deidvid.io.encode import VideoWriter, format_notes
from deidvid.io.regions import Region
from deidvid.io.yuv import UNCHANGED, Window, grown
from deidvid.methods.base import Method, PasteMode
from deidvid.pulse.regions import skin_box
from deidvid.timing import StageTimer, timed_frames

if TYPE_CHECKING:
    from deidvid.faces.track import FaceTrack
    from deidvid.measure.identity_check import IdentityCheck
    from deidvid.pulse.stage import PulseTransplant


@dataclass
class StreamPass:
    """One video stream of the input, through pass 1 (and then pass 2: ``written``)."""

    video: int  # 0, 1, ...: the stream's place among the file's video streams (and the output's)
    info: VideoInfo
    analysis: Analysis
    lost: dict[int, list[np.ndarray]]  # frame -> boxes of lost faces (covered unless --fallback none)
    pulse: PulseTransplant | None
    written: int = 0
    method_warnings: list[str] = field(default_factory=list)
    method_tracks: dict[int, dict[str, Any] | None] = field(default_factory=dict)  # track id -> method's summary


def render(
    stream: StreamPass,
    writer: VideoWriter,
    method: Method,
    opts: AnonymiseOptions,
    timer: StageTimer,
    progress: Progress | None = None,
    identity_check: IdentityCheck | None = None,
) -> int:
    """Pass 2: de-identify every tracked face of ``stream`` and write it. Returns frames written."""
    info, analysis, pulse = stream.info, stream.analysis, stream.pulse
    lost = stream.lost if opts.fallback == "blur" else {}
    qp_offset = -face_qp_offset(opts, pulse is not None)
    clips = ClipAccumulator(analysis.tracks, opts.clip_len, opts.overlap, method.paste_mode is PasteMode.RESIDUAL)
    started: set[int] = set()
    # Frames wait here until every clip covering them has run (up to a clip length); when
    # the writer takes the rest of the picture from the source's YUV, a waiting frame
    # keeps only the part of its RGB picture that the faces touch (``keep_faces_part``).
    pending: deque[tuple[Frame, Window | None]] = deque()
    trim = writer.reads_window_only(stream.video) and not method.sees_whole_frames
    written = 0

    def flush(decoded_up_to: int) -> None:
        nonlocal written
        while pending and clips.is_final(pending[0][0].index, decoded_up_to):
            frame, kept = pending.popleft()
            if kept is not None:
                frame = with_whole_picture(frame, kept, info.height, info.width)
            with timer("paste"):
                results = clips.take(frame.index)
                rgb, changed = composite(frame, results, method, lost.get(frame.index, []))
            with timer("encode"):
                regions = [finer_region(r, frame.index, skin_only=pulse is not None) for r in results]
                writer.write(frame, rgb, regions, qp_offset, video=stream.video, changed=changed)
            written += 1
            if progress:
                progress("render", written, analysis.frame_count)

    # Where the writer passes the source's YUV through, the decoder converts only the part
    # of a frame that the faces touch to RGB (none of a frame without faces or covers).
    rgb_part = faces_part(analysis.tracks, lost, info.height, info.width) if trim else None
    frames = timed_frames(info.path, info, timer, deep=not opts.lossless, keep_yuv=not opts.lossless, rgb_part=rgb_part)
    for frame in frames:
        with timer("crop"):
            due = clips.add_frame(frame.index, frame.time_s, frame.rgb)
        if due:
            for job, _ in due:
                if job.track.track_id not in started:
                    started.add(job.track.track_id)
                    method.start_track(job.track)
            with timer("model"):
                # Clips of several faces that end on the same frame share forward passes.
                outputs = method.run([clip for _, clip in due])
            for (job, clip), output in zip(due, outputs):
                if pulse is not None:
                    with timer("pulse"):
                        output = pulse.apply(clip, output)
                if identity_check is not None:
                    with timer("identity_check"):
                        identity_check.observe(clip.frames, output, clip.landmarks, clip.track_id, clip.start)
                with timer("blend"):
                    clips.add_output(job, clip, output)
        kept = None
        if trim and frame.yuv is not None and frame.deep is None:
            frame, kept = keep_faces_part(frame, clips.boxes_at(frame.index) + [cover_box(r) for r in lost.get(frame.index, [])])
        pending.append((frame, kept))
        flush(frame.index)
    flush(np.iinfo(np.int64).max)
    return written


def face_qp_offset(opts: AnonymiseOptions, pulse_transplanted: bool) -> int:
    """How many QP finer than the rest the faces are coded (``AnonymiseOptions.face_qp_offset``)."""
    if opts.face_qp_offset is not None:
        return opts.face_qp_offset
    return PULSE_FACE_QP_OFFSET if pulse_transplanted else 0


def finer_region(result: FaceResult, index: int, skin_only: bool) -> Region:
    """The part of frame ``index`` coded finer for one face: its skin while the pulse transplant
    runs (the finer coding is there for the pulse, which lives on the skin), else the pasted face."""
    return skin_region(result.track.at(index), result.box) if skin_only else face_region(result.box)


def face_region(box: CropBox) -> Region:
    """The pasted face's region ``(x, y, w, h)``: the crop box grown by an eighth on each side (the mask's feather)."""
    grow = box.side // 8
    return box.x0 - grow, box.y0 - grow, box.side + 2 * grow, box.side + 2 * grow


def skin_region(landmarks: np.ndarray, box: CropBox) -> Region:
    """The region ``(x, y, w, h)`` that holds the pulse transplant's changes to a face: the box of
    its skin (:func:`~deidvid.pulse.regions.skin_box` of ``landmarks (68, 2)``, frame pixels), grown
    by two crop pixels (the crop's rasterisation and the paste's interpolation) and one frame pixel.

    Coding only this part finer keeps the pulse at a smaller cost than the whole pasted face:
    the 7 pulse videos, 30 s of blur: files 0.83x as large, POS r 10 s 0.943 against 0.944 (README).
    """
    margin = int(np.ceil(2 / box.scale)) + 1
    x0, y0, x1, y1 = skin_box(landmarks)
    left, top = int(np.floor(x0)) - margin, int(np.floor(y0)) - margin
    right, bottom = int(np.ceil(x1)) + margin + 1, int(np.ceil(y1)) + margin + 1
    return left, top, right - left, bottom - top


def composite(
    frame: Frame, results: list[FaceResult], method: Method, lost: list[np.ndarray]
) -> tuple[np.ndarray, Window]:
    """Paste every face's result and cover lost faces in one frame.

    Returns the picture, ``(H, W, 3)`` uint8, or uint16 when the frame has a deep picture
    (``Frame.deep``: kept in full outside the faces), and the window outside which it is the frame's own.
    """
    picture = frame.rgb if frame.deep is None else frame.deep
    if not results and not lost:
        return picture, UNCHANGED
    height, width = picture.shape[:2]
    # Only the part of the frame that the faces touch goes through float (a whole 720p
    # frame's conversions cost more than the pastes); a method's per-frame hook sees it all.
    whole_frame = method.sees_whole_frames
    boxes = [r.box for r in results] + [cover_box(region) for region in lost]
    rows, cols = (slice(0, height), slice(0, width)) if whole_frame else touched_area(boxes, height, width)
    origin = (cols.start, rows.start)
    # The canvas is on the 0..255 scale either way; a deep picture's finer levels stay as fractions.
    canvas = picture[rows, cols].astype(np.float32)
    if frame.deep is not None:
        canvas /= DEEP_SCALE
    for r in results:
        paste_face(canvas, r.track.at(frame.index), r.box, r.value, method.paste_mode, method.interpolation, origin)
    for region in lost:
        cover_region(canvas, frame.rgb, region, origin)
    if whole_frame:
        method.finish_frame(frame.index, canvas)
    out = picture.copy()
    if frame.deep is None:
        out[rows, cols] = np.clip(np.rint(canvas), 0, 255)
    else:
        out[rows, cols] = np.clip(np.rint(canvas * DEEP_SCALE), 0, 65535)
    return out, (rows, cols)


def faces_part(
    tracks: list[FaceTrack], lost: dict[int, list[np.ndarray]], height: int, width: int
) -> Callable[[int], Window]:
    """The part of a frame's picture (given its index) that pass 2 reads: the window of
    :func:`keep_faces_part` for the faces' crop boxes and the fallback covers there."""

    def part(index: int) -> Window:
        boxes = [t.box_at(index) for t in tracks if t.covers(index)]
        return faces_window(boxes + [cover_box(r) for r in lost.get(index, [])], height, width)

    return part


def faces_window(boxes: list[CropBox], height: int, width: int) -> Window:
    """What :func:`composite` and the YUV writer read of a ``height x width`` frame with
    these boxes: their :func:`touched_area`, grown by the writer's conversion margin."""
    return grown(touched_area(boxes, height, width), height, width) or UNCHANGED


def keep_faces_part(frame: Frame, boxes: list[CropBox]) -> tuple[Frame, Window]:
    """``frame`` holding only the part of its RGB picture that is read (:func:`faces_window`),
    and that part's window: ~10 % of a 720p picture for one face, instead of all of it."""
    height, width = frame.rgb.shape[:2]
    kept = faces_window(boxes, height, width)
    return replace(frame, rgb=frame.rgb[kept].copy()), kept


def with_whole_picture(frame: Frame, kept: Window, height: int, width: int) -> Frame:
    """``frame`` with a ``(height, width, 3)`` picture again: the kept part in place, black
    elsewhere (never read: the writer takes the rest from the source's YUV)."""
    picture = np.zeros((height, width, 3), np.uint8)
    picture[kept] = frame.rgb
    return replace(frame, rgb=picture)


def touched_area(boxes: list[CropBox], height: int, width: int) -> tuple[slice, slice]:
    """``(rows, cols)``: the smallest rectangle of a ``height x width`` frame holding every box's
    part inside it (an empty one at the origin when none is)."""
    windows = [w for w in (frame_window(b, height, width) for b in boxes) if w is not None]
    if not windows:
        return slice(0, 0), slice(0, 0)
    top, left = min(w[0].start for w in windows), min(w[1].start for w in windows)
    bottom, right = max(w[0].stop for w in windows), max(w[1].stop for w in windows)
    return slice(top, bottom), slice(left, right)


def find_stream_faces(
    video: int,
    info: VideoInfo,
    method: Method,
    models: PipelineModels,
    opts: AnonymiseOptions,
    keep_pulse: bool,
    timer: StageTimer,
    progress: Progress | None,
) -> StreamPass:
    """Pass 1 of one video stream: its faces, lost-face places and the pulse to carry."""
    method.start_video()
    observer = method.observer()
    analysis = find_faces(
        info.path, info, opts.finding, models.detector, models.landmarker, timer, progress, [observer] if observer else []
    )
    if method.crop_margin:
        analysis.tracks = [replace(t, crop_margin=method.crop_margin) for t in analysis.tracks]
    pulse = None
    if keep_pulse:
        from deidvid.pulse.stage import PulseTransplant

        pulse = PulseTransplant()
        pulse.prepare(analysis.tracks, analysis.times_s)
    hold = int(round(opts.fallback_seconds * float(info.fps or 25)))
    lost = lost_face_regions(analysis.tracks, analysis.frame_count, hold)
    return StreamPass(video, info, analysis, lost, pulse)


def stream_progress(progress: Progress | None, done_before: int, total: int) -> Progress | None:
    """``progress`` for one of several video streams: counts run on over the file's frames."""
    if progress is None or (done_before == 0 and total == 0):
        return progress
    return lambda stage, done, _: progress(stage, done_before + done, total)


def anonymise_video(
    src: Path,
    dst: Path,
    opts: AnonymiseOptions,
    progress: Progress | None = None,
    models: PipelineModels | None = None,
) -> VideoReport:
    """Anonymise ``src`` into ``dst`` (written atomically) and report what was done.

    Every video stream of ``src`` is processed in turn (pass 1, then pass 2) and written as
    a stream of ``dst``. ``models`` (built from ``opts``) may be shared by the videos of a batch.
    """
    timer = StageTimer()
    t0 = time.perf_counter()
    models = models or PipelineModels(opts)
    info = probe(src)
    infos = [info] + [probe(src, index) for index in info.video_stream_indices[1:]]
    with timer("model"):
        method = models.method
    if opts.identity_check:
        models.prefetch_recognisers()
    keep_pulse = method.keeps_pulse_by_default if opts.keep_pulse is None else opts.keep_pulse
    check: IdentityCheck | None = None
    streams: list[StreamPass] = []
    total = sum(i.frame_count for i in infos) if len(infos) > 1 else 0
    try:
        with VideoWriter(
            dst, info, crf=opts.crf, lossless=opts.lossless, copy_audio=opts.copy_audio,
            keep_metadata=opts.keep_metadata, threads=opts.threads, more_videos=infos[1:],
        ) as writer:
            for video, stream_info in enumerate(infos):
                shown = stream_progress(progress, sum(s.info.frame_count for s in streams), total)
                stream = find_stream_faces(video, stream_info, method, models, opts, keep_pulse, timer, shown)
                if opts.identity_check and stream.analysis.tracks and check is None:
                    with timer("identity_check"):
                        # Imports torch: here, once the prefetch thread has it loaded.
                        from deidvid.measure.identity_check import IdentityCheck

                        check = IdentityCheck(models.recognisers, stride=opts.identity_stride)
                stream.written = render(stream, writer, method, opts, timer, shown, check)
                stream.method_warnings = method.warnings()
                stream.method_tracks = {t.track_id: method.track_summary(t.track_id) for t in stream.analysis.tracks}
                streams.append(stream)
            if check is not None:
                with timer("identity_check"):
                    check.wait()  # inside the writer: a failed check leaves no output
    finally:
        if check is not None:
            check.close()
    timings = {k: round(v, 3) for k, v in timer.seconds.items()}
    timings["total"] = round(time.perf_counter() - t0, 3)
    return video_report(src, dst, opts, streams, keep_pulse, check, timings)


def stream_warnings(stream: StreamPass, opts: AnonymiseOptions, several: bool) -> list[str]:
    """The report's warnings about one video stream (prefixed with the stream when there are several)."""
    lines = format_notes(stream.info, opts.lossless)
    if not stream.analysis.tracks:
        lines.append("no face found: the output is the input re-encoded")
    if stream.lost:
        action = "covered by blur" if opts.fallback == "blur" else "LEFT UNTOUCHED (--fallback none)"
        lines.append(f"{len(stream.lost)} frame(s) had a lost face {action}")
    lines.extend(stream.method_warnings)
    if stream.pulse is not None:
        lines.extend(stream.pulse.warnings())
    prefix = f"video stream #{stream.info.stream_index}: " if several else ""
    return [prefix + line for line in lines]


def video_report(
    src: Path,
    dst: Path,
    opts: AnonymiseOptions,
    streams: list[StreamPass],
    keep_pulse: bool,
    check: IdentityCheck | None,
    timings: dict[str, float],
) -> VideoReport:
    """The report of a whole video: counts summed over its video streams, the picture's size and rate from the first."""
    first = streams[0].info
    several = len(streams) > 1
    warnings = [w for s in streams for w in stream_warnings(s, opts, several)]
    if first.subtitle_streams:
        warnings.append(f"{first.subtitle_streams} subtitle stream(s) not copied (the output holds video and audio only)")
    if check is not None:
        warnings.extend(check.warnings())
    tracks, frames_with_faces = [], 0
    for s in streams:
        pulse = s.pulse
        tracks += [
            TrackReport.of(
                t, pulse.track_summary(t.track_id) if pulse else None, video=s.video, method=s.method_tracks.get(t.track_id)
            )
            for t in s.analysis.tracks
        ]
        face_frames = set(s.lost)
        for t in s.analysis.tracks:
            face_frames.update(range(t.start, t.end))
        frames_with_faces += len(face_frames)
    return VideoReport(
        input=str(src),
        output=str(dst),
        method=opts.method,
        width=first.width,
        height=first.height,
        fps=float(first.fps),
        frames=sum(s.analysis.frame_count for s in streams),
        frames_written=sum(s.written for s in streams),
        faces=len(tracks),
        tracks=tracks,
        frames_with_faces=frames_with_faces,
        face_frames_processed=sum(len(t.landmarks) for s in streams for t in s.analysis.tracks),
        face_frames_interpolated=sum(int((~t.observed).sum()) for s in streams for t in s.analysis.tracks),
        frames_unprocessed=sum(len(s.lost) for s in streams),
        fallback=opts.fallback,
        detection_frames=sum(s.analysis.detection_frames for s in streams),
        detections=sum(s.analysis.detections for s in streams),
        identity_check=check.summary() if check is not None else None,
        keep_pulse=keep_pulse,
        timings_s=timings,
        warnings=warnings,
        video_streams=[StreamReport.of(s.info, s.analysis.frame_count, s.written, len(s.analysis.tracks), len(s.lost)) for s in streams],
    )
