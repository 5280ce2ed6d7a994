"""``deidvid verify`` batches (issue #15): pairs from two folders or a run manifest, one bad
pair never stops the others, the gates on every pair, ``--jsonl``, ``--workers``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from deidvid.batch.manifest import MANIFEST_NAME, Manifest
from deidvid.cli.main import app
from deidvid.errors import BadInputError
from deidvid.testing.synthetic_video import make_face_video, write_blurred_copy
from deidvid.verify.batch import pair_folders, pairs_from_manifest

# 100 frames: just over the 3 s a pulse analysis needs; the slow measurements left out.
FAST = ("--methods", "pos", "--windows", "3", "--skip", "toolbox,expression,temporal", "--device", "cpu")


def verify(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, ["verify", *[str(a) for a in args]])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# -- pairing (no video is read) -------------------------------------------------------------------
def test_pairs_are_the_mirrored_name_or_name_deid_in_the_same_folder(tmp_path: Path) -> None:
    orig, deid = tmp_path / "orig", tmp_path / "deid"
    for rel in ("a.mp4", "sub/b.avi", "sub/c.mov", "d.mkv", ".hidden.mp4", "notes.txt"):
        touch(orig / rel)
    for rel in ("a.mp4", "sub/b.mp4", "sub/c.deid.mov"):  # d has none
        touch(deid / rel)
    pairs = {p.label: p for p in pair_folders(orig, deid)}
    assert sorted(pairs) == ["a.mp4", "d.mkv", "sub/b.avi", "sub/c.mov"]
    assert pairs["a.mp4"].deidentified == deid / "a.mp4"
    assert pairs["sub/b.avi"].deidentified == deid / "sub/b.mp4"  # anonymise writes .avi inputs as .mp4
    assert pairs["sub/c.mov"].deidentified == deid / "sub/c.deid.mov"
    missing = pairs["d.mkv"]
    assert missing.deidentified is None
    assert missing.problem == f"no de-identified counterpart (looked for {deid / 'd.mkv'} or {deid / 'd.deid.mkv'})"
    assert all(p.problem is None for label, p in pairs.items() if label != "d.mkv")


def test_one_folder_for_both_and_a_deid_folder_inside_the_originals(tmp_path: Path) -> None:
    both = tmp_path / "both"
    touch(both / "a.mp4"), touch(both / "a.deid.mp4")
    [pair] = pair_folders(both, both)  # a.deid.mp4 is a's counterpart, not an original
    assert (pair.original, pair.deidentified) == (both / "a.mp4", both / "a.deid.mp4")
    orig = tmp_path / "orig"
    touch(orig / "a.mp4"), touch(orig / "out/a.mp4")
    [pair] = pair_folders(orig, orig / "out")  # the de-identified folder is never searched for originals
    assert (pair.original, pair.deidentified) == (orig / "a.mp4", orig / "out/a.mp4")


def write_manifest(folder: Path, entries: dict[str, tuple[Path, Path, str]]) -> Path:
    manifest = Manifest(folder / MANIFEST_NAME)
    for key, (src, dst, status) in entries.items():
        manifest.record({"key": key, "input": str(src.absolute()), "output": str(dst.absolute()), "status": status})
    return manifest.path


def test_manifest_pairs_are_the_written_outputs(tmp_path: Path) -> None:
    statuses = ("ok", "identity_remains", "incomplete", "error", "running", "interrupted")
    path = write_manifest(tmp_path, {f"{s}.mp4": (tmp_path / f"in_{s}.mp4", tmp_path / f"{s}.mp4", s) for s in statuses})
    with path.open("a") as f:
        f.write("not json\n")
    pairs, unreadable = pairs_from_manifest(tmp_path)  # its folder names it too
    assert [p.label for p in pairs] == ["ok.mp4", "identity_remains.mp4", "incomplete.mp4"]
    assert pairs[0].original == tmp_path / "in_ok.mp4" and pairs[0].deidentified == tmp_path / "ok.mp4"
    assert unreadable == 1
    with pytest.raises(BadInputError, match="no such file"):
        pairs_from_manifest(tmp_path / "missing.jsonl")
    (tmp_path / "none").mkdir()
    path = write_manifest(tmp_path / "none", {"x.mp4": (tmp_path / "x.mp4", tmp_path / "y.mp4", "error")})
    with pytest.raises(BadInputError, match="no entry with a written output"):
        pairs_from_manifest(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{orig}",), "verify needs ORIGINAL and DEIDENTIFIED"),
        (("{orig}", "{file}"), "is a folder but the other argument is not"),
        (("--manifest", "{file}", "{file}"), "give no ORIGINAL or DEIDENTIFIED with it"),
        (("{orig}", "{deid}", "--html", "{tmp}/r.html"), "--html draws one pair"),
        (("{orig}", "{deid}", "--ppg", "{file}"), "--ppg belongs to one video"),
        (("{orig}", "{deid}", "--workers", "0"), "--workers must be >= 1"),
        (("{orig}", "{deid}", "--json", "-", "--jsonl", "-"), "cannot both go to stdout"),
        (("{orig}", "{deid}", "--jsonl", "{orig}/a.mp4"), "is the input"),
        (("{file}", "{file}", "--jsonl", "{tmp}/r.jsonl"), "--jsonl writes one line per pair of a batch"),
    ],
)
def test_batch_usage_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    where = {"orig": tmp_path / "orig", "deid": tmp_path / "deid", "file": touch(tmp_path / "f.mp4"), "tmp": tmp_path}
    touch(where["orig"] / "a.mp4"), touch(where["deid"] / "a.mp4")
    result = verify(*(a.format(**where) for a in args))
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("deidvid: error:") and message in line


# -- batches of real pairs ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """orig/{a.mp4, sub/b.mp4, c.mp4}; deid/a.mp4 an exact copy (identity kept: match rate 1),
    deid/sub/b.deid.mp4 blurred (identity gone), c without a counterpart."""
    root = tmp_path_factory.mktemp("pairs")
    orig, deid = root / "orig", root / "deid"
    (orig / "sub").mkdir(parents=True), (deid / "sub").mkdir(parents=True)
    make_face_video(orig / "a.mp4", n_frames=100, size=(160, 120), audio=False)
    make_face_video(orig / "sub/b.mp4", n_frames=100, size=(160, 120), audio=False, pulse_bpm=90)
    touch(orig / "c.mp4")
    shutil.copyfile(orig / "a.mp4", deid / "a.mp4")
    write_blurred_copy(orig / "sub/b.mp4", deid / "sub/b.deid.mp4")
    return orig, deid


@pytest.fixture(scope="module")
def one_worker(folders, tmp_path_factory) -> tuple[Result, list[dict], dict]:
    """The folders verified by one worker with a match-rate gate: the result, the JSON lines, the --json object."""
    out = tmp_path_factory.mktemp("one_worker")
    result = verify(*folders, *FAST, "--max-match-rate", "0.5", "--workers", "1",
                    "--jsonl", out / "r.jsonl", "--json", out / "r.json")
    lines = [json.loads(line) for line in (out / "r.jsonl").read_text().splitlines()]
    return result, lines, json.loads((out / "r.json").read_text())


def test_a_missing_counterpart_is_an_error_while_the_other_pairs_complete(one_worker, folders) -> None:
    result, lines, _ = one_worker
    orig, deid = folders
    assert result.exit_code == 3  # the highest seen: the missing counterpart's 3 over a's failed gate (1)
    assert [(e["original"], e["status"], e["exit_code"]) for e in lines] == [
        (str(orig / "a.mp4"), "gate_failed", 1), (str(orig / "c.mp4"), "error", 3), (str(orig / "sub/b.mp4"), "ok", 0),
    ]
    missing = lines[1]
    assert missing["deidentified"] is None and missing["report"] is None and missing["gates"] is None
    assert missing["error"].startswith("no de-identified counterpart (looked for ")
    errors = [line for line in result.stderr.splitlines() if line.startswith("deidvid: error:")]
    assert errors == [f"deidvid: error: {orig / 'c.mp4'}: {missing['error']}"]


def test_the_gates_apply_to_every_pair(one_worker, folders) -> None:
    result, lines, _ = one_worker
    _, deid = folders
    copy, _, blurred = lines
    assert copy["gates"] == {"failed": ["match rate 1 > 0.5"], "passed": False} and copy["error"] is None
    assert blurred["gates"] == {"failed": [], "passed": True}
    assert f"deidvid: gate failed: {deid / 'a.mp4'}: match rate 1 > 0.5" in result.stderr
    # The summary table: a row per pair and the gates applied.
    for text in ("3 pairs verified: 1 ok, 1 gate failed, 1 error", "sub/b.mp4", "c.mp4", "--max-match-rate 0.5"):
        assert text in result.stdout


def test_jsonl_lines_hold_each_pairs_report(one_worker, folders) -> None:
    _, lines, whole = one_worker
    orig, deid = folders
    assert set(lines[0]) == {"original", "deidentified", "status", "error", "exit_code", "gates", "report"}
    copy, blurred = lines[0]["report"], lines[2]["report"]
    assert lines[2]["deidentified"] == str(deid / "sub/b.deid.mp4") == blurred["deidentified"]
    assert copy["summary"]["hr_mae_bpm"] == 0.0 and copy["summary"]["pearson"] == pytest.approx(1.0)
    assert copy["summary"]["match_rate"] == 1.0 and copy["summary"]["face_psnr_db"] is None  # identical: inf
    assert blurred["summary"]["match_rate"] < 0.5 and blurred["faces"][0]["pulse"] is not None
    # --json: the same entries in one object, with how the batch ran.
    assert whole["pairs"] == lines
    assert whole["batch"] == {"pairs": 3, "workers": 1, "statuses": {"ok": 1, "gate_failed": 1, "error": 1},
                              "exit_code": 3, "gates": {"max_match_rate": 0.5}}


def test_two_workers_give_the_same_numbers(one_worker, folders, tmp_path: Path) -> None:
    _, lines, _ = one_worker
    result = verify(*folders, *FAST, "--max-match-rate", "0.5", "--workers", "2", "--jsonl", tmp_path / "r.jsonl", "-q")
    assert result.exit_code == 3 and result.stdout == ""  # -q: no table
    again = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [e["status"] for e in again] == [e["status"] for e in lines]
    for one, two in zip(lines, again):
        if one["report"] is not None:
            assert two["report"]["summary"] == one["report"]["summary"]
            assert two["report"]["faces"] == one["report"]["faces"]


def test_manifest_route_takes_the_written_outputs_only(folders, tmp_path: Path) -> None:
    orig, deid = folders
    manifest = write_manifest(tmp_path, {
        "a.mp4": (orig / "a.mp4", deid / "a.mp4", "ok"),
        "c.mp4": (orig / "c.mp4", deid / "c.mp4", "error"),  # not written: not a pair
    })
    result = verify("--manifest", manifest, *FAST, "--max-match-rate", "0.5", "--jsonl", tmp_path / "r.jsonl", "-q")
    assert result.exit_code == 1, result.output  # a's gate fails; nothing else ran
    [line] = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert line["original"] == str((orig / "a.mp4").absolute()) and line["status"] == "gate_failed"
    assert result.stdout == ""
