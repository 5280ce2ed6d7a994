"""The anonymise report: one typed record per video, serialised to the JSON report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from deidvid.faces.track import FaceTrack
from deidvid.io.decode import VideoInfo

#: Bumped when a key changes meaning or disappears (new keys do not bump it).
SCHEMA_VERSION = 1


@dataclass
class TrackReport:
    """One face track of the video."""

    id: int
    start_frame: int
    end_frame: int  # inclusive
    frames: int
    interpolated_frames: int
    # The pulse transplant for this track (None when it was off): ran, why not, amplitude carried.
    pulse: dict[str, Any] | None = None
    video: int = 0  # which of the file's video streams (0: the first; see VideoReport.video_streams)
    # What the method decided for this track (e.g. the surrogate chosen), or None.
    method: dict[str, Any] | None = None

    @classmethod
    def of(
        cls, track: FaceTrack, pulse: dict[str, Any] | None = None, video: int = 0, method: dict[str, Any] | None = None
    ) -> TrackReport:
        return cls(
            id=track.track_id,
            start_frame=track.start,
            end_frame=track.end - 1,
            frames=len(track.landmarks),
            interpolated_frames=int((~track.observed).sum()),
            pulse=pulse,
            video=video,
            method=method,
        )


@dataclass
class StreamReport:
    """One video stream of the file (every one is processed and written, in this order)."""

    stream_index: int  # the stream's number in the input container
    width: int
    height: int
    fps: float
    frames: int
    frames_written: int
    faces: int
    frames_unprocessed: int

    @classmethod
    def of(cls, info: VideoInfo, frames: int, written: int, faces: int, unprocessed: int) -> StreamReport:
        return cls(info.stream_index, info.width, info.height, float(info.fps), frames, written, faces, unprocessed)


@dataclass
class VideoReport:
    """Everything the JSON report says about one anonymised video.

    Counts (frames, faces, tracks, ...) are summed over the file's video streams;
    ``width``/``height``/``fps`` are the first stream's; ``video_streams`` has each.
    """

    input: str
    output: str
    method: str
    width: int
    height: int
    fps: float
    frames: int
    frames_written: int
    faces: int
    tracks: list[TrackReport]
    frames_with_faces: int
    face_frames_processed: int
    face_frames_interpolated: int
    frames_unprocessed: int
    fallback: str
    detection_frames: int
    detections: int
    # Per recogniser: match rate of output vs input crops (method output, before paste/encode).
    identity_check: dict[str, dict] | None
    keep_pulse: bool = False
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    video_streams: list[StreamReport] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
