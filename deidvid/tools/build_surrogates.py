"""Build the surrogate bank (``weights/surrogates.safetensors``) from LFW.

    python -m deidvid.tools.build_surrogates [--lfw DIR] [--tones 6] [--per-tone 2] [--people 32]
        [--female-tones 3] [--female-people 32]

(``pip install nomquamgender`` first: the first names' statistics, MIT, used only here.)

One image per LFW person (the first of their first three that qualifies): detect, 68
landmarks, FaceMesh (twice: the second crop from the first mesh), split into pose and
canonical shape, and keep near-frontal faces with a closed mouth and no strong glasses
edges. Each kept face is unwrapped into the UV texture space (visible triangles only) with
its mirror image. People are split by apparent presentation (female- or male-looking: the
first name's statistics from the ``nomquamgender`` package where they are clear, else a
logistic probe of recogniser A's embedding fitted on those names, which is bundled for
``--surrogate-look same``). Within each, people are binned by skin tone (ITA quantiles);
each bin is cut into parts along recogniser A's main embedding axis (similar faces average
sharper, and the surrogates of a tone differ) and each part starts from ``--people``
members drawn at random. A surrogate is the texel-wise mean of its
members' textures (inner mouth painted dark, unseen texels filled in) and the mean of
their shapes. Then k-Same is checked, not assumed: the surrogate is rendered frontally,
found again by the pipeline's own detector and landmarks, and compared with recognisers
A and C to each member; while any member is within ``SOURCE_MARGIN`` of a recogniser's
same-person threshold, that member is swapped for another person of the tone bin (or,
with none left, dropped while more than 25 remain; at most ``MAX_SWAPS`` times).

The check written to the manifest and model card: each final surrogate against every
one of its source people and every other kept person, with A and C (nearest distance,
how many within the threshold). Recogniser B is never used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deidvid.surrogate import raster
from deidvid.surrogate.bank import MIN_PEOPLE, individual_typology_angle, skin_tone_lab
from deidvid.surrogate.presentation import PresentationProbe, cross_validated_accuracy, fit_probe
from deidvid.surrogate.shape import Pose, split_pose
from deidvid.faces.mesh import mouth_opening
from deidvid.surrogate.uvspace import uv_space

MAX_YAW_DEG = 12.0
MAX_PITCH_OFFSET_DEG = 12.0
MAX_MOUTH_OPENING = 0.035
MIN_FACE_WIDTH_PX = 60
GLASSES_QUANTILE = 0.7  # faces above this edge-energy quantile around the eyes are dropped
MOUTH_RGB = (70, 30, 32)  # the inner mouth: dark, reddish (what a shadowed mouth looks like)
RECOGNISERS = ("A", "C")  # never B: it is kept to tell the truth
SOURCE_MARGIN = 1.05  # a member must be this many thresholds away from its surrogate
MAX_SWAPS = 60
IMAGES_PER_PERSON = 3  # a person's first image that qualifies, among their first 3
# A first name labels its bearer when the name's bearers are this one-sided (P(female) from
# nomquamgender's name statistics at most this far from 0 or 1); other names: the probe decides.
NAME_CERTAINTY = 0.1


@dataclass
class FaceSample:
    person: str
    texture: np.ndarray  # (T, T, 3) uint8
    mask: np.ndarray  # (T, T) bool
    shape: np.ndarray  # (468, 3)
    yaw: float
    pitch: float
    tone: np.ndarray  # Lab
    glasses: float
    embeddings: dict[str, np.ndarray]  # recognisers A and C


class FaceModels:
    """The pipeline's detector, landmarks, mesh and recognisers A and C."""

    def __init__(self) -> None:
        from deidvid.faces.canonical_mesh import load_canonical_mesh
        from deidvid.faces.detect import FaceDetector
        from deidvid.faces.landmarks import LandmarkPredictor
        from deidvid.faces.mesh import FaceMesh
        from deidvid.measure.gallery import largest_face_landmarks
        from deidvid.recognise import load_embedder

        self.landmarks = largest_face_landmarks(FaceDetector(), LandmarkPredictor())  # image -> (68, 2) or None
        self.mesh = FaceMesh()
        self.canonical = load_canonical_mesh()
        self.recognisers = {name: load_embedder(name) for name in RECOGNISERS}

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
        """``(D,)`` per recogniser of one face."""
        from deidvid.measure.gallery import embed_image

        return embed_image(self.recognisers, rgb, landmarks)


