"""Expression and head pose: does the de-identified face still do what the original did?

Anonymisation papers judge expression preservation by whether the same facial actions
happen in the original and the de-identified video. Here the actions are read from the
68 dlib landmarks, found by the project's landmark model
(:class:`deidvid.faces.landmarks.LandmarkPredictor`) in *both* videos at the same box:
the dlib-convention box of the original track's landmarks at that frame. (The track's own
landmarks are smoothed; fitting both videos alike makes a video compared with itself give
identical signals.)

Per sampled frame, seven signals (:data:`SIGNALS`):

* ``mouth_open``: mean distance of the inner-lip pairs 61-67, 62-66, 63-65;
* ``eye_right`` / ``eye_left``: the subject's right (points 36-41, on the image's left)
  and left (42-47) eye opening, mean of the two upper-lower lid distances;
* ``brow_raise``: mean distance of the ten brow points (17-26) from the line through the
  eye centres;

all divided by the inter-ocular distance (eye centre to eye centre), so they do not
change with the face's size; and

* ``yaw`` / ``pitch`` / ``roll`` (degrees): head pose by ``cv2.solvePnP`` of six
  landmarks (nose tip 30, chin 8, outer eye corners 36 and 45, mouth corners 48 and 54)
  against a generic 3D face (:data:`MODEL_POINTS`, the widely used one of Mallick,
  "Head pose estimation using OpenCV and dlib", in camera axes: x right, y down, z away
  from the camera), a pinhole camera with the focal length of the frame width and no
  distortion, starting from a frontal face. Euler angles of ``R = Rz(roll) Ry(yaw)
  Rx(pitch)``; a frontal face is 0, 0, 0. A generic model gives rough absolute angles;
  what is compared is how they move together in the two videos.

and, from MediaPipe FaceMesh and Iris fitted to both videos in the same crop (placed by the
original's landmarks; :class:`MeshSignals`):

* ``mesh_mouth_open``: the inner-lip gap on the midline / the cheek-to-cheek width;
* ``mesh_eye_right`` / ``mesh_eye_left``: Iris's eyelid distance / eye width
  (:func:`deidvid.faces.iris.eye_openness`; FaceMesh alone under-reports blinks);
* ``gaze_x`` / ``gaze_y``: where the eyes look, Iris's pupil centre in the eye's own
  frame (:func:`deidvid.faces.iris.gaze`, eye widths along and across the corner line),
  the mean of the two eyes.

Per signal and face track: Pearson r of the two videos' series and their mean absolute
difference (``mad``, in the signal's unit). r is None (JSON null) where it is undefined:
fewer than 3 frames, or a series that does not vary (a still face; even a video compared
with itself then has no r, only ``mad`` = 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import cv2
import numpy as np

EXPRESSION_SIGNALS: tuple[str, ...] = ("mouth_open", "eye_left", "eye_right", "brow_raise")
POSE_SIGNALS: tuple[str, ...] = ("yaw", "pitch", "roll")
SIGNALS: tuple[str, ...] = EXPRESSION_SIGNALS + POSE_SIGNALS
GAZE_SIGNALS: tuple[str, ...] = ("gaze_x", "gaze_y")
MESH_SIGNALS: tuple[str, ...] = ("mesh_mouth_open", "mesh_eye_right", "mesh_eye_left", *GAZE_SIGNALS)

# Generic 3D face (arbitrary units), camera axes; dlib indices of the 2D points.
POSE_LANDMARKS = (30, 8, 36, 45, 48, 54)
MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip
        (0.0, 330.0, 65.0),  # chin
        (-225.0, -170.0, 135.0),  # outer corner of the eye on the image's left (subject's right)
        (225.0, -170.0, 135.0),  # outer corner of the other eye
        (-150.0, 150.0, 125.0),  # mouth corner on the image's left
        (150.0, 150.0, 125.0),  # the other mouth corner
    ]
)
# Below this standard deviation a series counts as constant (r undefined).
CONSTANT_STD = 1e-9


class SignalComparison(TypedDict):
    """One signal of one face track in both videos (the JSON's ``faces[].expression.<signal>``)."""

    r: float | None
    mad: float | None
    frames: int


def _eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)


