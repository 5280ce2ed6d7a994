"""``deidvid.methods.composed``: a method run on another's output (``surrogate+ae``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from deidvid.anonymise.options import AnonymiseOptions
from deidvid.anonymise.run import anonymise_video
from deidvid.io.decode import iter_frames, probe
from deidvid.methods import build_method
from deidvid.methods.base import CropClip, Method, PasteMode
from deidvid.methods.composed import Composed
from deidvid.testing.synthetic_video import make_face_video


class Recorder(Method):
    """Adds ``offset`` to every pixel and logs the hooks it sees."""

    def __init__(self, name: str, offset: float, log: list[str], paste_mode: PasteMode = PasteMode.REPLACE) -> None:
        self.name, self.offset, self.log, self.paste_mode = name, offset, log, paste_mode
        self.keeps_pulse_by_default = paste_mode is PasteMode.REPLACE

    def start_video(self) -> None:
        self.log.append(f"{self.name}.start_video")

    def start_track(self, track) -> None:  # noqa: ANN001
        self.log.append(f"{self.name}.start_track")

    def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
        self.log.append(f"{self.name}.run")
        return [clip.frames * 0 + clip.frames.mean() + self.offset for clip in clips]

    def finish_frame(self, frame_index: int, canvas: np.ndarray) -> None:
        self.log.append(f"{self.name}.finish_frame")

    def warnings(self) -> list[str]:
        return [f"{self.name} warned"]


def test_the_second_runs_on_the_firsts_output_and_both_see_every_hook():
    log: list[str] = []
    first = Recorder("draw", 0.25, log)
    then = Recorder("perturb", 0.5, log, PasteMode.RESIDUAL)
    both = Composed(first, then)
    assert both.name == "draw+perturb"
    assert (both.paste_mode, both.keeps_pulse_by_default) == (PasteMode.REPLACE, True)  # the first's
    clip = CropClip(np.full((4, 8, 8, 3), 0.1, np.float32), None, 0, 0, np.arange(4.0))
    both.start_video()
    both.start_track(None)
    (out,) = both.run([clip])
    np.testing.assert_allclose(out, 0.1 + 0.25 + 0.5)  # not 0.1 + 0.5: the second saw the first's output
    both.finish_frame(0, np.zeros((2, 2, 3), np.float32))
    assert both.warnings() == ["draw warned", "perturb warned"]
    assert log == [
        "draw.start_video", "perturb.start_video", "draw.start_track", "perturb.start_track",
        "draw.run", "perturb.run", "draw.finish_frame", "perturb.finish_frame",
    ]  # fmt: skip
    assert both.observer() is None


def test_whole_frames_only_when_a_part_has_a_per_frame_hook():
    """Forwarding the hook is not having one: the pipeline keeps its faces-only window."""

    class Plain(Method):
        name = "plain"

        def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
            return [clip.frames for clip in clips]

    assert not Composed(Plain(), Plain()).sees_whole_frames
    assert Composed(Plain(), Recorder("hook", 0, [])).sees_whole_frames
    assert Composed(Recorder("hook", 0, []), Plain()).sees_whole_frames
    assert not build_method("surrogate+ae").sees_whole_frames


def test_a_method_that_watches_pass_1_cannot_run_second():
    class Watcher(Recorder):
        def observer(self):  # noqa: ANN202
            return object()

    with pytest.raises(ValueError, match="cannot run second"):
        Composed(Recorder("a", 0, []), Watcher("b", 0, [])).observer()


def test_surrogate_ae_is_the_surrogate_then_the_residual_autoencoder():
    method = build_method("surrogate+ae", seed=2, strength=3 / 255)
    assert isinstance(method, Composed) and method.name == "surrogate+ae"
    assert (method.first.name, method.then.name) == ("surrogate", "ae")
    assert method.paste_mode is PasteMode.REPLACE and method.keeps_pulse_by_default  # the pulse transplant runs
    assert method.then.model.config.strength == pytest.approx(3 / 255)
    assert method.first.seed == 2
    with pytest.raises(ValueError, match="strength applies"):
        build_method("surrogate", strength=3 / 255)


def test_through_the_pipeline_the_perturbation_lands_on_the_surrogate(tmp_path):
    source = make_face_video(tmp_path / "in.mp4", n_frames=24, audio=False)

    def run(method: str, name: str) -> tuple:
        opts = AnonymiseOptions(method=method, keep_pulse=False, clip_len=12, overlap=4)
        report = anonymise_video(source, tmp_path / name, opts)
        return report, np.stack([f.rgb for f in iter_frames(tmp_path / name, probe(tmp_path / name))]).astype(float)

    surrogate_report, surrogate = run("surrogate", "s.mp4")
    report, composed = run("surrogate+ae", "sa.mp4")
    assert report.method == "surrogate+ae" and report.frames_unprocessed == 0
    assert set(report.identity_check) == set(surrogate_report.identity_check)  # the check covers it
    face = (slice(None), slice(90, 150), slice(130, 190))
    difference = np.abs(composed[face] - surrogate[face]).mean()
    assert 0.3 < difference < 8.0  # a perturbation of a few grey levels, not another face
    background = (slice(None), slice(0, 40), slice(0, 60))
    assert np.abs(composed[background] - surrogate[background]).mean() < 0.5
