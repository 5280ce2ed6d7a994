"""Runtime of ``verify`` on a synthetic one-face video: ``python -m deidvid.tools.bench_verify``.

Writes a ``--seconds`` long ``--size`` video (the project's astronaut generator),
runs :func:`deidvid.verify.run.verify_videos` on (video, video) ``--runs`` times and
prints the median wall time, frames per second and the median time per stage.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def bench_verify(
    seconds: float = 60.0,
    size: tuple[int, int] = (640, 480),
    fps: int = 30,
    runs: int = 3,
    threads: int | None = 1,
    workdir: Path | None = None,
) -> dict:
    """Median timings of ``verify`` (default options, CPU) over ``runs`` runs."""
    import torch

    from deidvid.testing.synthetic_video import make_face_video
    from deidvid.verify.run import VerifyOptions, verify_videos

    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        frames = int(round(seconds * fps))
        video = make_face_video(Path(tmp) / "bench.mp4", n_frames=frames, fps=fps, size=size, audio=False)
        totals, stages = [], []
        for _ in range(runs):
            started = time.perf_counter()
            report = verify_videos(video, video, VerifyOptions())
            totals.append(time.perf_counter() - started)
            stages.append(report.timings_s)
    median = statistics.median(totals)
    stage_names = sorted({k for s in stages for k in s if k != "total"})
    return {
        "seconds": seconds,
        "size": size,
        "frames": frames,
        "runs_s": totals,
        "median_s": median,
        "frames_per_s": frames / median,
        "stages_median_s": {k: statistics.median(s.get(k, 0.0) for s in stages) for k in stage_names},
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    args = parser.parse_args(argv)
    result = bench_verify(args.seconds, tuple(args.size), runs=args.runs, threads=args.threads or None)
    print(f"verify, {result['frames']} frames {args.size[0]}x{args.size[1]}, "
          f"torch threads {result['torch_threads']}: median {result['median_s']:.1f} s "
          f"({result['frames_per_s']:.1f} frames/s); runs "
          + ", ".join(f"{s:.1f}" for s in result["runs_s"]))
    for stage, value in sorted(result["stages_median_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {stage:12s} {value:7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
