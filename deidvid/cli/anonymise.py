"""``deidvid anonymise``: options in, one report per video out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deidvid import __version__
from deidvid.batch.discover import BatchItem, plan_items
from deidvid.batch.manifest import MANIFEST_NAME
from deidvid.batch.run import ENGINES, BatchSettings, Gates, run_batch
from deidvid.cli.batch_display import BatchDisplay
from deidvid.cli.common import fail, resolve_device, say, table_console, write_report
from deidvid.cli.options import AnonymiseArgs, check_anonymise
from deidvid.cli.paths import (
    Written,
    check_no_overlap,
    check_report_path,
    written_paths,
)
from deidvid.errors import EXIT_OK, UsageError, run_guarded

if TYPE_CHECKING:
    from deidvid.anonymise.options import AnonymiseOptions


# Paths are readable=False: Click's own check would refuse an unreadable input for the whole
# batch (exit 2, nothing processed); deidvid checks each input itself, as that input's error.
def anonymise(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Input videos and/or folders (searched recursively; a folder's tree is mirrored into "
                       "--out-dir).", show_default=False, readable=False),
    ],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file (one input).", readable=False)] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Folder for outputs: NAME.deid.EXT for a file argument, the same relative path "
                     f"for a folder's files; it also gets the run manifest ({MANIFEST_NAME}).", readable=False),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(help="In folders, take only files matching this glob (repeatable; a pattern with '/' matches the "
                     "relative path, else the name). Default: common video suffixes.", show_default=False),
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="In folders, skip files matching this glob (repeatable).", show_default=False)] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume/--force", help="With --out-dir: skip inputs whose output the manifest records as complete, "
                     "from the same input (sha256) with the same options and models; --force redoes them."),
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(help="Videos processed at once, each worker loading the models once and using an equal share "
                     "of the cores (default: one per core, as many as fit in available memory at 1.5 GB each, at "
                     "most one per video).", show_default=False),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local (this machine) | ray (Ray tasks; pip install 'deidvid\\[ray]'; inputs and "
                          "outputs on a file system every node sees).")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="--engine ray: the cluster to use (default: start a local Ray instance).", show_default=False)
    ] = None,
    task_cpus: Annotated[
        int | None, typer.Option(help="--engine ray: CPUs (threads) each video's task asks for (default: the share a "
                                 "local worker would get).", show_default=False)
    ] = None,
    task_gpus: Annotated[float, typer.Option(help="--engine ray: GPUs each video's task asks for.")] = 0.0,
    retries: Annotated[int, typer.Option(help="--engine ray: times a task is re-run when its worker dies (>= 0).")] = 2,
    method: Annotated[str, typer.Option(help="blur | pixelate | surrogate | ae | ae-paper | surrogate+ae (see README and deidvid/weights/MODEL_CARD.md)")] = "blur",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    strength: Annotated[
        float | None,
        typer.Option(help="--method ae or surrogate+ae: perturbation RMS in grey levels (0-255); more hides identity better, "
                     "costs PSNR (default: as trained, see deidvid/weights/MODEL_CARD.md).", show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="--method surrogate (or surrogate+ae): which surrogate each face gets (same seed, same choice).")] = 0,
    surrogate_look: Annotated[
        str,
        typer.Option(help="--method surrogate (or surrogate+ae): any = the surrogate farthest from the person, of either "
                     "look (the most private; often the other look); same = of the person's apparent look (female- or "
                     "male-looking), unless every one of those would still be matched."),
    ] = "any",
    keep_pulse: Annotated[
        bool | None,
        typer.Option("--keep-pulse/--no-keep-pulse", help="Transplant the original's pulse into the output "
                     "(default: on; it also codes the faces finer, see --face-qp-offset).", show_default=False),
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
        typer.Option(help="Code the faces this many QP finer than the rest, 0-51 (default: 20 when the pulse is "
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or tables: only warnings (a face left to the fallback, a recogniser still matching) and errors.")] = False,
) -> None:
    """Anonymise every face in each input video."""
    args = AnonymiseArgs(
        method=method, device=device, strength=strength, fallback=fallback, fallback_seconds=fallback_seconds,
        detect_every=detect_every, detector_max_side=detector_max_side, threshold=threshold,
        clip_len=clip_len, overlap=overlap, crf=crf, identity_check=identity_check, max_match_rate=max_match_rate,
        face_qp_offset=face_qp_offset, surrogate_look=surrogate_look,
    )
    _, message, code = run_guarded(_check_args, args)
    if message:
        fail(message, code)
    settings = BatchSettings(
        workers=workers, resume=resume, overwrite=overwrite, engine=engine, ray_address=ray_address,
        task_cpus=task_cpus, task_gpus=task_gpus, retries=retries,
    )
    _, message, code = run_guarded(_check_batch, settings)
    if message:
        fail(message, code)
    items, message, code = run_guarded(_plan, inputs, output, out_dir, json_path, include or [], exclude or [], quiet)
    if message:
        fail(message, code)
    opts = _options(args, seed=seed, any_roll=any_roll, lossless=lossless, copy_audio=not no_audio, keep_pulse=keep_pulse, keep_metadata=keep_metadata)
    gates = Gates(strict=strict, max_match_rate=max_match_rate)
    display = BatchDisplay(None if quiet else table_console(json_path))
    try:
        outcomes = run_batch(items, opts, settings, gates, out_dir, display)
    finally:
        display.close()
    worst = max((o.exit_code for o in outcomes), default=EXIT_OK)
    if json_path is not None:
        from deidvid.anonymise.report import SCHEMA_VERSION

        payload = {"schema_version": SCHEMA_VERSION, "deidvid_version": __version__,
                   "options": dataclasses.asdict(opts), "batch": display.summary(out_dir),
                   "videos": [o.entry for o in outcomes]}
        worst = max(worst, write_report(json_path, payload))
    raise typer.Exit(worst)


def _check_batch(settings: BatchSettings) -> None:
    if settings.workers is not None and settings.workers < 1:
        raise UsageError(f"--workers must be >= 1, not {settings.workers}")
    if settings.engine not in ENGINES:
        raise UsageError(f"--engine must be {' or '.join(ENGINES)}, not '{settings.engine}'")
    if settings.retries < 0 or settings.task_gpus < 0:
        raise UsageError("--retries and --task-gpus must be >= 0")
    if settings.task_cpus is not None and settings.task_cpus < 1:
        raise UsageError(f"--task-cpus must be >= 1, not {settings.task_cpus}")


def _check_args(args: AnonymiseArgs) -> None:
    from deidvid.methods import METHODS, SURROGATE_LOOKS, WITH_STRENGTH

    check_anonymise(
        args, tuple(METHODS), _max_strength() if args.strength is not None else None, WITH_STRENGTH, SURROGATE_LOOKS
    )


def _max_strength() -> float:
    """The autoencoder's strength bound ([0, 1] units); its module loads torch, so only on demand."""
    from deidvid.methods.autoencoder import MAX_STRENGTH

    return MAX_STRENGTH


def _plan(
    inputs: list[Path], output: Path | None, out_dir: Path | None, json_path: Path | None,
    include: list[str], exclude: list[str], quiet: bool = False,
) -> list[BatchItem]:
    """Every input and its output; whole-command path problems (overlaps, the report) raise."""
    def skipped(folder: Path) -> None:
        if not quiet:
            say("note", "holds a deidvid run manifest (an earlier run's output): not searched", folder)

    items = plan_items(inputs, output, out_dir, include, exclude, on_skip=skipped)
    written = written_paths([item.dst for item in items], json_path)
    if out_dir is not None:
        written.append(Written(out_dir / MANIFEST_NAME, "run manifest"))
    check_no_overlap([item.src for item in items], written)
    check_report_path(json_path)
    return items


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
        surrogate_look=args.surrogate_look,
        finding=finding, clip_len=args.clip_len, overlap=args.overlap,
        fallback=args.fallback, fallback_seconds=args.fallback_seconds,
        crf=args.crf, lossless=lossless, copy_audio=copy_audio, identity_check=args.identity_check,
        keep_pulse=keep_pulse, keep_metadata=keep_metadata, face_qp_offset=args.face_qp_offset,
    )
