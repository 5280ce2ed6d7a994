"""The dense mesh of every face track, frame by frame (pass 1 of a surrogate run).

:class:`MeshObserver` watches the original frames as pass 1 finds faces: FaceMesh
(its crop placed by the frame's dlib landmarks), Iris for the eyelids (FaceMesh alone
under-reports blinks) and the gaze, and a log-linear lighting fit of the skin in UV space.
``finish`` turns each track's observations into a :class:`MeshTrack`: gaps filled, the
mesh smoothed in time (not the eyelids: blinks are fast), split into pose and canonical
shape, the person's neutral shape (:func:`neutral_shape`: each part at rest) and a slowly
varying lighting (smoothed over ``LIGHTING_SIGMA_S``: the pulse must not come from here
but from the pulse transplant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deidvid.faces.canonical_mesh import load_canonical_mesh
from deidvid.faces.iris import LOWER_LID, MESH_LOWER_LID, MESH_UPPER_LID, UPPER_LID, eye_crops, gaze
from deidvid.faces.mesh import MOUTH_GAP, FramePatch, SquareCrop
from deidvid.surrogate import lighting, raster
from deidvid.surrogate.shape import Pose, split_pose
from deidvid.surrogate.uvspace import uv_space

MIN_MESH_SCORE = 0.5
MIN_FACE_PX = 40  # smaller faces are covered by the fallback (too few pixels for a mesh)
MAX_YAW_DEG = 55.0  # beyond this the far half of the face is unseen: covered by the fallback
MESH_SIGMA_FRAMES = 1.0
LID_SIGMA_FRAMES = 0.0  # a blink lasts a few frames: smoothing made it shallower (Iris's lids are steady enough)
POSE_SIGMA_FRAMES = 2.0  # the whole head's sub-pixel jitter is what flickers most; blinks live in the shape
LIGHTING_SIGMA_S = 0.5
LIGHTING_UV_SIZE = 64
IDENTITY_SAMPLES = 6
EYE_SOURCE_MAX_PX = 640  # larger faces are kept shrunk: their eye crops stay about 2x Iris's input or more
MOUTH_CLOSED_QUANTILE = 0.1  # the neutral: the track's frames with the most closed mouth (this fraction)
MIN_NEUTRAL_FRAMES = 5
NOSE_BASE = 2  # the canonical mesh's subnasale


@dataclass
class Observation:
    points: np.ndarray  # (468, 3) float32, frame pixels
    score: float
    lighting: np.ndarray | None  # (3, 3) or None when the fit failed
    gaze: np.ndarray  # (2, 3) per eye: pupil (x, y) and iris radius in the eye's frame (deidvid.faces.iris.gaze)


@dataclass
class MeshTrack:
    """One face track's mesh, per frame of ``[start, start + len)``.

    Attributes:
        start: first frame index.
        poses: per frame :class:`Pose` (image <- canonical).
        expression: ``(T, 468, 3)`` the shape minus the track's neutral shape (cm).
        lighting: ``(T, 3, 3)`` smoothed lighting fits (:mod:`deidvid.surrogate.lighting`).
        valid: ``(T,)`` bool: a mesh that can be rendered (else the fallback covers the face).
        gaze: ``(T, 2, 3)`` where the eyes look (:func:`deidvid.faces.iris.gaze`), smoothed like the mesh.
        samples: a few original frames for choosing the surrogate: ``(frame_index, frame_rgb, landmarks68)``.
    """

    start: int
    poses: list[Pose]
    expression: np.ndarray
    lighting: np.ndarray
    valid: np.ndarray
    gaze: np.ndarray
    samples: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.poses)

    def shape_at(self, frame_index: int, neutral: np.ndarray) -> np.ndarray:
        """``neutral (468, 3)`` with this frame's expression, in image pixels ``(468, 3)``."""
        i = frame_index - self.start
        return self.poses[i].apply(neutral + self.expression[i])


