"""``deidvid anonymise``: options in, one report per video out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deidvid import __version__
from deidvid.cli.common import err_console, fail, out_console, plan_outputs, resolve_device, run_guarded, say, write_json
from deidvid.errors import EXIT_GATE_FAILED, EXIT_OK


def anonymise(
    inputs: Annotated[list[Path], typer.Argument(help="Input video(s).", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file (one input).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Folder for outputs (NAME.deid.EXT).")] = None,
    method: Annotated[str, typer.Option(help="blur | pixelate | ae | ae-paper (autoencoders: see weights/MODEL_CARD.md)")] = "blur",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    strength: Annotated[
        float | None,
        typer.Option(help="--method ae: perturbation RMS in grey levels (0-255); more hides identity better, "
                     "costs PSNR (default: as trained, see weights/MODEL_CARD.md).", show_default=False),
    ] = None,
    keep_pulse: Annotated[
        bool | None,
        typer.Option("--keep-pulse/--no-keep-pulse", help="Transplant the original's pulse into the output "
                     "(default: on for methods that replace the face's pixels: blur, pixelate).", show_default=False),
    ] = None,
    fallback: Annotated[str, typer.Option(help="Cover faces that were seen but lost: blur | none.")] = "blur",
    fallback_seconds: Annotated[float, typer.Option(help="How long a lost face's last place stays covered.")] = 2.0,
    detect_every: Annotated[int, typer.Option(min=1, help="Run the detector every N frames; landmarks track in between.")] = 3,
    detector_max_side: Annotated[int, typer.Option(min=64, help="Detector input size (long side); raise it for small faces.")] = 640,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Detector score threshold.")] = 0.5,
    clip_len: Annotated[int, typer.Option(min=1, help="Frames per model clip.")] = 64,
    overlap: Annotated[int, typer.Option(min=0, help="Frames shared by consecutive clips (cross-faded).")] = 16,
    crf: Annotated[int, typer.Option(min=0, max=51, help="H.264 quality (lower is better).")] = 16,
    lossless: Annotated[bool, typer.Option(help="Lossless H.264.")] = False,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Drop the audio stream.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files (never inputs).")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any face frame was not processed by the method.")] = False,
    identity_check: Annotated[
        bool, typer.Option(help="Score the method's face crops with recognisers A, B and C (every 8th frame).")
    ] = True,
    max_match_rate: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Exit 1 if a recogniser still matches more than this fraction of checked frames."),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON ('-' for stdout).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or tables; errors only.")] = False,
) -> None:
    """Anonymise every face in each input video."""
    from deidvid.anonymise.models import PipelineModels
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.faces.find import FaceFinding
    from deidvid.methods import METHODS

    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, not '{method}'", 2)
    if fallback not in ("blur", "none"):
        fail(f"--fallback must be blur or none, not '{fallback}'", 2)
    if strength is not None:
        from deidvid.methods.autoencoder import MAX_STRENGTH

        if method != "ae" or not 0 < strength / 255.0 <= MAX_STRENGTH:
            fail(f"--strength needs --method ae and a value in (0, {MAX_STRENGTH * 255:g}] grey levels", 2)
    if overlap >= clip_len:
        fail("--overlap must be smaller than --clip-len", 2)
    outputs, message, code = run_guarded(plan_outputs, inputs, output, out_dir, overwrite)
    if message:
        fail(message, code)
    dev, message, code = run_guarded(resolve_device, device)
    if message:
        fail(message, code)
    finding = FaceFinding(detect_every=detect_every, detector_max_side=detector_max_side, score_threshold=threshold)
    opts = AnonymiseOptions(
        method=method, device=dev, strength=None if strength is None else strength / 255.0,
        finding=finding, clip_len=clip_len, overlap=overlap,
        fallback=fallback, fallback_seconds=fallback_seconds,
        crf=crf, lossless=lossless, copy_audio=not no_audio, identity_check=identity_check,
        keep_pulse=keep_pulse,
    )
    if max_match_rate is not None and not identity_check:
        fail("--max-match-rate needs the identity check (drop --no-identity-check)", 2)
    results: list[dict[str, Any]] = []
    worst = EXIT_OK
    models = PipelineModels(opts)  # loaded once for the whole batch
    for src, dst in zip(inputs, outputs):
        report, message, code = _anonymise_one(src, dst, opts, models, quiet)
        if message:
            say("error", message, src)
            results.append({"input": str(src), "status": "error", "error": message, "exit_code": code})
        else:
            entry = {"status": "ok", **dataclasses.asdict(report)}
            if strict and report.frames_unprocessed:
                code = EXIT_GATE_FAILED
                entry["status"] = "incomplete"
            if max_match_rate is not None and _worst_match_rate(report) > max_match_rate:
                code = EXIT_GATE_FAILED
                entry["status"] = "identity_remains"
            results.append(entry)
            if not quiet:
                _print_report(report)
            for w in report.warnings:
                say("warning", w, src)
        worst = max(worst, code)
    if json_path is not None:
        from deidvid.anonymise.report import SCHEMA_VERSION

        write_json(json_path, {"schema_version": SCHEMA_VERSION, "deidvid_version": __version__,
                               "options": dataclasses.asdict(opts), "videos": results})
    raise typer.Exit(worst)


def _anonymise_one(src: Path, dst: Path, opts, models, quiet: bool):  # noqa: ANN001, ANN202
    from deidvid.anonymise.run import anonymise_video

    if quiet:
        return run_guarded(anonymise_video, src, dst, opts, None, models)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = {"analyse": "finding faces", "render": "anonymising"}.get(stage, stage)
                tasks[stage] = bar.add_task(f"{src.name}: {label}", total=total or None)
            bar.update(tasks[stage], completed=done)

        return run_guarded(anonymise_video, src, dst, opts, progress, models)


def _print_report(report) -> None:  # noqa: ANN001
    table = Table(title=f"{report.input} -> {report.output}", show_header=False)
    table.add_row("method", report.method)
    table.add_row("frames", f"{report.frames_written}/{report.frames} at {report.fps:.3f} fps")
    table.add_row("faces (tracks)", str(report.faces))
    table.add_row("face frames processed", f"{report.face_frames_processed} ({report.face_frames_interpolated} interpolated)")
    table.add_row("frames with a lost face", f"{report.frames_unprocessed} (fallback: {report.fallback})")
    for name, check in (report.identity_check or {}).items():
        if check["match_rate"] is not None:
            table.add_row(
                f"identity check: {name}",
                f"matches {check['match_rate']:.0%} of {check['frames']} sampled face frames (threshold {check['threshold']:.3g})",
            )
    table.add_row("time", f"{report.timings_s['total']:.1f} s")
    out_console.print(table)


def _worst_match_rate(report) -> float:  # noqa: ANN001
    rates = [c["match_rate"] for c in (report.identity_check or {}).values() if c["match_rate"] is not None]
    return max(rates, default=0.0)
