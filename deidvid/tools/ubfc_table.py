"""POS / CHROM / GREEN heart rate against UBFC-rPPG ground truth, per window.

Usage::

    python -m deidvid.tools.ubfc_table [--data ../shared/data/ubfc] [--window 10 30]
        [--subjects 3 4 ...] [--cache DIR] [--json FILE]

For every ``subjectN/vid.mp4`` + ``ground_truth.txt``: find and track the face with the
product's pass 1 (``deidvid.faces.find``: RetinaFace every ``--detect-every`` frames,
dlib 68 landmarks, 5-frame smoothing), decode with the product's decoder
(``deidvid.io.decode``), take the mean RGB over the skin region
(:mod:`deidvid.faces.skin`), then run each rPPG method and compare its HR with the
finger PPG's HR (same detrend / band-pass / periodogram pipeline) per
non-overlapping window. The contact PPG is aligned to frames by index (UBFC stores
one sample per frame). RGB traces are cached (``--cache``) so reruns only redo
the signal processing.

The printed markdown table gives, per subject and window length, the HR MAE of each
method and POS's mean waveform Pearson r against the PPG; a subject's POS "matches"
the PPG when its MAE is at most ``--match-bpm`` (default 5 bpm).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deidvid.rppg.compare import PulseSettings, compare_pulses
from deidvid.rppg.ground_truth import ppg_at_frames, read_ubfc_ground_truth
from deidvid.rppg.methods import RPPG_METHODS
from deidvid.rppg.signals import fill_gaps, masked_mean_rgb, nominal_rate
from deidvid.faces.find import FaceFinding, analyse_video
from deidvid.faces.skin import skin_region
from deidvid.io.decode import iter_frames, probe
from deidvid.shared_data import shared_data_dir

DEFAULT_DATA = shared_data_dir() / "ubfc"


@dataclass
class FaceTrace:
    """Per-frame mean skin RGB of one video."""

    rgb: np.ndarray  # (T, 3), NaN where no face
    times: np.ndarray  # (T,) seconds
    landmarks: np.ndarray  # (T, 68, 2) smoothed, NaN where no face
    seconds: float  # wall time it took


def extract_trace(video: Path, detect_every: int = 3) -> FaceTrace:
    """Per-frame mean skin RGB of ``video``'s longest face track, through the product's own path.

    Pass 1 is ``deidvid.faces.find`` (RetinaFace every ``detect_every`` frames, dlib 68
    landmarks, tracker, 5-frame smoothing), and frames come from ``deidvid.io.decode``
    (the stream's own colour matrix, accurate rounding), exactly as ``anonymise`` and
    ``verify`` see them.
    """
    start_time = time.perf_counter()
    info = probe(video)
    analysis = analyse_video(video, FaceFinding(detect_every=detect_every), info=info)
    n = analysis.frame_count
    rgb = np.full((n, 3), np.nan)
    landmarks = np.full((n, 68, 2), np.nan)
    if analysis.tracks:
        track = max(analysis.tracks, key=lambda t: len(t.landmarks))
        for frame in iter_frames(video, info):
            if track.covers(frame.index):
                marks = track.at(frame.index)
                rgb[frame.index] = masked_mean_rgb(frame.rgb, skin_region(marks, frame.rgb.shape[:2]))
                landmarks[frame.index] = marks
    return FaceTrace(rgb=rgb, times=analysis.times_s, landmarks=landmarks, seconds=time.perf_counter() - start_time)


def load_or_extract(video: Path, cache: Path | None, detect_every: int) -> FaceTrace:
    """:func:`extract_trace`, cached as ``.npz`` keyed by the video's path and size."""
    if cache is None:
        return extract_trace(video, detect_every)
    key = f"{video.parent.name}_{video.stem}_{video.stat().st_size}_find_d{detect_every}.npz"
    path = cache / key
    if path.exists():
        data = np.load(path)
        return FaceTrace(data["rgb"], data["times"], data["landmarks"], float(data["seconds"]))
    trace = extract_trace(video, detect_every)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, rgb=trace.rgb, times=trace.times, landmarks=trace.landmarks,
                        seconds=trace.seconds)
    return trace


