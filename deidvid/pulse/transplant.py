"""Put the original's pulse into a clip of the method's output.

For a clip of face crops (e.g. 64 frames of 128 x 128), in linear light:

1. measure the output's region means ``m(t)`` and their own pulse-band relative
   variation ``own(t)`` (:func:`band_variation`), and the original crops' ``target(t)``
   the same way, over the same per-frame geometry (:func:`clip_layouts`);
2. region targets ``m(t) * (1 + target(t) - own(t))``: the output's slow light kept,
   its in-band variation swapped for the original's (per channel, so the pulse's
   colour signature is the original's);
3. reach them with a multiplicative field ``out * (1 + f)``, ``f = sum_k a_k phi_k``:
   ``phi_k`` are Gaussian RBFs at the region centres, normalised to sum to 1 and
   multiplied by the feathered skin weight. The field is smooth by construction (it
   holds no pixel of any image), zero off the skin; the ``R`` coefficients per frame
   and channel solve the ``R x R`` linear system "region mean == target" exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deidvid.pulse.regions import (
    DEFAULT_FEATHER_PX,
    NUM_REGIONS,
    face_layout,
    interocular,
    region_masks,
)
from deidvid.pulse.variation import GAMMA, TRANSPLANT_BAND_HZ, relative_variation, rms_amplitude

RBF_SIGMA_IOD = 0.5  # RBF width, x interocular distance (neighbour centres ~0.9 IOD apart)
MAX_RELATIVE_CHANGE = 0.1  # cap on |target - own|: a real pulse is 0.1-2 %
MIN_CLIP_FRAMES = 4  # shorter clips: the output's own variation is taken as 0
PINV_RCOND = 1e-3  # of the normalised system (rows in [0, 1]); well-posed faces: cond ~3-10
MIN_LINEAR_MEAN = 1e-9  # a region darker than this cannot be modulated: dropped


@dataclass(frozen=True)
class Layout:
    """One crop's skin geometry, on its skin-field pixels only (:func:`crop_geometry`).

    Attributes:
        support: ``(N,)`` flat indices of the pixels with skin weight > 0 (every region pixel is one).
        averaging: ``(R, N)`` the region-mean operator: each region's pixels weighted 1 / their
            count (a row of zeros for an empty region).
        present: ``(R,)`` whether each region has pixels.
        basis: ``(R, N)`` the field's basis ``phi_k``; it sums to the skin weight.
    """

    support: np.ndarray
    averaging: np.ndarray
    present: np.ndarray
    basis: np.ndarray


def crop_geometry(
    landmarks68: np.ndarray,
    size_hw: tuple[int, int],
    feather_px: float = DEFAULT_FEATHER_PX,
) -> Layout:
    """Region means and field basis of one crop of ``size_hw`` ``(H, W)`` with ``landmarks68 (68, 2)``
    ``(x, y)`` in crop pixels."""
    height, width = int(size_hw[0]), int(size_hw[1])
    masks, weight, centres = face_layout(landmarks68, (height, width), feather_px)
    support = np.flatnonzero(weight)
    ys, xs = np.divmod(support, width)
    sigma = max(RBF_SIGMA_IOD * interocular(landmarks68), 1.0)
    # Separable Gaussians: 2 x R x (H + W) exponentials instead of R x H x W. No
    # underflow inside a crop (it would take a pixel ~37 sigma ~ 18 IOD from every
    # centre); a pixel where all underflow still falls back to its nearest centre.
    gx = np.exp(-((np.arange(width)[None, :] - centres[:, :1]) ** 2) / (2.0 * sigma**2))
    gy = np.exp(-((np.arange(height)[None, :] - centres[:, 1:]) ** 2) / (2.0 * sigma**2))
    rbf = gx[:, xs] * gy[:, ys]  # (R, N)
    total = rbf.sum(axis=0)
    lost = total < 1e-300
    if lost.any():
        d2 = (xs[lost][None] - centres[:, :1]) ** 2 + (ys[lost][None] - centres[:, 1:]) ** 2
        rbf[:, lost] = np.arange(NUM_REGIONS)[:, None] == d2.argmin(axis=0)[None]
        total[lost] = 1.0
    basis = rbf * (weight.reshape(-1)[support] / total)[None]
    averaging = masks.reshape(NUM_REGIONS, -1)[:, support].astype(np.float64)
    counts = averaging.sum(axis=1)
    averaging /= np.maximum(counts, 1.0)[:, None]
    return Layout(support, averaging, counts > 0, basis)


def region_means(layout: Layout, linear: np.ndarray) -> np.ndarray:
    """``(R, 3)`` mean of ``linear (N, 3)`` (values on ``layout.support``) per region; NaN for an empty region."""
    return np.where(layout.present[:, None], layout.averaging @ linear, np.nan)


def clip_layouts(
    landmarks: np.ndarray, size_hw: tuple[int, int], feather_px: float = DEFAULT_FEATHER_PX
) -> list[Layout | None]:
    """:func:`crop_geometry` of every frame of a clip (``(T, 68, 2)`` landmarks); None where they are not finite.

    Computed once per clip and shared by the original's and the output's region means
    and the field: the geometry is most of the transplant's cost.
    """
    return [crop_geometry(lm, size_hw, feather_px) if np.all(np.isfinite(lm)) else None for lm in landmarks]


def layout_region_means(frames: np.ndarray, layouts: list[Layout | None]) -> np.ndarray:
    """Mean linear light ``(T, R, 3)`` of display-scale crops ``(T, H, W, 3)`` in [0, 1] over the layouts' regions.

    NaN where a region is empty or the frame has no layout. Every region pixel lies in
    its layout's support, so the support holds all that is needed.
    """
    frames = np.asarray(frames)
    flat = frames.reshape(frames.shape[0], -1, 3)
    means = np.full((frames.shape[0], NUM_REGIONS, 3), np.nan)
    for t, layout in enumerate(layouts):
        if layout is None:
            continue
        means[t] = region_means(layout, np.clip(flat[t, layout.support], 0, 1).astype(np.float64) ** GAMMA)
    return means


def clip_region_means(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean linear light ``(T, R, 3)`` of display-scale crops ``(T, H, W, 3)`` in [0, 1].

    NaN where a region is empty or the frame's landmarks are not finite.
    """
    frames = np.asarray(frames)
    means = np.full((frames.shape[0], NUM_REGIONS, 3), np.nan)
    for t in range(frames.shape[0]):
        if np.all(np.isfinite(landmarks[t])):
            masks = region_masks(landmarks[t], frames.shape[1:3]).reshape(NUM_REGIONS, -1)
            linear = np.clip(frames[t].reshape(-1, 3), 0, 1).astype(np.float64) ** GAMMA
            counts = masks.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                means[t] = (masks @ linear) / counts[:, None]
    return means


