"""Benchmarks: ``deidvid bench anonymise`` (throughput and peak memory against deface and
against the decode+encode floor), ``deidvid bench cold-start`` and ``deidvid bench batch``.

Every configuration runs as its own process, several times, the configurations taken in
turn round after round (so a slow minute of this shared machine falls on all of them); we
report the median wall time, frames per second and peak resident memory (``ru_maxrss``
of that very process, from ``os.wait4``), and ratios against the baseline measured in
the same rounds, so machine load cancels out as far as it can.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from deidvid.errors import UsageError

FPS = 30
COLD_START_FRAMES = 6
# The profile's row for the part of ``total`` that no stage timer covers.
UNSTAGED = "not in a stage"


@dataclass(frozen=True)
class Measurement:
    name: str
    frames: int
    seconds: list[float]
    peak_mib: list[float]
    cpu_s: list[float]  # user + system CPU seconds of each run

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def fps(self) -> float:
        return self.frames / self.median_s

    @property
    def median_peak_mib(self) -> float:
        return statistics.median(self.peak_mib)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_s)


class RunUsage(NamedTuple):
    wall_s: float
    peak_mib: float  # peak RSS of the process (its children not included)
    cpu_s: float  # user + system CPU seconds: less sensitive than wall time to other tenants' load


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> RunUsage:
    """Run ``cmd``; return its wall time, peak RSS and CPU time."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    return RunUsage(seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime)  # Linux: ru_maxrss in KiB


def measure_in_turn(
    commands: dict[str, list[str]], frames: int, runs: int, env: dict[str, str] | None = None, warmup: int = 0
) -> list[Measurement]:
    """``runs`` rounds, each running every command once in order (after ``warmup`` untimed
    rounds): one :class:`Measurement` per command, its ``seconds`` in round order."""
    for _ in range(warmup):
        for cmd in commands.values():
            run_measured(cmd, env)
    usages: dict[str, list[RunUsage]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            usages[name].append(run_measured(cmd, env))
    return [
        Measurement(name, frames, [u.wall_s for u in us], [u.peak_mib for u in us], [u.cpu_s for u in us])
        for name, us in usages.items()
    ]


def paired_ratio(m: Measurement, baseline: Measurement) -> float:
    """Median over rounds of ``m``'s time per frame / ``baseline``'s in the same round."""
    return statistics.median((s / m.frames) / (b / baseline.frames) for s, b in zip(m.seconds, baseline.seconds))


def deidvid_cmd(video: Path, out: Path, variant: str, extra: list[str] | None = None) -> list[str]:
    """The CLI call for a method variant: ``blur``, ``blur:no-keep-pulse``, ``blur:qp20``
    (:func:`deidvid.tools.evaluate.parse_variant`)."""
    from deidvid.tools.evaluate import parse_variant

    chosen = parse_variant(variant)
    return [
        sys.executable, "-m", "deidvid", "anonymise", str(video), "-o", str(out),
        "--method", chosen.method, "--device", "cpu", "--quiet", "--overwrite", *chosen.cli_flags(), *(extra or []),
    ]


def deface_cmd(deface: str, video: Path, out: Path) -> list[str]:
    # deface's defaults: CenterFace, threshold 0.2, blur, full resolution.
    return [deface, str(video), "-o", str(out)]


def floor_cmd(video: Path, out: Path) -> list[str]:
    """Decode and encode every frame unchanged with deidvid's reader and writer (:mod:`deidvid.tools.floor`)."""
    return [sys.executable, "-m", "deidvid.tools.floor", str(video), str(out)]


def make_bench_video(
    path: Path, seconds: float, size: tuple[int, int] = (1280, 720), fps: int = FPS, faces: int = 1
) -> Path:
    """A synthetic video of one or two faces (the project's astronaut generator)."""
    from deidvid.testing.synthetic_video import make_face_video

    return make_face_video(path, n_frames=int(round(seconds * fps)), fps=fps, size=size, audio=True, crf=18, faces=faces)


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080)."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 16 and int(height) >= 16):
        raise UsageError(f"size must be WIDTHxHEIGHT, at least 16x16 (e.g. 1920x1080), got {text!r}")
    return int(width), int(height)


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [head, ["---"] * len(head), *rows])


def _runs(m: Measurement, digits: int = 1) -> str:
    return ", ".join(f"{s:.{digits}f}" for s in m.seconds)


def format_table(rows: list[Measurement], baseline: Measurement | None, floor: Measurement | None = None) -> str:
    """Medians (wall and CPU seconds), frames/s and peak memory per row; with ``floor``, also each row's time per frame
    against the floor's; ratios are medians of the per-round ratios (:func:`paired_ratio`)
    where both rows ran in the same rounds, else ratios of the medians."""
    head = ["run", "frames", "median s", "CPU s", "frames/s", "peak MiB", "runs (s)"] + (["x floor time"] if floor else []) + ["x baseline fps"]
    lines = []
    for m in rows:
        cells = [m.name, str(m.frames), f"{m.median_s:.1f}", f"{m.median_cpu_s:.1f}", f"{m.fps:.2f}", f"{m.median_peak_mib:.0f}", _runs(m)]
        if floor:
            cells.append(f"{_ratio(m, floor):.2f}")
        lines.append([*cells, f"{1.0 / _ratio(m, baseline):.2f}" if baseline else "-"])
    return markdown_table(head, lines)


