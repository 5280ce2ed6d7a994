"""``deidvid verify``'s tables for people (rich): a summary, rPPG-Toolbox's HRs, then per face
track pulse, identity, and expression / temporal consistency."""

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
    head.add_row("identity match rate at FAR 1e-3 (max)", fmt(summary.get("match_rate_far1e3"), 3))
    head.add_row("face detected in de-identified", fmt(summary["detection_rate_deidentified"], 3))
    if report.pulse is not None:
        detected = {True: "yes", False: "NO", None: "-"}[summary.get("toolbox_detected")]
        head.add_row("rPPG-Toolbox HR difference (max)", f"{fmt(summary.get('toolbox_hr_diff_bpm'))} bpm")
        head.add_row("Haar face on first de-identified frame", detected)
        head.add_row("Haar face found in de-identified (min)", fmt(summary.get("haar_rate_deidentified"), 3))
    if any(f.get("expression") is not None for f in report.faces):
        head.add_row("expression / pose r (min)", fmt(summary.get("expression_r"), 3))
    if any(f.get("temporal") is not None for f in report.faces):
        head.add_row("flicker ratio (max)", fmt(summary.get("flicker_ratio"), 3))
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
    columns = ("recogniser", "threshold", "match rate", "threshold FAR 1e-3", "match rate FAR 1e-3", "mean distance", "frames")
    for column in columns:
        table.add_column(column)
    for name, r in face["identity"].items():
        table.add_row(
            name, fmt(r["threshold"], 3), fmt(r["match_rate"], 3), fmt(r.get("threshold_far1e3"), 3),
            fmt(r.get("match_rate_far1e3"), 3), fmt(r["mean_distance"], 3), str(r["frames"]),
        )
    detection = face["detection"]
    caption = (
        f"face detected in {fmt(detection['rate_deidentified'], 3)} of sampled de-identified "
        f"frames ({fmt(detection['rate_original'], 3)} in the original)"
    )
    haar = detection.get("haar_rate")
    if haar is not None:
        caption += f"; Haar cascade: {fmt(haar['deidentified'], 3)} ({fmt(haar['original'], 3)} in the original)"
    table.caption = caption
    return table


def toolbox_table(report: VerifyReport) -> Table | None:
    """rPPG-Toolbox's default path on both videos, one row per method (None when skipped)."""
    from rich.table import Table

    toolbox = (report.pulse or {}).get("toolbox")
    if not toolbox:
        return None
    table = Table(title="rPPG-Toolbox default path (Haar on frame 1, box x1.5, 72x72)")
    for column in ("method", "HR orig", "HR deid", "|difference|"):
        table.add_column(column)
    for method in ("pos", "chrom"):
        if method in toolbox:
            entry = toolbox[method]
            table.add_row(method.upper(), fmt(entry["hr_orig"], 1), fmt(entry["hr_deid"], 1), fmt(entry["abs_diff"], 1))
    yes_no = {True: "yes", False: "no (whole frame)"}
    table.caption = (
        f"Haar face on the first frame: original {yes_no[toolbox['detected_orig']]}, "
        f"de-identified {yes_no[toolbox['detected_deid']]}"
    )
    return table


def expression_table(face: FaceSection) -> Table | None:
    """One row per expression / pose signal of a face track, flicker as the caption (None when skipped)."""
    from rich.table import Table

    expression, temporal = face.get("expression"), face.get("temporal")
    if expression is None and temporal is None:
        return None
    table = Table(title=f"face track {face['track_id']}: expression and pose")
    for column in ("signal", "r", "mean |difference|", "frames"):
        table.add_column(column)
    for name, s in (expression or {}).items():
        digits = 2 if name in ("yaw", "pitch", "roll") else 4
        table.add_row(name, fmt(s["r"], 3), fmt(s["mad"], digits), str(s["frames"]))
    if temporal is not None:
        table.caption = (
            f"frame-to-frame change in the face box: {fmt(temporal['change_deid'])} vs {fmt(temporal['change_orig'])} "
            f"levels (flicker ratio {fmt(temporal['flicker_ratio'], 3)}); added {temporal['band_hz'][0]:g}-"
            f"{temporal['band_hz'][1]:g} Hz skin RMS {fmt(temporal['added_band_rms'], 3)} levels "
            f"({fmt(temporal['added_band_power_ratio'], 3)} of the original's power)"
        )
    return table


def report_tables(report: VerifyReport) -> list[Any]:
    """Rich tables for people: summary, the toolbox's HRs, then per face track its pulse,
    identity and expression tables (those of skipped measurements left out)."""
    tables: list[Any] = [summary_table(report)]
    toolbox = toolbox_table(report)
    if toolbox is not None:
        tables.append(toolbox)
    for face in report.faces:
        tables += [pulse_table(face), identity_table(face)]
        expression = expression_table(face)
        if expression is not None:
            tables.append(expression)
    return tables
