"""The real side of the ShapeNet benchmark: Table 2 from network occupancies, batched
extraction, volume samples in grid cells, and the real-side cache's key."""

import numpy as np
import pytest
import torch
import trimesh

from benchmarks.shapenet_real import (
    RealSettings,
    RealSideCache,
    cache_key,
    compute_real_side,
    table2_rows,
)
from evaluation.geometry import (
    ExtractionGrid,
    VolumeSamplingError,
    mesh_occupancy,
    occupancy_iou,
    sample_volume,
)
from occnet_multiview.extract import extract_mesh, extract_meshes, mesh_from_grid, occupancy_grid
from sdn.data.occnet_files import Points

TRUE_RADIUS = 0.3


class SphereNet(torch.nn.Module):
    """An analytic stand-in for the OccNet: a view-set of V views encodes to the radius
    0.1 + 0.05 V, and the decoder's logits are (radius - |p|) / 0.01."""

    resolution = 8

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def encode(self, images):  # (1, V, 3, H, W) -> (1, 1)
        return torch.full((1, 1), 0.1 + 0.05 * images.shape[1])

    def decode(self, p, c):  # (B, N, 3), (B, 1) -> (B, N)
        return (c - p.norm(dim=-1)) / 0.01


def _points(n=100_000, seed=0) -> Points:
    pts = np.random.default_rng(seed).uniform(-0.55, 0.55, (n, 3)).astype(np.float32)
    return Points(pts, np.linalg.norm(pts, axis=1) < TRUE_RADIUS, np.zeros(3, np.float32), 1.0)


def _settings(**kw) -> RealSettings:
    base = {"seed": 0, "threshold": 0.5, "resolution0": 16, "upsampling_steps": 2, "real_views": 4}
    base.update(table2_views=(1, 2, 4), dense_points=5000)
    return RealSettings(**{**base, **kw})


def test_table2_network_occupancies_equal_the_mesh_route_on_an_analytic_field():
    """Table 2 reads the thresholded probabilities at points.npz (OccNet's definition); the old
    route thresholded a marching-cubes mesh's containment. On a sphere field at 64^3 the two
    agree to 0.01 IoU, and the network route matches the analytic IoU (r_v / 0.3)^3."""
    net, points, cfg = SphereNet(), _points(), _settings()
    real = torch.rand(4, 3, 8, 8)
    rows = table2_rows(net, real, points, cfg)
    assert [r["k"] for r in rows] == [1, 2, 4] and all(r["mesh_status"] == "ok" for r in rows)
    for row, v in zip(rows, cfg.table2_views, strict=True):
        mesh = extract_mesh(net, real[:v], 0.5, cfg.resolution0, cfg.upsampling_steps)
        via_mesh = occupancy_iou(mesh_occupancy(mesh, points.points), points.occupancies)
        assert abs(row["occnet_iou"] - via_mesh) < 0.01, (v, row["occnet_iou"], via_mesh)
        analytic = min(0.1 + 0.05 * v, TRUE_RADIUS) ** 3 / TRUE_RADIUS**3
        assert row["occnet_iou"] == pytest.approx(analytic, abs=0.02)


def test_batched_extraction_equals_one_set_at_a_time():
    net, real = SphereNet(), torch.rand(4, 3, 8, 8)
    sets = [real[:1], real[:4], real[:2]]
    batched = extract_meshes(net, sets, 0.5, 16, 2)
    for images, (mesh, grid) in zip(sets, batched, strict=True):
        alone = extract_mesh(net, images, 0.5, 16, 2)
        np.testing.assert_array_equal(mesh.vertices, alone.vertices)
        np.testing.assert_array_equal(mesh.faces, alone.faces)
        assert grid.shape == (65, 65, 65)


