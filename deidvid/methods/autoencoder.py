"""``--method ae`` / ``ae-paper``: the trained de-identification autoencoders (``deidvid.model``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from deidvid.model.autoencoder import ResidualConfig, load_model
from deidvid.faces.skin import skin_mask
from deidvid.methods.base import CropClip, Method, PasteMode

MAX_STRENGTH = 64.0 / 255.0  # perturbation RMS cap, [0, 1] units: beyond it the face is visibly noisy


class AutoencoderMethod(Method):
    """Runs a bundled autoencoder on 128x128 face clips.

    ``run`` maps clips ``(T, 128, 128, 3)`` float32 in [0, 1] to de-identified clips of
    the same shape. With the crop's landmarks, the
    residual model keeps the mean skin colour of every frame exactly (rPPG); without
    them it uses its canonical skin mask. The pipeline pastes ``output - input``
    (``residual = True``), so full-resolution detail survives.

    Args:
        weights: manifest name (``ae_residual`` or ``ae_paper``).
        name: the ``--method`` name it runs as.
        device: ``cpu``, ``cuda``, ...
        max_frames: frames per forward pass (memory bound); clips of a batch are
            concatenated along the batch axis when their lengths match.
        strength: residual model only: perturbation RMS per frame in [0, 1] units
            instead of the trained one (more: stronger de-identification, lower PSNR).
    """

    name = "ae"
    paste_mode = PasteMode.RESIDUAL
    interpolation = cv2.INTER_LINEAR

    def __init__(
        self,
        weights: str = "ae_residual",
        device: str = "cpu",
        max_frames: int = 128,
        strength: float | None = None,
        name: str = "ae",
    ) -> None:
        self.name = name
        self.device = torch.device(device)
        self.model = load_model(weights, self.device)
        self.max_frames = max_frames
        if strength is not None:
            if not isinstance(getattr(self.model, "config", None), ResidualConfig):
                raise ValueError(f"'{weights}' has no adjustable strength (residual models only)")
            if not 0.0 < strength <= MAX_STRENGTH:
                raise ValueError(f"strength must be in (0, {MAX_STRENGTH:.4g}] (RMS in [0, 1] units), not {strength}")
            self.model.config = dataclasses.replace(self.model.config, strength=float(strength))

    def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
        """De-identify several clips; equal-length clips share forward passes."""
        results: list[np.ndarray | None] = [None] * len(clips)
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, clip in enumerate(clips):
            _check_clip(clip.frames)
            groups.setdefault((len(clip.frames), clip.landmarks is not None), []).append(i)
        for (length, has_marks), members in groups.items():
            per_pass = max(1, self.max_frames // max(length, 1))
            for start in range(0, len(members), per_pass):
                chunk = members[start : start + per_pass]
                frames = [clips[i].frames for i in chunk]
                outputs = self._run(frames, [clips[i].landmarks for i in chunk] if has_marks else None)
                for i, out in zip(chunk, outputs):
                    results[i] = out
        return results  # type: ignore[return-value]

    @torch.no_grad()
    def _run(self, clips: list[np.ndarray], landmarks: list[np.ndarray] | None) -> list[np.ndarray]:
        batch = torch.from_numpy(np.stack(clips).astype(np.float32, copy=False)).to(self.device)
        batch = batch.permute(0, 4, 1, 2, 3)  # [B, 3, T, H, W]
        skin = None
        if landmarks is not None:
            size = clips[0].shape[1:3]
            masks = np.stack([[skin_mask(lm, size) for lm in marks] for marks in landmarks])
            skin = torch.from_numpy(masks.astype(np.float32))[:, None].to(self.device)
        out = self.model(batch, skin).permute(0, 2, 3, 4, 1).float().cpu().numpy()
        return list(out)


def _check_clip(clip: np.ndarray) -> None:
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[1] % 8 or clip.shape[2] % 8:
        raise ValueError(f"expected a (T, H, W, 3) clip with H, W divisible by 8, got {clip.shape}")
