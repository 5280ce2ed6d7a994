"""What ``deidvid verify`` reports: the report's shape, its JSON, its summary and gates.

The JSON (:meth:`VerifyReport.to_dict`) carries ``schema_version``
(:data:`SCHEMA_VERSION`; raised when a key is renamed or its meaning changes), then
``original``, ``deidentified``, ``video``, ``settings``, ``quality``, ``faces`` (one
entry per face track), ``pulse`` (whole-video pulse measures: ``pulse.toolbox``, rPPG-Toolbox's
default path; null when skipped), ``gallery``, ``summary``, ``warnings`` and ``timings_s``.

Per face track (``faces[i]``): ``pulse``, ``identity.<recogniser>`` (``match_rate`` at the
accuracy threshold, ``match_rate_far1e3`` at the FAR 1e-3 one), ``detection``
(``rate_*`` of deidvid's detector, ``haar_rate.{original,deidentified}`` of the Haar
cascade), ``expression.<signal>.{r,mad,frames}`` and ``temporal`` (``flicker_ratio``,
``added_band_rms``, ...); the last two null when skipped.
PSNR of identical frames is infinite; JSON has no infinity, so it and any other
undefined number are written ``null``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from deidvid.measure.detection import (
    DetectionScores,  # a base class below: needed at run time
)

if TYPE_CHECKING:
    from deidvid.measure.expression import SignalComparison
    from deidvid.measure.identity import IdentityScores
    from deidvid.measure.temporal import TemporalScores
    from deidvid.measure.toolbox import HaarScores
    from deidvid.verify.options import VerifyOptions

SCHEMA_VERSION = 1


class VideoSection(TypedDict):
    width: int
    height: int
    fps: float
    frames: int
    variable_frame_rate: bool
    face_tracks: int


class FaceDetection(DetectionScores, total=False):
    """A track's detection rates: deidvid's detector, and the Haar cascade's (when the toolbox ran)."""

    haar_rate: HaarScores


class FaceSection(TypedDict):
    """One face track: where it is, its pulse comparison (None: too short), identity, detection,
    expression and temporal consistency (None: skipped)."""

    track_id: int
    start_frame: int
    frames: int
    interpolated_frames: int
    pulse: dict[str, Any] | None  # deidvid.measure.pulse.compare_track_pulse
    identity: dict[str, IdentityScores]  # by recogniser
    detection: FaceDetection
    expression: dict[str, SignalComparison] | None  # by signal, deidvid.measure.expression.SIGNALS
    temporal: TemporalScores | None


class Summary(TypedDict):
    """Worst case over face tracks of the gated numbers (see :func:`summarise`)."""

    method: str
    window_s: float | None
    hr_mae_bpm: float | None
    pearson: float | None
    match_rate: float | None
    detection_rate_deidentified: float | None
    psnr_db: float
    ssim: float
    face_psnr_db: float
    face_ssim: float
    match_rate_far1e3: float | None
    toolbox_hr_diff_bpm: float | None
    toolbox_detected: bool | None
    haar_rate_deidentified: float | None
    expression_r: float | None
    flicker_ratio: float | None


