"""Inference speed of the model stage: face-frames per second, against blur in the same run.

``deidvid bench model [--methods blur pixelate ae ae-paper] [--frames 64] [--runs 5] [--device cpu]``
``--save-crop FILE`` / ``--crop FILE`` keep the input crop for a machine without dlib (a GPU box).

Each method is timed through the anonymiser interface the pipeline calls
(``Method.run(clips)``), so the
autoencoders' cost includes the skin masks from the landmarks and the tensor
conversions. Input: the astronaut's 128x128 pipeline crop (RetinaFace + dlib 68
landmarks, ``crop_box``) repeated into ``--batch`` clips of ``--frames`` frames (speed
does not depend on the content). Reported: median of ``--runs`` timed runs after one
warm-up, face-frames/s, and the ratio to the blur baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch

from deidvid.methods import METHODS, CropClip, build_method

BASELINE = "blur"


def astronaut_crop() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's 128x128 face crop ``(128, 128, 3)`` float32 in [0, 1] and its
    landmarks ``(68, 2)`` in crop pixels, found by the pipeline's own stages."""
    from deidvid.faces.geometry import crop_box, cut_crop
    from deidvid.faces.detect import FaceDetector
    from deidvid.faces.landmarks import LandmarkPredictor, dlib_box_from_detection, to_grey
    from skimage.data import astronaut

    image = np.ascontiguousarray(astronaut())
    detection = max(FaceDetector()(image), key=lambda d: d.score)
    landmarks = LandmarkPredictor()(to_grey(image), dlib_box_from_detection(detection))
    box = crop_box(landmarks)
    return cut_crop(image, box).astype(np.float32) / 255.0, box.to_crop(landmarks).astype(np.float32)


def time_method(
    method: str, crop: np.ndarray, landmarks: np.ndarray, frames: int = 64, batch: int = 1, runs: int = 5,
    device: str = "cpu",
) -> dict[str, Any]:
    """Median wall time of ``method`` on ``batch`` clips of ``frames`` copies of ``crop``."""
    runner = build_method(method, device)
    times_s = np.arange(frames, dtype=np.float64) / 30.0
    clips = [
        CropClip(np.repeat(crop[None], frames, axis=0), np.repeat(landmarks[None], frames, axis=0), i, 0, times_s)
        for i in range(batch)
    ]

    def run() -> None:
        runner.run(clips)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    run()  # warm-up: first-call allocations, lazy imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "method": method,
        "device": device,
        "threads": torch.get_num_threads(),
        "face_frames": frames * batch,
        "median_s": round(median, 4),
        "runs_s": [round(t, 4) for t in times],
        "face_frames_per_s": round(frames * batch / median, 1),
    }


def bench_model(
    methods: list[str], frames: int = 64, batch: int = 1, runs: int = 5, device: str = "cpu",
    crop_file: str | None = None,
) -> list[dict[str, Any]]:
    """Time every method (the blur baseline always included) and add ``x_blur`` ratios."""
    if crop_file:
        with np.load(crop_file) as saved:
            crop, landmarks = saved["crop"], saved["landmarks"]
    else:
        crop, landmarks = astronaut_crop()
    ordered = [BASELINE] + [m for m in methods if m != BASELINE]
    results = [time_method(m, crop, landmarks, frames, batch, runs, device) for m in ordered]
    baseline = results[0]["face_frames_per_s"]
    for result in results:
        result["x_blur"] = round(result["face_frames_per_s"] / baseline, 3)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deidvid bench model", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["pixelate", "ae", "ae-paper"], choices=METHODS)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--crop", default=None, help="read the input crop from this .npz (see --save-crop)")
    parser.add_argument("--save-crop", default=None, help="write the astronaut crop here and stop")
    args = parser.parse_args(argv)
    if args.save_crop:
        crop, landmarks = astronaut_crop()
        np.savez(args.save_crop, crop=crop, landmarks=landmarks)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    for result in bench_model(args.methods, args.frames, args.batch, args.runs, args.device, args.crop):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
