"""``deidvid anonymise``: options in, one report per video out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deidvid import __version__
from deidvid.cli.common import (
    err_console,
    fail,
    resolve_device,
    run_guarded,
    say,
    table_console,
    write_report,
)
from deidvid.cli.options import AnonymiseArgs, check_anonymise
from deidvid.cli.paths import (
    check_no_overlap,
    check_report_path,
    plan_outputs,
    preflight,
    written_paths,
)
from deidvid.errors import EXIT_GATE_FAILED, EXIT_OK

if TYPE_CHECKING:
    from deidvid.anonymise.models import PipelineModels
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.anonymise.report import VideoReport


# Paths are readable=False: Click's own check would refuse an unreadable input for the whole
# batch (exit 2, nothing processed); deidvid checks each input itself, as that input's error.
def anonymise(
    inputs: Annotated[list[Path], typer.Argument(help="Input video(s).", show_default=False, readable=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file (one input).", readable=False)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Folder for outputs (NAME.deid.EXT).", readable=False)] = None,
    method: Annotated[str, typer.Option(help="blur | pixelate | surrogate | ae | ae-paper (see README and deidvid/weights/MODEL_CARD.md)")] = "blur",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    strength: Annotated[
        float | None,
        typer.Option(help="--method ae: perturbation RMS in grey levels (0-255); more hides identity better, "
                     "costs PSNR (default: as trained, see deidvid/weights/MODEL_CARD.md).", show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="--method surrogate: which surrogate each face gets (same seed, same choice).")] = 0,
    keep_pulse: Annotated[
        bool | None,
        typer.Option("--keep-pulse/--no-keep-pulse", help="Transplant the original's pulse into the output "
                     "(default: on for methods that replace the face's pixels: blur, pixelate, surrogate).", show_default=False),
    ] = None,
    fallback: Annotated[str, typer.Option(help="Cover faces that were seen but lost: blur | none.")] = "blur",
    fallback_seconds: Annotated[float, typer.Option(help="How long a lost face's last place stays covered (> 0).")] = 2.0,
    detect_every: Annotated[int, typer.Option(help="Run the detector every N frames (>= 1); landmarks track in between.")] = 3,
    any_roll: Annotated[
        bool, typer.Option("--any-roll/--upright-only", help="Also detect faces rolled 90/180/270 degrees (4 detector "
                           "passes: pass 1 about 2x slower). --upright-only when every face is known to be upright.")
    ] = True,
    detector_max_side: Annotated[int, typer.Option(help="Detector input size (long side, >= 64); raise it for small faces.")] = 640,
    threshold: Annotated[float, typer.Option(help="Detector score threshold, 0.05-0.95.")] = 0.5,
    clip_len: Annotated[int, typer.Option(help="Frames per model clip (>= 1).")] = 64,
    overlap: Annotated[int, typer.Option(help="Frames shared by consecutive clips (cross-faded; < --clip-len).")] = 16,
    crf: Annotated[int, typer.Option(help="H.264 quality, 0-51 (lower is better).")] = 16,
    face_qp_offset: Annotated[
        int | None,
        typer.Option(help="Code the faces this many QP finer than the rest, 0-51 (default: 15 when the pulse is "
                     "transplanted, so the encoder keeps it; else 0).", show_default=False),
    ] = None,
    lossless: Annotated[bool, typer.Option(help="Lossless H.264.")] = False,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Drop the audio stream.")] = False,
    keep_metadata: Annotated[
        bool, typer.Option("--keep-metadata/--strip-metadata", help="Keep free-text container tags (title, "
                           "comment, artist, ...: they often name people). Location tags are always dropped.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files (never inputs).")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any face frame was not processed by the method.")] = False,
    identity_check: Annotated[
        bool, typer.Option(help="Score the method's face crops with recognisers A, B and C (every 8th frame).")
    ] = True,
    max_match_rate: Annotated[
        float | None,
        typer.Option(help="Exit 1 if a recogniser still matches more than this fraction (0-1) of checked frames."),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON ('-' for stdout).", readable=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or tables; errors only.")] = False,
) -> None:
    """Anonymise every face in each input video."""
    args = AnonymiseArgs(
        method=method, device=device, strength=strength, fallback=fallback, fallback_seconds=fallback_seconds,
        detect_every=detect_every, detector_max_side=detector_max_side, threshold=threshold,
        clip_len=clip_len, overlap=overlap, crf=crf, identity_check=identity_check, max_match_rate=max_match_rate,
        face_qp_offset=face_qp_offset,
    )
    _, message, code = run_guarded(_check_args, args)
    if message:
        fail(message, code)
    outputs, message, code = run_guarded(_plan, inputs, output, out_dir, json_path)
    if message:
        fail(message, code)
    opts = _options(args, seed=seed, any_roll=any_roll, lossless=lossless, copy_audio=not no_audio, keep_pulse=keep_pulse, keep_metadata=keep_metadata)
    gates = _Gates(strict=strict, max_match_rate=max_match_rate)
    console = None if quiet else table_console(json_path)
    results, worst = _run_batch(inputs, outputs, opts, overwrite, gates, console)
    if json_path is not None:
        from deidvid.anonymise.report import SCHEMA_VERSION

        payload = {"schema_version": SCHEMA_VERSION, "deidvid_version": __version__,
                   "options": dataclasses.asdict(opts), "videos": results}
        worst = max(worst, write_report(json_path, payload))
    raise typer.Exit(worst)


def _check_args(args: AnonymiseArgs) -> None:
    from deidvid.methods import METHODS

    check_anonymise(args, tuple(METHODS), _max_strength() if args.strength is not None else None)


def _max_strength() -> float:
    """The autoencoder's strength bound ([0, 1] units); its module loads torch, so only on demand."""
    from deidvid.methods.autoencoder import MAX_STRENGTH

    return MAX_STRENGTH


