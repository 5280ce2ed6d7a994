"""68-point facial landmarks with dlib's ERT shape predictor.

The predictor was trained on boxes from dlib's HOG detector, so any other box
(detector box, or the previous frame's landmarks when tracking) is first mapped to
that convention: a square about 1.03x the landmark extent, centred 8 % of the side
above the landmark centre (median over 199 LFW faces, see ``DLIB_BOX_*``).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from deidvid.faces.roll import eye_roll, is_rolled, upright_view
from deidvid.faces.types import Detection
from deidvid.weights import package_file

# dlib HOG box relative to the landmark bounding square (side s = max(w, h)).
DLIB_BOX_SCALE = 1.03
DLIB_BOX_DY = -0.08
DETECTOR_SIDE_GAIN = 0.946

# Between detections the follower re-fits from the previous landmarks' box, but dlib's fit
# barely moves from a box that is off by a third of the face: a face shaken fast (+-15 px
# every 2 frames, a 30 px jump on a 100 px face) was left behind and partly sharp (issue
# #12). The box is first moved by the face's own motion, found by matching the previous
# face region into the new frame (``face_motion``): a normalised cross-correlation over a
# reach of the face's side, at a template side of at most ``MOTION_TEMPLATE_SIDE`` px
# (measured 0.2 ms for a 20 px face, 0.6 ms for 200 px, 1.2 ms for 400 px).
MOTION_REACH = 1.0
MOTION_TEMPLATE_SIDE = 32
# Below this correlation the best match is not trusted (occlusion, blur, a face leaving the
# frame): the follower keeps the previous box, as it did without motion.
MOTION_MIN_SCORE = 0.6
# dlib's re-fit follows a face moved by up to 10 % of its size to within 0.4 px by itself
# (measured on the astronaut, 8 directions); it fails from 15 %. Motion below half of that
# is left to the fit, so slow faces are followed exactly as before (no rounding noise).
MOTION_MIN_SHIFT = 0.05


def dlib_box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The dlib-style box ``(4,)`` xyxy that would yield ``landmarks (68, 2)``."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    side = float(max(hi - lo))
    cx, cy = (lo + hi) / 2
    cy += DLIB_BOX_DY * side
    half = DLIB_BOX_SCALE * side / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def dlib_box_from_detection(det: Detection) -> np.ndarray:
    """Map a detector box ``(4,)`` with its 5 points to dlib's box convention.

    Uses the 5 points (eyes, nose, mouth corners), which are stable across
    detectors, rather than the box, whose margins differ from detector to detector.
    Medians over 299 LFW faces (dlib HOG + 68 points, eye centres and mouth
    corners): eye-mouth distance 0.454 and inter-ocular distance 0.414 of the
    landmark extent; the extent's centre lies 0.31 of it below the eye centre.
    The larger of the two size estimates is used so turned or tilted heads, which
    shorten one of them, are not under-boxed. RetinaFace's points sit a little
    wider than dlib's, so its boxes came out 1/0.946 too large against boxes refit
    from the resulting landmarks (median over 150 LFW faces): ``DETECTOR_SIDE_GAIN``.
    """
    eyes = det.points[:2].mean(axis=0)
    mouth = det.points[3:5].mean(axis=0)
    eye_mouth = float(np.linalg.norm(mouth - eyes))
    eye_dist = float(np.linalg.norm(det.points[0] - det.points[1]))
    side = DETECTOR_SIDE_GAIN * max(eye_mouth / 0.454, eye_dist / 0.414, 1.0)
    down = (mouth - eyes) / max(eye_mouth, 1e-6)
    centre = eyes + down * (0.31 * side)
    return dlib_box_from_landmarks(
        np.array([centre - side / 2, centre + side / 2])  # a square of the extent
    )


def face_motion(before: np.ndarray, after: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """How far the face whose ``landmarks (68, 2)`` lie in grey frame ``before`` moved in grey
    frame ``after`` (same size): ``(dx, dy)`` px, or None without a clear match.

    The landmarks' bounding box in ``before`` is matched (normalised cross-correlation)
    within that box grown by :data:`MOTION_REACH` of the face side in ``after``, both
    shrunk by a whole factor to a template side of at most :data:`MOTION_TEMPLATE_SIDE`;
    sub-pixel by a parabola through the peak. None when the face is too small or flat to
    match, or the best correlation is below :data:`MOTION_MIN_SCORE`.
    """
    h, w = before.shape[:2]
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    x0, y0 = max(int(np.floor(lo[0])), 0), max(int(np.floor(lo[1])), 0)
    x1, y1 = min(int(np.ceil(hi[0])) + 1, w), min(int(np.ceil(hi[1])) + 1, h)
    if min(x1 - x0, y1 - y0) < 8:
        return None
    reach = int(np.ceil(MOTION_REACH * float(max(hi - lo))))
    sx0, sy0 = max(x0 - reach, 0), max(y0 - reach, 0)
    # A whole factor, and sides cut to multiples of it: OpenCV's fast path for INTER_AREA.
    k = -(-max(x1 - x0, y1 - y0) // MOTION_TEMPLATE_SIDE)
    x1, y1 = x0 + (x1 - x0) // k * k, y0 + (y1 - y0) // k * k
    sx1, sy1 = min(x1 + reach, w), min(y1 + reach, h)
    sx1, sy1 = sx0 + (sx1 - sx0) // k * k, sy0 + (sy1 - sy0) // k * k
    template, window = _shrunk(before[y0:y1, x0:x1], k), _shrunk(after[sy0:sy1, sx0:sx1], k)
    th, tw = template.shape[:2]
    if window.shape[0] < th or window.shape[1] < tw or float(template.std()) < 1.0:
        return None
    score = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (mx, my) = cv2.minMaxLoc(score)
    if not best >= MOTION_MIN_SCORE:
        return None
    peak = np.array([mx + _vertex(score[my], mx), my + _vertex(score[:, mx], my)])
    return peak * k + np.array([sx0 - x0, sy0 - y0], dtype=np.float64)


def follow_motion(before: np.ndarray, after: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``landmarks (68, 2)`` of grey frame ``before`` moved by the face's motion into grey frame
    ``after`` (:func:`face_motion`) where it moved at least :data:`MOTION_MIN_SHIFT` of the
    face's size; otherwise (or without a clear match) unchanged."""
    motion = face_motion(before, after, landmarks)
    if motion is None or np.hypot(*motion) < MOTION_MIN_SHIFT * float(np.ptp(landmarks, axis=0).max()):
        return landmarks
    return landmarks + motion


