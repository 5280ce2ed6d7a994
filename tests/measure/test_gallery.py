"""``deidvid.measure.gallery``: closed-set top-1 and EER against identity templates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deidvid.errors import BadInputError
from deidvid.measure.gallery import (
    closed_set_scores,
    equal_error_rate,
    gallery_images,
    gallery_scores,
    gallery_templates,
    template_distances,
)
from deidvid.measure.identity import IdentityScorer


def _brute_force_eer(genuine, impostor):
    """Independent EER: scan every score as threshold (accept if distance < threshold)."""
    best = None
    for t in sorted(set(genuine.tolist()) | set(impostor.tolist())):
        frr = sum(g >= t for g in genuine) / len(genuine)
        far = sum(i < t for i in impostor) / len(impostor)
        if best is None or abs(far - frr) < best[0]:
            best = (abs(far - frr), (far + frr) / 2)
    return best[1]


def test_equal_error_rate():
    rng = np.random.default_rng(0)
    genuine, impostor = rng.normal(0.4, 0.1, 2000), rng.normal(0.8, 0.1, 2000)
    # Two unit-variance-scaled normals 4 sigma apart cross at 2 sigma: EER = Phi(-2).
    assert equal_error_rate(genuine, impostor) == pytest.approx(0.0228, abs=0.006)
    assert equal_error_rate(np.array([0.1, 0.2]), np.array([0.5, 0.6])) == 0.0
    assert equal_error_rate(impostor, genuine) > 0.9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_equal_error_rate_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    genuine, impostor = rng.normal(0.5, 0.2, 60), rng.normal(0.8, 0.2, 90)
    assert equal_error_rate(genuine, impostor) == pytest.approx(_brute_force_eer(genuine, impostor))


def test_template_distances_match_a_loop():
    rng = np.random.default_rng(0)
    faces, templates = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    expected = [[np.sqrt(np.sum((f - t) ** 2)) for t in templates] for f in faces]
    np.testing.assert_allclose(template_distances(faces, templates), expected)


def test_closed_set_scores_name_the_majority_and_score_both_videos():
    templates = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    names = ["ann", "bob", "cy"]
    rng = np.random.default_rng(0)
    original = templates[1] + rng.normal(0, 0.5, (6, 2))
    original[0] = templates[2]  # one frame looks like cy: the majority still says bob
    deid = templates[0] + rng.normal(0, 0.5, (6, 2))  # de-identified faces all look like ann
    scores = closed_set_scores(original, deid, templates, names)
    assert scores["identity"] == "bob" and scores["frames"] == 6
    assert scores["top1_original"] == pytest.approx(5 / 6)
    assert scores["top1_deidentified"] == 0.0
    d = template_distances(deid, templates)
    assert scores["eer_deidentified"] == equal_error_rate(d[:, 1], d[:, [0, 2]].ravel())
    assert scores["eer_deidentified"] > 0.5  # genuine distances are the large ones


def _write(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((20, 20, 3), colour[::-1], np.uint8))  # BGR on disk


def test_gallery_images_lists_identity_folders(tmp_path):
    _write(tmp_path / "b" / "1.png", (0, 0, 0))
    _write(tmp_path / "a" / "2.JPG", (0, 0, 0))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    people = gallery_images(tmp_path)
    assert list(people) == ["a", "b"] and [p.name for p in people["a"]] == ["2.JPG"]
    with pytest.raises(BadInputError, match="at least 2"):
        gallery_images(tmp_path / "b")
    with pytest.raises(BadInputError, match="not a folder"):
        gallery_images(tmp_path / "missing")


def test_templates_are_mean_embeddings_and_faceless_identities_are_skipped(tmp_path, mean_colour_recogniser):
    _write(tmp_path / "red" / "1.png", (200, 0, 0))
    _write(tmp_path / "red" / "2.png", (100, 0, 0))
    _write(tmp_path / "blue" / "1.png", (0, 0, 250))
    _write(tmp_path / "ghost" / "1.png", (1, 2, 3))  # no face found in it
    (tmp_path / "blue" / "broken.png").write_bytes(b"not a png")

    def find_landmarks(image):
        return None if tuple(image[0, 0]) == (1, 2, 3) else np.zeros((68, 2))

    warnings: list[str] = []
    names, templates = gallery_templates(tmp_path, {"mean": mean_colour_recogniser(0.1)}, find_landmarks, warnings)
    assert names == ["blue", "red"]
    np.testing.assert_allclose(templates["mean"], [[0, 0, 250 / 255], [150 / 255, 0, 0]], atol=1e-6)
    assert any("broken.png could not be read" in w for w in warnings)
    assert any("'ghost': no face found" in w for w in warnings)
    with pytest.raises(BadInputError, match="fewer than 2"):
        gallery_templates(tmp_path, {"mean": mean_colour_recogniser(0.1)}, lambda image: None, [])


def test_gallery_scores_per_track_from_kept_embeddings(mean_colour_recogniser):
    scorer = IdentityScorer({"mean": mean_colour_recogniser(0.1)}, keep_embeddings=True)
    templates = np.array([[1.0, 0, 0], [0, 1.0, 0]], np.float32)
    scorer.add_embeddings("mean", np.tile(templates[1], (3, 1)), np.tile(templates[0], (3, 1)), [2, 2, 2])
    out = gallery_scores(["x", "y"], {"mean": templates}, scorer, [2, 5])
    assert out["identities"] == ["x", "y"]
    assert out["tracks"]["5"] == {}  # never embedded
    track = out["tracks"]["2"]["mean"]
    assert track["identity"] == "y" and track["top1_original"] == 1.0 and track["top1_deidentified"] == 0.0


def test_reid_ranks_count_the_distractors_nearer_than_the_person():
    from deidvid.measure.gallery import reid_ranks

    person = np.array([[0.0, 0.0]])
    distractors = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    probes = np.array([[0.1, 0.0], [1.4, 0.0], [2.9, 0.0], [10.0, 0.0]])
    np.testing.assert_array_equal(reid_ranks(probes, person, distractors), [1, 3, 4, 4])
    # a second template of the person (an identity of the gallery) counts as the person
    both = np.concatenate([person, [[3.0, 0.0]]])
    np.testing.assert_array_equal(reid_ranks(probes, both, distractors[:2]), [1, 3, 1, 1])
    np.testing.assert_array_equal(reid_ranks(probes, person, np.zeros((0, 2))), [1, 1, 1, 1])


def test_reid_with_the_original_enrolled(mean_colour_recogniser):
    """Seven distractors on a line; the de-identified faces drift away from the enrolled person."""
    from deidvid.measure.gallery import reid_scores

    names = [f"d{k}" for k in range(7)]
    templates = np.array([[float(k + 1), 0.0] for k in range(7)])  # 1, 2, ... 7
    original = np.array([[0.0, 0.1], [0.0, -0.1]])  # enrolled at (0, 0)
    deid = np.array([[0.2, 0.0], [1.7, 0.0], [5.6, 0.0], [9.0, 0.0]])  # ranks 1, 3, 8, 8
    scores = reid_scores(original, deid, templates, names, threshold=0.5)
    assert scores == {
        "gallery_size": 8, "same_person_in_gallery": [],
        "rank1_original": 1.0, "rank5_original": 1.0, "rank1_deidentified": 0.25, "rank5_deidentified": 0.5,
    }
    # the person is also in the gallery (d0 at distance 1 < threshold 1.5): d0 is not a
    # distractor; ranks 1, 2 (1.7 is 0.7 from d0, 0.3 from d1), 7, 7
    scores = reid_scores(original, deid, templates, names, threshold=1.5)
    assert scores["same_person_in_gallery"] == ["d0"]
    assert scores["rank1_deidentified"] == 0.25 and scores["rank5_deidentified"] == 0.5
    deid[2] = [3.4, 0.0]  # 2.4 from d0; nearer: d1 (1.4), d2 (0.4), d3 (0.6), d4 (1.6): rank 5
    assert reid_scores(original, deid, templates, names, threshold=1.5)["rank5_deidentified"] == 0.75
    assert reid_scores(original, deid, templates, names, threshold=None)["same_person_in_gallery"] == []


def test_gallery_scores_carry_reid(mean_colour_recogniser):
    scorer = IdentityScorer({"mean": mean_colour_recogniser(0.1)}, keep_embeddings=True)
    templates = np.array([[1.0, 0, 0], [0, 1.0, 0]], np.float32)
    scorer.add_embeddings("mean", np.tile(templates[1], (3, 1)), np.tile(templates[0], (3, 1)), [2, 2, 2])
    track = gallery_scores(["x", "y"], {"mean": templates}, scorer, [2])["tracks"]["2"]["mean"]
    # enrolled = y's template (within 0.1): y is the person; the faces that look like x are not re-identified
    assert track["same_person_in_gallery"] == ["y"] and track["gallery_size"] == 3
    assert track["rank1_original"] == 1.0 and track["rank1_deidentified"] == 0.0
    assert track["rank5_deidentified"] == 1.0  # one distractor only: rank 2 at worst