def _plan(inputs: list[Path], output: Path | None, out_dir: Path | None, json_path: Path | None) -> list[Path]:
    """Outputs of every input; whole-command path problems (overlaps, the report) raise."""
    outputs = plan_outputs(inputs, output, out_dir)
    check_no_overlap(inputs, written_paths(outputs, json_path))
    check_report_path(json_path)
    return outputs


def _options(args: AnonymiseArgs, *, seed: int, any_roll: bool, lossless: bool, copy_audio: bool, keep_pulse: bool | None,
             keep_metadata: bool) -> AnonymiseOptions:
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.faces.find import FaceFinding

    dev, message, code = run_guarded(resolve_device, args.device)
    if message:
        fail(message, code)
    finding = FaceFinding(
        detect_every=args.detect_every, detector_max_side=args.detector_max_side, score_threshold=args.threshold,
        any_roll=any_roll,
    )
    return AnonymiseOptions(
        method=args.method, device=dev, strength=None if args.strength is None else args.strength / 255.0, seed=seed,
        finding=finding, clip_len=args.clip_len, overlap=args.overlap,
        fallback=args.fallback, fallback_seconds=args.fallback_seconds,
        crf=args.crf, lossless=lossless, copy_audio=copy_audio, identity_check=args.identity_check,
        keep_pulse=keep_pulse, keep_metadata=keep_metadata, face_qp_offset=args.face_qp_offset,
    )


@dataclasses.dataclass(frozen=True)
class _Gates:
    strict: bool
    max_match_rate: float | None


def _run_batch(
    inputs: list[Path], outputs: list[Path], opts: AnonymiseOptions, overwrite: bool, gates: _Gates,
    console: Console | None,
) -> tuple[list[dict[str, Any]], int]:
    """Every input is tried: first all the checks that need no decoding (so a bad item is
    reported before an hour of work, not after), then the videos that passed them."""
    from deidvid.anonymise.models import PipelineModels

    results: list[dict[str, Any]] = [{} for _ in inputs]
    worst = EXIT_OK
    ready = []
    for i, (src, dst) in enumerate(zip(inputs, outputs)):
        _, message, code = run_guarded(preflight, src, dst, overwrite, opts.copy_audio)
        if message:
            results[i] = _error_entry(src, dst, message, code)
            worst = max(worst, code)
        else:
            ready.append(i)
    models = PipelineModels(opts)  # loaded on first use, once for the whole batch
    for i in ready:
        results[i], code = _anonymise_entry(inputs[i], outputs[i], opts, models, gates, console)
        worst = max(worst, code)
    return results, worst


def _error_entry(src: Path, dst: Path, message: str, code: int) -> dict[str, Any]:
    say("error", message, src)
    return {"input": str(src), "output": str(dst), "status": "error", "error": message, "exit_code": code}


def _anonymise_entry(
    src: Path, dst: Path, opts: AnonymiseOptions, models: PipelineModels, gates: _Gates, console: Console | None
) -> tuple[dict[str, Any], int]:
    report, message, code = _anonymise_one(src, dst, opts, models, console is None)
    if message:
        return _error_entry(src, dst, message, code), code
    entry = {"status": "ok", **dataclasses.asdict(report)}
    if gates.strict and report.frames_unprocessed:
        code = EXIT_GATE_FAILED
        entry["status"] = "incomplete"
    if gates.max_match_rate is not None and _worst_match_rate(report) > gates.max_match_rate:
        code = EXIT_GATE_FAILED
        entry["status"] = "identity_remains"
    if console is not None:
        _print_report(report, console)
    for w in report.warnings:
        say("warning", w, src)
    return entry, code


def _anonymise_one(
    src: Path, dst: Path, opts: AnonymiseOptions, models: PipelineModels, quiet: bool
) -> tuple[VideoReport | None, str | None, int]:
    from deidvid.anonymise.run import anonymise_video

    if quiet:
        return run_guarded(anonymise_video, src, dst, opts, None, models)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

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


def _print_report(report: VideoReport, console: Console) -> None:
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
    console.print(table)


def _worst_match_rate(report: VideoReport) -> float:
    rates = [c["match_rate"] for c in (report.identity_check or {}).values() if c["match_rate"] is not None]
    return max(rates, default=0.0)
