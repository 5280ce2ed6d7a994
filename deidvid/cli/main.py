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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from deidvid import __version__
from deidvid.batch.manifest import MANIFEST_NAME
from deidvid.cli.anonymise import anonymise
from deidvid.cli.common import (
    fail,
    resolve_device,
    say,
    table_console,
    write_report,
    write_report_text,
)
from deidvid.cli.options import (
    check_gates,
    check_range,
    parse_band,
    parse_methods,
    parse_windows,
)
from deidvid.cli.paths import (
    STDOUT,
    Written,
    check_no_overlap,
    check_report_path,
    written_paths,
)
from deidvid.cli.signals import interrupts_unwind
from deidvid.cli.tools import PASS_THROUGH, bench_app, models_app, train_command
from deidvid.errors import (
    EXIT_GATE_FAILED,
    EXIT_OK,
    EXIT_PROCESSING,
    EXIT_USAGE,
    Interrupted,
    UsageError,
    internal_error,
    run_guarded,
)

if TYPE_CHECKING:
    from deidvid.verify.batch import Pair, PairResult
    from deidvid.verify.options import GateLimits, VerifyOptions
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
    original: Annotated[Path | None, typer.Argument(metavar="ORIGINAL", help="The original video, or a folder of originals (searched recursively).", show_default=False, readable=False)] = None,
    deidentified: Annotated[Path | None, typer.Argument(metavar="DEIDENTIFIED", help="Its de-identified version, or the folder of de-identified videos (the same relative path, the name anonymise --out-dir gives, or NAME.deid.EXT).", show_default=False, readable=False)] = None,
    manifest: Annotated[Path | None, typer.Option(help=f"Verify every pair an anonymise batch wrote: its {MANIFEST_NAME} (or its --out-dir), instead of ORIGINAL DEIDENTIFIED.", show_default=False, readable=False)] = None,
    workers: Annotated[int | None, typer.Option(help="Batch: pairs verified at once, each worker with an equal share of the cores (default: one per core, as many as fit in available memory at 1.5 GB each, at most one per pair).", show_default=False)] = None,
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
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every number as JSON ('-' for stdout); a batch writes every pair's in one object.", readable=False)] = None,
    jsonl_path: Annotated[Path | None, typer.Option("--jsonl", help="Batch: one JSON line per pair (paths, status ok | gate_failed | error, error, exit code, gates, report; '-' for stdout).", readable=False)] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Also write one self-contained HTML page (images inlined, viewable offline): frames side by side, pulse waveforms and HR per window, identity distance per frame against the thresholds, expression signals, the summary and the gates. Needs matplotlib. One pair only.", readable=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tables; errors and gate failures only.")] = False,
) -> None:
    """Report pulse preservation, identity and quality of a de-identified video, or of every
    pair in two folders or a run manifest (one JSON line per pair, a summary table)."""
    from deidvid.verify.options import GateLimits

    batch, message, code = run_guarded(_is_batch, original, deidentified, manifest)
    if message:
        fail(message, code)
    limits = GateLimits(max_match_rate, max_hr_mae, min_pearson, min_psnr, max_hr_diff_toolbox, min_haar_rate, min_expression_r)
    options, message, code = run_guarded(_checked_options, limits, skip, methods, windows, band, device, ppg, gallery)
    if message:
        fail(message, code)
    if batch:
        paths = _BatchPaths(original, deidentified, manifest, json_path, jsonl_path)
        raise typer.Exit(_verify_batch(paths, options, limits, workers, html_path, quiet))
    _verify_one(original, deidentified, options, limits, json_path, jsonl_path, html_path, quiet)  # type: ignore[arg-type]


def _is_batch(original: Path | None, deidentified: Path | None, manifest: Path | None) -> bool:
    """Whether the arguments ask for a batch (two folders, or ``--manifest``) rather than one
    pair of videos; UsageError for any other mix."""
    from deidvid.batch.discover import _is_folder

    given = [p for p in (original, deidentified) if p is not None]
    if manifest is not None:
        if given:
            raise UsageError("--manifest names the pairs: give no ORIGINAL or DEIDENTIFIED with it")
        return True
    if len(given) < 2:
        raise UsageError("verify needs ORIGINAL and DEIDENTIFIED (two videos or two folders), or --manifest FILE")
    folders = [p for p in given if _is_folder(p)]
    if len(folders) == 1:
        raise UsageError(f"{folders[0]} is a folder but the other argument is not: give two videos or two folders")
    return len(folders) == 2


def _checked_options(
    limits: GateLimits, skip: str, methods: str, windows: str, band: str, device: str, ppg: Path | None, gallery: Path | None,
) -> VerifyOptions:
    """The options every verify run checks first (gates, --skip, methods, windows, band, device)."""
    check_gates(limits.max_match_rate, limits.max_hr_mae, limits.min_pearson, limits.min_psnr)
    check_range(limits.max_hr_diff_toolbox, "--max-hr-diff-toolbox", 0.0)
    check_range(limits.min_haar_rate, "--min-haar-rate", 0.0, 1.0)
    check_range(limits.min_expression_r, "--min-expression-r", -1.0, 1.0)
    skipped = _parse_skip(skip)
    for option, value, needs in (
        ("--max-hr-diff-toolbox", limits.max_hr_diff_toolbox, "toolbox"),
        ("--min-haar-rate", limits.min_haar_rate, "toolbox"),
        ("--min-expression-r", limits.min_expression_r, "expression"),
    ):
        if value is not None and needs in skipped:
            raise UsageError(f"{option} gates a measurement that --skip {needs} leaves out")
    return _verify_options(methods, windows, band, device, ppg, gallery, skipped)


