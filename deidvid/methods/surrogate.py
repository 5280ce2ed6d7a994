"""``--method surrogate``: replace each face with a surrogate that is nobody.

Pass 1 meshes every face frame (:class:`deidvid.surrogate.meshtrack.MeshObserver`).
Per track, one surrogate from the bundled bank (:mod:`deidvid.surrogate.choose`) is
drawn in the person's pose, expression and gaze, under their lighting, over a strong blur of
the crop (:mod:`deidvid.surrogate.render`). Frames where the mesh could not be fitted
(profile, tiny or lost faces) get the blur only: the fail-closed cover, counted in the
report. The surrogate carries no pulse of its own; the pulse transplant (on by default:
the method replaces pixels) carries the original's into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from hashlib import blake2b
from typing import TYPE_CHECKING

import cv2
import numpy as np

from deidvid.faces.geometry import CropBox, crop_box, cut_crop
from deidvid.faces.iris import eye_widths
from deidvid.methods.base import CropClip, Method, PasteMode
from deidvid.surrogate import choose, presentation, render
from deidvid.surrogate.bank import load_bank, load_presentation_probe

if TYPE_CHECKING:
    from deidvid.faces.track import FaceTrack
    from deidvid.recognise import Embedder
    from deidvid.surrogate.meshtrack import MeshObserver, MeshTrack


class SurrogateFace(Method):
    """See the module docstring. ``seed`` makes the surrogate choice reproducible; ``look``:
    ``any`` (of either look, the farthest from the person) or ``same`` (of the person's
    apparent look, :mod:`deidvid.surrogate.choose`)."""

    name = "surrogate"
    paste_mode = PasteMode.REPLACE
    interpolation = cv2.INTER_LINEAR
    # The surrogate changes the face's outline: with room around the tight box the pasted
    # face fades out inside the crop, not along its straight top and sides (README, session 23).
    crop_margin = 0.375

    def __init__(self, device: str = "cpu", seed: int = 0, look: str = "any") -> None:
        self.device = device
        self.seed = seed
        self.look = look
        self.bank = [render.PreparedSurrogate.of(s) for s in load_bank()]
        self.probe = load_presentation_probe()
        self._observer: MeshObserver | None = None
        self.tracks: dict[int, FaceTrack] = {}
        self.chosen: dict[int, int] = {}
        # track -> the probe's mean P(female-looking) over the choice's frames
        self.female_probability: dict[int, float] = {}
        self.scores: dict[int, dict[int, float]] = {}  # track -> candidate -> its choice score
        self.covered: set[tuple[int, int]] = set()  # (track, frame) drawn as the blur cover
        # Per track, the last clip's drawn frames: frame -> (digest of the input crop, output).
        # Consecutive clips of a track overlap (16+ frames of 64), and a frame's crop is the
        # same in both, so its drawing is reused instead of repeated.
        self._drawn: dict[int, dict[int, tuple[bytes, np.ndarray]]] = {}

    def start_video(self) -> None:
        if self._observer is not None:
            self._observer.start_video()
        self.tracks.clear()
        self.chosen.clear()
        self.female_probability.clear()
        self.scores.clear()
        self.covered.clear()
        self._drawn.clear()

    def observer(self) -> MeshObserver:
        from deidvid.surrogate.meshtrack import MeshObserver

        if self._observer is None:
            self._observer = MeshObserver(self.device)
        return self._observer

    @cached_property
    def recognisers(self) -> dict[str, Embedder]:
        from deidvid.recognise import load_embedder

        return {name: load_embedder(name, self.device) for name in choose.CHOOSING_RECOGNISERS}

    def _mesh(self, track_id: int) -> MeshTrack | None:
        return None if self._observer is None else self._observer.tracks.get(track_id)

    def start_track(self, track: FaceTrack) -> None:
        self.tracks[track.track_id] = track
        mesh = self._mesh(track.track_id)
        if mesh is not None and mesh.valid.any():
            self.chosen[track.track_id] = self.choose(track.track_id, mesh)

    def choose(self, track_id: int, mesh: MeshTrack) -> int:
        """The bank index of the track's surrogate (see :mod:`deidvid.surrogate.choose`)."""
        tone = choose.track_tone_lab(mesh.lighting[mesh.valid])
        surrogates = [p.surrogate for p in self.bank]
        samples = [(f, rgb, lm) for f, rgb, lm in mesh.samples if mesh.valid[f - mesh.start]]
        taken = self._taken_alongside(track_id)
        if not samples:
            nearest = choose.tone_candidates(surrogates, tone)
            return next((k for k in nearest if k not in taken), nearest[0])
        crops, boxes, landmarks = [], [], []
        for _, rgb, lm in samples:
            box = crop_box(lm, self.crop_margin)
            crops.append(cut_crop(rgb, box).astype(np.float32))
            boxes.append(box)
            landmarks.append(box.to_crop(lm))
        from deidvid.measure.identity import embed_faces

        def embed(images: list[np.ndarray]) -> dict[str, np.ndarray]:
            return embed_faces(self.recognisers, np.clip(np.stack(images), 0, 255).astype(np.uint8), np.stack(landmarks))

        originals = embed(crops)
        probability = self.female_probability[track_id] = float(self.probe.probability(originals["A"]).mean())
        thresholds = {name: rec.threshold for name, rec in self.recognisers.items()}
        scored = self.scores.setdefault(track_id, {})

        def score(k: int) -> float:
            rendered = [self.draw(k, mesh, f, crop, box) for (f, _, _), crop, box in zip(samples, crops, boxes)]
            scored[k] = choose.identity_ratio(originals, embed(rendered), thresholds)
            return scored[k]

        wanted = presentation.read_as(probability) if self.look == "same" else None
        return choose.choose_surrogate(surrogates, tone, wanted, score, self.seed, track_id, taken)

    def _taken_alongside(self, track_id: int) -> set[int]:
        """The surrogates already drawn on other faces of the video seen while this one is."""
        track = self.tracks.get(track_id)
        if track is None:
            return set()
        return {
            self.chosen[other_id]
            for other_id, other in self.tracks.items()
            if other_id != track_id and other_id in self.chosen and other.start < track.end and track.start < other.end
        }

    def draw(self, index: int, mesh: MeshTrack, frame_index: int, crop: np.ndarray, box: CropBox) -> np.ndarray:
        """Surrogate ``index`` in frame ``frame_index`` over ``crop (S, S, 3)`` (0..255) of ``box``."""
        prepared = self.bank[index]
        i = frame_index - mesh.start
        in_frame = mesh.shape_at(frame_index, prepared.surrogate.shape)
        # Eyes too small in the frame to show an iris keep the texture's own (render.MIN_EYE_PX).
        eye_gaze = mesh.gaze[i] if eye_widths(in_frame).mean() >= render.MIN_EYE_PX else None
        face, alpha = render.draw(prepared.lit(mesh.lighting[i]), render.to_crop(in_frame, box), crop.shape[0], eye_gaze=eye_gaze)
        return render.composite(crop, face, alpha)

    def drawn_mesh(self, track_id: int | None, frame_index: int) -> np.ndarray | None:
        """The mesh ``(468, 3)`` (frame pixels) the track's surrogate is drawn with in a frame
        of the last video: its neutral shape with the person's expression, in their pose; None
        where the blur cover is drawn (diagnostics: :mod:`deidvid.tools.expression_parts`)."""
        mesh, chosen = self._mesh(track_id), self.chosen.get(track_id)
        if mesh is None or chosen is None or not 0 <= frame_index - mesh.start < len(mesh) or not mesh.valid[frame_index - mesh.start]:
            return None
        return mesh.shape_at(frame_index, self.bank[chosen].surrogate.shape)

    def run(self, clips: Sequence[CropClip]) -> list[np.ndarray]:
        return [self._run_clip(c) for c in clips]

    def _run_clip(self, clip: CropClip) -> np.ndarray:
        mesh = self._mesh(clip.track_id)
        track = self.tracks.get(clip.track_id)
        chosen = self.chosen.get(clip.track_id)
        out = np.empty_like(clip.frames)
        previous = self._drawn.get(clip.track_id, {})
        drawn = {}
        for t, crop01 in enumerate(clip.frames):
            f = clip.start + t
            usable = mesh is not None and track is not None and chosen is not None and 0 <= f - mesh.start < len(mesh) and mesh.valid[f - mesh.start]
            if not usable:
                self.covered.add((clip.track_id, f))
                crop = crop01 * 255.0
                out[t] = render.composite(crop, np.zeros_like(crop), np.zeros(crop.shape[:2], np.float32)) / 255.0
                continue
            digest = blake2b(np.ascontiguousarray(crop01).tobytes(), digest_size=16).digest()
            if f in previous and previous[f][0] == digest:
                out[t] = previous[f][1]
            else:
                out[t] = self.draw(chosen, mesh, f, crop01 * 255.0, track.box_at(f)) / 255.0
            drawn[f] = (digest, out[t].copy())  # a copy: later stages may change the returned clip in place
        ends_track = track is None or clip.start + len(clip.frames) >= track.end
        if ends_track:
            self._drawn.pop(clip.track_id, None)
        else:
            self._drawn[clip.track_id] = drawn
        return np.clip(out, 0.0, 1.0)

    def track_summary(self, track_id: int) -> dict[str, object] | None:
        """The surrogate drawn on the track (its bank index and look; None: never meshed, all
        blur cover), the person's apparent presentation as the choice read it, and every
        candidate's score (distance from the person / threshold, the worse of recognisers A
        and C; bank index -> score)."""
        chosen = self.chosen.get(track_id)
        probability = self.female_probability.get(track_id)
        return {
            "surrogate": chosen,
            "surrogate_looks": None if chosen is None else self.bank[chosen].surrogate.presentation,
            "apparent_presentation": None if probability is None else presentation.read_as(probability),
            "female_looking_probability": None if probability is None else round(probability, 3),
            "candidate_scores": {str(k): round(v, 4) for k, v in sorted(self.scores.get(track_id, {}).items())},
        }

    def warnings(self) -> list[str]:
        if not self.covered:
            return []
        return [f"{len(self.covered)} face frame(s) could not be meshed (profile, too small or lost) and were covered by blur"]

