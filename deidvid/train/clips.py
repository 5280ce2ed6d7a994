"""Face clips exactly as the pipeline feeds them to the model (training data, analysis).

Runs pass 1 of the pipeline (detect, landmarks, track) and cuts every track into
``clip_len``-frame clips of 128x128 crops, with the landmarks in crop pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deidvid.faces.geometry import CROP_SIZE, crop_box, cut_crop
from deidvid.io.decode import iter_frames, probe
from deidvid.faces.find import FaceFinding, analyse_video


@dataclass(frozen=True)
class FaceClip:
    """One track's crops over consecutive frames.

    Attributes:
        frames: ``(T, 128, 128, 3)`` uint8 RGB crops.
        landmarks: ``(T, 68, 2)`` float landmarks in crop pixels.
        track_id: the track the clip was cut from.
        start: index of the first frame in the video.
        fps: the video's average frame rate.
    """

    frames: np.ndarray
    landmarks: np.ndarray
    track_id: int
    start: int
    fps: float


def extract_clips(
    video_path: str | Path,
    clip_len: int = 64,
    stride: int = 64,
    finding: FaceFinding | None = None,
    min_len: int | None = None,
) -> list[FaceClip]:
    """All ``clip_len``-frame face clips of a video, stepping ``stride`` frames.

    Tracks shorter than ``min_len`` (default ``clip_len``) give no clip; a track
    of at least ``min_len`` but under ``clip_len`` frames gives one shorter clip.
    """
    path = Path(video_path)
    info = probe(path)
    analysis = analyse_video(path, finding, info=info)
    min_len = clip_len if min_len is None else min_len
    tracks = [t for t in analysis.tracks if len(t.landmarks) >= min_len]
    crops: dict[int, list[np.ndarray]] = {t.track_id: [] for t in tracks}
    points: dict[int, list[np.ndarray]] = {t.track_id: [] for t in tracks}
    for frame in iter_frames(path, info):
        for track in tracks:
            if track.covers(frame.index):
                box = crop_box(track.at(frame.index))
                crops[track.track_id].append(cut_crop(frame.rgb, box, CROP_SIZE))
                points[track.track_id].append(box.to_crop(track.at(frame.index)))
    clips = []
    for track in tracks:
        frames, lms = np.stack(crops[track.track_id]), np.stack(points[track.track_id])
        n = len(frames)
        starts = range(0, max(n - clip_len, 0) + 1, stride) if n >= clip_len else [0]
        for s in starts:
            clips.append(
                FaceClip(frames[s : s + clip_len], lms[s : s + clip_len], track.track_id, track.start + s, float(info.fps))
            )
    return clips
