"""Benchmarks: ``deidvid bench anonymise`` (throughput and peak memory against deface).

Every configuration runs as its own process, several times; we report the median
wall time, frames per second and peak resident memory (``ru_maxrss`` of that very
process, from ``os.wait4``), and ratios against the baseline measured in the same
run, so machine load cancels out as far as it can.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    name: str
    frames: int
    seconds: list[float]
    peak_mib: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def fps(self) -> float:
        return self.frames / self.median_s

    @property
    def median_peak_mib(self) -> float:
        return statistics.median(self.peak_mib)


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS MiB of that process)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    return seconds, usage.ru_maxrss / 1024.0  # Linux reports KiB


def measure(name: str, cmd: list[str], frames: int, runs: int, env: dict[str, str] | None = None) -> Measurement:
    seconds, peaks = [], []
    for _ in range(runs):
        s, m = run_measured(cmd, env)
        seconds.append(s)
        peaks.append(m)
    return Measurement(name, frames, seconds, peaks)


def deidvid_cmd(video: Path, out: Path, variant: str, extra: list[str] | None = None) -> list[str]:
    """The CLI call for a method variant: ``blur``, ``blur:no-keep-pulse``, ``blur:keep-pulse``."""
    from deidvid.tools.evaluate import parse_variant

    method, keep = parse_variant(variant)
    flags = [] if keep is None else ["--keep-pulse" if keep else "--no-keep-pulse"]
    return [
        sys.executable, "-m", "deidvid", "anonymise", str(video), "-o", str(out),
        "--method", method, "--device", "cpu", "--quiet", "--overwrite", *flags, *(extra or []),
    ]


def deface_cmd(deface: str, video: Path, out: Path) -> list[str]:
    # deface's defaults: CenterFace, threshold 0.2, blur, full resolution.
    return [deface, str(video), "-o", str(out)]


def make_bench_video(path: Path, seconds: float, size: tuple[int, int] = (1280, 720), fps: int = 30) -> Path:
    """A synthetic one-face video (the project's astronaut generator)."""
    from deidvid.testing.synthetic_video import make_face_video

    return make_face_video(path, n_frames=int(round(seconds * fps)), fps=fps, size=size, audio=True, crf=18)


def format_table(rows: list[Measurement], baseline: Measurement | None) -> str:
    lines = ["| run | frames | median s | frames/s | peak MiB | runs (s) | x baseline fps |", "|---|---|---|---|---|---|---|"]
    for m in rows:
        ratio = f"{m.fps / baseline.fps:.2f}" if baseline else "-"
        runs = ", ".join(f"{s:.1f}" for s in m.seconds)
        lines.append(f"| {m.name} | {m.frames} | {m.median_s:.1f} | {m.fps:.2f} | {m.median_peak_mib:.0f} | {runs} | {ratio} |")
    return "\n".join(lines)


def bench_anonymise(
    runs: int = 3,
    seconds: float = 10.0,
    methods: tuple[str, ...] = ("blur",),
    deface: str | None = None,
    long_seconds: float = 0.0,
    workdir: Path | None = None,
    threads: int | None = None,
) -> str:
    """Throughput on a 720p one-face video; optional deface reference and long-video memory.

    The first method is also timed detecting every frame and on the long video; the
    baseline of the ratios is deface when given, else the first method.
    """
    with tempfile.TemporaryDirectory(prefix="deidvid-bench-", dir=workdir) as tmp:
        tmp_path = Path(tmp)
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        video = make_bench_video(tmp_path / "bench720p.mp4", seconds)
        frames = int(round(seconds * 30))
        rows = []
        if deface:
            rows.append(measure("deface 1.5.0 (reference)", deface_cmd(deface, video, tmp_path / "deface.mp4"), frames, runs, env))
        first = methods[0]
        for method in methods:
            rows.append(measure(f"deidvid {method} (detect every 3)", deidvid_cmd(video, tmp_path / "o.mp4", method), frames, runs, env))
        rows.append(measure(
            f"deidvid {first} (detect every frame)",
            deidvid_cmd(video, tmp_path / "o1.mp4", first, ["--detect-every", "1"]), frames, runs, env,
        ))
        if long_seconds:
            long_video = make_bench_video(tmp_path / "long720p.mp4", long_seconds)
            rows.append(measure(
                f"deidvid {first}, {long_seconds:.0f} s video", deidvid_cmd(long_video, tmp_path / "l.mp4", first),
                int(round(long_seconds * 30)), 1, env,
            ))
        return format_table(rows, rows[0])


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
        frames = clips * int(round(seconds * 30))
        times: dict[int, list[float]] = {w: [] for w in workers}
        peaks: dict[int, list[float]] = {w: [] for w in workers}
        for _ in range(runs):
            for w in workers:
                out = tmp_path / f"out{w}"
                out.mkdir(exist_ok=True)
                cmd = [
                    sys.executable, "-m", "deidvid", "anonymise", str(data), "--out-dir", str(out), "--workers", str(w),
                    "--method", method, "--device", "cpu", "--force", "--quiet",
                ]
                s, m = run_measured(cmd)
                times[w].append(s)
                peaks[w].append(m)
        rows = [Measurement(f"deidvid {method}, {clips} clips, --workers {w}", frames, times[w], peaks[w]) for w in workers]
        table = format_table(rows, rows[0])
        base = rows[0].median_s
        ratios = ", ".join(f"--workers {w}: {m.median_s / base:.2f}x the time of --workers {workers[0]}" for w, m in zip(workers, rows))
        return f"{table}\n\n{ratios} (peak MiB: the main process only; each worker holds its own models)"