def expression_signals(landmarks: np.ndarray) -> np.ndarray:
    """``(4,)``: mouth_open, eye_left, eye_right, brow_raise of ``(68, 2)`` landmarks (see the module)."""
    p = np.asarray(landmarks, dtype=np.float64)
    right_centre, left_centre = _eye_centres(p)
    iod = float(np.linalg.norm(left_centre - right_centre))
    if iod <= 0:
        return np.full(4, np.nan)

    def gap(a: int, b: int) -> float:
        return float(np.linalg.norm(p[a] - p[b]))

    mouth = (gap(61, 67) + gap(62, 66) + gap(63, 65)) / 3
    eye_right = (gap(37, 41) + gap(38, 40)) / 2  # subject's right eye: 36-41
    eye_left = (gap(43, 47) + gap(44, 46)) / 2  # subject's left eye: 42-47
    axis = (left_centre - right_centre) / iod
    normal = np.array([-axis[1], axis[0]])
    brow = float(np.abs((p[17:27] - right_centre) @ normal).mean())
    return np.array([mouth, eye_left, eye_right, brow]) / iod


def rotation_angles(rotation: np.ndarray) -> np.ndarray:
    """``(3,)`` yaw, pitch, roll in degrees of a rotation matrix ``R = Rz(roll) Ry(yaw) Rx(pitch)``."""
    r = rotation
    pitch = np.arctan2(r[2, 1], r[2, 2])
    yaw = np.arctan2(-r[2, 0], np.hypot(r[2, 1], r[2, 2]))
    roll = np.arctan2(r[1, 0], r[0, 0])
    return np.degrees([yaw, pitch, roll])


