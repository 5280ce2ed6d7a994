"""Every bundled surrogate's choice score for the people in videos (README, "Surrogate faces").

    python -m deidvid.tools.surrogate_scores VIDEO [VIDEO ...]

Runs ``--method surrogate`` on each video (output discarded) and, at each track's
choice, scores *every* surrogate of the bank the way the choice scores its candidates
(:func:`deidvid.surrogate.choose.identity_ratio`: recognisers A and C, mean distance /
threshold, the worse of the two) in the same frames. Prints the ranges per look.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def track_scores(video: Path) -> list[tuple[str | None, dict[int, float]]]:
    """Per face track: the person's apparent look and every surrogate's score."""
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.anonymise.run import anonymise_video
    from deidvid.surrogate import choose

    found: list[tuple[str | None, dict[int, float]]] = []
    real = choose.choose_surrogate

    def score_all(bank, tone, presentation, score, seed, track_id, taken=()):  # noqa: ANN001, ANN202 - choose_surrogate's
        found.append((presentation, {k: score(k) for k in range(len(bank))}))
        return real(bank, tone, presentation, score, seed, track_id, taken)

    choose.choose_surrogate = score_all
    try:
        with tempfile.TemporaryDirectory() as folder:
            options = AnonymiseOptions(method="surrogate", surrogate_look="same", identity_check=False, keep_pulse=False)
            anonymise_video(video, Path(folder) / "out.mkv", options)
    finally:
        choose.choose_surrogate = real
    return found


def main(argv: list[str] | None = None) -> int:
    from deidvid.surrogate.bank import load_bank

    parser = argparse.ArgumentParser(prog="python -m deidvid.tools.surrogate_scores", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", type=Path)
    args = parser.parse_args(argv)
    looks = [s.presentation for s in load_bank()]
    print("| video | track | read as | male-looking surrogates | female-looking surrogates |")
    print("|---|---|---|---|---|")
    for video in args.videos:
        for track, (apparent, scores) in enumerate(track_scores(video)):
            ranges = []
            for look in ("male", "female"):
                values = [v for k, v in scores.items() if looks[k] == look]
                ranges.append(f"{min(values):.3f}-{max(values):.3f}" if values else "-")
            print(f"| {video} | {track} | {apparent} | {ranges[0]} | {ranges[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
