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

    def follow(self, grey: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
        """Landmarks in this frame for a face whose landmarks were ``previous (68, 2)``
        (at any roll, as :meth:`fit`).

        Returns None when the fit is implausible for a face that moved one frame
        (size or position jumped), i.e. the face was probably lost.
        """
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
