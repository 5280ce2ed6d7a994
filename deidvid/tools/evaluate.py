"""The model card's product-level evaluation: ``anonymise`` + ``verify`` on the validation split.

``python -m deidvid.train evaluate --methods ae blur pixelate --out runs/eval [--strength 4] [--reuse]``

For every video of :data:`deidvid.train.data.VALIDATION_VIDEOS` and every method it runs
the product's own ``anonymise_video`` (defaults: CRF 16, detect every 3rd frame) and
``verify_videos`` (defaults: POS, 10 s windows, identity every 5th frame at the
original's landmarks), keeps each verify report as ``NAME.METHOD.json`` and writes one
row per video and method, plus means over videos, to ``summary.json`` and ``table.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from deidvid.train import data as D
from deidvid.recognise import ALL_RECOGNISERS

RECOGNISER_COLUMNS = {"faceapi_resnet": "A", "mobilefacenet": "B", "mobileface": "C"}


def video_name(relative: str) -> str:
    """Short name of a validation video: ``ubfc/subject14/vid.mp4`` -> ``subject14``."""
    path = Path(relative)
    return path.parent.name if path.stem == "vid" else path.stem


def summary_row(report: dict[str, Any], method: str, video: str) -> dict[str, Any]:
    """The card's columns from one verify report (first face track)."""
    row: dict[str, Any] = {"method": method, "video": video}
    face = report["faces"][0] if report["faces"] else {}
    for name, column in RECOGNISER_COLUMNS.items():
        scores = face.get("identity", {}).get(name)
        if scores:
            row[f"match_{column}"] = scores["match_rate"]
            row[f"distance_{column}"] = scores["mean_distance"]
    pos = face.get("pulse", {}).get("methods", {}).get("pos") if face.get("pulse") else None
    if pos:
        window = pos["windows"].get("10", {}).get("summary", {})
        row["dhr_whole_bpm"] = abs(pos["hr_deidentified_bpm"] - pos["hr_original_bpm"])
        row["hr_mae_10s_bpm"] = window.get("hr_mae")
        row["pearson_10s"] = window.get("pearson")
        if window.get("snr_reference_db") is not None and window.get("snr_test_db") is not None:
            row["snr_drop_db"] = window["snr_reference_db"] - window["snr_test_db"]
    row["face_psnr_db"] = report["quality"]["face"]["psnr_mean"]
    row["face_ssim"] = report["quality"]["face"]["ssim_mean"]
    detection = face.get("detection", {})
    row["detected"] = detection.get("rate_deidentified", detection.get("detection_rate_deidentified"))
    return row


def mean_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``video = "mean"`` row per method: the mean of every numeric column over videos."""
    means = []
    for method in dict.fromkeys(r["method"] for r in rows):
        members = [r for r in rows if r["method"] == method]
        mean: dict[str, Any] = {"method": method, "video": "mean"}
        for key in {k for r in members for k in r} - {"method", "video"}:
            values = [r[key] for r in members if isinstance(r.get(key), (int, float))]
            mean[key] = float(np.mean(values)) if values else None
        means.append(mean)
    return means


COLUMNS = (
    ("match_A", "A match"), ("match_B", "B match"), ("match_C", "C match"), ("dhr_whole_bpm", "dHR whole"),
    ("hr_mae_10s_bpm", "HR MAE 10 s"), ("pearson_10s", "r 10 s"), ("snr_drop_db", "SNR drop dB"),
    ("face_psnr_db", "face PSNR dB"), ("face_ssim", "face SSIM"), ("detected", "detected"),
)  # fmt: skip


def markdown_table(rows: list[dict[str, Any]]) -> str:
    present = [(k, title) for k, title in COLUMNS if any(r.get(k) is not None for r in rows)]
    lines = ["| method | video | " + " | ".join(t for _, t in present) + " |", "|---|---|" + "---|" * len(present)]
    for r in rows:
        cells = []
        for key, _ in present:
            value = r.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                cells.append("-")
            elif key.startswith("match_"):
                distance = r.get("distance_" + key[-1])
                cells.append(f"{value:.2f}" + (f" ({distance:.2f})" if distance is not None else ""))
            else:
                cells.append(f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}")
        video = f"**{r['video']}**" if r["video"] == "mean" else r["video"]
        lines.append(f"| {r['method']} | {video} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def evaluate(
    methods: list[str], out: Path, strength: float | None = None, reuse: bool = False, device: str = "cpu",
    data_root: Path | None = None, recognisers: tuple[str, ...] = ALL_RECOGNISERS,
) -> list[dict[str, Any]]:
    """Anonymise and verify every validation video with every method; see the module docstring."""
    from deidvid.anonymise.run import AnonymiseOptions, anonymise_video
    from deidvid.verify.run import VerifyOptions, verify_videos

    root = data_root or D.default_data_root()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    order: dict[str, int] = {}  # row tag -> position of its method in ``methods``
    for relative in D.VALIDATION_VIDEOS:
        src = root / relative
        if not src.exists():
            continue
        name = video_name(relative)
        for method in methods:
            tag = method if strength is None or method != "ae" else f"{method}{strength:g}"
            order[tag] = methods.index(method)
            deid, report_path = out / f"{name}.{tag}.mp4", out / f"{name}.{tag}.json"
            if not (reuse and report_path.exists()):
                options = AnonymiseOptions(
                    method=method, device=device, strength=None if strength is None or method != "ae" else strength / 255
                )
                anonymise_video(src, deid, options)
                report = verify_videos(src, deid, VerifyOptions(device=device, recognisers=recognisers)).to_dict()
                tmp = report_path.with_suffix(".json.tmp")
                tmp.write_text(json.dumps(report, indent=1))
                os.replace(tmp, report_path)
            rows.append(summary_row(json.loads(report_path.read_text()), tag, name))
    rows.sort(key=lambda r: order[r["method"]])  # grouped by method, as given (made per video)
    rows += mean_rows(rows)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    (out / "table.md").write_text(markdown_table(rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deidvid.train evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["ae", "blur", "pixelate"])
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--strength", type=float, default=None, help="ae: perturbation RMS in grey levels")
    parser.add_argument("--reuse", action="store_true", help="keep existing verify reports")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recognisers", nargs="+", default=list(ALL_RECOGNISERS))
    args = parser.parse_args(argv)
    rows = evaluate(args.methods, args.out, args.strength, args.reuse, args.device, recognisers=tuple(args.recognisers))
    print(markdown_table(rows))
    return 0
