"""CPU speed of deidvid.faces.detect.FaceDetector: ``deidvid bench detect [--threads N --runs N]``.

Frames are skimage's astronaut (one face) letterboxed to 16:9 sizes. Reports the
median of several runs, per frame, end to end (resize + network + decode + NMS):
wall-clock time, and the process's CPU time (all threads), which other processes
competing for the cores do not inflate as much.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch
from skimage import data

from deidvid.faces.detect import FaceDetector


def frame_of_size(width: int, height: int) -> np.ndarray:
    face = data.astronaut()
    side = min(width, height)
    frame = np.full((height, width, 3), 90, np.uint8)
    x0 = (width - side) // 2
    frame[:, x0 : x0 + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return frame


def median_ms(fn, runs: int, warmup: int = 3) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deidvid bench detect", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.runs} runs")
    for width, height, max_side in [(640, 360, 640), (1280, 720, 640), (1280, 720, 1280),
                                    (1920, 1080, 640), (1920, 1080, 1920)]:  # fmt: skip
        frame = frame_of_size(width, height)
        detector = FaceDetector(max_side=max_side)
        assert len(detector(frame)) == 1
        wall, cpu = median_ms(lambda: detector(frame), args.runs)
        frames = [frame] * args.batch
        batch_runs = max(3, args.runs // 3)
        batch_wall, batch_cpu = median_ms(lambda: detector.detect_batch(frames), batch_runs)
        print(f"{width}x{height} max_side={max_side:4d}: single {wall:6.1f} ms wall "
              f"({cpu:6.1f} ms CPU); batch of {args.batch}: {batch_wall / args.batch:6.1f} ms wall "
              f"({batch_cpu / args.batch:6.1f} ms CPU) per frame")  # fmt: skip


    return 0


if __name__ == "__main__":
    raise SystemExit(main())
