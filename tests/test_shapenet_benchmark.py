"""`sdn-bench shapenet` end to end on tiny data and tiny checkpoints."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import trimesh

from benchmarks.manifest import subset_digest
from benchmarks.shapenet import (
    METRICS,
    ShapeNetBenchConfig,
    bootstrap_summary,
    paired_differences,
    run_shapenet_benchmark,
    summarise,
    tables_markdown,
)
from benchmarks.shapenet_real import score_pair
from evaluation.geometry import WORST, sample_mesh
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


@pytest.fixture(scope="module")
def report(tiny_shapes, tiny_checkpoints, tmp_path_factory):
    """The report of the tiny split (one test object per category), with one worker."""
    sdn_ckpt, occ_ckpt, cache = tiny_checkpoints
    out = tmp_path_factory.mktemp("report") / "a"
    manifest = run_shapenet_benchmark(
        sdn_ckpt, occ_ckpt, tiny_shapes, out, tiny_bench_config(), cache_dir=cache, progress=False
    )
    return out, manifest


def test_shapenet_end_to_end_writes_every_file(report):
    out, manifest = report
    expected = ["table1a.csv", "table1b.csv", "table2.csv", "ground_truth.csv", "objects.csv", "tables.md"]
    expected += ["differences.csv", "index.md"]
    expected += ["manifest.json", "cd_vs_views.png", "iou_vs_views.png", "fig2_input_vs_reconstruction.png"]
    expected += ["fig4_learned_vs_uniform_prior.png", "fig5_real_vs_reconstructed_meshes.png"]
    expected += ["fig13_reconstruction_by_input_views.png"]
    expected += ["novelty.csv", "realism.csv", "novelty_sets.csv", "novelty_histogram.png"]
    for name in expected:
        assert (out / name).is_file(), name
    # The novelty section: 2 free sets per prior (one per scored object), the 2 training objects.
    dist = manifest["distribution"]
    assert dist["train_sets"] == 2 and dist["free_sets_per_prior"] == 2
    novelty = pd.read_csv(out / "novelty.csv")
    assert set(novelty.source) == {"real test sets", "free samples", "uniform samples"}
    assert "## Novelty, coverage and realism" in (out / "tables.md").read_text()
    t1a = pd.read_csv(out / "table1a.csv")
    assert list(t1a.columns) == ["table", "metric", "k", "category", "mean", "ci_low", "ci_high", "n"]
    assert set(t1a.k) == {1, 2, 4}
    assert set(t1a.metric) == {*METRICS, "cd_median", "n_empty", "n_failed", "n_not_watertight"}
    assert "mean of categories" in set(t1a.category)
    # One object per category: no interval exists (MIN_PER_STRATUM = 3), the mean is kept.
    assert t1a.ci_low.isna().all() and t1a.ci_high.isna().all() and t1a["mean"].notna().all()
    t2 = pd.read_csv(out / "table2.csv")
    assert set(t2.metric) == {"occnet_iou", "n_empty", "n_failed", "n_not_watertight"} and set(t2.k) == {1, 4}
    gt = pd.read_csv(out / "ground_truth.csv")
    assert set(gt.table) == {"gt_real", "gt_recon"} and "occnet_iou" in set(gt.metric)
    objects = pd.read_csv(out / "objects.csv", dtype={"synset": str, "object_id": str})
    assert {"mesh_status", "watertight", "gt_source"} <= set(objects.columns)
    assert set(objects.mesh_status) <= {"ok", "empty", "failed"}
    assert set(objects[objects.table.str.startswith("gt_")].gt_source) == {"mesh"}
    diff = pd.read_csv(out / "differences.csv")
    assert set(diff.table) == {"table1a", "table1b", "table2"} and set(diff.versus_k) == {1}
    md = (out / "tables.md").read_text()
    assert "(paper)" in md and "Table 1(a)" in md and "Paired differences" in md
    assert "| yes |" not in md and "| no |" not in md and "| n too small |" in md
    assert "at least 3 objects" in md and "### Empty and failed meshes" in md
    assert "the ground-truth mesh model.ply for 2 objects" in md
    assert "aids: none" in md and "trained in fp32" in md and "channels_last: yes" in md
    assert "BatchNorm in the θ step: training mode" in md
    on_disk = json.loads((out / "manifest.json").read_text())
    keys = [f"{s}/{o}" for s, o in objects[["synset", "object_id"]].drop_duplicates().itertuples(index=False)]
    assert on_disk["data"]["subset_sha256"] == subset_digest(keys) and on_disk["data"]["subset_sha256"] in md
    assert on_disk["data"]["objects"] == 2 and len(on_disk["model"]["sha256"]) == 64
    assert on_disk["model"]["kind"] == "sdn" and on_disk["model"]["can_sample"]
    assert (
        on_disk["model"]["description"]["precision"] == "fp32"
        and on_disk["model"]["description"]["aids"] == {}
    )
    assert manifest["files"] == on_disk["files"]


def _rows(folder, category=None):
    """objects.csv and the summary CSVs of a report, restricted to one category."""
    frames = {
        name: pd.read_csv(folder / f"{name}.csv") for name in ("objects", "table1a", "table1b", "table2")
    }
    frames["ground_truth"] = pd.read_csv(folder / "ground_truth.csv")
    if category is not None:
        frames = {k: f[f.category == category].reset_index(drop=True) for k, f in frames.items()}
    return frames


def test_shapenet_report_does_not_depend_on_workers_order_or_subset(
    tiny_shapes, tiny_checkpoints, report, tmp_path
):
    """An object's rows depend only on the object: not on --workers, nor on its index in the
    evaluated split (here chair is index 1 of the full split and index 0 of chair alone)."""
    sdn_ckpt, occ_ckpt, cache = tiny_checkpoints
    full = _rows(report[0])
    run_shapenet_benchmark(
        sdn_ckpt, occ_ckpt, tiny_shapes, tmp_path / "b", tiny_bench_config(workers=2), cache_dir=cache,
        progress=False,
    )  # fmt: skip
    for name, frame in _rows(tmp_path / "b").items():
        pd.testing.assert_frame_equal(full[name], frame, rtol=1e-6, obj=name)
    # The chair alone, from a copy of the data without meshes: ground truth from the point files.
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    for ply in data.rglob("model.ply"):
        ply.unlink()
    run_shapenet_benchmark(
        sdn_ckpt, occ_ckpt, data, tmp_path / "c", tiny_bench_config(categories=["03001627"]), cache_dir=cache,
        progress=False,
    )  # fmt: skip
    alone, both = _rows(tmp_path / "c", "chair"), _rows(report[0], "chair")
    assert len(alone["objects"]) > 0
    for frames in (alone, both):  # the ground truth differs (mesh vs point files): compare the rest
        frames["objects"] = frames["objects"][~frames["objects"].table.str.startswith("gt_")]
    for name in ("objects", "table1a", "table1b", "table2"):
        pd.testing.assert_frame_equal(both[name], alone[name], rtol=1e-6, obj=name)
    gt = pd.read_csv(tmp_path / "c" / "objects.csv").query("table.str.startswith('gt_')")
    assert (
        set(gt.gt_source) == {"point files"}
        and gt[["cd", "iou", "occnet_iou", "f_score"]].notna().all().all()
    )
    assert "pointcloud.npz (CD, Chamfer-L1" in (tmp_path / "c" / "tables.md").read_text()


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
    df = pd.DataFrame({"category": ["a"] * 3 + ["b"] * 2, "v": [1.0, 2.0, 6.0, 10.0, 10.0]})
    out = {r["category"]: r for r in bootstrap_summary(df, "v", 200, 0)}
    assert out["a"]["mean"] == 3.0 and 1.0 <= out["a"]["ci_low"] <= out["a"]["ci_high"] <= 6.0
    # b has 2 < MIN_PER_STRATUM objects: no interval for b, nor for the mean of categories.
    assert out["b"]["mean"] == 10.0 and np.isnan(out["b"]["ci_low"]) and np.isnan(out["b"]["ci_high"])
    overall = out["mean of categories"]
    assert overall["mean"] == 6.5 and overall["n"] == 5 and np.isnan(overall["ci_low"])
    med = {r["category"]: r for r in bootstrap_summary(df, "v", 200, 0, statistic="median")}
    assert med["a"]["mean"] == 2.0 and med["mean of categories"]["mean"] == 6.0
    # A category's interval does not depend on the other categories.
    alone = bootstrap_summary(df[df.category == "a"], "v", 200, 0)[0]
    assert (alone["ci_low"], alone["ci_high"]) == (out["a"]["ci_low"], out["a"]["ci_high"])
    df.loc[0, "v"] = np.nan  # a failed metric is left out
    assert bootstrap_summary(df, "v", 200, 0)[0]["n"] == 2
    with pytest.raises(ValueError, match="statistic must be 'mean' or 'median'"):
        bootstrap_summary(df, "v", 10, 0, statistic="mode")


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


def _synthetic_objects(per_category: int, status=None) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [
        {"category": c, "object_id": f"{c}-{o}", "table": t, "k": k, "mesh_status": "ok", "watertight": True,
         **{m: rng.uniform(0.1, 0.9) for m in METRICS}}
        for c in ("c0", "c1", "c2")
        for o in range(per_category)
        for t in ("table1a", "table1b")
        for k in (1, 4)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_one_object_per_category_is_never_separated(tmp_path):
    """--max-objects 3: one object per category; every interval would collapse to a point."""
    from benchmarks.shapenet import plot_curves

    objects = _synthetic_objects(1)
    summary, diff = summarise(objects, 50, 0), paired_differences(objects, 50, 0)
    assert summary.ci_low.isna().all() and diff.ci_low.isna().all() and diff["mean"].notna().all()
    md = tables_markdown(summary, diff, "# header")
    assert "| yes |" not in md and "| no |" not in md and "| n too small |" in md
    assert "[n too small]" in md and "[0." not in md
    paths = plot_curves(summary, tmp_path)  # no error bars, no error
    assert [p.name for p in paths] == ["cd_vs_views.png", "iou_vs_views.png"]
    enough = _synthetic_objects(3)
    summary = summarise(enough, 50, 0)
    assert summary[~summary.metric.str.startswith("n_")].ci_low.notna().all()
    md = tables_markdown(summary, paired_differences(enough, 50, 0), "")
    assert "| n too small |" not in md and ("| yes |" in md or "| no |" in md)
    assert plot_curves(summary, tmp_path)


def test_empty_and_failed_meshes_are_scored_and_counted():
    rng = np.random.default_rng(0)
    box = trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    empty = score_pair(sample_mesh(trimesh.Trimesh(), rng, n_dense=1000), sample_mesh(box, rng, n_dense=1000))
    assert empty["mesh_status"] == "empty" and empty["cd"] == pytest.approx(WORST["cd"] * 1e3)
    tetra = trimesh.convex.convex_hull(np.array([[0, 0, 0], [0.4, 0, 0], [0, 0.4, 0], [0.1, 0.1, 0.4]]))
    flat = trimesh.Trimesh(tetra.vertices * [1, 1, 0], tetra.faces, process=False)  # encloses no volume
    failed = score_pair(sample_mesh(flat, rng, n_dense=1000), sample_mesh(box, rng, n_dense=1000))
    assert failed["mesh_status"] == "failed" and np.isnan(failed["iou"]) and np.isfinite(failed["cd"])
    objects = _synthetic_objects(3)
    objects.loc[0, ["mesh_status", "cd"]] = ["empty", WORST["cd"] * 1e3]
    objects.loc[1, ["mesh_status", "iou"]] = ["failed", np.nan]
    summary = summarise(objects, 50, 0).set_index(["table", "k", "metric", "category"])
    first, fifth = objects.loc[0], objects.loc[1]  # (c0, table1a, k 1) and (c0, table1a, k 4)
    assert summary.loc[(first.table, first.k, "n_empty", first.category), "mean"] == 1
    assert summary.loc[(first.table, first.k, "n_empty", "mean of categories"), "mean"] == 1
    assert summary.loc[(fifth.table, fifth.k, "n_failed", fifth.category), "mean"] == 1
    assert summary.loc[(fifth.table, fifth.k, "iou", fifth.category), "n"] == 2  # the failed IoU left out
    cd = objects[
        (objects.table == first.table) & (objects.k == first.k) & (objects.category == first.category)
    ]
    assert summary.loc[(first.table, first.k, "cd_median", first.category), "mean"] == np.median(cd.cd)
    md = tables_markdown(summary.reset_index(), pd.DataFrame(), "")
    assert f"| {first.table} | {first.k} | {first.category} | 1 | 0 | 0 | 3 |" in md


def test_cached_and_uncached_reports_are_identical(tiny_shapes, tiny_checkpoints, tmp_path):
    """The real side read from the cache gives the report computed afresh, file for file; the
    manifest says how many objects came from the cache; a changed object misses."""
    sdn_ckpt, occ_ckpt, _ = tiny_checkpoints
    cache = tmp_path / "cache"
    runs = {}
    for name, use_cache in (("fresh", True), ("cached", True), ("uncached", False)):
        runs[name] = run_shapenet_benchmark(
            sdn_ckpt, occ_ckpt, tiny_shapes, tmp_path / name, tiny_bench_config(), cache_dir=cache,
            progress=False, use_cache=use_cache,
        )["execution"]["real_side_cache"]  # fmt: skip
    assert runs["fresh"]["objects_from_cache"] == 0 and runs["fresh"]["objects_computed"] == 2
    assert runs["cached"]["objects_from_cache"] == 2 and runs["cached"]["objects_computed"] == 0
    assert not runs["uncached"]["used"] and runs["uncached"]["objects_from_cache"] == 0
    for name in ("objects.csv", "table1a.csv", "table1b.csv", "table2.csv", "ground_truth.csv", "tables.md"):
        fresh = (tmp_path / "fresh" / name).read_text()
        assert fresh == (tmp_path / "cached" / name).read_text() == (tmp_path / "uncached" / name).read_text()
    # Another object content (one test object's points.npz changed) is recomputed.
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    objects = pd.read_csv(tmp_path / "fresh" / "objects.csv", dtype={"synset": str, "object_id": str})
    synset, object_id = objects[["synset", "object_id"]].iloc[0]
    points = data / synset / object_id / "points.npz"
    with np.load(points) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["occupancies"] = np.packbits(~np.unpackbits(arrays["occupancies"]).astype(bool))
    np.savez(points, **arrays)
    again = run_shapenet_benchmark(
        sdn_ckpt, occ_ckpt, data, tmp_path / "changed", tiny_bench_config(), cache_dir=cache, progress=False
    )["execution"]["real_side_cache"]
    assert again["objects_from_cache"] == 1 and again["objects_computed"] == 1
