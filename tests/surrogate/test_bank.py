"""The bundled surrogate bank: k-Same aggregates that span skin tones and match none of their sources."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.surrogate.bank import MIN_PEOPLE, individual_typology_angle, load_bank, skin_tone_lab
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
