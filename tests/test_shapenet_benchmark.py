"""`sdn-bench shapenet` end to end on tiny data and tiny checkpoints."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.shapenet import (
    METRICS,
    ShapeNetBenchConfig,
    bootstrap_summary,
    paired_differences,
    run_shapenet_benchmark,
)
from occnet_multiview.config import occnet_preset
from occnet_multiview.trainer import train_occnet
from sdn.config import apply_overrides, preset
from sdn.trainer import train_sdn


@pytest.fixture(scope="module")
def tiny_checkpoints(tiny_shapes, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpts")
    over = [
        "train.steps=2",
        "train.set_size=3",
        "train.batch_sets=2",
        "train.eval_sets=2",
        "train.precision=fp32",
    ]
    train_sdn(
        tiny_shapes,
        apply_overrides(preset("tiny-16"), over),
        tmp / "sdn",
        progress=False,
        cache_dir=tmp / "c",
    )
    occ = apply_overrides(
        occnet_preset("tiny"), ["train.steps=2", "train.views_per_sample=2", "train.precision=fp32"]
    )
    train_occnet(tiny_shapes, occ, tmp / "occ", progress=False, cache_dir=tmp / "c")
    return tmp / "sdn" / "checkpoint.pt", tmp / "occ" / "best.pt", tmp / "c"


def tiny_bench_config(**kw):
    cfg = ShapeNetBenchConfig(real_views=4, recon_views=(1, 2, 4), input_views=(1, 4), table2_views=(1, 4))
    cfg.max_objects, cfg.bootstrap, cfg.dense_points, cfg.resolution0, cfg.upsampling_steps = (
        2,
        50,
        4000,
        16,
        1,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_shapenet_end_to_end_writes_every_file(tiny_shapes, tiny_checkpoints, tmp_path):
    sdn_ckpt, occ_ckpt, cache = tiny_checkpoints
    out = tmp_path / "report"
    manifest = run_shapenet_benchmark(
        sdn_ckpt, occ_ckpt, tiny_shapes, out, tiny_bench_config(), cache_dir=cache, progress=False
    )
    expected = ["table1a.csv", "table1b.csv", "table2.csv", "ground_truth.csv", "objects.csv", "tables.md"]
    expected += ["differences.csv", "index.md"]
    expected += ["manifest.json", "cd_vs_views.png", "iou_vs_views.png", "fig2_input_vs_reconstruction.png"]
    expected += ["fig4_learned_vs_uniform_prior.png", "fig5_real_vs_reconstructed_meshes.png"]
    expected += ["fig13_reconstruction_by_input_views.png"]
    for name in expected:
        assert (out / name).is_file(), name
    t1a = pd.read_csv(out / "table1a.csv")
    assert list(t1a.columns) == ["table", "metric", "k", "category", "mean", "ci_low", "ci_high", "n"]
    assert set(t1a.k) == {1, 2, 4} and set(t1a.metric) == {
        "cd",
        "chamfer_l1",
        "normal_consistency",
        "f_score",
        "iou",
    }
    assert "mean of categories" in set(t1a.category)
    assert (t1a.ci_low <= t1a["mean"] + 1e-9).all() and (t1a["mean"] <= t1a.ci_high + 1e-9).all()
    t2 = pd.read_csv(out / "table2.csv")
    assert set(t2.metric) == {"occnet_iou"} and set(t2.k) == {1, 4}
    gt = pd.read_csv(out / "ground_truth.csv")
    assert set(gt.table) == {"gt_real", "gt_recon"}
    diff = pd.read_csv(out / "differences.csv")
    assert set(diff.table) == {"table1a", "table1b", "table2"} and set(diff.versus_k) == {1}
    md = (out / "tables.md").read_text()
    assert "(paper)" in md and "Table 1(a)" in md and "Paired differences" in md
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["data"]["objects"] == 2 and len(on_disk["sdn_checkpoint"]["sha256"]) == 64
    assert manifest["files"] == on_disk["files"]


def test_shapenet_workers_do_not_change_results(tiny_shapes, tiny_checkpoints, tmp_path):
    sdn_ckpt, occ_ckpt, cache = tiny_checkpoints
    run_shapenet_benchmark(
        sdn_ckpt, occ_ckpt, tiny_shapes, tmp_path / "a", tiny_bench_config(), cache_dir=cache, progress=False
    )
    run_shapenet_benchmark(
        sdn_ckpt,
        occ_ckpt,
        tiny_shapes,
        tmp_path / "b",
        tiny_bench_config(workers=2),
        cache_dir=cache,
        progress=False,
    )
    a, b = pd.read_csv(tmp_path / "a" / "objects.csv"), pd.read_csv(tmp_path / "b" / "objects.csv")
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)


def test_shapenet_bad_input(tiny_shapes, tiny_checkpoints, tmp_path):
    sdn_ckpt, occ_ckpt, cache = tiny_checkpoints
    with pytest.raises(ValueError, match="kind is 'sdn', expected 'occnet'"):
        run_shapenet_benchmark(
            sdn_ckpt,
            sdn_ckpt,
            tiny_shapes,
            tmp_path / "x",
            tiny_bench_config(),
            cache_dir=cache,
            progress=False,
        )
    with pytest.raises(ValueError, match=r"recon_views must be set sizes in \[1, 4\]"):
        run_shapenet_benchmark(
            sdn_ckpt,
            occ_ckpt,
            tiny_shapes,
            tmp_path / "x",
            tiny_bench_config(recon_views=(0, 2)),
            cache_dir=cache,
            progress=False,
        )


def test_bootstrap_summary_hand_worked():
    df = pd.DataFrame({"category": ["a", "a", "b", "b"], "v": [1.0, 3.0, 10.0, 10.0]})
    out = {r["category"]: r for r in bootstrap_summary(df, "v", 200, 0)}
    assert out["a"]["mean"] == 2.0 and 1.0 <= out["a"]["ci_low"] <= out["a"]["ci_high"] <= 3.0
    assert out["b"]["ci_low"] == out["b"]["ci_high"] == 10.0
    assert out["mean of categories"]["mean"] == 6.0 and out["mean of categories"]["n"] == 4


def test_paired_differences_against_a_naive_loop():
    rng = np.random.default_rng(0)
    rows = []
    for cat in ("a", "b"):
        for obj in range(5):
            base = rng.uniform(0, 1)
            for k in (1, 4):
                rows.append(
                    {
                        "category": cat,
                        "object_id": f"{cat}{obj}",
                        "table": "table2",
                        "k": k,
                        "occnet_iou": base + (0.1 if k == 4 else 0.0) + rng.normal(0, 0.01),
                    }
                )
    objects = pd.DataFrame(rows)
    diff = paired_differences(objects, 500, 0)
    columns = ["table", "metric", "k", "versus_k", "category", "mean", "ci_low", "ci_high", "n"]
    assert list(diff.columns) == columns
    naive = {}
    for cat in ("a", "b"):
        sub = objects[objects.category == cat]
        d = [
            sub[(sub.object_id == o) & (sub.k == 4)].occnet_iou.item()
            - sub[(sub.object_id == o) & (sub.k == 1)].occnet_iou.item()
            for o in sorted(set(sub.object_id))
        ]
        naive[cat] = np.mean(d)
    got = diff.set_index("category")["mean"]
    assert got["a"] == pytest.approx(naive["a"]) and got["b"] == pytest.approx(naive["b"])
    overall = diff[diff.category == "mean of categories"].iloc[0]
    assert overall["mean"] == pytest.approx((naive["a"] + naive["b"]) / 2)
    assert 0 < overall["ci_low"] < 0.1 < overall["ci_high"] < 0.2  # the +0.1 shift is separated from 0


def test_plots_with_one_object_per_category(tmp_path):
    """Each category's interval is then its mean up to rounding: the plots must not fail."""
    from benchmarks.shapenet import plot_curves, summarise

    rng = np.random.default_rng(1)
    rows = [
        {"category": c, "object_id": c, "table": t, "k": k, **{m: rng.uniform(0.1, 0.9) for m in METRICS}}
        for c in [f"c{i}" for i in range(13)]
        for t in ("table1a", "table1b")
        for k in (1, 4)
    ]
    summary = summarise(pd.DataFrame(rows), 50, 0)
    assert ((summary["mean"] < summary.ci_low) | (summary["mean"] > summary.ci_high)).any()  # by rounding
    paths = plot_curves(summary, tmp_path)
    assert [p.name for p in paths] == ["cd_vs_views.png", "iou_vs_views.png"]
