"""Mesh metrics against naive references, closed forms on analytic shapes, and edge cases."""

import numpy as np
import pytest
import trimesh
from sklearn.metrics import jaccard_score

from evaluation.geometry import (
    BEST,
    WORST,
    SurfaceSample,
    chamfer,
    compare_meshes,
    occupancy_iou,
    sample_volume,
    volume_iou,
)


def sphere(r, subdivisions=5):
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=r)


def cube(side=1.0, shift=(0.0, 0.0, 0.0)):
    m = trimesh.creation.box(extents=(side, side, side))
    m.apply_translation(shift)
    return m


def naive_chamfer(a, b):
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return d.min(1), d.min(0)


def test_chamfer_equals_naive_loop():
    rng = np.random.default_rng(0)
    a = SurfaceSample(rng.normal(size=(300, 3)), np.tile([0, 0, 1.0], (300, 1)))
    b = SurfaceSample(rng.normal(size=(200, 3)), np.tile([0, 1.0, 0], (200, 1)))
    dab, dba = naive_chamfer(a.points, b.points)
    out = chamfer(a, b)
    assert out["cd"] == pytest.approx((dab**2).mean() + (dba**2).mean(), rel=1e-9)
    assert out["chamfer_l1"] == pytest.approx(0.5 * (dab.mean() + dba.mean()), rel=1e-9)
    assert out["normal_consistency"] == pytest.approx(0.0, abs=1e-12)  # orthogonal normals


def test_fscore_hand_worked():
    pts = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    n = np.tile([0, 0, 1.0], (2, 1))
    # a's second point is 0.005 from b's, its first is 0.5 away: precision 1/2; recall 1/1.
    a = SurfaceSample(np.array([[0.0, 0.5, 0], [1.0, 0.005, 0]]), n)
    b = SurfaceSample(pts[1:], n[1:])
    out = chamfer(a, b)
    assert out["f_score"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert out["normal_consistency"] == pytest.approx(1.0)


def test_concentric_spheres_closed_form():
    r1, r2 = 0.3, 0.4
    rng = np.random.default_rng(1)
    out = compare_meshes(sphere(r1), sphere(r2), rng, n=4096)
    # Every point of one sphere is |r1 - r2| from the other: CD = 2 (r1-r2)^2, Chamfer-L1 = |r1-r2|.
    assert out["cd"] == pytest.approx(2 * (r2 - r1) ** 2, rel=0.03)
    assert out["chamfer_l1"] == pytest.approx(r2 - r1, rel=0.02)
    assert out["normal_consistency"] > 0.99
    assert out["f_score"] == 0.0  # 0.1 apart, tau = 0.01
    # Volume overlap: all of the small ball is inside the large one; (r1/r2)^3 the other way.
    assert out["iou"] == pytest.approx(0.5 * (1 + (r1 / r2) ** 3), abs=0.02)


def test_cube_and_shifted_cube_iou():
    s = 0.25
    rng = np.random.default_rng(2)
    a, b = cube(1.0), cube(1.0, (s, 0, 0))
    # Each cube has a fraction (1 - s) of its volume inside the other.
    assert volume_iou(a, b, rng, n=8000) == pytest.approx(1 - s, abs=0.02)
    pts = rng.uniform(-0.55, 0.55, (50_000, 3)) * 1.6
    ia, ib = a.contains(pts), b.contains(pts)
    assert occupancy_iou(ia, ib) == pytest.approx((1 - s) / (1 + s), abs=0.02)


def test_identical_meshes():
    rng = np.random.default_rng(3)
    m = cube(0.8)
    out = compare_meshes(m, m, rng)
    # Independent samples of one cube: nearest neighbours near an edge may sit on the
    # adjacent face, so normal consistency is high but below 1.
    assert out["iou"] == 1.0 and out["normal_consistency"] > 0.9
    # Independent 2048-point samples of one surface are not identical: CD has a floor of
    # about 0.3 x the squared point spacing per direction (~1e-3 here).
    assert out["cd"] < 3e-3 and out["f_score"] > 0.95  # F-score on 100k points
    same = SurfaceSample(np.random.default_rng(0).normal(size=(50, 3)), np.tile([1.0, 0, 0], (50, 1)))
    assert chamfer(same, same)["cd"] == 0.0 and chamfer(same, same)["f_score"] == 1.0


def test_empty_meshes_get_documented_values():
    rng = np.random.default_rng(4)
    empty = trimesh.Trimesh()
    assert compare_meshes(empty, cube(), rng) == WORST
    assert compare_meshes(cube(), empty, rng) == WORST
    assert compare_meshes(empty, empty, rng) == BEST
    assert all(np.isfinite(v) for v in WORST.values())
    assert volume_iou(empty, cube(), rng) == 0.0


def test_occupancy_iou_matches_sklearn_and_edges():
    rng = np.random.default_rng(5)
    a, b = rng.random(1000) < 0.3, rng.random(1000) < 0.4
    assert occupancy_iou(a, b) == pytest.approx(jaccard_score(b, a))
    assert occupancy_iou(np.zeros(5, bool), np.zeros(5, bool)) == 1.0
    assert occupancy_iou(np.ones(5, bool), np.zeros(5, bool)) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        occupancy_iou(np.zeros(3, bool), np.zeros(4, bool))


def test_volume_samples_are_inside_and_seeded():
    m = sphere(0.4, 3)
    p1 = sample_volume(m, np.random.default_rng(0), 500)
    p2 = sample_volume(m, np.random.default_rng(0), 500)
    assert p1.shape == (500, 3) and np.array_equal(p1, p2)
    assert (np.linalg.norm(p1, axis=1) <= 0.4 + 1e-9).all()
