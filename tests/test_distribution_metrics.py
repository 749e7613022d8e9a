"""Realism, coverage and novelty metrics against closed forms, naive loops and scikit-learn."""

import itertools

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from evaluation.coverage import kth_neighbour_radius, prdc, set_embeddings
from evaluation.novelty import authenticity, copy_fraction, nearest_distances
from evaluation.realism import frechet_distance, gaussian_frechet_distance, kid


def test_gaussian_frechet_distance_closed_forms():
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 with standard deviations s.
    assert gaussian_frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # Diagonal covariances: sum over dimensions.
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert gaussian_frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)
    # A rotation of both covariances leaves it unchanged.
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rotated = gaussian_frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_samples_approaches_the_gaussian_value_and_is_biased_up():
    rng = np.random.default_rng(1)
    d, m = 4, np.array([1.0, 0.0, 0.0, 0.0])
    x, y = rng.normal(size=(20000, d)), m + 2.0 * rng.normal(size=(20000, d))
    assert frechet_distance(x, y) == pytest.approx(1.0 + d * (1 + 4 - 4), rel=0.05)  # |m|^2 + D
    small = [frechet_distance(rng.normal(size=(20, d)), rng.normal(size=(20, d))) for _ in range(50)]
    assert np.mean(small) > 0.1  # the population distance is 0: the estimator is biased upwards


def _kid_naive(x, y):
    k = lambda a, b: (a @ b / x.shape[1] + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def test_kid_equals_the_naive_unbiased_estimator_and_is_centred_at_zero():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 3)), rng.normal(loc=0.5, size=(12, 3))
    mean, std = kid(x, y, subsets=1, subset_size=12)
    assert mean == pytest.approx(_kid_naive(x, y)) and std == 0.0
    same = [kid(rng.normal(size=(50, 3)), rng.normal(size=(50, 3)), subsets=5, rng=s)[0] for s in range(40)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))  # unbiased: mean 0 within noise
    reordered = kid(x[::-1], y[::-1], subsets=1, subset_size=12)[0]  # whole sets: order-free
    assert reordered == pytest.approx(mean)


def _prdc_naive(real, fake, k):
    def radius(p, i):
        return sorted(np.linalg.norm(p[i] - p[j]) for j in range(len(p)) if j != i)[k - 1]

    rr = [radius(real, i) for i in range(len(real))]
    rf = [radius(fake, j) for j in range(len(fake))]
    d = lambda i, j: np.linalg.norm(real[i] - fake[j])  # noqa: E731
    n, m = len(real), len(fake)
    return {
        "precision": np.mean([any(d(i, j) <= rr[i] for i in range(n)) for j in range(m)]),
        "recall": np.mean([any(d(i, j) <= rf[j] for j in range(m)) for i in range(n)]),
        "density": sum(d(i, j) <= rr[i] for i in range(n) for j in range(m)) / (k * m),
        "coverage": np.mean([any(d(i, j) <= rr[i] for j in range(m)) for i in range(n)]),
    }


def test_prdc_equals_a_naive_loop_and_scikit_learn_radii():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(30, 4)), rng.normal(loc=0.7, size=(25, 4))
    for k in (1, 3, 5):
        ours, naive = prdc(real, fake, k), _prdc_naive(real, fake, k)
        assert ours == pytest.approx(naive), k
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(real).kneighbors(real)
        np.testing.assert_allclose(kth_neighbour_radius(real, k), dist[:, k], atol=1e-9)


def test_prdc_hand_worked_on_a_line():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every radius is 1
    fake = np.array([[0.5], [10.0]])  # one fake inside two balls, one far away (its own radius 9.5)
    out = prdc(real, fake, k=1)
    assert out["precision"] == 0.5 and out["density"] == pytest.approx(2 / 2)
    assert out["coverage"] == 0.5  # the balls of 0 and 1 hold a fake
    assert out["recall"] == 1.0  # the far fake's ball (radius 9.5) holds every real point


def test_set_embeddings_are_renormalised_means_of_unit_embeddings():
    sets = np.array([[[3.0, 0.0], [0.0, 0.5]], [[1.0, 1.0], [2.0, 2.0]]])
    out = set_embeddings(sets)
    np.testing.assert_allclose(out, [[np.sqrt(0.5), np.sqrt(0.5)], [np.sqrt(0.5), np.sqrt(0.5)]])
    assert set_embeddings(sets[:, ::-1]).tolist() == out.tolist()  # the order of a set's images
    with pytest.raises(ValueError, match="cancel out"):
        set_embeddings(np.array([[[1.0, 0.0], [-1.0, 0.0]]]))


def test_the_copy_test_flags_memorisation_and_passes_held_out_real_sets():
    rng = np.random.default_rng(5)
    train, test = rng.normal(size=(200, 8)), rng.normal(size=(100, 8))
    copies = train[rng.choice(200, 100)] + rng.normal(scale=1e-3, size=(100, 8))
    assert copy_fraction(copies, train) == 1.0 and authenticity(copies, train) == 0.0
    held_out = copy_fraction(test, train)  # about one half for an exchangeable sample
    assert 0.25 < held_out < 0.75
    assert np.median(nearest_distances(copies, train)) < 0.01 < np.median(nearest_distances(test, train))
    order = rng.permutation(100)
    assert copy_fraction(test[order], train) == held_out  # the order of the sets does not matter
