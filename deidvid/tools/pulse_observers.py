"""How much do two rPPG observers of the same original agree? ``python -m deidvid.tools.pulse_observers VIDEO``.

An rPPG estimator averages skin pixels inside its own region of interest. Two
estimators that place the region slightly differently (another landmark model, other
smoothing) see the same pulse but different texture and motion noise. That bounds what
any transplant can reach against an estimator it never saw: the transplanted face is
smooth, so every observer sees the transplant's own measurement, while on the original
each observer sees its own noise.

For the longest face track (found as ``deidvid anonymise`` finds it), the mean RGB of each
transplant region (:mod:`deidvid.pulse.regions`) is taken per frame at full resolution with
the landmarks as found and with perturbed ones, and each perturbed series is compared with
the unperturbed one after rPPG-Toolbox's preprocessing (detrend, 0.75-2.5 Hz band-pass):
Pearson r per region and channel.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from deidvid.pulse.regions import NUM_REGIONS, REGION_NAMES, region_masks

Perturbation = Callable[[np.ndarray, np.random.Generator], np.ndarray]

PERTURBATIONS: dict[str, Perturbation] = {
    "shift 1 px": lambda lm, rng: lm + np.array([1.0, 0.0]),
    "jitter 0.5 px": lambda lm, rng: lm + rng.normal(0.0, 0.5, lm.shape),
    "scale 1.02": lambda lm, rng: lm.mean(axis=0) + 1.02 * (lm - lm.mean(axis=0)),
}


def region_rgb(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean RGB ``(R, 3)`` of ``frame (H, W, 3)`` over each transplant region (NaN where empty)."""
    masks = region_masks(landmarks, frame.shape[:2]).reshape(NUM_REGIONS, -1)
    pixels = frame.reshape(-1, 3).astype(np.float64)
    counts = masks.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (masks @ pixels) / counts[:, None]


def agreement(reference: np.ndarray, other: np.ndarray, fs: float) -> np.ndarray:
    """Pearson r ``(R, 3)`` of two ``(T, R, 3)`` region series after detrend + 0.75-2.5 Hz band-pass."""
    from deidvid.rppg.hr import preprocess
    from deidvid.rppg.signals import fill_gaps

    out = np.full(reference.shape[1:], np.nan)
    for r in range(reference.shape[1]):
        for c in range(reference.shape[2]):
            a, b = fill_gaps(reference[:, r, c]), fill_gaps(other[:, r, c])
            if np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
                out[r, c] = np.corrcoef(preprocess(a, fs), preprocess(b, fs))[0, 1]
    return out


def observe(video: Path, seed: int = 0) -> tuple[dict[str, np.ndarray], float, np.ndarray]:
    """Region series ``(T, R, 3)`` of the longest track, unperturbed (``"as found"``) and per
    perturbation; the frame rate; the track's landmarks ``(T, 68, 2)`` (from frame ``start``)."""
    from deidvid.faces.find import analyse_video
    from deidvid.io.decode import iter_frames, probe

    info = probe(video)
    tracks = analyse_video(video, info=info).tracks
    if not tracks:
        raise SystemExit(f"{video}: no face found")
    track = max(tracks, key=lambda t: len(t.landmarks))
    rng = np.random.default_rng(seed)
    names = ["as found", *PERTURBATIONS]
    series = {name: np.full((len(track.landmarks), NUM_REGIONS, 3), np.nan) for name in names}
    for frame in iter_frames(video, info):
        k = frame.index - track.start
        if not 0 <= k < len(track.landmarks) or not np.all(np.isfinite(track.landmarks[k])):
            continue
        landmarks = track.landmarks[k]
        series["as found"][k] = region_rgb(frame.rgb, landmarks)
        for name, perturb in PERTURBATIONS.items():
            series[name][k] = region_rgb(frame.rgb, perturb(landmarks, rng))
    return series, float(info.fps), track.landmarks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    series, fs, _ = observe(args.video, args.seed)
    print(f"{args.video}: band r of each perturbed observer against the landmarks as found (R, G, B)")
    print("| observer | " + " | ".join(REGION_NAMES) + " | mean |")
    print("|---" * (NUM_REGIONS + 2) + "|")
    for name in PERTURBATIONS:
        r = agreement(series["as found"], series[name], fs)
        cells = [" ".join(f"{v:.2f}" for v in row) for row in r]
        print(f"| {name} | " + " | ".join(cells) + f" | {np.nanmean(r):.3f} |")


if __name__ == "__main__":
    main()
