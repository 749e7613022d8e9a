"""Nearest neighbours: the threaded KD-tree is identical to the single-threaded one, the torch
kernel agrees with the KD-tree, and containment refuses to run without Embree."""

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from evaluation.geometry import (
    SurfaceSample,
    chamfer,
    mesh_occupancy,
    nearest_neighbours,
    nearest_neighbours_torch,
    require_embree,
)


def point_sets():
    """(queries, points) pairs: random normal clouds, and samples of two concentric spheres
    (the benchmark's shape of problem: every query far from every point)."""
    rng = np.random.default_rng(0)
    spheres = [
        trimesh.sample.sample_surface(trimesh.creation.icosphere(5, r), 20_000, seed=rng)[0]
        for r in (0.4, 0.35)
    ]
    return [(rng.normal(size=(5000, 3)), rng.normal(size=(3000, 3))), tuple(spheres)]


@pytest.mark.parametrize("workers", [None, 2, -1])
def test_threaded_kdtree_identical_to_single_thread(workers):
    for queries, points in point_sets():
        d1, i1 = cKDTree(points).query(queries)
        d, i = nearest_neighbours(queries, points, workers)
        assert np.array_equal(d, d1) and np.array_equal(i, i1)


@pytest.mark.parametrize("queries_per_chunk", [None, 7])  # None: the default, one chunk here
def test_torch_kernel_matches_kdtree(queries_per_chunk):
    for queries, points in point_sets():
        chunk_bytes = {"max_chunk_bytes": 8 * len(points) * queries_per_chunk} if queries_per_chunk else {}
        d_kd, i_kd = nearest_neighbours(queries, points, 1)
        d, i = nearest_neighbours_torch(queries, points, "cpu", **chunk_bytes)
        assert d.dtype == np.float64 and i.dtype == np.int64
        np.testing.assert_allclose(d, d_kd, rtol=1e-6, atol=0)
        assert np.array_equal(i, i_kd)


def test_torch_kernel_ties_differ_only_in_index():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(500, 3))
    points = np.concatenate([points, points[:100]])  # exact ties: every one of the first 100 twice
    queries = np.concatenate([points[:50] + 1e-3, rng.normal(size=(200, 3))])
    d_kd, i_kd = nearest_neighbours(queries, points, 1)
    d, i = nearest_neighbours_torch(queries, points, "cpu")
    np.testing.assert_allclose(d, d_kd, rtol=1e-6, atol=0)
    differ = i != i_kd
    assert np.array_equal(points[i[differ]], points[i_kd[differ]])  # the same point, another copy


def test_torch_kernel_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"points must be an \(n, 3\) array"):
        nearest_neighbours_torch(np.zeros((4, 3)), np.zeros((4, 2)), "cpu")
    with pytest.raises(ValueError, match="no points"):
        nearest_neighbours_torch(np.zeros((4, 3)), np.zeros((0, 3)), "cpu")


def test_chamfer_uses_the_torch_kernel_only_on_cuda():
    a = SurfaceSample(np.zeros((3, 3)), np.tile([0, 0, 1.0], (3, 1)))
    with pytest.raises(ValueError, match="nn_device must name an available CUDA device"):
        chamfer(a, a, nn_device="cpu")
    if torch.cuda.is_available():
        queries, points = point_sets()[1]
        a = SurfaceSample(queries, np.tile([0, 0, 1.0], (len(queries), 1)))
        b = SurfaceSample(points, np.tile([0, 0, 1.0], (len(points), 1)))
        assert chamfer(a, b, nn_device="cuda") == pytest.approx(chamfer(a, b), rel=1e-6)


def test_containment_runs_on_embree():
    require_embree(trimesh.creation.icosphere(3, 0.4))  # this environment has embreex


def test_containment_without_embree_fails_loudly(monkeypatch):
    monkeypatch.setattr(trimesh.ray, "has_embree", False)  # as when embreex fails to import
    mesh = trimesh.creation.icosphere(3, 0.4)
    with pytest.raises(RuntimeError, match=r"embreex package is not installed.*pip install embreex"):
        mesh_occupancy(mesh, np.zeros((2, 3)))


def test_containment_of_a_mesh_built_without_embree_fails_loudly():
    sphere = trimesh.creation.icosphere(3, 0.4)
    mesh = trimesh.Trimesh(sphere.vertices, sphere.faces, use_embree=False)
    with pytest.raises(RuntimeError, match="use_embree=False"):
        mesh_occupancy(mesh, np.zeros((2, 3)))
    assert not mesh_occupancy(trimesh.Trimesh(use_embree=False), np.zeros((2, 3))).any()  # empty: no rays
