"""Face-verification scoring of the VGGFace2 benchmark (DESIGN.md §5, the paper's Figure 8).

Pure numpy functions (torch tensors are accepted and converted); no I/O, no models.

Pairs. A set is an array (n_i, D) of embeddings of one identity; set i *is* identity i,
so sets must be of distinct identities. Embeddings are L2-normalised here (a no-op for
normalised input; a zero vector is an error). The score of a pair is the cosine
similarity cos(a, b) = â·b̂ in [-1, 1], higher = more alike. For unit vectors
|â - b̂|² = 2 - 2 cos(a, b), so thresholding the score is thresholding -distance and
gives the same ROC.

- ``within_set_pairs`` (Figure 8 `real`, `recon`, `free samples`, `uniform samples`):
  positives are all unordered pairs inside one set, negatives unordered pairs of images
  from two different sets.
- ``cross_set_pairs`` (Figure 8 `recon and real`): positives (a ∈ R̂_i, b ∈ R_i), all
  n̂_i·n_i of them; negatives (a ∈ R̂_i, b ∈ R_j), j ≠ i.

Every positive pair is kept. Negatives are a uniform sample without replacement of
floor(``neg_per_pos`` · n_pos) of all negative pairs (default 10 per positive; all of
them if fewer exist, or if ``neg_per_pos`` is None), drawn from a seeded
``numpy.random.Generator`` and so deterministic given the seed.

Each pair records the identities of its two images (``identity_a``, ``identity_b``), the
units the bootstrap resamples: equal for a positive, different for a negative.

ROC. ``roc_curve`` returns exactly scikit-learn's ``roc_curve`` (same points, same
thresholds, drop_intermediate by default); ``auc`` is the trapezoidal area under it.
The curve is read between its points by linear interpolation (the operating points of
a threshold randomised between two neighbouring thresholds):

- ``tpr_at_fpr``: the TPR of the interpolated curve at the target FPR; where several
  points share that FPR (a vertical step) the highest TPR. With n_neg negatives the
  curve has FPR resolution 1/n_neg: a target below it is read on the first segment
  (from the top of the curve at FPR 0 to the first point with FPR > 0), which an
  experiment cannot really resolve; ``summarize`` flags such targets in
  ``under_resolved`` (never a NaN).
- ``eer``: the equal error rate, the FPR at the point of the interpolated curve where
  FPR = 1 - TPR (the false negative rate); unique because FPR + TPR increases along
  the curve.

Bootstrap. ``bootstrap_cis`` resamples the k identities with replacement, identity i
drawn c_i times, and recomputes weighted ROC statistics: a positive of identity i gets
weight c_i, a negative between identities i and j weight c_i·c_j — the multiplicity the
pair has when the pairs are rebuilt from the resampled identities (every copy of i paired
with every copy of j). The CI is the percentile interval. It exists only with at least
``MIN_PER_STRATUM`` identities (:mod:`evaluation.intervals`); with fewer its bounds are NaN.

Label noise (Figure 8(c)). ``contaminate`` replaces round(p·n) images of each set by
images of other identities (``draw_replacements`` draws which, ``apply_replacements``
applies them), an applied fraction ``applied_fraction(p, n)`` = round(p·n)/n that differs
from the nominal p when p·n is not an integer; ``equivalent_label_noise`` inverts the
measured TPR over the applied fractions.

Degenerate input (fewer than two identities, no positive or no negative pairs, an
empty set, mismatched shapes, non-finite values) raises ValueError, never a NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
from sklearn.isotonic import isotonic_regression

from evaluation.intervals import interval_exists

FPR_TARGETS = (1e-3, 1e-2, 1e-1)
NEG_PER_POS = 10.0
N_BOOT = 1000
LEVEL = 0.95
_CHUNK = 8192  # pairs scored per block (bounds the gathered (chunk, D) arrays)

Statistic = Callable[[np.ndarray, np.ndarray], float]  # (fpr, tpr) of a ROC curve -> number


# --------------------------------------------------------------------------- helpers


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} is not array-like: {e}") from e


def _rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng(rng)


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5 + 1e-9))


def _stack_sets(sets: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised rows (N, D) of the stacked sets and the set sizes (k,)."""
    if isinstance(sets, np.ndarray) or hasattr(sets, "detach") or not isinstance(sets, Sequence):
        raise ValueError(f"{name} must be a list of (n_i, D) arrays, one per identity")
    arrays, dim = [], None
    for i, s in enumerate(sets):
        s = _to_numpy(s, f"{name}[{i}]")
        if s.ndim != 2:
            raise ValueError(f"{name}[{i}] must be a 2-D array (n_i, D), got shape {s.shape}")
        if len(s) == 0:
            raise ValueError(f"{name}[{i}] is empty: every set needs at least one image")
        if dim is None:
            dim = s.shape[1]
        elif s.shape[1] != dim:
            raise ValueError(f"{name}[{i}] has embedding dimension {s.shape[1]}, expected {dim}")
        s = s.astype(np.float64)
        if not np.isfinite(s).all():
            raise ValueError(f"{name}[{i}] has non-finite values")
        norms = np.linalg.norm(s, axis=1)
        if (norms == 0).any():
            raise ValueError(f"{name}[{i}] row {int(np.argmin(norms))} has zero norm: cannot L2-normalise")
        arrays.append(s / norms[:, None])
    if len(arrays) < 2:
        raise ValueError(
            f"verification needs at least two identities (sets) to form negative pairs; "
            f"{name} has {len(arrays)}"
        )
    return np.concatenate(arrays), np.array([len(a) for a in arrays], np.int64)