def _ratio(m: Measurement, baseline: Measurement) -> float:
    """``m``'s time per frame over ``baseline``'s: paired by round when both have the same rounds."""
    if len(m.seconds) == len(baseline.seconds):
        return paired_ratio(m, baseline)
    return (m.median_s / m.frames) / (baseline.median_s / baseline.frames)


def format_profile(profiles: dict[str, tuple[dict[str, float], float]]) -> str:
    """Per-stage seconds and share of ``total`` per run (name -> (report's ``timings_s``, process
    wall seconds)), largest first in the first run; ``not in a stage`` is what no stage timer
    covers, so the rows above ``total`` add up to it; the process row adds start-up and imports."""
    first = next(iter(profiles.values()))[0]
    stages = sorted({k for t, _ in profiles.values() for k in t if k != "total"}, key=lambda k: (-first.get(k, 0.0), k))
    head = ["stage"] + [f"{name} {unit}" for name in profiles for unit in ("s", "share")]
    rows = []
    for stage in [*stages, UNSTAGED, "total"]:
        cells = [stage]
        for timings, _ in profiles.values():
            staged = sum(v for k, v in timings.items() if k != "total")
            seconds = timings["total"] - staged if stage == UNSTAGED else timings.get(stage, 0.0)
            cells += [f"{seconds:.3f}", f"{100 * seconds / timings['total']:.1f} %"]
        rows.append(cells)
    rows.append(["whole process (start-up and imports too)"] + [c for _, wall in profiles.values() for c in (f"{wall:.3f}", "-")])
    return markdown_table(head, rows)


def profile_methods(video: Path, tmp_path: Path, methods: tuple[str, ...], env: dict[str, str] | None = None) -> str:
    """One more run of each method with ``--json``: the per-stage table of the reports' ``timings_s``."""
    profiles = {}
    report = tmp_path / "report.json"
    for method in methods:
        usage = run_measured(deidvid_cmd(video, tmp_path / "p.mp4", method, ["--json", str(report)]), env)
        profiles[method] = (json.loads(report.read_text())["videos"][0]["timings_s"], usage.wall_s)
    return format_profile(profiles)


def bench_anonymise(
    runs: int = 3,
    seconds: float = 10.0,
    methods: tuple[str, ...] = ("blur",),
    deface: str | None = None,
    long_seconds: float = 0.0,
    workdir: Path | None = None,
    threads: int | None = None,
    size: tuple[int, int] = (1280, 720),
    faces: int = 1,
    profile: bool = False,
) -> str:
    """Throughput on a synthetic video (default 720p, one face); optional deface reference,
    long-video memory and per-stage profile.

    The decode+encode floor (:mod:`deidvid.tools.floor`) is always timed; the first method
    is also timed detecting every frame and on the long video; the baseline of the fps
    ratios is deface when given, else the first method. ``profile``: after the timed runs,
    one more run of each method with ``--json`` and a table of its stage timings.
    """
    with tempfile.TemporaryDirectory(prefix="deidvid-bench-", dir=workdir) as tmp:
        tmp_path = Path(tmp)
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        video = make_bench_video(tmp_path / "bench.mp4", seconds, size=size, faces=faces)
        frames = int(round(seconds * FPS))
        commands = {}
        if deface:
            commands["deface 1.5.0 (reference)"] = deface_cmd(deface, video, tmp_path / "deface.mp4")
        commands["decode + encode floor (no faces)"] = floor_cmd(video, tmp_path / "floor.mp4")
        first = methods[0]
        for method in methods:
            commands[f"deidvid {method} (detect every 3)"] = deidvid_cmd(video, tmp_path / "o.mp4", method)
        commands[f"deidvid {first} (detect every frame)"] = deidvid_cmd(video, tmp_path / "o1.mp4", first, ["--detect-every", "1"])
        rows = measure_in_turn(commands, frames, runs, env)
        floor = rows[1] if deface else rows[0]
        baseline = rows[0] if deface else rows[1]  # deface, else the first method (after the floor)
        if long_seconds:
            long_video = make_bench_video(tmp_path / "long.mp4", long_seconds, size=size, faces=faces)
            name = f"deidvid {first}, {long_seconds:.0f} s video"
            rows += measure_in_turn({name: deidvid_cmd(long_video, tmp_path / "l.mp4", first)}, int(round(long_seconds * FPS)), 1, env)
        caption = (
            f"{size[0]}x{size[1]}, {faces} face{'s' if faces > 1 else ''}, {frames} frames, median of {runs} run(s) taken in turn; "
            "ratios are medians of the per-round ratios:"
        )
        text = f"{caption}\n\n{format_table(rows, baseline, floor)}"
        if profile:
            text += f"\n\nStage timings (one more run each, the report's timings_s):\n\n{profile_methods(video, tmp_path, methods, env)}"
        return text


