"""How the bank's presentation probe reads the people in videos.

    python -m deidvid.tools.apparent VIDEO [VIDEO ...] [--frames 8] [--every 15]

Per video: the largest face in every ``--every``-th frame (up to ``--frames`` faces),
recogniser A's embedding, and the probe's mean P(female-looking) with its reading
(:mod:`deidvid.surrogate.presentation`), as ``--surrogate-look same`` would read it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def largest_face_embeddings(video: Path, frames: int = 8, every: int = 15) -> np.ndarray:
    """``(N, D)`` recogniser A's embeddings of the largest face in every ``every``-th frame, ``N <= frames``."""
    from deidvid.faces.detect import FaceDetector
    from deidvid.faces.landmarks import LandmarkPredictor
    from deidvid.io.decode import iter_frames, probe
    from deidvid.measure.gallery import embed_image, largest_face_landmarks
    from deidvid.recognise import load_embedder

    find = largest_face_landmarks(FaceDetector(), LandmarkPredictor())
    recogniser = {"A": load_embedder("A")}
    embeddings = []
    for i, frame in enumerate(iter_frames(video, probe(video))):
        if len(embeddings) == frames:
            break
        landmarks = find(frame.rgb) if i % every == 0 else None
        if landmarks is not None:
            embeddings.append(embed_image(recogniser, frame.rgb, landmarks)["A"])
    return np.stack(embeddings) if embeddings else np.zeros((0, 128))


def main(argv: list[str] | None = None) -> int:
    from deidvid.surrogate.bank import load_presentation_probe
    from deidvid.surrogate.presentation import read_as

    parser = argparse.ArgumentParser(prog="python -m deidvid.tools.apparent", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--every", type=int, default=15)
    args = parser.parse_args(argv)
    print("| video | faces | mean P(female-looking) | read as |")
    print("|---|---|---|---|")
    probe = load_presentation_probe()
    for video in args.videos:
        embeddings = largest_face_embeddings(video, args.frames, args.every)
        if len(embeddings) == 0:
            print(f"| {video} | 0 | - | - |")
            continue
        mean = float(probe.probability(embeddings).mean())
        print(f"| {video} | {len(embeddings)} | {mean:.3f} | {read_as(mean)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
