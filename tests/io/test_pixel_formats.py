"""Pixel formats and extra streams: chroma sampling kept, bit depth said, every video stream found."""

from __future__ import annotations

import av
import pytest

from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video
from deidvid.io.decode import iter_frames, probe
from deidvid.io.encode import bit_depth, chroma_of, output_pix_fmt
from deidvid.testing.synthetic_video import make_face_video


@pytest.mark.parametrize(
    ("pix_fmt", "size", "expected"),
    [
        ("yuv420p", (64, 48), "yuv420p"),
        ("nv12", (64, 48), "yuv420p"),
        ("yuv420p10le", (64, 48), "yuv420p"),
        ("yuv422p", (64, 48), "yuv422p"),
        ("yuv422p10le", (64, 49), "yuv422p"),  # 4:2:2 halves the width only
        ("yuv444p", (64, 48), "yuv444p"),
        ("gbrp", (64, 48), "yuv420p"),  # RGB: see output_pix_fmt
        ("yuv420p", (65, 48), "yuv444p"),  # odd sizes need full chroma
        ("yuv420p", (64, 49), "yuv444p"),
        ("yuv422p", (65, 48), "yuv444p"),
    ],
)
def test_output_keeps_the_chroma_sampling(pix_fmt, size, expected):
    assert output_pix_fmt(pix_fmt, *size) == expected


def test_chroma_and_depth_of_format_names():
    assert (chroma_of("yuvj420p"), bit_depth("yuvj420p")) == ("420", 8)
    assert (chroma_of("yuv444p12le"), bit_depth("yuv444p12le")) == ("444", 12)
    assert bit_depth("not-a-format") == 8


def _rewrite(src, dst, pix_fmt: str, copies: int = 1):
    """``src``'s frames written again as ``pix_fmt`` H.264, in ``copies`` video streams."""
    frames = [f.rgb for f in iter_frames(src, probe(src))]
    with av.open(str(dst), "w") as out:
        streams = []
        for _ in range(copies):
            stream = out.add_stream("libx264", rate=30, options={"crf": "10"})
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = pix_fmt
            streams.append(stream)
        for rgb in frames:
            for stream in streams:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)))
        for stream in streams:
            out.mux(stream.encode(None))
    return dst


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("fmt") / "in.mp4", n_frames=12, audio=False)


def test_a_10_bit_422_input_keeps_its_chroma_and_says_it_lost_bits(source, tmp_path):
    src = _rewrite(source, tmp_path / "in10.mp4", "yuv422p10le")
    report = anonymise_video(src, tmp_path / "out.mp4", AnonymiseOptions(identity_check=False, keep_pulse=False))
    assert probe(tmp_path / "out.mp4").pix_fmt == "yuv422p"
    assert any("10-bit" in w and "8 bits" in w for w in report.warnings)


def test_probe_lists_every_video_stream_and_reads_the_one_asked_for(source, tmp_path):
    src = _rewrite(source, tmp_path / "two.mp4", "yuv420p", copies=2)
    first, second = probe(src), probe(src, 1)
    assert first.video_stream_indices == second.video_stream_indices == (0, 1)
    assert (first.video_streams, first.stream_index, second.stream_index) == (2, 0, 1)
    assert second.frame_count == first.frame_count
