"""Butterworth filters and zero-phase filtering in numpy, for the pulse transplant.

The transplant filters a few dozen short series per clip. ``scipy.signal`` does this in
C, but importing it costs 1.2-1.5 s of CPU in every run that transplants a pulse (a
twentieth of a 10 s 720p run on two cores). These few functions are all the
transplant needs; they follow scipy's definitions and are tested against them
(``butter(..., output="sos")``, ``sosfilt_zi``, ``sosfiltfilt`` with ``padtype="odd"``
or ``None``) to float precision.

A zero-phase filter of a fixed length is a linear map of the series, so
:func:`sosfiltfilt` builds that ``(T, T)`` matrix once per filter and length (clips
are mostly the same length) by running the recursion on the identity, and then
filters every series of every clip by one matrix product.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

FilterKind = Literal["lowpass", "highpass", "bandpass"]


def butter_sos(order: int, cutoff_hz: float | tuple[float, float], kind: FilterKind, fs: float) -> np.ndarray:
    """Digital Butterworth filter as second-order sections ``(S, 6)`` (``b0 b1 b2 1 a1 a2``).

    As ``scipy.signal.butter(order, cutoff_hz, kind, fs=fs, output="sos")``: the analog
    prototype, pre-warped cut-offs, bilinear transform. The sections may be paired
    differently from scipy's; the cascade is the same filter.

    Args:
        order: filter order, even (a band-pass has ``2 x order`` poles).
        cutoff_hz: the cut-off, or ``(low, high)`` for a band-pass, in Hz, below ``fs / 2``.
        kind: ``"lowpass"``, ``"highpass"`` or ``"bandpass"``.
        fs: sampling rate in Hz.
    """
    edges = np.atleast_1d(np.asarray(cutoff_hz, dtype=np.float64))
    if order < 2 or order % 2:
        raise ValueError(f"order must be even and >= 2, got {order}")
    if kind == "bandpass":
        if edges.shape != (2,) or not 0 < edges[0] < edges[1] < fs / 2:
            raise ValueError(f"band-pass edges {cutoff_hz} must satisfy 0 < low < high < fs/2 = {fs / 2}")
    elif kind not in ("lowpass", "highpass"):
        raise ValueError(f"unknown filter kind {kind!r}")
    elif edges.shape != (1,) or not 0 < edges[0] < fs / 2:
        raise ValueError(f"{kind} cut-off {cutoff_hz} must be in (0, fs/2 = {fs / 2})")
    # Analog prototype (scipy's buttap), frequencies pre-warped for the bilinear
    # transform at scipy's internal rate of 2 (cut-offs as fractions of Nyquist).
    prototype = -np.exp(1j * np.pi * np.arange(-order + 1, order, 2) / (2 * order))
    warped = 4.0 * np.tan(np.pi * edges / fs)
    if kind == "lowpass":
        poles, zeros, gain = prototype * warped[0], np.array([]), warped[0] ** order
    elif kind == "highpass":
        poles, zeros = warped[0] / prototype, np.zeros(order)
        gain = float(np.real(1.0 / np.prod(-prototype)))
    else:
        bandwidth, centre = warped[1] - warped[0], np.sqrt(warped[0] * warped[1])
        half = prototype * bandwidth / 2.0
        root = np.sqrt(half**2 - centre**2)
        poles, zeros, gain = np.concatenate([half + root, half - root]), np.zeros(order), bandwidth**order
    # Bilinear transform; zeros at infinity map to z = -1.
    z_poles = (4.0 + poles) / (4.0 - poles)
    z_zeros = np.concatenate([(4.0 + zeros) / (4.0 - zeros), -np.ones(len(poles) - len(zeros))])
    gain = gain * float(np.real(np.prod(4.0 - zeros) / np.prod(4.0 - poles)))
    return _sections(z_zeros.real, z_poles, gain)


def _sections(zeros: np.ndarray, poles: np.ndarray, gain: float) -> np.ndarray:
    """Pair conjugate poles (and real zeros, in twos) into sections; the gain goes into the first."""
    upper = poles[poles.imag > 0]
    if 2 * len(upper) != len(poles):
        raise ValueError("expected complex-conjugate pole pairs only")
    upper = upper[np.argsort(np.abs(upper))]
    zeros = np.sort(zeros)
    # One zero from each end of the sorted list per section: a band-pass section gets
    # z = -1 and z = +1, a low-pass two at -1, a high-pass two at +1.
    pairs = [(zeros[k], zeros[-1 - k]) for k in range(len(zeros) // 2)]
    sos = np.zeros((len(upper), 6))
    for row, (pole, (z1, z2)) in enumerate(zip(upper, pairs)):
        sos[row] = [1.0, -(z1 + z2), z1 * z2, 1.0, -2.0 * pole.real, abs(pole) ** 2]
    sos[0, :3] *= gain
    return sos


def sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """Initial state ``(S, 2)`` for a step response's steady state (``scipy.signal.sosfilt_zi``)."""
    zi = np.empty((sos.shape[0], 2))
    scale = 1.0
    for row, (b0, b1, b2, _, a1, a2) in enumerate(sos):
        # Steady state of the transposed direct form II under a unit input: solve
        # zi = A zi + B with A the companion matrix of [1, a1, a2].
        system = np.array([[1.0 + a1, -1.0], [a2, 1.0]])
        zi[row] = scale * np.linalg.solve(system, [b1 - a1 * b0, b2 - a2 * b0])
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2)
    return zi


