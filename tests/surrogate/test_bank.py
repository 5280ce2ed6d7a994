"""The bundled surrogate bank: k-Same aggregates that span skin tones and match none of their sources."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.surrogate.bank import MIN_PEOPLE, individual_typology_angle, load_bank, load_presentation_probe, skin_tone_lab
from deidvid.surrogate.uvspace import TEXTURE_SIZE, uv_space
from deidvid.tools.lfw import DEFAULT_LFW
from deidvid.weights.manifest import manifest_entry

MIN_SURROGATES = 8


def test_every_surrogate_aggregates_enough_people_and_the_bank_spans_skin_tones():
    bank = load_bank()
    assert len(bank) >= MIN_SURROGATES
    assert all(s.people >= MIN_PEOPLE for s in bank)
    assert all(s.texture.shape == (TEXTURE_SIZE, TEXTURE_SIZE, 3) and s.shape.shape == (468, 3) for s in bank)
    ita = [individual_typology_angle(s.tone) for s in bank]
    assert max(ita) - min(ita) >= 40.0


def test_the_bank_holds_female_and_male_looking_surrogates_and_the_probe_that_chooses_between_them():
    looks = [s.presentation for s in load_bank()]
    assert looks.count("female") >= 2 and looks.count("male") >= 8 and set(looks) == {"female", "male"}
    probe = load_presentation_probe()
    assert probe.weights.shape == (128,) and np.all(np.isfinite(probe.weights))  # recogniser A's embedding
    presentation = manifest_entry("surrogates")["build"]["presentation"]
    assert presentation["probe_cross_validated_accuracy"] >= 0.9
    checks = manifest_entry("surrogates")["surrogates"]
    assert [c["looks"] for c in checks] == looks


def test_stored_tones_are_the_textures_skin_tones():
    space = uv_space()
    for s in load_bank():
        np.testing.assert_allclose(skin_tone_lab(s.texture, space.skin), s.tone, atol=0.05)


def test_the_manifest_records_the_check_against_source_people():
    entry = manifest_entry("surrogates")
    assert len(entry["surrogates"]) == len(load_bank())
    for check in entry["surrogates"]:
        assert check["detected"] and check["people"] >= MIN_PEOPLE
        for name in ("A", "C"):  # never B
            assert check[name]["sources_matched"] == 0
            assert check[name]["nearest_source_distance"] >= check[name]["threshold"]


def test_neutral_shapes_are_faces_near_the_canonical_model():
    from deidvid.faces.canonical_mesh import load_canonical_mesh

    canonical = load_canonical_mesh().vertices
    for s in load_bank():
        rms = float(np.sqrt(((s.shape - canonical) ** 2).sum(axis=1).mean()))
        assert 0.05 < rms < 1.5  # cm: a face of its own, not the model and not a wreck


@pytest.mark.skipif(not DEFAULT_LFW.is_dir(), reason="needs ../shared/data/images/lfw")
def test_the_builder_makes_a_checked_surrogate_from_lfw(tmp_path, capsys):
    from deidvid.tools.build_surrogates import main

    assert main(["--limit", "260", "--tones", "1", "--per-tone", "1", "--people", "25", "--dry-run"]) == 0
    log = capsys.readouterr().err
    assert "surrogate 0:" in log and '"people": 25' in log


def test_groups_are_drawn_from_the_given_people_only():
    from deidvid.tools.build_surrogates import FaceSample, group

    rng = np.random.default_rng(0)

    def sample(k: int) -> FaceSample:
        tone = np.array([60.0 + 0.1 * k, 10.0, 15.0])
        return FaceSample(str(k), None, None, None, 0.0, 0.0, tone, 0.0, {"A": rng.normal(size=4)})

    samples = [sample(k) for k in range(120)]
    among = np.arange(0, 120, 2)  # 60 of them
    groups = group(samples, among, tones=2, per_tone=1, people=25)
    assert len(groups) == 2
    for members, spares in groups:
        assert len(members) == 25 and set(members) | set(spares) <= set(among.tolist())
    assert group(samples, among[:20], tones=1, per_tone=1, people=25) == []  # too few for k-Same
    assert group(samples, np.array([], int), tones=2, per_tone=1, people=25) == []


def test_first_names_label_only_when_their_bearers_are_one_sided():
    pytest.importorskip("nomquamgender")
    from deidvid.tools.build_surrogates import name_labels

    labels = name_labels(["Mary_Smith", "John_Smith", "Zzyzxq_Unknown"])
    assert labels.tolist() == [1, 0, -1]
