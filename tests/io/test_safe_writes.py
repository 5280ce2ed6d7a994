"""Atomic writes and the checks before them: temporaries (short enough for long names,
locked while alive, swept when stale), output paths that cannot be written, odd inputs,
metadata that names people, audio the container cannot hold."""

from __future__ import annotations

import os
import shutil
import signal
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from deidvid.errors import BadInputError, DeidvidError, Interrupted, UsageError
from deidvid.interrupts import interrupt
from deidvid.io.atomic import (
    NAME_MAX,
    TempFile,
    is_temp_of,
    remove_stale,
    temp_pattern,
    write_text,
)
from deidvid.io.decode import iter_frames, probe
from deidvid.io.encode import VideoWriter
from deidvid.io.output_checks import check_audio_fits
from deidvid.testing import bad_inputs
from deidvid.testing import synthetic_video as videos


def copy_video(src: Path, dst: Path, **options) -> None:
    info = probe(src)
    with VideoWriter(dst, info, **options) as writer:
        for frame in iter_frames(src, info):
            writer.write(frame, frame.rgb)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return videos.make_pattern_video(tmp_path_factory.mktemp("src") / "small.mp4", n_frames=5, size=(64, 48))


# -- temporaries --------------------------------------------------------------------------
@pytest.mark.parametrize("length", [10, 240, 241, 250, 255])
def test_temporary_names_fit_the_file_system_and_name_their_target(tmp_path: Path, length: int) -> None:
    target = tmp_path / ("n" * (length - 4) + ".mp4")
    temp = TempFile(target)
    try:
        assert len(os.fsencode(temp.path.name)) <= NAME_MAX
        assert is_temp_of(temp.path, target)
        if length <= 240:
            assert temp.path.name.startswith(f".{target.name}.") and temp.path.name.endswith(".part")
    finally:
        temp.discard()
    assert list(tmp_path.iterdir()) == []


def test_two_long_names_with_one_prefix_do_not_share_temporaries(tmp_path: Path) -> None:
    a, b = tmp_path / ("x" * 248 + "a.mp4"), tmp_path / ("x" * 248 + "b.mp4")
    temp = TempFile(a)
    try:
        assert is_temp_of(temp.path, a) and not is_temp_of(temp.path, b)
        assert temp_pattern(a).pattern != temp_pattern(b).pattern
    finally:
        temp.discard()


def test_stale_temporaries_are_swept_but_live_ones_and_others_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    stale = tmp_path / ".out.mp4.0123abcd.part"
    stale.write_bytes(b"left by SIGKILL")
    others = [tmp_path / ".out.mp4.0123abcd.part.keep", tmp_path / ".out2.mp4.0123abcd.part", tmp_path / "out.mp4"]
    for other in others:
        other.write_bytes(b"x")
    an_input = tmp_path / ".out.mp4.99999999.part"
    an_input.write_bytes(b"an input with an odd name")
    live = TempFile(target)  # a concurrent run: its lock says "in use"
    try:
        assert remove_stale(target, keep=[an_input]) == [stale]
        assert live.path.exists() and an_input.exists() and all(p.exists() for p in others)
    finally:
        live.discard()
    assert remove_stale(target) == [an_input]  # without ``keep`` it would have gone


def test_write_text_is_atomic(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    write_text(target, "new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]

    def fail(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        write_text(target, "newer")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


# -- VideoWriter: paths -------------------------------------------------------------------
def test_output_names_up_to_255_bytes_are_written(small: Path, tmp_path: Path) -> None:
    out = tmp_path / ("o" * 251 + ".mp4")
    copy_video(small, out)
    assert probe(out).frame_count == 5 and list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda d: d / ("o" * 252 + ".mp4"), UsageError, "255"),
        (lambda d: bad_inputs._mkdir(d / "out.mp4"), UsageError, "folder"),
        (lambda d: bad_inputs.fifo(d / "out.mp4"), UsageError, "regular file"),
        (lambda d: bad_inputs._file_under_a_file(d, "out.mp4"), BadInputError, "not a folder"),
    ],
    ids=["name-too-long", "existing-folder", "fifo", "under-a-file"],
)
def test_unwritable_outputs_are_refused_before_encoding(small: Path, tmp_path: Path, make, error, words) -> None:
    out = make(tmp_path)
    before = bad_inputs.snapshot(tmp_path)
    with pytest.raises(error) as err:
        VideoWriter(out, probe(small))
    assert words in one_line(err)
    assert bad_inputs.snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not stop root")
def test_read_only_folder_is_refused(small: Path, tmp_path: Path) -> None:
    folder = bad_inputs.read_only_folder(tmp_path / "ro")
    try:
        with pytest.raises(BadInputError) as err:
            VideoWriter(folder / "out.mp4", probe(small))
        assert "cannot write" in one_line(err)
    finally:
        folder.chmod(0o755)


