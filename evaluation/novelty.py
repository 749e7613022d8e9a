"""Memorisation and novelty of generated sets in an embedding space.

Pure numpy; no models, no I/O. ``generated`` (G, D), ``train`` (T, D) and ``test`` (S, D)
are embeddings (set embeddings: :func:`evaluation.coverage.set_embeddings`), compared by
Euclidean distance (for unit vectors, sqrt(2 - 2 cos)).

- ``nearest_distances(generated, train)`` (G,): each generated point's distance to its
  nearest training point; the same against ``test``. A model that generates novel sets is
  no closer to the training sets than to unseen real sets of the same distribution.
- ``copy_fraction(generated, train)``: the fraction of generated points closer to their
  nearest training point t than t is to its own nearest other training point,
  #{g : d(g, t*(g)) < d(t*(g), nn_train(t*(g)))} / G: "closer than any training neighbour",
  the copy test. Real test sets land there only as often as a held-out sample of the
  training distribution does; a memorising model (copies of training sets) lands there
  always.
- ``authenticity(generated, train)`` = 1 - copy_fraction: in the spirit of Alaa et al. 2022
  (How faithful is your synthetic data?), whose authenticity classifies a sample as
  *unauthentic* when it is closer to its nearest training point than that point's nearest
  training neighbour; here reported as the fraction of authentic samples, without their
  hypothesis-test refinement.
"""

from __future__ import annotations

import numpy as np

from .coverage import kth_neighbour_radius, pairwise_distances


def _points(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 1:
        raise ValueError(f"{name} must be embeddings (N >= 1, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has non-finite values")
    return x


def nearest(generated, reference) -> tuple[np.ndarray, np.ndarray]:
    """For each row of generated (G, D): the index (G,) of its nearest row of reference (R, D)
    and the distance (G,)."""
    g, r = _points(generated, "generated"), _points(reference, "reference")
    if g.shape[1] != r.shape[1]:
        raise ValueError(f"generated and reference must have the same size D, got {g.shape[1]}, {r.shape[1]}")
    d = pairwise_distances(g, r)
    idx = d.argmin(axis=1)
    return idx, d[np.arange(len(g)), idx]


def nearest_distances(generated, reference) -> np.ndarray:
    """(G,): each generated point's distance to its nearest reference point."""
    return nearest(generated, reference)[1]


def copy_fraction(generated, train) -> float:
    """The copy test (module docstring): the fraction of generated points closer to their
    nearest training point than that point is to its nearest other training point (needs
    >= 2 training points)."""
    train = _points(train, "train")
    if len(train) < 2:
        raise ValueError("the copy test needs at least 2 training points (a neighbour of their own)")
    idx, d = nearest(generated, train)
    own = kth_neighbour_radius(train, 1)  # (T,): each training point's nearest training neighbour
    return float((d < own[idx]).mean())


def authenticity(generated, train) -> float:
    """1 - :func:`copy_fraction`: the fraction of generated points that are not closer to a
    training point than its own nearest training neighbour."""
    return 1.0 - copy_fraction(generated, train)
