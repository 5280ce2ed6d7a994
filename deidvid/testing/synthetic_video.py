"""Synthetic test videos made from a public-domain still (``skimage.data.astronaut()``).

Every maker writes its file with PyAV directly (not with ``deidvid.io.encode``), so the
project's own reader and writer are tested against an independent producer.

The face video animates the astronaut's head over a static background with smooth
translation/scale motion and adds a known pulse: a sinusoidal brightness change of
``pulse_amplitude`` (default 1.5/255) on the skin region. :func:`face_boxes` returns
the ground-truth head boxes, :func:`frame_times` the timestamps, so tests for
detection, tracking and rPPG can check against known values.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

# Astronaut still (512x512): the head (hair to chin) and the skin area of the face,
# as ellipses (centre x, centre y, semi-axis x, semi-axis y) in still pixels.
_HEAD_ELLIPSE = (225.0, 112.0, 78.0, 100.0)
_SKIN_ELLIPSE = (224.0, 130.0, 42.0, 52.0)
_HEAD_BOX_HALF = (_HEAD_ELLIPSE[2], _HEAD_ELLIPSE[3])

_VFR_TIME_BASE = Fraction(1, 90000)
_AUDIO_RATE = 44100
_REFORMATTER = VideoReformatter()
_TONE_HZ = 440.0


@lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    """(512,512,3) float32 RGB in 0..255."""
    from skimage.data import astronaut

    return astronaut().astype(np.float32)


def _soft_ellipse(
    shape: tuple[int, int], ellipse: tuple[float, float, float, float], feather: float
) -> np.ndarray:
    """(H,W) float32 mask: 1 inside the ellipse, a smooth ramp of ``feather`` px at its edge."""
    cx, cy, ax, ay = ellipse
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    radius = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    edge = feather / min(ax, ay)
    return np.clip((1.0 - radius) / edge + 0.5, 0.0, 1.0).astype(np.float32)


@lru_cache(maxsize=1)
def _masks() -> tuple[np.ndarray, np.ndarray]:
    """Head and skin masks in still coordinates, (512,512) float32 each."""
    return _soft_ellipse((512, 512), _HEAD_ELLIPSE, 6.0), _soft_ellipse((512, 512), _SKIN_ELLIPSE, 8.0)


@lru_cache(maxsize=4)
def _background(width: int, height: int, textured: bool) -> np.ndarray:
    """(H,W,3) float32 static background: a grey-blue gradient, optionally with texture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 110.0 + 40.0 * xx / max(width - 1, 1) + 20.0 * yy / max(height - 1, 1)
    rgb = np.stack([base * 0.9, base, base * 1.1], axis=-1)
    if textured:
        rng = np.random.default_rng(1234)
        rgb += 12.0 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 11.0)[..., None]
        rgb += rng.normal(0.0, 4.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.float32)


def frame_times(n_frames: int, fps: float | Fraction = 30, vfr: bool = False) -> np.ndarray:
    """(n_frames,) float64 presentation times in seconds, as written by :func:`make_face_video`.

    VFR times have frame durations between 0.5 and 1.5 of the nominal one, on a 1/90000 grid.
    """
    rate = Fraction(fps).limit_denominator(1001)
    if not vfr:
        return np.arange(n_frames, dtype=np.float64) / float(rate)
    return np.array([float(p * _VFR_TIME_BASE) for p in _vfr_pts(n_frames, rate)], dtype=np.float64)


def _vfr_pts(n_frames: int, rate: Fraction) -> list[int]:
    nominal = 1 / (rate * _VFR_TIME_BASE)  # ticks per frame
    rng = np.random.default_rng(7)
    steps = [max(1, round(float(nominal) * s)) for s in rng.uniform(0.5, 1.5, size=max(n_frames - 1, 0))]
    return [0, *np.cumsum(steps).tolist()]


