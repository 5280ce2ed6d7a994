"""The method contract: a new method plugs in through its hooks alone, and the pipeline calls them."""

from __future__ import annotations

import numpy as np

from deidvid.anonymise.models import PipelineModels
from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video
from deidvid.io.decode import iter_frames, probe
from deidvid.methods import CropClip, Method, PasteMode
from deidvid.testing.synthetic_video import make_face_video


class _Observer:
    def __init__(self) -> None:
        self.seen: dict[int, set[int]] = {}
        self.finished: list[int] = []

    def observe(self, track_id, frame_index, rgb, landmarks):  # noqa: ANN001, ANN201
        assert rgb.ndim == 3 and landmarks.shape == (68, 2)
        self.seen.setdefault(track_id, set()).add(frame_index)

    def finish(self, tracks, times_s):  # noqa: ANN001, ANN201
        self.finished = [t.track_id for t in tracks]
        assert len(times_s) >= max(t.end for t in tracks)


class _GreyFace(Method):
    """Replaces the face with one grey per track, chosen when the track starts."""

    name = "grey"
    paste_mode = PasteMode.REPLACE

    def __init__(self) -> None:
        self.grey: dict[int, float] = {}
        self.pass1 = _Observer()
        self.frames_finished = 0
        self.videos_started = 0

    def start_video(self) -> None:
        self.videos_started += 1
        self.grey.clear()

    def observer(self):  # noqa: ANN201
        return self.pass1

    def start_track(self, track) -> None:  # noqa: ANN001
        self.grey[track.track_id] = 0.25 + 0.5 * (track.track_id % 2)

    def run(self, clips: list[CropClip]) -> list[np.ndarray]:
        return [np.full_like(c.frames, self.grey[c.track_id]) for c in clips]

    def finish_frame(self, frame_index: int, canvas: np.ndarray) -> None:
        self.frames_finished += 1


def test_a_new_method_gets_every_hook(tmp_path, monkeypatch):
    src = make_face_video(tmp_path / "in.mp4", n_frames=40, audio=False)
    method = _GreyFace()
    monkeypatch.setattr(PipelineModels, "method", method)  # the registry would build it by name
    opts = AnonymiseOptions(method="grey", identity_check=False, keep_pulse=False, lossless=True, clip_len=16, overlap=4)
    report = anonymise_video(src, tmp_path / "out.mp4", opts)
    track = report.tracks[0]
    assert method.pass1.finished == [track.id]
    # pass 1 saw the original face in (almost) every frame of the track, before smoothing/gap filling
    assert len(method.pass1.seen[track.id]) >= track.frames - track.interpolated_frames
    assert set(method.grey) == {track.id}
    assert method.videos_started == 1
    assert method.frames_finished == track.frames  # after paste, every frame with a face
    # the face is the track's grey where the mask is solid
    out = [f.rgb for f in iter_frames(tmp_path / "out.mp4", probe(tmp_path / "out.mp4"))]
    centre = out[20][110:130, 150:170].reshape(-1, 3)  # the synthetic face's middle (320x240 frame)
    assert np.abs(centre.astype(float) - 0.25 * 255).max() <= 2


def test_start_video_forgets_the_last_videos_tracks(tmp_path):
    """A batch shares one method between videos: a new video's track 0 is not the last one's."""
    from deidvid.methods.surrogate import SurrogateFace

    src = make_face_video(tmp_path / "in.mp4", n_frames=20, audio=False)
    models = PipelineModels(AnonymiseOptions(method="surrogate", identity_check=False, keep_pulse=False))
    anonymise_video(src, tmp_path / "out.mp4", models.opts, models=models)
    method = models.method
    assert isinstance(method, SurrogateFace) and method.chosen and method.observer().samples
    method.start_video()
    assert not (method.tracks or method.chosen or method.covered)
    assert not (method.observer().samples or method.observer().tracks or method.observer().observations)


class _WideGreyFace(_GreyFace):
    """The grey face, with context around the tight box; records the crops it is given."""

    name = "wide-grey"
    crop_margin = 0.375

    def __init__(self) -> None:
        super().__init__()
        self.crop_shapes: set[tuple[int, ...]] = set()
        self.face_extents: list[float] = []

    def run(self, clips: list[CropClip]) -> list[np.ndarray]:
        for c in clips:
            self.crop_shapes.add(c.frames.shape[1:])
            self.face_extents += [float(np.ptp(lm, axis=0).max()) for lm in c.landmarks]
        return super().run(clips)


def test_a_method_with_a_crop_margin_gets_larger_crops_with_the_face_at_its_usual_size(tmp_path, monkeypatch):
    from deidvid.faces.geometry import CROP_SIZE, crop_size

    src = make_face_video(tmp_path / "in.mp4", n_frames=24, audio=False)
    method = _WideGreyFace()
    monkeypatch.setattr(PipelineModels, "method", method)
    opts = AnonymiseOptions(method="wide-grey", identity_check=False, keep_pulse=False, lossless=True, clip_len=16, overlap=4)
    anonymise_video(src, tmp_path / "out.mp4", opts)
    assert method.crop_shapes == {(crop_size(0.375), crop_size(0.375), 3)} == {(176, 176, 3)}
    # the 68 landmarks span what they span in the paper's tight crop (the forehead band adds the rest)
    assert 0.6 * CROP_SIZE < np.median(method.face_extents) < CROP_SIZE
    out = [f.rgb for f in iter_frames(tmp_path / "out.mp4", probe(tmp_path / "out.mp4"))]
    centre = out[12][110:130, 150:170].reshape(-1, 3)
    assert np.abs(centre.astype(float) - 0.25 * 255).max() <= 2
