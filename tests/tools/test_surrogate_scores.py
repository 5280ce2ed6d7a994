"""deidvid.tools.surrogate_scores: every surrogate scored at the choice, the choice itself untouched."""

from __future__ import annotations

from deidvid.surrogate import choose
from deidvid.surrogate.bank import load_bank
from deidvid.testing.synthetic_video import make_face_video
from deidvid.tools.surrogate_scores import track_scores


def test_every_surrogate_is_scored_once_per_track_and_the_choice_is_restored(tmp_path):
    real = choose.choose_surrogate
    video = make_face_video(tmp_path / "in.mp4", n_frames=24, audio=False)
    ((apparent, scores),) = track_scores(video)
    assert apparent in ("female", "male")
    assert sorted(scores) == list(range(len(load_bank())))
    assert all(0.5 < s < 2.0 for s in scores.values())  # distance / threshold of a face drawn over a face
    assert choose.choose_surrogate is real
