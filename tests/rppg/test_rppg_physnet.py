"""PhysNet (deidvid.rppg.physnet): the torch port against a numpy reference and against
open-rppg's own Keras model, HR of a synthetic face video, and graceful unavailability.

Tests marked ``needs_weights`` run only where the open-rppg wheel is installed
(``pip install --no-deps open-rppg==0.1.1``; its weights may not be copied into this
repository) and skip with the install hint otherwise; the others always run.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from deidvid.errors import WeightsError
from deidvid.rppg import physnet as P
from deidvid.rppg.hr import frequency_resolution_bpm

needs_weights = pytest.mark.skipif(
    not P.physnet_available(), reason=f"PhysNet unavailable: {P.physnet_unavailable_reason()}"
)

# ---------------------------------------------------------------- numpy reference
# Written from the Keras layer definitions in open-rppg's rppg/models.py, channels-last
# and with Keras kernel layouts, sharing no code with the torch port.
SPEC = [(3, 16, (1, 5, 5)), (16, 32, (3, 3, 3)), (32, 64, (3, 3, 3))] + [(64, 64, (3, 3, 3))] * 6


def random_keras_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays named and shaped like open-rppg's physnet ``.h5``, random values."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}

    def bn(prefix: str, c: int) -> None:
        arrays.update({
            f"{prefix}/batch_normalization/vars/0": rng.uniform(0.5, 1.5, c),
            f"{prefix}/batch_normalization/vars/1": rng.normal(0, 0.1, c),
            f"{prefix}/batch_normalization/vars/2": rng.normal(0, 0.1, c),
            f"{prefix}/batch_normalization/vars/3": rng.uniform(0.5, 1.5, c),
        })

    for i, (cin, cout, k) in enumerate(SPEC):
        p = f"ConvBlock{i + 1}/layers"
        fan_in = cin * np.prod(k)
        arrays[f"{p}/conv3d/vars/0"] = rng.normal(0, np.sqrt(2 / fan_in), (*k, cin, cout))
        arrays[f"{p}/conv3d/vars/1"] = rng.normal(0, 0.1, cout)
        bn(p, cout)
    for name in ("sequential_9", "sequential_10"):
        p = f"layers/{name}/layers"
        arrays[f"{p}/conv3d_transpose/vars/0"] = rng.normal(0, np.sqrt(1 / 128), (4, 1, 1, 64, 64))
        arrays[f"{p}/conv3d_transpose/vars/1"] = rng.normal(0, 0.1, 64)
        bn(p, 64)
    arrays["convBlock10/vars/0"] = rng.normal(0, 0.2, (1, 1, 1, 64, 1))
    arrays["convBlock10/vars/1"] = rng.normal(0, 0.1, 1)
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def np_conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras Conv3D 'same', stride 1: x (T, H, W, Cin), kernel (kd, kh, kw, Cin, Cout)."""
    kd, kh, kw = kernel.shape[:3]
    xp = np.pad(x, ((kd // 2, kd // 2), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kd, kh, kw), axis=(0, 1, 2))
    return np.einsum("thwcijk,ijkco->thwo", win, kernel, optimize=True) + bias


def np_conv_transpose_t(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras Conv3DTranspose (4,1,1), stride (2,1,1), 'same': T -> 2T, by definition.

    Input frame i feeds output frames 2i + k - 1 (k = 0..3); kernel (4, 1, 1, Cout, Cin).
    """
    out = np.zeros((2 * x.shape[0], *x.shape[1:3], kernel.shape[3])) + bias
    for i in range(x.shape[0]):
        for k in range(4):
            if 0 <= 2 * i + k - 1 < out.shape[0]:
                out[2 * i + k - 1] += x[i] @ kernel[k, 0, 0].T
    return out


def np_pool(x: np.ndarray, t: int, s: int, op) -> np.ndarray:
    T, H, W, C = x.shape
    x = x[: T // t * t, : H // s * s, : W // s * s]  # Keras 'valid' pooling drops the rest
    return op(x.reshape(T // t, t, H // s, s, W // s, s, C), axis=(1, 3, 5))


def np_physnet(x: np.ndarray, a: dict[str, np.ndarray]) -> np.ndarray:
    """Reference forward: x (T, 32, 32, 3) in [0, 1] -> (T,)."""

    def bn(y: np.ndarray, p: str) -> np.ndarray:
        g, b, m, v = (a[f"{p}/batch_normalization/vars/{i}"] for i in range(4))
        return g * (y - m) / np.sqrt(v + 1e-3) + b

    def block(y: np.ndarray, i: int) -> np.ndarray:
        p = f"ConvBlock{i}/layers"
        y = np_conv_same(y, a[f"{p}/conv3d/vars/0"], a[f"{p}/conv3d/vars/1"])
        return np.maximum(bn(y, p), 0)

    def up(y: np.ndarray, name: str) -> np.ndarray:
        p = f"layers/{name}/layers"
        kernel, bias = a[f"{p}/conv3d_transpose/vars/0"], a[f"{p}/conv3d_transpose/vars/1"]
        y = bn(np_conv_transpose_t(y, kernel, bias), p)
        return np.where(y > 0, y, np.expm1(np.minimum(y, 0)))  # ELU

    y = x.astype(np.float64)
    y = (y - y.mean((0, 1, 2))) / (y.std((0, 1, 2)) + 1e-6)
    y = np_pool(block(y, 1), 1, 2, np.max)
    y = np_pool(block(block(y, 2), 3), 2, 2, np.max)
    y = np_pool(block(block(y, 4), 5), 2, 2, np.max)
    y = np_pool(block(block(y, 6), 7), 1, 2, np.max)
    y = up(up(block(block(y, 8), 9), "sequential_9"), "sequential_10")
    y = np_pool(y, 1, 2, np.mean)
    y = (y @ a["convBlock10/vars/0"][0, 0, 0] + a["convBlock10/vars/1"]).reshape(-1)
    y = (y - y.mean()) / y.std()
    return (y - y.mean()) / (y.std() + 1e-6)


def test_port_matches_numpy_reference_on_random_weights() -> None:
    arrays = random_keras_arrays()
    model = P.load_keras_arrays(P.PhysNet(), arrays).eval()
    x = np.random.default_rng(1).random((16, 32, 32, 3), dtype=np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(3, 0, 1, 2)[None])[0].numpy()
    want = np_physnet(x, arrays)
    assert got.shape == (16,)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_load_rejects_wrong_shapes() -> None:
    arrays = random_keras_arrays()
    arrays["ConvBlock2/layers/conv3d/vars/0"] = arrays["ConvBlock2/layers/conv3d/vars/0"][..., :8]
    with pytest.raises(WeightsError, match="ConvBlock2"):
        P.load_keras_arrays(P.PhysNet(), arrays)


def test_read_h5_arrays_reads_float16_as_float32(tmp_path) -> None:
    h5py = pytest.importorskip("h5py", reason="h5py is not installed (extra 'rppg' or 'test')")
    arrays = random_keras_arrays()
    with h5py.File(tmp_path / "w.h5", "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v.astype(np.float16))  # as open-rppg stores them
    read = P.read_h5_arrays(tmp_path / "w.h5")
    assert set(read) == set(arrays)
    assert all(v.dtype == np.float32 for v in read.values())
    key = "convBlock10/vars/0"
    np.testing.assert_array_equal(read[key], arrays[key].astype(np.float16))
    P.load_keras_arrays(P.PhysNet(), read)  # every name the loader needs is there


# ------------------------------------------------------- the real weights (wheel)
def keras_test_clip() -> np.ndarray:
    """Deterministic (128, 32, 32, 3) float32 clip in [0, 1] (1.2 Hz pulse, moving texture)."""
    t = np.arange(128)[:, None, None, None] / 30.0
    yy, xx = np.mgrid[0:32, 0:32][..., None] / 31.0
    base = np.array([0.78, 0.55, 0.45]) - 0.15 * ((xx[None] - 0.5) ** 2 + (yy[None] - 0.5) ** 2)
    pulse = 0.01 * np.sin(2 * np.pi * 1.2 * t) * np.array([0.3, 1.0, 0.5])
    texture = 0.02 * np.sin(7 * xx[None] + 5 * yy[None] + 0.3 * t)
    return np.clip(base + pulse + texture, 0, 1).astype(np.float32)


# open-rppg 0.1.1's own Keras PhysNet (rppg/models.py, keras 3.15.1 + jax 0.10.2 backend),
# physnet.rlap.weights.h5, on keras_test_clip(), rounded to 4 decimals.
KERAS_RLAP_OUTPUT = np.array([
    -0.0841, 0.2845, 0.1420, 0.0419, 0.4193, -0.3219, -0.3326, -0.9328, 0.0830, -0.1693,
    -0.0773, -0.4077, 0.4456, 0.2835, 1.2873, 0.3708, 0.1567, 1.0695, 1.4355, 1.5807,
    1.1092, 0.6080, 0.4771, 0.0900, 0.6229, -0.9751, -1.0060, -1.6839, 0.5295, -1.8115,
    -1.3965, -2.4512, 0.4651, -0.8748, -0.5374, -1.0307, 0.3790, 0.5007, 1.6882,
    -0.4853, 0.0682, -0.0584, 1.3950, 1.3806, 1.0072, 0.3388, 0.9282, 0.3334, 0.8361,
    -0.6846, -1.1010, -1.4798, 0.3880, -1.5911, -1.1045, -2.1242, 0.7040, -1.1719,
    -0.8920, -1.2942, 0.3370, 0.5740, 1.5714, -0.7557, 0.2390, -0.3365, 1.5559, 1.4844,
    0.7746, 0.9798, 1.3789, 0.8277, 0.9399, 0.0271, -0.6712, -1.1824, 0.2273, -1.2680,
    -0.8631, -1.9556, 0.7365, -1.7332, -1.2503, -2.0539, 0.1965, 0.0196, 0.6700,
    -0.6433, 0.2594, -0.3256, 1.3922, 0.9500, 0.7960, 1.4914, 1.3671, 1.2574, 0.8868,
    0.5219, -0.0441, -0.5502, 0.2612, -1.2992, -1.1279, -1.8161, 0.4162, -1.9747,
    -1.2654, -2.4369, 0.4485, -0.5136, 0.4044, -0.6334, 0.4049, 0.4582, 1.8271, 0.5792,
    0.7819, 0.4736, 0.9048, 1.0403, 1.1564, 0.4206, -0.2047, -0.7979, 0.2171, -0.7227,
    -0.3668, 0.1663,
])


@needs_weights
def test_port_matches_open_rppg_keras_output() -> None:
    x = torch.from_numpy(keras_test_clip()).permute(3, 0, 1, 2)[None]
    with torch.no_grad():
        got = P.load_physnet("rlap")(x)[0].numpy()
    np.testing.assert_allclose(got, KERAS_RLAP_OUTPUT, atol=2e-4)


def synthetic_face_video(
    bpm: float, fps: float, seconds: float, size: int = 72, seed: int = 0
) -> np.ndarray:
    """Face-like crops (T, size, size, 3) uint8 RGB: a skin ellipse whose colour follows a
    pulse (1 % in green, less in red and blue), slight frequency wobble, sensor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fps))) / fps
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    face = ((xx / 0.42) ** 2 + (yy / 0.5) ** 2 < 1)[..., None]
    shading = (1 + 0.08 * np.sin(9 * xx + 4 * yy))[..., None]
    image = np.where(face, [200.0, 140.0, 110.0], [60.0, 70.0, 80.0]) * shading
    pulse = np.sin(2 * np.pi * bpm / 60 * t + 0.3 * np.sin(2 * np.pi * 0.1 * t))
    gain = 1 + 0.01 * pulse[:, None, None, None] * np.array([0.35, 1.0, 0.55]) * face[None]
    frames = image[None] * gain + rng.normal(0, 1.0, (len(t), size, size, 3))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


@needs_weights
@pytest.mark.parametrize(("bpm", "fps"), [(60, 30.0), (90, 25.0), (120, 30.0)])
def test_heart_rate_of_synthetic_face_video(bpm: float, fps: float) -> None:
    video = synthetic_face_video(bpm, fps, seconds=20)
    hr = P.physnet_heart_rate(video, fps)
    assert abs(hr - bpm) <= frequency_resolution_bpm(len(video), fps)


@needs_weights
@pytest.mark.parametrize(("seconds", "fps"), [(1.6, 25.0), (5.0, 30.0)])
def test_waveform_has_one_value_per_input_frame(seconds: float, fps: float) -> None:
    # 40 frames at 25 fps: shorter than a clip, padded like open-rppg, resampled to 30
    # fps and back; 150 frames at 30 fps: two overlapping clips, the last one shifted.
    video = synthetic_face_video(72, fps, seconds)
    wave = P.physnet_waveform(video, fps)
    assert wave.shape == (len(video),) and wave.dtype == np.float64 and np.isfinite(wave).all()


# ------------------------------------------------------ always (no weights needed)
def test_preprocess_resizes_and_resamples_to_30_fps() -> None:
    frames = np.repeat(np.arange(50, dtype=np.uint8)[:, None, None, None], 3, axis=-1)
    frames = np.broadcast_to(frames, (50, 40, 48, 3)).copy()  # frame i is all i
    x = P.preprocess_faces(frames, fps=25.0)
    assert x.shape == (59, 32, 32, 3) and x.dtype == np.float32  # 49 / 25 s -> 58 steps at 30 fps
    np.testing.assert_allclose(x[:, 0, 0, 0] * 255, np.arange(59) * 25 / 30, atol=1e-3)
    assert P.preprocess_faces(frames, fps=30.0).shape == (50, 32, 32, 3)


def test_bad_input_is_rejected_before_the_weights_are_needed() -> None:
    with pytest.raises(ValueError, match="uint8"):
        P.physnet_waveform(np.zeros((10, 32, 32, 3), np.float32), 30.0)
    with pytest.raises(ValueError, match="hop"):
        P.physnet_waveform(np.zeros((10, 32, 32, 3), np.uint8), 30.0, hop=0)
    with pytest.raises(ValueError, match="variant"):
        P.physnet_weights_path("ubfc")  # type: ignore[arg-type]


def test_unavailable_when_wheel_missing(monkeypatch) -> None:
    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(P.importlib.metadata, "distribution", missing)
    assert not P.physnet_available()
    reason = P.physnet_unavailable_reason()
    assert reason is not None and "open-rppg" in reason and "--no-deps" in reason
    with pytest.raises(WeightsError, match="not installed"):
        P.physnet_weights_path()


def test_unavailable_when_h5py_missing(monkeypatch) -> None:
    real = P.importlib.util.find_spec

    def find_spec(name: str, *args):
        return None if name == "h5py" else real(name, *args)

    monkeypatch.setattr(P.importlib.util, "find_spec", find_spec)
    assert not P.physnet_available()
    assert "h5py" in P.physnet_unavailable_reason()
