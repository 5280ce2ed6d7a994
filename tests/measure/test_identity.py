"""``deidvid.measure.identity``: the one match-rate scorer, and the identity check built on it.

A stand-in recogniser (``mean_colour_recogniser`` in conftest: embedding = mean RGB of
the image, a real :class:`Recogniser` with its network swapped) makes every distance
computable by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deidvid.measure.identity import (
    IdentityScorer,
    PairBatcher,
    identity_scores,
    match_rate,
    pair_distances,
)
from deidvid.measure.identity_check import IdentityCheck
from deidvid.recognise import RECOGNISERS, Recogniser


def _frames(n: int, seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def _mean_colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Independent distances of the stand-in: float64 mean colours of uint8 frames."""
    ma, mb = a.reshape(len(a), -1, 3).mean(axis=1) / 255.0, b.reshape(len(b), -1, 3).mean(axis=1) / 255.0
    return np.sqrt(((ma - mb) ** 2).sum(axis=1))


LANDMARKS = np.zeros((68, 2), np.float32)


def test_pair_distances_match_a_loop():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 7)).astype(np.float32), rng.normal(size=(5, 7)).astype(np.float32)
    expected = [np.sqrt(sum((x - y) ** 2 for x, y in zip(ra.tolist(), rb.tolist()))) for ra, rb in zip(a, b)]
    np.testing.assert_allclose(pair_distances(a, b), expected, rtol=1e-6)
    assert pair_distances(a, b).dtype == np.float32
    with pytest.raises(ValueError, match="shapes differ"):
        pair_distances(a, b[:, :3])


def test_match_rate_counts_strictly_below_the_threshold():
    distances = np.array([0.1, 0.5, 0.6, 0.9])
    assert match_rate(distances, 0.6) == 0.5  # 0.6 itself is not a match
    assert match_rate(distances, 1.0) == 1.0
    assert match_rate(distances, None) is None
    assert match_rate(np.zeros(0), 0.6) is None


def test_identity_scores_of_some_distances():
    scores = identity_scores(np.array([0.2, 0.4, 0.9], np.float32), 0.5)
    assert scores["frames"] == 3 and scores["threshold"] == 0.5
    assert scores["match_rate"] == pytest.approx(2 / 3)
    assert scores["mean_distance"] == pytest.approx(0.5)
    assert scores["median_distance"] == pytest.approx(0.4)
    empty = identity_scores(np.zeros(0), None)
    assert empty == {"frames": 0, "threshold": None, "match_rate": None, "mean_distance": None,
                     "median_distance": None, "threshold_far1e3": None, "match_rate_far1e3": None}
    strict = identity_scores(np.array([0.2, 0.4, 0.9], np.float32), 0.5, 0.3)
    assert strict["threshold_far1e3"] == 0.3 and strict["match_rate_far1e3"] == pytest.approx(1 / 3)
    assert strict["match_rate"] == scores["match_rate"]


def test_scorer_files_pairs_by_key_and_counts_at_the_recognisers_threshold(mean_colour_recogniser):
    reference, test = _frames(6, 1), _frames(6, 2)
    test[:2] = reference[:2]  # two identical pairs: distance 0
    keys = [7, 7, 7, 9, 9, 9]
    threshold = float(np.median(_mean_colour_distance(reference, test)))
    strict = threshold / 2
    scorer = IdentityScorer({"mean": mean_colour_recogniser(threshold, strict), "raw": mean_colour_recogniser(None)})
    scorer.score(reference, test, np.zeros((6, 68, 2)), keys)

    assert scorer.thresholds == {"mean": threshold, "raw": None}
    assert scorer.thresholds_far1e3 == {"mean": strict, "raw": None}
    assert scorer.keys() == [7, 9]
    expected = _mean_colour_distance(reference, test)
    for key, rows in ((7, slice(0, 3)), (9, slice(3, 6))):
        np.testing.assert_allclose(scorer.distances("mean", key), expected[rows], atol=1e-6)
        scores = scorer.summary(key)
        assert scores["mean"]["frames"] == 3
        assert scores["mean"]["match_rate"] == pytest.approx(np.mean(expected[rows] < threshold))
        assert scores["mean"]["match_rate_far1e3"] == pytest.approx(np.mean(expected[rows] < strict))
        assert scores["mean"]["threshold_far1e3"] == strict
        assert scores["raw"]["match_rate_far1e3"] is None
        assert scores["mean"]["mean_distance"] == pytest.approx(expected[rows].mean(), abs=1e-6)
        assert scores["raw"]["match_rate"] is None  # no threshold: distances only
        assert scores["raw"]["mean_distance"] == pytest.approx(expected[rows].mean(), abs=1e-6)
    assert scorer.summary("never")["mean"]["frames"] == 0
    with pytest.raises(RuntimeError, match="keep_embeddings"):
        scorer.embeddings("mean", 7)


