"""Files with several video streams: every stream is searched, anonymised and written (issue: dropped streams)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video
from deidvid.io.decode import iter_frames, probe
from deidvid.testing.synthetic_video import face_boxes, make_face_video

N_FRAMES = 20
WIDTH = 320


def _two_stream_video(src, dst):
    """``src``'s frames as video stream 0, the same frames mirrored (face on the other side) as
    stream 1, and ``src``'s audio packets: a camera that records two views."""
    frames = [f.rgb for f in iter_frames(src, probe(src))]
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        streams = []
        for _ in range(2):
            stream = out.add_stream("libx264", rate=30, options={"crf": "8"})
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = "yuv420p"
            streams.append(stream)
        audio = out.add_stream_from_template(source.streams.audio[0])
        for rgb in frames:
            for stream, picture in zip(streams, (rgb, np.ascontiguousarray(rgb[:, ::-1]))):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        for stream in streams:
            out.mux(stream.encode(None))
        for packet in source.demux(source.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = audio
                out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def two_streams(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streams")
    src = make_face_video(folder / "in.mp4", n_frames=N_FRAMES, audio=True)
    return _two_stream_video(src, folder / "two.mp4")


def _decoded(path, index: int) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(container.streams.video[index]))
    return [f.to_ndarray(format="rgb24") for f in frames], [f.pts for f in frames]


def _inner_detail(rgb: np.ndarray, box: np.ndarray) -> float:
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[int(cy - hh) : int(cy + hh), int(cx - hw) : int(cx + hw)]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def test_every_video_stream_is_anonymised_and_kept(two_streams, tmp_path):
    out = tmp_path / "out.mp4"
    report = anonymise_video(two_streams, out, AnonymiseOptions(identity_check=False, keep_pulse=False))
    assert [s.stream_index for s in report.video_streams] == [0, 1]
    assert report.faces == 2 and sorted(t.video for t in report.tracks) == [0, 1]
    assert report.frames == report.frames_written == 2 * N_FRAMES
    assert not any("video stream" in w for w in report.warnings)
    with av.open(str(out)) as container:
        assert len(container.streams.video) == 2 and len(container.streams.audio) == 1
    # Checked independently of deidvid's detector: the synthetic head's known box (mirrored in
    # stream 1) and OpenCV's Haar cascade on each original frame to confirm a face is there.
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = face_boxes(N_FRAMES)[:, 0]
    for index in (0, 1):
        originals, original_pts = _decoded(two_streams, index)
        outputs, output_pts = _decoded(out, index)
        assert output_pts == original_pts
        for i, (orig, anonymised) in enumerate(zip(originals, outputs)):
            grey = cv2.cvtColor(orig, cv2.COLOR_RGB2GRAY)
            assert len(cascade.detectMultiScale(grey, 1.1, 3, minSize=(30, 30))) >= 1, (index, i)
            box = boxes[i] if index == 0 else np.array([WIDTH - boxes[i][2], boxes[i][1], WIDTH - boxes[i][0], boxes[i][3]])
            assert _inner_detail(anonymised, box) < 0.3 * _inner_detail(orig, box), f"stream {index} frame {i}"


def test_each_stream_is_reported(two_streams, tmp_path):
    """A stream without a face is named in the report; the other's face is still processed."""
    src = tmp_path / "one_face.mkv"
    frames = [f.rgb for f in iter_frames(two_streams, probe(two_streams))]
    with av.open(str(src), "w") as out:
        streams = [out.add_stream("libx264", rate=30, options={"crf": "8"}) for _ in range(2)]
        for stream in streams:
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = "yuv420p"
        for rgb in frames:
            blank = np.full_like(rgb, 90)
            for stream, picture in zip(streams, (blank, rgb)):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        for stream in streams:
            out.mux(stream.encode(None))
    report = anonymise_video(src, tmp_path / "out.mkv", AnonymiseOptions(identity_check=False, keep_pulse=False))
    assert [(s.stream_index, s.faces) for s in report.video_streams] == [(0, 0), (1, 1)]
    assert report.tracks[0].video == 1
    assert any(w.startswith("video stream #0: no face found") for w in report.warnings)


def test_subtitles_are_not_copied_and_the_report_says_so(tmp_path):
    src = tmp_path / "subs.mkv"
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=30, options={"crf": "23", "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        out.add_stream("ass")  # subtitles may name the people filmed
        for i in range(6):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")))
        out.mux(video.encode(None))
    assert probe(src).subtitle_streams == 1
    dst = tmp_path / "out.mkv"
    report = anonymise_video(src, dst, AnonymiseOptions(identity_check=False))
    with av.open(str(dst)) as written:
        assert len(written.streams.subtitles) == 0
    assert any("1 subtitle stream(s) not copied" in w for w in report.warnings)
