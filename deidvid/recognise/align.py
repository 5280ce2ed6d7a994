"""Differentiable face alignment from landmarks to each recogniser's chip.

* dlib chip (Recogniser A): a re-implementation of ``dlib.get_face_chip`` (dlib's
  ``get_face_chip_details`` + ``extract_image_chip``): a least-squares similarity fit of
  dlib's mean face (33 of the 68 points: nose, eyes, outer and upper-inner lips; jaw,
  brows and lower lip are ignored) padded by ``padding`` on each side, bilinear sampling,
  black outside the image, and dlib's 5-tap image pyramid when the chip shrinks the face
  by more than 2x. Five detector points (eye centres, nose tip, mouth corners) can be
  used instead, fitted to the same mean face.
* ArcFace chip (Recogniser B): the standard 112x112 5-point template
  (insightface ``arcface_dst``), similarity fit (Umeyama), bilinear sampling.

Everything here is built from torch ops (``F.grid_sample``, ``F.conv2d``), so gradients
flow to the pixels (and to the landmarks). Coordinates are pixels, (x, y), with pixel
centres at integers, as dlib and OpenCV use. :mod:`deidvid.recognise.chips` makes the
same chips in numpy, for scoring without torch, and declares the templates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from deidvid.recognise.chips import (
    ARCFACE_CHIP_SIZE,
    ARCFACE_TEMPLATE_112,
    DLIB_ALIGNMENT_INDICES,
    DLIB_CHIP_PADDING,
    DLIB_CHIP_SIZE,
    DLIB_MEAN_FACE_X,
    DLIB_MEAN_FACE_Y,
    PYRAMID_TAPS,
    PyramidPlan,
    pyramid_plan,
)


def dlib_mean_face_68() -> Tensor:
    """``(68, 2)`` dlib's mean face in [0, 1] (rows 0-16 are NaN: dlib has no jaw template)."""
    mean = torch.full((68, 2), float("nan"), dtype=torch.float64)
    mean[17:, 0] = torch.tensor(DLIB_MEAN_FACE_X, dtype=torch.float64)
    mean[17:, 1] = torch.tensor(DLIB_MEAN_FACE_Y, dtype=torch.float64)
    return mean


def five_points_from_68(landmarks68: Tensor) -> Tensor:
    """``(..., 68, 2)`` -> ``(..., 5, 2)``: eye centres (subject's right first), nose tip,
    mouth corners -- the order and meaning of :class:`deidvid.faces.types.Detection` points."""
    return torch.stack(
        [
            landmarks68[..., 36:42, :].mean(-2),
            landmarks68[..., 42:48, :].mean(-2),
            landmarks68[..., 30, :],
            landmarks68[..., 48, :],
            landmarks68[..., 54, :],
        ],
        dim=-2,
    )


def similarity_transform(src: Tensor, dst: Tensor) -> Tensor:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection)
    mapping ``src`` to ``dst`` (Umeyama 1991), as dlib's ``find_similarity_transform``
    and skimage's ``SimilarityTransform.estimate``.

    Args:
        src, dst: ``(B, N, 2)`` or ``(N, 2)`` point sets (N >= 2).
    Returns:
        ``(B, 2, 3)`` matrices ``[A | t]`` with ``dst ~= src @ A.T + t``.
    """
    src, dst = torch.broadcast_tensors(src, dst)
    if src.dim() == 2:
        src, dst = src[None], dst[None]
    src_mean, dst_mean = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum((1, 2)) / src.shape[1]
    cov = dst_c.transpose(1, 2) @ src_c / src.shape[1]  # (B, 2, 2)
    # A 2-D similarity is [[a, -b], [b, a]]; its least-squares fit has a closed form
    # (equivalent to Umeyama's SVD, and smooth to differentiate).
    a = (cov[:, 0, 0] + cov[:, 1, 1]) / src_var
    b = (cov[:, 1, 0] - cov[:, 0, 1]) / src_var
    rot = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)
    trans = dst_mean[:, 0] - (rot @ src_mean[:, 0, :, None])[..., 0]
    return torch.cat([rot, trans[..., None]], dim=-1)


def _apply(affine: Tensor, points: Tensor) -> Tensor:
    """``(B, 2, 3)`` x ``(B, N, 2)`` -> ``(B, N, 2)``."""
    return points @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]


def dlib_chip_template(size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING) -> Tensor:
    """``(68, 2)`` chip positions of dlib's mean face (NaN for the jaw), float64."""
    return (padding + dlib_mean_face_68()) / (2 * padding + 1) * size


