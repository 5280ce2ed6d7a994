"""Differentiable POS / CHROM agree with the numpy (rPPG-Toolbox) versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from deidvid.rppg import hr, methods, signals
from deidvid.rppg import torch_methods as tm
from deidvid.testing.synthetic_pulse import synthetic_rgb_trace


def _batch(num_frames, fs, seeds=(0, 1, 2)):
    traces = [
        synthetic_rgb_trace(70 + 15 * s, num_frames / fs, fs, noise=0.5, seed=s) for s in seeds
    ]
    return np.stack(traces)  # [B, T, 3]


@pytest.mark.parametrize("num_frames,fs", [(64, 30.0), (160, 30.0), (300, 29.55), (250, 25.0)])
def test_pos_torch_matches_numpy(num_frames, fs):
    rgb = _batch(num_frames, fs)
    got = tm.pos_torch(torch.tensor(rgb, dtype=torch.float64), fs).numpy()
    assert got.shape == (3, num_frames)
    for index in range(3):
        expected = methods.pos(rgb[index], fs)
        np.testing.assert_allclose(got[index], expected, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("num_frames,fs", [(64, 30.0), (160, 30.0), (300, 29.55), (250, 25.0)])
@pytest.mark.parametrize("window_s", [methods.CHROM_WINDOW_S, None])
def test_chrom_torch_matches_numpy(num_frames, fs, window_s):
    rgb = _batch(num_frames, fs)
    got = tm.chrom_torch(torch.tensor(rgb, dtype=torch.float64), fs, window_s=window_s).numpy()
    assert got.shape == (3, methods.chrom_length(num_frames, fs, window_s))
    for index in range(3):
        expected = methods.chrom(rgb[index], fs, window_s=window_s)
        np.testing.assert_allclose(got[index], expected, atol=1e-9 * np.abs(expected).max())


def test_float32_close_to_float64():
    rgb = torch.tensor(_batch(128, 30.0))
    for method in (tm.pos_torch, tm.chrom_torch):
        high = method(rgb, 30.0)
        low = method(rgb.float(), 30.0)
        assert torch.corrcoef(torch.stack([high[0], low[0].double()]))[0, 1] > 0.9999


def test_filter_and_detrend_matrices_reproduce_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=150)
    b, a = signal.butter(1, [0.75 / 15, 2.5 / 15], btype="bandpass")
    matrix = tm.filtfilt_matrix(150, 30.0, (0.75, 2.5), 1, dtype=torch.float64).numpy()
    np.testing.assert_allclose(matrix @ x, signal.filtfilt(b, a, x), atol=1e-12)
    detrend = tm.detrend_matrix(150, 100.0, dtype=torch.float64).numpy()
    np.testing.assert_allclose(detrend @ x, hr.detrend(x, 100.0), atol=1e-10)


def test_gradients_flow_and_pearson_loss_works():
    rgb = torch.tensor(_batch(96, 30.0), dtype=torch.float64, requires_grad=True)
    target = tm.pos_torch(rgb.detach(), 30.0)
    for method in (tm.pos_torch, lambda x, fs: tm.chrom_torch(x, fs, window_s=None)):
        loss = (1 - tm.pearson_torch(method(rgb * 1.01 + 0.3, 30.0), target)).mean()
        (grad,) = torch.autograd.grad(loss, rgb)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    same = tm.pearson_torch(target, target)
    torch.testing.assert_close(same, torch.ones(3, dtype=torch.float64))


def test_pos_torch_gradcheck_small():
    rng = np.random.default_rng(0)
    rgb = torch.tensor(100 + rng.normal(size=(1, 24, 3)), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: tm.pos_torch(x, 10.0), (rgb,), eps=1e-6, atol=1e-5)


def test_masked_mean_rgb_torch_matches_numpy():
    rng = np.random.default_rng(0)
    video = rng.uniform(0, 1, size=(2, 3, 5, 16, 20))
    masks = rng.uniform(size=(2, 1, 16, 20)) > 0.6
    got = tm.masked_mean_rgb_torch(torch.tensor(video), torch.tensor(masks)).numpy()
    assert got.shape == (2, 5, 3)
    for b in range(2):
        frames = video[b].transpose(1, 2, 3, 0)  # [T, H, W, 3]
        expected = signals.masked_mean_rgb_series(frames, masks[b, 0])
        np.testing.assert_allclose(got[b], expected, atol=1e-12)
    per_frame = np.broadcast_to(masks[:, :, None], (2, 1, 5, 16, 20))
    again = tm.masked_mean_rgb_torch(torch.tensor(video), torch.tensor(per_frame.copy())).numpy()
    np.testing.assert_allclose(again, got, atol=1e-12)