def band_variation(means: np.ndarray, times_s: np.ndarray, band_hz: tuple[float, float] = TRANSPLANT_BAND_HZ) -> np.ndarray:
    """Relative variation in ``band_hz`` ``(T, R, 3)`` of a clip's region means ``(T, R, 3)`` at ``times_s (T,)``.

    The original's (the target) and the output's own variation are both computed this
    way, on the same clip, regions and times: where the output is the original they
    cancel exactly, and the short filter's end effects act only on their difference.
    A 64-frame clip is shorter than the low edge's filter response (0.3 Hz: ~3 s), so
    its ends depend on the padding: the AR prediction of ``variation.pad_ar`` keeps the
    beat through them (RMS error in units of the pulse amplitude, clean 64-frame clips
    at 1-2.2 Hz: 0.07 over the 16 frames at either end, 0.02 in between, with the low
    edge at 0.3 Hz or 0.7 Hz alike; mirrored padding at 0.7 Hz 0.21 and 0.05), and
    neighbouring clips cross-fade those frames anyway.
    """
    if means.shape[0] < MIN_CLIP_FRAMES:
        return np.zeros_like(means)
    try:
        return relative_variation(means, times_s, band_hz)
    except ValueError:  # the band does not fit this frame rate: nothing to carry
        return np.zeros_like(means)


