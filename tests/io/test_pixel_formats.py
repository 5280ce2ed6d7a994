"""Pixel formats and extra streams: chroma sampling and 10-bit depth kept, what is lost said, every video stream found."""

from __future__ import annotations

import av
import numpy as np
import pytest

from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video
from deidvid.io.decode import bit_depth, iter_frames, probe
from deidvid.io.encode import chroma_of, output_pix_fmt
from deidvid.testing.synthetic_video import make_face_video, render_face_frame


@pytest.mark.parametrize(
    ("pix_fmt", "size", "expected"),
    [
        ("yuv420p", (64, 48), "yuv420p"),
        ("nv12", (64, 48), "yuv420p"),
        ("yuv420p10le", (64, 48), "yuv420p10le"),
        ("yuv420p12le", (64, 48), "yuv420p10le"),  # x264 writes at most 10 bits
        ("yuv422p", (64, 48), "yuv422p"),
        ("yuv422p10le", (64, 49), "yuv422p10le"),  # 4:2:2 halves the width only
        ("yuv422p10le", (65, 48), "yuv444p10le"),
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


RAMP = (slice(0, 48), slice(0, 96))  # a corner of the frame, far from the face
RAMP_INSIDE = (slice(4, 44), slice(4, 92))  # away from the ramp's edges (chroma bleeds across them)


def _fine_ramp_video(path, pix_fmt: str, n_frames: int):
    """A face video (lossless, ``pix_fmt``) with a slow 16-bit ramp in a corner: levels between 8-bit steps."""
    size = (320, 240)
    ramp = np.linspace(20000, 21000, 96)[None, :, None].repeat(48, 0).repeat(3, 2)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=30)  # lossless at any depth (x264 stops at 10 bits)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        for i in range(n_frames):
            picture = render_face_frame(i / 30, size=size).astype(np.uint16) * 257
            picture[RAMP] = ramp
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb48le").reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    return path


def _deep_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb48le").astype(np.float64) for f in container.decode(video=0)]


def test_a_10_bit_input_is_written_in_10_bits_with_its_finer_levels(tmp_path):
    src = _fine_ramp_video(tmp_path / "in10.mkv", "yuv422p10le", 12)
    out = tmp_path / "out.mkv"
    report = anonymise_video(src, out, AnonymiseOptions(identity_check=False, keep_pulse=False))
    assert probe(out).pix_fmt == "yuv422p10le"
    assert not any("bit" in w for w in report.warnings)
    before, after = _deep_frames(src), _deep_frames(out)
    error = np.mean([np.abs(a[RAMP_INSIDE] - b[RAMP_INSIDE]).mean() for a, b in zip(before, after)])
    # Measured at the default CRF 16: 14.9 16-bit levels (at CRF 0: 0.0); written in 8 bits: 61.8 (68.6).
    assert error < 32, error
    # ... and the face itself was still anonymised (its inner detail is gone).
    face = (slice(95, 145), slice(135, 185))
    detail = [np.abs(np.diff(f[face][..., 1], axis=1)).mean() for f in (before[6], after[6])]
    assert detail[1] < 0.5 * detail[0]


def test_a_12_bit_input_or_lossless_says_what_it_lost(tmp_path):
    src = _fine_ramp_video(tmp_path / "in12.mkv", "yuv420p12le", 6)
    report = anonymise_video(src, tmp_path / "out.mkv", AnonymiseOptions(identity_check=False, keep_pulse=False))
    assert probe(tmp_path / "out.mkv").pix_fmt == "yuv420p10le"
    assert any("12-bit" in w and "10 bits" in w for w in report.warnings)
    lossless = anonymise_video(
        src, tmp_path / "lossless.mkv", AnonymiseOptions(identity_check=False, keep_pulse=False, lossless=True)
    )
    assert any("--lossless writes 8-bit" in w for w in lossless.warnings)


def test_probe_lists_every_video_stream_and_reads_the_one_asked_for(source, tmp_path):
    src = _rewrite(source, tmp_path / "two.mp4", "yuv420p", copies=2)
    first, second = probe(src), probe(src, 1)
    assert first.video_stream_indices == second.video_stream_indices == (0, 1)
    assert (first.video_streams, first.stream_index, second.stream_index) == (2, 0, 1)
    assert second.frame_count == first.frame_count
