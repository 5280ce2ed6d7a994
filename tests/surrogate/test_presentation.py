"""deidvid.surrogate.presentation: the logistic probe against a reference optimiser; when it is confident."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from deidvid.shared_data import shared_data_dir

from deidvid.surrogate.presentation import (
    FEMALE,
    MALE,
    PresentationProbe,
    cross_validated_accuracy,
    fit_probe,
)


def _data(n: int = 400, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, dim))
    truth = rng.normal(0.0, 1.0, dim)
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(x @ truth - 0.5)))  # overlapping classes
    return x, y


def test_the_fit_is_the_penalised_maximum_likelihood_of_a_reference_optimiser():
    x, y = _data()
    l2 = 2.0
    probe = fit_probe(x, y, l2=l2)

    def loss(theta: np.ndarray) -> float:
        z = x @ theta[:-1] + theta[-1]
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * theta[:-1] @ theta[:-1])

    reference = minimize(loss, np.zeros(x.shape[1] + 1), method="BFGS", options={"gtol": 1e-9}).x
    np.testing.assert_allclose(probe.weights, reference[:-1], atol=1e-4)
    assert probe.bias == pytest.approx(reference[-1], abs=1e-4)


def test_probability_is_the_logistic_of_the_linear_score():
    probe = PresentationProbe(np.array([1.0, -2.0]), 0.5)
    x = np.array([[0.0, 0.0], [1.0, 1.0], [1000.0, 0.0]])
    np.testing.assert_allclose(probe.probability(x), [1 / (1 + np.exp(-0.5)), 1 / (1 + np.exp(0.5)), 1.0])


def test_apparent_reads_the_mean_probability_over_the_frames():
    probe = PresentationProbe(np.array([1.0]), 0.0)
    assert probe.apparent(np.array([[0.2], [0.1], [-0.1]])) == FEMALE
    assert probe.apparent(np.array([[-0.2], [0.1]])) == MALE
    # Probabilities are averaged, not logits: one extreme frame does not outvote three others.
    assert probe.apparent(np.array([[10.0], [-1.0], [-1.0], [-1.0]])) == MALE
    assert probe.apparent(np.zeros((0, 1))) is None


def test_cross_validated_accuracy_tells_signal_from_noise():
    x, _ = _data(600, seed=1)
    separable = x[:, 0] > 0
    assert cross_validated_accuracy(x, separable) > 0.95
    coin = np.random.default_rng(2).random(600) < 0.5
    assert abs(cross_validated_accuracy(x, coin) - 0.5) < 0.1


@pytest.mark.parametrize(
    ("name", "expected"),
    [("videos/misc/WolfgangLanger_Pexels.mp4", FEMALE), ("videos/misc/single_face.mp4", MALE)],
)
def test_the_bundled_probe_reads_people_it_never_saw(name, expected):
    # DATA.md: "woman talking" and "1 man"; neither is an LFW person the probe was fitted on.
    video = shared_data_dir() / name
    if not video.exists():
        pytest.skip(f"needs ../shared/data/{name}")
    from deidvid.surrogate.bank import load_presentation_probe
    from deidvid.tools.apparent import largest_face_embeddings

    assert load_presentation_probe().apparent(largest_face_embeddings(video)) == expected