def test_volume_samples_in_grid_cells_are_uniform_inside():
    """Grid-cell sampling gives points inside the mesh, uniform in its volume (the radial
    distribution of a ball: P[|x| < r/2] = 1/8), as bounding-box rejection does."""
    fn = lambda p: 1 / (1 + np.exp((np.linalg.norm(p, axis=1) - 0.3) / 0.01))  # noqa: E731
    values = occupancy_grid(fn, 0.5, 16, 2)
    mesh = mesh_from_grid(values, 0.5)
    grid = ExtractionGrid(values, 0.5)
    pts = sample_volume(mesh, np.random.default_rng(0), 20_000, grid=grid)
    assert pts.shape == (20_000, 3) and mesh_occupancy(mesh, pts).all()
    boxed = sample_volume(mesh, np.random.default_rng(1), 20_000)
    r_max = np.linalg.norm(mesh.vertices, axis=1).max()
    for sample in (pts, boxed):
        inner = (np.linalg.norm(sample, axis=1) < r_max / 2).mean()
        assert inner == pytest.approx(1 / 8, abs=0.01)
    # Seeded: the same generator state gives the same points.
    again = sample_volume(mesh, np.random.default_rng(0), 20_000, grid=grid)
    np.testing.assert_array_equal(pts, again)


def test_thin_diagonal_plate_needs_no_rejection_rounds_in_grid_cells():
    """A thin plate across the box's diagonal fills < 1% of its bounding box: bounding-box
    rejection with a 40k budget fails, the grid cells find it within that budget."""
    normal = np.ones(3) / np.sqrt(3)
    fn = lambda p: 1 / (1 + np.exp((np.abs(p @ normal) - 0.012) / 0.002))  # noqa: E731
    values = occupancy_grid(fn, 0.5, 32, 1, dense=True)
    mesh = mesh_from_grid(values, 0.5)
    assert mesh.volume / np.prod(mesh.extents) < 0.05
    with pytest.raises(VolumeSamplingError, match="bounding box"):
        sample_volume(mesh, np.random.default_rng(0), 2048, max_candidates=40_000)
    pts = sample_volume(
        mesh, np.random.default_rng(0), 2048, max_candidates=40_000, grid=ExtractionGrid(values, 0.5)
    )
    assert mesh_occupancy(mesh, pts).all()


def _side():
    real = torch.rand(4, 3, 8, 8)
    truth = trimesh.creation.icosphere(3, TRUE_RADIUS)
    return compute_real_side(SphereNet(), real, _points(20_000), truth, None, "02691156/abc", _settings())


def test_real_side_cache_round_trip_is_exact_and_a_changed_key_misses(tmp_path):
    side = _side()
    cache = RealSideCache(tmp_path, cache_key("a" * 64, _settings()))
    assert cache.load("02691156/abc", "d1") is None
    cache.save("02691156/abc", "d1", side)
    back = cache.load("02691156/abc", "d1")
    assert back.rows == side.rows and back.gt_source == side.gt_source == "mesh"
    for mine, theirs in ((side.real, back.real), (side.truth, back.truth)):
        np.testing.assert_array_equal(mine.mesh.vertices, theirs.mesh.vertices)
        np.testing.assert_array_equal(mine.mesh.faces, theirs.mesh.faces)
        for name in ("surface", "dense"):
            np.testing.assert_array_equal(getattr(mine, name).points, getattr(theirs, name).points)
            np.testing.assert_array_equal(getattr(mine, name).normals, getattr(theirs, name).normals)
        np.testing.assert_array_equal(mine.volume, theirs.volume)
    # Every part of the key: another object content digest, OccNet, or setting misses.
    assert cache.load("02691156/abc", "d2") is None
    for other in (
        cache_key("b" * 64, _settings()),
        cache_key("a" * 64, _settings(threshold=0.4)),
        cache_key("a" * 64, _settings(seed=1)),
        cache_key("a" * 64, _settings(resolution0=32)),
        cache_key("a" * 64, _settings(upsampling_steps=1)),
        cache_key("a" * 64, _settings(real_views=8)),
        cache_key("a" * 64, _settings(table2_views=(1, 4))),
        cache_key("a" * 64, _settings(dense_points=100)),
    ):
        assert RealSideCache(tmp_path, other).load("02691156/abc", "d1") is None


def test_a_code_change_changes_the_cache_key(monkeypatch):
    import benchmarks.shapenet_real as real

    before = cache_key("a" * 64, _settings())
    monkeypatch.setattr(real, "code_digest", lambda: "0" * 16)
    assert cache_key("a" * 64, _settings()) != before
