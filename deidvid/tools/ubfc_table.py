"""POS / CHROM / GREEN heart rate against UBFC-rPPG ground truth, per window.

Usage::

    python -m deidvid.tools.ubfc_table [--data ../shared/data/ubfc] [--window 10 30]
        [--subjects 3 4 ...] [--cache DIR] [--json FILE]

For every ``subjectN/vid.mp4`` + ``ground_truth.txt``: decode with PyAV, find the face
with dlib's HOG detector every ``--detect-every`` frames (on a half-size frame), fit
dlib's 68 landmarks on every frame (box: the last detection), smooth them with a
centred 5-frame moving average, take the mean RGB over the skin region
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
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deidvid.rppg.compare import PulseSettings, compare_pulses
from deidvid.rppg.ground_truth import ppg_at_frames, read_ubfc_ground_truth
from deidvid.rppg.methods import RPPG_METHODS
from deidvid.rppg.signals import fill_gaps, masked_mean_rgb, nominal_rate
from deidvid.faces.skin import skin_region
from deidvid.shared_data import shared_data_dir

SMOOTH_WIDTH = 5  # centred moving average of landmarks, as the paper's preprocessing
DEFAULT_DATA = shared_data_dir() / "ubfc"


@dataclass
class FaceTrace:
    """Per-frame mean skin RGB of one video."""

    rgb: np.ndarray  # (T, 3), NaN where no face
    times: np.ndarray  # (T,) seconds
    landmarks: np.ndarray  # (T, 68, 2) smoothed, NaN where no face
    seconds: float  # wall time it took


class DlibFaceFollower:
    """dlib HOG detection every ``detect_every`` frames + 68 landmarks on every frame."""

    def __init__(self, detect_every: int = 10, detect_scale: float = 0.5) -> None:
        import dlib

        from deidvid.weights import package_file

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(package_file("dlib_landmarks68")))
        self.detect_every = detect_every
        self.detect_scale = detect_scale
        self._box: tuple[int, int, int, int] | None = None

    def _detect(self, grey: np.ndarray) -> None:
        import cv2

        small = cv2.resize(grey, None, fx=self.detect_scale, fy=self.detect_scale,
                           interpolation=cv2.INTER_AREA)
        boxes, scores, _ = self._detector.run(np.ascontiguousarray(small), 0)
        if not boxes:  # small faces: retry at full size
            boxes, scores, _ = self._detector.run(grey, 0)
            scale = 1.0
        else:
            scale = 1.0 / self.detect_scale
        if boxes:
            best = boxes[int(np.argmax(scores))]
            corners = (best.left(), best.top(), best.right(), best.bottom())
            self._box = tuple(int(round(v * scale)) for v in corners)

    def __call__(self, index: int, grey: np.ndarray) -> np.ndarray | None:
        """Landmarks ``(68, 2)`` for frame ``index`` (``grey`` contiguous uint8), or None."""
        if index % self.detect_every == 0 or self._box is None:
            self._detect(grey)
        if self._box is None:
            return None
        shape = self._predictor(grey, self._dlib.rectangle(*self._box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def extract_trace(
    video: Path, detect_every: int = 10, max_frames: int | None = None
) -> FaceTrace:
    """Decode ``video`` and return its per-frame mean skin RGB (single pass).

    ``max_frames`` stops after that many frames (quick checks).
    """
    import av
    import cv2

    start_time = time.perf_counter()
    follower = DlibFaceFollower(detect_every)
    raw_landmarks: list[np.ndarray | None] = []
    pending: deque[tuple[int, np.ndarray]] = deque()  # frames waiting for later landmarks
    rgb_rows: list[np.ndarray] = []
    smoothed_rows: list[np.ndarray] = []
    times: list[float] = []
    half = SMOOTH_WIDTH // 2

    def smoothed(index: int) -> np.ndarray | None:
        nearby = raw_landmarks[max(0, index - half) : index + half + 1]
        window = [lm for lm in nearby if lm is not None]
        if raw_landmarks[index] is None or not window:
            return None
        return np.mean(window, axis=0)

    def flush(index: int, frame: np.ndarray) -> None:
        landmarks = smoothed(index)
        if landmarks is None:
            rgb_rows.append(np.full(3, np.nan))
            smoothed_rows.append(np.full((68, 2), np.nan))
            return
        rgb_rows.append(masked_mean_rgb(frame, skin_region(landmarks, frame.shape[:2])))
        smoothed_rows.append(landmarks)

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, decoded in enumerate(container.decode(stream)):
            if max_frames is not None and index >= max_frames:
                break
            frame = np.ascontiguousarray(decoded.to_ndarray(format="rgb24"))
            times.append(float(decoded.time) if decoded.time is not None else np.nan)
            grey = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
            raw_landmarks.append(follower(index, grey))
            pending.append((index, frame))
            if len(pending) > half:  # its landmark window is complete
                flush(*pending.popleft())
    while pending:
        flush(*pending.popleft())
    return FaceTrace(
        rgb=np.array(rgb_rows),
        times=np.array(times),
        landmarks=np.array(smoothed_rows),
        seconds=time.perf_counter() - start_time,
    )


def load_or_extract(video: Path, cache: Path | None, detect_every: int) -> FaceTrace:
    """:func:`extract_trace`, cached as ``.npz`` keyed by the video's path and size."""
    if cache is None:
        return extract_trace(video, detect_every)
    key = f"{video.parent.name}_{video.stem}_{video.stat().st_size}_d{detect_every}.npz"
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
    parser.add_argument("--detect-every", type=int, default=10)
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
