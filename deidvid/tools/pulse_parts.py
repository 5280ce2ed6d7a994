"""Which part of verify's skin mask loses the pulse? ``python -m deidvid.tools.pulse_parts ORIGINAL DEID``.

verify compares the rPPG of a de-identified video with the original's over its own skin
mask (:func:`deidvid.faces.skin.skin_mask`, the original's landmarks for both videos).
The pulse transplant controls only the *transplant skin* (:func:`deidvid.pulse.regions.skin_hard_mask`:
the face hull without the grown eyes, brows, mouth and nostrils), so that mask splits
into the part the transplant sets and a margin it leaves as the method made it. For the
longest face track of the original, this tool takes each part's mean RGB per frame in
both videos and compares them the way verify does (POS, 10 s windows and the whole
track: :func:`deidvid.measure.pulse.compare_track_pulse`): if the transplanted part
agrees no better than the whole, the margin is not where the pulse is lost (the
encoder, or the observers' disagreement, is).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deidvid.faces.skin import skin_mask
from deidvid.pulse.regions import skin_hard_mask
from deidvid.rppg.signals import masked_mean_rgb

PARTS: tuple[str, ...] = ("verify mask", "transplanted part", "margin")


def part_masks(landmarks68: np.ndarray, shape_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """``(H, W)`` bool masks of :data:`PARTS` for one face: verify's mask, its part on the transplant
    skin, and the rest of it (the two parts are disjoint and make up the mask)."""
    verify = skin_mask(landmarks68, shape_hw)
    skin = skin_hard_mask(landmarks68, shape_hw).astype(bool)
    return {"verify mask": verify, "transplanted part": verify & skin, "margin": verify & ~skin}


def part_means(frame: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean RGB ``(3,)`` of ``frame (H, W, 3)`` over each mask; NaN for an empty one."""
    return {name: masked_mean_rgb(frame, mask) for name, mask in masks.items()}


def compare_parts(original: Path, deidentified: Path, window_s: float = 10.0) -> dict[str, dict[str, float | None]]:
    """Per part: POS waveform r and SNR drop (dB) over ``window_s`` windows, and the whole-track r, plus
    the part's share of verify's mask (mean over frames)."""
    from deidvid.faces.find import analyse_video
    from deidvid.io.decode import iter_frames, probe
    from deidvid.measure.pulse import compare_track_pulse
    from deidvid.rppg.compare import PulseSettings

    info = probe(original)
    analysis = analyse_video(original, info=info)
    if not analysis.tracks:
        raise SystemExit(f"{original}: no face found")
    track = max(analysis.tracks, key=lambda t: len(t.landmarks))
    length = len(track.landmarks)
    traces = {(video, part): np.full((length, 3), np.nan) for video in ("original", "deid") for part in PARTS}
    shares = {part: [] for part in PARTS}
    for frame, other in zip(iter_frames(original, info), iter_frames(deidentified, probe(deidentified))):
        k = frame.index - track.start
        if not 0 <= k < length or not np.all(np.isfinite(track.landmarks[k])):
            continue
        masks = part_masks(track.landmarks[k], frame.rgb.shape[:2])
        total = max(int(masks["verify mask"].sum()), 1)
        for part in PARTS:
            shares[part].append(masks[part].sum() / total)
        for video, picture in (("original", frame.rgb), ("deid", other.rgb)):
            for part, mean in part_means(picture, masks).items():
                traces[(video, part)][k] = mean
    times = analysis.times_s[track.start : track.start + length]
    result: dict[str, dict[str, float | None]] = {}
    for part in PARTS:
        pulse = compare_track_pulse(
            traces[("original", part)], traces[("deid", part)], times, ("pos",), (window_s,), PulseSettings()
        )["methods"]["pos"]["windows"]
        windowed = pulse.get(f"{window_s:g}", {}).get("summary", {})
        snr_ref, snr_test = windowed.get("snr_reference_db"), windowed.get("snr_test_db")
        result[part] = {
            "share": float(np.mean(shares[part])) if shares[part] else None,
            "pos_r_window": windowed.get("pearson"),
            "pos_snr_drop_db": None if snr_ref is None or snr_test is None else snr_ref - snr_test,
            "pos_r_whole": pulse["whole"]["summary"]["pearson"],
        }
    return result


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deidvid.tools.pulse_parts", description=__doc__.splitlines()[0])
    parser.add_argument("original", type=Path)
    parser.add_argument("deidentified", type=Path)
    parser.add_argument("--window", type=float, default=10.0, help="window length (s) of the r and SNR columns")
    args = parser.parse_args(argv)
    result = compare_parts(args.original, args.deidentified, args.window)
    print(f"| part | share of verify's mask | POS r {args.window:g} s | POS SNR drop dB | POS r whole |")
    print("|---|---|---|---|---|")
    for part, row in result.items():
        print(f"| {part} | {_number(row['share'])} | {_number(row['pos_r_window'])} | "
              f"{_number(row['pos_snr_drop_db'])} | {_number(row['pos_r_whole'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
