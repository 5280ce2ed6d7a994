"""Which files a batch takes from folders, and where their outputs go."""

from __future__ import annotations

from pathlib import Path

import pytest

from deidvid.batch.discover import find_inputs, plan_items, wanted
from deidvid.errors import BadInputError, UsageError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("rel", "include", "exclude", "expected"),
    [
        ("a/clip.MP4", [], [], True),  # default: video suffixes, any case
        ("a/notes.txt", [], [], False),
        ("a/clip.avi", [], ["*.avi"], False),
        ("a/clip.avi", ["*.txt"], [], False),  # an include replaces the default
        ("s1/vid.avi", ["s*/vid.avi"], [], True),  # with a '/': the relative path
        ("deep/s1/vid.avi", ["s*/vid.avi"], [], False),
        ("deep/s1/vid.avi", ["*/vid.avi"], [], True),  # '*' crosses folders, as in fnmatch
        ("s1/ground_truth.mp4", [], ["ground_*"], False),  # without '/': the name
    ],
)
def test_wanted(rel: str, include: list[str], exclude: list[str], expected: bool) -> None:
    assert wanted(rel, include, exclude) is expected


def test_folders_are_searched_in_order_without_hidden_files_or_the_output_folder(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for rel in ("b/2.mp4", "a/1.mov", "a/.hidden.mp4", ".cache/3.mp4", "c.txt", "out/old.mp4", "z.mkv"):
        touch(root / rel)
    found = find_inputs([root], root / "out")
    assert [f.relative_to(root).as_posix() for f, _ in found] == ["a/1.mov", "b/2.mp4", "z.mkv"]
    assert all(r == root for _, r in found)


def test_a_folder_needs_out_dir_and_must_hold_videos(tmp_path: Path) -> None:
    touch(tmp_path / "data" / "notes.txt")
    with pytest.raises(UsageError, match="--out-dir"):
        find_inputs([tmp_path / "data"], None)
    with pytest.raises(BadInputError, match="no video files"):
        find_inputs([tmp_path / "data"], tmp_path / "out")


def test_plan_mirrors_folders_and_names_file_arguments(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    touch(root / "s1" / "vid.avi")
    touch(root / "s2" / "vid.MOV")
    single = touch(tmp_path / "extra.mp4")
    items = plan_items([root, single], None, out)
    assert [(i.dst.relative_to(out).as_posix(), i.key, i.mirrored) for i in items] == [
        ("s1/vid.mp4", "s1/vid.mp4", True),  # .avi cannot be written: .mp4
        ("s2/vid.MOV", "s2/vid.MOV", True),
        ("extra.deid.mp4", "extra.deid.mp4", False),
    ]


def test_plan_of_files_without_out_dir_is_unchanged(tmp_path: Path) -> None:
    video = touch(tmp_path / "a.avi")
    assert [i.dst for i in plan_items([video], None, None)] == [tmp_path / "a.deid.mp4"]
    assert [i.dst for i in plan_items([video], tmp_path / "x.mkv", None)] == [tmp_path / "x.mkv"]


def test_an_earlier_run_s_output_folder_is_not_searched(tmp_path: Path) -> None:
    # ds/out1 was an earlier run's --out-dir; a new run into another folder must not take its copies for inputs.
    root = tmp_path / "ds"
    for rel in ("a/1.mp4", "out1/a/1.mp4", "out1/deidvid-manifest.jsonl"):
        touch(root / rel)
    skipped: list[Path] = []
    found = find_inputs([root], tmp_path / "out2", on_skip=skipped.append)
    assert [f.relative_to(root).as_posix() for f, _ in found] == ["a/1.mp4"]
    assert skipped == [root / "out1"]
    # the folder itself given as the argument is searched: that choice was the user's
    assert [f.name for f, _ in find_inputs([root / "out1"], tmp_path / "out3")] == ["1.mp4"]
