"""A privacy check while anonymising: do recognisers still match the model's output?

The autoencoder's output is meant to look untouched, so a face it failed to
de-identify would pass unnoticed. :class:`IdentityCheck` scores every ``stride``-th
face crop of each clip: the bundled recognisers embed the input crop and the model's
output crop (at the same landmarks) and count a match when the distance is below the
recogniser's threshold -- the measure ``deidvid verify`` reports on the written video.
The report carries the match rates and the pipeline warns when any is above zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from deidvid.recognise import Recogniser


@dataclass
class _Tally:
    threshold: float
    frames: int = 0
    matches: int = 0
    distances: list[float] = field(default_factory=list)


class IdentityCheck:
    """Accumulates recogniser match rates of (input crop, output crop) pairs, one video.

    Args:
        recognisers: loaded recognisers by name (``deidvid.recognise.load_recogniser``);
            they may be shared by several checks.
        stride: score every ``stride``-th frame of each clip.
    """

    def __init__(self, recognisers: dict[str, Recogniser], stride: int = 8) -> None:
        self.stride = max(int(stride), 1)
        self.recognisers = recognisers
        self.tallies = {name: _Tally(rec.threshold) for name, rec in recognisers.items()}

    @torch.no_grad()
    def observe(self, clip_in: np.ndarray, clip_out: np.ndarray, landmarks: np.ndarray) -> None:
        """Score ``(T, H, W, 3)`` input/output crops in [0, 1] with their ``(T, 68, 2)`` landmarks."""
        if not self.recognisers:
            return
        picked = np.arange(0, len(clip_in), self.stride)
        device = next(next(iter(self.recognisers.values())).parameters()).device  # all share one device
        to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a[picked], np.float32)).to(device)  # noqa: E731
        frames_in, frames_out = to_tensor(clip_in).permute(0, 3, 1, 2), to_tensor(clip_out).permute(0, 3, 1, 2)
        marks = to_tensor(landmarks)
        for name, recogniser in self.recognisers.items():
            distance = recogniser.distance(recogniser.embed(frames_out, marks), recogniser.embed(frames_in, marks))
            tally = self.tallies[name]
            tally.frames += len(picked)
            tally.matches += int((distance < tally.threshold).sum())
            tally.distances.extend(distance.cpu().tolist())

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per recogniser: frames scored, match rate (None if none scored), mean distance, threshold."""
        return {
            name: {
                "frames": t.frames,
                "match_rate": t.matches / t.frames if t.frames else None,
                "mean_distance": float(np.mean(t.distances)) if t.distances else None,
                "threshold": t.threshold,
            }
            for name, t in self.tallies.items()
        }

    def warnings(self) -> list[str]:
        """One line per recogniser that still matched some scored frames."""
        lines = []
        for name, s in self.summary().items():
            if s["match_rate"]:
                lines.append(
                    f"identity check: recogniser {name} still matches {s['match_rate']:.0%} of "
                    f"{s['frames']} sampled face frames (identity not removed there)"
                )
        return lines
