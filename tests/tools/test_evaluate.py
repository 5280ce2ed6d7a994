"""Method variants of the evaluation and bench tools."""

import pytest

from deidvid.tools.bench import deidvid_cmd
from deidvid.tools.evaluate import Variant, parse_variant


@pytest.mark.parametrize(
    "text, expected",
    [
        ("blur", Variant("blur")),
        ("blur:no-keep-pulse", Variant("blur", keep_pulse=False)),
        ("ae:keep-pulse", Variant("ae", keep_pulse=True)),
        ("blur:qp20", Variant("blur", face_qp_offset=20)),
        ("surrogate:no-keep-pulse:qp0", Variant("surrogate", keep_pulse=False, face_qp_offset=0)),
        ("blur:qp25:keep-pulse", Variant("blur", keep_pulse=True, face_qp_offset=25)),
        ("surrogate:same-look", Variant("surrogate", surrogate_look="same")),
    ],
)
def test_parse_variant(text, expected):
    assert parse_variant(text) == expected


@pytest.mark.parametrize("text", ["blur:", "blur:qp", "blur:qp-3", "blur:qp52", "blur:qpx", "blur:fast", "blur:qp1:qp2", "blur:keep-pulse:no-keep-pulse", "surrogate:same-look:any-look", "surrogate:female-look"])
def test_parse_variant_rejects_unknown_or_repeated_flags(text):
    with pytest.raises(ValueError, match="unknown variant flag"):
        parse_variant(text)


def test_bench_command_carries_the_variant_flags(tmp_path):
    command = deidvid_cmd(tmp_path / "in.mp4", tmp_path / "out.mp4", "blur:no-keep-pulse:qp20")
    assert command[command.index("--method") + 1] == "blur"
    assert "--no-keep-pulse" in command
    assert command[command.index("--face-qp-offset") + 1] == "20"
    assert "--face-qp-offset" not in deidvid_cmd(tmp_path / "in.mp4", tmp_path / "out.mp4", "blur")


def test_evaluate_fails_when_no_video_is_there(tmp_path):
    from deidvid.tools.evaluate import evaluate

    with pytest.raises(SystemExit, match="none of the videos"):
        evaluate(["blur"], tmp_path / "out", ("ubfc/subject99/vid.mp4",), data_root=tmp_path)
    assert not (tmp_path / "out").exists()  # nothing written


def test_the_table_says_which_surrogate_was_drawn():
    from deidvid.tools.evaluate import markdown_table, mean_rows, summary_row

    report = {
        "faces": [{"detection": {"rate_deidentified": 1.0}}],
        "quality": {"face": {"psnr_mean": 20.0, "ssim_mean": 0.6}},
        "anonymise_tracks": [{"surrogate": 13, "surrogate_looks": "female", "apparent_presentation": "male"}],
    }
    row = summary_row(report, "surrogate", "v1")
    assert row["surrogate_drawn"] == "13 female (male)"
    table = markdown_table([row, *mean_rows([row])])
    assert "| 13 female (male) |" in table and "surrogate drawn" in table
    assert "surrogate_drawn" not in summary_row({**report, "anonymise_tracks": [None]}, "blur", "v1")
