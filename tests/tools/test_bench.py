"""The anonymise benchmark: every method in one run, ratios against the first."""

import pytest

from deidvid.tools.bench import bench_anonymise


@pytest.mark.slow
def test_bench_anonymise_times_several_methods_against_the_first(tmp_path):
    table = bench_anonymise(runs=1, seconds=0.4, methods=("blur", "pixelate"), workdir=tmp_path)
    rows = [line.split("|")[1:-1] for line in table.splitlines()[2:]]
    names = [r[0].strip() for r in rows]
    assert names == ["deidvid blur (detect every 3)", "deidvid pixelate (detect every 3)", "deidvid blur (detect every frame)"]
    assert rows[0][-1].strip() == "1.00"
    for row in rows:
        assert int(row[1]) == 12 and float(row[3]) > 0 and float(row[4]) > 0  # frames, frames/s, peak MiB
    assert list(tmp_path.iterdir()) == []  # the temporary folder is removed
