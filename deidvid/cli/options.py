"""Every option check of ``anonymise`` and ``verify`` in one place.

Each check raises :class:`UsageError` (exit 2, one line: ``deidvid: error: ...``) before
anything is read or loaded. Typer only converts types; ranges live here, so every message
has the same form and no range is forgotten in one command but not the other. Ranges that
would make the tool fail open (leave a face untouched while reporting success) are refused,
not clamped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deidvid.errors import UsageError

CRF_RANGE = (0, 51)  # x264's constant rate factor
# Detector score threshold. RetinaFace scores clear faces 0.999 (the synthetic face and
# skimage's astronaut); background clutter scores up to 0.19 (skimage's cat, coffee: 0.05-0.09).
# Above 0.95 real faces that score lower (turned, small, dark, blurred) start to be missed,
# and at 1.0 a softmax never passes: no face is found and the video is written untouched
# with exit 0, even with --strict. Below 0.05 clutter becomes "faces", and at 0 every one of
# the 5000 pre-NMS anchors does, each landmarked and tracked: the run never ends.
THRESHOLD_RANGE = (0.05, 0.95)
FALLBACKS = ("blur", "none")
DEVICES = ("auto", "cpu", "cuda")


def check_finite(value: float | None, option: str) -> None:
    """nan and inf pass Click's float parsing but no range check means anything for them."""
    if value is not None and not math.isfinite(value):
        raise UsageError(f"{option} must be a finite number, not {value}")


def check_range(value: float | None, option: str, low: float | None = None, high: float | None = None) -> None:
    """``low <= value <= high`` (either bound optional), finite."""
    if value is None:
        return
    check_finite(value, option)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if low is not None and high is not None else (
            f"at least {low:g}" if low is not None else f"at most {high:g}"
        )
        raise UsageError(f"{option} must be {bounds}, not {value:g}")


def check_positive(value: float | None, option: str) -> None:
    if value is None:
        return
    check_finite(value, option)
    if value <= 0:
        raise UsageError(f"{option} must be greater than 0, not {value:g}")


def check_choice(value: str, option: str, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, not '{value}'")


@dataclass(frozen=True)
class AnonymiseArgs:
    """The raw values of ``deidvid anonymise``'s options (as Typer parsed them)."""

    method: str
    device: str
    strength: float | None
    fallback: str
    fallback_seconds: float
    detect_every: int
    detector_max_side: int
    threshold: float
    clip_len: int
    overlap: int
    crf: int
    identity_check: bool
    max_match_rate: float | None
    face_qp_offset: int | None = None
    surrogate_look: str = "any"


def check_anonymise(
    args: AnonymiseArgs,
    methods: tuple[str, ...] | list[str],
    max_strength: float | None = None,
    strength_methods: tuple[str, ...] = ("ae",),
    surrogate_looks: tuple[str, ...] = ("any", "same"),
) -> None:
    """Raise UsageError for the first option that is out of range.

    ``methods``: the registry's names; ``max_strength``: the autoencoder's largest strength
    in [0, 1] units, needed only with ``--strength`` (passed in: this module imports nothing
    heavy); ``strength_methods``: the methods ``--strength`` applies to; ``surrogate_looks``:
    the values of ``--surrogate-look``.
    """
    check_choice(args.method, "--method", list(methods))
    check_choice(args.surrogate_look, "--surrogate-look", surrogate_looks)
    check_choice(args.device, "--device", DEVICES)
    check_choice(args.fallback, "--fallback", FALLBACKS)
    # 0 or less turned the lost-face count off, so --strict passed videos with lost faces:
    # the cover is switched off with --fallback none, which still counts them.
    check_positive(args.fallback_seconds, "--fallback-seconds")
    check_range(args.threshold, "--threshold", *THRESHOLD_RANGE)
    check_range(args.detect_every, "--detect-every", 1)
    check_range(args.detector_max_side, "--detector-max-side", 64)
    check_range(args.clip_len, "--clip-len", 1)
    check_range(args.overlap, "--overlap", 0)
    if args.overlap >= args.clip_len:
        raise UsageError("--overlap must be smaller than --clip-len")
    check_range(args.crf, "--crf", *CRF_RANGE)
    if args.face_qp_offset is not None:
        check_range(args.face_qp_offset, "--face-qp-offset", *CRF_RANGE)
    check_range(args.max_match_rate, "--max-match-rate", 0.0, 1.0)
    if args.max_match_rate is not None and not args.identity_check:
        raise UsageError("--max-match-rate needs the identity check (drop --no-identity-check)")
    _check_strength(args, max_strength, strength_methods)


def _check_strength(args: AnonymiseArgs, max_strength: float | None, strength_methods: tuple[str, ...]) -> None:
    if args.strength is None:
        return
    if max_strength is None:
        raise ValueError("--strength needs the autoencoder's max_strength to be checked")
    check_finite(args.strength, "--strength")
    if args.method not in strength_methods or not 0 < args.strength / 255.0 <= max_strength:
        methods = " or ".join(f"--method {m}" for m in strength_methods)
        raise UsageError(f"--strength needs {methods} and a value in (0, {max_strength * 255:g}] grey levels")


def parse_floats(text: str, option: str, count: int | None = None) -> tuple[float, ...]:
    """Comma-separated finite numbers (``count`` of them when given)."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, not '{text}'") from None
    if count is not None and len(values) != count:
        raise UsageError(f"{option} takes {count} comma-separated numbers, not '{text}'")
    for value in values:
        check_finite(value, option)
    return values


def parse_band(text: str) -> tuple[float, float]:
    """``--band LOW,HIGH`` in Hz: 0 < LOW < HIGH (the upper limit, Nyquist, needs the video's fps)."""
    low, high = parse_floats(text, "--band", 2)
    if not 0 < low < high:
        raise UsageError(f"--band must be LOW,HIGH with 0 < LOW < HIGH (Hz), not '{text}'")
    return low, high


def check_band_fits(band_hz: tuple[float, float], fps: float) -> None:
    """The band must end below the video's Nyquist frequency (half its frame rate)."""
    nyquist = fps / 2.0
    if band_hz[1] >= nyquist:
        raise UsageError(
            f"--band {band_hz[0]:g},{band_hz[1]:g} Hz must end below half the frame rate ({nyquist:g} Hz at {fps:g} fps)"
        )


def parse_windows(text: str) -> tuple[float, ...]:
    """``--windows`` in seconds: each > 0."""
    windows = parse_floats(text, "--windows")
    for window in windows:
        check_positive(window, "--windows")
    return windows


def parse_methods(text: str) -> tuple[str, ...]:
    return tuple(m.strip().lower() for m in text.split(",") if m.strip())


def check_gates(
    max_match_rate: float | None, max_hr_mae: float | None, min_pearson: float | None, min_psnr: float | None
) -> None:
    """verify's gates: a nan gate would never fail (every comparison with nan is false)."""
    check_range(max_match_rate, "--max-match-rate", 0.0, 1.0)
    check_range(max_hr_mae, "--max-hr-mae", 0.0)
    check_range(min_pearson, "--min-pearson", -1.0, 1.0)
    check_finite(min_psnr, "--min-psnr")
