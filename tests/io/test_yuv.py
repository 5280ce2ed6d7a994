"""deidvid.io.yuv: only the faces' window goes back to YUV; the rest is the source's own samples."""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.video.reformatter import Interpolation, VideoReformatter

from deidvid.io.decode import NO_PICTURE, RGB_INTERPOLATION, iter_frames, probe
from deidvid.io.encode import VideoWriter
from deidvid.io.yuv import MARGIN, converts_windows, grown, halved, planes, put_rgb_window, rgb_window, steady
from deidvid.testing.synthetic_video import make_face_video

# The encoder's flags (deidvid.io.encode): bicubic chroma, accurate rounding.
FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND


def _whole_frame_yuv(rgb: np.ndarray, colorspace: str | None) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return (
        VideoReformatter()
        .reformat(frame, format="yuv420p", dst_colorspace=colorspace, dst_color_range=1, interpolation=FLAGS)
        .to_ndarray()
    )


def test_grown_windows_are_even_and_clipped():
    assert grown((slice(5, 9), slice(0, 0)), 100, 100) is None
    assert grown((slice(5, 9), slice(3, 7)), 100, 100, margin=0) == (slice(4, 10), slice(2, 8))
    assert grown((slice(5, 95), slice(3, 7)), 100, 101, margin=MARGIN) == (slice(0, 100), slice(0, 24))


