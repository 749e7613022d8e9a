"""Realism of generated images in a feature space: the Fréchet distance and the kernel
inception distance (KID), computed on features, whatever network made them.

Pure numpy / scipy; no models, no I/O. Features are arrays (N, D) float.

- ``frechet_distance(x, y)`` = ||mu_x - mu_y||² + Tr(S_x + S_y - 2 (S_x S_y)^(1/2)), the
  Fréchet (2-Wasserstein) distance between the Gaussians fitted to x and y (sample means,
  unbiased covariances, ``numpy.cov``), in squared feature units. As in FID
  (Heusel et al. 2017; clean-fid and torch-fidelity compute the same formula), the matrix
  square root is scipy's ``sqrtm``, its imaginary round-off dropped, and a singular product
  is regularised by adding eps·I to both covariances. The plug-in estimator is **biased
  upwards** at finite N (its expectation exceeds the population distance by about
  Tr(S)/N-scale terms, more with larger D), so values are comparable only at equal N and D;
  reports state both.
- ``kid(x, y)`` = the unbiased estimator of MMD² with the cubic polynomial kernel
  k(a, b) = (a·b / D + 1)³ (Bińkowski et al. 2018), averaged over ``subsets`` random
  subsets of ``subset_size`` rows of each side (seeded), with the standard deviation over
  subsets. Unbiased: its expectation is the population MMD², so it can be negative.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def _features(x, name: str, min_rows: int = 2) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < min_rows or x.shape[1] < 1:
        raise ValueError(f"{name} must be features (N >= {min_rows}, D >= 1), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has non-finite values")
    return x


def gaussian_frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||² + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) of two Gaussians (mu (D,),
    sigma (D, D)); eps·I is added to both covariances when their product is singular."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {s1.shape}, {s2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_distance(x, y) -> float:
    """The Fréchet distance (module docstring) between features x (N, D) and y (M, D)."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same feature size, got {x.shape[1]} and {y.shape[1]}")
    cov = lambda a: np.atleast_2d(np.cov(a, rowvar=False))  # noqa: E731
    return gaussian_frechet_distance(x.mean(0), cov(x), y.mean(0), cov(y))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.mean()
    )


def kid(x, y, subsets: int = 100, subset_size: int = 1000, rng: int = 0) -> tuple[float, float]:
    """(mean, standard deviation) over ``subsets`` of the unbiased MMD² (module docstring)
    between features x (N, D) and y (M, D); each subset draws min(subset_size, N, M) rows of
    each side without replacement from ``numpy.random.default_rng(rng)``."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same feature size, got {x.shape[1]} and {y.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    size = min(subset_size, len(x), len(y))
    gen = np.random.default_rng(rng)
    values = [
        _mmd2_unbiased(x[gen.choice(len(x), size, replace=False)], y[gen.choice(len(y), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
