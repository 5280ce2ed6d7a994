"""``deidvid verify --html``: the report as one self-contained page for people.

One HTML file, no scripts, no external resources (viewable offline, safe to mail): the
frames are JPEG and the plots PNG images inlined as ``data:`` URIs, the style sheet is
inline. Sections:

* **Summary and gates**: :func:`deidvid.verify.tables.summary_table`'s numbers, then each
  requested gate with its value, limit and pass / FAIL; rPPG-Toolbox's HRs.
* **Frames**: :data:`~deidvid.verify.series.SNAPSHOT_COUNT` evenly spaced frames,
  original | de-identified, scaled to at most 320 pixels wide.
* Per face track: **Pulse** (the primary method's waveforms of both videos overlaid, per
  window of the primary length, each detrended and band-passed as the comparison does and
  scaled to unit standard deviation; HR per window of both videos for every method),
  **Identity** (each recogniser's distance per sampled frame with its LFW-accuracy
  threshold and, when calibrated, its FAR 1e-3 threshold), **Expression and pose** (each
  signal of both videos overlaid), each with the track's table.
* **Warnings**.

matplotlib (Agg, through its object-oriented API: no pyplot, no global backend) draws
the plots; it is imported here only, and this module only for ``--html``, so verify's
start-up does not pay for it. A 30 s video's page is a few hundred KB (tested: under 5 MB).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deidvid.verify.tables import (
    expression_table,
    fmt,
    identity_table,
    pulse_table,
    summary_table,
    toolbox_table,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

    from deidvid.measure.pulse import TrackPulses
    from deidvid.verify.report import FaceSection, GateCheck, VerifyReport
    from deidvid.verify.series import FrameSnapshot, TrackSeries, VerifySeries

DPI = 80  # figure pixels per inch
FIGURE_WIDTH_IN = 9.0  # 720 pixels
JPEG_QUALITY = 85  # the snapshots
MAX_PULSE_WINDOWS = 12  # waveform panels per track (evenly chosen when there are more)
ORIGINAL_COLOUR = "#1f77b4"
DEID_COLOUR = "#d62728"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 980px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; } h3 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f2f2f2; } caption { caption-side: bottom; font-size: 0.85em; color: #555; text-align: left; }
.pass { color: #17692f; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.frames { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em 1em; }
figure { margin: 0.6em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; height: auto; } .paths { font-family: monospace; word-break: break-all; }
"""


# ---- images -------------------------------------------------------------------------