def dlib_chip_to_image(
    landmarks: Tensor, size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING
) -> tuple[Tensor, Tensor, Tensor]:
    """dlib's ``chip_details`` for one face per row.

    Args:
        landmarks: ``(B, 68, 2)`` dlib points or ``(B, 5, 2)`` detector points (eye
            centres, nose tip, mouth corners), pixels.
    Returns:
        ``centre (B, 2)``, ``scale (B,)`` (image pixels per chip pixel) and
        ``angle (B,)`` (radians) of the chip's rectangle in the image.
    """
    template = dlib_chip_template(size, padding).to(landmarks.device)
    if landmarks.shape[-2] == 68:
        idx = list(DLIB_ALIGNMENT_INDICES)
        chip_pts, img_pts = template[idx], landmarks[:, idx]
    elif landmarks.shape[-2] == 5:
        chip_pts, img_pts = five_points_from_68(template), landmarks
    else:
        raise ValueError(f"landmarks must be (B, 68, 2) or (B, 5, 2), got {tuple(landmarks.shape)}")
    tform = similarity_transform(chip_pts.to(landmarks.dtype), img_pts)
    angle = torch.atan2(tform[:, 1, 0], tform[:, 0, 0])
    scale = torch.hypot(tform[:, 0, 0], tform[:, 1, 0])
    centre = _apply(tform, torch.full_like(tform[:, None, :, 0], size / 2.0))[:, 0]
    return centre, scale, angle


