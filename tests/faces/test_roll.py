"""deidvid.faces.roll: faces at any roll are found, fitted and covered (issue: rolled faces left sharp)."""

from __future__ import annotations

import math

import av
import cv2
import numpy as np
import pytest

from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video
from deidvid.faces.detect import FaceDetector
from deidvid.faces.landmarks import LandmarkPredictor, to_grey
from deidvid.faces.roll import UprightView, detect_any_roll, eye_roll, turned_to_frame
from deidvid.faces.types import Detection
from deidvid.io.decode import iter_frames, probe
from deidvid.testing.synthetic_video import face_boxes, make_face_video

N_FRAMES = 24


def test_turned_points_map_back_to_the_frame():
    frame = np.arange(5 * 7).reshape(5, 7)  # H 5, W 7
    for k in (1, 2, 3):
        turned = np.rot90(frame, k)
        ys, xs = np.mgrid[: turned.shape[0], : turned.shape[1]]
        back = turned_to_frame(np.c_[xs.ravel(), ys.ravel()], k, 7, 5).round().astype(int)
        np.testing.assert_array_equal(frame[back[:, 1], back[:, 0]], turned.ravel())


def test_upright_view_round_trips_and_levels_the_eyes():
    view = UprightView((40.0, 30.0), math.radians(100), 64)
    eyes = np.array([[40.0, 20.0], [38.0, 31.0]])
    np.testing.assert_allclose(view.to_frame(view.to_patch(eyes)), eyes, atol=1e-9)
    roll = eye_roll(*eyes)
    level = UprightView((40.0, 30.0), roll, 64).to_patch(eyes)
    assert abs(level[0, 1] - level[1, 1]) < 1e-9 and level[1, 0] > level[0, 0]


class _ViewsDetector:
    """A detector stub: per view (0 = the frame, 1-3 its quarter turns), the frame-pixel boxes
    it reports there (as a detector in that view would, in the view's pixels)."""

    def __init__(self, boxes: dict[int, list[tuple[list[float], float]]]) -> None:
        self.boxes = boxes

    def shrink(self, frame: np.ndarray) -> np.ndarray:
        return frame

    def detect_batch(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        out = []
        for k in range(len(frames)):
            found = []
            for box, score in self.boxes.get(k, []):
                # frame pixels -> view k's pixels: the inverse of turned_to_frame (4 - k turns)
                corners = turned_to_frame(np.array(box, float).reshape(2, 2), (4 - k) % 4, *frames[k].shape[1::-1])
                view_box = np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
                points = np.tile(view_box[:2], (5, 1)) + np.linspace(0, 1, 10).reshape(5, 2)
                found.append(Detection(view_box, score, points.astype(np.float32)))
            out.append(found)
        return out


def test_a_face_seen_sideways_in_a_turned_view_is_not_a_second_face():
    frame = np.zeros((240, 320, 3), np.uint8)
    upright = ([138, 85, 205, 170], 0.999)
    sideways = ([113, 63, 180, 144], 0.56)  # measured on a synthetic clip: overlap 0.46, centre inside
    found = detect_any_roll(_ViewsDetector({0: [upright], 1: [sideways]}), frame)
    assert len(found) == 1 and found[0].score == pytest.approx(0.999)
    # Two faces side by side stay two, whatever views found them.
    other = ([230, 85, 300, 170], 0.9)
    found = detect_any_roll(_ViewsDetector({0: [upright], 1: [other]}), frame)
    assert len(found) == 2


def _rolled_video(src, dst, turns: int):
    """``src`` with every frame turned by ``turns`` quarter turns (no rotation flag: the face is rolled)."""
    frames = [np.ascontiguousarray(np.rot90(f.rgb, turns)) for f in iter_frames(src, probe(src))]
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "8"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode(None))
    return dst


def _inner_detail(rgb: np.ndarray, box: np.ndarray) -> float:
    """Laplacian variance of the middle half of a face box ``(4,)`` xyxy: the detail a cover removes."""
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
    inner = (slice(int(cy - hh), int(cy + hh)), slice(int(cx - hw), int(cx + hw)))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[inner]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def upright(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("roll") / "up.mp4", n_frames=N_FRAMES, audio=False)


