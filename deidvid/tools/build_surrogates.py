"""Build the surrogate bank (``weights/surrogates.safetensors``) from LFW.

    python -m deidvid.tools.build_surrogates [--lfw DIR] [--tones 6] [--per-tone 2] [--people 32]

One image per LFW person: detect, 68 landmarks, FaceMesh (twice: the second crop from
the first mesh), split into pose and canonical shape, and keep near-frontal faces with a
closed mouth and no strong glasses edges. Each kept face is unwrapped into the UV
texture space (visible triangles only) with its mirror image. People are binned by skin
tone (ITA quantiles); each bin is split by recogniser A's embedding (2-means: similar
faces average sharper) and each cluster keeps the ``--people`` members nearest its
centre. A surrogate is the texel-wise mean of its members' textures (inner mouth painted
dark, unseen texels filled in) and the mean of their shapes.

The check written to the manifest and model card: each surrogate is rendered frontally,
found again by the pipeline's own detector and landmarks, and compared with recognisers A
and C to every one of its source people and to every other kept person: the nearest
distance must stay above each recogniser's same-person threshold. Recogniser B is not used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deidvid.surrogate import raster
from deidvid.surrogate.bank import MIN_PEOPLE, individual_typology_angle, skin_tone_lab
from deidvid.surrogate.shape import Pose, split_pose
from deidvid.surrogate.uvspace import uv_space, mouth_opening

MAX_YAW_DEG = 12.0
MAX_PITCH_OFFSET_DEG = 12.0
MAX_MOUTH_OPENING = 0.035
MIN_FACE_WIDTH_PX = 60
GLASSES_QUANTILE = 0.7  # faces above this edge-energy quantile around the eyes are dropped
MOUTH_RGB = (70, 30, 32)  # the inner mouth: dark, reddish (what a shadowed mouth looks like)
RECOGNISERS = ("A", "C")  # never B: it is kept to tell the truth


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
    embedding: np.ndarray  # recogniser A
    image: np.ndarray  # the LFW image (for the check)
    landmarks: np.ndarray  # (68, 2)


class FaceModels:
    """The pipeline's detector, landmarks, mesh and recognisers A and C."""

    def __init__(self) -> None:
        from deidvid.faces.canonical_mesh import load_canonical_mesh
        from deidvid.faces.detect import FaceDetector
        from deidvid.faces.landmarks import LandmarkPredictor
        from deidvid.faces.mesh import FaceMesh
        from deidvid.recognise import load_recogniser

        self.detector = FaceDetector()
        self.landmarker = LandmarkPredictor()
        self.mesh = FaceMesh()
        self.canonical = load_canonical_mesh()
        self.recognisers = {name: load_recogniser(name) for name in RECOGNISERS}

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        from deidvid.faces.landmarks import dlib_box_from_detection, to_grey

        found = self.detector(rgb)
        if not found:
            return None
        best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        return self.landmarker(to_grey(rgb), dlib_box_from_detection(best))

    def embed(self, name: str, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import torch

        from deidvid.measure.identity import image_batch, landmark_batch

        with torch.inference_mode():
            return self.recognisers[name].embed(image_batch(rgb[None]), landmark_batch(landmarks[None]))[0].numpy()


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
        embedding=models.embed("A", rgb, landmarks),
        image=rgb,
        landmarks=landmarks,
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
    mouth = raster.triangle_index(space.points, space.triangles, (space.size, space.size), np.flatnonzero(space.inner_mouth)) >= 0
    texture[mouth] = MOUTH_RGB
    return texture, np.mean(shapes, axis=0)


def group(samples: list[FaceSample], tones: int, per_tone: int, people: int) -> list[list[FaceSample]]:
    """Tone bins (ITA quantiles), each split by recogniser A embeddings into ``per_tone``
    clusters of the ``people`` members nearest each centre."""
    ita = np.array([individual_typology_angle(s.tone) for s in samples])
    order = np.argsort(ita)
    groups = []
    for chunk in np.array_split(order, tones):
        embeddings = np.stack([samples[i].embedding for i in chunk])
        labels, centres = _kmeans(embeddings, per_tone, seed=0)
        for k in range(per_tone):
            idx = chunk[labels == k]
            if len(idx) < MIN_PEOPLE:
                continue
            near = idx[np.argsort(np.linalg.norm(embeddings[labels == k] - centres[k], axis=1))[:people]]
            groups.append([samples[i] for i in near])
    return groups


def _kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iterations):
        labels = np.linalg.norm(x[:, None] - centres[None], axis=2).argmin(axis=1)
        centres = np.stack([x[labels == j].mean(axis=0) if (labels == j).any() else centres[j] for j in range(k)])
    return labels, centres


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


