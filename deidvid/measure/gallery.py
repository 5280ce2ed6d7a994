"""Identification against a gallery of known people: top-1 accuracy, EER, rank-1/rank-5 re-identification.

A gallery is a folder ``DIR/<identity>/*.jpg`` (at least two identities). Each
identity's *template* is the mean embedding of the faces found in its images (the
largest detection per image). A face is classified as its nearest template
(Euclidean).

Closed set (the person is one of the gallery's identities): the true identity of a face
track is the majority prediction on its *original* frames. Per track and recogniser:
top-1 accuracy on both videos, and the equal error rate of each video's faces (genuine
score: distance to the true template; impostor: distance to every other template).

Re-identification (the attack the de-identification must resist): the person is
*enrolled* from the original video -- one more template, the mean embedding of the
track's original frames -- among the gallery's identities, the distractors. A face's
*rank* is 1 + the number of distractor templates nearer to it than the nearest template
of the person; rank-k is the fraction of faces with rank <= k (of the de-identified
faces: re-identified; of the original faces: about 1, a sanity check). A gallery
identity whose template lies within the recogniser's threshold of the enrolled one is
taken to be the same person (``same_person_in_gallery``), not a distractor. With fewer
than k distractors rank-k is 1 by construction (``gallery_size`` says how many
templates there were).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from deidvid.errors import BadInputError

if TYPE_CHECKING:
    from deidvid.measure.identity import IdentityScorer
    from deidvid.recognise import Embedder

GALLERY_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}

# (H, W, 3) uint8 RGB image -> (68, 2) landmarks of its main face, or None when there is none
FindLandmarks = Callable[[np.ndarray], "np.ndarray | None"]


REID_RANKS = (1, 5)


class GalleryScores(TypedDict):
    """One track's closed-set scores with one recogniser (the JSON of verify)."""

    identity: str
    top1_original: float
    top1_deidentified: float
    eer_original: float
    eer_deidentified: float
    frames: int


class ReidScores(TypedDict):
    """One track's re-identification with its original enrolled, one recogniser (the JSON of verify)."""

    gallery_size: int  # templates: the gallery's identities + the enrolled person
    same_person_in_gallery: list[str]
    rank1_original: float
    rank5_original: float
    rank1_deidentified: float
    rank5_deidentified: float


def gallery_images(gallery: Path) -> dict[str, list[Path]]:
    """Image paths per identity folder (sorted); BadInputError unless >= 2 identities have images."""
    if not gallery.is_dir():
        raise BadInputError(f"gallery {gallery} is not a folder (expected DIR/<identity>/images)")
    people = {}
    for folder in sorted(p for p in gallery.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in GALLERY_SUFFIXES)
        if images:
            people[folder.name] = images
    if len(people) < 2:
        raise BadInputError(f"gallery {gallery} needs at least 2 identity folders with images")
    return people


def read_rgb(path: Path) -> np.ndarray | None:
    """``(H, W, 3)`` uint8 RGB of an image file, None when it cannot be read."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey files come back as 3 channels
    return None if image is None else np.ascontiguousarray(image[:, :, ::-1])


def largest_face_landmarks(detector: Any, landmarker: Any) -> FindLandmarks:
    """:data:`FindLandmarks` from a face detector and a dlib 68-point predictor: the largest face."""
    from deidvid.faces.landmarks import dlib_box_from_detection, to_grey

    def find(image: np.ndarray) -> np.ndarray | None:
        found = detector(image)
        if not found:
            return None
        best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        return landmarker(to_grey(image), dlib_box_from_detection(best))

    return find


def embed_image(recognisers: Mapping[str, Embedder], image: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """``(D,)`` embedding of one ``(H, W, 3)`` uint8 face at ``(68, 2)`` landmarks, per recogniser."""
    from deidvid.measure.identity import embed_faces

    return {name: e[0] for name, e in embed_faces(recognisers, image[None], landmarks[None]).items()}


def gallery_templates(
    gallery: Path, recognisers: Mapping[str, Embedder], find_landmarks: FindLandmarks, warnings: list[str]
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Identity names and, per recogniser, ``(K, D)`` templates (mean embeddings of their faces).

    Unreadable images and identities without any face found add a line to ``warnings``.
    Raises BadInputError when fewer than two identities are left.
    """
    names: list[str] = []
    per_recogniser: dict[str, list[np.ndarray]] = {name: [] for name in recognisers}
    for identity, paths in gallery_images(gallery).items():
        embeddings: dict[str, list[np.ndarray]] = {name: [] for name in recognisers}
        for path in paths:
            image = read_rgb(path)
            if image is None:
                warnings.append(f"gallery image {path} could not be read")
                continue
            landmarks = find_landmarks(image)
            if landmarks is None:
                continue
            for name, embedding in embed_image(recognisers, image, landmarks).items():
                embeddings[name].append(embedding)
        if not any(embeddings.values()):
            warnings.append(f"gallery identity '{identity}': no face found in its images; skipped")
            continue
        names.append(identity)
        for name, rows in embeddings.items():
            per_recogniser[name].append(np.mean(rows, axis=0))
    if len(names) < 2:
        raise BadInputError(f"gallery {gallery}: faces found for fewer than 2 identities")
    return names, {name: np.stack(rows) for name, rows in per_recogniser.items()}


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """EER of distance scores (smaller = same): where false accepts = false rejects.

    Args:
        genuine: ``(G,)`` distances of same-person pairs.
        impostor: ``(I,)`` distances of different-person pairs.
    """
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    genuine, impostor = np.sort(genuine), np.sort(impostor)
    false_reject = 1.0 - np.searchsorted(genuine, thresholds, side="left") / genuine.size
    false_accept = np.searchsorted(impostor, thresholds, side="left") / impostor.size
    best = int(np.argmin(np.abs(false_accept - false_reject)))
    return float((false_accept[best] + false_reject[best]) / 2)


