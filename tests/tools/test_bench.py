"""The benchmarks: every method in one run, ratios against the first and the decode+encode
floor, the per-stage profile and the cold start."""

import sys

import pytest

from deidvid.errors import UsageError
from deidvid.tools.bench import (
    UNSTAGED,
    bench_anonymise,
    bench_cold_start,
    Measurement,
    format_profile,
    make_bench_video,
    measure_in_turn,
    paired_ratio,
    parse_size,
)

WHOLE = "whole process (start-up and imports too)"


def tables(text: str) -> list[list[list[str]]]:
    """The markdown tables of ``text``: each a list of rows of stripped cells (header first, no separator)."""
    found: list[list[list[str]]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                found.append([])
            cells = [c.strip() for c in line.split("|")[1:-1]]
            if set(cells) != {"---"}:
                found[-1].append(cells)
        previous = line
    return found


def check_profile(profile: list[list[str]], columns: list[int]) -> None:
    """Stage rows (with the unstaged rest) add up to ``total``; the process took at least that."""
    rows = {r[0]: r for r in profile[1:]}
    for col in columns:
        parts = {name: float(r[col]) for name, r in rows.items() if name not in ("total", WHOLE)}
        total = float(rows["total"][col])
        assert sum(parts.values()) == pytest.approx(total, abs=0.01)
        assert 0 < total - parts[UNSTAGED] <= total + 0.01  # the named stages
        assert float(rows[WHOLE][col]) >= total
        assert float(rows["total"][col + 1].rstrip(" %")) == 100.0


@pytest.mark.slow
def test_bench_anonymise_times_several_methods_against_the_first_and_the_floor(tmp_path):
    text = bench_anonymise(
        runs=1, seconds=0.4, methods=("blur", "pixelate"), workdir=tmp_path, size=(320, 240), faces=2, profile=True
    )
    assert text.startswith("320x240, 2 faces, 12 frames")
    table, profile = tables(text)
    assert table[0][-2:] == ["x floor time", "x baseline fps"]
    rows = table[1:]
    names = [r[0] for r in rows]
    assert names == [
        "decode + encode floor (no faces)", "deidvid blur (detect every 3)", "deidvid pixelate (detect every 3)",
        "deidvid blur (detect every frame)",
    ]
    assert rows[0][-2] == "1.00" and rows[1][-1] == "1.00"  # the floor; the baseline is the first method
    assert table[0][:4] == ["run", "frames", "median s", "CPU s"]
    for row in rows:
        assert int(row[1]) == 12 and float(row[3]) > 0 and float(row[4]) > 0 and float(row[5]) > 0  # frames, CPU, fps, MiB
    assert all(float(r[-2]) > 1 for r in rows[1:])  # nothing beats decoding and encoding alone
    assert profile[0] == ["stage", "blur s", "blur share", "pixelate s", "pixelate share"]
    assert {"decode", "detect", "landmarks", "crop", "paste", "encode", "identity_check", UNSTAGED} <= {r[0] for r in profile}
    check_profile(profile, [1, 3])
    assert list(tmp_path.iterdir()) == []  # the temporary folder is removed


@pytest.mark.slow
def test_bench_cold_start_times_anonymise_against_import_torch(tmp_path):
    text = bench_cold_start(runs=1, size=(160, 120), workdir=tmp_path)
    (table,) = tables(text)
    assert table[0] == ["run", "median s", "peak MiB", "runs (s)", "x import torch time"]
    assert [r[0] for r in table[1:]] == [
        'python -c "import torch"', "deidvid anonymise, blur", "deidvid anonymise, blur, --no-identity-check",
    ]
    assert table[1][-1] == "1.00"
    for row in table[1:]:
        assert float(row[1]) > 0 and float(row[2]) > 0 and row[3] == row[1]  # one run: it is the median
    assert list(tmp_path.iterdir()) == []


def test_format_profile_adds_the_unstaged_rest_and_orders_by_the_first_run():
    profile = tables(format_profile({
        "blur": ({"decode": 1.0, "detect": 3.0, "total": 5.0}, 8.0),
        "ae": ({"decode": 1.0, "model": 2.0, "detect": 3.0, "total": 7.0}, 10.0),
    }))[0]
    assert [r[0] for r in profile[1:]] == ["detect", "decode", "model", UNSTAGED, "total", WHOLE]
    assert profile[4] == [UNSTAGED, "1.000", "20.0 %", "1.000", "14.3 %"]
    check_profile(profile, [1, 3])


def test_measure_in_turn_runs_every_command_once_per_round(tmp_path):
    log = tmp_path / "log"
    commands = {name: [sys.executable, "-c", f"open({str(log)!r}, 'a').write({name!r})"] for name in "abc"}
    rows = measure_in_turn(commands, frames=10, runs=2, warmup=1)
    assert log.read_text() == "abc" * 3  # the warm-up round, then two timed rounds, each in order
    assert [m.name for m in rows] == ["a", "b", "c"]
    assert all(len(m.seconds) == len(m.peak_mib) == len(m.cpu_s) == 2 and min(m.seconds) > 0 for m in rows)
    assert all(0 < c < 10 * s for m in rows for c, s in zip(m.cpu_s, m.seconds))  # a python start-up's CPU


def test_paired_ratio_is_the_median_of_the_per_round_ratios():
    # Round 2 was a slow minute for both: pairing cancels it, a ratio of medians would not.
    base = Measurement("floor", 100, [1.0, 4.0, 1.1], [1.0] * 3, [1.0] * 3)
    run = Measurement("blur", 100, [2.0, 8.0, 2.2], [1.0] * 3, [1.0] * 3)
    assert paired_ratio(run, base) == pytest.approx(2.0)
    half = Measurement("fewer frames", 50, [1.0, 4.0, 1.1], [1.0] * 3, [1.0] * 3)
    assert paired_ratio(half, base) == pytest.approx(2.0)  # per frame
    assert paired_ratio(Measurement("x", 100, [1.0, 1.0, 3.0], [1.0] * 3, [1.0] * 3), base) == pytest.approx(1.0)  # 1, 0.25, 2.7


def test_parse_size():
    assert parse_size("1920x1080") == (1920, 1080)
    for bad in ("1920", "x1080", "1920x", "8x8", "axb", "1920x1080x3"):
        with pytest.raises(UsageError):
            parse_size(bad)


def test_floor_writes_every_frame(tmp_path):
    from deidvid.io.decode import probe
    from deidvid.tools.floor import main

    video = make_bench_video(tmp_path / "in.mp4", 0.3, size=(160, 120))
    assert main([str(video), str(tmp_path / "out.mp4")]) == 0
    out = probe(tmp_path / "out.mp4")
    assert (out.frame_count, out.width, out.height, out.has_audio) == (9, 160, 120, True)