def _verify_one(
    original: Path, deidentified: Path, options: VerifyOptions, limits: GateLimits,
    json_path: Path | None, jsonl_path: Path | None, html_path: Path | None, quiet: bool,
) -> None:
    """One pair of videos: tables, ``--json``, ``--html``, gates; exits with the code."""
    from deidvid.verify.batch import check_band_for
    from deidvid.verify.options import gate_messages
    from deidvid.verify.run import report_tables, verify_videos_with_series

    def build() -> None:
        if jsonl_path is not None:
            raise UsageError("--jsonl writes one line per pair of a batch: give two folders or --manifest")
        inputs = [original, deidentified, *([options.ppg] if options.ppg is not None else [])]
        _check_html_option(html_path)
        check_no_overlap(inputs, written_paths([], json_path, html_path))
        check_report_path(json_path)
        check_report_path(html_path, "--html")
        check_band_for(original, options.band_hz)

    _, message, code = run_guarded(build)
    if message:
        fail(message, code)
    result, message, code = run_guarded(verify_videos_with_series, original, deidentified, options)
    if message:
        fail(message, code)
    report, series = result
    checks = limits.checks(report)
    failures = gate_messages(checks)
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


@dataclass(frozen=True)
class _BatchPaths:
    """Where a batch's pairs come from (two folders or a manifest) and its reports go."""

    originals: Path | None
    deidentified: Path | None
    manifest: Path | None
    json: Path | None
    jsonl: Path | None


def _verify_batch(
    paths: _BatchPaths, options: VerifyOptions, limits: GateLimits, workers: int | None, html_path: Path | None,
    quiet: bool,
) -> int:
    """Every pair of two folders or a manifest: errors, warnings and gate failures as each
    pair finishes, then ``--jsonl`` / ``--json`` and the summary table; returns the exit code."""
    from deidvid.verify.batch import batch_table, run_pairs, worst_exit_code

    pairs, message, code = run_guarded(_plan_pairs, paths, options, workers, html_path)
    if message:
        fail(message, code)

    def tell(result: PairResult) -> None:
        if result.error is not None:
            say("error", result.error, result.original)
        for w in result.warnings:
            say("warning", w, result.deidentified)
        for f in result.failures:
            say("gate failed", f, result.deidentified)

    results, used = run_pairs(pairs, options, limits, workers, tell)
    status = worst_exit_code(results)
    if paths.jsonl is not None:
        status = max(status, _write_jsonl(paths.jsonl, results))
    if paths.json is not None:
        status = max(status, write_report(paths.json, _batch_payload(results, limits, used, status)))
    if not quiet:
        console = table_console(paths.json if paths.json is not None and str(paths.json) == STDOUT else paths.jsonl)
        console.print(batch_table(pairs, results, limits, options.primary_method))
    return status


def _plan_pairs(paths: _BatchPaths, options: VerifyOptions, workers: int | None, html_path: Path | None) -> list[Pair]:
    """The batch's pairs, after the checks a batch makes before any work (options that take
    one pair, --workers, the reports' paths)."""
    from deidvid.verify.batch import pair_folders, pair_paths, pairs_from_manifest

    if html_path is not None:
        raise UsageError("--html draws one pair: verify the pair alone for its page")
    if options.ppg is not None:
        raise UsageError("--ppg belongs to one video: verify that pair alone with it")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be >= 1, not {workers}")
    if paths.json is not None and paths.jsonl is not None and str(paths.json) == str(paths.jsonl) == STDOUT:
        raise UsageError("--json and --jsonl cannot both go to stdout")
    if paths.manifest is not None:
        pairs, unreadable = pairs_from_manifest(paths.manifest)
        if unreadable:
            say("warning", f"{unreadable} unreadable line(s) skipped", paths.manifest)
    else:
        pairs = pair_folders(paths.originals, paths.deidentified)  # type: ignore[arg-type]
    written = written_paths([], paths.json)
    if paths.jsonl is not None and str(paths.jsonl) != STDOUT:
        written.append(Written(paths.jsonl, "--jsonl report"))
    check_no_overlap(pair_paths(pairs), written)
    check_report_path(paths.json)
    check_report_path(paths.jsonl, "--jsonl")
    return pairs


def _write_jsonl(path: Path, results: Sequence[PairResult]) -> int:
    """Write the ``--jsonl`` file (atomically, or to stdout for '-'); returns the exit code."""
    from deidvid.verify.batch import jsonl_text

    return write_report_text(path, jsonl_text(results), "--jsonl")


def _batch_payload(results: Sequence[PairResult], limits: GateLimits, workers: int, status: int) -> dict[str, Any]:
    """The batch's ``--json`` object: how it ran, the gates, and every pair's JSON line."""
    from deidvid.verify.batch import status_counts
    from deidvid.verify.report import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION, "deidvid_version": __version__,
        "batch": {"pairs": len(results), "workers": workers, "statuses": status_counts(results), "exit_code": status,
                  "gates": limits.requested()},
        "pairs": [r.entry() for r in results],
    }


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


app.add_typer(bench_app, name="bench")
app.add_typer(models_app, name="models")
app.command(
    "train", context_settings=PASS_THROUGH,
    help="Train the de-identification autoencoder (deidvid train --help for options).",
)(train_command)


if __name__ == "__main__":
    app()
