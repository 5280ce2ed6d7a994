"""``deidvid verify ORIGINAL DEIDENTIFIED``: did the pulse survive, and the identity not?

Two passes, memory independent of video length:

1. Faces are found and tracked in the *original* only (``deidvid.faces.find``: detector,
   dlib 68 landmarks, tracker, 5-frame smoothing). Every measurement then uses the
   original's landmarks for both videos, so only the pixels differ.
2. Both videos are decoded in lockstep. Per frame: PSNR (every frame) and SSIM
   (every ``ssim_stride``-th) of the full frame and of each face's 128x128 crop; per
   tracked face the mean skin RGB (:mod:`deidvid.faces.skin`) of both videos; every
   ``identity_stride``-th face frame is embedded by each bundled recogniser in both
   videos at the original's landmarks; every ``detect_stride``-th frame the face
   detector runs on both videos.

Then per face track: POS / CHROM / GREEN pulse of both videos (resampled to an even
grid for variable-frame-rate input), compared window by window
(:func:`deidvid.rppg.compare.compare_pulses`; de-identified = test, original =
reference) for each window length and the whole track; with a contact PPG
(``ppg``), both videos' pulses against it, for the longest track.

Identity, per track and recogniser: *match rate* = fraction of embedded frames where
the de-identified face is within the recogniser's calibrated threshold of the same
frame's original face (so a face the detector misses still counts if recognisable),
mean distance, and the *detection rate* (fraction of sampled frames where the
detector finds a face at the track's place) in each video. With a gallery
(``DIR/<identity>/*.jpg``): each identity's template is its mean embedding; a face
is classified as its nearest template; the true identity of a track is the
majority prediction on its *original* frames; closed-set top-1 accuracy on both
videos and the EER of de-identified faces (genuine: distance to the true template,
impostor: to every other template).

PSNR of identical frames is infinite; the JSON report writes ``null`` for it
(and for any other undefined number).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deidvid.errors import BadInputError
from deidvid.faces.find import FaceFinding
from deidvid.measure.quality import QualityAccumulator
from deidvid.rppg.compare import PulseSettings, compare_pulses
from deidvid.rppg.ground_truth import ppg_at_frames, read_ground_truth
from deidvid.rppg.hr import DEFAULT_BAND_HZ, heart_rate
from deidvid.rppg.methods import RPPG_METHODS, pos_window_length
from deidvid.rppg.signals import fill_gaps, is_uniform, masked_mean_rgb, resample_uniform
from deidvid.faces.skin import skin_region
from deidvid.recognise import ALL_RECOGNISERS

Progress = Callable[[str, int, int], None]  # (stage, frames done, frames total)

MIN_PULSE_SECONDS = 3.0  # shorter face tracks get no pulse analysis
GALLERY_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
DETECTION_MIN_IOU = 0.3


@dataclass(frozen=True)
class VerifyOptions:
    """Settings of one verification (all of them are recorded in the report)."""

    methods: tuple[str, ...] = ("pos", "chrom", "green")
    windows_s: tuple[float, ...] = (10.0, 30.0)
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ
    recognisers: tuple[str, ...] = ALL_RECOGNISERS
    identity_stride: int = 5
    ssim_stride: int = 5
    detect_stride: int = 10
    device: str = "cpu"
    ppg: Path | None = None
    gallery: Path | None = None
    # Face finding in the original (as ``deidvid anonymise``).
    finding: FaceFinding = field(default_factory=FaceFinding)
    macc_max_lag_s: float = 0.25
    batch_size: int = 8

    @property
    def primary_method(self) -> str:
        """The method the summary and the HR gate use (the first one)."""
        return self.methods[0]

    @property
    def primary_window(self) -> float | None:
        """The window the summary and the HR gate use (the first; None = whole track)."""
        return self.windows_s[0] if self.windows_s else None


@dataclass
class VerifyReport:
    """Everything ``verify`` measured. :meth:`to_dict` is the JSON report."""

    original: str
    deidentified: str
    video: dict[str, Any]
    settings: dict[str, Any]
    quality: dict[str, Any]
    faces: list[dict[str, Any]]
    gallery: dict[str, Any] | None
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN/inf become None, numpy scalars Python numbers."""
        return json_safe(asdict(self))


