"""The faces' part of a frame back to the source's YUV 4:2:0; the rest passes through.

Pass 2 changes only the pixels around faces, so for an 8-bit 4:2:0 source the encoder
converts only that window from RGB to YUV and writes it into the source's own YUV
picture: the rest of the frame costs no conversion (the whole frame's took 6-7 ms per
720p frame, in the encoder's thread) and keeps its samples exactly, without the RGB
round trip's rounding. Inside the window the samples are those that converting the whole
frame gives: swscale's chroma filter reaches a few pixels, and the window is converted
with :data:`MARGIN` more on each side, aligned to the chroma grid, so what is kept saw
the same neighbours as in the whole frame (``tests/io/test_yuv.py`` checks it bit for bit).

Decoding does the same the other way (:func:`rgb_window`): only the faces' window is
converted to RGB. The window is cut from the decoded frame by FFmpeg's ``crop`` filter,
which keeps the frame's chroma siting (a picture rebuilt from the frame's planes loses
it, which PyAV 18 does not expose, and converts up to 15 levels differently at colour
edges), again with :data:`MARGIN` more on each side.

A picture is kept as FFmpeg's packed ``yuv420p`` array (``VideoFrame.to_ndarray``): the
``H x W`` luma plane, then the two ``H/2 x W/2`` chroma planes, flattened, as
``(3H/2, W)`` uint8.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

Window = tuple[slice, slice]  # (rows, cols) of a frame
UNCHANGED: Window = (slice(0, 0), slice(0, 0))  # a frame whose picture is the source's

# Pixels added on each side of a window before converting it: more than the reach of
# swscale's chroma filters (bilinear up, bicubic down: 2 chroma samples = 4 pixels).
MARGIN = 16

# Colour matrices whose decode (the frame's tag) and encode (the stream's tag) agree, and
# ranges both read as limited: only there does a converted window meet the untouched rest
# without a seam.
_MATRICES = frozenset({1, 2, 5, 6})  # BT.709, unspecified (BT.601), BT.470BG, SMPTE 170M
_RANGES = frozenset({0, 1})  # unspecified, limited


def converts_windows(pix_fmt: str, width: int, height: int, rotation: int, colorspace: int, color_range: int) -> bool:
    """Whether a stream's frames can pass through as YUV outside the faces (8-bit 4:2:0,
    even size, stored upright, a matrix and range that convert both ways alike)."""
    return (
        pix_fmt == "yuv420p"
        and width % 2 == 0
        and height % 2 == 0
        and rotation % 360 == 0
        and colorspace in _MATRICES
        and color_range in _RANGES
    )


def grown(window: Window, height: int, width: int, margin: int = MARGIN) -> Window | None:
    """``window`` grown by ``margin`` on each side, aligned outward to even rows and
    columns and clipped to the frame; None when it is empty."""
    rows, cols = window
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return None
    top, left = max((rows.start - margin) // 2 * 2, 0), max((cols.start - margin) // 2 * 2, 0)
    bottom = min(-(-(rows.stop + margin) // 2) * 2, height)
    right = min(-(-(cols.stop + margin) // 2) * 2, width)
    return slice(top, bottom), slice(left, right)


def steady(window: Window, height: int, width: int, multiple: int = 32) -> Window:
    """An even-aligned ``window`` grown to sides that are multiples of ``multiple`` (even) where
    the ``height x width`` frame allows (down and right, else up and left).

    swscale rebuilds its context whenever the picture's size changes (~1 ms for a face
    window), and a face's window changes size from frame to frame: rounded up, it keeps one
    size for many frames. Converting more around a window changes nothing inside it
    (:data:`MARGIN`), so any window that holds the grown one will do.
    """

    def axis(part: slice, size: int) -> slice:
        side = min(-(-(part.stop - part.start) // multiple) * multiple, size)
        start = min(part.start, size - side)
        return slice(start, start + side)

    return axis(window[0], height), axis(window[1], width)


def planes(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y ``(H, W)``, U and V ``(H/2, W/2)`` planes of a packed ``(3H/2, W)`` picture."""
    width = packed.shape[1]
    height = packed.shape[0] * 2 // 3
    flat = packed.reshape(-1)
    luma, chroma = height * width, (height // 2) * (width // 2)
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
    return y, u, v


def put_rgb_window(
    packed: np.ndarray,
    rgb: np.ndarray,
    window: Window,
    inner: Window,
    dst_colorspace: str | None,
    dst_color_range: int,
    interpolation: int,
    reformatter: VideoReformatter,
) -> None:
    """Convert ``rgb``'s even-aligned ``window`` (an ``(H, W, 3)`` uint8 frame) to YUV and
    write its part ``inner`` (even-aligned, inside ``window`` by :data:`MARGIN` where not at
    the frame's edge) into the packed picture, in place."""
    rows, cols = window
    source = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[rows, cols]), format="rgb24")
    converted = reformatter.reformat(
        source, format="yuv420p", dst_colorspace=dst_colorspace, dst_color_range=dst_color_range,
        interpolation=interpolation,
    ).to_ndarray()
    inside = (
        slice(inner[0].start - rows.start, inner[0].stop - rows.start),
        slice(inner[1].start - cols.start, inner[1].stop - cols.start),
    )
    (y, u, v), (part_y, part_u, part_v) = planes(packed), planes(converted)
    y[inner] = part_y[inside]
    u[halved(inner)] = part_u[halved(inside)]
    v[halved(inner)] = part_v[halved(inside)]


