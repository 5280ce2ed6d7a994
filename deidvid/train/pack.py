"""A training cache packed small enough to carry to another machine (a GPU box).

The trainer's cache (``runs/cache``: ``clips/*.npz`` of 64-frame 128x128 crops and
``stills.npz`` of 192x192 face contexts) is hundreds of megabytes of raw pixels. A
pack stores every frame as a lossy WebP (the training augmentation re-compresses
frames anyway; at quality 85 a 128x128 crop keeps ~40 dB PSNR in ~1.6 kB, half a JPEG's
size) with the landmarks, frame rates and identities untouched, in one ``.npz`` of
plain arrays (no pickles). ``unpack_cache`` writes the cache layout back, so the
trainer itself needs no change.

``python -m deidvid.train pack --cache runs/cache --out runs/train.pack.npz``
``python -m deidvid.train unpack --pack runs/train.pack.npz --cache runs/cache``
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

STILLS = "stills.npz"
CLIPS = "clips"


def encode_frames(frames: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """WebP-encode ``(..., H, W, 3)`` uint8 RGB frames (quality 1-100).

    Returns the concatenated bytes ``(B,)`` uint8 and the offsets ``(N + 1,)`` int64.
    """
    chunks = []
    for rgb in frames.reshape(-1, *frames.shape[-3:]):
        ok, buf = cv2.imencode(".webp", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise ValueError("WebP encoding failed")
        chunks.append(buf.reshape(-1))
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
    return np.concatenate(chunks).astype(np.uint8), offsets


def decode_frames(data: np.ndarray, offsets: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`encode_frames`: ``shape`` = ``(..., H, W, 3)`` of the frames."""
    frames = [
        cv2.cvtColor(cv2.imdecode(data[a:b], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for a, b in zip(offsets[:-1], offsets[1:])
    ]
    return np.stack(frames).reshape(shape)


def pack_cache(cache_dir: Path, out: Path, quality: int = 85, max_stills: int = 0) -> dict[str, int]:
    """Pack ``cache_dir`` (clips and stills) into ``out``; returns counts for the log.

    Args:
        max_stills: keep only this many stills, evenly spaced over the (sorted by
            identity) list (0: all), when the pack must fit a transfer limit.
    """
    arrays: dict[str, np.ndarray] = {}
    clip_files = sorted((cache_dir / CLIPS).glob("*.npz"))
    for i, path in enumerate(clip_files):
        with np.load(path) as clip:
            frames = clip["frames"]
            arrays[f"clip{i}_encoded"], arrays[f"clip{i}_offsets"] = encode_frames(frames, quality)
            arrays[f"clip{i}_shape"] = np.array(frames.shape, np.int64)
            arrays[f"clip{i}_landmarks"] = clip["landmarks"]
            arrays[f"clip{i}_fps"] = clip["fps"]
            arrays[f"clip{i}_identity"] = clip["identity"]
            arrays[f"clip{i}_name"] = np.str_(path.name)
    counts = {"videos": len(clip_files), "stills": 0}
    if (cache_dir / STILLS).exists():
        with np.load(cache_dir / STILLS) as stills:
            keep = np.arange(len(stills["images"]))
            if max_stills and len(keep) > max_stills:
                keep = np.unique(np.linspace(0, len(keep) - 1, max_stills).round().astype(int))
            images = stills["images"][keep]
            arrays["stills_encoded"], arrays["stills_offsets"] = encode_frames(images, quality)
            arrays["stills_shape"] = np.array(images.shape, np.int64)
            arrays["stills_landmarks"] = stills["landmarks"][keep]
            arrays["stills_identities"] = stills["identities"][keep]
            counts["stills"] = len(keep)
    _save_atomic(out, arrays)
    return counts


def unpack_cache(pack: Path, cache_dir: Path) -> dict[str, int]:
    """Write the cache layout of :func:`pack_cache`'s ``pack`` under ``cache_dir``."""
    (cache_dir / CLIPS).mkdir(parents=True, exist_ok=True)
    counts = {"videos": 0, "stills": 0}
    with np.load(pack, allow_pickle=False) as data:
        i = 0
        while f"clip{i}_encoded" in data:
            shape = tuple(int(n) for n in data[f"clip{i}_shape"])
            _save_atomic(
                cache_dir / CLIPS / str(data[f"clip{i}_name"]),
                {
                    "frames": decode_frames(data[f"clip{i}_encoded"], data[f"clip{i}_offsets"], shape),
                    "landmarks": data[f"clip{i}_landmarks"],
                    "fps": data[f"clip{i}_fps"],
                    "identity": data[f"clip{i}_identity"],
                },
            )
            i += 1
        counts["videos"] = i
        if "stills_encoded" in data:
            shape = tuple(int(n) for n in data["stills_shape"])
            images = decode_frames(data["stills_encoded"], data["stills_offsets"], shape)
            _save_atomic(
                cache_dir / STILLS,
                {"images": images, "landmarks": data["stills_landmarks"], "identities": data["stills_identities"]},
            )
            counts["stills"] = len(images)
    return counts


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")  # np.savez keeps a name ending in .npz
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
