"""Regenerate the bundled example: python examples/make_example.py

examples/astronaut_72bpm.mp4: skimage's public-domain astronaut still (NASA),
animated with smooth head motion, a synthetic 72 bpm pulse on the skin
(1.5/255 amplitude) and a 440 Hz tone, 480x360, 30 fps, 10 s.
"""

from pathlib import Path

from deidvid.testing.synthetic_video import make_face_video

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "astronaut_72bpm.mp4"
    make_face_video(out, n_frames=300, fps=30, size=(480, 360), pulse_bpm=72.0, audio=True, crf=14)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