def evaluate_subject(
    subject_dir: Path,
    windows: list[float | None],
    methods: list[str],
    cache: Path | None,
    detect_every: int,
    settings: PulseSettings,
) -> dict:
    """All numbers for one subject: per method and window length, PPG comparison."""
    trace = load_or_extract(subject_dir / "vid.mp4", cache, detect_every)
    truth = read_ubfc_ground_truth(subject_dir / "ground_truth.txt")
    fs = nominal_rate(trace.times)
    ppg = ppg_at_frames(truth, trace.times)
    usable = int(np.isfinite(ppg).sum())  # UBFC: one PPG sample per frame (may lack the last)
    face_frames = int(np.isfinite(trace.rgb).all(axis=1).sum())
    rgb = fill_gaps(trace.rgb)[:usable]
    ppg = ppg[:usable]
    result = {
        "subject": subject_dir.name,
        "frames": int(trace.rgb.shape[0]),
        "face_frames": face_frames,
        "fps": fs,
        "extract_seconds": trace.seconds,
        "methods": {},
    }
    for method in methods:
        pulse = RPPG_METHODS[method](rgb, fs)
        per_window = {}
        for window in windows:
            comparison = compare_pulses(pulse, ppg, fs, window_s=window, settings=settings)
            per_window[str(window)] = comparison.as_dict()
        result["methods"][method] = per_window
    return result


def markdown_table(results: list[dict], windows: list[float | None], methods: list[str],
                   match_bpm: float) -> str:
    """Per subject and window: HR MAE of each method, POS waveform r, POS match."""
    header = ["subject", "window", "windows"]
    header += [f"{m.upper()} MAE" for m in methods]
    header += ["POS r", "POS MACC", "PPG HR", "POS HR", "POS matches"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for window in windows:
        maes = {m: [] for m in methods}
        for result in results:
            row = [result["subject"], "whole" if window is None else f"{window:g} s"]
            summaries = {m: result["methods"][m][str(window)]["summary"] for m in methods}
            row.append(str(summaries[methods[0]]["windows"]))
            for m in methods:
                row.append(f"{summaries[m]['hr_mae']:.2f}")
                maes[m].append(summaries[m]["hr_mae"])
            pos = result["methods"].get("pos", {}).get(str(window))
            if pos:
                ref = np.mean([w["hr_reference_bpm"] for w in pos["windows"]])
                test = np.mean([w["hr_test_bpm"] for w in pos["windows"]])
                row += [f"{pos['summary']['pearson']:.2f}", f"{pos['summary']['macc']:.2f}",
                        f"{ref:.1f}", f"{test:.1f}",
                        "yes" if pos["summary"]["hr_mae"] <= match_bpm else "no"]
            else:
                row += ["-"] * 5
            lines.append("| " + " | ".join(row) + " |")
        mean_row = ["**mean**", "whole" if window is None else f"{window:g} s", ""]
        mean_row += [f"**{np.mean(maes[m]):.2f}**" for m in methods] + [""] * 5
        lines.append("| " + " | ".join(mean_row) + " |")
    return "\n".join(lines)


def _json_safe(value):
    """NaN/inf -> None, numpy scalars -> Python (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--subjects", nargs="*", help="e.g. 3 4 (default: all found)")
    parser.add_argument("--window", nargs="*", default=["10", "30"],
                        help="window lengths in s; 'whole' for the whole video")
    parser.add_argument("--methods", nargs="*", default=["pos", "chrom", "green"])
    parser.add_argument("--band", nargs=2, type=float, default=[0.75, 2.5], metavar=("LO", "HI"))
    parser.add_argument("--detect-every", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached RGB traces")
    parser.add_argument("--match-bpm", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if args.subjects:
        subject_dirs = [args.data / f"subject{s}" for s in args.subjects]
    else:
        subject_dirs = sorted(args.data.glob("subject*"), key=lambda p: int(p.name[7:]))
    if not subject_dirs or not all((d / "vid.mp4").exists() for d in subject_dirs):
        print(f"no UBFC subjects found under {args.data}", file=sys.stderr)
        return 2
    windows = [None if w == "whole" else float(w) for w in args.window]
    settings = PulseSettings(band_hz=tuple(args.band))
    results = []
    for subject_dir in subject_dirs:
        result = evaluate_subject(
            subject_dir, windows, args.methods, args.cache, args.detect_every, settings
        )
        print(f"{result['subject']}: {result['frames']} frames at {result['fps']:.2f} fps, "
              f"face in {result['face_frames']}, extraction {result['extract_seconds']:.1f} s",
              file=sys.stderr)
        results.append(result)
    print(markdown_table(results, windows, args.methods, args.match_bpm))
    if args.json:
        payload = {"settings": {**settings.as_dict(), "windows_s": args.window,
                                "detect_every": args.detect_every}, "subjects": results}
        args.json.write_text(json.dumps(_json_safe(payload), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