def _poses(
    t: float, size: tuple[int, int], motion: bool, faces: int
) -> list[tuple[float, float, float, bool]]:
    """Per face: (centre x, centre y, scale, mirrored) of the head ellipse in frame pixels."""
    width, height = size
    scale0 = (0.60 if faces == 1 else 0.42) * height / (2 * _HEAD_ELLIPSE[3])
    poses = []
    for k in range(faces):
        cx = width * (0.5 if faces == 1 else (0.28 if k == 0 else 0.72))
        cy = height * 0.5
        scale = scale0
        if motion:
            sign = 1.0 if k == 0 else -1.0
            cx += sign * 0.06 * width * math.sin(2 * math.pi * t / 3.1)
            cy += 0.05 * height * math.sin(2 * math.pi * t / 4.3 + 0.7 * k)
            scale *= 1.0 + 0.07 * math.sin(2 * math.pi * t / 5.3 + 1.1 * k)
        poses.append((cx, cy, scale, k == 1))
    return poses


def face_boxes(
    n_frames: int = 90,
    *,
    fps: float | Fraction = 30,
    size: tuple[int, int] = (320, 240),
    motion: bool = True,
    vfr: bool = False,
    faces: int = 1,
) -> np.ndarray:
    """Ground-truth head boxes (hair to chin) of :func:`make_face_video`, display orientation.

    Returns:
        (n_frames, faces, 4) float64 boxes x0, y0, x1, y1 in frame pixels.
    """
    boxes = np.zeros((n_frames, faces, 4))
    for i, t in enumerate(frame_times(n_frames, fps, vfr)):
        for k, (cx, cy, scale, _) in enumerate(_poses(float(t), size, motion, faces)):
            hx, hy = _HEAD_BOX_HALF[0] * scale, _HEAD_BOX_HALF[1] * scale
            boxes[i, k] = (cx - hx, cy - hy, cx + hx, cy + hy)
    return boxes


