"""The carried training cache: WebP frames, everything else exact, the cache layout restored."""

from __future__ import annotations

import numpy as np

from deidvid.train import data as D
from deidvid.train.pack import decode_frames, encode_frames, pack_cache, unpack_cache


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_frames_survive_the_webp_round_trip(astronaut):
    frames = np.stack([astronaut[:128, :128], astronaut[100:228, 150:278]])
    data, offsets = encode_frames(frames, quality=90)
    assert data.dtype == np.uint8 and offsets[0] == 0 and offsets[-1] == len(data) and len(offsets) == 3
    back = decode_frames(data, offsets, frames.shape)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert _psnr(back, frames) > 32  # close, and smaller than raw
    assert len(data) < frames.nbytes / 4
    worse = decode_frames(*encode_frames(frames, quality=30), frames.shape)
    assert _psnr(worse, frames) < _psnr(back, frames)


def test_pack_and_unpack_restore_the_trainers_cache(tmp_path, astronaut):
    rng = np.random.default_rng(3)
    cache = tmp_path / "cache"
    (cache / "clips").mkdir(parents=True)
    frames = np.stack([np.stack([astronaut[i : i + 128, 150:278] for i in range(0, 8, 2)])] * 2)  # (2, 4, 128, 128, 3)
    landmarks = rng.uniform(0, 128, (2, 4, 68, 2)).astype(np.float32)
    np.savez(cache / "clips" / "v__a.npz", frames=frames, landmarks=landmarks, fps=np.float64(29.97), identity=np.str_("a"))
    stills = D.synthetic_stills(5, rng)
    D.save_stills(stills, cache / "stills.npz")

    counts = pack_cache(cache, tmp_path / "p.npz", quality=95, max_stills=3)
    assert counts == {"videos": 1, "stills": 3}
    assert not list(tmp_path.glob("*.tmp*"))
    restored = tmp_path / "restored"
    assert unpack_cache(tmp_path / "p.npz", restored) == {"videos": 1, "stills": 3}

    clips = D.load_cached_clips([restored / "clips" / "v__a.npz"])
    assert len(clips) == 2 and clips[0].fps == 29.97 and clips[0].identity == "a"
    np.testing.assert_array_equal(clips[1].landmarks, landmarks[1])
    assert _psnr(clips[0].frames, frames[0]) > 35
    back = D.load_stills(restored / "stills.npz")
    assert len(back) == 3 and list(back.identities) == [stills.identities[i] for i in (0, 2, 4)]
    np.testing.assert_array_equal(back.landmarks, stills.landmarks[[0, 2, 4]])
