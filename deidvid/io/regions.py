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


def with_regions_of_interest(frame: av.VideoFrame, regions: Sequence[Region], qp_offset: int) -> av.VideoFrame:
    """``frame`` with region-of-interest side data: x264 codes ``regions`` ``qp_offset`` QP
    finer (negative) or coarser than the rest.

    FFmpeg's ``addroi`` filter attaches the side data (PyAV cannot write side data); one
    small filter graph per frame costs about 0.5 ms.
    """
    from av.filter import Graph

    qoffset = Fraction(max(-X264_QP_RANGE, min(X264_QP_RANGE, qp_offset)), X264_QP_RANGE)
    graph = Graph()
    last = graph.add_buffer(
        template=None, width=frame.width, height=frame.height, format=frame.format.name,
        time_base=frame.time_base or Fraction(1, 1000),  # a frame without one (tests): any base will do
    )
    for x, y, w, h in regions:
        x0, y0 = max(int(x), 0), max(int(y), 0)
        x1, y1 = min(int(x + w), frame.width), min(int(y + h), frame.height)
        if x1 <= x0 or y1 <= y0:
            continue
        roi = graph.add("addroi", f"x={x0}:y={y0}:w={x1 - x0}:h={y1 - y0}:qoffset={qoffset.numerator}/{qoffset.denominator}")
        last.link_to(roi)
        last = roi
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()
    graph.push(frame)
    return graph.pull()
