"""CPU (or CUDA) throughput of the recognisers: ``python -m deidvid.tools.bench_recognisers``.

Faces per second for a batch of faces, median of several timed runs after a warm-up:
``network`` = chips -> embeddings, ``embed`` = frames + 68 landmarks -> embeddings
(alignment included), ``embed+grad`` = forward and backward to the pixels (the
training-time cost). Inputs are synthetic: speed does not depend on content.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from deidvid.recognise import ALL_RECOGNISERS


def _median_seconds(fn: Callable[[], object], runs: int, sync: Callable[[], None]) -> float:
    fn()
    sync()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def synthetic_faces(batch: int, size: int = 256, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 3, size, size)`` random frames and ``(B, 68, 2)`` plausible landmarks
    (dlib's mean face spread over the middle of the frame)."""
    from deidvid.recognise.align import dlib_mean_face_68

    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(batch, 3, size, size, generator=gen)
    mean = dlib_mean_face_68().float()
    mean[:17] = mean[17:].mean(0)  # no jaw template: any point inside the face will do
    landmarks = (size * (0.25 + 0.5 * mean))[None].repeat(batch, 1, 1)
    landmarks = landmarks + torch.randn(batch, 68, 2, generator=gen)
    return frames.to(device), landmarks.to(device)


def benchmark(name: str, batch: int = 32, runs: int = 5, device: str = "cpu") -> dict[str, float]:
    """Faces/s of recogniser ``name``: ``{"network": ..., "embed": ..., "embed+grad": ...}``."""
    from deidvid.recognise import load_recogniser

    rec = load_recogniser(name, device)
    frames, landmarks = synthetic_faces(batch, device=device)
    chips = rec.chips(frames, landmarks).detach()
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)

    def forward_backward() -> None:
        x = frames.clone().requires_grad_(True)
        rec.embed(x, landmarks).sum().backward()

    with torch.no_grad():
        t_net = _median_seconds(lambda: rec.embed_chips(chips), runs, sync)
        t_embed = _median_seconds(lambda: rec.embed(frames, landmarks), runs, sync)
    t_grad = _median_seconds(forward_backward, runs, sync)
    return {"network": batch / t_net, "embed": batch / t_embed, "embed+grad": batch / t_grad}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recognisers", nargs="+", default=list(ALL_RECOGNISERS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"median of {args.runs} runs; faces/s")  # fmt: skip
    print(f"{'recogniser':<16}{'network':>10}{'embed':>10}{'embed+grad':>12}")
    for name in args.recognisers:
        r = benchmark(name, args.batch, args.runs, args.device)
        print(f"{name:<16}{r['network']:>10.1f}{r['embed']:>10.1f}{r['embed+grad']:>12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