def glasses_score(texture: np.ndarray, points: np.ndarray) -> float:
    """Edge energy on the nose bridge and under the eyes, where glasses frames cross."""
    grey = cv2.cvtColor(texture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    edges = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    r = max(texture.shape[0] // 48, 2)
    total = 0.0
    for vertex in (168, 6, 119, 348):  # nose bridge (two), below each eye
        x, y = np.round(points[vertex]).astype(int)
        total += float(edges[y - r : y + r + 1, x - r : x + r + 1].mean())
    return total


def measure(path: Path, models: FaceModels) -> FaceSample | None:
    """One LFW image as a :class:`FaceSample`, or None when it does not qualify."""
    from deidvid.tools.lfw import load_rgb

    rgb = load_rgb(path)
    landmarks = models.landmarks(rgb)
    if landmarks is None:
        return None
    result = models.mesh(rgb, landmarks)
    result = models.mesh(rgb, result.points)
    points = result.points
    if result.score < 0.9 or np.ptp(points[:, 0]) < MIN_FACE_WIDTH_PX or mouth_opening(points) > MAX_MOUTH_OPENING:
        return None
    pose, shape = split_pose(points, models.canonical.vertices.astype(np.float64))
    yaw, pitch, _ = pose.angles_deg()
    if abs(yaw) > MAX_YAW_DEG:
        return None
    space = uv_space()
    visible = raster.front_facing(points, space.triangles, space.front_sign)
    texture, mask = raster.unwrap(rgb, points, space.triangles, space.ids, space.points, visible)
    return FaceSample(
        person=path.parent.name,
        texture=texture,
        mask=mask,
        shape=shape,
        yaw=yaw,
        pitch=pitch,
        tone=skin_tone_lab(texture, space.skin & mask),
        glasses=glasses_score(texture, space.points),
        embeddings=models.embed(rgb, landmarks),
    )


def mirrored(texture: np.ndarray, mask: np.ndarray, shape: np.ndarray, mirror_index: np.ndarray):
    """The face's mirror image in UV space (u -> 1 - u) and in shape (x -> -x)."""
    return texture[:, ::-1], mask[:, ::-1], shape[mirror_index] * [-1.0, 1.0, 1.0]


def aggregate(members: list[FaceSample], mirror_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texel-wise mean texture (uint8) and mean shape of ``members`` and their mirrors."""
    space = uv_space()
    total = np.zeros((space.size, space.size, 3))
    count = np.zeros((space.size, space.size))
    shapes = []
    for m in members:
        for texture, mask, shape in ((m.texture, m.mask, m.shape), mirrored(m.texture, m.mask, m.shape, mirror_index)):
            total += texture * mask[..., None]
            count += mask
            shapes.append(shape)
    seen = count >= max(len(members) // 4, 1)
    mean = np.where(seen[..., None], total / np.maximum(count, 1)[..., None], 0)
    texture = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
    texture = cv2.inpaint(texture, (~seen).astype(np.uint8), 5, cv2.INPAINT_TELEA)  # texels no member showed
    texture[space.mouth] = MOUTH_RGB
    return texture, np.mean(shapes, axis=0)


def name_labels(people: list[str]) -> np.ndarray:
    """``(N,)`` int8 per LFW folder name (``First_Last``): 1 female, 0 male, -1 unclear first name."""
    try:
        import nomquamgender
    except ImportError as error:
        raise SystemExit("error: the build needs the first names' statistics: pip install nomquamgender") from error
    with warnings.catch_warnings():  # its data loading uses a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        rows = nomquamgender.NBGC().annotate([p.split("_")[0] for p in people])
    female = np.array([row[-1] if isinstance(row[-1], float) else np.nan for row in rows])
    labels = np.full(len(people), -1, np.int8)
    labels[female >= 1.0 - NAME_CERTAINTY] = 1
    labels[female <= NAME_CERTAINTY] = 0
    return labels


def presentations(samples: list[FaceSample]) -> tuple[np.ndarray, PresentationProbe, dict]:
    """Each sample's apparent presentation ``(N,)`` bool (True: female-looking), the probe of
    recogniser A (fitted on the samples with a clear first name; it labels the others and is
    bundled as fitted), and its record for the manifest."""
    labels = name_labels([Path(s.person).name for s in samples])
    embeddings = np.stack([s.embeddings["A"] for s in samples])
    named = labels >= 0
    if len(set(labels[named])) < 2:  # a tiny trial: nothing to fit; every face reads as the one label seen
        probe = PresentationProbe(np.zeros(embeddings.shape[1]), 10.0 if (labels == 1).any() else -10.0)
        return labels == 1, probe, {"named_people": int(named.sum())}
    probe = fit_probe(embeddings[named], labels[named] == 1)
    female = np.where(named, labels == 1, probe.probability(embeddings) >= 0.5)
    record = {
        "labels": "first names, nomquamgender 0.1.4 (MIT) P(female) <= "
        f"{NAME_CERTAINTY} or >= {1 - NAME_CERTAINTY}; other people by the probe",
        "named_people": int(named.sum()),
        "named_female": int((labels == 1).sum()),
        "probe_cross_validated_accuracy": round(cross_validated_accuracy(embeddings[named], labels[named] == 1), 4),
    }
    return female, probe, record


def group(
    samples: list[FaceSample], among: np.ndarray, tones: int, per_tone: int, people: int, seed: int = 0
) -> list[tuple[list[int], list[int]]]:
    """Tone bins (ITA quantiles) of the samples ``among`` (indices), each cut into ``per_tone``
    equal parts along the main axis of recogniser A's embeddings (similar faces average
    sharper, and the surrogates of one tone differ). Per part ``(members, spares)`` (indices
    into ``samples``): ``people`` random members; spares are the rest of the part, then the
    rest of the bin."""
    rng = np.random.default_rng(seed)
    among = np.asarray(among, dtype=int)
    if tones < 1 or len(among) == 0:
        return []
    ita = np.array([individual_typology_angle(samples[i].tone) for i in among])
    groups = []
    for chunk in np.array_split(among[np.argsort(ita, kind="stable")], tones):
        embeddings = np.stack([samples[i].embeddings["A"] for i in chunk])
        centred = embeddings - embeddings.mean(axis=0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        parts = np.array_split(chunk[np.argsort(centred @ axis)], per_tone)
        for k, part in enumerate(parts):
            if len(part) < MIN_PEOPLE:
                continue
            own = [int(i) for i in rng.permutation(part)]
            others = [int(i) for p in parts[:k] + parts[k + 1 :] for i in rng.permutation(p)]
            # spares are popped from the end: the part's own people first
            groups.append((own[:people], others[::-1] + own[people:][::-1]))
    return groups


def frontal_render(texture: np.ndarray, shape: np.ndarray, size: int = 250, background: int = 128) -> np.ndarray:
    """The surrogate seen from the front in an LFW-like ``size`` image (face ~45 % wide)."""
    space = uv_space()
    width = np.ptp(shape[:, 0])
    pose = Pose(np.eye(3), 0.45 * size / width, np.array([size / 2, -size / 2, 0.0]))
    points = pose.apply(shape)
    face, covered = raster.render(texture.astype(np.float32), space.points, points, space.triangles, (size, size), space.front_sign)
    image = np.full((size, size, 3), background, np.float32)
    alpha = cv2.GaussianBlur(covered.astype(np.float32), (0, 0), 1.5)[..., None] * covered[..., None]
    return np.clip(image * (1 - alpha) + face * alpha, 0, 255).astype(np.uint8)


def surrogate_distances(texture: np.ndarray, shape: np.ndarray, samples: list[FaceSample], models: FaceModels) -> dict[str, np.ndarray] | None:
    """Per recogniser, the distance of the frontal surrogate to every sample ``(N,)``/threshold
    ratio; None when the pipeline cannot find the rendered face."""
    image = frontal_render(texture, shape)
    landmarks = models.landmarks(image)
    if landmarks is None:
        return None
    embedded = models.embed(image, landmarks)
    out = {}
    for name in RECOGNISERS:
        refs = np.stack([s.embeddings[name] for s in samples])
        out[name] = np.linalg.norm(refs - embedded[name], axis=1) / models.recognisers[name].threshold
    return out


def build_one(
    members: list[int], spares: list[int], samples: list[FaceSample], models: FaceModels, mirror_index: np.ndarray
) -> tuple[list[int], np.ndarray, np.ndarray, int]:
    """Aggregate, check against the members, swap the nearest member out while any is too
    close (see the module docstring). Returns members, texture, shape, swaps made."""
    members, spares = list(members), list(spares)
    for swaps in range(MAX_SWAPS + 1):
        texture, shape = aggregate([samples[i] for i in members], mirror_index)
        ratios = surrogate_distances(texture, shape, [samples[i] for i in members], models)
        if ratios is None or swaps == MAX_SWAPS:
            break
        worst = np.minimum(*ratios.values())
        if worst.min() >= SOURCE_MARGIN:
            break
        if spares:
            members[int(worst.argmin())] = spares.pop()
        elif len(members) > MIN_PEOPLE:
            members.pop(int(worst.argmin()))
        else:
            break
    return members, texture, shape, swaps


def check(members: list[int], texture: np.ndarray, shape: np.ndarray, samples: list[FaceSample], models: FaceModels) -> dict:
    """One surrogate with A and C: nearest distance to its own people and to all kept people."""
    ratios = surrogate_distances(texture, shape, samples, models)
    entry: dict = {"people": len(members), "detected": ratios is not None}
    if ratios is None:
        return entry
    own = np.zeros(len(samples), bool)
    own[members] = True
    for name in RECOGNISERS:
        threshold = models.recognisers[name].threshold
        d = ratios[name] * threshold
        entry[name] = {
            "threshold": round(threshold, 4),
            "nearest_source_distance": round(float(d[own].min()), 4),
            "nearest_other_distance": round(float(d[~own].min()), 4),
            "sources_matched": int((d[own] < threshold).sum()),
            "others_matched": int((d[~own] < threshold).sum()),
            "others": int((~own).sum()),
        }
    return entry


def read_samples(people: list[Path], models: FaceModels, cache: Path | None) -> list[FaceSample]:
    """Per person, the first of their first :data:`IMAGES_PER_PERSON` images that :func:`measure`
    accepts; pickle-free cache in ``cache``."""
    if cache is not None and cache.exists():
        data = np.load(cache, allow_pickle=False)
        return [
            FaceSample(str(p), t, m, sh, float(y), float(pi), tone, float(g), {n: data[f"emb_{n}"][i] for n in RECOGNISERS})
            for i, (p, t, m, sh, y, pi, tone, g) in enumerate(
                zip(data["person"], data["texture"], data["mask"], data["shape"], data["yaw"], data["pitch"], data["tone"], data["glasses"])
            )
        ]
    samples = []
    for n, person in enumerate(people):
        sample = None
        for image in sorted(person.glob("*.jpg"))[:IMAGES_PER_PERSON]:
            sample = measure(image, models)
            if sample is not None:  # one image per person: k-Same counts people
                break
        if sample is not None:
            samples.append(sample)
        if n % 200 == 0:
            print(f"{n}/{len(people)} people read, {len(samples)} kept", file=sys.stderr)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            person=np.array([s.person for s in samples]),
            texture=np.stack([s.texture for s in samples]),
            mask=np.stack([s.mask for s in samples]),
            shape=np.stack([s.shape for s in samples]),
            yaw=np.array([s.yaw for s in samples]),
            pitch=np.array([s.pitch for s in samples]),
            tone=np.stack([s.tone for s in samples]),
            glasses=np.array([s.glasses for s in samples]),
            **{f"emb_{n}": np.stack([s.embeddings[n] for s in samples]) for n in RECOGNISERS},
        )
    return samples


def main(argv: list[str] | None = None) -> int:
    from deidvid.tools.lfw import DEFAULT_LFW

    p = argparse.ArgumentParser(prog="python -m deidvid.tools.build_surrogates", description=__doc__.split("\n\n")[0])
    p.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    p.add_argument("--tones", type=int, default=6)
    p.add_argument("--per-tone", type=int, default=2)
    p.add_argument("--people", type=int, default=32)
    p.add_argument("--female-tones", type=int, default=3, help="tone bins of female-looking surrogates (one each)")
    p.add_argument("--female-people", type=int, default=32, help="people per female-looking surrogate")
    p.add_argument("--limit", type=int, default=None, help="read at most this many people (a quick trial)")
    p.add_argument("--preview", type=Path, default=None, help="write frontal renders of the surrogates here")
    p.add_argument("--cache", type=Path, default=None, help="keep the measured faces here (.npz) for a rebuild")
    p.add_argument("--dry-run", action="store_true", help="build and check, but do not write weights/")
    args = p.parse_args(argv)
    if min(args.people, args.female_people) < MIN_PEOPLE:
        p.error(f"--people and --female-people must be >= {MIN_PEOPLE}")
    if not args.lfw.is_dir():
        print(f"error: LFW folder {args.lfw} not found", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    models = FaceModels()
    people = sorted(d for d in args.lfw.iterdir() if d.is_dir())[: args.limit]
    samples = read_samples(people, models, args.cache)
    pitch = np.median([s.pitch for s in samples])
    glasses = np.quantile([s.glasses for s in samples], GLASSES_QUANTILE)
    # The probe learns from every measured face; the surrogates average the kept ones.
    female_measured, probe, probe_record = presentations(samples)
    keep = np.array([abs(s.pitch - pitch) <= MAX_PITCH_OFFSET_DEG and s.glasses <= glasses for s in samples])
    kept = [s for s, k in zip(samples, keep) if k]
    female = female_measured[keep]
    groups = group(kept, np.flatnonzero(~female), args.tones, args.per_tone, args.people)
    groups += group(kept, np.flatnonzero(female), args.female_tones, 1, args.female_people)
    if not groups:
        print("error: too few usable faces for one surrogate", file=sys.stderr)
        return 1
    mirror_index = models.canonical.mirror_index()
    built = [build_one(members, spares, kept, models, mirror_index) for members, spares in groups]
    textures = np.stack([t for _, t, _, _ in built])
    shapes = np.stack([s for _, _, s, _ in built]).astype(np.float32)
    space = uv_space()
    tones = np.stack([skin_tone_lab(t, space.skin) for t in textures]).astype(np.float32)
    checks = [{**check(m, t, s, kept, models), "swaps": n} for m, t, s, n in built]
    wall = time.perf_counter() - t0
    for i, (c, tone) in enumerate(zip(checks, tones)):
        look = "female" if female[built[i][0][0]] else "male"
        print(f"surrogate {i}: {look}-looking, ITA {individual_typology_angle(tone):5.1f}  {json.dumps(c)}", file=sys.stderr)
    if args.preview:
        args.preview.mkdir(parents=True, exist_ok=True)
        for i, (t, s) in enumerate(zip(textures, shapes)):
            cv2.imwrite(str(args.preview / f"surrogate_{i:02d}.png"), frontal_render(t, s.astype(np.float64))[:, :, ::-1])
    if args.dry_run:
        return 0
    import torch

    from deidvid.weights.manifest import bundle_weights

    state = {
        "textures": torch.from_numpy(textures),
        "shapes": torch.from_numpy(shapes),
        "tones": torch.from_numpy(tones),
        "people": torch.tensor([len(m) for m, _, _, _ in built], dtype=torch.int32),
        "female": torch.tensor([bool(female[m[0]]) for m, _, _, _ in built]),
        "presentation_probe": torch.from_numpy(np.append(probe.weights, probe.bias).astype(np.float32)),
    }
    entry = {
        "licence": "aggregates of research-only LFW images (Huang et al. 2007): research use; no person's pixels",
        "module": "deidvid.surrogate.bank.load_bank",
        "use": "surrogate faces (--method surrogate, issue #11)",
        "output": "textures (K,256,256,3) uint8 RGB in the canonical UV space, shapes (K,468,3) float32 cm, tones (K,3) Lab, "
        "people (K,) int32, female (K,) bool (how its people look), presentation_probe (D+1,) float32 "
        "(weights and bias of P(female-looking) from recogniser A's embedding)",
        "build": {
            "command": f"python -m deidvid.tools.build_surrogates --tones {args.tones} --per-tone {args.per_tone} "
            f"--people {args.people} --female-tones {args.female_tones} --female-people {args.female_people}",
            "source": f"../shared/data/images/lfw, per person the first of their first {IMAGES_PER_PERSON} images that qualifies",
            "people_read": len(people),
            "faces_kept": len(kept),
            "filters": {
                "max_yaw_deg": MAX_YAW_DEG,
                "max_pitch_offset_deg": MAX_PITCH_OFFSET_DEG,
                "max_mouth_opening": MAX_MOUTH_OPENING,
                "glasses_quantile": GLASSES_QUANTILE,
            },
            "presentation": {**probe_record, "kept_female_looking": int(female.sum()), "kept_male_looking": int((~female).sum())},
            "wall_s": round(wall, 1),
            "hardware": "x86_64 CPU, 2 cores",
        },
        "surrogates": [
            {**c, "ita_deg": round(individual_typology_angle(t), 1), "looks": "female" if female[b[0][0]] else "male"}
            for c, t, b in zip(checks, tones, built)
        ],
    }
    path = bundle_weights("surrogates", state, "deidvid.tools.build_surrogates", entry)
    print(f"wrote {path} ({len(groups)} surrogates) in {wall:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