def check(groups: list[list[FaceSample]], textures, shapes, samples: list[FaceSample], models: FaceModels) -> list[dict]:
    """Per surrogate, recognisers A and C: nearest distance to its own people and to all kept people."""
    results = []
    refs = {name: np.stack([models.embed(name, s.image, s.landmarks) for s in samples]) for name in RECOGNISERS}
    index = {s.person: i for i, s in enumerate(samples)}
    for members, texture, shape in zip(groups, textures, shapes):
        image = frontal_render(texture, shape)
        landmarks = models.landmarks(image)
        entry: dict = {"people": len(members), "detected": landmarks is not None}
        if landmarks is not None:
            own = [index[m.person] for m in members]
            for name in RECOGNISERS:
                rec = models.recognisers[name]
                d = np.linalg.norm(refs[name] - models.embed(name, image, landmarks), axis=1)
                entry[name] = {
                    "threshold": round(rec.threshold, 4),
                    "nearest_source_distance": round(float(d[own].min()), 4),
                    "nearest_any_distance": round(float(d.min()), 4),
                    "sources_matched": int((d[own] < rec.threshold).sum()),
                    "others_matched": int((np.delete(d, own) < rec.threshold).sum()),
                }
        results.append(entry)
    return results


def main(argv: list[str] | None = None) -> int:
    from deidvid.tools.lfw import DEFAULT_LFW

    p = argparse.ArgumentParser(prog="python -m deidvid.tools.build_surrogates", description=__doc__.split("\n\n")[0])
    p.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    p.add_argument("--tones", type=int, default=6)
    p.add_argument("--per-tone", type=int, default=2)
    p.add_argument("--people", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="read at most this many people (a quick trial)")
    p.add_argument("--preview", type=Path, default=None, help="write frontal renders of the surrogates here")
    p.add_argument("--dry-run", action="store_true", help="build and check, but do not write weights/")
    args = p.parse_args(argv)
    if args.people < MIN_PEOPLE:
        p.error(f"--people must be >= {MIN_PEOPLE}")
    if not args.lfw.is_dir():
        print(f"error: LFW folder {args.lfw} not found", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    models = FaceModels()
    people = sorted(d for d in args.lfw.iterdir() if d.is_dir())[: args.limit]
    samples = []
    for n, person in enumerate(people):
        first = min(person.glob("*.jpg"), default=None)
        sample = measure(first, models) if first else None
        if sample is not None:
            samples.append(sample)
        if n % 200 == 0:
            print(f"{n}/{len(people)} people read, {len(samples)} kept", file=sys.stderr)
    pitch = np.median([s.pitch for s in samples])
    glasses = np.quantile([s.glasses for s in samples], GLASSES_QUANTILE)
    kept = [s for s in samples if abs(s.pitch - pitch) <= MAX_PITCH_OFFSET_DEG and s.glasses <= glasses]
    groups = group(kept, args.tones, args.per_tone, args.people)
    if not groups:
        print("error: too few usable faces for one surrogate", file=sys.stderr)
        return 1
    mirror_index = models.canonical.mirror_index()
    built = [aggregate(g, mirror_index) for g in groups]
    textures = np.stack([t for t, _ in built])
    shapes = np.stack([s for _, s in built]).astype(np.float32)
    space = uv_space()
    tones = np.stack([skin_tone_lab(t, space.skin) for t in textures]).astype(np.float32)
    checks = check(groups, textures, shapes, kept, models)
    wall = time.perf_counter() - t0
    for i, (c, tone) in enumerate(zip(checks, tones)):
        print(f"surrogate {i}: ITA {individual_typology_angle(tone):5.1f}  {json.dumps(c)}", file=sys.stderr)
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
        "people": torch.tensor([len(g) for g in groups], dtype=torch.int32),
    }
    entry = {
        "licence": "aggregates of research-only LFW images (Huang et al. 2007): research use; no person's pixels",
        "module": "deidvid.surrogate.bank.load_bank",
        "use": "surrogate faces (--method surrogate, issue #11)",
        "output": "textures (K,256,256,3) uint8 RGB in the canonical UV space, shapes (K,468,3) float32 cm, tones (K,3) Lab, people (K,) int32",
        "build": {
            "command": "python -m deidvid.tools.build_surrogates " + " ".join(argv if argv is not None else sys.argv[1:]),
            "source": "../shared/data/images/lfw, first image of each person",
            "people_read": len(people),
            "faces_kept": len(kept),
            "filters": {
                "max_yaw_deg": MAX_YAW_DEG,
                "max_pitch_offset_deg": MAX_PITCH_OFFSET_DEG,
                "max_mouth_opening": MAX_MOUTH_OPENING,
                "glasses_quantile": GLASSES_QUANTILE,
            },
            "wall_s": round(wall, 1),
            "hardware": "x86_64 CPU, 2 cores",
        },
        "surrogates": [
            {**c, "ita_deg": round(individual_typology_angle(t), 1)} for c, t in zip(checks, tones)
        ],
    }
    path = bundle_weights("surrogates", state, "deidvid.tools.build_surrogates", entry)
    print(f"wrote {path} ({len(groups)} surrogates) in {wall:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