def _cosine(x: np.ndarray, y: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Cosine similarities (P,) of rows x[ia] and y[ib] of unit vectors, in blocks."""
    out = np.empty(len(ia), np.float64)
    for s in range(0, len(ia), _CHUNK):
        out[s : s + _CHUNK] = np.einsum("ij,ij->i", x[ia[s : s + _CHUNK]], y[ib[s : s + _CHUNK]])
    return np.clip(out, -1.0, 1.0)


def _negative_sample(total: int, n_pos: int, neg_per_pos: float | None, rng) -> np.ndarray:
    """Sorted linear indices of the sampled negatives among ``total`` (see module docstring)."""
    if neg_per_pos is None:
        cap = total
    else:
        if not np.isfinite(neg_per_pos) or neg_per_pos <= 0:
            raise ValueError(f"neg_per_pos must be a positive number or None, got {neg_per_pos}")
        cap = min(total, max(1, int(np.floor(neg_per_pos * n_pos))))
    if cap == total:
        return np.arange(total, dtype=np.int64)
    return np.sort(_rng(rng).choice(total, size=cap, replace=False, shuffle=False).astype(np.int64))


# --------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class Pairs:
    """Scored verification pairs, positives first.

    - ``scores`` (P,) float64: cosine similarity of the pair, in [-1, 1];
    - ``labels`` (P,) bool: True for a positive (same identity) pair;
    - ``identity_a``, ``identity_b`` (P,) int64: indices of the identities (sets) of the
      two images, the bootstrap units (equal exactly for positives);
    - ``a``, ``b`` (P,) int64: rows of the two images in the stacked sets (for
      ``cross_set_pairs``: ``a`` in the stacked reconstructed sets, ``b`` in the stacked
      real sets); ``a`` is an image of ``identity_a``, ``b`` of ``identity_b``.
    """

    scores: np.ndarray
    labels: np.ndarray
    identity_a: np.ndarray
    identity_b: np.ndarray
    a: np.ndarray
    b: np.ndarray

    @property
    def identities(self) -> np.ndarray:
        """(P, 2) int64: ``identity_a`` and ``identity_b`` side by side (``bootstrap_cis`` input)."""
        return np.stack([self.identity_a, self.identity_b], axis=1)

    @property
    def n_identities(self) -> int:
        """How many distinct identities the pairs involve (the bootstrap's resampled units)."""
        return len(np.unique(self.identities))

    @property
    def n_pos(self) -> int:
        return int(self.labels.sum())

    @property
    def n_neg(self) -> int:
        return int(len(self.labels) - self.labels.sum())


def split_by_identity(embeddings, ids) -> tuple[list[np.ndarray], np.ndarray]:
    """Group embeddings (N, D) by identity ids (N,) into sets: returns the list of
    (n_i, D) arrays, ordered by sorted unique id and keeping the input order inside a set,
    and the unique ids (k,)."""
    embeddings, ids = _to_numpy(embeddings, "embeddings"), _to_numpy(ids, "ids")
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {embeddings.shape}")
    if ids.shape != (len(embeddings),):
        raise ValueError(f"ids must have shape ({len(embeddings)},) to match embeddings, got {ids.shape}")
    uniq, inverse = np.unique(ids, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1]
    return np.split(embeddings[order], bounds), uniq


def within_set_pairs(
    sets: Sequence, rng: int | np.random.Generator | None = 0, neg_per_pos: float | None = NEG_PER_POS
) -> Pairs:
    """Figure 8 `real` / `recon` / `free samples` pairs of a list of sets (k,) of
    embeddings (n_i, D), set i being identity i.

    Positives: all sum_i n_i(n_i-1)/2 unordered pairs inside a set (a set of one image
    gives none). Negatives: a seeded uniform sample without replacement of
    min(M, floor(neg_per_pos·n_pos)) of the M = sum_{i<j} n_i n_j unordered pairs across
    sets (all M when ``neg_per_pos`` is None). Raises ValueError for fewer than two sets,
    an empty set, or no positive pair at all.
    """
    emb, sizes = _stack_sets(sets, "sets")
    k, n = len(sizes), len(emb)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    ends = starts + sizes
    pa, pb = [], []
    for i in range(k):
        if sizes[i] >= 2:
            u, v = np.triu_indices(int(sizes[i]), 1)
            pa.append(u + starts[i])
            pb.append(v + starts[i])
    if not pa:
        raise ValueError("no positive pairs: every set has fewer than 2 images")
    pos_a, pos_b = (np.concatenate(x).astype(np.int64) for x in (pa, pb))

    # Negative t (linear index) -> rows r < s: anchors r in stacked order, each followed by
    # the images of all later sets.
    set_of = np.repeat(np.arange(k), sizes)
    count = n - ends[set_of]
    cum = np.cumsum(count)
    t = _negative_sample(int(cum[-1]), len(pos_a), neg_per_pos, rng)
    r = np.searchsorted(cum, t, side="right")
    s = ends[set_of[r]] + (t - (cum[r] - count[r]))

    a, b = np.concatenate([pos_a, r]), np.concatenate([pos_b, s])
    labels = np.concatenate([np.ones(len(pos_a), bool), np.zeros(len(r), bool)])
    return Pairs(_cosine(emb, emb, a, b), labels, set_of[a], set_of[b], a, b)


def cross_set_pairs(
    recon_sets: Sequence,
    real_sets: Sequence,
    rng: int | np.random.Generator | None = 0,
    neg_per_pos: float | None = NEG_PER_POS,
) -> Pairs:
    """Figure 8 `recon and real` pairs: ``recon_sets`` R̂_i (n̂_i, D) and ``real_sets``
    R_i (n_i, D), both lists of length k, entry i being identity i.

    Positives: all sum_i n̂_i n_i pairs (a ∈ R̂_i, b ∈ R_i). Negatives: a seeded uniform
    sample without replacement of min(M, floor(neg_per_pos·n_pos)) of the
    M = sum_i n̂_i (N - n_i) pairs (a ∈ R̂_i, b ∈ R_j), j ≠ i, N = sum_j n_j (all M when
    ``neg_per_pos`` is None). Raises ValueError
    when the lists differ in length, have fewer than two identities, or hold an empty set.
    """
    rec, n_rec = _stack_sets(recon_sets, "recon_sets")
    real, n_real = _stack_sets(real_sets, "real_sets")
    if len(n_rec) != len(n_real):
        raise ValueError(
            f"recon_sets and real_sets must hold the same identities: {len(n_rec)} vs {len(n_real)} sets"
        )
    if rec.shape[1] != real.shape[1]:
        raise ValueError(f"real_sets has embedding dimension {real.shape[1]}, recon_sets {rec.shape[1]}")
    k = len(n_rec)
    rec_start = np.concatenate([[0], np.cumsum(n_rec)[:-1]])
    real_start = np.concatenate([[0], np.cumsum(n_real)[:-1]])
    pa, pb = [], []
    for i in range(k):
        u, v = np.meshgrid(np.arange(n_rec[i]), np.arange(n_real[i]), indexing="ij")
        pa.append(u.ravel() + rec_start[i])
        pb.append(v.ravel() + real_start[i])
    pos_a, pos_b = np.concatenate(pa).astype(np.int64), np.concatenate(pb).astype(np.int64)
    rec_set = np.repeat(np.arange(k), n_rec)

    # Negative t -> anchor row r of R̂_i, then the real rows outside R_i in stacked order.
    count = len(real) - n_real[rec_set]
    cum = np.cumsum(count)
    t = _negative_sample(int(cum[-1]), len(pos_a), neg_per_pos, rng)
    neg_a = np.searchsorted(cum, t, side="right")
    off = t - (cum[neg_a] - count[neg_a])
    i = rec_set[neg_a]
    neg_b = np.where(off < real_start[i], off, off + n_real[i])

    a, b = np.concatenate([pos_a, neg_a]), np.concatenate([pos_b, neg_b])
    labels = np.concatenate([np.ones(len(pos_a), bool), np.zeros(len(neg_a), bool)])
    real_set = np.repeat(np.arange(k), n_real)
    return Pairs(_cosine(rec, real, a, b), labels, rec_set[a], real_set[b], a, b)


# --------------------------------------------------------------------------- ROC


def _check_scores_labels(scores, labels, weights=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    scores, labels = _to_numpy(scores, "scores"), _to_numpy(labels, "labels")
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D (P,), got shape {scores.shape}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels must have the shape of scores {scores.shape}, got {labels.shape}")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be boolean or 0/1")
        labels = labels.astype(bool)
    scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("scores have non-finite values")
    if weights is not None:
        weights = _to_numpy(weights, "weights").astype(np.float64)
        if weights.shape != scores.shape:
            raise ValueError(f"weights must have the shape of scores {scores.shape}, got {weights.shape}")
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("weights must be finite and non-negative")
    pos = labels.sum() if weights is None else weights[labels].sum()
    neg = (~labels).sum() if weights is None else weights[~labels].sum()
    if pos <= 0 or neg <= 0:
        raise ValueError(
            f"a ROC curve needs at least one positive and one negative pair "
            f"(got {'weight' if weights is not None else 'count'} {pos} positive, {neg} negative)"
        )
    return scores, labels, weights


def _thresholds(sorted_scores: np.ndarray) -> np.ndarray:
    """Indices (T,) of the last pair of each run of tied scores, in descending order."""
    return np.concatenate([np.flatnonzero(np.diff(sorted_scores)), [len(sorted_scores) - 1]])


def roc_curve(
    scores, labels, weights=None, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve (fpr, tpr, thresholds), each (T,), of scores (P,) and boolean labels (P,),
    optionally weighted by non-negative weights (P,); identical to scikit-learn's
    ``roc_curve(labels, scores, sample_weight=weights, drop_intermediate=...)``.

    A pair is accepted when score >= threshold. thresholds are the distinct scores in
    descending order preceded by +inf; fpr = accepted negatives / negatives and
    tpr = accepted positives / positives (weighted sums when weighted), so the curve runs
    from (0, 0) to (1, 1). ``drop_intermediate`` drops points collinear with their
    neighbours (they are never corners). Raises ValueError without a positive or a
    negative pair (of positive weight).
    """
    scores, labels, weights = _check_scores_labels(scores, labels, weights)
    if weights is not None:  # zero-weight pairs do not make thresholds (as in scikit-learn)
        keep = weights != 0
        scores, labels, weights = scores[keep], labels[keep], weights[keep]
    order = np.argsort(-scores, kind="stable")
    scores, y = scores[order], labels[order].astype(np.float64)
    idx = _thresholds(scores)
    if weights is None:
        tps = np.cumsum(y)[idx]
        fps = 1 + idx.astype(np.float64) - tps
    else:
        w = weights[order]
        tps = np.cumsum(y * w)[idx]
        fps = np.cumsum((1 - y) * w)[idx]
    thresholds = scores[idx]
    if drop_intermediate and len(fps) > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thresholds]


def _check_curve(fpr, tpr) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr = _to_numpy(fpr, "fpr").astype(np.float64), _to_numpy(tpr, "tpr").astype(np.float64)
    if fpr.ndim != 1 or len(fpr) < 2:
        raise ValueError(f"fpr must be 1-D with at least 2 points, got shape {fpr.shape}")
    if tpr.shape != fpr.shape:
        raise ValueError(f"tpr must have the shape of fpr {fpr.shape}, got {tpr.shape}")
    for name, v in (("fpr", fpr), ("tpr", tpr)):
        if not np.isfinite(v).all() or (np.diff(v) < 0).any():
            raise ValueError(f"{name} must be finite and non-decreasing (a ROC curve from roc_curve)")
        if v[0] != 0 or v[-1] != 1:
            raise ValueError(f"{name} must run from 0 to 1 (a ROC curve from roc_curve)")
    return fpr, tpr


def _auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.trapezoid(tpr, fpr))


def _tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    i = int(np.searchsorted(fpr, target, side="right")) - 1  # last point with fpr <= target
    if fpr[i] == target or i == len(fpr) - 1:
        return float(tpr[i])
    lam = (target - fpr[i]) / (fpr[i + 1] - fpr[i])
    return float(tpr[i] + lam * (tpr[i + 1] - tpr[i]))


def _eer(fpr: np.ndarray, tpr: np.ndarray) -> float:
    g = fpr + tpr - 1  # non-decreasing from -1 at (0, 0) to 1 at (1, 1)
    j = int(np.argmax(g >= 0))
    if g[j] == 0:
        return float(fpr[j])
    lam = -g[j - 1] / (g[j] - g[j - 1])
    return float(fpr[j - 1] + lam * (fpr[j] - fpr[j - 1]))


def auc(fpr, tpr) -> float:
    """Area under a ROC curve (fpr (T,), tpr (T,) from ``roc_curve``) by the trapezoidal
    rule, in [0, 1]; equals scikit-learn's ``roc_auc_score`` on the same scores."""
    return _auc(*_check_curve(fpr, tpr))


def roc_auc(scores, labels) -> float:
    """AUC of scores (P,) with boolean labels (P,): ``auc(*roc_curve(scores, labels)[:2])``."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return _auc(fpr, tpr)


def tpr_at_fpr(fpr, tpr, target: float) -> float:
    """TPR of the linearly interpolated ROC curve (fpr (T,), tpr (T,) from ``roc_curve``)
    at FPR ``target`` in [0, 1]: with i the last point with fpr_i <= target (the highest
    TPR at that FPR), tpr_i if fpr_i = target, else
    tpr_i + (target - fpr_i) / (fpr_{i+1} - fpr_i) · (tpr_{i+1} - tpr_i). A target below
    the smallest positive FPR (1/n_neg) reads the first segment; see the module docstring."""
    if not 0 <= target <= 1:
        raise ValueError(f"target FPR must be in [0, 1], got {target}")
    return _tpr_at_fpr(*_check_curve(fpr, tpr), target)


def eer(fpr, tpr) -> float:
    """Equal error rate of a ROC curve (fpr (T,), tpr (T,) from ``roc_curve``): the FPR at
    the point of the linearly interpolated curve where FPR = 1 - TPR, in [0, 1]."""
    return _eer(*_check_curve(fpr, tpr))


def fpr_key(target: float) -> str:
    """Name of the TPR-at-FPR statistic: ``tpr@0.001`` for 1e-3."""
    return f"tpr@{target:g}"


def curve_statistics(fpr_targets: Sequence[float] = FPR_TARGETS) -> dict[str, Statistic]:
    """The summary statistics as functions of a ROC curve (fpr, tpr): ``auc``,
    ``tpr@<target>`` for each target and ``eer`` (for ``bootstrap_cis``)."""
    for t in fpr_targets:
        if not 0 <= t <= 1:
            raise ValueError(f"target FPR must be in [0, 1], got {t}")
    stats: dict[str, Statistic] = {"auc": _auc}
    stats.update({fpr_key(t): partial(_tpr_at_fpr, target=float(t)) for t in fpr_targets})
    stats["eer"] = _eer
    return stats


# --------------------------------------------------------------------------- bootstrap


def bootstrap_replicates(
    score_sets: Sequence,
    labels,
    identity,
    statistics: Mapping[str, Statistic],
    n_boot: int = N_BOOT,
    rng: int | np.random.Generator | None = 0,
) -> np.ndarray | None:
    """Identity-bootstrap replicates of ROC statistics, paired over several scorings of the
    same pairs.

    score_sets: S arrays of scores (P,), one per scoring of the same pairs (S = 1: one
    curve; S > 1: e.g. a model and its ceiling and floor, scored on identical pairs); labels
    (P,) bool and identity (P, 2) or (P,) as in ``bootstrap_cis``. Each replicate draws the k
    identities with replacement once (seeded by ``rng``) and weights the pairs by their
    multiplicity (``bootstrap_cis``); every scoring is evaluated under the same weights, so
    the replicates of a difference or ratio of scorings are paired. A replicate with no
    positive or no negative pair is discarded and drawn again. Returns (n_boot, S,
    len(statistics)) in the order of ``statistics``, or None when fewer than
    ``MIN_PER_STRATUM`` identities are present (no interval exists)."""
    if not len(score_sets):
        raise ValueError("score_sets is empty: give at least one scoring of the pairs")
    checked = [_check_scores_labels(s, labels)[0] for s in score_sets]
    _, labels, _ = _check_scores_labels(score_sets[0], labels)
    identity = _to_numpy(identity, "identity")
    if identity.shape not in ((len(labels),), (len(labels), 2)):
        raise ValueError(
            f"identity must have shape ({len(labels)},) or ({len(labels)}, 2) to match scores, "
            f"got {identity.shape}"
        )
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")
    if not statistics:
        raise ValueError("statistics is empty")
    ids, code = np.unique(identity, return_inverse=True)
    k = len(ids)
    if k < 2:
        raise ValueError("verification needs at least two identities to bootstrap; identity has one")
    names = list(statistics)
    if not interval_exists([k]):
        return None
    rng = _rng(rng)
    code = code.reshape(len(labels), -1)  # (P, 1) or (P, 2) identity indices
    code_a, code_b = code[:, 0], code[:, -1]
    two = np.flatnonzero(code_a != code_b)  # pairs of two identities: weight c_a·c_b
    orders = [np.argsort(-s, kind="stable") for s in checked]
    ys = [labels[o].astype(np.float64) for o in orders]
    cuts = [_thresholds(s[o]) for s, o in zip(checked, orders, strict=True)]
    chunk = max(1, min(int(n_boot), 2_000_000 // len(labels)))
    values: list[list[list[float]]] = []
    draws = 0
    while len(values) < n_boot:
        if draws > 10 * n_boot + 100:
            raise ValueError(
                "bootstrap: resampled identities almost never hold both positive and negative pairs"
            )
        picks = rng.integers(0, k, size=(chunk, k))
        draws += chunk
        flat = (picks + k * np.arange(chunk)[:, None]).ravel()
        counts = np.bincount(flat, minlength=chunk * k).reshape(chunk, k).astype(np.float64)
        w = counts[:, code_a]  # (chunk, P) pair weights, in the pairs' order
        w[:, two] *= counts[:, code_b[two]]
        curves = []
        for order, y, idx in zip(orders, ys, cuts, strict=True):
            wo = w[:, order]
            curves.append((np.cumsum(wo * y, axis=1)[:, idx], np.cumsum(wo * (1 - y), axis=1)[:, idx]))
        for r in range(chunk):
            tp_total, fp_total = curves[0][0][r, -1], curves[0][1][r, -1]  # the same for every scoring
            if tp_total <= 0 or fp_total <= 0 or len(values) >= n_boot:
                continue
            replicate = []
            for tps, fps in curves:
                tp, fp = tps[r], fps[r]
                fpr, tpr = np.r_[0.0, fp] / fp[-1], np.r_[0.0, tp] / tp[-1]
                row = [float(statistics[n](fpr, tpr)) for n in names]
                if not np.isfinite(row).all():
                    raise ValueError(
                        f"a statistic returned a non-finite value: {dict(zip(names, row, strict=True))}"
                    )
                replicate.append(row)
            values.append(replicate)
    return np.array(values)


def bootstrap_cis(
    scores,
    labels,
    identity,
    statistics: Mapping[str, Statistic],
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    rng: int | np.random.Generator | None = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CIs, resampling identities, of ROC statistics.

    scores (P,) and labels (P,) bool describe the pairs; identity is (P, 2), the identities
    of each pair's two images (``Pairs.identities``), or (P,), one identity per pair (the
    same as (P, 2) with equal columns); ids are any sortable values. Each statistic maps a
    ROC curve (fpr, tpr) to a number (e.g. ``curve_statistics()``). Each of the ``n_boot``
    replicates draws k identities with replacement from the k present (seeded by ``rng``),
    identity i c_i times, and weights a pair of identities (i, i) by c_i and one of (i, j),
    i != j, by c_i·c_j: the pairs rebuilt from the resampled identities, with multiplicity.
    It evaluates the statistics on the weighted ROC curve (``bootstrap_replicates``). A
    replicate with no positive or no negative pair is discarded and drawn again. Returns
    {name: (low, high)}, the (1-level)/2 and (1+level)/2 quantiles (numpy's linear
    interpolation) of the replicates, or (nan, nan) for every name when fewer than
    ``MIN_PER_STRATUM`` identities are present (no interval exists, :mod:`evaluation.intervals`).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    replicates = bootstrap_replicates([scores], labels, identity, statistics, n_boot, rng)
    if replicates is None:
        return {n: (float("nan"), float("nan")) for n in statistics}
    q = np.quantile(replicates[:, 0], [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {n: (float(q[0, j]), float(q[1, j])) for j, n in enumerate(statistics)}


def bootstrap_ci(
    scores,
    labels,
    identity,
    statistic: Statistic,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    rng: int | np.random.Generator | None = 0,
) -> tuple[float, float]:
    """(low, high) percentile bootstrap CI of one ROC statistic (fpr, tpr) -> number, of
    pairs scores (P,), labels (P,) and identity (P,) or (P, 2), resampling identities;
    see ``bootstrap_cis``."""
    return bootstrap_cis(scores, labels, identity, {"s": statistic}, n_boot, level, rng)["s"]


# --------------------------------------------------------------------------- summary


def is_under_resolved(target: float, n_neg: int) -> bool:
    """True when FPR ``target`` lies below the curve's resolution 1/n_neg (target·n_neg < 1):
    the TPR there is read on the first segment of the curve, not resolved by the data."""
    return target * n_neg < 1


@dataclass(frozen=True)
class CurveSummary:
    """A Figure 8 curve's numbers: ``auc``; ``tpr_at_fpr`` {target FPR: TPR}
    (``tpr_at_fpr`` interpolation); ``eer``; pair counts ``n_pos``, ``n_neg``;
    ``under_resolved``, the targets below 1/n_neg (``is_under_resolved``); ``ci``
    {statistic name: (low, high)} (NaN bounds when no interval exists) or None."""

    auc: float
    tpr_at_fpr: dict[float, float]
    eer: float
    n_pos: int
    n_neg: int
    under_resolved: tuple[float, ...]
    ci: dict[str, tuple[float, float]] | None = None

    def as_dict(self) -> dict[str, float | int]:
        """Flat row: auc, tpr@<target>..., eer, n_pos, n_neg, and <name>_lo/<name>_hi per CI."""
        out: dict[str, float | int] = {"auc": self.auc}
        out.update({fpr_key(t): v for t, v in self.tpr_at_fpr.items()})
        out.update(eer=self.eer, n_pos=self.n_pos, n_neg=self.n_neg)
        for name, (lo, hi) in (self.ci or {}).items():
            out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
        return out


def summarize(
    scores,
    labels,
    identity=None,
    ci: bool = False,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    rng: int | np.random.Generator | None = 0,
    fpr_targets: Sequence[float] = FPR_TARGETS,
) -> CurveSummary:
    """Summary of the ROC of scores (P,) and labels (P,): AUC, TPR at each FPR target,
    EER, n_pos, n_neg; with ``ci`` also the identity-bootstrap CIs (needs identity (P,) or
    (P, 2), see ``bootstrap_cis``)."""
    fpr, tpr, _ = roc_curve(scores, labels)
    stats = curve_statistics(fpr_targets)
    scores, labels, _ = _check_scores_labels(scores, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    cis = None
    if ci:
        if identity is None:
            raise ValueError("bootstrap CIs need the identities (P, 2) or (P,) of each pair")
        cis = bootstrap_cis(scores, labels, identity, stats, n_boot, level, rng)
    return CurveSummary(
        auc=_auc(fpr, tpr),
        tpr_at_fpr={float(t): stats[fpr_key(t)](fpr, tpr) for t in fpr_targets},
        eer=_eer(fpr, tpr),
        n_pos=n_pos,
        n_neg=n_neg,
        under_resolved=tuple(float(t) for t in fpr_targets if is_under_resolved(t, n_neg)),
        ci=cis,
    )


# --------------------------------------------------------------------------- label noise


def applied_fraction(p: float, n: int) -> float:
    """The fraction of a set of ``n`` images that label noise p replaces: round(p·n)/n
    (half up), in [0, 1]; equal to p only when p·n is an integer (p = 0.1, n = 8: 0.125)."""
    if not (np.isfinite(p) and 0 <= p <= 1):
        raise ValueError(f"p must be in [0, 1], got {p}")
    if int(n) != n or n < 1:
        raise ValueError(f"a set needs at least one image, got n = {n}")
    return _round_half_up(p * n) / n


@dataclass(frozen=True)
class Replacements:
    """Which images label noise replaces, each entry a list over sets (k,): ``positions``
    (m_i,) int64, the slots replaced in set i; ``pool_index`` (m_i,) int64, the pool rows
    that replace them (in the same order), m_i = round(p·n_i); ``sizes`` (k,) the n_i."""

    positions: list[np.ndarray]
    pool_index: list[np.ndarray]
    sizes: np.ndarray

    @property
    def applied(self) -> float:
        """The applied fraction: replaced images / all images, sum_i m_i / sum_i n_i."""
        return sum(len(x) for x in self.positions) / int(self.sizes.sum())

    @property
    def drawn_rows(self) -> np.ndarray:
        """(U,) int64: the distinct pool rows drawn, sorted (the only pool images needed)."""
        return np.unique(np.concatenate([np.zeros(0, np.int64), *self.pool_index]))

    def reindexed(self, rows: np.ndarray) -> Replacements:
        """The same draws with ``pool_index`` pointing into ``pool[rows]`` instead of ``pool``:
        rows (U,) sorted, holding every drawn row (e.g. ``drawn_rows``, or another level's)."""
        rows = np.asarray(rows, dtype=np.int64)
        index = [np.searchsorted(rows, x) for x in self.pool_index]
        if any((j >= len(rows)).any() or (rows[np.minimum(j, len(rows) - 1)] != x).any()
               for j, x in zip(index, self.pool_index, strict=True)):  # fmt: skip
            raise ValueError("rows must be sorted and hold every drawn pool row")
        return Replacements(self.positions, index, self.sizes)


@dataclass(frozen=True)
class Contamination:
    """Sets after label noise, each entry a list over sets (k,): ``sets`` the new arrays
    (n_i, ...); ``replaced`` (n_i,) bool, True where an image was replaced; ``source``
    (n_i,) the identity label of each image (the set's own label where not replaced);
    ``applied`` the applied fraction sum_i m_i / sum_i n_i."""

    sets: list[np.ndarray]
    replaced: list[np.ndarray]
    source: list[np.ndarray]
    applied: float


def _check_pool(pool, pool_labels) -> tuple[np.ndarray, np.ndarray]:
    """pool (M, ...) and pool_labels (M,) as arrays, or ValueError when they do not match."""
    pool, pool_labels = _to_numpy(pool, "pool"), _to_numpy(pool_labels, "pool_labels")
    if pool.ndim < 1 or pool_labels.shape != (len(pool),):
        raise ValueError(
            f"pool_labels must have shape ({len(pool)},), one per pool image, got {pool_labels.shape}"
        )
    return pool, pool_labels


def _set_labels(labels, k: int) -> np.ndarray:
    labels = np.arange(k) if labels is None else _to_numpy(labels, "labels")
    if labels.shape != (k,):
        raise ValueError(f"labels must have shape ({k},), one per set, got {labels.shape}")
    return labels


def draw_replacements(
    set_sizes: Sequence[int],
    p: float,
    pool_labels,
    labels=None,
    rng: int | np.random.Generator | None = 0,
) -> Replacements:
    """The draws of ``contaminate`` without the images: for sets of ``set_sizes`` (k,) images
    labelled ``labels`` (k,) (default 0..k-1) and a pool labelled ``pool_labels`` (M,), which
    round(p·n_i) slots of set i are replaced and by which pool rows. A caller can then load
    only the pool images actually drawn. Raises ValueError as ``contaminate``."""
    if not (np.isfinite(p) and 0 <= p <= 1):
        raise ValueError(f"p must be in [0, 1], got {p}")
    sizes = np.asarray(set_sizes, dtype=np.int64)
    if sizes.ndim != 1 or len(sizes) == 0:
        raise ValueError("sets is empty")
    for i, n in enumerate(sizes):
        if n < 1:
            raise ValueError(f"sets[{i}] is empty: every set needs at least one image")
    labels = _set_labels(labels, len(sizes))
    pool_labels = _to_numpy(pool_labels, "pool_labels")
    if pool_labels.ndim != 1:
        raise ValueError(f"pool_labels must be 1-D (M,), one per pool image, got shape {pool_labels.shape}")
    try:
        np.result_type(labels, pool_labels)
    except TypeError as e:
        raise ValueError(
            f"labels {labels.dtype} and pool_labels {pool_labels.dtype} are not comparable"
        ) from e
    rng = _rng(rng)
    positions, pool_index = [], []
    for i, n in enumerate(sizes):
        n = int(n)
        eligible = np.flatnonzero(pool_labels != labels[i])
        if len(eligible) == 0:
            raise ValueError(
                f"contamination needs images of at least one other identity: the pool has none for "
                f"sets[{i}] (label {labels[i]!r})"
            )
        slots = rng.permutation(n)
        candidates = rng.choice(eligible, size=min(n, len(eligible)), replace=False)
        m = _round_half_up(p * n)
        if m > len(candidates):
            raise ValueError(
                f"sets[{i}] needs {m} replacement images but the pool has only {len(eligible)} "
                f"of other identities"
            )
        positions.append(slots[:m].astype(np.int64))
        pool_index.append(candidates[:m].astype(np.int64))
    return Replacements(positions, pool_index, sizes)


def apply_replacements(sets: Sequence, draws: Replacements, pool, pool_labels, labels=None) -> Contamination:
    """Put the pool images (M', ...) ``pool[draws.pool_index[i]]`` into ``sets`` (list (k,)
    of (n_i, ...) arrays, labelled ``labels`` (k,), default 0..k-1) at ``draws.positions``;
    ``pool_labels`` (M',) gives the replacements' identity labels (``Contamination.source``).
    Raises ValueError for mismatched shapes."""
    if isinstance(sets, np.ndarray) or hasattr(sets, "detach") or not isinstance(sets, Sequence):
        raise ValueError("sets must be a list of (n_i, ...) arrays, one per identity")
    arrays = [_to_numpy(s, f"sets[{i}]") for i, s in enumerate(sets)]
    if [len(s) for s in arrays] != draws.sizes.tolist():
        raise ValueError(f"sets have sizes {[len(s) for s in arrays]}, the draws {draws.sizes.tolist()}")
    labels = _set_labels(labels, len(arrays))
    pool, pool_labels = _check_pool(pool, pool_labels)
    src_dtype = np.result_type(labels, pool_labels)
    out, replaced, source = [], [], []
    for i, (s, pos, rows) in enumerate(zip(arrays, draws.positions, draws.pool_index, strict=True)):
        if s.shape[1:] != pool.shape[1:]:
            raise ValueError(f"pool images have shape {pool.shape[1:]}, sets[{i}] images {s.shape[1:]}")
        new, mask, src = s.copy(), np.zeros(len(s), bool), np.full(len(s), labels[i], dtype=src_dtype)
        new[pos] = pool[rows]
        mask[pos] = True
        src[pos] = pool_labels[rows]
        out.append(new)
        replaced.append(mask)
        source.append(src)
    return Contamination(out, replaced, source, draws.applied)


def contaminate(
    sets: Sequence,
    p: float,
    pool,
    pool_labels,
    labels=None,
    rng: int | np.random.Generator | None = 0,
) -> Contamination:
    """Label noise of Figure 8(c): in each set i of n_i images (arrays (n_i, ...): images
    or embeddings) exactly round(p·n_i) (half up) entries, at uniformly random positions,
    are replaced by distinct images drawn uniformly without replacement from the pool
    images (M, ...) whose label in ``pool_labels`` (M,) differs from the set's label
    (``labels`` (k,), default 0..k-1); an identity thus comes in proportion to its pool
    images. Never the set's own identity. ``Contamination.applied`` is the fraction
    actually replaced (``applied_fraction`` for equal set sizes), not the nominal p.

    The draws do not depend on p: for a fixed seed the positions and images replaced at a
    smaller p are a subset of those at a larger p (noise levels are nested, so curves at
    different p differ only by the extra replacements).

    The pool should not hold the sets' own images: a copy of a set-j image inside set i
    makes an i-j negative pair of identical images (cosine 1). Raises ValueError for p
    outside [0, 1], a set with no other-identity pool image (e.g. a single identity),
    too few of them for round(p·n_i) distinct draws, or mismatched shapes.
    """
    if isinstance(sets, np.ndarray) or hasattr(sets, "detach") or not isinstance(sets, Sequence):
        raise ValueError("sets must be a list of (n_i, ...) arrays, one per identity")
    arrays = [_to_numpy(s, f"sets[{i}]") for i, s in enumerate(sets)]
    pool, pool_labels = _check_pool(pool, pool_labels)
    draws = draw_replacements([len(s) if s.ndim else 0 for s in arrays], p, pool_labels, labels, rng)
    return apply_replacements(arrays, draws, pool, pool_labels, labels)


@dataclass(frozen=True)
class EquivalentNoise:
    """Equivalent label noise: ``value`` is the applied fraction when ``bound`` is None; when
    the TPR lies outside the measured range, ``bound`` is "below" (less noise than the
    smallest level, ``value`` = that level) or "above" (more than the largest, ``value`` =
    that level)."""

    value: float
    bound: Literal["below", "above"] | None = None

    def format(self, digits: int = 2) -> str:
        """As text: "0.23" (``digits`` decimals), or "< 0" / "> 0.5" outside the measured levels."""
        if self.bound == "below":
            return f"< {self.value:g}"
        if self.bound == "above":
            return f"> {self.value:g}"
        return f"{self.value:.{digits}f}"


def equivalent_label_noise(levels, noisy_tprs, tpr: float) -> EquivalentNoise:
    """The label noise at which the noisy-real curves' TPR (at a fixed FPR) equals ``tpr``.

    ``levels`` (k,) are the measured *applied* fractions p_1 < ... < p_k (k >= 2; the
    fraction of images actually replaced, ``Contamination.applied``, not the nominal p) and
    ``noisy_tprs`` (k,) the TPRs of the contaminated real curves there; the answer is an
    applied fraction. TPR should fall with p; measured values
    need not (sampling noise), so they are first replaced by their least-squares
    non-increasing fit (isotonic regression, pool adjacent violators; a no-op on
    non-increasing data). The fit f, linear between levels, is inverted at its first
    crossing: the smallest p with f(p) = tpr (unique unless f is flat at tpr). A ``tpr``
    above f(p_1) gives bound "below" (``value`` p_1), one below f(p_k) "above"
    (``value`` p_k).
    """
    levels = _to_numpy(levels, "levels").astype(np.float64)
    noisy_tprs = _to_numpy(noisy_tprs, "noisy_tprs").astype(np.float64)
    if levels.ndim != 1 or len(levels) < 2:
        raise ValueError(f"levels must be 1-D with at least 2 noise levels, got shape {levels.shape}")
    if noisy_tprs.shape != levels.shape:
        raise ValueError(f"noisy_tprs must have the shape of levels {levels.shape}, got {noisy_tprs.shape}")
    if not np.isfinite(levels).all() or (np.diff(levels) <= 0).any():
        raise ValueError(
            f"levels must be finite and strictly increasing, got {levels} (two nominal noise levels "
            f"with the same applied fraction round(p·n)/n measure the same curve)"
        )
    if not np.isfinite(noisy_tprs).all() or not np.isfinite(tpr):
        raise ValueError("noisy_tprs and tpr must be finite")
    f = isotonic_regression(noisy_tprs, increasing=False)
    if tpr > f[0]:
        return EquivalentNoise(float(levels[0]), "below")
    if tpr < f[-1]:
        return EquivalentNoise(float(levels[-1]), "above")
    j = int(np.argmax(f <= tpr))  # first level at or below tpr
    if j == 0 or f[j] == tpr:
        return EquivalentNoise(float(levels[j]))
    lam = (f[j - 1] - tpr) / (f[j - 1] - f[j])
    return EquivalentNoise(float(levels[j - 1] + lam * (levels[j] - levels[j - 1])))
