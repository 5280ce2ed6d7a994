"""``deidvid verify``'s tables for people (rich): a summary, then per face track pulse and identity."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.table import Table

    from deidvid.verify.report import FaceSection, VerifyReport


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: ``-`` for None, ``inf``, floats to ``digits`` decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}"
    return str(value)


def summary_table(report: VerifyReport) -> Table:
    """The gated numbers and the image quality, one row each."""
    from rich.table import Table

    summary = report.summary
    head = Table(title=f"{report.original} vs {report.deidentified}", show_header=False)
    head.add_row("frames", f"{report.video['frames']} at {report.video['fps']:.3f} fps")
    head.add_row("face tracks", str(report.video["face_tracks"]))
    window = "whole track" if summary["window_s"] is None else f"{summary['window_s']:g} s windows"
    method = summary["method"].upper()
    head.add_row(f"HR MAE ({method}, {window})", f"{fmt(summary['hr_mae_bpm'])} bpm")
    head.add_row("pulse Pearson r", fmt(summary["pearson"], 3))
    head.add_row("identity match rate (max)", fmt(summary["match_rate"], 3))
    head.add_row("face detected in de-identified", fmt(summary["detection_rate_deidentified"], 3))
    quality_rows = (("frames", "psnr_db", "ssim"), ("faces", "face_psnr_db", "face_ssim"))
    for label, psnr_key, ssim_key in quality_rows:
        head.add_row(f"PSNR / SSIM ({label})", f"{fmt(summary[psnr_key])} dB / {fmt(summary[ssim_key], 4)}")  # type: ignore[literal-required]
    return head


def pulse_table(face: FaceSection) -> Table:
    """One row per rPPG method and window of a face track (empty when it had no pulse analysis)."""
    from rich.table import Table

    table = Table(title=f"face track {face['track_id']} ({face['frames']} frames)")
    for column in ("method", "window", "HR orig", "HR deid", "HR MAE", "r", "MACC", "SNR deid", "SS"):
        table.add_column(column)
    if not face["pulse"]:
        return table
    for method, entry in face["pulse"]["methods"].items():
        for key, comparison in entry["windows"].items():
            s = comparison["summary"]
            ref = np.mean([w["hr_reference_bpm"] for w in comparison["windows"]])
            test = np.mean([w["hr_test_bpm"] for w in comparison["windows"]])
            table.add_row(
                method.upper(),
                key if key == "whole" else f"{key} s",
                fmt(float(ref), 1),
                fmt(float(test), 1),
                fmt(s["hr_mae"]),
                fmt(s["pearson"], 3),
                fmt(s["macc"], 3),
                fmt(s["snr_test_db"], 1),
                fmt(s["spectral_similarity"], 3),
            )
    return table


def identity_table(face: FaceSection) -> Table:
    """One row per recogniser of a face track; the detection rates as its caption."""
    from rich.table import Table

    table = Table(title=f"face track {face['track_id']}: identity")
    for column in ("recogniser", "threshold", "match rate", "mean distance", "frames"):
        table.add_column(column)
    for name, r in face["identity"].items():
        table.add_row(
            name, fmt(r["threshold"], 3), fmt(r["match_rate"], 3), fmt(r["mean_distance"], 3), str(r["frames"])
        )
    detection = face["detection"]
    table.caption = (
        f"face detected in {fmt(detection['rate_deidentified'], 3)} of sampled de-identified "
        f"frames ({fmt(detection['rate_original'], 3)} in the original)"
    )
    return table


def report_tables(report: VerifyReport) -> list[Any]:
    """Rich tables for people: summary, then per face track its pulse and identity tables."""
    tables: list[Any] = [summary_table(report)]
    for face in report.faces:
        tables += [pulse_table(face), identity_table(face)]
    return tables