@pytest.mark.parametrize("turns", [1, 2])
def test_detection_and_landmarks_follow_a_rolled_face(upright, tmp_path, turns):
    rolled = _rolled_video(upright, tmp_path / "rolled.mp4", turns)
    frame = next(iter_frames(rolled, probe(rolled))).rgb
    detector, landmarker = FaceDetector(), LandmarkPredictor()
    found = detect_any_roll(detector, frame)
    assert len(found) == 1
    marks = landmarker.fit(to_grey(frame), found[0])
    # The landmarks, turned back with the frame, sit where the upright video's do.
    up = next(iter_frames(upright, probe(upright))).rgb
    expected = landmarker.fit(to_grey(up), detector(up)[0])
    back = turned_to_frame(marks, turns, up.shape[1], up.shape[0])
    eye_dist = np.linalg.norm(expected[36:42].mean(0) - expected[42:48].mean(0))
    assert np.median(np.linalg.norm(back - expected, axis=1)) < 0.1 * eye_dist


@pytest.mark.parametrize("turns", [1, 2])
def test_a_rolled_face_is_covered_in_every_frame(upright, tmp_path, turns):
    rolled = _rolled_video(upright, tmp_path / "rolled.mp4", turns)
    report = anonymise_video(rolled, tmp_path / "out.mp4", AnonymiseOptions(identity_check=False, keep_pulse=False))
    assert report.faces == 1
    # Checked independently of deidvid's detector: the synthetic head's known box, turned back upright,
    # and OpenCV's Haar cascade on the upright original to confirm a face is there.
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = face_boxes(N_FRAMES)[:, 0]
    originals = [np.rot90(f.rgb, -turns) for f in iter_frames(rolled, probe(rolled))]
    outputs = [np.rot90(f.rgb, -turns) for f in iter_frames(tmp_path / "out.mp4", probe(tmp_path / "out.mp4"))]
    for i, (orig, out) in enumerate(zip(originals, outputs)):
        grey = cv2.cvtColor(np.ascontiguousarray(orig), cv2.COLOR_RGB2GRAY)
        assert len(cascade.detectMultiScale(grey, 1.1, 3, minSize=(30, 30))) >= 1, i
        assert _inner_detail(out, boxes[i]) < 0.3 * _inner_detail(orig, boxes[i]), f"frame {i}: the inner face kept its detail"


def test_a_rolled_face_gets_a_surrogate_not_the_cover(upright, tmp_path):
    rolled = _rolled_video(upright, tmp_path / "rolled.mp4", 1)
    report = anonymise_video(rolled, tmp_path / "out.mp4", AnonymiseOptions(method="surrogate", keep_pulse=False))
    assert report.faces == 1 and not report.warnings  # meshed in every frame: no blur cover needed
    assert all(scores["match_rate"] == 0.0 for scores in report.identity_check.values())


def test_a_rolled_face_appearing_between_turned_detections_is_covered_from_its_first_frame(upright, tmp_path):
    """The turned views run on every 2nd detection frame (frames 0, 6, 12, ... here): a rolled
    face that appears at frame 7 is found at frame 12 at the latest and tracked back to frame 7."""
    appears = 7
    rolled = _rolled_video(upright, tmp_path / "rolled.mp4", 2)  # upside down: the upright view misses it
    frames = [f.rgb for f in iter_frames(rolled, probe(rolled))]
    empty = np.full_like(frames[0], 128)
    late = tmp_path / "late.mp4"
    with av.open(str(late), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "8"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for i, f in enumerate(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(empty if i < appears else f, format="rgb24")))
        out.mux(stream.encode(None))
    report = anonymise_video(late, tmp_path / "out.mp4", AnonymiseOptions(identity_check=False, keep_pulse=False))
    assert report.faces >= 1
    boxes = face_boxes(N_FRAMES)[:, 0]
    outputs = [np.rot90(f.rgb, -2) for f in iter_frames(tmp_path / "out.mp4", probe(tmp_path / "out.mp4"))]
    for i in range(appears, N_FRAMES):
        original = np.rot90(frames[i], -2)
        assert _inner_detail(outputs[i], boxes[i]) < 0.3 * _inner_detail(original, boxes[i]), f"frame {i}: the inner face kept its detail"