def json_safe(value: Any) -> Any:
    """Recursively make ``value`` JSON-serialisable (non-finite floats -> None)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# ------------------------------------------------------------------------ inputs


def check_compatible(original_info: Any, deid_info: Any) -> None:
    """Raise BadInputError unless both videos have the same size, frame count and rate."""
    a, b = original_info, deid_info
    if (a.width, a.height) != (b.width, b.height):
        raise BadInputError(
            f"frame sizes differ: {a.width}x{a.height} (original) vs {b.width}x{b.height}"
        )
    if a.frame_count != b.frame_count:
        raise BadInputError(
            f"frame counts differ: {a.frame_count} (original) vs {b.frame_count}; "
            "verify compares frame by frame"
        )
    fps_a, fps_b = float(a.fps), float(b.fps)
    if abs(fps_a - fps_b) > 1e-3 * max(fps_a, fps_b):
        raise BadInputError(f"frame rates differ: {fps_a:.3f} (original) vs {fps_b:.3f} fps")


def _check_options(options: VerifyOptions) -> None:
    unknown = [m for m in options.methods if m not in RPPG_METHODS]
    if unknown or not options.methods:
        raise ValueError(f"rPPG methods must be among {sorted(RPPG_METHODS)}, got {unknown}")
    for name in ("identity_stride", "ssim_stride", "detect_stride", "batch_size"):
        if getattr(options, name) < 1:
            raise ValueError(f"{name} must be >= 1")


# ------------------------------------------------------------------------ identity


class _IdentityScorer:
    """Embeds original and de-identified faces at the original's landmarks, in batches."""

    def __init__(self, names: tuple[str, ...], device: str, batch_size: int) -> None:
        from deidvid.recognise import load_recogniser, resolve_name

        self.recognisers = {resolve_name(n): load_recogniser(n, device) for n in names}
        self.device = device
        self.batch_size = batch_size
        self._queue: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        # name -> track -> list of (original, de-identified) embeddings
        self.embeddings: dict[str, dict[int, list[tuple[np.ndarray, np.ndarray]]]] = {
            name: defaultdict(list) for name in self.recognisers
        }

    def thresholds(self) -> dict[str, float | None]:
        out = {}
        for name, recogniser in self.recognisers.items():
            try:
                out[name] = recogniser.threshold
            except Exception:  # noqa: BLE001 - an uncalibrated recogniser reports distances only
                out[name] = None
        return out

    def add(self, track_id: int, original: np.ndarray, deid: np.ndarray, landmarks: np.ndarray):
        self._queue.append((track_id, original, deid, landmarks))
        if len(self._queue) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._queue:
            return
        import torch

        queue, self._queue = self._queue, []
        landmarks = torch.from_numpy(np.stack([q[3] for q in queue]).astype(np.float32))
        landmarks = landmarks.to(self.device)

        def as_batch(position: int) -> torch.Tensor:
            images = torch.from_numpy(np.stack([q[position] for q in queue])).to(self.device)
            return images.permute(0, 3, 1, 2).float() / 255.0

        with torch.inference_mode():
            originals, deids = as_batch(1), as_batch(2)
            for name, recogniser in self.recognisers.items():
                embedded_original = recogniser.embed(originals, landmarks).cpu().numpy()
                embedded_deid = recogniser.embed(deids, landmarks).cpu().numpy()
                for row, item in enumerate(queue):
                    self.embeddings[name][item[0]].append(
                        (embedded_original[row], embedded_deid[row])
                    )

    def pairs(self, name: str, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(N, D)`` original and de-identified embeddings of one track."""
        rows = self.embeddings[name].get(track_id, [])
        if not rows:
            dim = self.recognisers[name].dim
            return np.zeros((0, dim)), np.zeros((0, dim))
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def track_summary(self, track_id: int) -> dict[str, dict[str, Any]]:
        out = {}
        for name, threshold in self.thresholds().items():
            original, deid = self.pairs(name, track_id)
            distances = np.linalg.norm(original - deid, axis=1)
            out[name] = {
                "frames": int(distances.size),
                "threshold": threshold,
                "match_rate": (
                    float(np.mean(distances < threshold))
                    if threshold is not None and distances.size
                    else None
                ),
                "mean_distance": float(distances.mean()) if distances.size else None,
                "median_distance": float(np.median(distances)) if distances.size else None,
            }
        return out


class _DetectionCounter:
    """Runs the face detector on sampled frames of both videos."""

    def __init__(self, device: str, score_threshold: float, max_side: int) -> None:
        from deidvid.faces.detect import FaceDetector

        self.detector = FaceDetector(
            device=device, score_threshold=score_threshold, max_side=max_side
        )
        self.counts: dict[int, dict[str, int]] = defaultdict(
            lambda: {"sampled": 0, "original": 0, "deidentified": 0}
        )

    def add(self, original: np.ndarray, deid: np.ndarray, faces: dict[int, np.ndarray]) -> None:
        from deidvid.faces.geometry import face_region_points
        from deidvid.faces.track import box_iou, landmark_box

        found_original, found_deid = self.detector.detect_batch([original, deid])
        for track_id, landmarks in faces.items():
            target = landmark_box(face_region_points(landmarks))[None]
            counts = self.counts[track_id]
            counts["sampled"] += 1
            for key, found in (("original", found_original), ("deidentified", found_deid)):
                if not found:
                    continue
                overlap = box_iou(np.stack([d.box for d in found]), target).max()
                counts[key] += int(overlap >= DETECTION_MIN_IOU)

    def track_summary(self, track_id: int) -> dict[str, Any]:
        counts = self.counts.get(track_id, {"sampled": 0, "original": 0, "deidentified": 0})
        sampled = counts["sampled"]
        return {
            "frames": sampled,
            "rate_original": counts["original"] / sampled if sampled else None,
            "rate_deidentified": counts["deidentified"] / sampled if sampled else None,
        }


# ------------------------------------------------------------------------ gallery


def _gallery_images(gallery: Path) -> dict[str, list[Path]]:
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


def _read_rgb(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey files come back as 3 channels
    return None if image is None else np.ascontiguousarray(image[:, :, ::-1])


def gallery_templates(
    gallery: Path, scorer: _IdentityScorer, detector: Any, warnings: list[str]
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Identity names and, per recogniser, ``(K, D)`` mean embeddings of their images."""
    import torch

    from deidvid.faces.landmarks import LandmarkPredictor, dlib_box_from_detection, to_grey

    landmarker = LandmarkPredictor()
    names, per_recogniser = [], {name: [] for name in scorer.recognisers}
    for identity, paths in _gallery_images(gallery).items():
        embeddings = {name: [] for name in scorer.recognisers}
        for path in paths:
            image = _read_rgb(path)
            if image is None:
                warnings.append(f"gallery image {path} could not be read")
                continue
            found = detector(image)
            if not found:
                continue
            best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
            landmarks = landmarker(to_grey(image), dlib_box_from_detection(best))
            tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
            points = torch.from_numpy(landmarks[None].astype(np.float32))
            with torch.inference_mode():
                for name, recogniser in scorer.recognisers.items():
                    embeddings[name].append(recogniser.embed(tensor, points)[0].numpy())
        if not embeddings[next(iter(embeddings))]:
            warnings.append(f"gallery identity '{identity}': no face found in its images; skipped")
            continue
        names.append(identity)
        for name, rows in embeddings.items():
            per_recogniser[name].append(np.mean(rows, axis=0))
    if len(names) < 2:
        raise BadInputError(f"gallery {gallery}: faces found for fewer than 2 identities")
    return names, {name: np.stack(rows) for name, rows in per_recogniser.items()}


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """EER of distance scores (smaller = same): where false accepts = false rejects."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    genuine, impostor = np.sort(genuine), np.sort(impostor)
    false_reject = 1.0 - np.searchsorted(genuine, thresholds, side="left") / genuine.size
    false_accept = np.searchsorted(impostor, thresholds, side="left") / impostor.size
    best = int(np.argmin(np.abs(false_accept - false_reject)))
    return float((false_accept[best] + false_reject[best]) / 2)


def gallery_scores(
    names: list[str],
    templates: dict[str, np.ndarray],
    scorer: _IdentityScorer,
    track_ids: list[int],
) -> dict[str, Any]:
    """Closed-set top-1 accuracy (both videos) and EER per recogniser and track."""
    out: dict[str, Any] = {"identities": names, "tracks": {}}
    for track_id in track_ids:
        per_recogniser = {}
        for name, template in templates.items():
            original, deid = scorer.pairs(name, track_id)
            if not len(original):
                continue
            d_original = np.linalg.norm(original[:, None] - template[None], axis=2)  # (N, K)
            d_deid = np.linalg.norm(deid[:, None] - template[None], axis=2)
            votes = Counter(np.argmin(d_original, axis=1).tolist())
            truth = votes.most_common(1)[0][0]
            others = np.arange(len(names)) != truth
            per_recogniser[name] = {
                "identity": names[truth],
                "top1_original": float(np.mean(np.argmin(d_original, axis=1) == truth)),
                "top1_deidentified": float(np.mean(np.argmin(d_deid, axis=1) == truth)),
                "eer_original": equal_error_rate(
                    d_original[:, truth], d_original[:, others].ravel()
                ),
                "eer_deidentified": equal_error_rate(d_deid[:, truth], d_deid[:, others].ravel()),
                "frames": int(len(original)),
            }
        out["tracks"][str(track_id)] = per_recogniser
    return out


# ------------------------------------------------------------------------ pulse


def pulse_section(
    rgb_original: np.ndarray,
    rgb_deid: np.ndarray,
    times: np.ndarray,
    options: VerifyOptions,
    ppg: np.ndarray | None = None,
) -> dict[str, Any]:
    """Pulse comparison for one face track.

    Args:
        rgb_original, rgb_deid: ``(T, 3)`` mean skin RGB per frame (NaN = no skin seen).
        times: ``(T,)`` frame times (s).
        ppg: ``(T,)`` contact PPG at the frames (NaN where not recorded), or None.
    """
    series = [fill_gaps(rgb_original), fill_gaps(rgb_deid)]
    if ppg is not None:
        covered = np.isfinite(ppg)
        recorded = covered.size if covered.all() else int(np.argmin(covered))  # leading run
        if recorded >= 2:
            series.append(ppg[:recorded, None])
    length = min(len(s) for s in series)
    times = np.asarray(times[:length], dtype=np.float64)
    resampled = not is_uniform(times)
    if resampled:
        evened = [resample_uniform(s[:length], times)[0] for s in series]
        fs = resample_uniform(series[0][:length], times)[2]
    else:
        evened = [s[:length] for s in series]
        fs = (length - 1) / (times[-1] - times[0])
    rgb_original, rgb_deid = evened[0], evened[1]
    ppg_even = evened[2][:, 0] if len(evened) > 2 else None
    settings = PulseSettings(band_hz=tuple(options.band_hz), macc_max_lag_s=options.macc_max_lag_s)
    windows: list[float | None] = [*options.windows_s, None]
    out: dict[str, Any] = {"fs": fs, "resampled": resampled, "frames": length, "methods": {}}
    for method in options.methods:
        function = RPPG_METHODS[method]
        pulse_original = function(rgb_original, fs)
        pulse_deid = function(rgb_deid, fs)
        entry: dict[str, Any] = {
            "hr_original_bpm": heart_rate(pulse_original, fs, settings.band_hz),
            "hr_deidentified_bpm": heart_rate(pulse_deid, fs, settings.band_hz),
            "windows": {},
        }
        for window in windows:
            key = "whole" if window is None else f"{window:g}"
            comparison = compare_pulses(pulse_deid, pulse_original, fs, window, settings)
            if comparison.windows:
                entry["windows"][key] = comparison.as_dict()
        if ppg_even is not None:
            entry["ppg"] = {}
            for label, pulse in (("original", pulse_original), ("deidentified", pulse_deid)):
                entry["ppg"][label] = {}
                for window in windows:
                    key = "whole" if window is None else f"{window:g}"
                    comparison = compare_pulses(pulse, ppg_even, fs, window, settings)
                    if comparison.windows:
                        entry["ppg"][label][key] = comparison.as_dict()
        out["methods"][method] = entry
    return out


# ------------------------------------------------------------------------ main


def verify_videos(
    original: str | Path,
    deidentified: str | Path,
    options: VerifyOptions = VerifyOptions(),
    progress: Progress | None = None,
) -> VerifyReport:
    """Compare a de-identified video with its original; see the module docstring."""
    from deidvid.faces.geometry import crop_box, cut_crop
    from deidvid.io.decode import iter_frames, probe
    from deidvid.faces.find import analyse_video
    from deidvid.timing import StageTimer

    _check_options(options)
    original, deidentified = Path(original), Path(deidentified)
    started = time.perf_counter()
    timer = StageTimer()
    warnings: list[str] = []
    info = probe(original)
    deid_info = probe(deidentified)
    check_compatible(info, deid_info)
    truth = read_ground_truth(options.ppg) if options.ppg is not None else None

    analysis = analyse_video(original, options.finding, options.device, info, timer, progress)
    tracks = analysis.tracks
    if not tracks:
        raise BadInputError(f"{original}: no face found in the original video; nothing to verify")

    with timer("load models"):
        scorer = _IdentityScorer(options.recognisers, options.device, options.batch_size)
        detections = _DetectionCounter(
            options.device, options.finding.score_threshold, options.finding.detector_max_side
        )
    for name, threshold in scorer.thresholds().items():
        if threshold is None:
            warnings.append(f"recogniser '{name}' has no calibrated threshold: distances only")

    frame_quality, face_quality = QualityAccumulator(), QualityAccumulator()
    rgb = {t.track_id: np.full((2, len(t.landmarks), 3), np.nan) for t in tracks}
    times = np.full(analysis.frame_count, np.nan)
    decoded = 0
    pairs = zip(iter_frames(original, info), iter_frames(deidentified, deid_info))
    while True:
        with timer("decode"):
            pair = next(pairs, None)
        if pair is None:
            break
        frame_o, frame_d = pair
        index = frame_o.index
        decoded += 1
        if index < times.size:
            times[index] = frame_o.time_s
        a, b = frame_o.rgb, frame_d.rgb
        with timer("quality"):
            frame_quality.update(a, b, with_ssim=index % options.ssim_stride == 0)
        here = {t.track_id: t.at(index) for t in tracks if t.covers(index)}
        for track in tracks:
            if not track.covers(index):
                continue
            landmarks = here[track.track_id]
            offset = index - track.start
            with timer("skin"):
                region = skin_region(landmarks, a.shape[:2])
                rgb[track.track_id][0, offset] = masked_mean_rgb(a, region)
                rgb[track.track_id][1, offset] = masked_mean_rgb(b, region)
            with timer("quality"):
                box = crop_box(landmarks)
                face_quality.update(
                    cut_crop(a, box), cut_crop(b, box), with_ssim=offset % options.ssim_stride == 0
                )
            if offset % options.identity_stride == 0:
                with timer("identity"):
                    scorer.add(track.track_id, a, b, landmarks)
        if here and index % options.detect_stride == 0:
            with timer("detect"):
                detections.add(a, b, here)
        if progress:
            progress("verify", decoded, info.frame_count)
    with timer("identity"):
        scorer.flush()
    if decoded != analysis.frame_count:
        raise BadInputError(
            f"decoded {decoded} frame pairs but the original has {analysis.frame_count} frames"
        )

    primary_track = max(tracks, key=lambda t: len(t.landmarks))
    faces = []
    with timer("pulse"):
        for track in tracks:
            track_times = times[track.start : track.end]
            entry: dict[str, Any] = {
                "track_id": track.track_id,
                "start_frame": track.start,
                "frames": len(track.landmarks),
                "interpolated_frames": int((~track.observed).sum()),
            }
            seconds = track_times[-1] - track_times[0] if len(track_times) > 1 else 0.0
            long_enough = (
                seconds >= MIN_PULSE_SECONDS
                and len(track_times) > pos_window_length(float(info.fps)) + 10
            )
            if long_enough:
                ppg = None
                if truth is not None and track is primary_track:
                    ppg = ppg_at_frames(truth, times)[track.start : track.end]
                entry["pulse"] = pulse_section(
                    rgb[track.track_id][0], rgb[track.track_id][1], track_times, options, ppg
                )
            else:
                entry["pulse"] = None
                warnings.append(
                    f"face track {track.track_id} lasts {seconds:.1f} s: too short for pulse "
                    f"analysis (needs {MIN_PULSE_SECONDS:g} s)"
                )
            entry["identity"] = scorer.track_summary(track.track_id)
            entry["detection"] = detections.track_summary(track.track_id)
            faces.append(entry)
    if truth is not None and len(tracks) > 1:
        warnings.append(
            f"contact PPG compared with face track {primary_track.track_id} (the longest)"
        )

    gallery = None
    if options.gallery is not None:
        with timer("gallery"):
            names, templates = gallery_templates(
                Path(options.gallery), scorer, detections.detector, warnings
            )
            gallery = gallery_scores(names, templates, scorer, [t.track_id for t in tracks])

    settings = _settings(options, scorer.thresholds())
    quality = {"frame": frame_quality.summary(), "face": face_quality.summary()}
    report = VerifyReport(
        original=str(original),
        deidentified=str(deidentified),
        video={
            "width": info.width,
            "height": info.height,
            "fps": float(info.fps),
            "frames": analysis.frame_count,
            "variable_frame_rate": not is_uniform(times[np.isfinite(times)]),
            "face_tracks": len(tracks),
        },
        settings=settings,
        quality=quality,
        faces=faces,
        gallery=gallery,
        summary={},
        warnings=warnings,
    )
    report.summary = summarise(report, options)
    timings = {k: round(v, 3) for k, v in timer.seconds.items()}
    timings["total"] = round(time.perf_counter() - started, 3)
    report.timings_s = timings
    return report


def _settings(options: VerifyOptions, thresholds: dict[str, float | None]) -> dict[str, Any]:
    import importlib.metadata

    from deidvid import __version__
    from deidvid.rppg.hr import DEFAULT_DETREND_LAMBDA
    from deidvid.rppg.metrics import SNR_HALF_WIDTH_HZ, SPECTRAL_BAND_HZ

    versions = {"deidvid": __version__}
    for package in ("numpy", "scipy", "torch", "av", "opencv-python-headless", "dlib-bin"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    settings.update(
        primary_method=options.primary_method,
        primary_window_s=options.primary_window,
        detrend_lambda=DEFAULT_DETREND_LAMBDA,
        butterworth_order=1,
        hr="periodogram peak in band, nfft = next power of 2 (rPPG-Toolbox)",
        snr_half_width_hz=SNR_HALF_WIDTH_HZ,
        spectral_similarity_band_hz=SPECTRAL_BAND_HZ,
        recogniser_thresholds=thresholds,
        detection_min_iou=DETECTION_MIN_IOU,
        versions=versions,
    )
    return settings


def _primary_summary(face: dict[str, Any], options: VerifyOptions) -> dict[str, Any] | None:
    pulse = face.get("pulse")
    if not pulse:
        return None
    windows = pulse["methods"][options.primary_method]["windows"]
    key = "whole" if options.primary_window is None else f"{options.primary_window:g}"
    chosen = windows.get(key) or windows.get("whole")
    return chosen["summary"] if chosen else None


def summarise(report: VerifyReport, options: VerifyOptions) -> dict[str, Any]:
    """Worst case over face tracks of the gated numbers.

    ``hr_mae_bpm`` / ``pearson``: primary method and window (whole track if shorter),
    worst track. ``match_rate``: highest over tracks and calibrated recognisers.
    """
    pulses = [s for s in (_primary_summary(f, options) for f in report.faces) if s]
    match_rates = [
        r["match_rate"]
        for f in report.faces
        for r in f["identity"].values()
        if r["match_rate"] is not None
    ]
    detection = [
        f["detection"]["rate_deidentified"]
        for f in report.faces
        if f["detection"]["rate_deidentified"] is not None
    ]
    finite = lambda values: [v for v in values if v is not None and math.isfinite(v)]  # noqa: E731
    maes = finite([p["hr_mae"] for p in pulses])
    pearsons = finite([p["pearson"] for p in pulses])
    return {
        "method": options.primary_method,
        "window_s": options.primary_window,
        "hr_mae_bpm": max(maes) if maes else None,
        "pearson": min(pearsons) if pearsons else None,
        "match_rate": max(match_rates) if match_rates else None,
        "detection_rate_deidentified": max(detection) if detection else None,
        "psnr_db": report.quality["frame"]["psnr_mean"],
        "ssim": report.quality["frame"]["ssim_mean"],
        "face_psnr_db": report.quality["face"]["psnr_mean"],
        "face_ssim": report.quality["face"]["ssim_mean"],
    }


def gate_failures(
    report: VerifyReport,
    max_match_rate: float | None = None,
    max_hr_mae: float | None = None,
    min_pearson: float | None = None,
    min_psnr: float | None = None,
) -> list[str]:
    """One message per violated gate (empty list: every gate passed).

    ``min_psnr`` applies to the face crops (the paper's PSNR is on 128x128 face
    clips; the background is untouched by design). A gated number that could not be
    measured (no pulse, no calibrated recogniser) counts as a violation: a pipeline
    gate must not pass silently.
    """
    summary = report.summary
    failures = []
    checks = [
        ("match rate", summary["match_rate"], max_match_rate, "max"),
        ("HR MAE (bpm)", summary["hr_mae_bpm"], max_hr_mae, "max"),
        ("pulse Pearson r", summary["pearson"], min_pearson, "min"),
        ("face-crop PSNR (dB)", summary["face_psnr_db"], min_psnr, "min"),
    ]
    for label, value, limit, kind in checks:
        if limit is None:
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            failures.append(f"{label} could not be measured (gate {kind} {limit:g})")
        elif kind == "max" and value > limit:
            failures.append(f"{label} {value:.4g} > {limit:g}")
        elif kind == "min" and value < limit:
            failures.append(f"{label} {value:.4g} < {limit:g}")
    return failures


def report_tables(report: VerifyReport) -> list[Any]:
    """Rich tables for people: summary, then one per face track."""
    from rich.table import Table

    def fmt(value: Any, digits: int = 2) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if math.isinf(value):
                return "inf"
            return f"{value:.{digits}f}"
        return str(value)

    summary = report.summary
    head = Table(title=f"{report.original} vs {report.deidentified}", show_header=False)
    head.add_row("frames", f"{report.video['frames']} at {report.video['fps']:.3f} fps")
    head.add_row("face tracks", str(report.video["face_tracks"]))
    window = "whole track" if summary["window_s"] is None else f"{summary['window_s']:g} s windows"
    method = summary["method"].upper()
    head.add_row(f"HR MAE ({method}, {window})", f"{fmt(summary['hr_mae_bpm'])} bpm")
    head.add_row("pulse Pearson r", fmt(summary["pearson"], 3))
    head.add_row("identity match rate (max)", fmt(summary["match_rate"], 3))
    head.add_row("face detected in de-identified", fmt(summary["detection_rate_deidentified"], 3))
    quality_rows = (("frames", "psnr_db", "ssim"), ("faces", "face_psnr_db", "face_ssim"))
    for label, psnr_key, ssim_key in quality_rows:
        head.add_row(
            f"PSNR / SSIM ({label})", f"{fmt(summary[psnr_key])} dB / {fmt(summary[ssim_key], 4)}"
        )
    tables = [head]
    for face in report.faces:
        table = Table(title=f"face track {face['track_id']} ({face['frames']} frames)")
        columns = ("method", "window", "HR orig", "HR deid", "HR MAE", "r", "MACC", "SNR deid")
        for column in (*columns, "SS"):
            table.add_column(column)
        if face["pulse"]:
            for method, entry in face["pulse"]["methods"].items():
                for key, comparison in entry["windows"].items():
                    s = comparison["summary"]
                    ref = np.mean([w["hr_reference_bpm"] for w in comparison["windows"]])
                    test = np.mean([w["hr_test_bpm"] for w in comparison["windows"]])
                    table.add_row(
                        method.upper(),
                        key if key == "whole" else f"{key} s",
                        fmt(float(ref), 1),
                        fmt(float(test), 1),
                        fmt(s["hr_mae"]),
                        fmt(s["pearson"], 3),
                        fmt(s["macc"], 3),
                        fmt(s["snr_test_db"], 1),
                        fmt(s["spectral_similarity"], 3),
                    )
        tables.append(table)
        ident = Table(title=f"face track {face['track_id']}: identity")
        for column in ("recogniser", "threshold", "match rate", "mean distance", "frames"):
            ident.add_column(column)
        for name, r in face["identity"].items():
            ident.add_row(name, fmt(r["threshold"], 3), fmt(r["match_rate"], 3),
                          fmt(r["mean_distance"], 3), str(r["frames"]))
        detection = face["detection"]
        ident.caption = (
            f"face detected in {fmt(detection['rate_deidentified'], 3)} of sampled de-identified "
            f"frames ({fmt(detection['rate_original'], 3)} in the original)"
        )
        tables.append(ident)
    return tables
