"""The bad-input corpus: every kind of damaged, odd or hostile input deidvid must refuse
with one line and its documented exit code, without touching any input or leaving files.

Everything is synthetic and made in a folder of the caller's choice. Each :class:`Case`
builds its files in that folder and returns the command line (after ``deidvid``). A test
(``tests/cli/test_bad_inputs.py``) runs every case and checks: the exit code, exactly one
stderr line starting ``deidvid: error:``, no traceback, every file in the folder unchanged
(sha256) and nothing left behind (:func:`snapshot`).

``python -m deidvid.testing.bad_inputs DIR`` writes the corpus to ``DIR/<case>/`` and
prints each command with the exit code it must give, for trying by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from deidvid.errors import EXIT_BAD_INPUT, EXIT_USAGE
from deidvid.testing.synthetic_video import (
    make_audio_only_file,
    make_corrupt_video,
    make_not_a_video,
    make_pattern_video,
)

LONG = 252  # bytes of a long input name: fits the 255-byte limit, its "NAME.deid.mp4" (257) does not


@dataclass(frozen=True)
class Case:
    """One bad input. ``build(folder)`` makes its files and returns the arguments.

    ``needs_non_root``: the case relies on permission bits, which do not stop root
    (tests skip it when running as root). ``says``: words the error line must contain
    (where a wrong but well-formed message was the defect, e.g. a FIFO called "an empty file").
    """

    name: str
    exit_code: int
    build: Callable[[Path], list[str]]
    needs_non_root: bool = False
    says: str = ""


# -- the files ---------------------------------------------------------------------------
def valid_video(folder: Path, name: str = "in.mp4") -> Path:
    """A tiny valid video (10 frames, 64x48, no audio): fast to probe."""
    return make_pattern_video(folder / name, n_frames=10, size=(64, 48))


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def garbage_file(path: Path, size: int = 64 * 1024) -> Path:
    path.write_bytes(np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def still_image(path: Path) -> Path:
    """A one-frame PNG (FFmpeg opens it as a one-image "video")."""
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def symlink(path: Path, target: Path | str) -> Path:
    path.symlink_to(target)
    return path


def symlink_loop(folder: Path, name: str = "loop.mp4") -> Path:
    """``loop.mp4 -> loop2.mp4 -> loop.mp4``."""
    first, second = folder / name, folder / f"{Path(name).stem}2.mp4"
    first.symlink_to(second.name)
    second.symlink_to(first.name)
    return first


def read_only_folder(path: Path) -> Path:
    path.mkdir()
    path.chmod(0o555)
    return path


def unreadable_copy(src: Path, path: Path) -> Path:
    shutil.copyfile(src, path)
    path.chmod(0)
    return path


def avi_with_pcm(path: Path, seconds: float = 1.0) -> Path:
    """MPEG-4 video with 48 kHz stereo PCM audio: the mp4 muxer fails on it at the very end."""
    rate, fps = 48000, 25
    with av.open(str(path), "w", format="avi") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=rate)
        audio.layout = "stereo"
        written = 0
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(video.encode(frame))
            samples = rate // fps
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 2 * samples), np.int16), format="s16", layout="stereo")
            chunk.sample_rate, chunk.pts = rate, written
            container.mux(audio.encode(chunk))
            written += samples
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


# -- the cases ---------------------------------------------------------------------------
def _anon(*args: str | Path) -> list[str]:
    return ["anonymise", *[str(a) for a in args], "-q"]


def _with_valid(build: Callable[[Path, Path], list[str]]) -> Callable[[Path], list[str]]:
    """A case that needs one valid input video in the folder."""
    return lambda folder: build(folder, valid_video(folder))


def _verify(folder: Path, *args: str) -> list[str]:
    original = valid_video(folder, "original.mp4")
    deid = valid_video(folder, "deid.mp4")
    return ["verify", str(original), str(deid), "-q", *args]


def _file_under_a_file(folder: Path, name: str) -> Path:
    """A path whose folder is a regular file: fails with ENOTDIR, for root too."""
    blocker = folder / "not-a-folder.txt"
    blocker.write_text("a file, not a folder\n")
    return blocker / name


def _hard_link(folder: Path, src: Path) -> Path:
    link = folder / "hardlink.mp4"
    os.link(src, link)
    return link


def _long_name(folder: Path) -> Path:
    """A valid input whose default output name (NAME.deid.mp4) is over 255 bytes."""
    return valid_video(folder, "v" * (LONG - len(".mp4")) + ".mp4")


def _same_default_output(folder: Path) -> list[str]:
    (folder / "sub").mkdir()
    a, b = valid_video(folder, "a.mp4"), valid_video(folder / "sub", "a.mp4")
    return ["anonymise", str(a), str(b), "--out-dir", str(folder), "-q"]


INPUT_CASES = [
    Case("missing", EXIT_BAD_INPUT, lambda d: _anon(d / "missing.mp4")),
    Case("empty", EXIT_BAD_INPUT, lambda d: _anon(empty_file(d / "empty.mp4"))),
    Case("text", EXIT_BAD_INPUT, lambda d: _anon(make_not_a_video(d / "notes.mp4"))),
    Case("garbage-bytes", EXIT_BAD_INPUT, lambda d: _anon(garbage_file(d / "garbage.mp4"))),
    Case("truncated-mp4", EXIT_BAD_INPUT, lambda d: _anon(make_corrupt_video(d / "cut.mp4", kind="no_header"))),
    Case("truncated-mkv", EXIT_BAD_INPUT, lambda d: _anon(make_corrupt_video(d / "cut.mkv", kind="truncated"))),
    Case("corrupt-middle", EXIT_BAD_INPUT, lambda d: _anon(make_corrupt_video(d / "bad.mkv", kind="garbage"))),
    Case("audio-only", EXIT_BAD_INPUT, lambda d: _anon(make_audio_only_file(d / "tone.m4a"))),
    Case("still-image", EXIT_BAD_INPUT, lambda d: _anon(still_image(d / "still.png"))),
    Case("folder-without-out-dir", EXIT_USAGE, lambda d: _anon(_mkdir(d / "clips.mp4")), says="--out-dir"),
    Case("folder-without-videos", EXIT_BAD_INPUT,
         lambda d: _anon(_touch(_mkdir(d / "clips") / "notes.txt").parent, "--out-dir", _mkdir(d / "out")), says="no video"),
    Case("fifo", EXIT_BAD_INPUT, lambda d: _anon(fifo(d / "pipe.mp4")), says="FIFO"),
    Case("device", EXIT_BAD_INPUT, lambda d: _anon(symlink(d / "null.mp4", os.devnull)), says="device"),
    Case("symlink-loop", EXIT_BAD_INPUT, lambda d: _anon(symlink_loop(d)), says="loop"),
    Case("dangling-symlink", EXIT_BAD_INPUT, lambda d: _anon(symlink(d / "gone.mp4", d / "nowhere.mp4"))),
    Case("input-under-a-file", EXIT_BAD_INPUT, lambda d: _anon(_file_under_a_file(d, "in.mp4"))),
    Case("input-name-too-long", EXIT_BAD_INPUT, lambda d: _anon(d / ("x" * 256 + ".mp4")), says="too long"),
    Case("unreadable", EXIT_BAD_INPUT, _with_valid(lambda d, v: _anon(unreadable_copy(v, d / "secret.mp4"))),
         needs_non_root=True),
]

OUTPUT_CASES = [
    Case("output-exists", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", _touch(d / "out.mp4", b"keep")))),
    Case("output-is-input", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", v))),
    Case("output-is-input-overwrite", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", v, "--overwrite"))),
    Case("output-symlink-to-input", EXIT_USAGE,
         _with_valid(lambda d, v: _anon(v, "-o", symlink(d / "link.mp4", v.name), "--overwrite"))),
    Case("output-hard-link-to-input", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", _hard_link(d, v), "--overwrite"))),
    Case("two-inputs-one-output", EXIT_USAGE, _same_default_output),
    Case("output-is-a-folder", EXIT_USAGE,
         _with_valid(lambda d, v: _anon(v, "-o", _mkdir(d / "out.mp4"), "--overwrite"))),
    Case("output-is-a-fifo", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", fifo(d / "out.mp4"), "--overwrite"))),
    Case("output-name-too-long", EXIT_USAGE, lambda d: _anon(_long_name(d)), says="255"),
    Case("output-o-name-too-long", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", d / ("o" * 256 + ".mp4")))),
    Case("output-suffix", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", d / "out.avi"))),
    Case("output-folder-missing", EXIT_BAD_INPUT, _with_valid(lambda d, v: _anon(v, "-o", d / "no" / "out.mp4"))),
    Case("output-under-a-file", EXIT_BAD_INPUT,
         _with_valid(lambda d, v: _anon(v, "-o", _file_under_a_file(d, "out.mp4")))),
    Case("output-in-proc", EXIT_BAD_INPUT, _with_valid(lambda d, v: _anon(v, "-o", "/proc/deidvid-test.mp4"))),
    Case("output-folder-read-only", EXIT_BAD_INPUT,
         _with_valid(lambda d, v: _anon(v, "-o", read_only_folder(d / "ro") / "out.mp4")), needs_non_root=True),
    Case("out-dir-missing", EXIT_BAD_INPUT, _with_valid(lambda d, v: _anon(v, "--out-dir", d / "no"))),
    Case("pcm-audio-into-mp4", EXIT_USAGE, lambda d: _anon(avi_with_pcm(d / "pcm.avi"), "-o", d / "out.mp4"),
         says="pcm_s16le"),
]

REPORT_CASES = [
    Case("json-is-input", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", "--json", v))),
    Case("json-is-output", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", "--json", d / "o.mp4"))),
    Case("json-folder-missing", EXIT_BAD_INPUT,
         _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", "--json", d / "no" / "r.json"))),
    Case("json-is-another-video", EXIT_USAGE,
         _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", "--json", _touch(d / "kept.mp4", VIDEO_BYTES))),
         says="not a report"),
    Case("json-is-a-folder", EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", "--json", _mkdir(d / "r")))),
    Case("json-under-a-file", EXIT_BAD_INPUT,
         _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", "--json", _file_under_a_file(d, "r.json")))),
    Case("json-read-only-folder", EXIT_BAD_INPUT,
         _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", "--json", read_only_folder(d / "ro") / "r.json")),
         needs_non_root=True),
    Case("verify-json-is-original", EXIT_USAGE, lambda d: _verify(d, "--json", str(d / "original.mp4"))),
    Case("verify-json-is-deidentified", EXIT_USAGE, lambda d: _verify(d, "--json", str(d / "deid.mp4"))),
    Case("verify-json-folder-missing", EXIT_BAD_INPUT, lambda d: _verify(d, "--json", str(d / "no" / "v.json"))),
]


def _option_case(name: str, *args: str) -> Case:
    return Case(name, EXIT_USAGE, _with_valid(lambda d, v: _anon(v, "-o", d / "o.mp4", *args)))


OPTION_CASES = [
    _option_case("crf-99", "--crf", "99"),
    _option_case("seed-negative", "--method", "surrogate", "--seed", "-1"),
    _option_case("crf-not-a-number", "--crf", "abc"),
    _option_case("clip-len-0", "--clip-len", "0"),
    _option_case("overlap-not-below-clip-len", "--clip-len", "8", "--overlap", "8"),
    _option_case("unknown-option", "--no-such-option"),
    _option_case("threshold-1", "--threshold", "1"),
    _option_case("threshold-0", "--threshold", "0"),
    _option_case("threshold-nan", "--threshold", "nan"),
    _option_case("fallback-seconds-0", "--fallback-seconds", "0"),
    _option_case("fallback-seconds-negative", "--fallback-seconds", "-1"),
    _option_case("fallback-seconds-nan", "--fallback-seconds", "nan"),
    _option_case("fallback-seconds-inf", "--fallback-seconds", "inf"),
    _option_case("strength-nan", "--method", "ae", "--strength", "nan"),
    _option_case("max-match-rate-2", "--max-match-rate", "2"),
    _option_case("detect-every-0", "--detect-every", "0"),
    _option_case("method-unknown", "--method", "foo"),
    _option_case("workers-0", "--workers", "0"),
    _option_case("engine-unknown", "--engine", "spark"),
    _option_case("task-cpus-0", "--engine", "ray", "--task-cpus", "0"),
    _option_case("retries-negative", "--engine", "ray", "--retries", "-1"),
    _option_case("fallback-unknown", "--fallback", "foo"),
    _option_case("device-unknown", "--device", "tpu"),
    Case("missing-argument", EXIT_USAGE, lambda d: ["anonymise", "-q"]),
    Case("verify-band-reversed", EXIT_USAGE, lambda d: _verify(d, "--band", "3,1")),
    Case("verify-band-above-nyquist", EXIT_USAGE, lambda d: _verify(d, "--band", "0.75,20")),
    Case("verify-band-nan", EXIT_USAGE, lambda d: _verify(d, "--band", "nan,2")),
    Case("verify-methods-unknown", EXIT_USAGE, lambda d: _verify(d, "--methods", "foo")),
    Case("verify-windows-0", EXIT_USAGE, lambda d: _verify(d, "--windows", "0")),
    Case("verify-gate-nan", EXIT_USAGE, lambda d: _verify(d, "--max-hr-mae", "nan")),
    Case("verify-missing-original", EXIT_BAD_INPUT,
         lambda d: ["verify", str(d / "missing.mp4"), str(valid_video(d, "deid.mp4")), "-q"]),
]

CASES: list[Case] = INPUT_CASES + OUTPUT_CASES + REPORT_CASES + OPTION_CASES


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


VIDEO_BYTES = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(32)  # how an MP4 starts


def _touch(path: Path, data: bytes = b"") -> Path:
    path.write_bytes(data)
    return path


# -- checking ----------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones included) -> what it is: a file's sha256,
    a link's target, a folder, a FIFO. Two equal snapshots: nothing changed, nothing left."""
    entries: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            entries[str(path.relative_to(folder))] = _describe(path)
    return entries