class MeshObserver:
    """A :class:`deidvid.methods.base.FaceObserver` that meshes every face frame.

    Frames are meshed in batches of ``batch`` faces (one forward pass each for FaceMesh
    and Iris: about half the cost per face of one at a time). The mesh's crop comes
    from the frame's dlib landmarks, so the faces of a batch do not wait on each other;
    Iris and the lighting fit read the same 192-px crop.
    """

    def __init__(self, device: str = "cpu", batch: int = 16) -> None:
        from deidvid.faces.iris import IrisModel
        from deidvid.faces.mesh import FaceMesh

        self.mesh = FaceMesh(device)
        self.iris = IrisModel(device)
        self.batch = batch
        self.start_video()

    def start_video(self) -> None:
        """Forget every track seen so far (a new video's track ids start again); the models stay."""
        self.pending: list[tuple[int, int, np.ndarray, SquareCrop, FramePatch]] = []
        self.observations: dict[int, dict[int, Observation]] = {}
        self.samples: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        self.tracks: dict[int, MeshTrack] = {}

    def observe(self, track_id: int, frame_index: int, rgb: np.ndarray, landmarks: np.ndarray) -> None:
        crop, square = self.mesh.crop(rgb, landmarks)
        # Iris reads the eyes from the frame, not from the 192-px mesh crop: resampled twice,
        # a small face's lids alias and jitter (README, session 24).
        self.pending.append((track_id, frame_index, crop, square, FramePatch.around(rgb, square, EYE_SOURCE_MAX_PX)))
        kept = self.samples.setdefault(track_id, [])
        if len(kept) < IDENTITY_SAMPLES and frame_index % 15 == 0:
            kept.append((frame_index, rgb.copy(), landmarks.copy()))
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Mesh every pending face."""
        if not self.pending:
            return
        crops = np.stack([c for _, _, c, _, _ in self.pending])
        points, scores = self.mesh.predict(crops)
        eyes = [eye_crops(square.to_frame(p)) for (_, _, _, square, _), p in zip(self.pending, points)]
        eye_images = np.stack([patch.warp(sq) for (*_, patch), pair in zip(self.pending, eyes) for sq in pair])
        contours, irises = self.iris.predict(eye_images)
        contours = contours.reshape(len(crops), 2, -1, 3)
        irises = irises.reshape(len(crops), 2, -1, 3)
        for (track_id, frame_index, crop, square, patch), p, score, pair, lids, iris in zip(
            self.pending, points, scores, eyes, contours, irises
        ):
            p = p.astype(np.float64)

            def in_crop(eye: int, eye_points: np.ndarray) -> np.ndarray:
                """Eye-crop points -> mesh-crop pixels."""
                return square.to_crop(patch.crop_to_frame(pair[eye], eye_points[:, :2]))

            for eye in range(2):
                lid = in_crop(eye, lids[eye])
                p[list(MESH_LOWER_LID[eye]), :2] = lid[list(LOWER_LID)]
                p[list(MESH_UPPER_LID[eye]), :2] = lid[list(UPPER_LID)]
            eye_gaze = gaze(p, np.stack([in_crop(eye, iris[eye]) for eye in range(2)]))
            light = _lighting(crop, p)
            frame_points = square.to_frame(p)
            self.observations.setdefault(track_id, {})[frame_index] = Observation(
                frame_points.astype(np.float32), float(score), light, eye_gaze
            )
        self.pending.clear()

    def finish(self, tracks, times_s: np.ndarray) -> None:
        self.flush()
        for track in tracks:
            seen = self.observations.pop(track.track_id, {})
            if seen:
                mesh_track = _mesh_track(track.start, track.end, seen, times_s)
                mesh_track.samples = sorted(self.samples.get(track.track_id, []), key=lambda s: s[0])
                self.tracks[track.track_id] = mesh_track


def _lighting(rgb: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    space = uv_space(LIGHTING_UV_SIZE)
    visible = raster.front_facing(points, space.triangles, space.front_sign)
    texture, mask = raster.unwrap(rgb, points, space.triangles, space.ids, space.points, visible)
    try:
        return lighting.fit(texture, mask & space.skin, space)
    except ValueError:
        return None


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth ``(T, ...)`` along time with a Gaussian of ``sigma`` samples (edges reflected)."""
    if sigma <= 0 or len(values) < 2:
        return values
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(values, sigma, axis=0, mode="nearest")


def smooth_poses(poses: list[Pose], sigma: float) -> list[Pose]:
    """Gaussian smoothing of a pose sequence in time: rotations averaged as matrices and
    projected back onto rotations (SVD), scales and translations smoothed directly."""
    if sigma <= 0 or len(poses) < 2:
        return poses
    rotations = _gaussian_smooth(np.stack([p.rotation for p in poses]), sigma)
    scales = _gaussian_smooth(np.array([p.scale for p in poses]), sigma)
    translations = _gaussian_smooth(np.stack([p.translation for p in poses]), sigma)
    u, _, vt = np.linalg.svd(rotations)
    fix = np.ones((len(poses), 3))
    fix[:, 2] = np.sign(np.linalg.det(u @ vt))
    rotations = (u * fix[:, None, :]) @ vt
    return [Pose(r, float(s), t) for r, s, t in zip(rotations, scales, translations)]


