"""End to end on synthetic videos: a still face whose skin pulses at a known rate.

skimage's astronaut (public domain) -> dlib landmarks -> skin region -> frames with
an injected pulse (+ sensor noise, uint8) -> mean RGB -> POS/CHROM/GREEN -> HR.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from deidvid.faces import skin
from deidvid.rppg import hr, methods, signals
from deidvid.rppg.metrics import snr_db
from deidvid.testing.synthetic_pulse import synthetic_pulse_frames

FS = 30.0
SECONDS = 10.0
CROP = (slice(20, 212), slice(124, 316))  # 192x192 around the astronaut's face


@pytest.fixture(scope="module")
def face():
    dlib = pytest.importorskip("dlib")
    from deidvid.weights import package_file

    image = np.ascontiguousarray(skimage.data.astronaut()[CROP])
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(package_file("dlib_landmarks68")))
    boxes, scores, _ = detector.run(image, 1)
    shape = predictor(image, boxes[int(np.argmax(scores))])
    landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    return image, skin.skin_region(landmarks, image.shape[:2])


def _trace(face, bpm, seed=0):
    image, region = face
    frames = synthetic_pulse_frames(
        image, region.full_mask(image.shape[:2]), bpm, SECONDS, FS, amplitude=0.005,
        noise=3.0, seed=seed, harmonic=0.15,
    )
    return np.stack([signals.masked_mean_rgb(frame, region) for frame in frames])


@pytest.mark.parametrize("bpm", [45, 75, 110, 160])
def test_injected_rate_recovered_from_video(face, bpm):
    rgb = _trace(face, bpm, seed=bpm)
    band = (0.6, 3.3) if bpm > 150 else hr.DEFAULT_BAND_HZ
    for method in ("pos", "chrom", "green"):
        pulse = methods.rppg_signal(method, rgb, FS)
        resolution = hr.frequency_resolution_bpm(pulse.size, FS)
        estimate = hr.heart_rate(pulse, FS, band)
        # Within one periodogram bin (3.5 bpm for 10 s at 30 fps).
        assert abs(estimate - bpm) <= resolution, (method, estimate)


def test_snr_with_pulse_above_without(face):
    with_pulse = methods.pos(_trace(face, 90, seed=1), FS)
    without = methods.pos(_trace(face, None, seed=1), FS)
    snr_with, snr_without = snr_db(with_pulse, FS, 90), snr_db(without, FS, 90)
    assert snr_with > 5.0 > snr_without
    assert snr_with - snr_without > 10.0


@pytest.mark.slow
def test_rate_survives_h264_round_trip(face, tmp_path):
    av = pytest.importorskip("av")
    image, region = face
    bpm = 72
    path = tmp_path / "pulse.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(FS))
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        mask = region.full_mask(image.shape[:2])
        for frame in synthetic_pulse_frames(image, mask, bpm, SECONDS, FS, amplitude=0.005):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        rgb = np.stack([
            signals.masked_mean_rgb(
                np.ascontiguousarray(frame.to_ndarray(format="rgb24")), region
            )
            for frame in container.decode(video=0)
        ])
    assert rgb.shape[0] == int(SECONDS * FS)
    estimate = hr.heart_rate(methods.pos(rgb, FS), FS)
    assert abs(estimate - bpm) <= hr.frequency_resolution_bpm(rgb.shape[0], FS)
