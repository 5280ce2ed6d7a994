"""Contact-PPG ground truth readers and alignment to video frames.

Formats:

- UBFC-rPPG ``ground_truth.txt`` (DATASET_2): three whitespace-separated rows, the
  finger-PPG waveform, the oximeter's HR (bpm) and timestamps (s), one column per
  video frame. Samples are aligned to frames by index (as rPPG-Toolbox does); the
  timestamps are the capture times of those frames.
- CSV with columns ``time, ppg`` (seconds, any unit): an optional header line,
  separators ``,`` ``;`` tab or spaces. Samples are interpolated at the video's
  frame times, both counted from the first sample / first frame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deidvid.errors import BadInputError


@dataclass(frozen=True)
class GroundTruth:
    """A contact PPG recording.

    Attributes:
        ppg: ``(N,)`` waveform.
        times: ``(N,)`` seconds, or None.
        hr_bpm: ``(N,)`` device heart rate, or None (UBFC only; informative).
        per_frame: True when sample ``i`` belongs to video frame ``i`` (UBFC).
        source: file it came from.
    """

    ppg: np.ndarray
    times: np.ndarray | None
    hr_bpm: np.ndarray | None
    per_frame: bool
    source: str = ""


def read_ubfc_ground_truth(path: str | Path) -> GroundTruth:
    """Read a UBFC-rPPG DATASET_2 ``ground_truth.txt``."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file: the shape check below says it in one line
            rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as err:
        raise BadInputError(f"cannot read UBFC ground truth {path}: {err}") from None
    if rows.shape[0] < 3 or rows.shape[1] < 2:
        raise BadInputError(f"{path}: expected 3 rows (PPG, HR, time), got shape {rows.shape}")
    return GroundTruth(
        ppg=rows[0], times=rows[2], hr_bpm=rows[1], per_frame=True, source=str(path)
    )


def read_ppg_csv(path: str | Path) -> GroundTruth:
    """Read a ``time, ppg`` CSV (header line optional)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise BadInputError(f"cannot read PPG file {path}: {err.strerror}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        fields = line.replace(";", ",").replace("\t", ",").replace(" ", ",").split(",")
        fields = [field for field in fields if field]
        if not fields:
            continue
        try:
            values = [float(field) for field in fields[:2]]
        except ValueError:
            if not records and number == 1:
                continue  # header
            raise BadInputError(f"{path}:{number}: not a number in {line!r}") from None
        if len(values) < 2:
            raise BadInputError(f"{path}:{number}: expected two columns 'time, ppg'")
        records.append(values)
    if len(records) < 2:
        raise BadInputError(f"{path}: fewer than two PPG samples")
    table = np.asarray(records)
    times = table[:, 0]
    if np.any(np.diff(times) <= 0):
        raise BadInputError(f"{path}: times must strictly increase")
    return GroundTruth(ppg=table[:, 1], times=times, hr_bpm=None, per_frame=False, source=str(path))


def read_ground_truth(path: str | Path) -> GroundTruth:
    """UBFC ``ground_truth.txt`` or a ``.csv`` by file name/content."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"PPG file {path} does not exist")
    if path.suffix.lower() == ".csv":
        return read_ppg_csv(path)
    return read_ubfc_ground_truth(path)


def ppg_at_frames(truth: GroundTruth, frame_times: np.ndarray) -> np.ndarray:
    """The PPG sampled at each video frame, ``(F,)``; NaN where it is not covered.

    Per-frame recordings (UBFC) are taken by index (shorter recordings leave NaN at
    the end); timed recordings are linearly interpolated at ``frame_times - frame_times[0]``
    against ``times - times[0]``.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    out = np.full(frame_times.shape[0], np.nan)
    if truth.per_frame or truth.times is None:
        count = min(out.shape[0], truth.ppg.shape[0])
        out[:count] = truth.ppg[:count]
        return out
    relative_frames = frame_times - frame_times[0]
    relative_truth = truth.times - truth.times[0]
    covered = relative_frames <= relative_truth[-1] + 1e-9
    out[covered] = np.interp(relative_frames[covered], relative_truth, truth.ppg)
    return out
