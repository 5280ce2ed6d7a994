"""Training data: pipeline face clips from videos, animated stills, augmentation, split.

Sources (under the shared data folder, never copied into the repository):

* videos, cut into 128x128 face clips by the project's own pipeline
  (``deidvid.train.clips.extract_clips``: detection, tracking, crop) and cached as ``.npz``;
* LFW and ORL stills, animated into clips: a smooth random similarity motion of the
  head, a synthetic pulse on the skin (known rate), then the pipeline's crop.

The validation split is fixed here (``VALIDATION_VIDEOS``) and held out from training:
UBFC subjects 14 and 17, GRID speakers sbia1a and swiz3n, HDTF clip hdtf_khill.

About 440 lines because the stills' animation, the augmentation and the sampler share the
clip sample type and the split; the stills (``Stills`` .. ``animate_still``) are the
first candidate for a module of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deidvid.faces.geometry import crop_box, cut_crop
from deidvid.faces.skin import skin_mask
from deidvid.shared_data import shared_data_dir

log = logging.getLogger(__name__)

#: Held out from training (paths relative to the shared data folder). Never tune on more.
VALIDATION_VIDEOS: tuple[str, ...] = (
    "ubfc/subject14/vid.mp4",
    "ubfc/subject17/vid.mp4",
    "videos/grid/sbia1a.mpg",
    "videos/grid/swiz3n.mpg",
    "videos/misc/hdtf_khill.mp4",
)

#: Training videos: every other face video of the shared data (the crowd clip's
#: faces are too small to be worth decoding 1080p for).
TRAINING_VIDEOS: tuple[str, ...] = (
    "ubfc/subject3/vid.mp4",
    "ubfc/subject4/vid.mp4",
    "ubfc/subject5/vid.mp4",
    "ubfc/subject8/vid.mp4",
    "videos/grid/bbaf2n.mpg",
    "videos/grid/brbk7n.mpg",
    "videos/grid/lbax4n.mpg",
    "videos/grid/lbbc2a.mpg",
    "videos/grid/lrwp9a.mpg",
    "videos/grid/lwbsza.mpg",
    "videos/grid/pwij3p.mpg",
    "videos/grid/sbwe5n.mpg",
    "videos/misc/WolfgangLanger_Pexels.mp4",
    "videos/misc/single_face.mp4",
    "videos/misc/face_noface.mov",
    "videos/misc/noface_face.mov",
    "videos/misc/hdtf_aoc.mp4",
    "videos/misc/vox_driving.mp4",
    "videos/misc/evm_face_pulse.mp4",
    "videos/misc/stage_smallfaces.mp4",
)

STILL_FPS = 30.0
CONTEXT_SIZE = 192  # side of the stored still around the face (room for motion)
CONTEXT_MARGIN = 1.6  # context side / crop side

# dlib 68-point indices after a horizontal flip (jaw, brows, nose, eyes, mouth mirrored).
HFLIP_68: tuple[int, ...] = (
    tuple(range(16, -1, -1))
    + tuple(range(26, 16, -1))
    + (27, 28, 29, 30)
    + (35, 34, 33, 32, 31)
    + (45, 44, 43, 42, 47, 46)
    + (39, 38, 37, 36, 41, 40)
    + (54, 53, 52, 51, 50, 49, 48)
    + (59, 58, 57, 56, 55)
    + (64, 63, 62, 61, 60)
    + (67, 66, 65)
)


@dataclass
class ClipSample:
    """One training or validation clip.

    Attributes:
        frames: ``(T, 128, 128, 3)`` uint8 RGB crops.
        landmarks: ``(T, 68, 2)`` float32, crop pixels.
        fps: frame rate (Hz).
        identity: who it shows (file or folder name).
        bpm: the synthetic pulse rate of an animated still (None for videos).
    """

    frames: np.ndarray
    landmarks: np.ndarray
    fps: float
    identity: str
    bpm: float | None = None

    def skin_masks(self) -> np.ndarray:
        """``(T, 128, 128)`` bool skin masks from the landmarks."""
        size = self.frames.shape[1:3]
        return np.stack([skin_mask(lm, size) for lm in self.landmarks])


# ----------------------------------------------------------------------------- videos


def extract_clips(video_path: Path, clip_len: int = 64, stride: int = 64) -> list:
    """Face clips of a video as the pipeline crops them (``deidvid.train.clips`` when present).

    Returns objects with ``frames (T,128,128,3) uint8`` and ``landmarks (T,68,2)``.
    """
    from deidvid.train.clips import extract_clips as pipeline_extract_clips

    return pipeline_extract_clips(video_path, clip_len=clip_len, stride=stride)


def _cache_name(relative: str) -> str:
    return relative.replace("/", "__").rsplit(".", 1)[0] + ".npz"


def cache_video_clips(
    data_root: Path, relative_paths: Iterable[str], cache_dir: Path, clip_len: int = 64
) -> list[Path]:
    """Extract and cache (``.npz``) the clips of each video; cached files are reused (and
    need neither the video nor a decoder: a carried cache trains anywhere)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for relative in relative_paths:
        target = cache_dir / _cache_name(relative)
        source = data_root / relative
        if not target.exists():
            if not source.exists():
                log.warning("video %s is missing; skipped", source)
                continue
            from deidvid.io.decode import probe

            clips = extract_clips(source, clip_len=clip_len, stride=clip_len)
            if not clips:
                log.warning("no face clip in %s; skipped", source)
                continue
            np.savez_compressed(
                target,
                frames=np.stack([np.asarray(c.frames, np.uint8) for c in clips]),
                landmarks=np.stack([np.asarray(c.landmarks, np.float32) for c in clips]),
                fps=np.float64(probe(source).fps),
                identity=np.str_(Path(relative).parent.name if "ubfc" in relative else Path(relative).stem),
            )
            log.info("cached %d clips of %s", len(clips), relative)
        written.append(target)
    return written