def _shrunk(grey: np.ndarray, k: int) -> np.ndarray:
    """``grey`` (sides multiples of ``k``) averaged over ``k x k`` blocks."""
    if k == 1:
        return np.ascontiguousarray(grey)
    return cv2.resize(grey, (grey.shape[1] // k, grey.shape[0] // k), interpolation=cv2.INTER_AREA)


def _vertex(values: np.ndarray, i: int) -> float:
    """Offset in [-0.5, 0.5] of the top of a parabola through ``values[i - 1 : i + 2]``
    around the peak ``i``; 0 at an edge."""
    if not 0 < i < len(values) - 1:
        return 0.0
    a, b, c = (float(v) for v in values[i - 1 : i + 2])
    curve = a - 2 * b + c
    return float(np.clip(0.5 * (a - c) / curve, -0.5, 0.5)) if curve < 0 else 0.0


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB uint8 -> contiguous ``(H, W)`` grey, what the predictor reads."""
    # dlib silently finds nothing in row-padded arrays: always pass contiguous.
    return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


class LandmarkPredictor:
    """dlib 68-point landmarks for a face box in a grey frame (see ``to_grey``)."""

    def __init__(self) -> None:
        import dlib  # imported lazily: a heavy extension module

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(package_file("dlib_landmarks68")))

    def __call__(self, grey: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Landmarks ``(68, 2)`` float for a dlib-convention ``box (4,)`` xyxy."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._predictor(grey, self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def fit(self, grey: np.ndarray, det: Detection) -> np.ndarray:
        """Landmarks ``(68, 2)`` of a detected face at any roll: a face rolled past
        :data:`deidvid.faces.roll.ROLL_LIMIT_DEG` (judged by its eye points) is fitted in
        its upright view and mapped back."""
        roll = eye_roll(det.points[0], det.points[1])
        if not is_rolled(roll):
            return self(grey, dlib_box_from_detection(det))
        view = upright_view(det.box.reshape(2, 2), roll)
        upright = replace(det, points=view.to_patch(det.points))
        return view.to_frame(self(view.warp(grey), dlib_box_from_detection(upright)))

    def follow(
        self, grey: np.ndarray, previous: np.ndarray, previous_grey: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Landmarks in this frame for a face whose landmarks were ``previous (68, 2)``
        (at any roll, as :meth:`fit`).

        With ``previous_grey``, the grey frame ``previous`` was found in, the fit starts from
        the previous landmarks moved by the face's motion between the two frames
        (:func:`follow_motion`); without it, from where they were.

        Returns None when the fit is implausible for a face that moved one frame
        (size or position jumped), i.e. the face was probably lost.
        """
        if previous_grey is not None:
            previous = follow_motion(previous_grey, grey, previous)
        roll = eye_roll(previous[36:42].mean(axis=0), previous[42:48].mean(axis=0))
        if is_rolled(roll):
            view = upright_view(previous, roll)
            found = view.to_frame(self(view.warp(grey), dlib_box_from_landmarks(view.to_patch(previous))))
        else:
            found = self(grey, dlib_box_from_landmarks(previous))
        old_lo, old_hi = previous.min(axis=0), previous.max(axis=0)
        new_lo, new_hi = found.min(axis=0), found.max(axis=0)
        old_side = float(max(old_hi - old_lo))
        ratio = float(max(new_hi - new_lo)) / max(old_side, 1e-9)
        shift = float(np.linalg.norm((new_lo + new_hi) / 2 - (old_lo + old_hi) / 2))
        if not 0.75 < ratio < 1.33 or shift > 0.3 * old_side:
            return None
        return found