@dataclass
class VerifyReport:
    """Everything ``verify`` measured. :meth:`to_dict` is the JSON report.

    Attributes:
        quality: ``{"frame" | "face": QualityAccumulator.summary()}``.
        pulse: ``{"toolbox": deidvid.measure.toolbox.toolbox_scores}`` (None: skipped).
        gallery: ``deidvid.measure.gallery.gallery_scores`` (None without a gallery).
        timings_s: wall time per stage and ``total`` (s).
    """

    original: str
    deidentified: str
    video: VideoSection
    settings: dict[str, Any]
    quality: dict[str, dict[str, float | int]]
    faces: list[FaceSection]
    pulse: dict[str, Any] | None
    gallery: dict[str, Any] | None
    summary: Summary
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``schema_version`` first; NaN/inf become None, numpy scalars Python numbers."""
        return {"schema_version": SCHEMA_VERSION, **json_safe(asdict(self))}


def json_safe(value: Any) -> Any:
    """Recursively make ``value`` JSON-serialisable (non-finite floats -> None)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def report_settings(
    options: VerifyOptions,
    thresholds: dict[str, float | None],
    detection_min_iou: float,
    thresholds_far1e3: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """Every option, the primary method/window, the fixed constants and package versions."""
    import importlib.metadata

    from deidvid import __version__
    from deidvid.measure.temporal import FLICKER_BAND_HZ
    from deidvid.measure.toolbox import (
        TOOLBOX_BAND_HZ,
        TOOLBOX_LARGER_BOX_COEF,
        TOOLBOX_SIZE,
    )
    from deidvid.rppg.hr import DEFAULT_DETREND_LAMBDA
    from deidvid.rppg.metrics import SNR_HALF_WIDTH_HZ, SPECTRAL_BAND_HZ

    versions: dict[str, str | None] = {"deidvid": __version__}
    for package in ("numpy", "scipy", "torch", "av", "opencv-python-headless", "dlib-bin"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    settings.update(
        primary_method=options.primary_method,
        primary_window_s=options.primary_window,
        detrend_lambda=DEFAULT_DETREND_LAMBDA,
        butterworth_order=1,
        hr="periodogram peak in band, nfft = next power of 2 (rPPG-Toolbox)",
        snr_half_width_hz=SNR_HALF_WIDTH_HZ,
        spectral_similarity_band_hz=SPECTRAL_BAND_HZ,
        recogniser_thresholds=thresholds,
        recogniser_thresholds_far1e3=thresholds_far1e3 or {},
        detection_min_iou=detection_min_iou,
        toolbox_preprocessing={
            "detector": "OpenCV Haar haarcascade_frontalface_default.xml, first frame",
            "larger_box_coef": TOOLBOX_LARGER_BOX_COEF,
            "size": TOOLBOX_SIZE,
            "band_hz": list(TOOLBOX_BAND_HZ),
        },
        flicker_band_hz=list(FLICKER_BAND_HZ),
        versions=versions,
    )
    return settings


def primary_pulse_summary(face: FaceSection, method: str, window: float | None) -> dict[str, Any] | None:
    """The comparison summary of ``method`` at ``window`` (s; None = whole track) of one face
    track, the whole track's when the window does not fit; None without a pulse section."""
    pulse = face.get("pulse")
    if not pulse:
        return None
    windows = pulse["methods"][method]["windows"]
    key = "whole" if window is None else f"{window:g}"
    chosen = windows.get(key) or windows.get("whole")
    return chosen["summary"] if chosen else None


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def summarise(
    faces: list[FaceSection], quality: dict[str, dict[str, Any]], options: VerifyOptions, pulse: dict[str, Any] | None = None
) -> Summary:
    """Worst case over face tracks of the gated numbers.

    ``hr_mae_bpm`` / ``pearson``: primary method and window (whole track if shorter),
    worst track. ``match_rate`` / ``match_rate_far1e3``: highest over tracks and calibrated
    recognisers. ``detection_rate_deidentified``: highest over tracks. PSNR / SSIM:
    ``quality``'s frame and face means. ``toolbox_hr_diff_bpm``: the largest toolbox HR
    difference over its methods (None when one could not be measured);
    ``toolbox_detected``: Haar found a face on the de-identified video's first frame.
    ``haar_rate_deidentified``: lowest over tracks. ``expression_r``: lowest defined r over
    tracks and signals. ``flicker_ratio``: highest over tracks.
    """
    from deidvid.measure.expression import min_defined_r

    primary = [primary_pulse_summary(f, options.primary_method, options.primary_window) for f in faces]
    pulses = [s for s in primary if s]
    identities = [r for f in faces for r in f["identity"].values()]
    match_rates = _finite([r["match_rate"] for r in identities])
    strict_rates = _finite([r.get("match_rate_far1e3") for r in identities])
    detection = [
        f["detection"]["rate_deidentified"] for f in faces if f["detection"]["rate_deidentified"] is not None
    ]
    haar = _finite([(f["detection"].get("haar_rate") or {}).get("deidentified") for f in faces])
    expression = _finite([min_defined_r(f.get("expression")) for f in faces])
    flicker = _finite([(f.get("temporal") or {}).get("flicker_ratio") for f in faces])
    maes = _finite([p["hr_mae"] for p in pulses])
    pearsons = _finite([p["pearson"] for p in pulses])
    toolbox_diff, toolbox_detected = None, None
    toolbox = (pulse or {}).get("toolbox")
    if toolbox:
        from deidvid.measure.toolbox import TOOLBOX_METHODS

        diffs = [toolbox[m]["abs_diff"] for m in TOOLBOX_METHODS if m in toolbox]
        toolbox_diff = max(diffs) if diffs and all(d is not None for d in diffs) else None
        toolbox_detected = bool(toolbox["detected_deid"])
    # Tracks shorter than the window were compared whole: say so when that is all of them.
    used = {p["window_s"] for p in pulses}
    return {
        "method": options.primary_method,
        "window_s": used.pop() if len(used) == 1 else options.primary_window,
        "hr_mae_bpm": max(maes) if maes else None,
        "pearson": min(pearsons) if pearsons else None,
        "match_rate": max(match_rates) if match_rates else None,
        "detection_rate_deidentified": max(detection) if detection else None,
        "psnr_db": quality["frame"]["psnr_mean"],
        "ssim": quality["frame"]["ssim_mean"],
        "face_psnr_db": quality["face"]["psnr_mean"],
        "face_ssim": quality["face"]["ssim_mean"],
        "match_rate_far1e3": max(strict_rates) if strict_rates else None,
        "toolbox_hr_diff_bpm": toolbox_diff,
        "toolbox_detected": toolbox_detected,
        "haar_rate_deidentified": min(haar) if haar else None,
        "expression_r": min(expression) if expression else None,
        "flicker_ratio": max(flicker) if flicker else None,
    }


@dataclass(frozen=True)
class GateCheck:
    """One requested gate: the gated number, its limit and whether it passed.

    Attributes:
        label: what is gated, e.g. ``"match rate"``.
        value: the summary's number (None or NaN: could not be measured).
        limit: the gate's limit.
        kind: ``"max"`` (the value must not exceed the limit) or ``"min"`` (not fall below).
    """

    label: str
    value: float | None
    limit: float
    kind: str

    @property
    def measured(self) -> bool:
        """Whether the gated number could be measured (not None, not NaN)."""
        return self.value is not None and not math.isnan(self.value)

    @property
    def passed(self) -> bool:
        """Within the limit; a number that could not be measured fails."""
        value = self.value
        if value is None or math.isnan(value):
            return False
        return value <= self.limit if self.kind == "max" else value >= self.limit

    def failure(self) -> str | None:
        """The gate failure's message (None when it passed)."""
        if self.passed:
            return None
        if not self.measured:
            return f"{self.label} could not be measured (gate {self.kind} {self.limit:g})"
        sign = ">" if self.kind == "max" else "<"
        return f"{self.label} {self.value:.4g} {sign} {self.limit:g}"


def gate_checks(
    report: VerifyReport,
    max_match_rate: float | None = None,
    max_hr_mae: float | None = None,
    min_pearson: float | None = None,
    min_psnr: float | None = None,
    max_hr_diff_toolbox: float | None = None,
    min_haar_rate: float | None = None,
    min_expression_r: float | None = None,
) -> list[GateCheck]:
    """The requested gates (a limit that is None is not requested), passed or not; see
    :func:`gate_failures`."""
    summary = report.summary
    checks = [
        ("match rate", summary["match_rate"], max_match_rate, "max"),
        ("HR MAE (bpm)", summary["hr_mae_bpm"], max_hr_mae, "max"),
        ("pulse Pearson r", summary["pearson"], min_pearson, "min"),
        ("face-crop PSNR (dB)", summary["face_psnr_db"], min_psnr, "min"),
        ("rPPG-Toolbox HR difference (bpm)", summary["toolbox_hr_diff_bpm"], max_hr_diff_toolbox, "max"),
        ("Haar detection rate", summary["haar_rate_deidentified"], min_haar_rate, "min"),
        ("expression r", summary["expression_r"], min_expression_r, "min"),
    ]
    return [GateCheck(label, value, limit, kind) for label, value, limit, kind in checks if limit is not None]


def gate_failures(report: VerifyReport, **limits: float | None) -> list[str]:
    """One message per violated gate (empty list: every gate passed); ``limits`` are
    :func:`gate_checks`' keywords.

    ``min_psnr`` applies to the face crops (the paper's PSNR is on 128x128 face
    clips; the background is untouched by design). ``max_hr_diff_toolbox``: the largest
    |HR deid - HR orig| of rPPG-Toolbox's default path (POS, CHROM); ``min_haar_rate``: the
    lowest Haar detection rate of a track in the de-identified video; ``min_expression_r``:
    the lowest defined expression / pose correlation. A gated number that could not be
    measured (no pulse, no calibrated recogniser, a skipped measurement, only constant
    expression signals) counts as a violation: a pipeline gate must not pass silently.
    """
    return [f for f in (check.failure() for check in gate_checks(report, **limits)) if f is not None]
