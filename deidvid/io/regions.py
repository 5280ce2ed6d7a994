"""Regions of interest: parts of a frame x264 codes at a finer quantiser (the faces)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import av

Region = tuple[int, int, int, int]  # x, y, width, height in pixels
X264_QP_RANGE = 51  # FFmpeg scales a region's qoffset in [-1, 1] by this (8-bit video)


def rotate_region(region: Region, width: int, height: int, turns: int) -> Region:
    """A display region of a ``width x height`` frame after ``turns`` clockwise quarter turns (``np.rot90(k=-turns)``)."""
    x, y, w, h = region
    for _ in range(turns % 4):
        x, y, w, h = height - y - h, x, h, w  # (col, row) -> (H - 1 - row, col)
        width, height = height, width
    return x, y, w, h


MACROBLOCK = 16  # x264 applies a region's offset to every macroblock it touches


def macroblock_regions(regions: Sequence[Region], width: int, height: int) -> tuple[Region, ...]:
    """``regions`` clipped to a ``width x height`` frame and grown to whole macroblocks (empty
    ones dropped). x264 (FFmpeg's ``setup_roi``) codes every macroblock a region touches at its
    offset, so the grown regions code exactly as the given ones, and a face that moves by a
    pixel usually keeps the same regions."""
    snapped = []
    for x, y, w, h in regions:
        x0, y0 = max(int(x), 0), max(int(y), 0)
        x1, y1 = min(int(x + w), width), min(int(y + h), height)
        if x1 <= x0 or y1 <= y0:
            continue
        x0, y0 = x0 // MACROBLOCK * MACROBLOCK, y0 // MACROBLOCK * MACROBLOCK
        x1 = min(-(-x1 // MACROBLOCK) * MACROBLOCK, width)
        y1 = min(-(-y1 // MACROBLOCK) * MACROBLOCK, height)
        snapped.append((x0, y0, x1 - x0, y1 - y0))
    return tuple(snapped)


class RegionMarker:
    """Marks frames with region-of-interest side data: x264 codes the regions ``qp_offset`` QP
    finer (negative) or coarser than the rest.

    FFmpeg's ``addroi`` filter attaches the side data (PyAV cannot write side data). A
    filter graph costs ~1.5 ms to build, so the last one is kept while the frames' regions
    (on the macroblock grid: :func:`macroblock_regions`), offset and format stay the same.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._graph = None

    def mark(self, frame: av.VideoFrame, regions: Sequence[Region], qp_offset: int) -> av.VideoFrame:
        """``frame`` with ``regions`` ``(x, y, w, h)`` marked (the frame itself when none lies in it)."""
        snapped = macroblock_regions(regions, frame.width, frame.height)
        if not snapped:
            return frame
        qoffset = Fraction(max(-X264_QP_RANGE, min(X264_QP_RANGE, qp_offset)), X264_QP_RANGE)
        time_base = frame.time_base or Fraction(1, 1000)  # a frame without one (tests): any base will do
        key = (snapped, qoffset, frame.width, frame.height, frame.format.name, time_base)
        if key != self._key:
            self._graph, self._key = _roi_graph(snapped, qoffset, frame.width, frame.height, frame.format.name, time_base), key
        self._graph.push(frame)
        return self._graph.pull()


def _roi_graph(regions: Sequence[Region], qoffset: Fraction, width: int, height: int, pix_fmt: str, time_base: Fraction):
    """A configured filter graph: buffer -> one ``addroi`` per region -> sink."""
    from av.filter import Graph

    graph = Graph()
    last = graph.add_buffer(template=None, width=width, height=height, format=pix_fmt, time_base=time_base)
    for x, y, w, h in regions:
        roi = graph.add("addroi", f"x={x}:y={y}:w={w}:h={h}:qoffset={qoffset.numerator}/{qoffset.denominator}")
        last.link_to(roi)
        last = roi
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()
    return graph
