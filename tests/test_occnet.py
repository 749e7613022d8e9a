"""The multi-view OccNet: pooling, extraction, and training smoke tests."""

import numpy as np
import pytest
import torch

from evaluation.geometry import compare_meshes
from occnet_multiview.config import occnet_preset
from occnet_multiview.extract import mesh_from_grid, occupancy_grid
from occnet_multiview.model import OccupancyNetwork


def torus_occupancy(points):
    """A torus (R = 0.3, r = 0.08) as a soft occupancy in (0, 1)."""
    q = np.sqrt(points[:, 0] ** 2 + points[:, 2] ** 2) - 0.3
    d = np.sqrt(q**2 + points[:, 1] ** 2) - 0.08
    return 1.0 / (1.0 + np.exp(d / 0.01))


def test_hierarchical_equals_dense_on_an_analytic_shape():
    calls = {"n": 0}

    def counted(p):
        calls["n"] += len(p)
        return torus_occupancy(p)

    hier = occupancy_grid(counted, threshold=0.5, resolution0=16, upsampling_steps=2)
    evaluated = calls["n"]
    dense = occupancy_grid(torus_occupancy, threshold=0.5, resolution0=16, upsampling_steps=2, dense=True)
    assert hier.shape == dense.shape == (65, 65, 65)
    assert evaluated < 0.5 * 65**3  # the refinement saves work
    m_h, m_d = mesh_from_grid(hier, 0.5), mesh_from_grid(dense, 0.5)
    assert m_h.is_watertight and m_d.is_watertight
    assert abs(m_h.volume - m_d.volume) / m_d.volume < 0.01
    analytic = 2 * np.pi**2 * 0.3 * 0.08**2
    assert abs(m_d.volume - analytic) / analytic < 0.05
    out = compare_meshes(m_h, m_d, np.random.default_rng(0), n_dense=20_000)
    assert out["iou"] > 0.98 and out["chamfer_l1"] < 0.005


def test_empty_and_full_predictions_give_empty_meshes():
    assert len(mesh_from_grid(np.zeros((9, 9, 9)), 0.2).faces) == 0
    assert len(mesh_from_grid(np.ones((9, 9, 9)) * 0.1, 0.2).faces) == 0


def test_multiview_pooling_is_permutation_invariant_and_any_v():
    torch.manual_seed(0)
    model = OccupancyNetwork(occnet_preset("tiny")).eval()
    imgs = torch.rand(2, 5, 3, 16, 16)
    c = model.encode(imgs)
    torch.testing.assert_close(model.encode(imgs[:, torch.randperm(5)]), c, atol=1e-5, rtol=1e-5)
    assert model.encode(imgs[:, :1]).shape == (2, 32)
    pts = torch.rand(2, 100, 3) - 0.5
    assert model(imgs, pts).shape == (2, 100)
    with pytest.raises(ValueError, match=r"images must be \(B, V, 3, 16, 16\)"):
        model.encode(torch.rand(2, 3, 16, 16))


