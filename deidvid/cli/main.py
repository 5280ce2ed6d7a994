"""Command line: ``deidvid anonymise``, ``deidvid verify``, ``deidvid bench``.

Exit codes (see ``deidvid.errors``): 0 ok; 1 a verify gate or ``--strict`` failed;
2 bad usage; 3 bad input; 4 processing failed; 5 weights missing or corrupted.
With several inputs every one is tried and the exit code is the highest seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deidvid import __version__
from deidvid.cli.anonymise import anonymise
from deidvid.cli.common import parse_floats, fail, out_console, resolve_device, run_guarded, say, write_json
from deidvid.cli.tools import PASS_THROUGH, bench_app, models_app, train_command
from deidvid.errors import EXIT_GATE_FAILED, EXIT_OK

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="De-identify faces in videos while keeping the pulse (rPPG) signal.",
)


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


app.command()(anonymise)


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
            methods=names, windows_s=parse_floats(windows, "--windows"), band_hz=parse_floats(band, "--band", 2),  # type: ignore[arg-type]
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


app.add_typer(bench_app, name="bench")
app.add_typer(models_app, name="models")
app.command(
    "train", context_settings=PASS_THROUGH,
    help="Train the de-identification autoencoder (deidvid train --help for options).",
)(train_command)


if __name__ == "__main__":
    app()