def test_steady_windows_hold_the_window_in_sides_of_the_multiple():
    rng = np.random.default_rng(1)
    for _ in range(200):
        height, width = 2 * int(rng.integers(1, 80)), 2 * int(rng.integers(1, 80))
        top, left = 2 * int(rng.integers(0, height // 2)), 2 * int(rng.integers(0, width // 2))
        window = (slice(top, 2 * int(rng.integers(top // 2 + 1, height // 2 + 1))),
                  slice(left, 2 * int(rng.integers(left // 2 + 1, width // 2 + 1))))
        rows, cols = steady(window, height, width, multiple=16)
        for got, want, size in ((rows, window[0], height), (cols, window[1], width)):
            assert 0 <= got.start <= want.start and want.stop <= got.stop <= size
            assert got.start % 2 == 0 and got.stop % 2 == 0
            assert (got.stop - got.start) % 16 == 0 or got.stop - got.start == size
    assert steady((slice(0, 100), slice(60, 70)), 100, 80, multiple=32) == (slice(0, 100), slice(48, 80))


@pytest.mark.parametrize("colorspace", [None, "itu709"])
@pytest.mark.parametrize("steady_size", [False, True])
def test_a_window_converts_as_in_the_whole_frame(colorspace, steady_size):
    """Inside the (even-aligned) window, the samples are the whole frame's conversion, bit for
    bit, wherever it lies (edges and corners included), also when more is converted around it
    (``steady``); outside, the picture is untouched."""
    rng = np.random.default_rng(0)
    height, width = 120, 200
    # Smooth content plus sharp colour edges: chroma filters must see the same neighbours.
    yy, xx = np.mgrid[:height, :width]
    rgb = np.stack([(xx * 1.2) % 256, (yy * 2.1) % 256, ((xx + yy) * 0.7) % 256], -1).astype(np.uint8)
    rgb[rng.random((height, width)) < 0.05] = rng.integers(0, 256, 3, dtype=np.uint8)
    reference = _whole_frame_yuv(rgb, colorspace)
    source = rng.integers(16, 236, reference.shape, dtype=np.uint8)
    reformatter = VideoReformatter()
    for _ in range(40):
        top, left = int(rng.integers(0, height - 2)), int(rng.integers(0, width - 2))
        area = (slice(top, int(rng.integers(top + 1, height + 1))), slice(left, int(rng.integers(left + 1, width + 1))))
        inner, outer = grown(area, height, width, margin=0), grown(area, height, width)
        if steady_size:
            outer = steady(outer, height, width)
        packed = source.copy()
        put_rgb_window(packed, rgb, outer, inner, colorspace, 1, FLAGS, reformatter)
        for plane, (got, want, was) in enumerate(zip(planes(packed), planes(reference), planes(source))):
            window = inner if plane == 0 else halved(inner)
            np.testing.assert_array_equal(got[window], want[window])
            outside = np.ones(got.shape, bool)
            outside[window] = False
            np.testing.assert_array_equal(got[outside], was[outside])


def test_which_streams_pass_through():
    assert converts_windows("yuv420p", 320, 240, 0, 2, 0)
    assert converts_windows("yuv420p", 320, 240, 0, 1, 1)  # BT.709, limited
    assert not converts_windows("yuv420p", 320, 240, 90, 2, 0)  # stored turned
    assert not converts_windows("yuv420p", 321, 240, 0, 2, 0)  # odd: written 4:4:4
    assert not converts_windows("yuv420p", 320, 240, 0, 2, 2)  # full range
    assert not converts_windows("yuv420p", 320, 240, 0, 9, 1)  # BT.2020: not read with its own matrix
    assert not converts_windows("yuv422p", 320, 240, 0, 2, 0)
    assert not converts_windows("yuv420p10le", 320, 240, 0, 2, 0)


@pytest.mark.parametrize("bt709", [False, True])
def test_writer_keeps_the_source_outside_the_changed_window(tmp_path, bt709):
    """Through the writer at x264's lossless CRF 0: the decoded output is the source's YUV
    outside the changed window and the whole-frame conversion of the new picture inside."""
    src = make_face_video(tmp_path / "src.mp4", n_frames=3, size=(160, 120), audio=False, bt709=bt709)
    info = probe(src)
    dst = tmp_path / "out.mp4"
    area = (slice(31, 77), slice(45, 101))
    expected = []
    with VideoWriter(dst, info, crf=0, copy_audio=False) as writer:
        for frame in iter_frames(src, info, keep_yuv=True):
            assert frame.yuv is not None and frame.yuv.shape == (180, 160)
            picture = frame.rgb.copy()
            picture[area] = 255 - picture[area]
            whole = _whole_frame_yuv(picture, "itu709" if bt709 else None)
            want = frame.yuv.copy()
            inner = grown(area, 120, 160, margin=0)
            for plane, (w, c) in enumerate(zip(planes(want), planes(whole))):
                window = inner if plane == 0 else halved(inner)
                w[window] = c[window]
            expected.append(want)
            writer.write(frame, picture, changed=area)
    with av.open(str(dst)) as container:
        got = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_no_yuv_where_the_stream_cannot_pass_through(tmp_path):
    turned = make_face_video(tmp_path / "turned.mp4", n_frames=2, size=(160, 120), audio=False, rotation=90)
    odd = make_face_video(tmp_path / "odd.mp4", n_frames=2, size=(161, 121), audio=False)
    plain = make_face_video(tmp_path / "plain.mp4", n_frames=2, size=(160, 120), audio=False)
    assert all(f.yuv is None for f in iter_frames(turned, keep_yuv=True))
    assert all(f.yuv is None for f in iter_frames(odd, keep_yuv=True))
    assert all(f.yuv is None for f in iter_frames(plain))  # not asked


def test_only_the_part_needed_in_rgb_is_converted(tmp_path):
    """Frames keep their whole YUV; the RGB part asked for is the whole frame's conversion
    bit for bit (windows at the edges, odd-aligned, one pixel wide included), the rest zero;
    an empty part is not converted at all."""
    video = make_face_video(tmp_path / "plain.mp4", n_frames=6, size=(160, 120), audio=False)
    parts = {
        0: (slice(10, 90), slice(20, 140)),
        1: (slice(0, 0), slice(0, 0)),
        2: (slice(0, 120), slice(101, 160)),  # the right edge, an odd column
        3: (slice(57, 58), slice(3, 4)),  # one pixel
        4: None,  # all of it
        5: (slice(0, 120), slice(0, 160)),
    }
    full = list(iter_frames(video, keep_yuv=True))
    lean = list(iter_frames(video, keep_yuv=True, rgb_part=parts.__getitem__))
    for a, b in zip(full, lean, strict=True):
        np.testing.assert_array_equal(a.yuv, b.yuv)
        part = parts[b.index]
        if part is None:
            np.testing.assert_array_equal(a.rgb, b.rgb)
        elif part[0].stop == part[0].start:
            assert b.rgb is NO_PICTURE and b.rgb.size == 0
        else:
            np.testing.assert_array_equal(a.rgb[part], b.rgb[part])
            outside = np.ones(b.rgb.shape[:2], bool)
            outside[part] = False
            assert not b.rgb[outside].any()
    # Without the YUV there is nothing else to encode from: every frame is converted whole.
    turned = make_face_video(tmp_path / "turned.mp4", n_frames=2, size=(160, 120), audio=False, rotation=90)
    assert all(f.rgb.size and f.rgb.all(axis=2).any() for f in iter_frames(turned, keep_yuv=True, rgb_part=lambda index: (slice(0, 0), slice(0, 0))))


def test_a_window_decodes_as_in_the_whole_frame_on_real_video(shared_data):
    """Real camera video (chroma at colour edges, the decoder's chroma siting): a window cut
    by the crop filter converts bit for bit as in the whole frame (rebuilding a picture from
    its planes does not: up to 15 levels off)."""
    rng = np.random.default_rng(0)
    for path in sorted((shared_data / "ubfc").glob("*/vid.mp4"))[:2]:
        container = av.open(str(path))
        try:
            frame = next(container.decode(video=0))
        finally:
            container.close()
        whole = VideoReformatter().reformat(frame, format="rgb24", interpolation=RGB_INTERPOLATION).to_ndarray()
        reused = VideoReformatter()  # as iter_frames passes it: one for windows of every size
        for _ in range(20):
            top, left = int(rng.integers(0, frame.height - 1)), int(rng.integers(0, frame.width - 1))
            part = (slice(top, int(rng.integers(top + 1, frame.height + 1))), slice(left, int(rng.integers(left + 1, frame.width + 1))))
            np.testing.assert_array_equal(rgb_window(frame, part, RGB_INTERPOLATION)[part], whole[part])
            np.testing.assert_array_equal(rgb_window(frame, part, RGB_INTERPOLATION, reused)[part], whole[part])


def _assert_grey_from_luma_matches(video):
    from deidvid.faces.landmarks import to_grey
    from deidvid.io.yuv import grey_from_luma

    from itertools import islice

    for frame in islice(iter_frames(video, keep_yuv=True), 30):
        grey = grey_from_luma(frame.yuv)
        assert grey.shape == frame.rgb.shape[:2] and grey.dtype == np.uint8 and grey.flags.c_contiguous
        off = np.abs(grey.astype(int) - to_grey(frame.rgb))
        clipped = ((frame.rgb == 0) | (frame.rgb == 255)).any(axis=2)  # where RGB cannot hold the colour
        assert off[~clipped].max() <= 1 and (off > 1).mean() < 2e-3


def test_grey_from_luma_is_the_rgb_pictures_grey(tmp_path):
    """The decoded luma, stretched to full range, is what converting to RGB and then to grey
    gives (pass 1's landmarks read it): to 1 level where the RGB picture does not clip."""
    _assert_grey_from_luma_matches(make_face_video(tmp_path / "face.mp4", n_frames=3, size=(160, 120), audio=False))


def test_grey_from_luma_on_camera_video(shared_data):
    _assert_grey_from_luma_matches(sorted((shared_data / "ubfc").glob("*/vid.mp4"))[0])