def load_cached_clips(paths: Sequence[Path], max_clips_per_video: int | None = None) -> list[ClipSample]:
    """Clips from ``cache_video_clips`` files; optionally at most N per video, evenly spaced."""
    clips = []
    for path in paths:
        with np.load(path) as data:
            frames, landmarks = data["frames"], data["landmarks"]
            fps, identity = float(data["fps"]), str(data["identity"])
        keep = np.arange(len(frames))
        if max_clips_per_video is not None and len(keep) > max_clips_per_video:
            keep = np.unique(np.linspace(0, len(keep) - 1, max_clips_per_video).round().astype(int))
        clips.extend(ClipSample(frames[i], landmarks[i], fps, identity) for i in keep)
    return clips


# ----------------------------------------------------------------------------- stills


@dataclass
class Stills:
    """Face stills ready to animate: ``images (N, S, S, 3)`` uint8 around the face,
    ``landmarks (N, 68, 2)`` float32 in their pixels, ``identities (N,)`` str."""

    images: np.ndarray
    landmarks: np.ndarray
    identities: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def face_context(rgb: np.ndarray, landmarks: np.ndarray, size: int = CONTEXT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The square ``CONTEXT_MARGIN`` x the crop box around a face, resized to ``size``.

    Returns the ``(size, size, 3)`` uint8 image and the landmarks in its pixels.
    """
    box = crop_box(landmarks)
    side = int(round(box.side * CONTEXT_MARGIN))
    centre = np.array([box.x0 + box.side / 2, box.y0 + box.side / 2])
    from deidvid.faces.geometry import CropBox

    context = CropBox(int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2)), side)
    return cut_crop(rgb, context, size), ((landmarks - [context.x0, context.y0] + 0.5) * size / side - 0.5)


def prepare_stills(
    image_paths: Sequence[Path], identities: Sequence[str], device: str = "cpu"
) -> Stills:
    """Detect, landmark and cut the face context of each still (largest face; grey -> RGB)."""
    from deidvid.faces.detect import FaceDetector
    from deidvid.faces.landmarks import LandmarkPredictor, dlib_box_from_detection, to_grey

    detector = FaceDetector(device=device)
    predictor = LandmarkPredictor()
    images, points, names = [], [], []
    for path, identity in zip(image_paths, identities):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if min(rgb.shape[:2]) < 160:  # small stills (ORL): detector and dlib like bigger faces
            scale = 160 / min(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        found = detector(rgb)
        if not found:
            continue
        best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        landmarks = predictor(to_grey(rgb), dlib_box_from_detection(best))
        context, lm = face_context(rgb, landmarks)
        images.append(context)
        points.append(lm.astype(np.float32))
        names.append(identity)
    return Stills(np.stack(images), np.stack(points), np.array(names))


def list_lfw(root: Path, max_images: int | None = None) -> tuple[list[Path], list[str]]:
    paths = sorted(root.glob("*/*.jpg"))[:max_images]
    return paths, [p.parent.name for p in paths]


def list_orl(root: Path) -> tuple[list[Path], list[str]]:
    paths = sorted(root.glob("s*/*.pgm"))
    return paths, [f"orl_{p.parent.name}" for p in paths]


def save_stills(stills: Stills, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=stills.images, landmarks=stills.landmarks, identities=stills.identities)


def load_stills(path: Path) -> Stills:
    with np.load(path) as data:
        return Stills(data["images"], data["landmarks"], data["identities"])


def _smooth_path(rng: np.random.Generator, length: int, amplitude: float) -> np.ndarray:
    """A smooth random trajectory ``(length,)`` within about +-amplitude (two sinusoids)."""
    t = np.arange(length) / STILL_FPS
    path = np.zeros(length)
    for _ in range(2):
        freq = rng.uniform(0.1, 0.8)
        path += rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return amplitude * path


def synthetic_pulse(
    rng: np.random.Generator, length: int, fps: float, bpm: float | None = None
) -> tuple[np.ndarray, float]:
    """A pulse waveform ``(length,)`` in about [-1, 1] (fundamental + 2nd harmonic) and its
    rate (bpm; random in 50-120 unless given)."""
    bpm = rng.uniform(50.0, 120.0) if bpm is None else float(bpm)
    t = np.arange(length) / fps
    phase = 2 * np.pi * bpm / 60.0 * t + rng.uniform(0, 2 * np.pi)
    wave = np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi))
    return wave / 1.3, bpm


#: Relative colour change of skin per unit pulse (green strongest), about 0.1-0.4 %.
PULSE_COLOUR = np.array([0.45, 1.0, 0.6], dtype=np.float32)


def animate_still(
    image: np.ndarray,
    landmarks: np.ndarray,
    length: int,
    rng: np.random.Generator,
    identity: str = "",
    bpm: float | None = None,
) -> ClipSample:
    """Animate a face still into a clip: random head motion, synthetic pulse, pipeline crop.

    Args:
        image: ``(S, S, 3)`` uint8 context around the face (see :func:`face_context`).
        landmarks: ``(68, 2)`` in its pixels.
    """
    size = image.shape[0]
    centre = landmarks.mean(axis=0)
    angle = _smooth_path(rng, length, rng.uniform(0, 6))  # degrees
    scale = 1.0 + _smooth_path(rng, length, rng.uniform(0, 0.04))
    shift_x = _smooth_path(rng, length, rng.uniform(0, 5))
    shift_y = _smooth_path(rng, length, rng.uniform(0, 5))
    pulse, bpm = synthetic_pulse(rng, length, STILL_FPS, bpm)
    amplitude = rng.uniform(0.001, 0.004)
    base = image.astype(np.float32)
    base_mask = cv2.GaussianBlur(skin_mask(landmarks, (size, size)).astype(np.float32), (0, 0), 2.0)
    frames, points = [], []
    for t in range(length):
        # The pulse is painted before the motion, so it moves with the skin.
        gain = 1.0 + amplitude * pulse[t] * base_mask[..., None] * PULSE_COLOUR
        matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle[t]), float(scale[t]))
        matrix[:, 2] += (shift_x[t], shift_y[t])
        warped = cv2.warpAffine(base * gain, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        moved = landmarks @ matrix[:, :2].T + matrix[:, 2]
        observed = moved + rng.normal(0.0, 0.3, moved.shape)  # landmark jitter, as a detector's
        box = crop_box(observed)
        crop = cut_crop(warped, box)
        frames.append(np.clip(np.rint(crop), 0, 255).astype(np.uint8))
        points.append(box.to_crop(moved))
    return ClipSample(np.stack(frames), np.stack(points).astype(np.float32), STILL_FPS, identity, bpm)


# ----------------------------------------------------------------------------- augmentation


def hflip_clip(frames: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a clip and its landmarks (indices remapped so left stays left in dlib's scheme)."""
    width = frames.shape[2]
    flipped = landmarks[:, list(HFLIP_68)].copy()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    return np.ascontiguousarray(frames[:, :, ::-1]), flipped


def augment_clip(sample: ClipSample, rng: np.random.Generator) -> ClipSample:
    """Photometric and geometric augmentation, the same for all frames of a clip except
    noise and compression, which change per frame as in real video."""
    frames, landmarks = sample.frames, sample.landmarks
    if rng.random() < 0.5:
        frames, landmarks = hflip_clip(frames, landmarks)
    x = frames.astype(np.float32) / 255.0
    x = x ** rng.uniform(0.8, 1.25)
    x = x * rng.uniform(0.75, 1.2) * rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    if rng.random() < 0.05:
        x = np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1)
    if rng.random() < 0.2:
        sigma = rng.uniform(0.3, 0.9)
        x = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])
    noise = rng.uniform(0.0, 2.0) / 255.0
    x = x + rng.normal(0.0, noise, x.shape).astype(np.float32)
    out = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(70, 96))
        out = np.stack([_jpeg(f, quality) for f in out])
    return ClipSample(out, landmarks.astype(np.float32), sample.fps, sample.identity, sample.bpm)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else rgb


