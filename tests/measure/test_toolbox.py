"""``deidvid.measure.toolbox`` against a loop-by-loop copy of rPPG-Toolbox's preprocessing.

Reference: ubicomplab/rPPG-Toolbox ``dataset/data_loader/BaseLoader.py``
(``face_detection`` with backend ``HC``, ``crop_face_resize``) and
``unsupervised_methods/utils.py`` (``process_video``), transcribed as they are (prints
dropped, the cascade path pointed at OpenCV's copy of the same file).
"""

from __future__ import annotations

from math import ceil

import cv2
import numpy as np
import pytest

from deidvid.measure.detection import face_box
from deidvid.measure.toolbox import (
    HaarRate,
    ToolboxTraces,
    haar_faces,
    haar_found_at,
    toolbox_face_box,
    toolbox_hr,
    toolbox_scores,
)
from deidvid.rppg import methods
from deidvid.rppg.hr import heart_rate
from deidvid.testing.synthetic_video import render_face_frame

# ----------------------------------------------------------------- the toolbox's code


def ref_face_detection(frame, backend="HC", use_larger_box=False, larger_box_coef=1.0):
    if backend == "HC":
        detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        face_zone = detector.detectMultiScale(frame[:, :, :3].astype(np.uint8))
        if len(face_zone) < 1:
            face_box_coor = [0, 0, frame.shape[0], frame.shape[1]]
        elif len(face_zone) >= 2:
            max_width_index = np.argmax(face_zone[:, 2])
            face_box_coor = face_zone[max_width_index]
        else:
            face_box_coor = face_zone[0]
    else:
        raise ValueError("Unsupported face detection backend!")
    if use_larger_box:
        face_box_coor[0] = max(0, face_box_coor[0] - (larger_box_coef - 1.0) / 2 * face_box_coor[2])
        face_box_coor[1] = max(0, face_box_coor[1] - (larger_box_coef - 1.0) / 2 * face_box_coor[3])
        face_box_coor[2] = larger_box_coef * face_box_coor[2]
        face_box_coor[3] = larger_box_coef * face_box_coor[3]
    return face_box_coor


def ref_crop_face_resize(frames, use_face_detection, backend, use_larger_box, larger_box_coef, use_dynamic_detection,
                         detection_freq, use_median_box, width, height):
    if use_dynamic_detection:
        num_dynamic_det = ceil(frames.shape[0] / detection_freq)
    else:
        num_dynamic_det = 1
    face_region_all = []
    for idx in range(num_dynamic_det):
        if use_face_detection:
            face_region_all.append(ref_face_detection(frames[detection_freq * idx], backend, use_larger_box, larger_box_coef))
        else:
            face_region_all.append([0, 0, frames.shape[1], frames.shape[2]])
    face_region_all = np.asarray(face_region_all, dtype="int")
    if use_median_box:
        face_region_median = np.median(face_region_all, axis=0).astype("int")
    total_frames, _, _, channels = frames.shape
    resized_frames = np.zeros((total_frames, height, width, channels))
    for i in range(total_frames):
        frame = frames[i]
        if use_dynamic_detection:
            reference_index = i // detection_freq
        else:
            reference_index = 0
        if use_face_detection:
            if use_median_box:
                face_region = face_region_median
            else:
                face_region = face_region_all[reference_index]
            frame = frame[max(face_region[1], 0):min(face_region[1] + face_region[3], frame.shape[0]),
                          max(face_region[0], 0):min(face_region[0] + face_region[2], frame.shape[1])]
        resized_frames[i] = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return resized_frames, face_region_all[0]


def ref_process_video(frames):
    rgb = []
    for frame in frames:
        summation = np.sum(np.sum(frame, axis=0), axis=0)
        rgb.append(summation / (frame.shape[0] * frame.shape[1]))
    rgb = np.asarray(rgb)
    return rgb.transpose(1, 0).reshape(1, 3, -1)


def ref_unsupervised_rgb(frames):
    """The default unsupervised config: HC, larger box 1.5, first frame only, 72x72."""
    resized, box = ref_crop_face_resize(frames, True, "HC", True, 1.5, False, 30, False, 72, 72)
    return ref_process_video(resized)[0].T, box  # (T, 3) as the methods read it


# ----------------------------------------------------------------- videos


def _frames(n, size=(320, 240), faces=1, fps=30.0, transform=None, motion=True):
    out = []
    for i in range(n):
        frame = render_face_frame(i / fps, size=size, faces=faces, motion=motion)
        out.append(transform(frame) if transform else frame)
    return np.stack(out)


def _left_edge(frame):
    return np.ascontiguousarray(frame[:, 115:])  # the face's box, grown 1.5x, passes the left edge


def _blank(frame):
    return np.full_like(frame, 120)


CASES = {
    "one face": {},
    "two faces (the widest wins)": {"faces": 2, "size": (480, 240)},
    "face at the left edge (box clipped at 0, not shrunk)": {"transform": _left_edge},
    "no face, 4:3 (whole frame)": {"transform": _blank},
    "no face, wider than 1.5:1 ([0, 0, H, W] quirk)": {"size": (400, 240), "transform": _blank},
}


