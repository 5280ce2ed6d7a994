"""Anonymise one video: the two passes, wired together.

Pass 1 (``deidvid.faces.find``): decode -> detect -> landmarks -> track; a method's
    observer sees every original face frame.
Pass 2 (``render``): decode -> crop -> method (clips) -> pulse transplant -> blend ->
    paste -> fallback cover -> encode. Frames wait in a queue until every clip covering
    them has run (at most one clip length), then are written.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deidvid.anonymise.clips import ClipAccumulator, FaceResult
from deidvid.anonymise.fallback import cover_region, lost_face_regions
from deidvid.anonymise.models import PipelineModels
from deidvid.anonymise.options import PULSE_FACE_QP_OFFSET, AnonymiseOptions
from deidvid.anonymise.paste import paste_face
from deidvid.anonymise.report import TrackReport, VideoReport
from deidvid.faces.find import Analysis, Progress, find_faces
from deidvid.faces.geometry import CropBox
from deidvid.io.decode import Frame, VideoInfo, probe
from deidvid.io.encode import VideoWriter, format_notes
from deidvid.measure.identity_check import IdentityCheck
from deidvid.methods.base import Method, PasteMode
from deidvid.timing import StageTimer, timed_frames

if TYPE_CHECKING:
    from deidvid.pulse.stage import PulseTransplant


def render(
    path: Path,
    out_path: Path,
    info: VideoInfo,
    analysis: Analysis,
    method: Method,
    opts: AnonymiseOptions,
    timer: StageTimer,
    lost: dict[int, list[np.ndarray]],
    progress: Progress | None = None,
    identity_check: IdentityCheck | None = None,
    pulse: PulseTransplant | None = None,
) -> int:
    """Pass 2: de-identify every tracked face and write the video. Returns frames written.

    ``lost``: frame -> face boxes to cover with the fallback (empty with ``--fallback none``).
    """
    qp_offset = -face_qp_offset(opts, pulse is not None)
    clips = ClipAccumulator(analysis.tracks, opts.clip_len, opts.overlap, method.paste_mode is PasteMode.RESIDUAL)
    started: set[int] = set()
    pending: deque[Frame] = deque()
    written = 0
    with VideoWriter(
        out_path, info, crf=opts.crf, lossless=opts.lossless, copy_audio=opts.copy_audio, keep_metadata=opts.keep_metadata,
        threads=opts.threads,
    ) as writer:

        def flush(decoded_up_to: int) -> None:
            nonlocal written
            while pending and clips.is_final(pending[0].index, decoded_up_to):
                frame = pending.popleft()
                with timer("paste"):
                    results = clips.take(frame.index)
                    rgb = composite(frame, results, method, lost.get(frame.index, []))
                with timer("encode"):
                    writer.write(frame, rgb, [face_region(r.box) for r in results], qp_offset)
                written += 1
                if progress:
                    progress("render", written, analysis.frame_count)

        for frame in timed_frames(path, info, timer):
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
                            identity_check.observe(clip.frames, output, clip.landmarks)
                    with timer("blend"):
                        clips.add_output(job, clip, output)
            pending.append(frame)
            flush(frame.index)
        flush(np.iinfo(np.int64).max)
    return written


def face_qp_offset(opts: AnonymiseOptions, pulse_transplanted: bool) -> int:
    """How many QP finer than the rest the faces are coded (``AnonymiseOptions.face_qp_offset``)."""
    if opts.face_qp_offset is not None:
        return opts.face_qp_offset
    return PULSE_FACE_QP_OFFSET if pulse_transplanted else 0


def face_region(box: CropBox) -> tuple[int, int, int, int]:
    """The pasted face's region ``(x, y, w, h)``: the crop box grown by an eighth on each side (the mask's feather)."""
    grow = box.side // 8
    return box.x0 - grow, box.y0 - grow, box.side + 2 * grow, box.side + 2 * grow


def composite(frame: Frame, results: list[FaceResult], method: Method, lost: list[np.ndarray]) -> np.ndarray:
    """Paste every face's result and cover lost faces in one frame; returns ``(H, W, 3)`` uint8."""
    if not results and not lost:
        return frame.rgb
    canvas = frame.rgb.astype(np.float32)
    for r in results:
        paste_face(canvas, r.track.at(frame.index), r.box, r.value, method.paste_mode, method.interpolation)
    for region in lost:
        cover_region(canvas, frame.rgb, region)
    method.finish_frame(frame.index, canvas)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


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
    with timer("model"):
        method = models.method
    keep_pulse = method.replaces_pixels if opts.keep_pulse is None else opts.keep_pulse
    pulse = None
    if keep_pulse:
        from deidvid.pulse.stage import PulseTransplant

        pulse = PulseTransplant()
    observer = method.observer()
    analysis = find_faces(
        src, info, opts.finding, models.detector, models.landmarker, timer, progress, [observer] if observer else []
    )
    if pulse is not None:
        pulse.prepare(analysis.tracks, analysis.times_s)
    hold = int(round(opts.fallback_seconds * float(info.fps or 25)))
    lost_all = lost_face_regions(analysis.tracks, analysis.frame_count, hold)
    lost = lost_all if opts.fallback == "blur" else {}
    check = None
    if opts.identity_check and analysis.tracks:
        with timer("identity_check"):
            check = IdentityCheck(models.recognisers, stride=opts.identity_stride)
    written = render(src, dst, info, analysis, method, opts, timer, lost, progress, check, pulse)
    face_frames = set()
    for t in analysis.tracks:
        face_frames.update(range(t.start, t.end))
    warnings = format_notes(info)
    if info.video_streams > 1:
        warnings.append(
            f"the input has {info.video_streams} video streams: only stream #{info.stream_index} was searched for "
            "faces, anonymised and written; the others were left out of the output"
        )
    if not analysis.tracks:
        where = f" in video stream #{info.stream_index}" if info.video_streams > 1 else ""
        warnings.append(f"no face found{where}: the output is the input re-encoded")
    if lost_all:
        action = "covered by blur" if opts.fallback == "blur" else "LEFT UNTOUCHED (--fallback none)"
        warnings.append(f"{len(lost_all)} frame(s) had a lost face {action}")
    warnings.extend(method.warnings())
    if pulse is not None:
        warnings.extend(pulse.warnings())
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
        tracks=[TrackReport.of(t, pulse.track_summary(t.track_id) if pulse else None) for t in analysis.tracks],
        frames_with_faces=len(face_frames | set(lost_all)),
        face_frames_processed=sum(len(t.landmarks) for t in analysis.tracks),
        face_frames_interpolated=sum(int((~t.observed).sum()) for t in analysis.tracks),
        frames_unprocessed=len(lost_all),
        fallback=opts.fallback,
        detection_frames=analysis.detection_frames,
        detections=analysis.detections,
        identity_check=check.summary() if check is not None else None,
        keep_pulse=keep_pulse,
        timings_s=timings,
        warnings=warnings,
    )