def _cascade_response(sos: np.ndarray, impulse: float, state: np.ndarray, length: int) -> np.ndarray:
    """``(length,)`` output of the sections (transposed direct form II) for the input
    ``[impulse, 0, 0, ...]`` from ``state (S, 2)``. Python floats: ~1 ms for 300 samples."""
    signal = [impulse] + [0.0] * (length - 1)
    for (b0, b1, b2, _, a1, a2), (s1, s2) in zip(sos.tolist(), state.tolist()):
        out = []
        for value in signal:
            y = b0 * value + s1
            s1 = b1 * value - a1 * y + s2
            s2 = b2 * value - a2 * y
            out.append(y)
        signal = out
    return np.array(signal)


def causal_matrix(sos: np.ndarray, length: int) -> np.ndarray:
    """``(L, L)`` matrix of ``scipy.signal.sosfilt(sos, x, zi=sosfilt_zi(sos) * x[0])``.

    The filter is linear: its zero-state part is the lower-triangular Toeplitz matrix of
    the impulse response, and starting in the steady state of ``x[0]`` adds ``x[0]``
    times the zero-input response from the state ``sosfilt_zi(sos)`` (first column).
    """
    impulse = _cascade_response(sos, 1.0, np.zeros((sos.shape[0], 2)), length)
    ringing = _cascade_response(sos, 0.0, sosfilt_zi(sos), length)
    lag = np.subtract.outer(np.arange(length), np.arange(length))
    matrix = np.where(lag >= 0, impulse[np.maximum(lag, 0)], 0.0)
    matrix[:, 0] += ringing
    return matrix


def odd_extension(x: np.ndarray, padlen: int) -> np.ndarray:
    """``x (T, ...)`` extended by ``padlen`` samples at each end, point-reflected about its end samples."""
    if padlen == 0:
        return x
    head = 2.0 * x[:1] - x[padlen:0:-1]
    tail = 2.0 * x[-1:] - x[-2 : -padlen - 2 : -1]
    return np.concatenate([head, x, tail])


@lru_cache(maxsize=64)
def _filtfilt_matrix(sos_bytes: bytes, sections: int, length: int, padlen: int) -> np.ndarray:
    """``(T, T)``: odd extension, the causal filter forwards, then backwards (each from the
    steady state of its first sample), and the extension cut off again."""
    sos = np.frombuffer(sos_bytes).reshape(sections, 6)
    extended = odd_extension(np.eye(length), padlen)  # (T + 2 pad, T)
    causal = causal_matrix(sos, extended.shape[0])
    forward = causal @ extended
    backward = (causal @ forward[::-1])[::-1]
    matrix = np.ascontiguousarray(backward[padlen : padlen + length])
    matrix.setflags(write=False)
    return matrix


def sosfiltfilt(sos: np.ndarray, x: np.ndarray, padlen: int = 0) -> np.ndarray:
    """Forward-backward filtering of ``x (T, M)`` along axis 0, as
    ``scipy.signal.sosfiltfilt(sos, x, axis=0, padtype="odd" if padlen else None, padlen=padlen)``.

    Both passes start in the steady state of the first sample (scipy's ``sosfilt_zi``),
    after ``padlen`` odd-reflected samples at each end (``padlen < T``).
    """
    x = np.asarray(x, dtype=np.float64)
    if not 0 <= padlen < x.shape[0]:
        raise ValueError(f"padlen {padlen} must be in [0, {x.shape[0]})")
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    matrix = _filtfilt_matrix(sos.tobytes(), sos.shape[0], x.shape[0], padlen)
    return (matrix @ x.reshape(x.shape[0], -1)).reshape(x.shape)


def all_pole_continue(history: np.ndarray, coefficients: np.ndarray, count: int) -> np.ndarray:
    """Continue each column of ``history (L, M)`` by ``count`` samples of its own recursion.

    ``s[n] = sum_k coefficients[k, m] * s[n - 1 - k]`` with ``coefficients (P, M)``, ``P <= L``
    (an autoregressive prediction with no input: ``scipy.signal.lfilter([1], a, zeros, zi)``
    with ``a = [1, -coefficients]`` and the state from the last ``P`` samples).

    Returns:
        ``(count, M)``.
    """
    order = coefficients.shape[0]
    recent = np.array(history[::-1][:order], dtype=np.float64)  # (P, M), most recent first
    out = np.empty((count, history.shape[1]))
    for n in range(count):
        value = np.einsum("pm,pm->m", coefficients, recent)
        recent = np.concatenate([value[None], recent[:-1]])
        out[n] = value
    return out
