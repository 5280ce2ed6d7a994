"""Side-by-side stills of an original and its de-identified video (README figures).

    python -m deidvid.tools.stills ORIGINAL DEIDENTIFIED OUT.png [--frames 0 150] [--height 240] [--box X Y W H]

Frames side by side, each a pair: original | de-identified (the ``--box`` region of each, default the
whole frame), scaled to ``--height`` pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from deidvid.io.atomic import write_bytes
from deidvid.io.decode import iter_frames, probe


def frames_at(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """The RGB frames of ``path`` at ``indices``."""
    wanted, out = set(indices), {}
    for frame in iter_frames(path, probe(path)):
        if frame.index in wanted:
            out[frame.index] = frame.rgb
        if len(out) == len(wanted):
            break
    return out


def side_by_side(original: np.ndarray, deidentified: np.ndarray, height: int) -> np.ndarray:
    """``original | deidentified`` at ``height`` pixels, a 4-pixel white gap between."""
    scale = height / original.shape[0]
    size = (int(round(original.shape[1] * scale)), height)
    gap = np.full((height, 4, 3), 255, np.uint8)
    return np.hstack([cv2.resize(original, size, interpolation=cv2.INTER_AREA), gap,
                      cv2.resize(deidentified, size, interpolation=cv2.INTER_AREA)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deidvid.tools.stills", description=__doc__.split("\n\n")[0])
    p.add_argument("original", type=Path)
    p.add_argument("deidentified", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--frames", type=int, nargs="+", default=[0, 150])
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--box", type=int, nargs=4, metavar=("X", "Y", "W", "H"), default=None)
    args = p.parse_args(argv)
    a, b = frames_at(args.original, args.frames), frames_at(args.deidentified, args.frames)
    if args.box is not None:
        x, y, w, h = args.box
        a = {i: f[y : y + h, x : x + w] for i, f in a.items()}
        b = {i: f[y : y + h, x : x + w] for i, f in b.items()}
    rows = [side_by_side(a[i], b[i], args.height) for i in args.frames if i in a and i in b]
    if not rows:
        p.error("none of --frames is in both videos")
    image = np.hstack([np.hstack([r, np.full((r.shape[0], 8, 3), 255, np.uint8)]) for r in rows])[:, :-8]
    _, png = cv2.imencode(".png", image[:, :, ::-1])
    write_bytes(args.out, png.tobytes())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
