"""Where does the surrogate lose the expression? ``python -m deidvid.tools.expression_parts VIDEO``.

verify reads mouth opening and eye openness with FaceMesh + Iris on both videos
(:class:`deidvid.measure.expression.MeshSignals`) and correlates them. Between the
original and that reading of the output lie three steps, and this tool scores each one
for the longest face track (Pearson r per signal, frame by frame):

- **pass 1**: the surrogate's own meshing of the original (its raw, unsmoothed
  observations) against verify's reading of the original: how well the person's
  expression is *measured*;
- **drawn**: the mesh the surrogate is drawn with (its neutral shape plus the person's
  expression, in the person's pose) against verify's reading of the original: what the
  *transfer* keeps;
- **read back**: verify's reading of the output against the drawn mesh: what a judge
  can *see* of the drawing.

The anonymised video (``--method surrogate``, the defaults otherwise) is written to a
temporary folder and removed; pass 1 runs once more on its own to record its raw meshes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from deidvid.faces.iris import eye_openness
from deidvid.faces.mesh import mouth_opening
from deidvid.surrogate.meshtrack import MeshObserver

SIGNALS: tuple[str, ...] = ("mesh_mouth_open", "mesh_eye_right", "mesh_eye_left")
STEPS: tuple[str, ...] = ("pass 1 ~ verify(original)", "drawn ~ verify(original)", "verify(output) ~ drawn",
                          "verify(output) ~ verify(original)")


def mesh_signals(points: np.ndarray) -> np.ndarray:
    """:data:`SIGNALS` ``(3,)`` of a mesh ``(468, 2|3)``, as verify computes them (but from the mesh's own lids)."""
    right, left = eye_openness(points)
    return np.array([mouth_opening(points), right, left])


class RawMeshes(MeshObserver):
    """A :class:`MeshObserver` that keeps every frame's raw mesh ``(468, 3)`` per track."""

    def finish(self, tracks, times_s: np.ndarray) -> None:
        self.flush()
        self.raw = {tid: {f: ob.points for f, ob in seen.items()} for tid, seen in self.observations.items()}
        super().finish(tracks, times_s)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the frames where both are defined (NaN with fewer than 3)."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def expression_parts(video: Path) -> dict[str, dict[str, float]]:
    """``{step: {signal: r}}`` (:data:`STEPS` x :data:`SIGNALS`) for ``video``'s longest face track."""
    from deidvid.anonymise.models import PipelineModels
    from deidvid.anonymise.options import AnonymiseOptions
    from deidvid.anonymise.run import anonymise_video
    from deidvid.faces.find import FaceFinding, find_faces
    from deidvid.faces.landmarks import LandmarkPredictor
    from deidvid.io.decode import probe
    from deidvid.verify.options import VerifyOptions
    from deidvid.verify.run import verify_videos_with_series

    info = probe(video)
    finding = FaceFinding()
    recorder = RawMeshes()
    find_faces(video, info, finding, finding.detector(), LandmarkPredictor(), observers=[recorder])
    options = AnonymiseOptions(method="surrogate", identity_check=False)
    models = PipelineModels(options)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "surrogate.mp4"
        anonymise_video(video, output, options, models=models)
        verify = VerifyOptions(methods=("pos",), recognisers=VerifyOptions().recognisers[:1], toolbox=False,
                               temporal=False, expression_stride=1)
        _, series = verify_videos_with_series(video, output, verify)
    track = max(series.tracks, key=lambda t: len(t.times))
    surrogate = models.method
    frames = track.start_frame + np.arange(len(track.times))
    judged = [track.expression_signals.index(s) for s in SIGNALS]
    original = track.expression_original[:, judged]
    output_read = track.expression_deidentified[:, judged]
    # verify and pass 1 find the same tracks (the same code on the same frames); match by overlap anyway
    raw_track = max(recorder.raw.values(), key=lambda seen: len(set(seen) & set(frames.tolist())), default={})
    pass1 = np.array([mesh_signals(raw_track[f]) if f in raw_track else [np.nan] * 3 for f in frames])
    def overlap(tid: int) -> int:
        face = surrogate.tracks[tid]
        return min(face.end, int(frames[-1]) + 1) - max(face.start, int(frames[0]))

    drawn_track = max(surrogate.tracks, key=overlap, default=None)
    drawn = np.array([
        mesh_signals(mesh) if (mesh := surrogate.drawn_mesh(drawn_track, int(f))) is not None else [np.nan] * 3
        for f in frames
    ])
    pairs = dict(zip(STEPS, ((pass1, original), (drawn, original), (output_read, drawn), (output_read, original))))
    return {step: {s: correlation(a[:, k], b[:, k]) for k, s in enumerate(SIGNALS)} for step, (a, b) in pairs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    args = parser.parse_args(argv)
    parts = expression_parts(args.video)
    print("| step | " + " | ".join(SIGNALS) + " |")
    print("|---" * (len(SIGNALS) + 1) + "|")
    for step, scores in parts.items():
        print(f"| {step} | " + " | ".join(f"{scores[s]:.3f}" for s in SIGNALS) + " |")


if __name__ == "__main__":
    main()
