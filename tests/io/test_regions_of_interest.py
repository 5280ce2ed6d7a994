"""Regions of interest: faces coded at a finer quantiser than the rest of the frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from deidvid.io.decode import iter_frames, probe
from deidvid.io.encode import VideoWriter
from deidvid.io.regions import rotate_region, with_regions_of_interest
from deidvid.testing.synthetic_video import make_pattern_video


def _mask(region, width, height):
    x, y, w, h = region
    mask = np.zeros((height, width), bool)
    mask[y : y + h, x : x + w] = True
    return mask


def test_rotate_region_follows_numpy_rot90():
    width, height, region = 40, 30, (3, 5, 10, 7)
    display = _mask(region, width, height)
    for turns in range(5):
        stored = np.rot90(display, k=-turns)
        rotated = rotate_region(region, width, height, turns)
        np.testing.assert_array_equal(_mask(rotated, stored.shape[1], stored.shape[0]), stored)


def test_the_frame_carries_region_of_interest_side_data():
    frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    marked = with_regions_of_interest(frame, [(8, 8, 16, 16), (-5, -5, 10, 10)], qp_offset=-15)
    kinds = [str(k) for k in marked.side_data.keys()]
    assert len(kinds) == 1 and "REGIONS_OF_INTEREST" in kinds[0]
    untouched = with_regions_of_interest(frame, [(100, 100, 10, 10)], qp_offset=-15)  # outside the frame
    assert not list(untouched.side_data.keys())


def _face_error(path: Path, source: list[np.ndarray], box) -> float:
    x, y, w, h = box
    errors = [
        np.abs(f.rgb[y : y + h, x : x + w].astype(float) - s[y : y + h, x : x + w]).mean()
        for f, s in zip(iter_frames(path, probe(path)), source)
    ]
    return float(np.mean(errors))


def test_a_region_is_coded_finer_than_the_rest(tmp_path):
    src = make_pattern_video(tmp_path / "src.mp4", n_frames=12)
    info = probe(src)
    rng = np.random.default_rng(0)
    source = [np.clip(f.rgb.astype(int) + rng.integers(-6, 7, f.rgb.shape), 0, 255).astype(np.uint8) for f in iter_frames(src, info)]
    box = (16, 16, 64, 64)
    errors = {}
    for offset in (0, -20):
        out = tmp_path / f"o{offset}.mp4"
        with VideoWriter(out, info, crf=30) as writer:
            for frame, rgb in zip(iter_frames(src, info), source):
                writer.write(frame, rgb, [box], qp_offset=offset)
        errors[offset] = _face_error(out, source, box)
    assert errors[-20] < 0.85 * errors[0]  # measured: 2.74 against 3.74 grey levels
