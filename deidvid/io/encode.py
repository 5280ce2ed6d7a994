"""Streaming H.264 video writing with PyAV, atomically, keeping the source's timing and audio.

What the output keeps from the source (:class:`~deidvid.io.decode.VideoInfo`):

- every frame's presentation timestamp, in the source's time base (variable frame rate
  included). Matroska stores timestamps in milliseconds, so an .mkv output rounds
  finer source timestamps to 1 ms; .mp4/.mov keep them exactly.
- the rotation: frames are written in the source's stored orientation with the same
  display-matrix rotation (PyAV >= 18 ``set_display_rotation``). With an older PyAV
  the frames are written already rotated, without rotation metadata (same picture).
- the colour matrix, range and tags, so unchanged pixels come back as they were.
- every video stream, each encoded from its own processed frames (``more_videos``).
- container metadata: by default only tags that describe the file (``creation_time``,
  ``timecode``); free text such as ``title``, ``comment`` or ``artist`` often names the
  person filmed and is dropped unless ``keep_metadata`` (then custom keys too, via
  ``use_metadata_tags`` in .mp4/.mov). Location tags are never copied.
- every audio stream, packets copied unchanged (no re-encode), interleaved by time, with
  its language tag. An audio codec the output container cannot hold (PCM in .mp4
  included) is a one-line :class:`UsageError`, which :func:`check_audio_fits` raises
  before any work. Subtitle, data and attachment streams are not copied.
- the file appears complete or not at all (:mod:`deidvid.io.atomic`).

Encoding: libx264, CRF 16 by default (``crf``), yuv420p; odd frame sizes, which 4:2:0
cannot represent, use yuv444p at the exact size (High 4:4:4 profile: not every player
supports it); 4:2:2 and 4:4:4 inputs keep their chroma sampling, and inputs of more than
8 bits are written in 10 from 16-bit RGB frames (``Frame.deep``). ``lossless=True`` uses
libx264rgb at QP 0 (8 bits): the RGB frames are stored
bit-exactly. Lossless YUV (yuv444p, QP 0) is not used because the RGB -> YUV -> RGB
conversion in 8 bits alone changes pixels by up to 2/255, as large as the pulse signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from deidvid.errors import BadInputError, DeidvidError, UsageError
from deidvid.interrupts import uninterrupted
from deidvid.io.ahead import Behind
from deidvid.io.atomic import TempFile, remove_stale
from deidvid.io.decode import Frame, VideoInfo, bit_depth, open_input, os_reason
from deidvid.io.output_checks import audio_misfit, check_output_path
from deidvid.io.regions import Region, RegionMarker, rotate_region
from deidvid.io.turn import turned
from deidvid.io.yuv import Window, grown, put_rgb_window, steady

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

# Bicubic chroma downsampling with accurate rounding: the smallest RGB round-trip error
# of swscale's options for 4:2:0 (about 49 dB, mean bias < 0.05/255 on a face frame).
_YUV_INTERPOLATION = Interpolation.BICUBIC | Interpolation.ACCURATE_RND

# The most bits per component libx264 writes (inputs with more are rounded to it).
MAX_BIT_DEPTH = 10

# PyAV >= 18 can write a display matrix (rotation metadata).
CAN_WRITE_ROTATION = hasattr(av.video.stream.VideoStream, "set_display_rotation")

# Container metadata the muxer writes itself.
_MUXER_OWNED_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder"}
# Stream tags the muxer derives from the stream (copying them would state stale values).
_STREAM_OWNED_KEYS = {"duration", "handler_name", "vendor_id", "encoder", "number_of_frames", "number_of_bytes"}
# Where a recording was made identifies people too: never copy location tags
# (QuickTime ``location``/``com.apple.quicktime.location.ISO6709``, ``©xyz``, GPS keys).
_PRIVATE_KEY_PARTS = ("location", "gps", "xyz")
# Tags that describe the file rather than who is in it: the only ones kept by default. An
# allow-list, because free-text tags (title, comment, description, artist, author, composer,
# album, copyright, custom keys, ...) are where recordings get labelled "patient 17 Jane Doe".
_TECHNICAL_KEYS = {"creation_time", "timecode"}

def copied_metadata(metadata: dict[str, str], keep_free_text: bool = False) -> dict[str, str]:
    """Container metadata to carry over: technical tags, plus free text when asked; never
    muxer-owned or location keys."""
    kept = {}
    for key, value in metadata.items():
        lower = key.lower()
        if lower in _MUXER_OWNED_KEYS or any(part in lower for part in _PRIVATE_KEY_PARTS):
            continue
        if keep_free_text or lower in _TECHNICAL_KEYS:
            kept[key] = value
    return kept

# AVColorSpace -> swscale colour matrix name (unspecified: swscale's default, BT.601,
# which is also what the decoder used for untagged input).
_SWS_COLORSPACE = {
    1: "itu709", 4: "fcc", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"
}


def _output_colorspace(info: VideoInfo) -> int:
    """The YUV matrix tag to write: the source's, or unspecified (BT.601) for RGB sources
    and matrices swscale cannot produce."""
    return info.colorspace if info.colorspace in _SWS_COLORSPACE else 2


def _is_rgb(pix_fmt: str) -> bool:
    return pix_fmt.startswith(("gbr", "rgb", "bgr", "argb", "abgr"))


def chroma_of(pix_fmt: str) -> str:
    """``"444"``, ``"422"`` or ``"420"``: the chroma sampling of a pixel format name (RGB counts as 4:4:4)."""
    if "444" in pix_fmt or _is_rgb(pix_fmt):
        return "444"
    return "422" if "422" in pix_fmt else "420"


def output_pix_fmt(input_pix_fmt: str, width: int, height: int) -> str:
    """The H.264 pixel format that keeps a YUV input's chroma sampling and bit depth:
    4:4:4 and 4:2:2 inputs stay so (High 4:4:4 / 4:2:2 profiles); odd sizes, which 4:2:0
    and 4:2:2 cannot represent, use 4:4:4; inputs of more than 8 bits are written in 10
    (H.264's High 10 profiles: x264's most)."""
    # RGB sources (deidvid's own lossless output) are written 4:2:0 like everything else: in
    # 4:4:4 x264 moved their mean colour by 0.32 grey levels on the test clip, 4:2:0 by < 0.25.
    chroma = "420" if _is_rgb(input_pix_fmt) else chroma_of(input_pix_fmt)
    if chroma == "444" or width % 2 or (chroma == "420" and height % 2):
        chroma = "444"
    return f"yuv{chroma}p" + ("10le" if bit_depth(input_pix_fmt) > 8 else "")


def format_notes(info: VideoInfo, lossless: bool = False) -> list[str]:
    """What the output cannot keep of the input's pixel format, one line each (report warnings)."""
    depth = bit_depth(info.pix_fmt)
    if depth > 8 and lossless:
        return [f"the input is {depth}-bit ({info.pix_fmt}); --lossless writes 8-bit RGB"]
    if depth > MAX_BIT_DEPTH:
        return [f"the input is {depth}-bit ({info.pix_fmt}); deidvid writes {MAX_BIT_DEPTH} bits per component"]
    return []


