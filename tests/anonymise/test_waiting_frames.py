"""Pass 2's waiting frames keep only the faces' part of their RGB picture when the writer
takes the rest from the source's YUV; the output is the same as with whole pictures."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from deidvid.anonymise import run
from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video, keep_faces_part, with_whole_picture
from deidvid.faces.geometry import CropBox
from deidvid.io.decode import NO_PICTURE, Frame
from deidvid.io.encode import VideoWriter
from deidvid.io.yuv import MARGIN
from deidvid.testing.synthetic_video import make_face_video


def test_the_kept_part_covers_the_boxes_and_the_writers_margin():
    rgb = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    frame = Frame(index=3, pts=3, time_s=0.1, rgb=rgb, yuv=np.zeros((180, 200), np.uint8))
    boxes = [CropBox(50, 30, 40), CropBox(180, 100, 40)]  # the second runs off the frame
    slim, kept = keep_faces_part(frame, boxes)
    rows, cols = kept
    assert (rows.start, cols.start) == (30 - MARGIN, 50 - MARGIN)
    assert (rows.stop, cols.stop) == (120, 200)  # clipped to the frame
    assert slim.rgb.shape == (rows.stop - rows.start, cols.stop - cols.start, 3)
    assert slim.rgb.base is None  # a copy: the decoded picture can be freed
    whole = with_whole_picture(slim, kept, 120, 200).rgb
    np.testing.assert_array_equal(whole[kept], rgb[kept])
    outside = np.ones((120, 200), bool)
    outside[kept] = False
    assert not whole[outside].any()


def test_a_frame_without_faces_keeps_nothing():
    rgb = np.full((64, 64, 3), 200, np.uint8)
    slim, kept = keep_faces_part(Frame(index=0, pts=0, time_s=0.0, rgb=rgb), [])
    assert slim.rgb.size == 0
    assert not with_whole_picture(slim, kept, 64, 64).rgb.any()


def _face_clip(path: Path, astronaut: np.ndarray, appears: bool) -> Path:
    """25 fps: a face for 20 frames, then texture where it was (covered by the fallback for a
    while); or, ``appears``, 20 frames of texture first, then the face."""
    face = np.ascontiguousarray(astronaut[:256, 96:352])
    gone = face.copy()
    gone[40:200, 60:200] = np.random.default_rng(0).integers(0, 255, (160, 140, 3))
    pictures = [gone] * 20 + [face] * 20 if appears else [face] * 20 + [gone] * 20
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        for i, picture in enumerate(pictures):
            video_frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            video_frame.pts = i
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("clip", ["two_faces", "vanishing_face", "appearing_face"])
def test_output_is_identical_with_whole_waiting_pictures(tmp_path, monkeypatch, astronaut, clip):
    """Trimmed waiting pictures, and no RGB at all for frames without faces, give the same file."""
    if clip == "two_faces":
        src = make_face_video(tmp_path / "in.mp4", n_frames=40, audio=False, faces=2, size=(480, 240))
    else:
        src = _face_clip(tmp_path / "in.mp4", astronaut, appears=clip == "appearing_face")
    opts = AnonymiseOptions(identity_check=False)
    unconverted = []  # per waiting frame: decoded without an RGB picture?
    real_keep = run.keep_faces_part
    monkeypatch.setattr(run, "keep_faces_part", lambda frame, boxes: unconverted.append(frame.rgb is NO_PICTURE) or real_keep(frame, boxes))
    anonymise_video(src, tmp_path / "slim.mp4", opts)
    assert len(unconverted) == 40  # every frame waited with only its faces' part
    assert any(unconverted) == (clip == "appearing_face")  # its first frames have no face and no cover
    monkeypatch.setattr(VideoWriter, "reads_window_only", lambda self, video=0: False)
    anonymise_video(src, tmp_path / "whole.mp4", opts)
    assert len(unconverted) == 40  # no trimming in the second run
    assert (tmp_path / "slim.mp4").read_bytes() == (tmp_path / "whole.mp4").read_bytes()
