"""Distribution coverage in an embedding space: precision, recall, density and coverage of
generated samples against real ones, by k-nearest-neighbour manifolds.

Pure numpy; no models, no I/O. Real and fake are arrays (N, D) and (M, D) of embeddings
(image embeddings, or set embeddings: :func:`set_embeddings`), compared by Euclidean
distance. With r_k(a) the distance from a to its k-th nearest neighbour among the *other*
points of its own side:

- precision (Kynkäänniemi et al. 2019) = fraction of fakes inside some real ball,
  #{j : exists i, |f_j - r_i| <= r_k(r_i)} / M: how many samples look real;
- recall = fraction of reals inside some fake ball, #{i : exists j, |r_i - f_j| <= r_k(f_j)} / N:
  how much of the real distribution is produced;
- density (Naeem et al. 2020) = (1 / (k M)) Σ_j #{i : |f_j - r_i| <= r_k(r_i)}: precision
  counting how many real balls hold each fake (1 in expectation for fakes from the real
  distribution; not bounded by 1);
- coverage (Naeem et al. 2020) = #{i : exists j, |r_i - f_j| <= r_k(r_i)} / N: the fraction of
  real balls holding a fake, robust to fake outliers.

All four are fractions except density. A set embedding is the mean of its images' unit
embeddings, renormalised (IJB-style templates): :func:`set_embeddings`.
"""

from __future__ import annotations

import numpy as np


def set_embeddings(embeddings) -> np.ndarray:
    """Unit set embeddings (S, D) of sets (S, n, D) of image embeddings: each image's embedding
    L2-normalised, averaged over the set, the mean L2-normalised again (ValueError for a zero
    vector)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 3 or min(e.shape) < 1:
        raise ValueError(f"embeddings must be sets (S, n, D), got shape {e.shape}")
    norms = np.linalg.norm(e, axis=2, keepdims=True)
    if (norms == 0).any():
        raise ValueError("an image embedding is the zero vector: it has no direction")
    mean = (e / norms).mean(axis=1)
    length = np.linalg.norm(mean, axis=1, keepdims=True)
    if (length == 0).any():
        raise ValueError("a set's unit embeddings cancel out: its set embedding has no direction")
    return mean / length


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)), from the squared-norm expansion, clipped at 0."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def kth_neighbour_radius(x, k: int) -> np.ndarray:
    """r_k (N,): each row's distance to its k-th nearest *other* row of x (N, D)."""
    x = np.asarray(x, dtype=np.float64)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] for {len(x)} points, got {k}")
    d = pairwise_distances(x, x)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def prdc_per_point(real, fake, k: int = 5) -> dict[str, np.ndarray]:
    """The per-point values whose means are :func:`prdc`'s figures, fake (M, D) against real
    (N, D), k nearest neighbours: ``precision`` (M,) 1 if fake j is inside some real ball,
    ``recall`` (N,) 1 if real i is inside some fake ball, ``density`` (M,) the number of real
    balls holding fake j over k, ``coverage`` (N,) 1 if real ball i holds some fake."""
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must be (N, D) and (M, D), got {real.shape} and {fake.shape}")
    if not (np.isfinite(real).all() and np.isfinite(fake).all()):
        raise ValueError("real or fake has non-finite values")
    r_real, r_fake = kth_neighbour_radius(real, k), kth_neighbour_radius(fake, k)
    d = pairwise_distances(real, fake)  # (N, M)
    in_real_ball = d <= r_real[:, None]  # fake j inside real i's ball
    return {
        "precision": in_real_ball.any(axis=0).astype(np.float64),
        "recall": (d <= r_fake[None, :]).any(axis=1).astype(np.float64),
        "density": in_real_ball.sum(axis=0) / k,
        "coverage": in_real_ball.any(axis=1).astype(np.float64),
    }


def prdc(real, fake, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (module docstring) of fake (M, D) against
    real (N, D), k nearest neighbours: the means of :func:`prdc_per_point`."""
    return {name: float(values.mean()) for name, values in prdc_per_point(real, fake, k).items()}
