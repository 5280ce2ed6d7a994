"""Calibrate the bundled recognisers on LFW pairs: ``python -m deidvid.tools.calibrate``.

Protocol (deterministic, seeded):

* People with >= 2 images in ``../shared/data/images/lfw`` (a local LFW subset).
* Faces: dlib's HOG detector (upsampled once; the detection nearest the image centre)
  + dlib's 68-point shape predictor. When HOG finds nothing, the shape predictor runs
  on the median HOG box (LFW crops are centred), and the count is reported.
* ``n`` same-person and ``n`` different-person pairs (default 3000 each) drawn with
  ``numpy.random.default_rng(seed)``; split into two halves for the threshold choice.
* Per recogniser: accuracy at the standard operating point (dlib: 0.6 Euclidean), the
  best-accuracy threshold chosen on one half and scored on the other (both ways), and
  the threshold at FAR = 1e-3 with its TAR, measured over *all* genuine and impostor
  pairs among the embedded images (millions of impostors, so 1e-3 is well resolved).

Results are written into the ``calibration`` block of each manifest entry (the
recogniser's ``threshold`` property reads it) and printed as a table. Recogniser B
(MobileFaceNet) is calibrated for evaluation only; it is never used in training.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deidvid.measure.gallery import equal_error_rate
from deidvid.recognise import ALL_RECOGNISERS, Embedder
from deidvid.tools.lfw import DEFAULT_LFW, load_rgb

FAR_TARGET = 1e-3


# ----------------------------------------------------------------------------- metrics


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs classified right when ``distance < threshold`` means same person."""
    return float(np.mean((distances < threshold) == same))


def best_accuracy_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Threshold maximising verification accuracy, and that accuracy.

    Candidates are midpoints between consecutive sorted distances (plus both ends), so
    the returned threshold separates the pairs exactly as the best cut does.
    """
    order = np.argsort(distances, kind="stable")
    d, s = distances[order], same[order].astype(np.int64)
    # accept the first k pairs (k = 0..N): correct = genuine among them + impostors after.
    genuine_before = np.concatenate([[0], np.cumsum(s)])
    impostor_after = (len(s) - s.sum()) - np.concatenate([[0], np.cumsum(1 - s)])
    correct = genuine_before + impostor_after
    # only cut where the distance changes (ties must fall on the same side)
    valid = np.ones(len(d) + 1, dtype=bool)
    valid[1:-1] = d[1:] > d[:-1]
    k = int(np.argmax(np.where(valid, correct, -1)))
    if k == 0:
        threshold = float(d[0]) - 1e-6
    elif k == len(d):
        threshold = float(d[-1]) + 1e-6
    else:
        threshold = float((d[k - 1] + d[k]) / 2)
    return threshold, float(correct[k] / len(d))


def threshold_at_far(impostor_distances: np.ndarray, far: float = FAR_TARGET) -> float:
    """Largest threshold whose false-accept rate (impostors with distance < t) is <= far."""
    d = np.sort(impostor_distances)
    allowed = int(np.floor(far * len(d)))  # impostors that may fall below the threshold
    return float(d[allowed]) if allowed < len(d) else float(d[-1]) + 1e-6


# ----------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class PairSet:
    images: list[Path]  # every image of every person with >= 2 images
    identity: np.ndarray  # (N,) person index of each image
    pairs: np.ndarray  # (P, 2) indices into images
    same: np.ndarray  # (P,) bool
    fold: np.ndarray  # (P,) 0 or 1


def lfw_people(lfw_dir: Path, min_images: int = 2) -> dict[str, list[Path]]:
    people = {p.name: sorted(p.glob("*.jpg")) for p in sorted(Path(lfw_dir).iterdir()) if p.is_dir()}
    return {name: files for name, files in people.items() if len(files) >= min_images}


def make_pairs(people: dict[str, list[Path]], n_pairs: int = 3000, seed: int = 0) -> PairSet:
    """``n_pairs`` same-person and ``n_pairs`` different-person pairs, seeded."""
    rng = np.random.default_rng(seed)
    images: list[Path] = []
    identity: list[int] = []
    first: list[int] = []
    for pid, files in enumerate(people.values()):
        first.append(len(images))
        images.extend(files)
        identity.extend([pid] * len(files))
    ident = np.asarray(identity)
    genuine = [
        (first[pid] + a, first[pid] + b)
        for pid, files in enumerate(people.values())
        for a, b in itertools.combinations(range(len(files)), 2)
    ]
    if n_pairs > len(genuine):
        raise ValueError(f"only {len(genuine)} same-person pairs exist; asked for {n_pairs}")
    same_pairs = np.asarray(genuine)[rng.choice(len(genuine), n_pairs, replace=False)]
    different: set[tuple[int, int]] = set()
    while len(different) < n_pairs:
        a, b = rng.integers(0, len(images), size=2)
        if ident[a] != ident[b]:
            different.add((int(min(a, b)), int(max(a, b))))
    diff_pairs = np.asarray(sorted(different))
    rng.shuffle(diff_pairs)
    pairs = np.concatenate([same_pairs, diff_pairs])
    same = np.concatenate([np.ones(n_pairs, bool), np.zeros(n_pairs, bool)])
    fold = np.concatenate([rng.permutation(n_pairs) % 2, rng.permutation(n_pairs) % 2])
    return PairSet(images, ident, pairs, same, fold)


# ----------------------------------------------------------------------------- faces


def dlib_landmarks(paths: list[Path], cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 68, 2)`` dlib landmarks and ``(N,)`` bool "HOG found a face" for each image."""
    if cache is not None and cache.exists():
        data = np.load(cache)
        return data["landmarks"], data["found"]
    import dlib

    from deidvid.weights.manifest import package_file

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(package_file("dlib_landmarks68")))
    boxes: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        img = load_rgb(path)
        dets = detector(img, 1)
        if len(dets) == 0:
            boxes.append(None)
            continue
        cy, cx = img.shape[0] / 2, img.shape[1] / 2
        best = min(dets, key=lambda r: ((r.left() + r.right()) / 2 - cx) ** 2 + ((r.top() + r.bottom()) / 2 - cy) ** 2)
        boxes.append((best.left(), best.top(), best.right(), best.bottom()))
    found_boxes = np.array([b for b in boxes if b is not None])
    median_box = tuple(int(v) for v in np.median(found_boxes, axis=0))
    landmarks = np.zeros((len(paths), 68, 2), np.float32)
    for i, (path, box) in enumerate(zip(paths, boxes)):
        shape = predictor(load_rgb(path), dlib.rectangle(*(box or median_box)))
        landmarks[i] = [(p.x, p.y) for p in shape.parts()]
    found = np.array([b is not None for b in boxes])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, landmarks=landmarks, found=found)
    return landmarks, found