def render_face_frame(
    t: float,
    *,
    size: tuple[int, int] = (320, 240),
    pulse_bpm: float = 72.0,
    pulse_amplitude: float = 1.5,
    motion: bool = True,
    faces: int = 1,
    textured: bool = True,
    flicker_bpm: float = 0.0,
    flicker_amplitude: float = 0.0,
) -> np.ndarray:
    """One (H,W,3) uint8 display-orientation frame of the face video at time ``t`` seconds.

    ``flicker_bpm`` / ``flicker_amplitude`` (1/255): a brightness flicker of the background
    only (a light behind the person), a rhythm that is not the person's pulse.
    """
    width, height = size
    still = _astronaut()
    head_mask, skin_mask = _masks()
    pulse = pulse_amplitude * math.sin(2 * math.pi * pulse_bpm / 60.0 * t)
    canvas = _background(width, height, textured)
    if flicker_amplitude:
        canvas = canvas + flicker_amplitude * math.sin(2 * math.pi * flicker_bpm / 60.0 * t)
    for cx, cy, scale, mirrored in _poses(t, size, motion, faces):
        sx = -scale if mirrored else scale  # the second face is the mirrored still
        # Maps still pixels to frame pixels: head-ellipse centre -> (cx, cy).
        warp = np.array(
            [[sx, 0.0, cx - sx * _HEAD_ELLIPSE[0]], [0.0, scale, cy - scale * _HEAD_ELLIPSE[1]]],
            dtype=np.float64,
        )
        face = cv2.warpAffine(still, warp, (width, height), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(head_mask, warp, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        skin = cv2.warpAffine(skin_mask, warp, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        face = face + pulse * skin
        canvas = canvas * (1.0 - alpha) + face * alpha
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def _container_format(path: Path) -> str | None:
    return {".mkv": "matroska", ".mov": "mov", ".mp4": "mp4", ".m4a": "mp4"}.get(path.suffix.lower())


def _add_audio_stream(container: av.container.OutputContainer, codec: str) -> av.audio.stream.AudioStream:
    stream = container.add_stream(codec, rate=_AUDIO_RATE)
    stream.layout = "mono"
    return stream


class _ToneWriter:
    """Encodes a 440 Hz sine tone into ``stream`` in chunks, up to a requested time."""

    def __init__(self, container: av.container.OutputContainer, stream: av.audio.stream.AudioStream) -> None:
        self.container, self.stream = container, stream
        self.samples_written = 0
        fmt = stream.codec_context.format
        self.format_name = fmt.name if fmt is not None else "fltp"
        self.chunk = stream.codec_context.frame_size or 1024

    def write_until(self, t_end: float) -> None:
        while self.samples_written < t_end * _AUDIO_RATE:
            n = self.chunk
            t = (self.samples_written + np.arange(n)) / _AUDIO_RATE
            wave = 0.2 * np.sin(2 * np.pi * _TONE_HZ * t)
            if self.format_name.startswith("s16"):
                data = (wave * 32767).astype(np.int16)[None, :]
            else:
                data = wave.astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(data, format=self.format_name, layout="mono")
            frame.sample_rate = _AUDIO_RATE
            frame.pts = self.samples_written
            frame.time_base = Fraction(1, _AUDIO_RATE)
            self.container.mux(self.stream.encode(frame))
            self.samples_written += n

    def flush(self) -> None:
        self.container.mux(self.stream.encode(None))


def _to_yuv(frame: av.VideoFrame, stream: av.video.stream.VideoStream, bt709: bool) -> av.VideoFrame:
    """RGB -> the stream's YUV format with accurate rounding (swscale's fast path is biased)."""
    flags = Interpolation.BICUBIC | Interpolation.ACCURATE_RND
    colorspace = "itu709" if bt709 else "itu601"
    return _REFORMATTER.reformat(
        frame, format=stream.pix_fmt, dst_colorspace=colorspace, dst_color_range=1, interpolation=flags
    )


def _video_stream(
    container: av.container.OutputContainer,
    width: int,
    height: int,
    rate: Fraction,
    time_base: Fraction,
    crf: int,
    preset: str = "medium",
) -> av.video.stream.VideoStream:
    odd = width % 2 or height % 2
    stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv444p" if odd else "yuv420p"
    stream.codec_context.time_base = time_base
    return stream


def make_face_video(
    path: str | Path,
    *,
    n_frames: int = 90,
    fps: float | Fraction = 30,
    size: tuple[int, int] = (320, 240),
    audio: bool = True,
    pulse_bpm: float = 72.0,
    pulse_amplitude: float = 1.5,
    motion: bool = True,
    vfr: bool = False,
    rotation: int = 0,
    faces: int = 1,
    textured: bool = True,
    crf: int = 8,
    audio_codec: str = "aac",
    metadata: dict[str, str] | None = None,
    bt709: bool = False,
    faststart: bool = False,
    flicker_bpm: float = 0.0,
    flicker_amplitude: float = 0.0,
) -> Path:
    """Write an animated astronaut-face video (H.264, high quality) and return its path.

    Args:
        size: (W, H) in display orientation; odd sizes are stored as yuv444p.
        pulse_bpm / pulse_amplitude: the synthetic pulse on the skin (amplitude in 1/255).
        vfr: frame durations vary between 0.5 and 1.5 of 1/fps (see :func:`frame_times`).
        rotation: display-matrix rotation in degrees counter-clockwise (0/90/180/270); the
            stored frames are rotated the other way so the displayed video is the same.
        faces: 1 or 2 (the second is a mirrored copy on the right).
        audio_codec: codec of the tone track (e.g. "aac", "pcm_s16le" for .mov/.mkv).
        crf: x264 quality of the file itself (8: visually lossless, keeps the pulse).
        bt709: convert and tag the stream as BT.709 (default: untagged, BT.601 matrix).
        faststart: .mp4/.mov with the index before the data (as streaming files have).
        flicker_bpm / flicker_amplitude: a background-only brightness flicker (see
            :func:`render_face_frame`).
    """
    path = Path(path)
    if rotation % 90:
        raise ValueError("rotation must be a multiple of 90")
    width, height = size
    turns = (rotation // 90) % 4
    stored_w, stored_h = (height, width) if turns % 2 else (width, height)
    rate = Fraction(fps).limit_denominator(1001)
    time_base = _VFR_TIME_BASE if vfr else 1 / rate
    pts = _vfr_pts(n_frames, rate) if vfr else list(range(n_frames))
    times = frame_times(n_frames, fps, vfr)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=_container_format(path), options=options) as container:
        container.metadata.update(metadata or {"title": "deidvid synthetic face", "comment": "astronaut"})
        video = _video_stream(container, stored_w, stored_h, rate, time_base, crf)
        if bt709:
            video.codec_context.colorspace = 1  # AVCOL_SPC_BT709
            video.codec_context.color_primaries = 1
            video.codec_context.color_trc = 1
            video.codec_context.color_range = 1  # limited
        if turns:
            video.set_display_rotation(rotation)
        tone = _ToneWriter(container, _add_audio_stream(container, audio_codec)) if audio else None
        for i in range(n_frames):
            rgb = render_face_frame(
                float(times[i]), size=size, pulse_bpm=pulse_bpm, pulse_amplitude=pulse_amplitude,
                motion=motion, faces=faces, textured=textured,
                flicker_bpm=flicker_bpm, flicker_amplitude=flicker_amplitude,
            )
            stored = np.ascontiguousarray(np.rot90(rgb, k=-turns))
            frame = _to_yuv(av.VideoFrame.from_ndarray(stored, format="rgb24"), video, bt709)
            frame.pts, frame.time_base = pts[i], time_base
            container.mux(video.encode(frame))
            if tone is not None:
                tone.write_until(float(times[i]) + 1 / float(rate))
        container.mux(video.encode(None))
        if tone is not None:
            tone.flush()
    return path


def make_pattern_video(
    path: str | Path, *, n_frames: int = 300, size: tuple[int, int] = (160, 120), fps: int = 30, start_s: float = 0.0,
    sample_aspect_ratio: Fraction | None = None,
) -> Path:
    """A fast-to-make moving-gradient video (libx264 ultrafast), e.g. for long-stream tests;
    its first frame shown at ``start_s`` (whole frames), its pixels ``sample_aspect_ratio``
    wide (None: square)."""
    path = Path(path)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w", format=_container_format(path)) as container:
        video = _video_stream(container, width, height, Fraction(fps), Fraction(1, fps), 23, "ultrafast")
        if sample_aspect_ratio is not None:
            video.codec_context.sample_aspect_ratio = sample_aspect_ratio
        for i in range(n_frames):
            rgb = np.stack([(xx + i) % 256, (yy + 2 * i) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i + round(start_s * fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


def make_audio_only_file(path: str | Path, *, seconds: float = 1.0) -> Path:
    """An AAC tone in an .m4a/.mp4 container: no video stream."""
    path = Path(path)
    with av.open(str(path), "w", format=_container_format(path)) as container:
        tone = _ToneWriter(container, _add_audio_stream(container, "aac"))
        tone.write_until(seconds)
        tone.flush()
    return path


def make_not_a_video(path: str | Path) -> Path:
    """A text file wearing a video suffix."""
    path = Path(path)
    path.write_text("this is not a video\n" * 50)
    return path


def make_corrupt_video(path: str | Path, *, kind: str = "garbage") -> Path:
    """A face video damaged in one of these ways:

    - ``"garbage"``: the middle third of the file overwritten with random bytes.
    - ``"truncated"``: cut at half its length, header intact (.mp4/.mov are written
      with their index first), so the data ends mid-stream.
    - ``"no_header"``: an .mp4/.mov cut at half its length; its index, written last, is lost.
    """
    path = Path(path)
    make_face_video(path, n_frames=60, audio=False, size=(160, 120), crf=18, faststart=kind == "truncated")
    data = bytearray(path.read_bytes())
    if kind == "garbage":
        start, stop = len(data) // 3, 2 * len(data) // 3
        data[start:stop] = np.random.default_rng(3).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    elif kind in ("truncated", "no_header"):
        data = data[: len(data) // 2]
    else:
        raise ValueError(f"unknown kind {kind!r}")
    path.write_bytes(bytes(data))
    return path


def write_blurred_copy(source: Path, target: Path, sigma: float = 8.0) -> Path:
    """A losslessly coded (H.264 qp 0, 4:4:4) copy of ``source`` with every frame Gaussian
    blurred (``sigma`` px): the Haar cascade loses the face, the mean skin colour stays."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        video = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv444p"
        stream.options = {"qp": "0"}
        for frame in inp.decode(video=0):
            rgb = cv2.GaussianBlur(frame.to_ndarray(format="rgb24"), (0, 0), sigma)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        out.mux(stream.encode())
    return target
