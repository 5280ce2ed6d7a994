"""Inference speed of the autoencoders: face-frames per second (median of several runs).

``python -m deidvid.model.bench [--arch residual paper] [--frames 64] [--runs 5] [--device cpu]``
times randomly initialised models (speed does not depend on the weights) on one
64-frame 128x128 clip, the unit the pipeline runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from deidvid.model.autoencoder import ARCHITECTURES, build_model


def frames_per_second(arch: str, frames: int = 64, runs: int = 5, device: str = "cpu", batch: int = 1) -> dict:
    """Median face-frames/s of ``arch`` on ``batch`` clips of ``frames`` frames."""
    model = build_model(arch).eval().to(device)
    clip = torch.rand(batch, 3, frames, 128, 128, device=device)
    skin = torch.zeros(batch, 1, frames, 128, 128, device=device)
    skin[..., 40:100, 30:98] = 1.0
    times = []
    with torch.no_grad():
        model(clip, skin)  # warm-up
        for _ in range(runs):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(clip, skin)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "arch": arch,
        "device": device,
        "threads": torch.get_num_threads(),
        "clip_frames": frames * batch,
        "median_s": round(median, 4),
        "frames_per_s": round(frames * batch / median, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deidvid.model.bench")
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES))
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for arch in args.arch:
        print(json.dumps(frames_per_second(arch, args.frames, args.runs, args.device, args.batch)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