def _fill_gaps(frames: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values (K, ...)`` known at ``known (K,)`` onto ``frames (T,)``."""
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(frames, known, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(len(frames), *values.shape[1:])


def neutral_shape(shapes: np.ndarray) -> np.ndarray:
    """The person's neutral ``(468, 3)`` from a track's canonical ``shapes (T, 468, 3)``.

    Each part of the face at rest: the eyes and above as the median over all frames, the
    mouth and jaw as the median over the frames where the mouth is most closed (the lowest
    :data:`MOUTH_CLOSED_QUANTILE` of the inner-lip gap, at least :data:`MIN_NEUTRAL_FRAMES`),
    blended between the lower eyelids and the base of the nose (:func:`mouth_weight`).

    Expression is measured from it and drawn on the surrogate's closed-mouth neutral. Over
    all frames, a talking person's median mouth is half open: the surrogate's mouth was
    then closed at that opening, and its lips crossed over each other whenever the person
    closed theirs (a third of a GRID clip's frames, by up to 4.5 % of the face width).
    """
    gap = inner_lip_gap(shapes)
    closed = np.argsort(gap, kind="stable")[: max(int(np.ceil(MOUTH_CLOSED_QUANTILE * len(gap))), MIN_NEUTRAL_FRAMES)]
    weight = mouth_weight()[:, None]
    return (1.0 - weight) * np.median(shapes, axis=0) + weight * np.median(shapes[closed], axis=0)


def inner_lip_gap(shapes: np.ndarray) -> np.ndarray:
    """Upper minus lower inner lip on the midline of canonical ``shapes (..., 468, 3)`` (cm;
    canonical y points up, so lips that cross give a negative gap): ``(...)``."""
    return shapes[..., MOUTH_GAP[0], 1] - shapes[..., MOUTH_GAP[1], 1]


def mouth_weight() -> np.ndarray:
    """Per vertex ``(468,)``: 1 at and below the base of the nose (what moves with the mouth
    and jaw), 0 at and above the lower eyelids, linear in canonical height between."""
    vertices = load_canonical_mesh().vertices
    top = vertices[np.ravel(MESH_LOWER_LID), 1].min()
    bottom = vertices[NOSE_BASE, 1]
    return np.clip((top - vertices[:, 1]) / (top - bottom), 0.0, 1.0)


def _moving_lid_ids() -> list[int]:
    """The eyelids' mesh vertices but the eye corners (which place the head's pose)."""
    corners = {lower[0] for lower in MESH_LOWER_LID} | {lower[-1] for lower in MESH_LOWER_LID}
    return sorted(set(np.ravel(MESH_LOWER_LID).tolist() + np.ravel(MESH_UPPER_LID).tolist()) - corners)


def _mesh_track(start: int, end: int, seen: dict[int, Observation], times_s: np.ndarray) -> MeshTrack:
    canonical = load_canonical_mesh()
    reference = canonical.vertices.astype(np.float64)
    weights = np.zeros(len(reference))
    weights[canonical.procrustes_ids] = canonical.procrustes_weights
    frames = np.arange(start, end)
    good = sorted(f for f, o in seen.items() if o.score >= MIN_MESH_SCORE)
    if not good:
        empty = np.zeros((len(frames), *reference.shape))
        return MeshTrack(
            start, [Pose(np.eye(3), 1.0, np.zeros(3))] * len(frames), empty, np.zeros((len(frames), 3, 3)),
            np.zeros(len(frames), bool), np.zeros((len(frames), 2, 3)),
        )
    observed = _fill_gaps(frames, np.array(good), np.stack([seen[f].points for f in good]).astype(np.float64))
    points = _gaussian_smooth(observed, MESH_SIGMA_FRAMES)
    lids = _moving_lid_ids()
    points[:, lids] = _gaussian_smooth(observed[:, lids], LID_SIGMA_FRAMES)
    gazes = _fill_gaps(frames, np.array(good), np.stack([seen[f].gaze for f in good]).astype(np.float64))
    gazes = _gaussian_smooth(gazes, MESH_SIGMA_FRAMES)
    lit = [f for f in good if seen[f].lighting is not None]
    fps = (len(frames) - 1) / max(float(times_s[end - 1] - times_s[start]), 1e-6) if len(frames) > 1 else 25.0
    if lit:
        light = _fill_gaps(frames, np.array(lit), np.stack([seen[f].lighting for f in lit]))
        light = _gaussian_smooth(light, LIGHTING_SIGMA_S * fps)
    else:
        light = np.zeros((len(frames), 3, 3))
        light[:, :, 0] = np.log(0.5)
    poses, shapes = zip(*(split_pose(p, reference, weights) for p in points))
    poses = smooth_poses(list(poses), POSE_SIGMA_FRAMES)
    shapes = np.stack(shapes)
    near = np.array([abs(p.angles_deg()[0]) <= MAX_YAW_DEG for p in poses])
    wide = np.ptp(points[:, :, 0], axis=1) >= MIN_FACE_PX
    # A frame far from any good observation is not trusted: the fill would be a guess.
    nearest_good = np.min(np.abs(frames[:, None] - np.array(good)[None]), axis=1)
    valid = near & wide & (nearest_good <= max(int(round(0.2 * fps)), 1))
    neutral = neutral_shape(shapes[valid] if valid.any() else shapes)
    return MeshTrack(start, list(poses), shapes - neutral, light, valid, gazes)