def test_scorer_keeps_embeddings_for_the_gallery(mean_colour_recogniser):
    reference, test = _frames(4, 3), _frames(4, 4)
    scorer = IdentityScorer({"mean": mean_colour_recogniser(0.1)}, keep_embeddings=True)
    scorer.score(reference, test, np.zeros((4, 68, 2)), [0, 1, 0, 1])
    original, deid = scorer.embeddings("mean", 1)
    np.testing.assert_allclose(original, reference[[1, 3]].reshape(2, -1, 3).mean(axis=1) / 255.0, atol=1e-6)
    np.testing.assert_allclose(deid, test[[1, 3]].reshape(2, -1, 3).mean(axis=1) / 255.0, atol=1e-6)
    assert scorer.embeddings("mean", 5)[0].shape == (0, 3)


def test_precomputed_embeddings_are_scored_alike(mean_colour_recogniser):
    """Training validation caches the input's embeddings and hands them in."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    scorer = IdentityScorer({"mean": mean_colour_recogniser(2.0)})
    scorer.add_embeddings("mean", a, b, ["v"] * 4)
    distances = np.linalg.norm(a.astype(np.float64) - b, axis=1)
    assert scorer.summary("v")["mean"]["match_rate"] == pytest.approx(np.mean(distances < 2.0))
    with pytest.raises(ValueError, match="keys"):
        scorer.add_embeddings("mean", a, b, ["v"])


def test_batcher_scores_in_batches_of_the_given_size(mean_colour_recogniser):
    scorer = IdentityScorer({"mean": mean_colour_recogniser(0.2)})
    sizes = []
    real_score = scorer.score
    scorer.score = lambda ref, test, marks, keys: (sizes.append(len(keys)), real_score(ref, test, marks, keys))
    batcher = PairBatcher(scorer, batch_size=3)
    reference, test = _frames(7, 6), _frames(7, 7)
    for i in range(7):
        batcher.add(i % 2, reference[i], test[i], LANDMARKS)
    assert sizes == [3, 3]
    batcher.flush()
    assert sizes == [3, 3, 1]
    expected = _mean_colour_distance(reference, test)
    np.testing.assert_allclose(scorer.distances("mean", 0), expected[0::2], atol=1e-6)
    np.testing.assert_allclose(scorer.distances("mean", 1), expected[1::2], atol=1e-6)
    with pytest.raises(ValueError):
        PairBatcher(scorer, batch_size=0)


def test_identity_check_scores_every_stride_th_crop(mean_colour_recogniser):
    clip_in = _frames(10, 8).astype(np.float32) / 255.0
    clip_out = _frames(10, 9).astype(np.float32) / 255.0
    clip_out[0] = clip_in[0]  # the first scored crop is left recognisable
    check = IdentityCheck({"mean": mean_colour_recogniser(1e-3)}, stride=4)
    check.observe(clip_in, clip_out, np.zeros((10, 68, 2)))
    summary = check.summary()["mean"]
    assert list(summary) == ["frames", "match_rate", "mean_distance", "threshold"]  # the anonymise report's keys
    picked = [0, 4, 8]
    expected = _mean_colour_distance(clip_in[picked] * 255.0, clip_out[picked] * 255.0)
    assert summary["frames"] == 3 and summary["threshold"] == 1e-3
    assert summary["match_rate"] == pytest.approx(1 / 3)
    assert summary["mean_distance"] == pytest.approx(expected.mean(), abs=1e-6)
    assert check.warnings() == [
        "identity check: recogniser mean still matches 33% of 3 sampled face frames (identity not removed there)"
    ]


def test_identity_check_without_recognisers_or_matches_is_quiet(mean_colour_recogniser):
    empty = IdentityCheck({}, stride=1)
    empty.observe(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 3)), np.zeros((2, 68, 2)))
    assert empty.summary() == {} and empty.warnings() == []
    fresh = IdentityCheck({"mean": mean_colour_recogniser(0.5)})
    assert fresh.summary()["mean"]["match_rate"] is None and fresh.warnings() == []


def test_identity_check_scores_in_order_from_copies(mean_colour_recogniser):
    """The worker thread scores every clip handed over, in order, from copies of the picked
    frames: the pipeline reuses its arrays as soon as ``observe`` returns."""
    clips_in = [_frames(6, 10 + i).astype(np.float32) / 255.0 for i in range(5)]
    clips_out = [_frames(6, 20 + i).astype(np.float32) / 255.0 for i in range(5)]
    expected = np.concatenate(
        [_mean_colour_distance(a[::3] * 255.0, b[::3] * 255.0) for a, b in zip(clips_in, clips_out)]
    )
    check = IdentityCheck({"mean": mean_colour_recogniser(1e-3)}, stride=3)
    try:
        for clip_in, clip_out in zip(clips_in, clips_out):
            check.observe(clip_in, clip_out, np.zeros((6, 68, 2)))
            clip_in[:] = 0.0  # reused by the caller
            clip_out[:] = 1.0
        assert len(check._pending) <= IdentityCheck.MAX_PENDING
        check.wait()
        np.testing.assert_allclose(check.scorer.distances("mean"), expected, atol=1e-6)
    finally:
        check.close()


def test_identity_check_raises_the_workers_failure(mean_colour_recogniser):
    check = IdentityCheck({"mean": mean_colour_recogniser(1e-3)}, stride=1)
    try:
        check.observe(np.zeros((2, 8, 8, 4)), np.zeros((2, 8, 8, 4)), np.zeros((2, 68, 2)))  # 4 channels: fails in the worker
        with pytest.raises(ValueError, match="images must be"):
            check.summary()
    finally:
        check.close()
    assert check._worker._shutdown


def test_thresholds_come_from_the_recogniser_registry(mean_colour_recogniser):
    uncalibrated = mean_colour_recogniser(None)
    assert uncalibrated.calibrated_threshold is None
    from deidvid.errors import WeightsError

    with pytest.raises(WeightsError, match="calibrate"):
        _ = uncalibrated.threshold
    assert mean_colour_recogniser(0.25).threshold == 0.25
    spec_only = Recogniser(RECOGNISERS["faceapi_resnet"], torch.nn.Identity(), calibration=None)
    assert spec_only.threshold == RECOGNISERS["faceapi_resnet"].standard_threshold


def test_real_recogniser_same_face_matches_and_blur_moves_it(astronaut, astronaut_landmarks):
    """Recogniser A on the astronaut: the scorer's distance is the recogniser's own."""
    import cv2

    from deidvid.recognise import load_recogniser
    from deidvid.recognise.differentiable import image_batch

    rec = load_recogniser("A")
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 6)
    scorer = IdentityScorer({"A": rec})
    batcher = PairBatcher(scorer, batch_size=2)
    batcher.add(0, astronaut, astronaut, astronaut_landmarks)
    batcher.add(1, astronaut, blurred, astronaut_landmarks)
    scores = {key: scorer.summary(key)["A"] for key in (0, 1)}
    assert scores[0]["mean_distance"] == 0.0 and scores[0]["match_rate"] == 1.0
    assert scores[0]["threshold"] == rec.threshold
    with torch.inference_mode():
        marks = torch.from_numpy(astronaut_landmarks[None].astype(np.float32))
        direct = rec.distance(rec.embed(image_batch(astronaut[None]), marks), rec.embed(image_batch(blurred[None]), marks))
    assert scores[1]["mean_distance"] == pytest.approx(float(direct), rel=1e-5)


def test_bundled_recognisers_carry_the_strict_threshold_from_the_manifest():
    """One place: the manifest's LFW calibration at FAR 1e-3, below the accuracy threshold."""
    from deidvid.recognise import ALL_RECOGNISERS, FAR_1E3_KEY, RECOGNISERS, Recogniser
    from deidvid.weights.manifest import manifest_entry

    for name in ALL_RECOGNISERS:
        calibration = manifest_entry(name)["calibration"]
        rec = Recogniser(RECOGNISERS[name], torch.nn.Identity(), calibration)
        assert rec.far1e3_threshold == calibration[FAR_1E3_KEY]["threshold"]
        assert rec.far1e3_tar == calibration[FAR_1E3_KEY]["tar"]
        assert 0 < rec.far1e3_threshold < rec.calibrated_threshold, name
    bare = Recogniser(RECOGNISERS["mobileface"], torch.nn.Identity(), None)
    assert bare.far1e3_threshold is None and bare.far1e3_tar is None


def test_identity_check_scores_a_frame_that_overlapping_clips_share_once(mean_colour_recogniser):
    """Clips of a track overlap (64 frames every 48): each picked video frame is scored with
    the first clip that holds it; another track's clips are counted apart."""
    frames_in = _frames(20, 30).astype(np.float32) / 255.0
    frames_out = _frames(20, 31).astype(np.float32) / 255.0
    check = IdentityCheck({"mean": mean_colour_recogniser(1e-3)}, stride=3)
    try:
        for track_id, start, stop in ((0, 0, 10), (0, 6, 16), (0, 12, 20), (1, 7, 12)):
            part = slice(start, stop)
            check.observe(frames_in[part], frames_out[part], np.zeros((stop - start, 68, 2)), track_id, start)
        check.wait()
        picked = [0, 3, 6, 9, 12, 15, 18, 9]  # track 0: 0..18 once; track 1 (frames 7-11): 9
        expected = _mean_colour_distance(frames_in[picked] * 255.0, frames_out[picked] * 255.0)
        np.testing.assert_allclose(check.scorer.distances("mean"), expected, atol=1e-6)
        assert check.summary()["mean"]["frames"] == len(picked)
    finally:
        check.close()
