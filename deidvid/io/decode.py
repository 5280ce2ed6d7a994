"""Streaming video decoding with PyAV: probe a file, then iterate RGB frames one by one.

Frames come out in display orientation (the container's rotation is applied) as
C-contiguous ``(H, W, 3)`` uint8 RGB. Memory does not depend on the video's length:
one decoded frame (plus the decoder's own small look-ahead) is alive at a time.

The YUV -> RGB conversion uses the matrix and range the stream is tagged with
(BT.601 when untagged) and swscale's accurate-rounding, full-chroma path: the
default fast path darkens flat colours by 1-2/255, the size of the pulse signal.
:mod:`deidvid.io.encode` uses the same matrix and range in the other direction, so
pixels that deidvid does not change come back as they were, up to compression noise.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from deidvid.errors import BadInputError
from deidvid.io.turn import turned
from deidvid.io.yuv import Window, converts_windows, rgb_window

# Accurate rounding + full chroma interpolation: exact on flat colours (see module doc).
RGB_INTERPOLATION = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT

# A stream whose decoded frames end this much before its declared end is truncated.
_TRUNCATION_TOLERANCE_S = 0.5
_TRUNCATION_TOLERANCE_FRAMES = 3

# 16-bit RGB (``Frame.deep``) levels per 8-bit level: 65535 / 255.
DEEP_SCALE = 257

# Containers that store no presentation times, only a constant frame rate: FFmpeg's pts
# there count packets in decode order (plus a guessed delay), so frames that B-frames
# reorder come out with times like 1 4 3 5 2 ... (1/fps units). Their frames are timed
# by index instead, as players do.
_NO_PTS_FORMATS = frozenset({"avi"})


@dataclass(frozen=True)
class VideoInfo:
    """What deidvid needs to know about an input video (from :func:`probe`).

    ``width``/``height`` are in display orientation (after rotation).
    ``frame_count`` is exact for containers with a sample index (mp4/mov: index entries
    minus the edit list's discarded samples; ``frame_count_indexed``) and otherwise the
    number of video packets found by demuxing the file once (no decoding), which equals
    the frame count for every common codec.
    ``fps`` is the average frame rate (frames / duration for variable frame rate).
    ``rotation`` is the display-matrix rotation in degrees counter-clockwise, rounded to
    a multiple of 90 and taken modulo 360 (mirroring display matrices are not supported).
    ``metadata`` is the container-level metadata.
    ``has_pts`` is False for containers without presentation times (AVI): their frames
    are timed ``start_s + index / fps`` and get no ``Frame.pts``.
    """

    path: Path
    width: int
    height: int
    frame_count: int
    fps: Fraction
    time_base: Fraction
    duration_s: float
    rotation: int
    has_audio: bool
    codec: str
    metadata: dict[str, str]
    # Details the reader and writer need; defaults describe a plain BT.601 stream.
    stream_index: int = 0
    start_s: float = 0.0  # presentation time of the first frame
    declared_duration_s: float | None = None  # the container's own figure for the video stream
    frame_count_indexed: bool = False  # frame_count read from a sample index, not by demuxing
    pix_fmt: str = "yuv420p"
    # Every moving-picture video stream of the file (cover art not counted); this info describes ``stream_index``.
    video_stream_indices: tuple[int, ...] = ()
    colorspace: int = 2  # AVColorSpace (2 = unspecified)
    color_range: int = 0  # AVColorRange (0 = unspecified, 1 = limited, 2 = full)
    color_primaries: int = 2  # AVColorPrimaries (2 = unspecified)
    color_trc: int = 2  # AVColorTransferCharacteristic (2 = unspecified)
    audio_codecs: tuple[str, ...] = ()
    has_pts: bool = True  # the container stores presentation times (see _NO_PTS_FORMATS)
    # Shape of a stored pixel (width / height), None when square or unstated; anamorphic
    # video (DV, some broadcast) is shown stretched by it.
    sample_aspect_ratio: Fraction | None = None
    subtitle_streams: int = 0  # not copied to the output (they may name people too)

    @property
    def video_streams(self) -> int:
        """How many moving-picture video streams the file has (at least this one)."""
        return max(len(self.video_stream_indices), 1)

    @property
    def stored_size(self) -> tuple[int, int]:
        """(width, height) of the frames as stored, before rotation."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)

    @property
    def passes_yuv(self) -> bool:
        """Whether the frames can go to the encoder as their own YUV outside the faces
        (:func:`deidvid.io.yuv.converts_windows`)."""
        return converts_windows(self.pix_fmt, self.width, self.height, self.rotation, self.colorspace, self.color_range)


# The ``rgb`` of a frame that was not converted (``iter_frames(rgb_part=...)``): no pixels.
NO_PICTURE = np.zeros((0, 0, 3), np.uint8)
NO_PICTURE.setflags(write=False)


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    ``pts`` is in ``VideoInfo.time_base`` units (None when the container has none,
    see ``VideoInfo.has_pts``);
    ``time_s`` is the presentation time in seconds on the stream's own timeline
    (usually 0 for the first frame; ``VideoInfo.start_s`` otherwise).
    ``rgb`` is (H, W, 3) uint8, C-contiguous, display orientation (or :data:`NO_PICTURE` when
    the caller said it needs none, see :func:`iter_frames`).
    ``deep`` is the same picture as (H, W, 3) uint16 RGB (0..65535, i.e. ``DEEP_SCALE``
    times the 8-bit scale) for a source of more than 8 bits per component when
    :func:`iter_frames` was asked for it (the encoder keeps its finer levels); else None.
    ``yuv`` is the source picture as decoded, packed ``(3H/2, W)`` yuv420p
    (:mod:`deidvid.io.yuv`), when :func:`iter_frames` was asked to keep it and the stream
    can pass through as YUV outside the faces (:func:`deidvid.io.yuv.converts_windows`); else None.
    """

    index: int
    pts: int | None
    time_s: float
    rgb: np.ndarray
    deep: np.ndarray | None = None
    yuv: np.ndarray | None = None


def check_input_file(path: Path) -> None:
    """Raise a one-line BadInputError unless ``path`` is a non-empty regular file we may read.

    FIFOs, devices and sockets are refused before anything opens them: opening a FIFO
    blocks until a writer appears, a device never ends, and every video is read twice
    (pass 1 and pass 2), which a stream cannot give.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise BadInputError(f"{path}: {os_reason(err)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"{path}: is a folder, not a video file")
    kind = _special_kind(st.st_mode)
    if kind:
        raise BadInputError(f"{path}: is {kind}, not a regular file (deidvid reads every video twice)")
    if st.st_size == 0:
        raise BadInputError(f"{path}: is an empty file")
    if not os.access(path, os.R_OK):
        raise BadInputError(f"{path}: permission denied")


def _special_kind(mode: int) -> str | None:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return None


def os_reason(err: OSError) -> str:
    """A short reason for a failed stat/open, worded for a path the user gave."""
    reasons = {
        errno.ENOENT: "no such file",
        errno.ENOTDIR: "no such file (a part of the path is not a folder)",
        errno.ELOOP: "is a symbolic link loop",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENAMETOOLONG: "file name too long",
    }
    return reasons.get(err.errno, err.strerror or type(err).__name__)


def open_input(path: Path) -> av.container.InputContainer:
    """Open ``path`` for reading; every failure becomes a one-line BadInputError."""
    check_input_file(path)
    try:
        return av.open(str(path), "r")
    except PermissionError:
        raise BadInputError(f"{path}: permission denied") from None
    except av.error.FFmpegError as err:
        raise BadInputError(f"{path}: not a video file, or its header is damaged ({_reason(err)})") from None
    except OSError as err:
        raise BadInputError(f"{path}: {os_reason(err)}") from None


def _reason(err: BaseException) -> str:
    """A short reason without the path FFmpeg repeats in its messages."""
    message = getattr(err, "strerror", None) or str(err)
    return str(message).split(":")[0].strip().rstrip(".") or type(err).__name__


def _moving_video_streams(container: av.container.InputContainer) -> list[av.video.stream.VideoStream]:
    """The video streams that are moving pictures (cover art in audio files does not count)."""
    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def _video_stream(
    container: av.container.InputContainer, path: Path, stream_index: int | None = None
) -> av.video.stream.VideoStream:
    """Video stream ``stream_index`` (container numbering), or the first moving one when None."""
    moving = _moving_video_streams(container)
    if not moving:
        raise BadInputError(f"{path}: contains no video stream")
    if stream_index is None:
        return moving[0]
    for stream in moving:
        if stream.index == stream_index:
            return stream
    raise BadInputError(f"{path}: has no video stream #{stream_index}")


def _is_still_image(container: av.container.InputContainer) -> bool:
    # FFmpeg reads single images through its image2 / "<codec>_pipe" demuxers.
    name = container.format.name
    return name == "image2" or name.endswith("_pipe")


def _normalise_rotation(degrees: float) -> int:
    return int(90 * round(degrees / 90)) % 360


def _frame_count(path: Path, stream: av.video.stream.VideoStream) -> tuple[int, bool]:
    """(count, from_index): exact from a complete sample index (mp4/mov), else by
    demuxing the file once (no decoding), which only sees the data that is there."""
    entries = stream.index_entries
    if stream.frames > 0 and len(entries) == stream.frames:
        return sum(1 for entry in entries if not entry.is_discard), True
    count = 0
    with open_input(path) as container:
        for packet in container.demux(container.streams[stream.index]):
            if packet.size and not packet.is_discard:
                count += 1
    return count, False


def _declared_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, start_s: float
) -> float | None:
    """The video stream's duration as the container states it, or None. ``start_s``: the
    first frame's time (Matroska's DURATION tag is where the stream ends, not how long it is)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = {k.upper(): v for k, v in stream.metadata.items()}.get("DURATION")  # Matroska
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            end = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
        return end - start_s if end > start_s > 0 else end
    return None


def _sample_aspect_ratio(stream: av.video.stream.VideoStream) -> Fraction | None:
    """The stream's pixel shape when it is stated and not square."""
    ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    if not ratio or ratio <= 0 or ratio == 1:
        return None
    return Fraction(ratio)


def _frame_rate(
    path: Path, stream: av.video.stream.VideoStream, frame_count: int, duration: float | None
) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    if duration and frame_count:
        return Fraction(frame_count / duration).limit_denominator(1001)
    raise BadInputError(f"{path}: cannot determine the frame rate")


def probe(path: str | Path, stream_index: int | None = None) -> VideoInfo:
    """Read a video's properties; decodes the first frame to check that it decodes.

    ``stream_index`` picks a video stream (container numbering, see
    ``VideoInfo.video_stream_indices``); None: the first.

    Raises:
        BadInputError: missing file, not a video, no video stream, unreadable or
            corrupt header, no decodable frame.
    """
    path = Path(path)
    container = open_input(path)
    try:
        if _is_still_image(container):
            raise BadInputError(f"{path}: is a still image, not a video")
        stream = _video_stream(container, path, stream_index)
        first = _first_frame(container, stream, path)
        has_pts = container.format.name not in _NO_PTS_FORMATS
        rotation = _normalise_rotation(first.rotation)
        frame_count, indexed = _frame_count(path, stream)
        start_s = _start_time(stream, first, has_pts)
        declared = _declared_duration(container, stream, start_s)
        fps = _frame_rate(path, stream, frame_count, declared)
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        if declared is not None:
            duration = declared
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = frame_count / float(fps)
        width, height = first.width, first.height
        if rotation % 180:
            width, height = height, width
        audio = [s for s in container.streams.audio]
        return VideoInfo(
            path=path,
            width=width,
            height=height,
            frame_count=frame_count,
            fps=fps,
            time_base=time_base,
            duration_s=float(duration),
            rotation=rotation,
            has_audio=bool(audio),
            codec=stream.codec_context.name,
            metadata=dict(container.metadata),
            stream_index=stream.index,
            start_s=start_s,
            declared_duration_s=declared,
            frame_count_indexed=indexed,
            pix_fmt=first.format.name,
            video_stream_indices=tuple(s.index for s in _moving_video_streams(container)),
            colorspace=int(first.colorspace),
            color_range=int(first.color_range),
            color_primaries=int(first.color_primaries),
            color_trc=int(first.color_trc),
            audio_codecs=tuple(s.codec_context.name for s in audio),
            has_pts=has_pts,
            sample_aspect_ratio=_sample_aspect_ratio(stream),
            subtitle_streams=len(container.streams.subtitles),
        )
    except av.error.FFmpegError as err:
        raise BadInputError(f"{path}: unreadable video ({_reason(err)})") from None
    finally:
        container.close()


def _start_time(stream: av.video.stream.VideoStream, first: av.VideoFrame, has_pts: bool) -> float:
    """The first frame's presentation time: its pts, or, in a container without
    presentation times, the stream's start (the first frame's pts there is a guess)."""
    if has_pts:
        return float(first.time) if first.pts is not None else 0.0
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as err:
        raise BadInputError(
            f"{path}: corrupt video, the first frame does not decode ({_reason(err)})"
        ) from None
    raise BadInputError(f"{path}: the video stream has no decodable frames")


def bit_depth(pix_fmt: str) -> int:
    """Bits per component of a pixel format (8 when unknown)."""
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.error.FFmpegError):
        return 8