def head_pose(landmarks: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """``(3,)`` yaw, pitch, roll (degrees) of ``(68, 2)`` landmarks in a frame of ``frame_shape``
    (H, W, ...); NaN when ``solvePnP`` fails."""
    height, width = frame_shape[:2]
    image_points = np.asarray(landmarks, dtype=np.float64)[list(POSE_LANDMARKS)]
    camera = np.array([[width, 0.0, width / 2], [0.0, width, height / 2], [0.0, 0.0, 1.0]])
    # Start frontal, at the distance where the model's eye corners span the image's.
    model_span = MODEL_POINTS[3, 0] - MODEL_POINTS[2, 0]
    image_span = max(float(np.linalg.norm(image_points[3] - image_points[2])), 1.0)
    centre = image_points[0]
    depth = width * model_span / image_span
    tvec = np.array([[(centre[0] - width / 2) * depth / width], [(centre[1] - height / 2) * depth / width], [depth]])
    rvec = np.zeros((3, 1))
    ok, rvec, tvec = cv2.solvePnP(
        MODEL_POINTS, image_points, camera, np.zeros(4), rvec, tvec, useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return np.full(3, np.nan)
    return rotation_angles(cv2.Rodrigues(rvec)[0])


def frame_signals(landmarks: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """``(7,)`` values of :data:`SIGNALS` for one face."""
    return np.concatenate([expression_signals(landmarks), head_pose(landmarks, frame_shape)])


def compare_signal(original: np.ndarray, deidentified: np.ndarray) -> SignalComparison:
    """Pearson r and mean absolute difference of two ``(N,)`` series over the frames where both
    are finite; r None when fewer than 3 such frames or either series is constant."""
    a, b = np.asarray(original, np.float64), np.asarray(deidentified, np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    n = int(a.size)
    mad = float(np.abs(a - b).mean()) if n else None
    r = None
    if n >= 3 and a.std() > CONSTANT_STD and b.std() > CONSTANT_STD:
        da, db = a - a.mean(), b - b.mean()
        r = float(np.clip((da @ db) / np.sqrt((da @ da) * (db @ db)), -1.0, 1.0))
    return {"r": r, "mad": mad, "frames": n}


class MeshSignals:
    """:data:`MESH_SIGNALS` of one face: FaceMesh in the crop of the original's 68
    landmarks, Iris on the mesh's eyes. ``device``: where the two networks run."""

    def __init__(self, device: str = "cpu") -> None:
        from deidvid.faces.iris import IrisModel
        from deidvid.faces.mesh import FaceMesh

        self.mesh = FaceMesh(device)
        self.iris = IrisModel(device)

    def __call__(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``(5,)`` for ``rgb (H, W, 3)`` uint8 and the original's ``landmarks (68, 2)``."""
        from deidvid.faces.iris import eye_openness, gaze
        from deidvid.faces.mesh import mouth_opening

        points = self.mesh(rgb, landmarks).points
        eyes = self.iris(rgb, points)
        openness = eye_openness(eyes.contours)  # eye 0: the image's left, the subject's right
        looking = gaze(points, eyes.iris).mean(axis=0)
        return np.array([mouth_opening(points), openness[0], openness[1], looking[0], looking[1]])


class ExpressionTraces:
    """Per face track, :data:`SIGNALS` (and :data:`MESH_SIGNALS` with ``mesh``) of both
    videos at the frames fed.

    Args:
        lengths: frames of each track, by track ID.
        landmarker: ``(grey (H, W) uint8, box (4,) xyxy) -> (68, 2)``; default the
            project's dlib predictor.
        mesh: ``(rgb, landmarks68) -> (3,)`` mesh signals (:class:`MeshSignals`), or None.
    """

    def __init__(self, lengths: Mapping[int, int], landmarker=None, mesh=None) -> None:
        if landmarker is None:
            from deidvid.faces.landmarks import LandmarkPredictor

            landmarker = LandmarkPredictor()
        self.landmarker = landmarker
        self.mesh = mesh
        self.signals = SIGNALS + (MESH_SIGNALS if mesh is not None else ())
        # track -> (2, L, signals): [0] original, [1] de-identified; NaN = not sampled
        self.values = {track_id: np.full((2, length, len(self.signals)), np.nan) for track_id, length in lengths.items()}

    def add(
        self,
        track_id: int,
        offset: int,
        grey_original: np.ndarray,
        grey_deid: np.ndarray,
        landmarks: np.ndarray,
        rgb: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Frame ``offset`` of a track: both videos' ``(H, W)`` uint8 grey frames
        (:func:`deidvid.faces.landmarks.to_grey`), the original track's ``(68, 2)`` landmarks
        there, and (for the mesh signals) both ``(H, W, 3)`` uint8 RGB frames."""
        from deidvid.faces.landmarks import dlib_box_from_landmarks

        box = dlib_box_from_landmarks(landmarks)
        for video, grey in enumerate((grey_original, grey_deid)):
            found = self.landmarker(grey, box)
            self.values[track_id][video, offset, : len(SIGNALS)] = frame_signals(found, grey.shape)
            if self.mesh is not None and rgb is not None:
                self.values[track_id][video, offset, len(SIGNALS) :] = self.mesh(rgb[video], landmarks)

    def series(self, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(L, signals)`` original and de-identified signals (NaN at frames not sampled)."""
        values = self.values[track_id]
        return values[0], values[1]

    def scores(self, track_id: int) -> dict[str, SignalComparison]:
        """``{signal: SignalComparison}`` of one track over its sampled frames."""
        original, deid = self.series(track_id)
        return {name: compare_signal(original[:, k], deid[:, k]) for k, name in enumerate(self.signals)}


def min_defined_r(expression: Mapping[str, SignalComparison] | None) -> float | None:
    """The lowest defined r of one track's signals (None when none is defined)."""
    values = [s["r"] for s in (expression or {}).values() if s["r"] is not None]
    return min(values) if values else None