def embed_paths(recogniser: Embedder, paths: list[Path], landmarks: np.ndarray, batch: int = 32) -> np.ndarray:
    """``(N, D)`` embeddings of one face per image (the scoring implementation: thresholds
    are calibrated on what verify and the identity check compute)."""
    out = []
    for start in range(0, len(paths), batch):
        images = np.stack([load_rgb(p) for p in paths[start : start + batch]])
        out.append(recogniser.embed_images(images, landmarks[start : start + batch]))
    return np.concatenate(out)


def embed_paths_with_dlib(paths: list[Path], landmarks: np.ndarray) -> np.ndarray:
    """``(N, 128)`` descriptors from real dlib (``compute_face_descriptor``, padding 0.25)
    on the same landmarks: the reference Recogniser A is a port of."""
    import dlib

    from deidvid.tools.check_dlib import dlib_models

    reference = dlib_models()[2]
    out = np.zeros((len(paths), 128))
    for i, path in enumerate(paths):
        parts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks[i]]
        shape = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), parts)
        out[i] = np.asarray(reference.compute_face_descriptor(load_rgb(path), shape, 0, 0.25))
    return out


# ----------------------------------------------------------------------------- calibration


def calibration_block(
    embeddings: np.ndarray, pairs: PairSet, standard_threshold: float | None, found: np.ndarray
) -> dict[str, Any]:
    """All numbers for one recogniser from its embeddings of ``pairs.images``."""
    d = np.linalg.norm(embeddings[pairs.pairs[:, 0]] - embeddings[pairs.pairs[:, 1]], axis=1)
    folds = []
    for test in (0, 1):
        train_mask, test_mask = pairs.fold != test, pairs.fold == test
        thr, train_acc = best_accuracy_threshold(d[train_mask], pairs.same[train_mask])
        folds.append({"threshold": thr, "train_accuracy": train_acc,
                      "test_accuracy": accuracy_at(d[test_mask], pairs.same[test_mask], thr)})  # fmt: skip
    cv_threshold = float(np.mean([f["threshold"] for f in folds]))
    cv_accuracy = float(np.mean([f["test_accuracy"] for f in folds]))

    # FAR / TAR over every genuine and impostor pair of the embedded images.
    sq = (embeddings**2).sum(1)
    all_d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * embeddings @ embeddings.T, 0))
    upper = np.triu(np.ones_like(all_d, dtype=bool), k=1)
    same_id = pairs.identity[:, None] == pairs.identity[None, :]
    genuine, impostor = all_d[upper & same_id], all_d[upper & ~same_id]
    far_thr = threshold_at_far(impostor, FAR_TARGET)

    block: dict[str, Any] = {
        "dataset": "LFW subset (../shared/data/images/lfw), people with >= 2 images",
        "faces": {"images": len(pairs.images), "hog_found": int(found.sum()),
                  "median_box_fallback": int((~found).sum())},  # fmt: skip
        "pairs": {"same": int(pairs.same.sum()), "different": int((~pairs.same).sum()), "seed": None},
        "two_fold": {"folds": folds, "threshold": cv_threshold, "accuracy": cv_accuracy},
        "far_1e-3": {
            "threshold": far_thr,
            "tar": float(np.mean(genuine < far_thr)),
            "far": float(np.mean(impostor < far_thr)),
            "genuine_pairs": int(genuine.size),
            "impostor_pairs": int(impostor.size),
        },
        "eer": equal_error_rate(genuine, impostor),
        "distance": "euclidean",
    }
    if standard_threshold is not None:
        block["threshold"] = standard_threshold
        block["threshold_rule"] = "published operating point"
    else:
        block["threshold"] = cv_threshold
        block["threshold_rule"] = "best accuracy, mean of the two folds' choices"
    block["accuracy_at_threshold"] = accuracy_at(d, pairs.same, block["threshold"])
    return block