def bench_cold_start(runs: int = 5, size: tuple[int, int] = (1280, 720), workdir: Path | None = None) -> str:
    """Wall time of ``deidvid anonymise`` (blur) of a 6-frame one-face clip, a fresh process
    each run, with and without the identity check, against ``python -c "import torch"``
    timed in the same rounds (:func:`measure_in_turn`); median of ``runs`` after a warm-up round."""
    with tempfile.TemporaryDirectory(prefix="deidvid-bench-cold-", dir=workdir) as tmp:
        tmp_path = Path(tmp)
        video = make_bench_video(tmp_path / "cold.mp4", COLD_START_FRAMES / FPS, size=size)
        out = tmp_path / "o.mp4"
        commands = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "deidvid anonymise, blur": deidvid_cmd(video, out, "blur"),
            "deidvid anonymise, blur, --no-identity-check": deidvid_cmd(video, out, "blur", ["--no-identity-check"]),
        }
        rows = measure_in_turn(commands, COLD_START_FRAMES, runs, warmup=1)
    head = ["run", "median s", "peak MiB", "runs (s)", "x import torch time"]
    lines = [[m.name, f"{m.median_s:.2f}", f"{m.median_peak_mib:.0f}", _runs(m, 2), f"{paired_ratio(m, rows[0]):.2f}"] for m in rows]
    caption = f"{size[0]}x{size[1]}, {COLD_START_FRAMES} frames, one face, median of {runs} run(s) taken in turn after a warm-up round:"
    return f"{caption}\n\n{markdown_table(head, lines)}"


def tracking_agreement(video: Path, detect_every: int) -> dict[str, float]:
    """How far landmark tracking between detections strays from detecting every frame.

    Returns face-frames found by each setting and the median / 95th-percentile
    landmark distance between them, in units of the inter-ocular distance.
    """
    import numpy as np

    from deidvid.io.decode import probe
    from deidvid.faces.find import FaceFinding, analyse_video
    from deidvid.timing import StageTimer

    info = probe(video)
    runs = {}
    for every in (1, detect_every):
        timer = StageTimer()
        runs[every] = (analyse_video(video, FaceFinding(detect_every=every), info=info, timer=timer), timer)
    dense, sparse = runs[1][0], runs[detect_every][0]
    errors = []
    for t in dense.tracks:
        for f in range(t.start, t.end):
            ref = t.at(f)
            iod = float(np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0)))
            best = min(
                (float(np.abs(o.at(f) - ref).mean()) for o in sparse.tracks if o.covers(f)), default=np.inf
            )
            errors.append(best / max(iod, 1e-6))
    errors_arr = np.array(errors)
    found = errors_arr[np.isfinite(errors_arr)]
    return {
        "face_frames_every_1": float(sum(len(t.landmarks) for t in dense.tracks)),
        f"face_frames_every_{detect_every}": float(sum(len(t.landmarks) for t in sparse.tracks)),
        "tracks_every_1": float(len(dense.tracks)),
        f"tracks_every_{detect_every}": float(len(sparse.tracks)),
        "missed_face_frames": float((~np.isfinite(errors_arr)).sum()),
        "median_error_iod": float(np.median(found)) if found.size else float("nan"),
        "p95_error_iod": float(np.percentile(found, 95)) if found.size else float("nan"),
        "analyse_s_every_1": sum(runs[1][1].seconds.values()),
        f"analyse_s_every_{detect_every}": sum(runs[detect_every][1].seconds.values()),
    }


def bench_batch(
    clips: int = 8,
    seconds: float = 3.0,
    workers: tuple[int, ...] = (1, 2),
    runs: int = 3,
    method: str = "blur",
    workdir: Path | None = None,
) -> str:
    """Wall time of one batch (``clips`` one-face 640x360 videos in a folder) per ``--workers``
    setting, each a fresh process (model loading included), the settings taken in turn run
    after run so that machine load falls on all of them; ratios against the first setting."""
    with tempfile.TemporaryDirectory(prefix="deidvid-bench-batch-", dir=workdir) as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "data"
        data.mkdir()
        for i in range(clips):
            make_bench_video(data / f"clip{i:02d}.mp4", seconds, size=(640, 360))
        frames = clips * int(round(seconds * FPS))
        commands = {}
        for w in workers:
            out = tmp_path / f"out{w}"
            out.mkdir(exist_ok=True)
            commands[f"deidvid {method}, {clips} clips, --workers {w}"] = [
                sys.executable, "-m", "deidvid", "anonymise", str(data), "--out-dir", str(out), "--workers", str(w),
                "--method", method, "--device", "cpu", "--force", "--quiet",
            ]
        rows = measure_in_turn(commands, frames, runs)
        table = format_table(rows, rows[0])
        ratios = ", ".join(f"--workers {w}: {paired_ratio(m, rows[0]):.2f}x the time of --workers {workers[0]}" for w, m in zip(workers, rows))
        return f"{table}\n\n{ratios} (peak MiB: the main process only; each worker holds its own models)"
