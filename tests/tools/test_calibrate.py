"""LFW calibration: metrics against brute-force references, pair building, manifest block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deidvid.tools.calibrate import (
    accuracy_at,
    best_accuracy_threshold,
    calibration_block,
    equal_error_rate,
    make_pairs,
    threshold_at_far,
)


def _scores(seed: int, n: int = 400, ties: bool = False):
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.5
    d = np.where(same, rng.normal(0.45, 0.1, n), rng.normal(0.75, 0.1, n))
    if ties:
        d = np.round(d, 2)  # many equal distances
    return d, same


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_best_accuracy_threshold_matches_brute_force(seed, ties):
    d, same = _scores(seed, ties=ties)
    thr, acc = best_accuracy_threshold(d, same)
    candidates = np.concatenate([d, d + 1e-9, [d.min() - 1, d.max() + 1]])
    brute = max(accuracy_at(d, same, t) for t in candidates)
    assert acc == pytest.approx(brute)
    assert accuracy_at(d, same, thr) == pytest.approx(acc)


def test_threshold_at_far_matches_definition():
    rng = np.random.default_rng(3)
    impostor = rng.normal(1.0, 0.1, 20000)
    thr = threshold_at_far(impostor, 1e-3)
    assert np.mean(impostor < thr) <= 1e-3
    # the next larger distance would let more than 0.1 % through
    above = np.sort(impostor)[np.searchsorted(np.sort(impostor), thr, side="right")]
    assert np.mean(impostor < above + 1e-12) > 1e-3


def test_equal_error_rate_matches_brute_force():
    d, same = _scores(4, n=2000)
    genuine, impostor = d[same], d[~same]
    eer = equal_error_rate(genuine, impostor)
    grid = np.linspace(d.min(), d.max(), 20001)
    far = np.array([np.mean(impostor < t) for t in grid])
    frr = np.array([np.mean(genuine >= t) for t in grid])
    k = np.argmin(np.abs(far - frr))
    assert eer == pytest.approx((far[k] + frr[k]) / 2, abs=2e-3)
    assert 0.05 < eer < 0.15  # separation of 3 sigma


def _fake_lfw(tmp_path: Path) -> dict[str, list[Path]]:
    people = {}
    for i in range(12):
        files = [tmp_path / f"p{i}" / f"{j}.jpg" for j in range(2 + i % 3)]
        people[f"p{i}"] = files
    return people


def test_make_pairs_is_seeded_balanced_and_correct(tmp_path):
    people = _fake_lfw(tmp_path)
    a = make_pairs(people, n_pairs=20, seed=5)
    b = make_pairs(people, n_pairs=20, seed=5)
    c = make_pairs(people, n_pairs=20, seed=6)
    np.testing.assert_array_equal(a.pairs, b.pairs)
    assert not np.array_equal(a.pairs, c.pairs)
    assert a.same.sum() == 20 and (~a.same).sum() == 20
    same_id = a.identity[a.pairs[:, 0]] == a.identity[a.pairs[:, 1]]
    np.testing.assert_array_equal(same_id, a.same)
    assert (a.pairs[:, 0] != a.pairs[:, 1]).all()
    assert len({tuple(p) for p in a.pairs}) == len(a.pairs)  # no duplicates
    assert set(np.unique(a.fold)) == {0, 1}
    with pytest.raises(ValueError, match="same-person pairs"):
        make_pairs(people, n_pairs=10_000)


def test_calibration_block_on_separable_embeddings(tmp_path):
    people = _fake_lfw(tmp_path)
    pairs = make_pairs(people, n_pairs=20, seed=0)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(people), 16))
    emb = centres[pairs.identity] + 0.05 * rng.normal(size=(len(pairs.images), 16))
    block = calibration_block(emb, pairs, standard_threshold=None, found=np.ones(len(pairs.images), bool))
    assert block["accuracy_at_threshold"] == 1.0
    assert block["two_fold"]["accuracy"] == 1.0
    assert block["far_1e-3"]["tar"] == 1.0 and block["eer"] == 0.0
    fixed = calibration_block(emb, pairs, standard_threshold=1e-6, found=np.ones(len(pairs.images), bool))
    assert fixed["threshold"] == 1e-6 and fixed["accuracy_at_threshold"] == 0.5


@pytest.mark.parametrize("name", ["faceapi_resnet", "mobilefacenet"])
def test_manifest_holds_calibration(name):
    from deidvid.weights.manifest import read_manifest

    entry = read_manifest().get("models", {}).get(name)
    if not entry or "calibration" not in entry:
        pytest.skip("not calibrated yet (python -m deidvid.tools.calibrate)")
    cal = entry["calibration"]
    for key in ("threshold", "accuracy_at_threshold", "two_fold", "far_1e-3", "eer", "pairs"):
        assert key in cal
    assert cal["far_1e-3"]["far"] <= 1e-3
    assert 0.5 < cal["accuracy_at_threshold"] <= 1.0
