"""Command line: ``deidvid anonymise``, ``deidvid verify``, ``deidvid bench``.

Exit codes (see ``deidvid.errors``): 0 ok; 1 a verify gate or ``--strict`` failed;
2 bad usage; 3 bad input; 4 processing failed; 5 weights missing or corrupted;
130 / 143 interrupted by SIGINT / SIGTERM. With several inputs every one is tried and the
exit code is the highest seen. Every error is one line on stderr, ``deidvid: error: ...``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from deidvid import __version__
from deidvid.cli.anonymise import anonymise
from deidvid.cli.common import (
    fail,
    internal_error,
    resolve_device,
    run_guarded,
    say,
    table_console,
    write_report,
)
from deidvid.cli.options import (
    check_band_fits,
    check_gates,
    check_range,
    parse_band,
    parse_methods,
    parse_windows,
)
from deidvid.cli.paths import check_no_overlap, check_report_path, written_paths
from deidvid.cli.signals import interrupts_unwind
from deidvid.cli.tools import PASS_THROUGH, bench_app, models_app, train_command
from deidvid.errors import (
    EXIT_GATE_FAILED,
    EXIT_OK,
    EXIT_PROCESSING,
    EXIT_USAGE,
    Interrupted,
    UsageError,
)

if TYPE_CHECKING:
    from deidvid.verify.options import VerifyOptions
    from deidvid.verify.report import GateCheck, VerifyReport
    from deidvid.verify.series import VerifySeries

# Click's exceptions, wherever this typer keeps Click (recent versions carry their own copy).
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
# `deidvid` alone shows the help (Click >= 8.2 raises this for it; older Click exits 0 itself).
NoArgsIsHelpError = getattr(sys.modules[ClickException.__module__], "NoArgsIsHelpError", ())


class OneLineErrors(TyperGroup):
    """The command group: every way a command ends becomes an exit code and at most one
    ``deidvid: error:`` line (Click's usage errors included, instead of Typer's box)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        code = run_command(
            lambda: super(OneLineErrors, self).main(args, prog_name, complete_var, standalone_mode=False, **extra)
        )
        if standalone_mode:
            sys.exit(code)
        return code


def run_command(invoke: Callable[[], Any]) -> int:
    """Run the parsed command with SIGINT/SIGTERM unwinding it; returns the exit code."""
    try:
        with interrupts_unwind():
            result = invoke()
        return result if isinstance(result, int) else EXIT_OK
    except NoArgsIsHelpError as err:
        err.show()  # `deidvid` alone: the help text, as Click shows it
        return err.exit_code
    except ClickException as err:
        say("error", _click_message(err))
        return EXIT_USAGE  # every Click error is about the arguments
    except Interrupted as err:
        say("error", "interrupted")
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):  # a Ctrl-C outside the handler's reach
        say("error", "interrupted")
        return Interrupted(signal.SIGINT).exit_code
    except Exception as err:  # noqa: BLE001 - never a traceback
        if os.environ.get("DEIDVID_DEBUG"):
            raise
        say("error", internal_error(err))
        return EXIT_PROCESSING