def template_distances(embeddings: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """``(N, D)`` faces x ``(K, D)`` templates -> ``(N, K)`` Euclidean distances."""
    return np.linalg.norm(embeddings[:, None] - templates[None], axis=2)


def closed_set_scores(original: np.ndarray, deidentified: np.ndarray, templates: np.ndarray, names: Sequence[str]) -> GalleryScores:
    """Top-1 accuracy and EER of one track's ``(N, D)`` original / de-identified embeddings.

    The true identity is the majority nearest template of the original faces (``N >= 1``).
    """
    d_original = template_distances(original, templates)
    d_deid = template_distances(deidentified, templates)
    votes = Counter(np.argmin(d_original, axis=1).tolist())
    truth = votes.most_common(1)[0][0]
    others = np.arange(len(names)) != truth
    return {
        "identity": names[truth],
        "top1_original": float(np.mean(np.argmin(d_original, axis=1) == truth)),
        "top1_deidentified": float(np.mean(np.argmin(d_deid, axis=1) == truth)),
        "eer_original": equal_error_rate(d_original[:, truth], d_original[:, others].ravel()),
        "eer_deidentified": equal_error_rate(d_deid[:, truth], d_deid[:, others].ravel()),
        "frames": len(original),
    }


def reid_ranks(probes: np.ndarray, person: np.ndarray, distractors: np.ndarray) -> np.ndarray:
    """``(N,)`` int ranks of ``(N, D)`` faces: 1 + the distractor templates ``(K, D)`` nearer
    than the nearest of the person's templates ``(P, D)`` (``P >= 1``; ties do not count)."""
    nearest_person = template_distances(probes, person).min(axis=1)  # (N,)
    if not len(distractors):
        return np.ones(len(probes), np.int64)
    closer = template_distances(probes, distractors) < nearest_person[:, None]
    return 1 + closer.sum(axis=1)


def reid_scores(
    original: np.ndarray, deidentified: np.ndarray, templates: np.ndarray, names: Sequence[str], threshold: float | None
) -> ReidScores:
    """Rank-1 / rank-5 re-identification of one track's ``(N, D)`` original and de-identified
    embeddings among ``templates (K, D)`` with the original enrolled (see the module docstring).

    ``threshold``: the recogniser's same-person distance; gallery templates nearer than it to
    the enrolled one count as the person (None: every gallery identity is a distractor).
    """
    enrolled = original.mean(axis=0, keepdims=True)  # (1, D)
    to_enrolled = template_distances(enrolled, templates)[0]  # (K,)
    same = to_enrolled < threshold if threshold is not None else np.zeros(len(templates), bool)
    person = np.concatenate([enrolled, templates[same]])
    ranks_original = reid_ranks(original, person, templates[~same])
    ranks_deid = reid_ranks(deidentified, person, templates[~same])
    k1, k5 = REID_RANKS
    return {
        "gallery_size": len(templates) + 1,
        "same_person_in_gallery": [n for n, s in zip(names, same) if s],
        "rank1_original": float(np.mean(ranks_original <= k1)),
        "rank5_original": float(np.mean(ranks_original <= k5)),
        "rank1_deidentified": float(np.mean(ranks_deid <= k1)),
        "rank5_deidentified": float(np.mean(ranks_deid <= k5)),
    }


def gallery_scores(
    names: list[str], templates: dict[str, np.ndarray], scorer: IdentityScorer, track_ids: list[int]
) -> dict[str, Any]:
    """``{"identities": names, "tracks": {track: {recogniser: GalleryScores + ReidScores}}}``
    from the (original, de-identified) embeddings ``scorer`` kept per track; tracks never
    embedded get ``{}``."""
    thresholds = scorer.thresholds
    out: dict[str, Any] = {"identities": names, "tracks": {}}
    for track_id in track_ids:
        per_recogniser = {}
        for name, template in templates.items():
            original, deid = scorer.embeddings(name, track_id)
            if len(original):
                per_recogniser[name] = {
                    **closed_set_scores(original, deid, template, names),
                    **reid_scores(original, deid, template, names, thresholds.get(name)),
                }
        out["tracks"][str(track_id)] = per_recogniser
    return out
