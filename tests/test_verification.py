"""Verification scoring against scikit-learn, naive pair loops, hand-worked curves and edge cases."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from evaluation.intervals import MIN_PER_STRATUM
from evaluation.verification import (
    FPR_TARGETS,
    EquivalentNoise,
    applied_fraction,
    apply_replacements,
    auc,
    bootstrap_ci,
    bootstrap_cis,
    bootstrap_replicates,
    contaminate,
    cross_set_pairs,
    curve_statistics,
    draw_replacements,
    eer,
    equivalent_label_noise,
    is_under_resolved,
    roc_auc,
    roc_curve,
    split_by_identity,
    summarize,
    tpr_at_fpr,
    within_set_pairs,
)


def clustered(k, n, dim=32, sigma=0.3, seed=0, separated=True):
    """k sets of n embeddings (n, dim): a random unit centre per identity plus noise of norm ~sigma;
    with ``separated`` False every set is drawn from the same distribution."""
    rng = np.random.default_rng(seed)
    sizes = [n] * k if np.isscalar(n) else list(n)
    out = []
    for size in sizes:
        c = rng.normal(size=dim) if separated else np.zeros(dim)
        c = c / max(np.linalg.norm(c), 1e-12) if separated else c
        out.append(c + sigma * rng.normal(size=(size, dim)) / np.sqrt(dim))
    return out


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- ROC vs scikit-learn


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("drop", [True, False])
def test_roc_curve_equals_sklearn(tied, drop):
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(2, 300))
        labels = rng.random(n) < rng.uniform(0.1, 0.9)
        labels[:2] = [True, False]
        scores = rng.integers(0, 6, n).astype(float) if tied else rng.normal(size=n) + labels
        ours = roc_curve(scores, labels, drop_intermediate=drop)
        ref = sk_roc_curve(labels, scores, drop_intermediate=drop)
        for a, b in zip(ours, ref, strict=True):
            assert np.array_equal(a, b)
        assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        assert auc(ours[0], ours[1]) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_weighted_roc_equals_sklearn():
    rng = np.random.default_rng(2)
    n = 400
    labels = rng.random(n) < 0.3
    scores = rng.integers(0, 20, n) / 20.0
    weights = rng.integers(0, 4, n).astype(float)  # zeros included, as in a bootstrap replicate
    ours = roc_curve(scores, labels, weights)
    ref = sk_roc_curve(labels, scores, sample_weight=weights)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_auc_of_separable_and_of_identical_distributions():
    sep = within_set_pairs(clustered(20, 6, sigma=0.3))
    assert roc_auc(sep.scores, sep.labels) > 0.999
    same = within_set_pairs(clustered(60, 6, separated=False), neg_per_pos=None)
    assert roc_auc(same.scores, same.labels) == pytest.approx(0.5, abs=0.03)


def test_roc_input_errors():
    with pytest.raises(ValueError, match="labels must have the shape"):
        roc_curve(np.zeros(3), np.array([True, False]))
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        roc_curve(np.arange(3.0), np.ones(3, bool))
    with pytest.raises(ValueError, match="non-finite"):
        roc_curve(np.array([0.0, np.nan]), np.array([True, False]))
    with pytest.raises(ValueError, match="0/1"):
        roc_curve(np.zeros(2), np.array([2, 0]))
    with pytest.raises(ValueError, match="tpr must have the shape"):
        auc(np.array([0.0, 1.0]), np.array([0.0, 0.5, 1.0]))


# --------------------------------------------------------------------------- reading the curve


# A hand-made curve: (0,0) (0,.25) (.1,.5) (.3,.5) (.3,.8) (.5,1) (1,1)
FPR = np.array([0, 0, 0.1, 0.3, 0.3, 0.5, 1])
TPR = np.array([0, 0.25, 0.5, 0.5, 0.8, 1, 1])


@pytest.mark.parametrize(
    "target, expected",
    [
        (0.0, 0.25),  # top of the vertical step at FPR 0
        (0.05, 0.375),  # halfway along (0,.25)-(.1,.5)
        (0.1, 0.5),  # on a point
        (0.2, 0.5),  # flat segment
        (0.3, 0.8),  # vertical step: its highest TPR
        (0.4, 0.9),  # halfway along (.3,.8)-(.5,1)
        (1.0, 1.0),
    ],
)
def test_tpr_at_fpr_hand_worked(target, expected):
    assert tpr_at_fpr(FPR, TPR, target) == pytest.approx(expected)


def test_tpr_at_fpr_rejects_bad_target():
    with pytest.raises(ValueError, match="target FPR"):
        tpr_at_fpr(FPR, TPR, 1.5)


def test_eer_hand_worked():
    # crossing on the segment (0,.2)-(.6,1): fpr = .6·λ, 1 - tpr = .8 - .8λ -> λ = 4/7
    assert eer(np.array([0, 0, 0.6, 1]), np.array([0, 0.2, 1, 1])) == pytest.approx(0.6 * 4 / 7)
    # P .9, {P, N} tied at .5, N .1: curve (0,0) (0,.5) (.5,1) (1,1), crossing at fpr .25
    fpr, tpr, _ = roc_curve([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])
    assert eer(fpr, tpr) == pytest.approx(0.25)
    # a crossing on a ROC point: P .9, N .8, P .7, N .6 -> (.5, .5)
    fpr, tpr, _ = roc_curve([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])
    assert eer(fpr, tpr) == 0.5
    # perfect separation -> 0
    fpr, tpr, _ = roc_curve([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert eer(fpr, tpr) == 0.0


def test_summary_counts_flags_and_cis():
    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(40, bool), np.zeros(50, bool)]
    scores = rng.normal(size=90) + 1.5 * labels
    ident = np.r_[np.arange(40) % 10, np.arange(50) % 10]
    s = summarize(scores, labels, ident, ci=True, n_boot=200)
    fpr, tpr, _ = sk_roc_curve(labels, scores)
    assert (s.n_pos, s.n_neg) == (40, 50)
    assert s.auc == pytest.approx(roc_auc_score(labels, scores))
    assert s.tpr_at_fpr[0.1] == pytest.approx(tpr_at_fpr(fpr, tpr, 0.1))
    assert s.eer == pytest.approx(eer(fpr, tpr))
    assert s.under_resolved == (1e-3, 1e-2)  # 50 negatives resolve FPR >= 0.02 only
    assert set(s.ci) == {"auc", "tpr@0.001", "tpr@0.01", "tpr@0.1", "eer"}
    row = s.as_dict()
    assert row["tpr@0.1"] == s.tpr_at_fpr[0.1] and row["n_neg"] == 50 and "auc_lo" in row
    assert summarize(scores, labels).ci is None
    with pytest.raises(ValueError, match="identities"):
        summarize(scores, labels, ci=True)
    assert is_under_resolved(1e-2, 99) and not is_under_resolved(1e-2, 100)


# --------------------------------------------------------------------------- pairs


def test_within_pair_counts_and_scores_by_hand():
    sets = clustered(3, [2, 3, 4], dim=8)
    flat = unit(np.concatenate(sets))
    set_of = np.repeat(np.arange(3), [2, 3, 4])
    everything = within_set_pairs(sets, neg_per_pos=None)
    assert everything.n_pos == 1 + 3 + 6
    assert everything.n_neg == 2 * 3 + 2 * 4 + 3 * 4
    pairs = {tuple(sorted(ab)) for ab in zip(everything.a, everything.b, strict=True)}
    assert pairs == set(itertools.combinations(range(9), 2))  # every unordered pair once
    np.testing.assert_array_equal(everything.labels, set_of[everything.a] == set_of[everything.b])
    np.testing.assert_array_equal(everything.identity_a, set_of[everything.a])
    np.testing.assert_array_equal(everything.identity_b, set_of[everything.b])
    np.testing.assert_array_equal(everything.labels, everything.identity_a == everything.identity_b)
    assert everything.identities.shape == (len(everything.scores), 2) and everything.n_identities == 3
    np.testing.assert_allclose(everything.scores, (flat[everything.a] * flat[everything.b]).sum(1))
    assert within_set_pairs(sets).n_neg == 26  # 10 x 10 positives > 26: all negatives


def test_within_negative_cap_is_seeded_sample_without_replacement():
    sets = clustered(30, 5, dim=8)
    p = within_set_pairs(sets, rng=4)
    assert p.n_pos == 30 * 10 and p.n_neg == 10 * p.n_pos
    q = within_set_pairs(sets, rng=4, neg_per_pos=2.5)
    assert q.n_neg == 750
    set_of = np.repeat(np.arange(30), 5)
    neg = ~p.labels
    assert (set_of[p.a[neg]] != set_of[p.b[neg]]).all()
    keys = {tuple(sorted(ab)) for ab in zip(p.a[neg], p.b[neg], strict=True)}
    assert len(keys) == p.n_neg  # without replacement
    again = within_set_pairs(sets, rng=4)
    assert np.array_equal(again.a, p.a) and np.array_equal(again.scores, p.scores)
    other = within_set_pairs(sets, rng=5)
    assert not np.array_equal(other.a, p.a)


def test_cross_pair_counts_by_hand():
    recon = clustered(3, [2, 3, 1], dim=8, seed=1)
    real = clustered(3, [4, 1, 2], dim=8, seed=2)
    p = cross_set_pairs(recon, real, neg_per_pos=None)
    assert p.n_pos == 2 * 4 + 3 * 1 + 1 * 2
    assert p.n_neg == 2 * (7 - 4) + 3 * (7 - 1) + 1 * (7 - 2)
    rec_of, real_of = np.repeat(np.arange(3), [2, 3, 1]), np.repeat(np.arange(3), [4, 1, 2])
    assert {(int(a), int(b)) for a, b in zip(p.a, p.b, strict=True)} == set(
        itertools.product(range(6), range(7))
    )
    np.testing.assert_array_equal(p.labels, rec_of[p.a] == real_of[p.b])
    np.testing.assert_array_equal(p.identity_a, rec_of[p.a])
    np.testing.assert_array_equal(p.identity_b, real_of[p.b])
    R, Q = unit(np.concatenate(recon)), unit(np.concatenate(real))
    np.testing.assert_allclose(p.scores, (R[p.a] * Q[p.b]).sum(1))
    capped = cross_set_pairs(recon, real, neg_per_pos=1.0, rng=0)
    assert (
        capped.n_neg == 13 and (rec_of[capped.a[~capped.labels]] != real_of[capped.b[~capped.labels]]).all()
    )


def test_degenerate_pair_input():
    with pytest.raises(ValueError, match="verification needs at least two identities"):
        within_set_pairs(clustered(1, 5))
    with pytest.raises(ValueError, match="verification needs at least two identities"):
        cross_set_pairs(clustered(1, 5), clustered(1, 5))
    with pytest.raises(ValueError, match="no positive pairs"):
        within_set_pairs(clustered(4, 1))
    with pytest.raises(ValueError, match=r"sets\[1\] is empty"):
        within_set_pairs([np.ones((2, 3)), np.ones((0, 3))])
    with pytest.raises(ValueError, match=r"sets\[1\] has embedding dimension 4"):
        within_set_pairs([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="zero norm"):
        within_set_pairs([np.ones((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match="same identities"):
        cross_set_pairs(clustered(3, 2), clustered(2, 2))
    with pytest.raises(ValueError, match="list of"):
        within_set_pairs(np.ones((2, 3, 4)))


def test_split_by_identity_and_torch_input():
    emb = np.arange(12.0).reshape(6, 2) + 1
    sets, ids = split_by_identity(emb, np.array([7, 3, 7, 3, 3, 9]))
    assert list(ids) == [3, 7, 9]
    np.testing.assert_array_equal(sets[0], emb[[1, 3, 4]])
    np.testing.assert_array_equal(sets[2], emb[[5]])
    with pytest.raises(ValueError, match="ids must have shape"):
        split_by_identity(emb, np.zeros(5))
    sets = clustered(4, 3)
    a = within_set_pairs(sets)
    b = within_set_pairs([torch.from_numpy(s) for s in sets])
    assert np.array_equal(a.scores, b.scores)


# --------------------------------------------------------------------------- label noise


def noise_fixture(k=40, n=10):
    sets = clustered(k, n, dim=32, sigma=0.4, seed=11)
    pool = np.concatenate(clustered(k, 5, dim=32, sigma=0.4, seed=12))  # other images, own labels
    return sets, pool, np.repeat(np.arange(k), 5)


def test_contamination_replaces_exactly_round_pn_from_other_identities():
    sets = clustered(3, [5, 8, 10], dim=4)
    pool = np.concatenate(clustered(4, 6, dim=4, seed=9))
    pool_labels = np.repeat(np.arange(4), 6)
    for p, expected in [
        (0, [0, 0, 0]),
        (0.1, [1, 1, 1]),
        (0.25, [1, 2, 3]),
        (0.5, [3, 4, 5]),
        (1, [5, 8, 10]),
    ]:
        c = contaminate(sets, p, pool, pool_labels, rng=3)
        assert [int(m.sum()) for m in c.replaced] == expected  # round half up: .5 -> 1, 2.5 -> 3
        for i, (new, old, mask, src) in enumerate(zip(c.sets, sets, c.replaced, c.source, strict=True)):
            np.testing.assert_array_equal(new[~mask], old[~mask])
            assert (src[~mask] == i).all() and (src[mask] != i).all()
            for row, lab in zip(new[mask], src[mask], strict=True):  # a pool image of that identity
                assert np.isclose(pool[pool_labels == lab], row).all(1).any()
            assert len(np.unique(new[mask], axis=0)) == mask.sum()  # distinct replacements
        again = contaminate(sets, p, pool, pool_labels, rng=3)
        for x, y in zip(c.sets, again.sets, strict=True):
            assert np.array_equal(x, y)
    low = contaminate(sets, 0.25, pool, pool_labels, rng=3)
    high = contaminate(sets, 0.5, pool, pool_labels, rng=3)
    for lo, hi, a, b in zip(low.replaced, high.replaced, low.sets, high.sets, strict=True):
        assert (hi[lo]).all() and np.array_equal(a[lo], b[lo])  # nested noise levels


def test_contamination_errors():
    sets = clustered(2, 4, dim=4)
    pool, pool_labels = np.concatenate(sets), np.repeat([0, 1], 4)
    for p in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
            contaminate(sets, p, pool, pool_labels)
    with pytest.raises(ValueError, match="at least one other identity"):
        contaminate(sets[:1], 0.5, pool[:4], pool_labels[:4])
    with pytest.raises(ValueError, match="at least one other identity"):
        contaminate(sets, 0.5, pool, np.zeros(8, int))
    with pytest.raises(ValueError, match="pool_labels must have shape"):
        contaminate(sets, 0.5, pool, pool_labels[:3])
    with pytest.raises(ValueError, match="pool images have shape"):
        contaminate(sets, 0.5, pool[:, :2], pool_labels)
    with pytest.raises(ValueError, match="only 1"):
        contaminate(sets, 0.5, pool[3:5], pool_labels[3:5])


def test_tpr_does_not_increase_with_label_noise():
    sets, pool, pool_labels = noise_fixture()
    tprs = {t: [] for t in (1e-2, 1e-1)}
    for p in (0, 0.1, 0.25, 0.5):
        c = contaminate(sets, p, pool, pool_labels, rng=0)
        pairs = within_set_pairs(c.sets, rng=0)
        fpr, tpr, _ = roc_curve(pairs.scores, pairs.labels)
        for t in tprs:
            tprs[t].append(tpr_at_fpr(fpr, tpr, t))
    for t, v in tprs.items():
        assert (np.diff(v) <= 0).all(), (t, v)
        assert v[0] > 0.95 and v[-1] < 0.6, (t, v)


def test_equivalent_label_noise_known_answers():
    levels, tprs = [0, 0.1, 0.25, 0.5], [0.9, 0.8, 0.6, 0.3]
    r = equivalent_label_noise(levels, tprs, 0.72)  # 40% of the way from .8 at .1 to .6 at .25
    assert r.bound is None and r.value == pytest.approx(0.16) and r.format() == "0.16"
    assert equivalent_label_noise(levels, tprs, 0.6) == EquivalentNoise(0.25)
    assert equivalent_label_noise(levels, tprs, 0.9) == EquivalentNoise(0.0)
    below = equivalent_label_noise(levels, tprs, 0.95)
    assert below == EquivalentNoise(0.0, "below") and below.format() == "< 0"
    above = equivalent_label_noise(levels, tprs, 0.2)
    assert above == EquivalentNoise(0.5, "above") and above.format() == "> 0.5"
    # non-monotone measurements: isotonic fit [.9, .75, .75, .3], first crossing
    bumpy = [0.9, 0.7, 0.8, 0.3]
    assert equivalent_label_noise(levels, bumpy, 0.75).value == pytest.approx(0.1)
    assert equivalent_label_noise(levels, bumpy, 0.8).value == pytest.approx(0.1 * 2 / 3)
    assert equivalent_label_noise(levels, bumpy, 0.5).value == pytest.approx(0.25 + 0.25 * 0.25 / 0.45)
    with pytest.raises(ValueError, match="strictly increasing"):
        equivalent_label_noise([0, 0.1, 0.1], [0.9, 0.8, 0.7], 0.8)
    with pytest.raises(ValueError, match="at least 2"):
        equivalent_label_noise([0], [0.9], 0.8)
    with pytest.raises(ValueError, match="noisy_tprs must have the shape"):
        equivalent_label_noise([0, 0.1], [0.9], 0.8)


def test_equivalent_noise_of_an_independent_contaminated_curve_recovers_its_applied_level():
    """Calibrate on one contamination draw, invert the TPR of an independently contaminated
    second draw at nominal 0.25: sets of 10 get round(2.5) = 3 replacements, applied 0.3,
    and the inversion over the applied fractions finds 0.3 (the nominal 0.25 would not)."""
    sets, pool, pool_labels = noise_fixture()

    def tpr_of(p, seed):
        c = contaminate(sets, p, pool, pool_labels, rng=seed)
        pairs = within_set_pairs(c.sets, rng=seed)
        fpr, tpr, _ = roc_curve(pairs.scores, pairs.labels)
        return c.applied, tpr_at_fpr(fpr, tpr, 0.1)

    applied, measured = zip(*(tpr_of(p, 0) for p in (0, 0.1, 0.25, 0.5)), strict=True)
    assert applied == (0.0, 0.1, 0.3, 0.5)
    second_applied, second_tpr = tpr_of(0.25, 1)
    r = equivalent_label_noise(applied, measured, second_tpr)
    assert second_applied == 0.3 and second_tpr != measured[2]  # a different draw
    assert r.bound is None and r.value == pytest.approx(0.3, abs=0.04)


def test_applied_fraction_of_non_integer_pn():
    assert applied_fraction(0.1, 8) == 0.125 and applied_fraction(0.25, 8) == 0.25
    assert applied_fraction(0.25, 10) == 0.3  # round half up
    sets, pool, pool_labels = noise_fixture(k=5, n=8)
    assert contaminate(sets, 0.1, pool, pool_labels).applied == 0.125
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        applied_fraction(1.2, 8)
    with pytest.raises(ValueError, match="at least one image"):
        applied_fraction(0.1, 0)


def test_drawn_replacements_are_those_of_contaminate():
    sets, pool, pool_labels = noise_fixture(k=6, n=8)
    draws = draw_replacements([8] * 6, 0.5, pool_labels, rng=4)
    assert [len(x) for x in draws.positions] == [4] * 6 and draws.applied == 0.5
    rows = draws.drawn_rows  # load only these pool images
    assert len(rows) <= 6 * 4 < len(pool)
    local = apply_replacements(sets, draws.reindexed(rows), pool[rows], pool_labels[rows])
    with pytest.raises(ValueError, match="every drawn pool row"):
        draws.reindexed(rows[1:])
    full = contaminate(sets, 0.5, pool, pool_labels, rng=4)
    for a, b, sa, sb in zip(local.sets, full.sets, local.source, full.source, strict=True):
        assert np.array_equal(a, b) and np.array_equal(sa, sb)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_estimate_and_narrows_with_more_identities():
    widths = []
    for k in (10, 160):
        pairs = within_set_pairs(clustered(k, 6, sigma=2.0, seed=k), rng=0)
        fpr, tpr, _ = roc_curve(pairs.scores, pairs.labels)
        point = auc(fpr, tpr)
        lo, hi = bootstrap_ci(pairs.scores, pairs.labels, pairs.identities, auc, n_boot=300, rng=1)
        assert lo <= point <= hi
        widths.append(hi - lo)
    assert widths[1] < 0.6 * widths[0]


def test_bootstrap_is_seeded_and_covers_all_summary_statistics():
    pairs = within_set_pairs(clustered(15, 5, sigma=1.2), rng=0)
    stats = curve_statistics()
    a = bootstrap_cis(pairs.scores, pairs.labels, pairs.identities, stats, n_boot=100, rng=7)
    b = bootstrap_cis(pairs.scores, pairs.labels, pairs.identities, stats, n_boot=100, rng=7)
    assert a == b and set(a) == {"auc", *(f"tpr@{t:g}" for t in FPR_TARGETS), "eer"}
    s = summarize(pairs.scores, pairs.labels, pairs.identities)
    for name, value in s.as_dict().items():
        if name in a:
            assert a[name][0] <= a[name][1]
            if name != "tpr@0.001":  # unresolved at this size; the rest should cover the estimate
                assert a[name][0] <= value <= a[name][1], name


def test_bootstrap_errors():
    scores, labels = np.arange(4.0), np.array([1, 0, 1, 0])
    with pytest.raises(ValueError, match="at least two identities"):
        bootstrap_ci(scores, labels, np.zeros(4), auc)
    with pytest.raises(ValueError, match=r"identity must have shape \(4,\) or \(4, 2\)"):
        bootstrap_ci(scores, labels, np.zeros(3), auc)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(scores, labels, np.arange(4), auc, level=1.5)
    # fewer than MIN_PER_STRATUM identities: no interval, NaN bounds
    assert MIN_PER_STRATUM == 3
    assert all(np.isnan(bootstrap_ci(scores, labels, np.array([0, 1, 0, 1]), auc, n_boot=50)))
    # identity 0 holds all positives, 1 and 2 the negatives: replicates missing one are drawn again
    scores6, labels6 = np.arange(6.0), np.array([1, 0, 1, 0, 1, 0])
    lo, hi = bootstrap_ci(scores6, labels6, np.array([0, 1, 0, 2, 0, 1]), auc, n_boot=50)
    assert lo <= roc_auc(scores6, labels6) <= hi


def naive_bootstrap(pairs, stats, n_boot, rng):
    """The identity bootstrap by rebuilding the pairs of each resample: identities drawn with
    replacement (the same draws as ``bootstrap_cis``: one (n_boot, k) block); every copy of
    identity i brings its positives, every ordered pair of copies (u, v) of identities i != j
    brings the negatives (a of i, b of j), so a duplicated identity counts with multiplicity."""
    ids = np.unique(pairs.identities)
    picks = np.random.default_rng(rng).integers(0, len(ids), size=(n_boot, len(ids)))
    values = []
    for row in picks:
        drawn = ids[row]
        keep = [np.flatnonzero(pairs.labels & (pairs.identity_a == i)) for i in drawn]
        for u, v in itertools.permutations(range(len(drawn)), 2):
            if drawn[u] != drawn[v]:
                keep.append(np.flatnonzero((pairs.identity_a == drawn[u]) & (pairs.identity_b == drawn[v])))
        rows = np.concatenate(keep)
        assert 0 < pairs.labels[rows].sum() < len(rows)  # no replicate is discarded here
        fpr, tpr, _ = roc_curve(pairs.scores[rows], pairs.labels[rows])
        values.append([stats[name](fpr, tpr) for name in stats])
    q = np.quantile(np.array(values), [0.025, 0.975], axis=0)
    return {name: (q[0, j], q[1, j]) for j, name in enumerate(stats)}


@pytest.mark.parametrize("kind", ["within", "cross"])
def test_bootstrap_equals_naive_resampling_of_identities(kind):
    sets = clustered(6, [3, 2, 4, 3, 2, 3], dim=8, sigma=2.0, seed=21)
    if kind == "within":
        pairs = within_set_pairs(sets, neg_per_pos=None)
    else:
        pairs = cross_set_pairs(clustered(6, 2, dim=8, sigma=2.0, seed=22), sets, neg_per_pos=None)
    stats = {"auc": auc, "tpr@0.1": lambda f, t: tpr_at_fpr(f, t, 0.1), "eer": eer}
    ours = bootstrap_cis(pairs.scores, pairs.labels, pairs.identities, stats, n_boot=200, rng=5)
    naive = naive_bootstrap(pairs, stats, 200, 5)
    for name in stats:
        np.testing.assert_allclose(ours[name], naive[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_paired_replicates_draw_the_same_identities_for_every_scoring():
    """Three scorings of the same pairs bootstrapped together: each scoring's replicates are
    the ones it gets alone with the same seed (the identities are drawn once per replicate),
    and their quantiles are bootstrap_cis's."""
    sets = clustered(6, [3, 2, 4, 3, 2, 3], dim=8, sigma=2.0, seed=21)
    pairs = within_set_pairs(sets, neg_per_pos=None)
    rng = np.random.default_rng(3)
    scorings = [pairs.scores, pairs.scores + rng.normal(0, 0.3, len(pairs.scores)), -pairs.scores]
    stats = {"auc": auc, "tpr@0.1": lambda f, t: tpr_at_fpr(f, t, 0.1)}
    paired = bootstrap_replicates(scorings, pairs.labels, pairs.identities, stats, n_boot=64, rng=9)
    assert paired.shape == (64, 3, 2)
    for s, scores in enumerate(scorings):
        alone = bootstrap_replicates([scores], pairs.labels, pairs.identities, stats, n_boot=64, rng=9)
        np.testing.assert_array_equal(paired[:, s], alone[:, 0])
        cis = bootstrap_cis(scores, pairs.labels, pairs.identities, stats, n_boot=64, rng=9)
        np.testing.assert_allclose(cis["auc"], np.quantile(alone[:, 0, 0], [0.025, 0.975]))
    two = [0.9, 0.1, 0.8, 0.2]  # two identities: fewer than MIN_PER_STRATUM, no replicates
    assert bootstrap_replicates([two], [1, 0, 1, 0], [[0, 0], [0, 1], [1, 1], [1, 0]], stats) is None
    with pytest.raises(ValueError, match="score_sets is empty"):
        bootstrap_replicates([], pairs.labels, pairs.identities, stats)