def calibrate(
    lfw_dir: Path = DEFAULT_LFW,
    names: tuple[str, ...] = ALL_RECOGNISERS,
    n_pairs: int = 3000,
    seed: int = 0,
    device: str = "cpu",
    write: bool = True,
    cache_dir: Path | None = None,
    with_dlib: bool = False,
) -> dict[str, dict[str, Any]]:
    """Calibrate each recogniser; returns ``{name: calibration block}``.

    ``with_dlib`` adds a ``"dlib (reference)"`` row: real dlib on the same pairs and
    landmarks (not written to the manifest)."""
    from deidvid.recognise import RECOGNISERS, load_embedder, resolve_name
    from deidvid.weights.manifest import update_manifest_entry

    pairs = make_pairs(lfw_people(lfw_dir), n_pairs, seed)
    key = hashlib.sha256("\n".join(str(p) for p in pairs.images).encode()).hexdigest()[:16]
    cache = (cache_dir / f"lfw_dlib68_{key}.npz") if cache_dir else None
    t0 = time.perf_counter()
    landmarks, found = dlib_landmarks(pairs.images, cache)
    print(f"landmarks for {len(pairs.images)} images ({int(found.sum())} found by HOG) "
          f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    results = {}
    for name in names:
        canonical = resolve_name(name)
        t0 = time.perf_counter()
        rec = load_embedder(canonical, device)
        emb = embed_paths(rec, pairs.images, landmarks)
        block = calibration_block(emb, pairs, RECOGNISERS[canonical].standard_threshold, found)
        block["pairs"]["seed"] = seed
        print(f"{canonical}: embedded in {time.perf_counter() - t0:.0f} s")
        results[canonical] = block
        if write:
            update_manifest_entry(canonical, {"calibration": block})
    if with_dlib:
        t0 = time.perf_counter()
        emb = embed_paths_with_dlib(pairs.images, landmarks)
        results["dlib (reference)"] = calibration_block(emb, pairs, 0.6, found)
        results["dlib (reference)"]["pairs"]["seed"] = seed
        print(f"dlib reference: embedded in {time.perf_counter() - t0:.0f} s")
    return results


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'recogniser':<18}{'threshold':>10}{'acc@thr':>9}{'2-fold acc':>11}"
        f"{'thr@FAR1e-3':>12}{'TAR@FAR1e-3':>12}{'EER':>7}",
    ]
    for name, b in results.items():
        far = b["far_1e-3"]
        lines.append(
            f"{name:<18}{b['threshold']:>10.4f}{100 * b['accuracy_at_threshold']:>8.2f}%"
            f"{100 * b['two_fold']['accuracy']:>10.2f}%{far['threshold']:>12.4f}"
            f"{100 * far['tar']:>11.2f}%{100 * b['eer']:>6.2f}%"
        )
    some = next(iter(results.values()))
    lines.append(
        f"pairs: {some['pairs']['same']} same + {some['pairs']['different']} different (seed "
        f"{some['pairs']['seed']}); FAR/TAR over {some['far_1e-3']['genuine_pairs']} genuine and "
        f"{some['far_1e-3']['impostor_pairs']} impostor pairs; faces: {some['faces']['hog_found']}/"
        f"{some['faces']['images']} found by HOG"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW folder (one folder per person)")
    parser.add_argument("--recognisers", nargs="+", default=list(ALL_RECOGNISERS))
    parser.add_argument("--pairs", type=int, default=3000, help="same and different pairs, each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-write", action="store_true", help="do not update weights/MANIFEST.json")
    parser.add_argument("--with-dlib", action="store_true", help="also score real dlib (reference row)")
    parser.add_argument(
        "--cache-dir", type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deidvid",
        help="where dlib landmarks of the LFW images are cached",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not args.lfw.is_dir():
        print(f"LFW folder {args.lfw} not found (use --lfw)")
        return 3
    import torch

    torch.set_num_threads(args.threads)
    results = calibrate(args.lfw, tuple(args.recognisers), args.pairs, args.seed, args.device,
                        not args.no_write, args.cache_dir, args.with_dlib)  # fmt: skip
    print(format_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
