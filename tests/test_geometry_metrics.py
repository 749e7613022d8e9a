"""Mesh metrics against naive references, closed forms on analytic shapes, and edge cases."""

import numpy as np
import pytest
import trimesh
from sklearn.metrics import jaccard_score

from evaluation.geometry import (
    BEST,
    WORST,
    SurfaceSample,
    VolumeSamplingError,
    chamfer,
    compare_meshes,
    compare_to_point_files,
    mesh_occupancy,
    occupancy_iou,
    sample_volume,
    volume_iou,
    volume_overlap,
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


def thin_rod(width=0.015, length=1.2):
    """A square rod along the body diagonal: it fills ~0.075% of its bounding box."""
    m = trimesh.creation.box(extents=(length, width, width))
    m.apply_transform(trimesh.geometry.align_vectors([1.0, 0, 0], np.ones(3) / np.sqrt(3)))
    return m


def test_thin_mesh_gets_a_volume_iou():
    rod = thin_rod()
    assert rod.volume / np.prod(rod.extents) < 1e-3
    # 256 points need ~340k candidates at this fill: beyond the former fixed budget of 200 x 1024.
    assert volume_iou(rod, rod, np.random.default_rng(0), n=256) == 1.0
    pts = sample_volume(rod, np.random.default_rng(1), 256)
    assert pts.shape == (256, 3) and rod.contains(pts).all()


def test_mesh_without_volume_raises_volume_sampling_error():
    tetra = trimesh.convex.convex_hull(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0.3, 0.3, 1.0]]))
    flat = trimesh.Trimesh(tetra.vertices * [1, 1, 0], tetra.faces, process=False)  # apex in the base
    assert flat.is_watertight
    with pytest.raises(VolumeSamplingError, match="encloses no volume"):
        sample_volume(flat, np.random.default_rng(0))
    with pytest.raises(VolumeSamplingError, match="found only 0 of 64 points"):
        sample_volume(thin_rod(width=1e-4), np.random.default_rng(0), 64, max_candidates=5000)


def holed_cube():
    """The unit cube [-0.5, 0.5]^3 without its top face (z = 0.5): not watertight."""
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    keep = ~np.isclose(box.triangles_center[:, 2], 0.5)
    return trimesh.Trimesh(box.vertices, box.faces[keep], process=False)


def test_containment_of_a_mesh_with_a_hole():
    mesh = holed_cube()
    assert not mesh.is_watertight
    rng = np.random.default_rng(6)
    pts = rng.uniform(-0.8, 0.8, (20_000, 3))
    truth = (np.abs(pts) < 0.5).all(axis=1)
    assert (mesh_occupancy(mesh, pts) == truth).mean() > 0.99  # one ray test alone gets ~40% wrong
    assert volume_iou(mesh, cube(), rng, n=1000) > 0.98


def test_point_files_ground_truth_closed_form():
    r1, r2 = 0.3, 0.4
    rng = np.random.default_rng(7)
    gt = sphere(r2)
    pts, face = trimesh.sample.sample_surface(gt, 30_000, seed=rng)
    surface = SurfaceSample(pts, gt.face_normals[face])
    box = rng.uniform(-0.55, 0.55, (100_000, 3))
    occ = np.linalg.norm(box, axis=1) < r2
    out = compare_to_point_files(sphere(r1), surface, box, occ, rng, n=2048, n_dense=20_000)
    assert out["cd"] == pytest.approx(2 * (r2 - r1) ** 2, rel=0.05)
    assert out["chamfer_l1"] == pytest.approx(r2 - r1, rel=0.03)
    assert out["iou"] == pytest.approx(0.5 * (1 + (r1 / r2) ** 3), abs=0.02)  # the volume overlap
    assert out["occnet_iou"] == pytest.approx((r1 / r2) ** 3, abs=0.02)
    empty = compare_to_point_files(trimesh.Trimesh(), surface, box, occ, rng)
    assert empty == {**WORST, "occnet_iou": 0.0}


def test_volume_overlap_hand_worked():
    a = np.array([1, 1, 1, 1, 0, 0], bool)
    b = np.array([1, 1, 0, 0, 1, 0], bool)
    assert volume_overlap(a, b) == pytest.approx(0.5 * (2 / 3 + 2 / 4))
    assert volume_overlap(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert volume_overlap(a, np.zeros(6, bool)) == 0.0