def _describe(path: Path) -> str:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return f"link -> {os.readlink(path)}"
    if stat.S_ISDIR(st.st_mode):
        return f"folder {stat.filemode(st.st_mode)}"
    if not stat.S_ISREG(st.st_mode):
        return f"special {stat.filemode(st.st_mode)}"
    if not os.access(path, os.R_OK):
        return f"unreadable {st.st_size} bytes {st.st_mtime_ns}"
    return "sha256 " + hashlib.sha256(path.read_bytes()).hexdigest()


# Capabilities that let root ignore permission bits.
_PERMISSION_CAPS = "-dac_override,-dac_read_search,-fowner"


def without_permission_override() -> list[str] | None:
    """A command prefix that runs a process which permission bits do stop: nothing for a
    normal user; for root (as CI runs), ``setpriv`` dropping the capabilities that override
    them; None when neither works (the permission cases are then skipped)."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", f"--bounding-set={_PERMISSION_CAPS}"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix if probe.returncode == 0 else None


def restore_permissions(folder: Path) -> None:
    """Make everything under ``folder`` removable again (read-only folders, mode-0 files)."""
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(0o755)
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                path.chmod(0o644)


def main(argv: list[str] | None = None) -> int:
    """Write the corpus to DIR/<case>/ and print each command with its expected exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m deidvid.testing.bad_inputs DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        print(f"{root} must be empty", file=sys.stderr)
        return 2
    for case in CASES:
        folder = root / case.name
        folder.mkdir()
        args = case.build(folder)
        note = " (as a non-root user)" if case.needs_non_root else ""
        print(f"deidvid {' '.join(args)}    # exit {case.exit_code}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