def to_rgb(
    frame: av.VideoFrame, rotation: int, reformatter: VideoReformatter | None = None, rgb_format: str = "rgb24"
) -> np.ndarray:
    """Decoded frame -> (H,W,3) C-contiguous RGB in display orientation: uint8 (``rgb24``)
    or uint16 (``rgb48le``).

    Pass the same ``reformatter`` for every frame of a video (and format): it caches swscale's set-up.
    """
    reformatter = reformatter or VideoReformatter()
    rgb = reformatter.reformat(frame, format=rgb_format, interpolation=RGB_INTERPOLATION).to_ndarray()
    # Counter-clockwise, as np.rot90; contiguous: PyAV may return row-padded views (dlib needs contiguous).
    return turned(rgb, rotation // 90)


def iter_frames(
    path: str | Path,
    info: VideoInfo | None = None,
    deep: bool = False,
    keep_yuv: bool = False,
    rgb_part: Callable[[int], Window | None] | None = None,
) -> Iterator[Frame]:
    """Decode ``path`` frame by frame (multi-threaded decoder), in presentation order.

    ``deep``: also give ``Frame.deep`` when the source has more than 8 bits per component.
    ``keep_yuv``: also give ``Frame.yuv`` where the stream allows it.
    ``rgb_part``: with ``keep_yuv``, the part of the picture that is needed in RGB, given a
    frame's index (None: all of it). Of a frame that has its ``yuv``, only that part is
    converted (:func:`deidvid.io.yuv.rgb_window`; the rest of ``rgb`` is zero), and a frame
    with an empty part is not converted at all: its ``rgb`` is :data:`NO_PICTURE`.

    Memory does not grow with the video's length. Data that FFmpeg cannot decode, or a
    stream that ends early (fewer frames than the mp4/mov index lists, or frames ending
    well before the declared duration elsewhere: a truncated file) raises a one-line
    :class:`BadInputError` after the frames that did decode were yielded. Glitches FFmpeg
    can conceal are decoded as FFmpeg does (no error). A truncated file whose container
    declares no duration (e.g. an unfinished live .mkv) reads as a shorter video.
    """
    path = Path(path)
    info = info or probe(path)
    container = open_input(path)
    index = 0
    last_time = None
    try:
        stream = container.streams[info.stream_index]
        stream.thread_type = "AUTO"
        reformatter = VideoReformatter()
        window_reformatter = VideoReformatter()  # the faces' windows: steady sizes, one swscale set-up
        deep_reformatter = VideoReformatter() if deep and bit_depth(info.pix_fmt) > 8 else None
        keep_yuv = keep_yuv and info.passes_yuv
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as err:
                raise BadInputError(
                    f"{path}: corrupt video data after frame {index} ({_reason(err)})"
                ) from None
            pts = frame.pts if info.has_pts else None
            if pts is not None:
                time_s = float(pts * info.time_base)
            else:
                time_s = info.start_s + index / float(info.fps)
            last_time = time_s
            yuv = frame.to_ndarray(format="yuv420p") if keep_yuv and _same_picture(frame, info) else None
            part = rgb_part(index) if yuv is not None and rgb_part is not None else None
            if part is None:
                rgb = to_rgb(frame, info.rotation, reformatter)
            elif part[0].stop <= part[0].start or part[1].stop <= part[1].start:
                rgb = NO_PICTURE
            else:  # a stream that passes its YUV through is upright: no rotation to apply
                rgb = rgb_window(frame, part, RGB_INTERPOLATION, window_reformatter)
            fine = None if deep_reformatter is None else to_rgb(frame, info.rotation, deep_reformatter, "rgb48le")
            yield Frame(index=index, pts=pts, time_s=time_s, rgb=rgb, deep=fine, yuv=yuv)
            index += 1
    finally:
        container.close()
    _check_complete(path, info, index, last_time)


def _same_picture(frame: av.VideoFrame, info: VideoInfo) -> bool:
    """Whether a decoded frame has the format, size and colour tags the stream declared."""
    return (
        frame.format.name == info.pix_fmt
        and (frame.width, frame.height) == (info.width, info.height)
        and int(frame.colorspace) == info.colorspace
        and int(frame.color_range) == info.color_range
    )


def _check_complete(path: Path, info: VideoInfo, decoded: int, last_time: float | None) -> None:
    """Raise if the stream ended early (a truncated file, or data the demuxer skipped).

    With a sample index (mp4/mov) the decoded count must reach the indexed count. Without
    one, the only evidence is the duration the container declares; a long last frame
    could look like a shortfall, hence the generous tolerance.
    """
    if info.frame_count_indexed:
        missing = info.frame_count - decoded
        if missing > max(_TRUNCATION_TOLERANCE_FRAMES, math.ceil(0.01 * info.frame_count)):
            raise BadInputError(
                f"{path}: truncated or corrupt video, decoded {decoded} of {info.frame_count} frames"
            )
        return
    if info.declared_duration_s and last_time is not None:
        frame_s = 1 / float(info.fps)
        decoded_s = last_time + frame_s - info.start_s
        tolerance = max(
            _TRUNCATION_TOLERANCE_S, _TRUNCATION_TOLERANCE_FRAMES * frame_s, 0.02 * info.declared_duration_s
        )
        if info.declared_duration_s - decoded_s > tolerance:
            raise BadInputError(
                f"{path}: truncated or corrupt video, frames end at {decoded_s:.2f} s "
                f"of a declared {info.declared_duration_s:.2f} s"
            )
