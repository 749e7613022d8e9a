"""Table 1(a)/(b) semantics with a stub set model: which views are encoded, how many are
generated, which of them the mesh is built from."""

import numpy as np
import pytest
import torch

import benchmarks.shapenet as bench
import benchmarks.shapenet_real as shapenet_real
from benchmarks.shapenet import run_shapenet_benchmark
from occnet_multiview.extract import mesh_from_grid
from sdn.seeding import STREAM_RECON, set_seed
from tests.test_shapenet_benchmark import tiny_bench_config, tiny_checkpoints  # noqa: F401


class StubSetModel:
    """A set model whose generated image (3, H, W) for slot j of a set encoded from n views is
    constant: channel 0 = n / 64, channel 1 = j / 64, channel 2 = 1; records every call."""

    def __init__(self, resolution: int):
        self.resolution = resolution
        self.calls = []  # (input sets (1, n, 3, H, W), n_out, seed)

    def _images(self, n_in: int, n_out: int) -> torch.Tensor:
        x = torch.ones(n_out, 3, self.resolution, self.resolution)
        x[:, 0] = n_in / 64
        x[:, 1] = (torch.arange(n_out, dtype=torch.float32) / 64)[:, None, None]
        return x

    def reconstruct(self, sets: torch.Tensor, n_out: int, seed=0) -> torch.Tensor:
        """sets (B, n, 3, H, W) -> (B, n_out, 3, H, W)."""
        self.calls.append((sets.clone(), n_out, list(seed)))
        return torch.stack([self._images(sets.shape[1], n_out) for _ in range(sets.shape[0])])

    def sample(self, num_sets: int, set_size: int, prior: str = "learned", seed=0) -> torch.Tensor:
        """-> (num_sets, set_size, 3, H, W)."""
        return torch.stack([self._images(0, set_size) for _ in range(num_sets)])


def _decode(images: torch.Tensor) -> tuple[int, list[int]] | None:
    """(n_in, slots) of a stack of stub images (V, 3, H, W); None for real views."""
    if not bool((images[:, 2] == 1).all() and (images[:, 0] == images[:1, 0]).all()):
        return None
    return round(float(images[0, 0, 0, 0]) * 64), [round(float(v) * 64) for v in images[:, 1, 0, 0]]


def test_table1_semantics_with_a_stub_model(tiny_shapes, tiny_checkpoints, tmp_path, monkeypatch):  # noqa: F811
    _, occ_ckpt, cache = tiny_checkpoints
    meshed = []  # the image stacks the OccNet is asked to mesh
    axis = np.linspace(-0.55, 0.55, 17)
    grid = (np.abs(np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))).max(0) < 0.25).astype(np.float32)

    def fake_extract(occ, image_sets, threshold, *args, **kwargs):
        meshed.extend(images.clone() for images in image_sets)
        return [(mesh_from_grid(grid, threshold), grid) for _ in image_sets]  # a box of side ~0.5

    monkeypatch.setattr(bench, "extract_meshes", fake_extract)
    monkeypatch.setattr(shapenet_real, "extract_meshes", fake_extract)
    cfg = tiny_bench_config(max_objects=1)  # real_views 4, recon_views (1, 2, 4), input_views (1, 4)
    resolution = bench.OccupancyNetwork.from_checkpoint(occ_ckpt).resolution
    model = StubSetModel(resolution)
    run_shapenet_benchmark(
        model, occ_ckpt, tiny_shapes, tmp_path / "r", cfg, cache_dir=cache, progress=False, use_cache=False
    )
    ds = bench.open_split(tiny_shapes, cfg, resolution, cache, progress=False)
    real = ds[0]["images"]  # (4, 3, H, W): the evaluated object's real views
    recon_seed = [set_seed(cfg.seed, STREAM_RECON, bench.object_key(ds, 0))]
    evaluated = [c for c in model.calls if c[2] == recon_seed]
    # Table 1(a) encodes all 4 real views; 1(b) the first k; every call generates real_views.
    assert sorted(c[0].shape[1] for c in evaluated) == [1, 4]  # 1(b) k=4 reuses 1(a)'s reconstruction
    for sets, n_out, _ in evaluated:
        k = sets.shape[1]
        assert n_out == cfg.real_views and torch.equal(sets[0], real[:k])
    decoded = [d for d in map(_decode, meshed) if d is not None]
    for k in cfg.recon_views:  # 1(a): the mesh from the first k of the 4 generated views
        assert (cfg.real_views, list(range(k))) in decoded
    for k in cfg.input_views:  # 1(b): the mesh from all 4 views generated from k real views
        assert (k, list(range(cfg.real_views))) in decoded
    assert any(torch.equal(m, real) for m in meshed)  # M: the mesh of the real views


def test_set_model_object_needs_one_worker(tiny_shapes, tiny_checkpoints, tmp_path):  # noqa: F811
    _, occ_ckpt, cache = tiny_checkpoints
    with pytest.raises(
        ValueError, match="a set model object is evaluated in this process only: workers must be 1"
    ):
        run_shapenet_benchmark(
            StubSetModel(16), occ_ckpt, tiny_shapes, tmp_path / "r", tiny_bench_config(workers=2),
            cache_dir=cache, progress=False,
        )  # fmt: skip