def transplant_clip(
    output: np.ndarray,
    landmarks: np.ndarray,
    target: np.ndarray,
    times_s: np.ndarray,
    band_hz: tuple[float, float] = TRANSPLANT_BAND_HZ,
    feather_px: float = DEFAULT_FEATHER_PX,
    layouts: list[Layout | None] | None = None,
) -> np.ndarray:
    """The output clip with its pulse replaced by ``target``.

    Args:
        output: ``(T, S, S, 3)`` float32 in [0, 1], display scale (the method's crops).
        landmarks: ``(T, 68, 2)`` ``(x, y)`` in crop pixels (NaN frame: left as is).
        target: ``(T, R, 3)`` the original's relative variation for these frames
            (:func:`band_variation` of the original crops' region means); NaN counts as 0.
        times_s: ``(T,)`` timestamps in seconds, strictly increasing.
        band_hz: the pulse band, as used for the target.
        feather_px: inward feather of the skin weight, crop pixels.
        layouts: :func:`clip_layouts` of ``landmarks`` when the caller has them already.

    Returns:
        ``(T, S, S, 3)`` float32 in [0, 1]. Pixels off the skin field (weight 0: eyes,
        brows, mouth, nostrils, hair, background) are bit-for-bit the input's.
    """
    output = np.asarray(output, dtype=np.float32)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    count, height, width = output.shape[:3]
    target = np.nan_to_num(np.asarray(target, dtype=np.float64), nan=0.0)
    if target.shape != (count, NUM_REGIONS, 3) or landmarks.shape != (count, 68, 2):
        raise ValueError(
            f"target {target.shape} / landmarks {landmarks.shape} do not fit {output.shape}"
        )
    pixels = height * width
    flat = output.reshape(count, pixels, 3)
    means = np.full((count, NUM_REGIONS, 3), np.nan)
    systems = np.zeros((count, 3, NUM_REGIONS, NUM_REGIONS))
    if layouts is None:
        layouts = clip_layouts(landmarks, (height, width), feather_px)
    linear: list[np.ndarray | None] = []
    for t, layout in enumerate(layouts):
        if layout is None:
            linear.append(None)
            continue
        # Linear light, float64, on the support only. Clip first: a negative value
        # would give NaN under the power.
        lin = np.clip(flat[t, layout.support].astype(np.float64), 0.0, 1.0) ** GAMMA  # (N, 3)
        means[t] = region_means(layout, lin)
        # systems[t, c, k, j] = mean over region k of lin_c * phi_j (0 for an empty region)
        for c in range(3):
            systems[t, c] = (layout.averaging * lin[:, c]) @ layout.basis.T
        linear.append(lin)
    own = band_variation(means, times_s, band_hz)
    change = np.clip(target - own, -MAX_RELATIVE_CHANGE, MAX_RELATIVE_CHANGE)
    # mean_k(lin * (1 + f)) = m_k + sum_j M_kj a_j  ==  m_k (1 + change_k). Divided by
    # m_k, the rows become weighted averages of phi_j over region k (in [0, 1]): the
    # conditioning is then geometry alone, the same for dark and bright skin.
    usable = np.isfinite(means) & (means > MIN_LINEAR_MEAN)  # empty or black: dropped
    scale = np.where(usable, means, 1.0).transpose(0, 2, 1)[..., None]  # (T, 3, R, 1)
    systems = np.where(usable.transpose(0, 2, 1)[..., None], systems / scale, 0.0)
    rhs = np.where(usable, change, 0.0).transpose(0, 2, 1)  # (T, 3, R)
    # A full-rank system is solved exactly (the pseudo-inverse is the inverse). Only
    # when regions nearly coincide (extreme pose, tiny face) do singular values fall
    # below PINV_RCOND x the largest; those directions are dropped instead of being
    # amplified into a wild field, and the closest reachable means are taken.
    coeffs = np.einsum("tckj,tcj->tck", np.linalg.pinv(systems, rcond=PINV_RCOND), rhs)
    result = output.copy()
    flat_result = result.reshape(count, pixels, 3)
    for t, (layout, lin) in enumerate(zip(layouts, linear)):
        if layout is None:
            continue
        field = coeffs[t] @ layout.basis  # (3, N)
        new = (lin * (1.0 + field.T)).astype(np.float32)  # float32 from here: the output's precision
        flat_result[t, layout.support] = np.clip(new, 0.0, 1.0) ** np.float32(1.0 / GAMMA)
    return result


def carried_amplitude(
    frames: np.ndarray,
    landmarks: np.ndarray,
    times_s: np.ndarray,
    band_hz: tuple[float, float] = TRANSPLANT_BAND_HZ,
) -> np.ndarray:
    """RMS ``(3,)`` in-band relative variation of a clip's region means, for reports.

    Compare a transplanted clip's value with the original crops' and with the method's
    raw output (what it would have carried on its own).
    """
    return rms_amplitude(band_variation(clip_region_means(frames, landmarks), times_s, band_hz))