def halved(window: Window) -> Window:
    """An even-aligned window of the picture in its chroma planes' samples."""
    return slice(window[0].start // 2, window[0].stop // 2), slice(window[1].start // 2, window[1].stop // 2)


def rgb_window(
    frame: av.VideoFrame, window: Window, interpolation: int, reformatter: VideoReformatter | None = None
) -> np.ndarray:
    """``frame``'s picture ``(H, W, 3)`` uint8 in RGB inside ``window`` only, zero elsewhere.

    Inside the window the pixels are those that converting the whole frame gives, bit for
    bit: the cut is :data:`MARGIN` larger on each side and aligned to the chroma grid. The
    zeros are calloc'd, so the rest of the picture costs neither time nor (untouched) memory.
    Pass the same ``reformatter`` for every frame: a new one sets swscale up again (~2 ms).
    """
    from av.filter import Graph

    height, width = frame.height, frame.width
    canvas = np.zeros((height, width, 3), np.uint8)
    cut = grown(window, height, width)
    if cut is None:
        return canvas
    cut = steady(cut, height, width)
    (top, bottom), (left, right) = (cut[0].start, cut[0].stop), (cut[1].start, cut[1].stop)
    graph = Graph()
    source = graph.add_buffer(
        width=width, height=height, format=frame.format.name, time_base=frame.time_base or Fraction(1, 1000)
    )
    crop = graph.add("crop", f"w={right - left}:h={bottom - top}:x={left}:y={top}:exact=1")
    sink = graph.add("buffersink")
    source.link_to(crop)
    crop.link_to(sink)
    graph.configure()
    graph.push(frame)
    reformatter = reformatter or VideoReformatter()
    part = reformatter.reformat(graph.pull(), format="rgb24", interpolation=interpolation).to_ndarray()
    rows, cols = window
    canvas[window] = part[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
    return canvas


# Limited-range luma (16..235) -> full-range grey (0..255).
_LUMA_TO_GREY = np.clip(np.rint((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def grey_from_luma(packed: np.ndarray) -> np.ndarray:
    """The grey picture ``(H, W)`` uint8 of a packed ``(3H/2, W)`` limited-range picture: its luma, stretched to full range.

    What converting to RGB and back to grey gives, to 1 level where the RGB does not clip, at
    no conversion's cost: for BT.601 the chroma terms of ``0.299 R + 0.587 G + 0.114 B`` cancel.
    """
    height = packed.shape[0] * 2 // 3
    return cv2.LUT(packed[:height], _LUMA_TO_GREY)  # 8x numpy's fancy indexing