def png_data_uri(figure: Figure) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (no software metadata)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def jpeg_data_uri(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    """An ``(H, W, 3)`` uint8 RGB image as a ``data:image/jpeg;base64,...`` URI."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a {rgb.shape} image as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def new_figure(rows: int, columns: int, row_height_in: float, sharex: bool = True) -> tuple[Figure, np.ndarray]:
    """An Agg figure :data:`FIGURE_WIDTH_IN` wide with a ``(rows, columns)`` grid of axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(FIGURE_WIDTH_IN, max(row_height_in * rows, 1.5)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, sharex=sharex, squeeze=False)
    return figure, axes


def plot_image(figure: Figure, alt: str, caption: str = "") -> str:
    """``<figure>`` with the plot inlined (and its caption)."""
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{png_data_uri(figure)}" alt="{escape(alt)}">{text}</figure>'


def _legend(figure: Figure, axes: np.ndarray) -> None:
    """One legend above the panels, each label once (panels share their styles)."""
    entries: dict[str, Any] = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    figure.legend(list(entries.values()), list(entries), loc="outside upper center", ncols=len(entries), fontsize=8,
                  frameon=False)


def _finished(axes: np.ndarray, used: int, xlabel: str) -> None:
    """Hide the grid cells past the ``used`` first and label the x axis of the bottom row."""
    flat = axes.ravel()
    for ax in flat[used:]:
        ax.set_visible(False)
    columns = axes.shape[1]
    for k in range(used):
        ax = flat[k]
        if k + columns >= used:  # nothing visible below it
            ax.set_xlabel(xlabel)
            ax.tick_params(labelbottom=True)


# ---- plots --------------------------------------------------------------------------


def chosen_windows(windows: Sequence[dict[str, Any]], limit: int = MAX_PULSE_WINDOWS) -> list[dict[str, Any]]:
    """At most ``limit`` of ``windows``, evenly spaced (all of them when there are few)."""
    if len(windows) <= limit:
        return list(windows)
    picks = np.unique(np.round(np.linspace(0, len(windows) - 1, limit)).astype(int))
    return [windows[k] for k in picks]


def _unit(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation (zeros for a constant signal)."""
    centred = x - x.mean()
    std = centred.std()
    return centred / std if std > 0 else centred


def pulse_waveform_figure(
    pulses: TrackPulses,
    method: str,
    windows: Sequence[dict[str, Any]],
    band_hz: tuple[float, float],
    detrend_lambda: float,
) -> Figure:
    """One panel per comparison window: ``method``'s pulse of both videos, each detrended and
    band-passed in the window as :func:`deidvid.rppg.compare.compare_pulses` does, scaled to
    unit standard deviation, with the window's HRs and waveform r in its title.

    Args:
        pulses: the track's waveforms (:func:`deidvid.measure.pulse.track_pulses`).
        method: which of them.
        windows: the report's windows (``start``, ``stop`` samples, ``hr_reference_bpm``
            = original, ``hr_test_bpm`` = de-identified, ``pearson``).
        band_hz, detrend_lambda: the comparison's filter.
    """
    from deidvid.rppg.hr import preprocess

    original, deidentified = pulses.methods[method]
    figure, axes = new_figure(len(windows), 1, 1.5, sharex=False)
    for ax, window in zip(axes[:, 0], windows):
        start, stop = int(window["start"]), int(window["stop"])
        times = pulses.start_s + np.arange(start, stop) / pulses.fs
        for signal, colour, label in ((original, ORIGINAL_COLOUR, "original"), (deidentified, DEID_COLOUR, "de-identified")):
            filtered = preprocess(signal[start:stop], pulses.fs, band_hz, detrend_lambda)
            ax.plot(times, _unit(filtered), color=colour, linewidth=1.0, label=label)
        ax.set_title(
            f"{times[0]:.1f}-{times[-1]:.1f} s: HR {fmt(window['hr_reference_bpm'], 1)} (original) / "
            f"{fmt(window['hr_test_bpm'], 1)} (de-identified) bpm, r {fmt(window.get('pearson'), 3)}",
            fontsize=9,
        )
        ax.set_yticks([])
        ax.set_xlim(times[0], times[-1])
    _legend(figure, axes)
    axes[-1, 0].set_xlabel("time (s)")
    return figure


def hr_figure(face_pulse: dict[str, Any], pulses: TrackPulses, window_key: str) -> Figure:
    """HR per window of both videos, one colour per rPPG method (solid: original, dashed:
    de-identified), at each window's middle."""
    from matplotlib import colormaps

    figure, axes = new_figure(1, 1, 2.8)
    ax = axes[0, 0]
    colours = colormaps["tab10"].colors
    for k, (method, entry) in enumerate(face_pulse["methods"].items()):
        comparison = entry["windows"].get(window_key) or entry["windows"].get("whole")
        if not comparison:
            continue
        windows = comparison["windows"]
        middles = [pulses.start_s + (w["start"] + w["stop"]) / 2 / pulses.fs for w in windows]
        colour = colours[k % len(colours)]
        ax.plot(middles, [w["hr_reference_bpm"] for w in windows], "o-", color=colour, label=f"{method.upper()} original")
        ax.plot(middles, [w["hr_test_bpm"] for w in windows], "x--", color=colour, label=f"{method.upper()} de-identified")
    ax.set_ylabel("HR (bpm)")
    ax.set_xlabel("window middle (s)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, ncols=2)
    return figure


def identity_figure(track: TrackSeries, identity: dict[str, Any]) -> Figure | None:
    """Per recogniser, the distance of each sampled frame pair (original vs de-identified)
    with the LFW-accuracy threshold (dashed) and the FAR 1e-3 one (dotted) when calibrated;
    below a threshold the de-identified face still matches. None without a scored frame."""
    names = [name for name, distances in track.identity_distances.items() if distances.size]
    if not names:
        return None
    columns = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / columns)
    figure, axes = new_figure(rows, columns, 2.2)
    times = track.identity_times
    for ax, name in zip(axes.ravel(), names):
        scores = identity.get(name, {})
        ax.plot(times, track.identity_distances[name], "o-", color=DEID_COLOUR, markersize=3, linewidth=1.0,
                label="distance, original vs de-identified")
        threshold, strict = scores.get("threshold"), scores.get("threshold_far1e3")
        title = f"{name}: match rate {fmt(scores.get('match_rate'), 3)}"
        if threshold is not None:
            ax.axhline(threshold, color="black", linestyle="--", linewidth=1.0, label="LFW-accuracy threshold")
        if strict is not None:
            ax.axhline(strict, color="grey", linestyle=":", linewidth=1.2, label="FAR 1e-3 threshold")
            title += f", {fmt(scores.get('match_rate_far1e3'), 3)} at FAR 1e-3"
        ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    _legend(figure, axes)
    _finished(axes, len(names), "time (s)")
    return figure


def expression_figure(track: TrackSeries, expression: dict[str, Any] | None) -> Figure | None:
    """Per expression / pose signal, both videos overlaid at the sampled frames, r in the
    title. None when expression was skipped or nothing was sampled."""
    if track.expression_original is None or track.expression_deidentified is None:
        return None
    names = list(track.expression_signals)
    if not names:
        return None
    columns = 2
    rows = math.ceil(len(names) / columns)
    figure, axes = new_figure(rows, columns, 1.7)
    for k, (ax, name) in enumerate(zip(axes.ravel(), names)):
        original, deidentified = track.expression_original[:, k], track.expression_deidentified[:, k]
        sampled = np.isfinite(original) | np.isfinite(deidentified)
        ax.plot(track.times[sampled], original[sampled], color=ORIGINAL_COLOUR, linewidth=1.0, label="original")
        ax.plot(track.times[sampled], deidentified[sampled], color=DEID_COLOUR, linewidth=1.0, linestyle="--",
                label="de-identified")
        r = ((expression or {}).get(name) or {}).get("r")
        unit = " (deg)" if name in ("yaw", "pitch", "roll") else ""
        ax.set_title(f"{name}{unit}: r {fmt(r, 3)}", fontsize=9)
        ax.grid(alpha=0.3)
    _legend(figure, axes)
    _finished(axes, len(names), "time (s)")
    return figure


# ---- HTML ---------------------------------------------------------------------------


def rich_table_html(table: Table) -> str:
    """One of :mod:`deidvid.verify.tables`' rich tables as an HTML ``<table>`` (its title as
    the heading row, its caption below)."""
    columns = table.columns
    rows = zip(*(list(column.cells) for column in columns)) if columns else iter(())
    parts = ["<table>"]
    if table.caption:
        parts.append(f"<caption>{escape(str(table.caption))}</caption>")
    if table.title:
        parts.append(f'<tr><th colspan="{max(len(columns), 1)}">{escape(str(table.title))}</th></tr>')
    if table.show_header:
        parts.append("<tr>" + "".join(f"<th>{escape(str(c.header))}</th>" for c in columns) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def gates_html(gates: Sequence[GateCheck]) -> str:
    """The requested gates, one row each: value, limit, pass / FAIL."""
    if not gates:
        return "<p>No gates were requested (<code>--max-match-rate</code>, <code>--max-hr-mae</code>, ...).</p>"
    rows = []
    for gate in gates:
        verdict = '<td class="pass">pass</td>' if gate.passed else '<td class="fail">FAIL</td>'
        limit = f"{'at most' if gate.kind == 'max' else 'at least'} {gate.limit:g}"
        value = fmt(gate.value, 4) if gate.measured else "not measured"
        rows.append(f"<tr><td>{escape(gate.label)}</td><td>{escape(value)}</td><td>{escape(limit)}</td>{verdict}</tr>")
    failed = sum(not g.passed for g in gates)
    verdict = "every gate passed" if not failed else f"{failed} of {len(gates)} gates failed (exit code 1)"
    return (
        "<table><tr><th>gate</th><th>value</th><th>limit</th><th>result</th></tr>\n" + "\n".join(rows)
        + f"</table>\n<p><b>{escape(verdict)}</b></p>"
    )


def frames_html(snapshots: Sequence[FrameSnapshot]) -> str:
    """The snapshots, original | de-identified, one row per time."""
    if not snapshots:
        return "<p>No frames were kept.</p>"
    cells = []
    for shot in snapshots:
        when = f"frame {shot.index}, {shot.time_s:.2f} s"
        for label, rgb in (("original", shot.original), ("de-identified", shot.deidentified)):
            cells.append(
                f'<figure><img src="{jpeg_data_uri(rgb)}" alt="{label}, {when}">'
                f"<figcaption>{label}, {when}</figcaption></figure>"
            )
    return '<div class="frames">\n' + "\n".join(cells) + "\n</div>"


def primary_window_key(report: VerifyReport) -> str:
    """The report's key of the primary window (``"10"``; ``"whole"`` when none)."""
    window = report.summary.get("window_s")
    return "whole" if window is None else f"{window:g}"


def pulse_html(report: VerifyReport, face: FaceSection, track: TrackSeries | None) -> str:
    """A face track's pulse section: waveforms per window, HR per window, the pulse table."""
    pulse = face.get("pulse")
    if not pulse or track is None or track.pulse is None:
        return "<p>This face track is too short for pulse analysis.</p>"
    settings = report.settings
    band = tuple(settings.get("band_hz", (0.75, 2.5)))
    detrend_lambda = float(settings.get("detrend_lambda", 100.0))
    key = primary_window_key(report)
    method = report.summary["method"]
    parts = []
    entry = pulse["methods"].get(method)
    if entry is not None and method in track.pulse.methods:
        comparison = entry["windows"].get(key) or entry["windows"].get("whole")
        windows = comparison["windows"] if comparison else []
        shown = chosen_windows(windows)
        if shown:
            length = "the whole track" if comparison["summary"]["window_s"] is None else f"{key} s windows"
            note = f"; {len(shown)} of {len(windows)} windows shown" if len(shown) < len(windows) else ""
            figure = pulse_waveform_figure(track.pulse, method, shown, band, detrend_lambda)  # type: ignore[arg-type]
            parts.append(plot_image(
                figure, f"{method} pulse waveforms",
                f"{method.upper()} pulse over {length}, original (blue) and de-identified (red), each detrended, "
                f"band-passed {band[0]:g}-{band[1]:g} Hz and scaled to unit standard deviation{note}.",
            ))
    parts.append("<h4>Heart rate per window</h4>")
    parts.append(plot_image(
        hr_figure(pulse, track.pulse, key), "HR per window",
        "HR per window for each rPPG method: solid original, dashed de-identified.",
    ))
    parts.append(rich_table_html(pulse_table(face)))
    return "\n".join(parts)


def track_html(report: VerifyReport, face: FaceSection, track: TrackSeries | None) -> str:
    """One face track's section: pulse, identity, expression and pose."""
    tid = face["track_id"]
    parts = [
        f'<section id="track-{tid}"><h2>Face track {tid}</h2>',
        (
            f"<p>{face['frames']} frames from frame {face['start_frame']} "
            f"({face['interpolated_frames']} interpolated).</p>"
        ),
        "<h3>Pulse</h3>",
        pulse_html(report, face, track),
        "<h3>Identity</h3>",
    ]
    figure = identity_figure(track, face["identity"]) if track is not None else None
    if figure is not None:
        parts.append(plot_image(
            figure, "identity distance per sampled frame",
            "Distance between the embeddings of the original and the de-identified face at each sampled frame; "
            "below a threshold the recogniser still sees the same person.",
        ))
    parts.append(rich_table_html(identity_table(face)))
    parts.append("<h3>Expression and pose</h3>")
    figure = expression_figure(track, face.get("expression")) if track is not None else None
    if figure is not None:
        parts.append(plot_image(
            figure, "expression and pose signals",
            "Expression signals (per inter-ocular distance) and head pose at the sampled frames: original solid, "
            "de-identified dashed.",
        ))
    table = expression_table(face)
    parts.append(rich_table_html(table) if table is not None else "<p>Expression and temporal measures were skipped.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: VerifyReport, series: VerifySeries, gates: Sequence[GateCheck] = ()) -> str:
    """The whole page (see the module docstring).

    Args:
        report: what verify measured.
        series: the series behind it (:func:`deidvid.verify.run.verify_videos_with_series`).
        gates: the requested gates (:func:`deidvid.verify.report.gate_checks`).
    """
    from matplotlib import rc_context

    video = report.video
    version = (report.settings.get("versions") or {}).get("deidvid", "")
    title = f"deidvid verify: {Path(report.original).name} vs {Path(report.deidentified).name}"
    nav = ['<a href="#summary">Summary and gates</a>', '<a href="#frames">Frames</a>']
    nav += [f'<a href="#track-{f["track_id"]}">Face track {f["track_id"]}</a>' for f in report.faces]
    if report.warnings:
        nav.append('<a href="#warnings">Warnings</a>')
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        "<h1>deidvid verify</h1>",
        f'<p class="paths">original: {escape(report.original)}<br>de-identified: {escape(report.deidentified)}</p>',
        (
            f"<p>{video['width']}x{video['height']}, {video['frames']} frames at {video['fps']:.3f} fps, "
            f"{video['face_tracks']} face track(s); deidvid {escape(str(version))}, "
            f"{fmt(report.timings_s.get('total'), 1)} s.</p>"
        ),
        "<nav>" + " | ".join(nav) + "</nav>",
        '<section id="summary"><h2>Summary and gates</h2>',
        rich_table_html(summary_table(report)),
        "<h3>Gates</h3>",
        gates_html(gates),
    ]
    toolbox = toolbox_table(report)
    if toolbox is not None:
        parts += ["<h3>rPPG-Toolbox default path</h3>", rich_table_html(toolbox)]
    parts += [
        "</section>",
        '<section id="frames"><h2>Frames: original | de-identified</h2>',
        frames_html(series.snapshots),
        "</section>",
    ]
    with rc_context({"font.size": 8}):
        for face in report.faces:
            parts.append(track_html(report, face, series.track(face["track_id"])))
    if report.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in report.warnings)
        parts.append(f'<section id="warnings"><h2>Warnings</h2><ul>{items}</ul></section>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(path: Path, report: VerifyReport, series: VerifySeries, gates: Sequence[GateCheck] = ()) -> None:
    """Render the page and write it atomically (a temporary beside ``path``, renamed over it).

    Raises:
        OSError: the write failed; ``path`` is unchanged.
    """
    from deidvid.io.atomic import write_text

    write_text(Path(path), render_html(report, series, gates))