def _rect_corner_affine(
    centre: Tensor, width: Tensor, height: Tensor, angle: Tensor, size: int
) -> Tensor:
    """dlib's chip-to-image map: chip corners (0,0), (size-1,0), (0,size-1) go to the
    rotated corners of the rectangle ``centred_drect(centre, width, height)``.
    Returns ``(B, 2, 3)``."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    # centred_drect subtracts one pixel: its corners are (w-1)/2 from the centre.
    step_x, step_y = (width - 1) / (size - 1), (height - 1) / (size - 1)
    col = torch.stack([cos * step_x, sin * step_x], -1)  # image step per chip column
    row = torch.stack([-sin * step_y, cos * step_y], -1)  # image step per chip row
    origin = centre - col * (size - 1) / 2 - row * (size - 1) / 2
    return torch.stack([col, row, origin], dim=-1)


def sample_affine(images: Tensor, chip_to_image: Tensor, size: int, dlib_border: bool = False) -> Tensor:
    """Bilinear samples of ``images`` at ``chip_to_image @ (col, row, 1)``.

    Args:
        images: ``(B, C, H, W)``.
        chip_to_image: ``(B, 2, 3)`` pixel-coordinate affine maps.
        dlib_border: black wherever dlib's ``interpolate_bilinear`` refuses a point
            (x or y outside [0, W-1) / [0, H-1)); otherwise zero padding blends the
            border (``cv2.warpAffine`` with a black constant border).
    Returns:
        ``(B, C, size, size)``.
    """
    batch, _, height, width = images.shape
    steps = torch.arange(size, device=images.device, dtype=chip_to_image.dtype)
    rows, cols = torch.meshgrid(steps, steps, indexing="ij")
    grid = torch.stack([cols, rows, torch.ones_like(cols)], -1).reshape(1, -1, 3)
    xy = (grid @ chip_to_image.transpose(1, 2)).reshape(batch, size, size, 2)
    norm = torch.stack(
        [2 * xy[..., 0] / (width - 1) - 1, 2 * xy[..., 1] / (height - 1) - 1], -1
    ).to(images.dtype)
    out = F.grid_sample(images, norm, mode="bilinear", padding_mode="zeros", align_corners=True)
    if dlib_border:
        x, y = xy[..., 0], xy[..., 1]
        inside = (x >= 0) & (x < width - 1) & (y >= 0) & (y < height - 1)
        out = out * inside[:, None].to(out.dtype)
    return out


def dlib_pyramid_down(images: Tensor) -> Tensor:
    """dlib's ``pyramid_down<2>``: separable [1 4 6 4 1]/16 blur and 2x decimation
    (valid filtering, output pixel (r, c) centred on input (2r+2, 2c+2)).
    ``(B, C, H, W)`` -> ``(B, C, (H-3)//2, (W-3)//2)``."""
    channels = images.shape[1]
    taps = torch.tensor(PYRAMID_TAPS, device=images.device, dtype=images.dtype) / 16.0
    kernel = (taps[:, None] * taps[None, :]).expand(channels, 1, 5, 5)
    return F.conv2d(images, kernel, stride=2, groups=channels)


def extract_dlib_chip(
    images: Tensor,
    landmarks: Tensor,
    size: int = DLIB_CHIP_SIZE,
    padding: float = DLIB_CHIP_PADDING,
) -> Tensor:
    """``dlib.get_face_chip`` in torch, differentiable w.r.t. ``images``.

    Args:
        images: ``(B, C, H, W)`` float, one face per image (repeat a frame for several faces).
        landmarks: ``(B, 68, 2)`` dlib points, or ``(B, 5, 2)`` detector points, pixels.
    Returns:
        ``(B, C, size, size)`` chips, same value range as ``images``.
    """
    centre, scale, angle = dlib_chip_to_image(landmarks.to(torch.float64), size, padding)
    side = scale * size  # chip_details.rect is size*scale wide
    direct = _rect_corner_affine(centre, side, side, angle, size)
    chips = sample_affine(images, direct, size, dlib_border=True)

    # Faces shrunk by more than ~2x are sampled from dlib's pyramid, as dlib does, so
    # the chip is not aliased (and matches dlib's pixels).
    height, width = images.shape[-2:]
    rows = list(chips.unbind(0))
    for i in range(images.shape[0]):
        plan = pyramid_plan(
            (float(centre[i, 0]), float(centre[i, 1])), float(side[i]), float(angle[i]), size, height, width
        )
        if plan is not None:
            rows[i] = _extract_from_pyramid(images[i : i + 1], plan, float(angle[i]), size)[0]
    return torch.stack(rows)


def _extract_from_pyramid(image: Tensor, plan: PyramidPlan, angle: float, size: int) -> Tensor:
    """One chip through dlib's pyramid (``extract_image_chips``), for large faces."""
    left, top, right, bottom = plan.box
    level_image = image[:, :, top : bottom + 1, left : right + 1]
    for _ in range(plan.levels):
        level_image = dlib_pyramid_down(level_image)
    left, top, right, bottom = plan.rect

    def batch_of_one(*values: float) -> Tensor:
        return torch.tensor([values], dtype=torch.float64, device=image.device)

    affine = _rect_corner_affine(
        batch_of_one((left + right) / 2, (top + bottom) / 2),
        batch_of_one(right - left + 1)[:, 0],
        batch_of_one(bottom - top + 1)[:, 0],
        batch_of_one(angle)[:, 0],
        size,
    )
    return sample_affine(level_image, affine, size, dlib_border=True)


def arcface_chip_to_image(points5: Tensor, size: int = ARCFACE_CHIP_SIZE) -> Tensor:
    """``(B, 5, 2)`` detector points -> ``(B, 2, 3)`` chip-to-image similarity.

    As insightface's ``norm_crop``, the least-squares fit goes from the image points to
    the template (a least-squares fit is not symmetric) and is then inverted. The
    template is scaled by ``size / 112`` for other chip sizes.
    """
    template = torch.tensor(ARCFACE_TEMPLATE_112, dtype=points5.dtype, device=points5.device)
    return invert_affine(similarity_transform(points5, template * (size / 112.0)))


def invert_affine(affine: Tensor) -> Tensor:
    """Inverse of ``(B, 2, 3)`` affine maps."""
    inv = torch.linalg.inv(affine[:, :, :2])
    return torch.cat([inv, -(inv @ affine[:, :, 2:])], dim=-1)


def extract_arcface_chip(images: Tensor, points5: Tensor, size: int = ARCFACE_CHIP_SIZE) -> Tensor:
    """ArcFace-style aligned chip, like ``cv2.warpAffine(img, M, (112, 112))`` with
    insightface's ``norm_crop`` matrix; differentiable w.r.t. ``images``.

    Args:
        images: ``(B, C, H, W)`` float.
        points5: ``(B, 5, 2)`` eye centres (subject's right first), nose tip, mouth
            corners, pixels (see :func:`five_points_from_68`).
    Returns:
        ``(B, C, size, size)``.
    """
    affine = arcface_chip_to_image(points5.to(torch.float64), size)
    return sample_affine(images, affine, size)
