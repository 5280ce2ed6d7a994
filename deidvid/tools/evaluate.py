"""Product-level evaluation: ``anonymise`` + ``verify`` over a set of videos and method variants.

``python -m deidvid.tools.evaluate --methods blur blur:no-keep-pulse reencode --videos pulse --seconds 30 --out runs/x``
(also ``python -m deidvid.train evaluate ...``, the model card's command).

- ``--videos``: ``validation`` (:data:`deidvid.train.data.VALIDATION_VIDEOS`, the default),
  ``pulse`` (every video with a pulse: the UBFC subjects and evm_face_pulse) or paths
  relative to the shared data folder.
- ``--methods``: a method name (``blur``, ``ae``, ...), optionally with ``:keep-pulse`` or
  ``:no-keep-pulse`` and ``:qpN`` (``--face-qp-offset N``); ``reencode`` is the floor every method pays: the video decoded and
  written by the product's encoder with nothing changed (CRF 16).
- ``--seconds S``: use the first S seconds of each video (packets copied, no re-encode).

For each video and variant it runs the product's ``anonymise_video`` (defaults: CRF 16,
detect every 3rd frame; the identity check off, verify measures the written video) and
``verify_videos`` (POS, CHROM, GREEN and PhysNet when installed; 10 s and 30 s windows;
with the UBFC finger PPG), keeps each report as ``NAME.VARIANT.json`` and writes one row
per video and variant, plus means over videos, to ``summary.json`` and ``table.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deidvid.measure.expression import GAZE_SIGNALS, MESH_SIGNALS, min_defined_r
from deidvid.recognise import ALL_RECOGNISERS

RECOGNISER_COLUMNS = {"faceapi_resnet": "A", "mobilefacenet": "B", "mobileface": "C"}
PULSE_VIDEOS = tuple(f"ubfc/subject{n}/vid.mp4" for n in (3, 4, 5, 8, 14, 17)) + ("videos/misc/evm_face_pulse.mp4",)
REENCODE = "reencode"
PHYSNET_FOUND_BPM = 5.0  # PhysNet "finds the pulse" when its HR is this close to the PPG's (or POS's)


def video_name(relative: str) -> str:
    """Short name of a video: ``ubfc/subject14/vid.mp4`` -> ``subject14``."""
    path = Path(relative)
    return path.parent.name if path.stem == "vid" else path.stem


@dataclass(frozen=True)
class Variant:
    """A method and the anonymise options a variant sets (None: the product's default)."""

    method: str
    keep_pulse: bool | None = None
    face_qp_offset: int | None = None
    surrogate_look: str | None = None

    def cli_flags(self) -> list[str]:
        """The ``deidvid anonymise`` flags that select this variant (besides ``--method``)."""
        flags = [] if self.keep_pulse is None else ["--keep-pulse" if self.keep_pulse else "--no-keep-pulse"]
        flags += [] if self.face_qp_offset is None else ["--face-qp-offset", str(self.face_qp_offset)]
        return flags + ([] if self.surrogate_look is None else ["--surrogate-look", self.surrogate_look])


def parse_variant(variant: str) -> Variant:
    """``METHOD[:keep-pulse|:no-keep-pulse][:qpN][:same-look|:any-look]``: ``blur:no-keep-pulse`` ->
    ``Variant("blur", False)``, ``blur:qp20`` -> ``Variant("blur", face_qp_offset=20)``,
    ``surrogate:same-look`` -> ``Variant("surrogate", surrogate_look="same")``; ValueError on an unknown flag."""
    method, *flags = variant.split(":")
    keep, offset, look = None, None, None
    for flag in flags:
        if flag in ("keep-pulse", "no-keep-pulse") and keep is None:
            keep = flag == "keep-pulse"
        elif flag.startswith("qp") and flag[2:].isdigit() and int(flag[2:]) <= 51 and offset is None:
            offset = int(flag[2:])
        elif flag in ("same-look", "any-look") and look is None:
            look = flag.removesuffix("-look")
        else:
            raise ValueError(
                f"unknown variant flag '{flag}' in '{variant}' (keep-pulse | no-keep-pulse | qpN, N 0-51 | same-look | any-look)"
            )
    return Variant(method, keep, offset, look)


def _pulse_columns(row: dict[str, Any], face: dict[str, Any], method: str, prefix: str) -> None:
    entry = (face.get("pulse") or {}).get("methods", {}).get(method)
    if not entry:
        return
    window = entry["windows"].get("10", {}).get("summary", {})
    row[f"{prefix}_dhr_whole_bpm"] = abs(entry["hr_deidentified_bpm"] - entry["hr_original_bpm"])
    row[f"{prefix}_pearson_10s"] = window.get("pearson")
    if window.get("snr_reference_db") is not None and window.get("snr_test_db") is not None:
        row[f"{prefix}_snr_drop_db"] = window["snr_reference_db"] - window["snr_test_db"]


def _physnet_found(face: dict[str, Any]) -> bool | None:
    """Whether PhysNet finds a pulse in the original: its whole-track HR near the PPG's (else POS's)."""
    methods = (face.get("pulse") or {}).get("methods", {})
    physnet = methods.get("physnet")
    if not physnet:
        return None
    reference = None
    ppg = methods.get("pos", {}).get("ppg", {}).get("original", {}).get("whole")
    if ppg and ppg.get("windows"):
        reference = ppg["windows"][0].get("hr_reference_bpm")
    if reference is None and "pos" in methods:
        reference = methods["pos"]["hr_original_bpm"]
    return None if reference is None else abs(physnet["hr_original_bpm"] - reference) <= PHYSNET_FOUND_BPM


def summary_row(report: dict[str, Any], method: str, video: str) -> dict[str, Any]:
    """The evaluation's columns from one verify report (first face track)."""
    row: dict[str, Any] = {"method": method, "video": video}
    face = report["faces"][0] if report["faces"] else {}
    for name, column in RECOGNISER_COLUMNS.items():
        scores = face.get("identity", {}).get(name)
        if scores:
            row[f"match_{column}"] = scores["match_rate"]
            row[f"distance_{column}"] = scores["mean_distance"]
    pos = (face.get("pulse") or {}).get("methods", {}).get("pos")
    if pos:  # the model card's POS columns
        window = pos["windows"].get("10", {}).get("summary", {})
        row["dhr_whole_bpm"] = abs(pos["hr_deidentified_bpm"] - pos["hr_original_bpm"])
        row["hr_mae_10s_bpm"] = window.get("hr_mae")
        row["pearson_10s"] = window.get("pearson")
        if window.get("snr_reference_db") is not None and window.get("snr_test_db") is not None:
            row["snr_drop_db"] = window["snr_reference_db"] - window["snr_test_db"]
    _pulse_columns(row, face, "chrom", "chrom")
    _pulse_columns(row, face, "physnet", "physnet")
    found = _physnet_found(face)
    if found is not None:
        row["physnet_found"] = float(found)
    row["face_psnr_db"] = report["quality"]["face"]["psnr_mean"]
    row["face_ssim"] = report["quality"]["face"]["ssim_mean"]
    detection = face.get("detection", {})
    row["detected"] = detection.get("rate_deidentified", detection.get("detection_rate_deidentified"))
    haar = (detection.get("haar_rate") or {}).get("deidentified")
    if haar is not None:
        row["haar_detected"] = haar
    signals = face.get("expression") or {}
    expression = min_defined_r({k: v for k, v in signals.items() if k not in MESH_SIGNALS})
    if expression is not None:
        row["expression_r"] = expression
    mesh = min_defined_r({k: v for k, v in signals.items() if k in MESH_SIGNALS and k not in GAZE_SIGNALS})
    if mesh is not None:
        row["mesh_expression_r"] = mesh
    looking = min_defined_r({k: v for k, v in signals.items() if k in GAZE_SIGNALS})
    if looking is not None:
        row["gaze_r"] = looking
    flicker = (face.get("temporal") or {}).get("flicker_ratio")
    if flicker is not None:
        row["flicker_ratio"] = flicker
    decided = (report.get("anonymise_tracks") or [None])[0]
    if decided and decided.get("surrogate") is not None:
        row["surrogate_drawn"] = f"{decided['surrogate']} {decided['surrogate_looks']} ({decided['apparent_presentation']})"
    return row


def mean_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``video = "mean"`` row per method: the mean of every numeric column over videos."""
    means = []
    for method in dict.fromkeys(r["method"] for r in rows):
        members = [r for r in rows if r["method"] == method]
        mean: dict[str, Any] = {"method": method, "video": "mean"}
        for key in {k for r in members for k in r} - {"method", "video"}:
            values = [r[key] for r in members if isinstance(r.get(key), (int, float)) and not math.isnan(r[key])]
            mean[key] = float(np.mean(values)) if values else None
        means.append(mean)
    return means


COLUMNS = (
    ("match_A", "A match"), ("match_B", "B match"), ("match_C", "C match"), ("dhr_whole_bpm", "POS dHR whole"),
    ("hr_mae_10s_bpm", "POS HR MAE 10 s"), ("pearson_10s", "POS r 10 s"), ("snr_drop_db", "POS SNR drop dB"),
    ("chrom_dhr_whole_bpm", "CHROM dHR whole"), ("chrom_pearson_10s", "CHROM r 10 s"),
    ("physnet_dhr_whole_bpm", "PhysNet dHR whole"), ("physnet_found", "PhysNet finds pulse"),
    ("face_psnr_db", "face PSNR dB"), ("face_ssim", "face SSIM"), ("detected", "detected"),
    ("haar_detected", "Haar detected"), ("expression_r", "dlib expression r (min)"), ("mesh_expression_r", "mesh mouth/eyes r (min)"), ("gaze_r", "gaze x/y r (min)"), ("flicker_ratio", "flicker ratio"),
    ("surrogate_drawn", "surrogate drawn: look (person's)"),
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
            elif isinstance(value, str):
                cells.append(value)
            elif key.startswith("match_"):
                distance = r.get("distance_" + key[-1])
                cells.append(f"{value:.2f}" + (f" ({distance:.2f})" if distance is not None else ""))
            else:
                cells.append(f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}")
        video = f"**{r['video']}**" if r["video"] == "mean" else r["video"]
        lines.append(f"| {r['method']} | {video} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def first_seconds(src: Path, dst: Path, seconds: float) -> Path:
    """Copy the packets of ``src``'s first ``seconds`` (video and audio) into ``dst`` without re-encoding.

    A video no longer than ``seconds`` is used as it is (a packet copy would change its
    container, and with it the frame rate its timestamps give).
    """
    import av

    from deidvid.io.decode import probe

    if (probe(src).duration_s or float("inf")) <= seconds:
        return src
    if dst.exists():
        return dst
    tmp = dst.with_name(f".{dst.name}.part")
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if packet.dts is None or packet.pts is None:
                continue
            if float(packet.pts * packet.time_base) >= seconds:
                continue  # later packets of other streams may still be inside
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    os.replace(tmp, dst)
    return dst


def reencode(src: Path, dst: Path, crf: int = 16) -> None:
    """The product's decode + encode with nothing changed: what every method pays."""
    from deidvid.io.decode import iter_frames, probe
    from deidvid.io.encode import VideoWriter

    info = probe(src)
    with VideoWriter(dst, info, crf=crf) as writer:
        for frame in iter_frames(src, info):
            writer.write(frame, frame.rgb)


def _contact_ppg(video: Path) -> Path | None:
    truth = video.parent / "ground_truth.txt"
    return truth if truth.exists() else None


def evaluate(
    variants: list[str],
    out: Path,
    videos: tuple[str, ...],
    strength: float | None = None,
    reuse: bool = False,
    device: str = "cpu",
    data_root: Path | None = None,
    recognisers: tuple[str, ...] = ALL_RECOGNISERS,
    seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Anonymise and verify every video with every variant; see the module docstring."""
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.anonymise.run import anonymise_video
    from deidvid.faces.find import analyse_video
    from deidvid.shared_data import shared_data_dir
    from deidvid.verify.options import VerifyOptions
    from deidvid.verify.run import verify_videos

    root = data_root or shared_data_dir()
    present = [relative for relative in videos if (root / relative).exists()]
    if not present:
        raise SystemExit(f"none of the videos is in {root} (set DEIDVID_SHARED_DATA?)")
    for relative in videos:
        if relative not in present:
            print(f"evaluate: {root / relative} not found, skipped", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for relative in present:
        src = root / relative
        name = video_name(relative)
        ppg = _contact_ppg(src)
        if seconds is not None:
            src = first_seconds(src, out / f"{name}.first{seconds:g}s.mp4", seconds)
        analysis = None  # the original's pass 1, shared by the variants' verify runs
        for variant in variants:
            chosen = parse_variant(variant)
            method = chosen.method
            tag = variant if strength is None or method != "ae" else f"{variant}{strength:g}"
            deid, report_path = out / f"{name}.{tag}.mp4", out / f"{name}.{tag}.json"
            if not (reuse and report_path.exists()):
                anonymised = None
                if method == REENCODE:
                    reencode(src, deid)
                else:
                    options = AnonymiseOptions(
                        method=method, device=device, keep_pulse=chosen.keep_pulse, identity_check=False,
                        face_qp_offset=chosen.face_qp_offset,
                        surrogate_look=chosen.surrogate_look or AnonymiseOptions.surrogate_look,
                        strength=None if strength is None or method != "ae" else strength / 255,
                    )
                    anonymised = anonymise_video(src, deid, options)
                verify_options = VerifyOptions(device=device, recognisers=recognisers, ppg=ppg)
                if analysis is None:
                    analysis = analyse_video(src, verify_options.finding, device)
                report = verify_videos(src, deid, verify_options, analysis=analysis).to_dict()
                # what the method decided per track (e.g. the surrogate drawn), from anonymise's report
                report["anonymise_tracks"] = [] if anonymised is None else [t.method for t in anonymised.tracks]
                tmp = report_path.with_suffix(".json.tmp")
                tmp.write_text(json.dumps(report, indent=1))
                os.replace(tmp, report_path)
            rows.append(summary_row(json.loads(report_path.read_text()), tag, name))
    order = {v: i for i, v in enumerate(variants)}
    rows.sort(key=lambda r: order.get(r["method"], order.get(r["method"].rstrip("0123456789."), 0)))
    rows += mean_rows(rows)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    (out / "table.md").write_text(markdown_table(rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    from deidvid.train.data import VALIDATION_VIDEOS

    parser = argparse.ArgumentParser(prog="python -m deidvid.tools.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["ae", "blur", "pixelate"],
                        help="variants: METHOD[:keep-pulse|:no-keep-pulse][:qpN] or reencode")
    parser.add_argument("--videos", nargs="+", default=["validation"], help="validation | pulse | relative paths")
    parser.add_argument("--seconds", type=float, default=None, help="use only the first S seconds of each video")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--strength", type=float, default=None, help="ae: perturbation RMS in grey levels")
    parser.add_argument("--reuse", action="store_true", help="keep existing verify reports")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recognisers", nargs="+", default=list(ALL_RECOGNISERS))
    args = parser.parse_args(argv)
    sets = {"validation": VALIDATION_VIDEOS, "pulse": PULSE_VIDEOS}
    videos = tuple(v for name in args.videos for v in sets.get(name, (name,)))
    for variant in args.methods:
        parse_variant(variant)  # fail on a typo before hours of work
    rows = evaluate(
        args.methods, args.out, videos, args.strength, args.reuse, args.device,
        recognisers=tuple(args.recognisers), seconds=args.seconds,
    )
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