def test_interrupt_mid_write_removes_the_temporary(small: Path, tmp_path: Path) -> None:
    info = probe(small)
    with pytest.raises(Interrupted), VideoWriter(tmp_path / "out.mp4", info) as writer:
        for frame in iter_frames(small, info):
            writer.write(frame, frame.rgb)
            raise Interrupted(signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []


def test_a_signal_while_the_writer_opens_its_file_leaves_no_temporary(small: Path, tmp_path: Path, monkeypatch) -> None:
    info = probe(small)

    def open_then_stop(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        assert mode == "w" and ".part" in str(path)  # the writer opening its temporary
        raise Interrupted(signal.SIGINT)  # as the signal handler does, between two bytecodes

    monkeypatch.setattr("deidvid.io.encode.av.open", open_then_stop)
    with pytest.raises(Interrupted):
        VideoWriter(tmp_path / "out.mp4", info)
    assert list(tmp_path.iterdir()) == []


def test_a_signal_held_while_the_temporary_is_made_is_raised_where_it_is_cleaned_up(tmp_path: Path) -> None:
    def stop_in_the_middle() -> None:
        interrupt(signal.SIGTERM)  # the handler, run while TempFile has created the file but not yet returned

    target = tmp_path / "report.json"
    real_open = os.open

    def open_and_signal(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        fd = real_open(*args, **kwargs)
        stop_in_the_middle()
        return fd

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("deidvid.io.atomic.os.open", open_and_signal)
        with pytest.raises(Interrupted):
            write_text(target, "{}")
    assert list(tmp_path.iterdir()) == []


def test_failure_to_put_the_file_in_place_is_one_line(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    info = probe(small)
    with pytest.raises(DeidvidError) as err, VideoWriter(folder / "out.mp4", info) as writer:
        for frame in iter_frames(small, info):
            writer.write(frame, frame.rgb)
        shutil.rmtree(folder)  # the folder vanishes before the rename
    assert "out.mp4" in one_line(err)


# -- odd inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: bad_inputs.fifo(d / "pipe.mp4"), "FIFO"),
        (lambda d: bad_inputs.symlink(d / "null.mp4", os.devnull), "character device"),
        (lambda d: bad_inputs.symlink_loop(d), "symbolic link loop"),
        (lambda d: d / ("x" * 256 + ".mp4"), "too long"),
        (lambda d: bad_inputs.empty_file(d / "empty.mp4"), "empty file"),
    ],
    ids=["fifo", "device", "symlink-loop", "name-too-long", "empty"],
)
def test_odd_inputs_are_named_for_what_they_are(tmp_path: Path, make, words: str) -> None:
    with pytest.raises(BadInputError) as err:
        probe(make(tmp_path))
    assert words in one_line(err)


# -- metadata -----------------------------------------------------------------------------
PERSONAL = {"title": "patient 17 Jane Doe", "comment": "ward 3", "artist": "Dr Smith", "description": "d",
            "composer": "c", "album": "a", "copyright": "c", "custom_key": "x"}


def _lowered(path: Path) -> dict[str, str]:
    return {k.lower(): v for k, v in probe(path).metadata.items()}


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_free_text_metadata_is_stripped_by_default(tmp_path: Path, suffix: str) -> None:
    tags = {**PERSONAL, "creation_time": "2024-01-01T00:00:00.000000Z"}
    src = videos.make_face_video(tmp_path / "meta.mkv", n_frames=2, size=(64, 48), audio=False, metadata=tags)
    assert "title" in _lowered(src)
    copy_video(src, tmp_path / f"out{suffix}")
    kept = _lowered(tmp_path / f"out{suffix}")
    assert not set(PERSONAL) & set(kept) and kept["creation_time"].startswith("2024-01-01")
    copy_video(src, tmp_path / f"kept{suffix}", keep_metadata=True)
    assert _lowered(tmp_path / f"kept{suffix}")["title"] == "patient 17 Jane Doe"


def _video_with_audio_language(path: Path, language: str, codec: str = "aac") -> Path:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream(codec, rate=44100)
        audio.layout = "mono"
        audio.metadata["language"] = language
        audio.metadata["title"] = "Jane's microphone"
        samples = 0
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(video.encode(frame))
            while samples < (i + 1) * 44100 / 25:
                chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 44100, samples
                container.mux(audio.encode(chunk))
                samples += 1024
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_audio_language_is_kept_and_track_titles_are_not(tmp_path: Path, suffix: str) -> None:
    src = _video_with_audio_language(tmp_path / "lang.mkv", "fra")
    out = tmp_path / f"out{suffix}"
    copy_video(src, out)
    with av.open(str(out)) as container:
        tags = container.streams.audio[0].metadata
    assert tags.get("language") == "fra" and "title" not in tags and "name" not in tags


# -- audio the container cannot hold -----------------------------------------------------
def test_pcm_into_mp4_is_refused_before_any_work(tmp_path: Path) -> None:
    src = bad_inputs.avi_with_pcm(tmp_path / "pcm.avi")
    with pytest.raises(UsageError) as err:
        check_audio_fits(src, tmp_path / "out.mp4")
    assert "pcm_s16le" in one_line(err) and ".mov or .mkv" in str(err.value)
    with pytest.raises(UsageError):
        VideoWriter(tmp_path / "out.mp4", probe(src))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pcm.avi"]
    check_audio_fits(src, tmp_path / "out.mkv")
    copy_video(src, tmp_path / "out.mkv")  # the same packets fit Matroska
    assert probe(tmp_path / "out.mkv").audio_codecs == ("pcm_s16le",)