# ----------------------------------------------------------------------------- sampling


class TrainingSource:
    """Random training clips: cached video clips and animated stills, augmented.

    Args:
        video_clips: clips cut from the training videos (any length >= ``length``).
        stills: stills to animate (or None).
        video_fraction: probability of drawing a video clip when both are present.
    """

    def __init__(
        self,
        video_clips: Sequence[ClipSample],
        stills: Stills | None,
        video_fraction: float = 0.4,
        augment: bool = True,
    ) -> None:
        if not video_clips and (stills is None or len(stills) == 0):
            raise ValueError("no training data: neither video clips nor stills")
        self.video_clips = list(video_clips)
        self.stills = stills
        self.video_fraction = video_fraction if self.video_clips and stills is not None else float(bool(self.video_clips))
        self.augment = augment

    def sample(self, rng: np.random.Generator, length: int, pick: np.ndarray | None = None) -> ClipSample:
        """One clip of ``length`` consecutive frames (only frames ``pick`` of it, if given)."""
        if rng.random() < self.video_fraction:
            clip = self.video_clips[int(rng.integers(len(self.video_clips)))]
            start = int(rng.integers(len(clip.frames) - length + 1))
            sample = ClipSample(
                clip.frames[start : start + length],
                clip.landmarks[start : start + length],
                clip.fps,
                clip.identity,
            )
        else:
            i = int(rng.integers(len(self.stills)))
            sample = animate_still(
                self.stills.images[i], self.stills.landmarks[i], length, rng, str(self.stills.identities[i])
            )
        if pick is not None:
            sample = ClipSample(sample.frames[pick], sample.landmarks[pick], sample.fps, sample.identity, sample.bpm)
        return augment_clip(sample, rng) if self.augment else sample