def test_occnet_trains_resumes_and_keeps_the_best(tiny_shapes, tmp_path):
    from occnet_multiview.trainer import train_occnet
    from sdn.checkpoint import load_checkpoint
    from sdn.config import apply_overrides

    cfg = apply_overrides(
        occnet_preset("tiny"),
        [
            "train.steps=6",
            "train.eval_every=3",
            "train.checkpoint_every=3",
            "train.log_every=1",
            "train.precision=fp32",
        ],
    )
    half = apply_overrides(cfg, ["train.steps=3"])
    train_occnet(tiny_shapes, cfg, tmp_path / "full", progress=False, cache_dir=tmp_path / "c")
    train_occnet(tiny_shapes, half, tmp_path / "half", progress=False, cache_dir=tmp_path / "c")
    record = train_occnet(
        tiny_shapes, cfg, tmp_path / "half", resume=True, progress=False, cache_dir=tmp_path / "c"
    )
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt", "occnet")["model"]
    b = load_checkpoint(tmp_path / "half" / "checkpoint.pt", "occnet")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    best = load_checkpoint(tmp_path / "half" / "best.pt", "occnet")
    assert best["threshold"] in cfg.train.thresholds and best["val_iou"] == record["best"]["best_iou"]
    model = OccupancyNetwork.from_checkpoint(tmp_path / "half" / "best.pt")
    assert model.threshold == best["threshold"]
    with pytest.raises(ValueError, match="kind is 'occnet', expected 'sdn'"):
        from sdn.model import SDN

        SDN.from_checkpoint(tmp_path / "half" / "best.pt")
    # A resume may lower the learning rate (a manual step decay); the change is recorded.
    decayed = apply_overrides(cfg, ["train.steps=7", "train.lr=1e-5"])
    record = train_occnet(
        tiny_shapes, decayed, tmp_path / "half", resume=True, progress=False, cache_dir=tmp_path / "c"
    )
    assert record["config_changes"] == [
        {"step": 3, "train.steps": [3, 6]},
        {"step": 6, "train.lr": [cfg.train.lr, 1e-5], "train.steps": [6, 7]},
    ]
    ckpt = load_checkpoint(tmp_path / "half" / "checkpoint.pt", "occnet")
    assert ckpt["optim"]["param_groups"][0]["lr"] == 1e-5 and ckpt["step"] == 7
    # Exporting best.pt describes best.pt's own evaluation, not the run's last one.
    from benchmarks.manifest import export_with_manifest

    best_step = load_checkpoint(tmp_path / "half" / "best.pt", "occnet")["step"]
    manifest = export_with_manifest(tmp_path / "half" / "best.pt", tmp_path / "w.pt")
    assert manifest["held_out"]["step"] == best_step == record["best"]["step"]
    assert manifest["config_changes"] == record["config_changes"]


def _ball_dataset(root):
    """Two training objects in the OccNet layout: balls of radius 0.2 and 0.4, each with
    four distinctly coloured views, and one val/test ball."""
    from PIL import Image

    rng = np.random.default_rng(0)
    cat = root / "04379243"
    lists = {"train": [], "val": [], "test": []}
    for split, oid, r, col in [
        ("train", "small", 0.2, (200, 50, 50)),
        ("train", "big", 0.4, (50, 50, 200)),
        ("val", "v", 0.3, (50, 200, 50)),
        ("test", "t", 0.3, (50, 200, 50)),
    ]:
        obj = cat / oid / "img_choy2016"
        obj.mkdir(parents=True)
        for i in range(4):
            a = np.full((32, 32, 3), 255, np.uint8)
            a[8:24, 8:24] = col
            a[8 + i : 12 + i, 8:12] = 0
            Image.fromarray(a).save(obj / f"{i:03d}.png")
        p = rng.uniform(-0.55, 0.55, (100_000, 3)).astype(np.float16)
        occ = np.linalg.norm(p.astype(np.float32), axis=1) < r
        np.savez(cat / oid / "points.npz", points=p, occupancies=np.packbits(occ), loc=np.zeros(3), scale=1.0)
        lists[split].append(oid)
    for split, ids in lists.items():
        (cat / f"{split}.lst").write_text("\n".join(ids))


def test_occnet_overfits_two_objects(tmp_path):
    from evaluation.geometry import occupancy_iou
    from occnet_multiview.trainer import train_occnet
    from sdn.config import apply_overrides
    from sdn.data.shapenet import ShapeNetViews

    _ball_dataset(tmp_path / "balls")
    overrides = ["train.steps=350", "train.lr=0.001", "model.hidden=64", "train.batch_objects=2"]
    overrides += ["train.views_per_sample=2", "train.points_per_object=2048", "train.precision=fp32"]
    overrides += ["train.eval_every=1000", "train.checkpoint_every=1000"]
    cfg = apply_overrides(occnet_preset("tiny"), overrides)
    train_occnet(tmp_path / "balls", cfg, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    model = OccupancyNetwork.from_checkpoint(tmp_path / "run" / "checkpoint.pt")
    ds = ShapeNetViews(
        tmp_path / "balls",
        "train",
        set_size=1,
        resolution=16,
        random_views=False,
        cache_dir=tmp_path / "c",
        progress=False,
    )
    for i in range(2):
        p = ds.points(i)
        with torch.no_grad():
            prob = torch.sigmoid(model(ds[i]["images"][None], torch.from_numpy(p.points)[None]))[0].numpy()
        iou = occupancy_iou(prob >= 0.5, p.occupancies)
        assert iou > 0.9, (ds.objects[i].object_id, iou)