class VideoWriter:
    """Writes frames to ``out_path`` through a hidden temp file in the same folder.

    Use as a context manager: on a clean exit the file is finalised and renamed to
    ``out_path`` atomically; on any exception (KeyboardInterrupt included) the temp file
    is deleted and ``out_path`` is left untouched.

    Args:
        out_path: .mp4, .m4v, .mov or .mkv; must not be the input; its folder must exist.
            An existing file is replaced (callers decide whether that is allowed).
        info: the source video (timing, rotation, colour, audio, metadata come from it).
        crf: x264 constant rate factor, 0..51 (lower is better); ignored when lossless.
        lossless: libx264rgb at QP 0, bit-exact RGB.
        copy_audio: copy the source's audio streams (unchanged packets); False drops them.
        preset: x264 speed preset.
        keep_metadata: keep free-text container tags (title, comment, ...); default: strip them.
        threads: x264 threads (None: x264's own choice, 1.5 per core). A batch worker that
            has a share of the cores uses that share: x264's threads beyond it only contend.
            The picture's quality is the same; the bits may differ with the thread count.
        more_videos: further video streams of the same file to write (``probe(path, index)``
            of each), as streams 1, 2, ... of the output, in this order.
    """

    def __init__(
        self,
        out_path: Path,
        info: VideoInfo,
        *,
        crf: int = 16,
        lossless: bool = False,
        copy_audio: bool = True,
        preset: str = "medium",
        keep_metadata: bool = False,
        threads: int | None = None,
        more_videos: Sequence[VideoInfo] = (),
    ) -> None:
        out_path = Path(out_path)
        out_format = check_output_path(out_path, info.path)
        if not 0 <= crf <= 51:
            raise UsageError(f"crf must be between 0 and 51, got {crf}")
        if preset not in PRESETS:
            raise UsageError(f"unknown x264 preset {preset!r} (use one of {', '.join(PRESETS)})")
        self.out_path = out_path
        self.info = info
        self._keep_metadata = keep_metadata
        self._audio_reader: av.container.InputContainer | None = None
        self._audio_packets = None
        self._pending_audio: av.Packet | None = None
        self._container: av.container.OutputContainer | None = None
        self._closed = False
        self._videos: list[_VideoOut] = []
        self._behind: Behind | None = None
        self._temp: TempFile | None = None
        remove_stale(out_path, keep=[info.path])  # left by a run that was killed (SIGKILL)
        options = {"movflags": "use_metadata_tags"} if out_format in ("mp4", "mov") else {}
        try:
            try:
                with uninterrupted():
                    self._temp = TempFile(out_path)
            except OSError as err:
                raise BadInputError(f"{out_path}: cannot write to folder {out_path.parent} ({os_reason(err)})") from None
            self._temp_path = self._temp.path
            try:
                self._container = av.open(str(self._temp_path), "w", format=out_format, options=options)
            except (OSError, av.error.FFmpegError) as err:
                raise BadInputError(f"{out_path}: cannot write here ({err})") from None
            for source in (info, *more_videos):
                self._videos.append(_VideoOut(self._container, source, crf, lossless, preset, threads))
            self._audio_out = self._add_audio_streams() if copy_audio and info.has_audio else {}
            self._container.metadata.update(copied_metadata(info.metadata, self._keep_metadata))
            self._container.start_encoding()  # writes the header: fail now, not after encoding
            self._behind = Behind(name="deidvid-encode")  # encodes while the next frames are processed
        except BaseException:
            self.abort()
            raise

    # -- set-up -------------------------------------------------------------------------
    def _add_audio_streams(self) -> dict[int, av.stream.Stream]:
        """Output audio streams keyed by input stream index; opens the audio reader."""
        reader = open_input(self.info.path)
        self._audio_reader = reader
        mapping = {}
        for in_stream in reader.streams.audio:
            misfit = audio_misfit(in_stream, self.info.path, self.out_path)
            if misfit is not None:
                raise misfit
            out_stream = self._container.add_stream_from_template(in_stream)
            out_stream.metadata.update(self._audio_tags(in_stream))
            mapping[in_stream.index] = out_stream
        self._audio_packets = reader.demux(*reader.streams.audio)
        return mapping

    def _audio_tags(self, stream: av.stream.Stream) -> dict[str, str]:
        """The audio stream's language (players pick tracks by it), plus its free-text
        tags (e.g. a track title) only when metadata is kept."""
        tags = {k: v for k, v in stream.metadata.items() if k.lower() == "language" and v}
        if self._keep_metadata:
            tags.update(copied_metadata(stream.metadata, keep_free_text=True))
            tags = {k: v for k, v in tags.items() if k.lower() not in _STREAM_OWNED_KEYS}
        return tags

    # -- writing ------------------------------------------------------------------------
    @property
    def frames_written(self) -> int:
        """Frames written to the first video stream."""
        return self._videos[0].frames_written if self._videos else 0

    def write(
        self,
        frame: Frame,
        rgb: np.ndarray,
        regions: Sequence[Region] = (),
        qp_offset: int = 0,
        video: int = 0,
        changed: Window | None = None,
    ) -> None:
        """Encode ``rgb`` ((H,W,3) uint8, or uint16 for a deep source: see ``Frame.deep``; display
        orientation) at ``frame``'s timestamp into
        video stream ``video`` (0: ``info``'s, k: ``more_videos[k - 1]``'s).

        ``regions`` (display pixels) are coded ``qp_offset`` QP finer (< 0) than the rest
        (:class:`~deidvid.io.regions.RegionMarker`). Audio is interleaved with the first video stream;
        the others may be written after it, one at a time (the muxer keeps each stream's order).

        ``changed``: the only part of ``rgb`` that differs from ``frame.rgb`` (None: unknown).
        With the source's YUV (``frame.yuv``), only that part is converted and the rest of
        the picture is the source's own samples (:mod:`deidvid.io.yuv`).

        The picture is made here (``rgb`` may change afterwards); the encoding runs behind, in
        the writer's thread (:class:`deidvid.io.ahead.Behind`), and its errors are raised by a
        later ``write`` or by ``close``.
        """
        out = self._videos[video]
        out.check_picture(rgb)
        # The picture is made here and only the codec's call runs behind: the writer's thread
        # is what pass 2 waits for, and the caller's has time to spare while x264 codes.
        try:
            picture = out.picture(frame, rgb, regions, qp_offset, changed)
        except av.error.FFmpegError as err:
            raise DeidvidError(f"{self.out_path}: encoding failed at frame {frame.index} ({err})") from None
        self._behind.submit(lambda: self._encode(out, frame.index, picture, video == 0))

    def reads_window_only(self, video: int = 0) -> bool:
        """Whether :meth:`write` of a frame that holds its source YUV (``Frame.yuv``) reads ``rgb``
        only inside ``grown(changed)`` (:func:`deidvid.io.yuv.grown`): the rest comes from the YUV."""
        return self._videos[video].passes_yuv

    def _encode(self, out: _VideoOut, index: int, picture: av.VideoFrame, with_audio: bool) -> None:
        try:
            self._container.mux(out.encode(picture))
        except av.error.FFmpegError as err:
            raise DeidvidError(f"{self.out_path}: encoding failed at frame {index} ({err})") from None
        if with_audio:
            self._copy_audio_until(float(picture.pts * picture.time_base))  # this frame's time

    def _copy_audio_until(self, time_s: float | None) -> None:
        """Mux source audio packets up to ``time_s`` (all remaining ones when None)."""
        if self._audio_packets is None:
            return
        try:
            while True:
                packet = self._pending_audio or next(self._audio_packets, None)
                self._pending_audio = None
                if packet is None:
                    self._audio_packets = None
                    return
                if packet.dts is None and packet.pts is None:
                    continue  # demuxer's end-of-stream marker
                stamp = packet.dts if packet.dts is not None else packet.pts
                if time_s is not None and float(stamp * packet.time_base) > time_s:
                    self._pending_audio = packet
                    return
                packet.stream = self._audio_out[packet.stream_index]
                self._container.mux(packet)
        except av.error.FFmpegError as err:
            raise BadInputError(f"{self.info.path}: corrupt audio data ({err})") from None

    # -- finishing ----------------------------------------------------------------------
    def close(self) -> None:
        """Flush, finalise and atomically move the file to ``out_path``."""
        if self._closed:
            return
        try:
            self._behind.finish()
            if any(out.frames_written == 0 for out in self._videos):
                raise DeidvidError(f"{self.out_path}: no frames were written")
            try:
                for out in self._videos:
                    self._container.mux(out.flush())
            except av.error.FFmpegError as err:
                raise DeidvidError(f"{self.out_path}: encoding failed ({err})") from None
            self._copy_audio_until(None)
            try:
                self._container.close()  # writes the trailer (index): the muxer's last word
            except av.error.FFmpegError as err:
                raise DeidvidError(f"{self.out_path}: finishing the file failed ({getattr(err, 'strerror', None) or err})") from None
            self._close_reader()
            try:
                self._temp.commit()
            except OSError as err:
                raise DeidvidError(f"{self.out_path}: cannot put the finished file in place ({os_reason(err)})") from None
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close everything and delete the temp file; ``out_path`` is not touched."""
        self._closed = True
        closers = [self._behind.cancel] if self._behind is not None else []
        closers.append(self._close_reader)
        if self._container is not None:
            closers.append(self._container.close)
        for closer in closers:
            try:
                closer()
            except Exception:  # noqa: BLE001 - cleaning up after another error
                pass
        if self._temp is not None:
            self._temp.discard()

    def _close_reader(self) -> None:
        if self._audio_reader is not None:
            self._audio_reader.close()
            self._audio_reader = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _VideoOut:
    """One H.264 video stream of a :class:`VideoWriter`, written from the frames of ``info``'s stream."""

    def __init__(
        self,
        container: av.container.OutputContainer,
        info: VideoInfo,
        crf: int,
        lossless: bool,
        preset: str,
        threads: int | None,
    ) -> None:
        self.info = info
        self.frames_written = 0
        self.last_pts: int | None = None  # the latest presentation time written (time_base ticks)
        self._lossless = lossless
        # Without PyAV's display-matrix writer, store the frames already rotated.
        self._rotate_pixels = bool(info.rotation) and not CAN_WRITE_ROTATION
        self._reformatter = VideoReformatter()  # caches swscale's set-up across frames
        self._window_reformatter = VideoReformatter()  # the faces' windows (steady sizes: see yuv.steady)
        self._regions = RegionMarker()
        width, height = (info.width, info.height) if self._rotate_pixels else info.stored_size
        if lossless:
            codec, pix_fmt, options = "libx264rgb", "rgb24", {"qp": "0", "preset": preset}
        else:
            codec, pix_fmt = "libx264", output_pix_fmt(info.pix_fmt, width, height)
            options = {"crf": str(crf), "preset": preset}
        if threads is not None:
            options["threads"] = str(threads)
        stream = container.add_stream(codec, rate=info.fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = info.time_base
        stream.time_base = info.time_base
        if not lossless:
            context = stream.codec_context
            context.color_range = 2 if info.color_range == 2 else 1
            context.colorspace = _output_colorspace(info)
            context.color_primaries = info.color_primaries
            context.color_trc = info.color_trc
        if info.sample_aspect_ratio is not None:
            # Turned pixels (rotation applied to the pixels) are turned in shape too.
            turned = self._rotate_pixels and info.rotation % 180
            stream.codec_context.sample_aspect_ratio = 1 / info.sample_aspect_ratio if turned else info.sample_aspect_ratio
        if info.rotation and not self._rotate_pixels:
            stream.set_display_rotation(info.rotation)
        self._pix_fmt = pix_fmt
        # The matrix and range RGB pictures are converted to (the source's, as decoding read them).
        self._dst_colorspace = _SWS_COLORSPACE.get(_output_colorspace(info))
        self._dst_color_range = 2 if info.color_range == 2 else 1
        # Same format, matrix and range out as in, upright: the source's samples can pass through.
        self.passes_yuv = pix_fmt == "yuv420p" and not lossless and info.passes_yuv
        self.stream = stream

    def picture(
        self, frame: Frame, rgb: np.ndarray, regions: Sequence[Region], qp_offset: int, changed: Window | None = None
    ) -> av.VideoFrame:
        """``rgb`` as the encoder takes it, at ``frame``'s time (see :meth:`VideoWriter.write`).
        Pictures must be made in the order they are encoded (their timestamps are made increasing)."""
        if self.passes_yuv and frame.yuv is not None and changed is not None and rgb.dtype == np.uint8:
            video_frame = self._source_with_window(frame, rgb, changed)
        else:
            video_frame = self._video_frame(frame, rgb)
        if regions and qp_offset and not self._lossless:
            video_frame = self._regions.mark(video_frame, self._stored_regions(regions), qp_offset)
        return video_frame

    def encode(self, picture: av.VideoFrame) -> list[av.Packet]:
        """The packets that encoding one :meth:`picture` gives."""
        packets = self.stream.encode(picture)
        self.frames_written += 1
        return packets

    def flush(self) -> list[av.Packet]:
        """The encoder's remaining packets, the last one lasting as the source's last frame."""
        return self._with_last_duration(self.stream.encode(None))

    def check_picture(self, rgb: np.ndarray) -> None:
        """Raise ValueError unless ``rgb`` is a ``(H, W, 3)`` uint8 or uint16 picture of this stream's size."""
        info = self.info
        if rgb.shape != (info.height, info.width, 3) or rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"expected ({info.height}, {info.width}, 3) uint8 or uint16, got {rgb.shape} {rgb.dtype}")

    def _video_frame(self, frame: Frame, rgb: np.ndarray) -> av.VideoFrame:
        """``rgb`` converted to the stream's stored orientation and pixel format, with ``frame``'s timestamp."""
        info = self.info
        if info.rotation and not self._rotate_pixels:
            rgb = turned(rgb, -(info.rotation // 90))  # back to the stored orientation
        source_format = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=source_format)
        if self._pix_fmt != source_format:
            video_frame = self._reformatter.reformat(
                video_frame,
                format=self._pix_fmt,
                dst_colorspace=self._dst_colorspace,
                dst_color_range=self._dst_color_range,
                interpolation=_YUV_INTERPOLATION,
            )
        return self._timed(video_frame, frame)

    def _source_with_window(self, frame: Frame, rgb: np.ndarray, changed: Window) -> av.VideoFrame:
        """The source's own YUV picture with ``rgb``'s ``changed`` part converted into it, with ``frame``'s timestamp."""
        assert frame.yuv is not None
        info = self.info
        packed = frame.yuv.copy()
        inner = grown(changed, info.height, info.width, margin=0)
        if inner is not None:  # the grown window is empty exactly when this is
            outer = grown(changed, info.height, info.width)
            assert outer is not None
            outer = steady(outer, info.height, info.width)
            put_rgb_window(
                packed, rgb, outer, inner, self._dst_colorspace, self._dst_color_range, _YUV_INTERPOLATION,
                self._window_reformatter,
            )
        return self._timed(av.VideoFrame.from_ndarray(packed, format="yuv420p"), frame)

    def _timed(self, video_frame: av.VideoFrame, frame: Frame) -> av.VideoFrame:
        """``video_frame`` stamped with ``frame``'s time (strictly increasing, see :meth:`_next_pts`)."""
        video_frame.pts = self._next_pts(frame)
        video_frame.time_base = self.info.time_base
        return video_frame

    def _stored_regions(self, regions: Sequence[Region]) -> list[Region]:
        """Display-orientation regions in the stored frame's pixels."""
        info = self.info
        turns = (info.rotation // 90) % 4 if info.rotation and not self._rotate_pixels else 0
        return [rotate_region(r, info.width, info.height, turns) for r in regions]

    def _next_pts(self, frame: Frame) -> int:
        """The source pts; made strictly increasing, as the encoder requires."""
        pts = frame.pts if frame.pts is not None else round(Fraction(frame.time_s) / self.info.time_base)
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        self.last_pts = pts
        return pts

    def _with_last_duration(self, packets: list[av.Packet]) -> list[av.Packet]:
        """The flushed packets, the last frame and the last packet (in decode order)
        lasting as long as the source's last frame, so the stream's duration and average
        frame rate are the source's (the muxer would otherwise give them the nominal frame
        duration, which a variable frame rate's last frame need not have). Only when every
        frame was written (a cut-short input has no end to keep) and the source declares
        its duration."""
        info = self.info
        if not packets or info.declared_duration_s is None or self.last_pts is None:
            return packets
        if self.frames_written != info.frame_count:
            return packets
        end = round((info.start_s + info.declared_duration_s) / info.time_base)
        if end > self.last_pts:
            # The last sample's duration makes the average rate; the last frame's, the end.
            for packet in packets:
                if packet is packets[-1] or packet.pts == self.last_pts:
                    packet.duration = end - self.last_pts
        return packets
