"""Settings and gates of one ``deidvid verify`` run (every setting is recorded in the report)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deidvid.faces.find import FaceFinding
from deidvid.measure.pulse import DEEP_METHODS
from deidvid.recognise import ALL_RECOGNISERS
from deidvid.rppg.compare import PulseSettings
from deidvid.rppg.hr import DEFAULT_BAND_HZ
from deidvid.rppg.methods import RPPG_METHODS

if TYPE_CHECKING:
    from deidvid.verify.report import GateCheck, VerifyReport


@dataclass(frozen=True)
class VerifyOptions:
    """Settings of one verification (all of them are recorded in the report).

    Attributes:
        methods: rPPG methods; the first is the primary one (summary, HR gate). Skin-mean
            methods (``RPPG_METHODS``) and face-crop networks (``DEEP_METHODS``: PhysNet,
            skipped with a warning when the ``open-rppg`` wheel is not installed).
        windows_s: HR window lengths (s); the first is primary (none: whole track).
        band_hz: pulse band (Hz).
        recognisers: recogniser names (or aliases) for the identity scores.
        identity_stride: embed every n-th frame of each face track.
        ssim_stride: SSIM on every n-th frame (PSNR on all).
        detect_stride: run the face detector on every n-th frame.
        ppg: contact PPG file (UBFC ``ground_truth.txt`` or CSV), compared with the longest track.
        gallery: folder ``DIR/<identity>/*.jpg`` for closed-set identification.
        finding: how faces are found in the original (as ``deidvid anonymise``).
        macc_max_lag_s: largest lag (s) of the maximum-amplitude cross-correlation.
        batch_size: face pairs per recogniser forward pass.
        toolbox: run rPPG-Toolbox's default unsupervised path on both videos
            (:mod:`deidvid.measure.toolbox`) and the Haar detection rate (every
            ``detect_stride``-th frame).
        expression: expression and head-pose signals from landmarks of both videos
            (:mod:`deidvid.measure.expression`), every ``expression_stride``-th frame of each track.
        temporal: frame-to-frame change in the face box and added pulse-band power
            (:mod:`deidvid.measure.temporal`).
        expression_stride: fit landmarks to every n-th frame of each face track.
    """

    methods: tuple[str, ...] = ("pos", "chrom", "green", "physnet")
    windows_s: tuple[float, ...] = (10.0, 30.0)
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ
    recognisers: tuple[str, ...] = ALL_RECOGNISERS
    identity_stride: int = 5
    ssim_stride: int = 5
    detect_stride: int = 10
    device: str = "cpu"
    ppg: Path | None = None
    gallery: Path | None = None
    # Face finding in the original (as ``deidvid anonymise``).
    finding: FaceFinding = field(default_factory=FaceFinding)
    macc_max_lag_s: float = 0.25
    batch_size: int = 8
    toolbox: bool = True
    expression: bool = True
    temporal: bool = True
    expression_stride: int = 2

    @property
    def primary_method(self) -> str:
        """The method the summary and the HR gate use (the first one)."""
        return self.methods[0]

    @property
    def primary_window(self) -> float | None:
        """The window the summary and the HR gate use (the first; None = whole track)."""
        return self.windows_s[0] if self.windows_s else None

    @property
    def pulse_settings(self) -> PulseSettings:
        """The comparison settings of :func:`deidvid.measure.pulse.compare_track_pulse`."""
        return PulseSettings(band_hz=tuple(self.band_hz), macc_max_lag_s=self.macc_max_lag_s)  # type: ignore[arg-type]

    def check(self) -> None:
        """Raise ValueError for an unknown rPPG method or a stride / batch size below 1."""
        known = (*RPPG_METHODS, *DEEP_METHODS)
        unknown = [m for m in self.methods if m not in known]
        if unknown or not self.methods:
            raise ValueError(f"rPPG methods must be among {sorted(known)}, got {unknown}")
        if self.methods[0] in DEEP_METHODS:
            raise ValueError("the primary (first) rPPG method must be a skin-mean method, e.g. pos")
        for name in ("identity_stride", "ssim_stride", "detect_stride", "expression_stride", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass(frozen=True)
class GateLimits:
    """The gates of one ``deidvid verify`` run (None: not requested); see
    :func:`deidvid.verify.report.gate_failures` for what each one gates.

    A batch applies the same limits to every pair, so they travel with each job.
    """

    max_match_rate: float | None = None
    max_hr_mae: float | None = None
    min_pearson: float | None = None
    min_psnr: float | None = None
    max_hr_diff_toolbox: float | None = None
    min_haar_rate: float | None = None
    min_expression_r: float | None = None

    def requested(self) -> dict[str, float]:
        """The requested gates by option name (``max_match_rate`` ...), in the order above."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    def checks(self, report: VerifyReport) -> list[GateCheck]:
        """The requested gates applied to ``report``, passed or not."""
        from deidvid.verify.report import gate_checks

        return gate_checks(report, **asdict(self))


def gate_messages(checks: list[GateCheck]) -> list[str]:
    """One message per failed gate (empty: every requested gate passed)."""
    return [f for f in (check.failure() for check in checks) if f is not None]