def synthetic_stills(count: int, rng: np.random.Generator, size: int = CONTEXT_SIZE) -> Stills:
    """Tiny stand-in stills (noise images with a plausible landmark layout), for tests."""
    from deidvid.recognise.align import dlib_chip_template

    template = dlib_chip_template(150).numpy()
    jaw = np.stack([np.linspace(20, 130, 17), 75 + 50 * np.sin(np.linspace(0, np.pi, 17))], axis=1)
    template[:17] = jaw
    landmarks = (template * (size / 150 * 0.6) + size * 0.2).astype(np.float32)
    images = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    images = np.stack([cv2.GaussianBlur(im, (0, 0), 3) for im in images])
    return Stills(images, np.repeat(landmarks[None], count, axis=0), np.array([f"synthetic{i}" for i in range(count)]))


def stack_samples(samples: Sequence[ClipSample]):  # noqa: ANN201
    """Clips as compact CPU tensors (cheap to pass between processes): ``frames [B, T, H, W, 3]``
    uint8, ``landmarks [B, T, 68, 2]`` float32, ``skin [B, T, H, W]`` bool, ``fps [B]`` float64."""
    import torch

    frames = torch.from_numpy(np.stack([s.frames for s in samples]))
    landmarks = torch.from_numpy(np.stack([s.landmarks for s in samples]).astype(np.float32))
    skin = torch.from_numpy(np.stack([s.skin_masks() for s in samples]))
    fps = torch.tensor([s.fps for s in samples], dtype=torch.float64)
    return frames, landmarks, skin, fps


def batch_on_device(frames, landmarks, skin, fps, device: "str | object" = "cpu"):  # noqa: ANN001, ANN201
    """:func:`stack_samples`' tensors as the model takes them: ``frames [B, 3, T, H, W]`` float
    in [0, 1], ``landmarks [B, T, 68, 2]``, ``skin [B, 1, T, H, W]`` float, ``fps [B]`` (CPU)."""
    frames = frames.to(device).permute(0, 4, 1, 2, 3).float() / 255.0
    return frames, landmarks.to(device), skin[:, None].to(device).float(), fps


def to_tensors(samples: Sequence[ClipSample], device: "str | object" = "cpu"):  # noqa: ANN201
    """Batch clips on ``device`` (see :func:`batch_on_device`)."""
    return batch_on_device(*stack_samples(samples), device=device)


def default_data_root() -> Path:
    """``../shared/data`` next to the repository."""
    return shared_data_dir()


def assert_disjoint(train: Iterable[str], validation: Iterable[str] = VALIDATION_VIDEOS) -> None:
    overlap = set(train) & set(validation)
    if overlap:
        raise ValueError(f"validation videos in the training set: {sorted(overlap)}")


assert_disjoint(TRAINING_VIDEOS)
