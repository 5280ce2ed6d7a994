"""Eyes (MediaPipe Iris): the torch module against an independent executor of the source
tfjs graph (the one in ``test_facemesh.py``), the eye crops and their mirroring, the
points on a real face against the mesh, and the eye-openness measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deidvid.faces import iris as iris_module
from deidvid.faces.iris import (
    EYE_CORNERS,
    MESH_LOWER_LID,
    MESH_UPPER_LID,
    IrisNet,
    eye_crops,
    eye_openness,
)
from deidvid.testing.tfjs_reference import (
    graph_inputs,
    needs_weights,
    read_tfjs_graph,
    relative_error,
    run_tfjs_graph,
    signature_outputs,
)


@pytest.fixture(scope="module")
def astronaut_mesh(astronaut, astronaut_landmarks) -> np.ndarray:
    needs_weights("facemesh", "iris")
    from deidvid.faces.mesh import FaceMesh

    return FaceMesh()(astronaut, astronaut_landmarks).points


@pytest.fixture(scope="module")
def iris_model():
    needs_weights("iris")
    return iris_module.IrisModel()


def test_matches_the_tfjs_graph(human_models, astronaut, astronaut_mesh):
    from deidvid.faces.iris import load_iris
    from deidvid.weights.manifest import manifest_entry, sha256_file

    model_json = human_models / "iris.json"
    assert sha256_file(human_models / "iris.bin") == manifest_entry("iris")["package"]["sha256"]
    nodes, weights = read_tfjs_graph(model_json)
    (output,) = signature_outputs(model_json).values()
    x = graph_inputs(64, eye_crops(astronaut_mesh)[0].warp(astronaut))
    with torch.no_grad():
        (reference,) = run_tfjs_graph(nodes, weights, x, [output])
        contours, iris = load_iris()(x)
    assert reference.shape == (4, 1, 1, 228)
    ours = torch.cat([contours.reshape(4, -1), iris.reshape(4, -1)], dim=1)
    err = relative_error(ours, reference.reshape(4, -1))
    print(f"iris vs tfjs executor (max abs, rel): {err}")
    assert err[1] < 1e-4, err
    xy = reference[3].reshape(-1, 3)[:, :2]
    assert 0 < float(xy.min()) and float(xy.max()) < 64  # the eye crop's points lie inside it


def test_network_shapes():
    net = IrisNet().eval()
    assert sum(p.numel() for p in net.parameters()) == 649_764  # the graph: 649,773 values less 9 of paddings and axis
    with torch.no_grad():
        contours, iris = net(torch.rand(3, 64, 64, 3))
    assert contours.shape == (3, 71, 3) and iris.shape == (3, 5, 3)
    with pytest.raises(ValueError, match="channels-last"):
        net(torch.rand(1, 3, 64, 64))


def _lid_error(eyes, mesh_points) -> list[float]:
    """Mean distance of the model's lid points to the mesh's, per eye, in eye widths."""
    errors = []
    for eye in range(2):
        expected = mesh_points[list(MESH_LOWER_LID[eye]) + list(MESH_UPPER_LID[eye]), :2]
        width = np.linalg.norm(np.subtract(*mesh_points[list(EYE_CORNERS[eye]), :2]))
        errors.append(float(np.linalg.norm(eyes.contours[eye, :16] - expected, axis=1).mean() / width))
    return errors


def test_eyes_on_a_real_face(iris_model, astronaut, astronaut_mesh):
    eyes = iris_model.eyes(astronaut, astronaut_mesh)
    assert eyes.contours.shape == (2, 71, 2) and eyes.iris.shape == (2, 5, 2)
    # lid points 0-15 follow the mesh's lids, in MediaPipe's order, on both eyes
    errors = _lid_error(eyes, astronaut_mesh)
    print(f"iris lids - mesh lids / eye width: {errors}")
    assert max(errors) < 0.06, errors
    for eye in range(2):
        corner_a, corner_b = astronaut_mesh[list(EYE_CORNERS[eye]), :2]
        centre, edge = eyes.iris[eye, 0], eyes.iris[eye, 1:]
        width = np.linalg.norm(corner_b - corner_a)
        # the pupil centre lies between the corners and the lids, amid the iris edge points
        along = np.dot(centre - corner_a, corner_b - corner_a) / width**2
        assert 0.25 < along < 0.75, along
        lids_y = eyes.contours[eye, :16, 1]
        assert lids_y.min() < centre[1] < lids_y.max()
        assert np.linalg.norm(edge.mean(0) - centre) < 0.03 * width
        radius = np.linalg.norm(edge - centre, axis=1).mean() / width
        assert 0.12 < radius < 0.3, radius  # an iris is about 40 % of the eye's width across
    openness = eye_openness(eyes.contours)
    assert openness.shape == (2,) and ((openness > 0.25) & (openness < 0.55)).all(), openness


def test_one_eye_is_mirrored(iris_model, astronaut, astronaut_mesh, monkeypatch):
    """The model knows one side: without mirroring eye 1 (or mirroring eye 0 instead)
    its lid points come out in the opposite order."""
    assert iris_module.MIRRORED_EYE == 1
    good = _lid_error(iris_model.eyes(astronaut, astronaut_mesh), astronaut_mesh)
    monkeypatch.setattr(iris_module, "MIRRORED_EYE", 0)
    swapped = _lid_error(iris_model.eyes(astronaut, astronaut_mesh), astronaut_mesh)
    assert max(good) < 0.06 and min(swapped) > 0.3, (good, swapped)


def test_mirrored_face_gives_mirrored_eyes(iris_model, astronaut, astronaut_mesh):
    width = astronaut.shape[1]
    flipped_mesh = astronaut_mesh.copy()
    flipped_mesh[:, 0] = width - 1 - flipped_mesh[:, 0]
    # a mirrored face is still a face: swap the mirrored mesh's sides back into order
    from deidvid.faces.canonical_mesh import load_canonical_mesh

    needs_weights("canonical_mesh")
    flipped_mesh = flipped_mesh[load_canonical_mesh().mirror_index()]
    original = iris_model.eyes(astronaut, astronaut_mesh)
    flipped = iris_model.eyes(np.ascontiguousarray(astronaut[:, ::-1]), flipped_mesh)
    eye_width = np.linalg.norm(np.subtract(*astronaut_mesh[list(EYE_CORNERS[0]), :2]))
    for eye in range(2):
        mirrored_iris = flipped.iris[1 - eye].copy()
        mirrored_iris[:, 0] = width - 1 - mirrored_iris[:, 0]
        assert np.linalg.norm(mirrored_iris[0] - original.iris[eye, 0]) < 0.05 * eye_width


def test_eye_openness_geometry():
    t = np.linspace(0, np.pi, 9)
    lower = np.c_[10 * (1 - np.cos(t)) / 2, 2.0 * np.sin(t)]  # corner (0, 0) to corner (10, 0), y down
    upper = np.c_[10 * (1 - np.cos(t[1:-1])) / 2, -2.0 * np.sin(t[1:-1])]
    contours = np.zeros((71, 2))
    contours[:9], contours[9:16] = lower, upper
    gap = np.mean([np.linalg.norm(upper[u - 9] - lower[lo]) for u, lo in iris_module.LID_PAIRS])
    assert eye_openness(contours) == pytest.approx(gap / 10)
    closed = contours.copy()
    closed[:16, 1] = 0
    assert eye_openness(closed) == pytest.approx(0.0)
    assert eye_openness(np.stack([contours, closed])).shape == (2,)
    with pytest.raises(ValueError, match="eye_openness"):
        eye_openness(np.zeros((70, 2)))


def test_eye_openness_from_the_mesh(astronaut_mesh):
    openness = eye_openness(astronaut_mesh)
    assert openness.shape == (2,) and ((openness > 0.2) & (openness < 0.5)).all(), openness


def test_gaze_is_the_pupil_in_the_eye_frame_and_place_gaze_inverts_it():
    from scipy.spatial.transform import Rotation

    from deidvid.faces.iris import gaze, place_gaze

    rng = np.random.default_rng(0)
    points = rng.random((468, 2)) * 100
    points[[33, 133]] = [[10.0, 50.0], [40.0, 50.0]]  # eye 0: level, 30 px wide
    points[[362, 263]] = [[60.0, 50.0], [90.0, 50.0]]
    iris = np.zeros((2, 5, 2))
    iris[0, 0], iris[1, 0] = [28.0, 53.0], [72.0, 47.0]  # eye 0 looks right and down, eye 1 left and up
    iris[:, 1:] = iris[:, :1] + 6.0 * np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])
    g = gaze(points, iris)
    np.testing.assert_allclose(g, [[3 / 30, 3 / 30, 0.2], [-3 / 30, -3 / 30, 0.2]], atol=1e-12)
    # The same eyes on a face rolled, scaled and moved: the same gaze, placed back where the pupils went.
    turn = Rotation.from_euler("z", 40, degrees=True).as_matrix()[:2, :2]
    moved = lambda p: p @ turn.T * 1.7 + [200.0, -30.0]  # noqa: E731
    np.testing.assert_allclose(gaze(moved(points), moved(iris)), g, atol=1e-12)
    centres, radii = place_gaze(moved(points), g)
    np.testing.assert_allclose(centres, moved(iris[:, 0]), atol=1e-9)
    np.testing.assert_allclose(radii, 6.0 * 1.7, atol=1e-9)


def test_gaze_follows_pupils_moved_inside_the_eyes(iris_model, astronaut, astronaut_mesh):
    """The astronaut's irises moved sideways inside their eyes (the lids kept): Iris's gaze
    moves with them, in the eye-width units :func:`gaze` promises."""
    from deidvid.faces.iris import gaze

    before = gaze(astronaut_mesh, iris_model.eyes(astronaut, astronaut_mesh).iris)
    shifted = astronaut.copy()
    shift = 3
    for eye in range(2):
        a, b = astronaut_mesh[list(EYE_CORNERS[eye]), :2]
        x0, x1 = int(round(a[0] + 0.25 * (b[0] - a[0]))), int(round(b[0] - 0.15 * (b[0] - a[0])))
        y0, y1 = int(round(min(a[1], b[1]) - 4)), int(round(max(a[1], b[1]) + 4))
        shifted[y0:y1, x0 + shift : x1] = astronaut[y0:y1, x0 : x1 - shift]  # the iris to the image's right
    after = gaze(astronaut_mesh, iris_model.eyes(shifted, astronaut_mesh).iris)
    widths = [np.linalg.norm(np.subtract(*astronaut_mesh[list(c), :2])) for c in EYE_CORNERS]
    moved = after[:, 0] - before[:, 0]
    print(f"gaze x moved {moved}, expected ~{[shift / w for w in widths]}")
    assert (moved > 0.3 * shift / np.array(widths)).all(), moved
    assert (np.abs(after[:, 1] - before[:, 1]) < 0.05).all()