@pytest.mark.parametrize("case", list(CASES))
def test_box_and_traces_match_the_toolbox(case):
    frames = _frames(12, **CASES[case])
    expected, expected_box = ref_unsupervised_rgb(frames)
    traces = ToolboxTraces()
    for frame in frames:
        traces.add(frame, frame)
    rgb_o, rgb_d = traces.traces()
    np.testing.assert_array_equal(traces.boxes[0], expected_box)
    np.testing.assert_allclose(rgb_o, expected, rtol=1e-12)
    np.testing.assert_array_equal(rgb_o, rgb_d)
    detected = len(haar_faces(frames[0])) > 0
    assert traces.detected == (detected, detected)
    assert detected == ("no face" not in case)


def test_box_details():
    frame = _frames(1)[0]
    (x, y, w, h), found = toolbox_face_box(frame)
    haar = haar_faces(frame)
    assert found and len(haar) == 1
    hx, hy, hw, hh = haar[0]
    assert (w, h) == (int(1.5 * hw), int(1.5 * hh))
    assert (x, y) == (int(hx - 0.25 * hw), int(hy - 0.25 * hh))
    box, found = toolbox_face_box(_blank(frame))
    assert not found and box.tolist() == [0, 0, 360, 480]  # [0, 0, H, W] x 1.5, cropped to the frame later
    wide, found = toolbox_face_box(np.full((240, 400, 3), 120, np.uint8))
    assert not found and wide.tolist() == [0, 0, 360, 600]  # only 360 of the 400 columns are used


def test_hr_of_both_videos():
    fps, n = 30.0, 300
    # A still head (the first frame's box stays on it); at 320x240 the pulse, added to all
    # three channels alike, drowns in 8-bit rounding for POS and CHROM.
    frames = _frames(n, size=(640, 480), fps=fps, motion=False)
    traces = ToolboxTraces()
    blurred = ToolboxTraces()
    for frame in frames:
        traces.add(frame, frame)
        blurred.add(frame, cv2.GaussianBlur(frame, (0, 0), 16))
    scores = toolbox_scores(traces, fps)
    reference, _ = ref_unsupervised_rgb(frames)
    for method in ("pos", "chrom"):
        entry = scores[method]
        expected = heart_rate(methods.RPPG_METHODS[method](reference, fps), fps, (0.75, 2.5))
        assert entry["hr_orig"] == pytest.approx(expected, abs=1e-9)
        assert entry["hr_orig"] == entry["hr_deid"] and entry["abs_diff"] == 0.0
        assert entry["detected"] is True
        assert entry["hr_orig"] == pytest.approx(72.0, abs=3.6)  # the synthetic pulse
    assert scores["frames"] == n and scores["box_orig"] == scores["box_deid"]
    blur = toolbox_scores(blurred, fps)
    assert blur["detected_orig"] and not blur["detected_deid"] and not blur["pos"]["detected"]
    assert blur["box_deid"] == [0, 0, 720, 960]  # whole frame


def test_hr_of_unusable_traces_is_none():
    assert toolbox_hr(np.zeros((0, 3)), 30.0, "pos") is None
    assert toolbox_hr(np.zeros((300, 3)), 30.0, "pos") is None  # black: no ratio to take
    assert toolbox_hr(np.full((5, 3), 100.0), 30.0, "chrom") is None  # too short
    assert toolbox_scores(ToolboxTraces(), 30.0)["pos"] == {
        "hr_orig": None, "hr_deid": None, "abs_diff": None, "detected": False,
    }


def test_haar_region_search_agrees_with_the_whole_frame():
    from deidvid.measure.detection import detected_at

    frames = _frames(40, size=(640, 480))[::8]
    rng = np.random.default_rng(0)
    for frame in frames:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        found = haar_faces(grey)
        boxes = np.concatenate([found[:, :2], found[:, :2] + found[:, 2:]], axis=1).astype(float)
        # targets: the detection itself, shifted until it no longer overlaps
        for shift in (0.0, 0.3, 0.6, 1.2):
            target = boxes[0] + shift * (boxes[0][2] - boxes[0][0]) * np.array([1, 0, 1, 0]) + rng.normal(0, 2, 4)
            assert haar_found_at(grey, target) == detected_at(boxes, target)


def test_haar_rate_counts_tracks(astronaut_landmarks):
    """The astronaut still: found in the original, not in a blurred copy; never for a far box."""
    import skimage.data

    image = np.ascontiguousarray(skimage.data.astronaut())
    far = astronaut_landmarks + [300.0, 300.0]
    rate = HaarRate()
    for _ in range(2):
        rate.add(image, cv2.GaussianBlur(image, (0, 0), 12), {0: astronaut_landmarks, 1: far})
    assert rate.scores(0) == {"original": 1.0, "deidentified": 0.0}
    assert rate.scores(1) == {"original": 0.0, "deidentified": 0.0}
    assert rate.scores(2) == {"original": None, "deidentified": None}
    assert face_box(astronaut_landmarks).shape == (4,)
