"""Option checks in one place: ranges that would fail open are refused, nan/inf anywhere,
and Click's own usage errors become one line with exit 2."""

from __future__ import annotations

import dataclasses
import math

import pytest
from typer.testing import CliRunner

from deidvid.cli.main import app
from deidvid.cli.options import (
    THRESHOLD_RANGE,
    AnonymiseArgs,
    check_anonymise,
    check_band_fits,
    check_gates,
    parse_band,
    parse_windows,
)
from deidvid.errors import UsageError

DEFAULTS = AnonymiseArgs(
    method="blur", device="auto", strength=None, fallback="blur", fallback_seconds=2.0, detect_every=3,
    detector_max_side=640, threshold=0.5, clip_len=64, overlap=16, crf=16, identity_check=True, max_match_rate=None,
)
METHODS = ("blur", "pixelate", "ae", "ae-paper")


def check(**changes) -> None:
    check_anonymise(dataclasses.replace(DEFAULTS, **changes), METHODS, max_strength=64 / 255)


def test_the_defaults_pass() -> None:
    check()
    check(threshold=THRESHOLD_RANGE[0])
    check(threshold=THRESHOLD_RANGE[1])
    check(fallback="none", fallback_seconds=0.5)
    check(method="ae", strength=4.0)
    check(surrogate_look="same")


@pytest.mark.parametrize(
    "changes",
    [
        {"fallback_seconds": 0.0}, {"fallback_seconds": -1.0}, {"fallback_seconds": math.nan},
        {"fallback_seconds": math.inf}, {"fallback": "none", "fallback_seconds": 0.0},
        {"threshold": 1.0}, {"threshold": 0.0}, {"threshold": 0.96}, {"threshold": 0.04}, {"threshold": math.nan},
        {"crf": 52}, {"crf": -1}, {"clip_len": 0}, {"overlap": 64}, {"overlap": -1}, {"detect_every": 0},
        {"detector_max_side": 32}, {"max_match_rate": 1.5}, {"max_match_rate": math.nan},
        {"max_match_rate": 0.1, "identity_check": False}, {"method": "ae", "strength": math.nan},
        {"method": "ae", "strength": math.inf}, {"strength": 4.0}, {"method": "nope"}, {"device": "tpu"},
        {"fallback": "pixelate"}, {"surrogate_look": "female"},
    ],
)
def test_out_of_range_options_are_usage_errors(changes: dict) -> None:
    with pytest.raises(UsageError) as err:
        check(**changes)
    assert "\n" not in str(err.value)


def test_verify_band_windows_and_gates() -> None:
    assert parse_band("0.75,2.5") == (0.75, 2.5)
    for bad in ("3,1", "1,1", "0,2", "-1,2", "nan,2", "1,inf", "1", "1,2,3", "a,b"):
        with pytest.raises(UsageError):
            parse_band(bad)
    check_band_fits((0.75, 2.5), fps=30)
    with pytest.raises(UsageError, match="half the frame rate"):
        check_band_fits((0.75, 2.5), fps=5)
    assert parse_windows("10,30") == (10.0, 30.0)
    for bad in ("0", "-10", "nan", "inf"):
        with pytest.raises(UsageError):
            parse_windows(bad)
    check_gates(0.05, 1.0, 0.9, 30.0)
    for gates in [(math.nan, None, None, None), (None, math.nan, None, None), (None, None, 2.0, None),
                  (None, None, None, math.inf), (-0.1, None, None, None)]:
        with pytest.raises(UsageError):
            check_gates(*gates)


@pytest.mark.parametrize(
    "args",
    [
        ["anonymise"],
        ["anonymise", "x.mp4", "--crf", "abc"],
        ["anonymise", "x.mp4", "--no-such-option"],
        ["anonymise", "x.mp4", "--crf"],
        ["verify", "a.mp4"],
        ["no-such-command"],
    ],
    ids=["missing-argument", "not-a-number", "unknown-option", "option-without-value", "verify-missing", "command"],
)
def test_click_usage_errors_are_one_line(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deidvid: error:"), result.stderr
    assert "╭" not in result.stderr and "Usage:" not in result.stderr  # not Typer's box


def test_help_and_version_still_work() -> None:
    assert CliRunner().invoke(app, ["anonymise", "--help"]).exit_code == 0
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("deidvid ")
    bare = CliRunner().invoke(app, [])
    assert "Usage" in bare.output  # `deidvid` alone: the help, as before
