import numpy as np

from deidvid.train.clips import extract_clips
from deidvid.testing.synthetic_video import make_face_video


def test_clips_are_128_crops_with_landmarks_inside(tmp_path):
    src = make_face_video(tmp_path / "f.mp4", n_frames=40, audio=False)
    clips = extract_clips(src, clip_len=16, stride=16)
    assert len(clips) == 2  # 40 frames -> clips at 0 and 16 (a third would pass the end)
    clip = clips[0]
    assert clip.frames.shape == (16, 128, 128, 3) and clip.frames.dtype == np.uint8
    assert clip.landmarks.shape == (16, 68, 2)
    # tight crop: landmarks span most of the crop and stay inside it
    assert clip.landmarks.min() > -2 and clip.landmarks.max() < 130
    assert np.ptp(clip.landmarks[0], axis=0).max() > 80
    assert clips[1].start == 16 and clip.fps == 30.0