def _click_message(err: ClickException) -> str:
    """Click's message plus where to look, e.g. "No such option: --crf9 (see deidvid anonymise --help)"."""
    ctx = getattr(err, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return err.format_message() + where


app = typer.Typer(
    cls=OneLineErrors,
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


@app.command()  # readable=False: deidvid checks its inputs itself (one line, exit 3)
def verify(
    original: Annotated[Path, typer.Argument(help="The original video.", show_default=False, readable=False)],
    deidentified: Annotated[Path, typer.Argument(help="Its de-identified version.", show_default=False, readable=False)],
    ppg: Annotated[Path | None, typer.Option(help="Contact PPG: UBFC ground_truth.txt or CSV (time, ppg).", readable=False)] = None,
    gallery: Annotated[Path | None, typer.Option(help="Gallery folder, one sub-folder of images per identity.", readable=False)] = None,
    methods: Annotated[str, typer.Option(help="rPPG methods, first is primary: pos,chrom,green,physnet (physnet needs the open-rppg wheel).")] = "pos,chrom,green,physnet",
    windows: Annotated[str, typer.Option(help="HR window lengths in seconds, first is primary.")] = "10,30",
    band: Annotated[str, typer.Option(help="Pulse band in Hz (rPPG-Toolbox: 0.75,2.5).")] = "0.75,2.5",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    max_match_rate: Annotated[float | None, typer.Option(help="Gate: exit 1 if any recogniser's match rate is above.")] = None,
    max_hr_mae: Annotated[float | None, typer.Option(help="Gate: exit 1 if HR MAE (bpm) is above.")] = None,
    min_pearson: Annotated[float | None, typer.Option(help="Gate: exit 1 if pulse waveform Pearson r is below.")] = None,
    min_psnr: Annotated[float | None, typer.Option(help="Gate: exit 1 if face-crop PSNR (dB) is below.")] = None,
    max_hr_diff_toolbox: Annotated[float | None, typer.Option(help="Gate: exit 1 if rPPG-Toolbox's default path (Haar, 72x72, POS/CHROM) gives HRs of the two videos further apart (bpm).")] = None,
    min_haar_rate: Annotated[float | None, typer.Option(help="Gate: exit 1 if OpenCV's Haar cascade finds the de-identified face in fewer sampled frames.")] = None,
    min_expression_r: Annotated[float | None, typer.Option(help="Gate: exit 1 if an expression or head-pose signal correlates less (Pearson r).")] = None,
    skip: Annotated[str, typer.Option(help="Measurements to leave out, to save time: toolbox, expression, temporal (comma-separated).")] = "",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every number as JSON ('-' for stdout).", readable=False)] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Also write one self-contained HTML page (images inlined, viewable offline): frames side by side, pulse waveforms and HR per window, identity distance per frame against the thresholds, expression signals, the summary and the gates. Needs matplotlib.", readable=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tables; errors and gate failures only.")] = False,
) -> None:
    """Report pulse preservation, identity and quality of a de-identified video."""
    from deidvid.verify.run import gate_checks, report_tables, verify_videos_with_series

    def build() -> VerifyOptions:
        check_gates(max_match_rate, max_hr_mae, min_pearson, min_psnr)
        check_range(max_hr_diff_toolbox, "--max-hr-diff-toolbox", 0.0)
        check_range(min_haar_rate, "--min-haar-rate", 0.0, 1.0)
        check_range(min_expression_r, "--min-expression-r", -1.0, 1.0)
        skipped = _parse_skip(skip)
        for option, value, needs in (
            ("--max-hr-diff-toolbox", max_hr_diff_toolbox, "toolbox"),
            ("--min-haar-rate", min_haar_rate, "toolbox"),
            ("--min-expression-r", min_expression_r, "expression"),
        ):
            if value is not None and needs in skipped:
                raise UsageError(f"{option} gates a measurement that --skip {needs} leaves out")
        options = _verify_options(methods, windows, band, device, ppg, gallery, skipped)
        inputs = [original, deidentified, *([ppg] if ppg is not None else [])]
        _check_html_option(html_path)
        check_no_overlap(inputs, written_paths([], json_path, html_path))
        check_report_path(json_path)
        check_report_path(html_path, "--html")
        _check_band_for(original, options.band_hz)
        return options

    options, message, code = run_guarded(build)
    if message:
        fail(message, code)
    result, message, code = run_guarded(verify_videos_with_series, original, deidentified, options)
    if message:
        fail(message, code)
    report, series = result
    checks = gate_checks(
        report, max_match_rate, max_hr_mae, min_pearson, min_psnr, max_hr_diff_toolbox, min_haar_rate, min_expression_r
    )
    failures = [f for f in (check.failure() for check in checks) if f is not None]
    status = EXIT_GATE_FAILED if failures else EXIT_OK
    if json_path is not None:
        payload = report.to_dict()
        payload["gates"] = {"failed": failures, "passed": not failures}
        status = max(status, write_report(json_path, payload))
    if html_path is not None:
        status = max(status, _write_html(html_path, report, series, checks))
    if not quiet:
        console = table_console(json_path)
        for table in report_tables(report):
            console.print(table)
    for w in report.warnings:
        say("warning", w, deidentified)
    for f in failures:
        say("gate failed", f, deidentified)
    raise typer.Exit(status)


SKIPPABLE = ("toolbox", "expression", "temporal")


def _check_html_option(path: Path | None) -> None:
    """``--html FILE``: a file name (not stdout), and matplotlib installed (found, not imported)."""
    if path is None:
        return
    if str(path) == "-":
        raise UsageError("--html needs a file name (the page does not go to stdout)")
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--html needs matplotlib: pip install 'matplotlib>=3.7'")


def _write_html(path: Path, report: VerifyReport, series: VerifySeries, checks: Sequence[GateCheck]) -> int:
    """Write the ``--html`` page (atomically); returns the exit code. A failure now (disk
    full, folder removed, a plotting error) is one line and exit 4, never 1 (a failed gate)."""
    from deidvid.io.decode import os_reason
    from deidvid.verify.html import write_html

    try:
        write_html(path, report, series, checks)
    except OSError as err:
        say("error", f"cannot write the --html report ({os_reason(err)})", path)
        return EXIT_PROCESSING
    except Exception as err:  # noqa: BLE001 - never a traceback
        if os.environ.get("DEIDVID_DEBUG"):
            raise
        say("error", f"cannot write the --html report ({internal_error(err)})", path)
        return EXIT_PROCESSING
    return EXIT_OK


def _parse_skip(text: str) -> set[str]:
    """``--skip``: a comma-separated subset of :data:`SKIPPABLE` (UsageError otherwise)."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(SKIPPABLE))
    if unknown:
        raise UsageError(f"--skip: unknown measurement {', '.join(unknown)}; choose from {', '.join(SKIPPABLE)}")
    return names


def _verify_options(
    methods: str, windows: str, band: str, device: str, ppg: Path | None, gallery: Path | None,
    skipped: set[str] | frozenset[str] = frozenset(),
) -> VerifyOptions:
    """verify's options, checked: every problem is a UsageError (exit 2)."""
    from deidvid.verify.options import VerifyOptions

    options = VerifyOptions(
        methods=parse_methods(methods), windows_s=parse_windows(windows), band_hz=parse_band(band),
        device=resolve_device(device), ppg=ppg, gallery=gallery,
        **{name: name not in skipped for name in SKIPPABLE},
    )
    try:
        options.check()
    except ValueError as err:  # unknown --methods, a deep method first, ...
        raise UsageError(f"--methods: {err}") from None
    return options


def _check_band_for(original: Path, band_hz: tuple[float, float]) -> None:
    """The band must fit the original's frame rate (probe: one frame decoded)."""
    from deidvid.io.decode import probe

    check_band_fits(band_hz, float(probe(original).fps))


app.add_typer(bench_app, name="bench")
app.add_typer(models_app, name="models")
app.command(
    "train", context_settings=PASS_THROUGH,
    help="Train the de-identification autoencoder (deidvid train --help for options).",
)(train_command)


if __name__ == "__main__":
    app()
