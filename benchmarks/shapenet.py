"""The ShapeNet benchmark: Table 1(a), Table 1(b) and Table 2 (DESIGN.md §5).

For each test object, R is its first 16 fixed views. M is the OccNet mesh from R (codes
pooled over the 16 views).

- Table 1(a): the set model encodes R and generates 16 views; M̂_k is the OccNet mesh
  from the first k of them, k in ``recon_views``; metrics(M̂_k, M).
- Table 1(b): the model encodes the first k views of R, k in ``input_views``, and
  generates 16 views; M̂_k from those 16; metrics(M̂_k, M).
- Table 2: OccNet IoU (over ``points.npz``) of the mesh from the first v real views
  against the ground-truth occupancy, v in ``table2_views`` (1 and 5 in the paper).
- Ground-truth rows (only possible on synthetic data or with meshes): M vs the
  ground-truth mesh, and M̂ (16 from 16) vs the ground-truth mesh.

Metrics per pair (:mod:`evaluation.geometry`): CD x10^3 (the paper's), Chamfer-L1,
normal consistency, F-score at 1%, the paper's volume IoU. Each figure is reported
per category and as the mean of the category means, with a 95% bootstrap confidence
interval (objects resampled within each category).

The generated views of an object are seeded by (seed, object index), so a report
does not depend on ``--workers``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import trimesh
from tqdm import tqdm

from evaluation.geometry import compare_meshes, mesh_occupancy, occupancy_iou
from occnet_multiview.extract import extract_mesh
from occnet_multiview.model import OccupancyNetwork
from sdn.data.shapenet import ShapeNetViews
from sdn.io import atomic_write_text
from sdn.model import SDN

from .figures import save_plot, save_rows, strip, white
from .manifest import finish_report, sha256_file

METRICS = ("cd", "chamfer_l1", "normal_consistency", "f_score", "iou")
PAPER = {  # the paper's numbers: real ShapeNet, 128 px, 13 categories
    "table1a": {
        "cd": {1: 4.458, 4: 3.682, 8: 3.501, 16: 3.433},
        "iou": {1: 0.679, 4: 0.711, 8: 0.719, 16: 0.722},
    },
    "table1b": {
        "cd": {1: 6.333, 4: 3.912, 8: 3.590, 16: 3.434},
        "iou": {1: 0.633, 4: 0.701, 8: 0.715, 16: 0.722},
    },
    "table2": {"occnet_iou": {1: 0.593, 5: 0.621}},
}


@dataclass
class ShapeNetBenchConfig:
    split: str = "test"
    recon_views: tuple = (1, 4, 8, 16)
    input_views: tuple = (1, 4, 8, 16)
    table2_views: tuple = (1, 2, 3, 4, 5, 8, 16)
    real_views: int = 16
    max_objects: int | None = None
    workers: int = 1
    seed: int = 0
    threshold: float | None = None  # None: the OccNet checkpoint's validated threshold
    resolution0: int = 32
    upsampling_steps: int = 2
    bootstrap: int = 1000
    dense_points: int = 100_000
    categories: list = field(default_factory=list)

    def validate(self) -> None:
        for name in ("recon_views", "input_views", "table2_views"):
            ks = getattr(self, name)
            if not ks or any(k < 1 or k > self.real_views for k in ks):
                raise ValueError(f"{name} must be set sizes in [1, {self.real_views}], got {ks}")
        if self.max_objects is not None and self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


def load_models(sdn_ckpt, occnet_ckpt) -> tuple[SDN, OccupancyNetwork]:
    """Both models, checking each checkpoint's kind and that their resolutions agree."""
    sdn = SDN.from_checkpoint(sdn_ckpt)
    occ = OccupancyNetwork.from_checkpoint(occnet_ckpt)
    if sdn.resolution != occ.resolution:
        raise ValueError(
            f"resolutions disagree: the SDN ({sdn_ckpt}) works at {sdn.resolution} px, "
            f"the OccNet ({occnet_ckpt}) at {occ.resolution} px; train them at the same resolution"
        )
    return sdn, occ


def open_split(data, cfg: ShapeNetBenchConfig, resolution: int, cache_dir, progress: bool) -> ShapeNetViews:
    """The evaluated split with each object's fixed first ``real_views`` views."""
    return ShapeNetViews(
        data, cfg.split, categories=cfg.categories or None, set_size=cfg.real_views, resolution=resolution,
        random_views=False, seed=cfg.seed, cache_dir=cache_dir, progress=progress,
    )  # fmt: skip


def _native_resolution(ds: ShapeNetViews) -> int:
    from PIL import Image

    with Image.open(ds.objects[0].views[0]) as im:
        return im.size[0]


# ----------------------------------------------------------------------------------
# Per-object work (runs in worker processes)
# ----------------------------------------------------------------------------------

_STATE: dict = {}


def _init_worker(sdn_ckpt, occnet_ckpt, data, cfg: ShapeNetBenchConfig, cache_dir, threads: int) -> None:
    torch.set_num_threads(threads)
    sdn, occ = load_models(sdn_ckpt, occnet_ckpt)
    ds = open_split(data, cfg, sdn.resolution, cache_dir, progress=False)
    threshold = cfg.threshold if cfg.threshold is not None else occ.threshold
    _STATE.update(sdn=sdn, occ=occ, ds=ds, cfg=cfg, threshold=threshold)


def _mesh(images: torch.Tensor) -> trimesh.Trimesh:
    s = _STATE
    return extract_mesh(s["occ"], images, s["threshold"], s["cfg"].resolution0, s["cfg"].upsampling_steps)


def evaluate_object(index: int) -> list[dict]:
    """Every row of every table for one object (uses the worker's models and data)."""
    s = _STATE
    cfg, ds, sdn = s["cfg"], s["ds"], s["sdn"]
    obj = ds.objects[index]
    rng = np.random.default_rng([cfg.seed, index])
    base = {"category": obj.category.split(",")[0], "synset": obj.synset, "object_id": obj.object_id}
    real = ds[index]["images"]  # (16, 3, H, W)
    m_real = _mesh(real)
    rows = []

    def pair(table: str, k: int, pred: trimesh.Trimesh, ref: trimesh.Trimesh) -> None:
        metrics = compare_meshes(pred, ref, rng, n_dense=cfg.dense_points)
        metrics["cd"] *= 1e3  # reported x10^3, as in the paper
        rows.append({**base, "table": table, "k": k, **metrics})

    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + index)
    recon16 = sdn.reconstruct(real[None], cfg.real_views, seed=gen)[0]  # (16, 3, H, W)
    recon_meshes = {}
    for k in cfg.recon_views:
        recon_meshes[k] = _mesh(recon16[:k])
        pair("table1a", k, recon_meshes[k], m_real)
    for k in cfg.input_views:
        if k == cfg.real_views and cfg.real_views in recon_meshes:
            mesh = recon_meshes[cfg.real_views]  # encode 16, generate 16: the same condition as 1(a) k=16
        else:
            mesh = _mesh(sdn.reconstruct(real[None, :k], cfg.real_views, seed=gen)[0])
        pair("table1b", k, mesh, m_real)
    points = ds.points(index)
    for v in cfg.table2_views:
        mesh = m_real if v == cfg.real_views else _mesh(real[:v])
        rows.append(
            {
                **base,
                "table": "table2",
                "k": v,
                "occnet_iou": occupancy_iou(mesh_occupancy(mesh, points.points), points.occupancies),
            }
        )
    gt_path = obj.path / "model.ply"
    if gt_path.is_file():
        gt = trimesh.load(gt_path, process=False)
        pair("gt_real", cfg.real_views, m_real, gt)
        full = recon_meshes[cfg.real_views] if cfg.real_views in recon_meshes else _mesh(recon16)
        pair("gt_recon", cfg.real_views, full, gt)
    return rows


# ----------------------------------------------------------------------------------
# Aggregation
# ----------------------------------------------------------------------------------


def bootstrap_summary(df: pd.DataFrame, metric: str, n_boot: int, seed: int) -> list[dict]:
    """Per-category mean and the mean of category means, each with a 95% percentile
    bootstrap interval (objects resampled with replacement within each category).
    df: one row per object (columns category, <metric>)."""
    rng = np.random.default_rng(seed)
    groups = {c: g[metric].to_numpy(float) for c, g in df.groupby("category", sort=True)}
    boot = {c: np.array([rng.choice(v, len(v)).mean() for _ in range(n_boot)]) for c, v in groups.items()}
    out = []
    for c, v in groups.items():
        lo, hi = np.percentile(boot[c], [2.5, 97.5])
        out.append({"category": c, "mean": v.mean(), "ci_low": lo, "ci_high": hi, "n": len(v)})
    overall = np.mean([boot[c] for c in groups], axis=0)
    lo, hi = np.percentile(overall, [2.5, 97.5])
    out.append(
        {
            "category": "mean of categories",
            "mean": float(np.mean([v.mean() for v in groups.values()])),
            "ci_low": lo,
            "ci_high": hi,
            "n": int(sum(len(v) for v in groups.values())),
        }
    )
    return out


def _table_metrics(table: str) -> list[str]:
    return ["occnet_iou"] if table == "table2" else list(METRICS)


def summarise(objects: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Tidy summary: one row per (table, metric, k, category) with mean, CI and n."""
    rows = []
    for (table, k), g in objects.groupby(["table", "k"], sort=True):
        for metric in _table_metrics(table):
            for r in bootstrap_summary(g, metric, n_boot, seed):
                rows.append({"table": table, "metric": metric, "k": int(k), **r})
    return pd.DataFrame(rows)


def paired_differences(objects: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Whether the conditions are separated: for each table with several k, the per-object
    difference metric(k) - metric(k0) against the table's smallest k0, on the same objects,
    summarised like :func:`summarise` (category means and the mean of category means, each
    with a 95% bootstrap interval over objects). A paired interval that excludes 0 separates
    the two conditions even when their marginal intervals overlap.
    One row per (table, metric, k, category), the metric named ``delta_<metric>`` (a
    difference has no better direction, so ``compare`` does not track it): columns
    versus_k, mean, ci_low, ci_high, n."""
    rows = []
    for table, g in objects.groupby("table", sort=True):
        ks = sorted(int(k) for k in g.k.unique())
        for metric in _table_metrics(table) if len(ks) > 1 else []:
            wide = g.pivot(index=["category", "object_id"], columns="k", values=metric)  # (objects, ks)
            for k in ks[1:]:
                diff = pd.DataFrame(
                    {
                        "category": wide.index.get_level_values("category"),
                        "d": (wide[k] - wide[ks[0]]).to_numpy(),
                    }
                )
                for r in bootstrap_summary(diff, "d", n_boot, seed):
                    rows.append({"table": table, "metric": f"delta_{metric}", "k": k, "versus_k": ks[0], **r})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------


def _fmt(r) -> str:
    return f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _table_head(title: str, first: str, ks) -> list[str]:
    """A Markdown section title and table header with one column per k."""
    return [
        f"### {title}",
        "",
        f"| {first} | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|" + "---:|" * len(ks),
    ]


def tables_markdown(
    summary: pd.DataFrame, differences: pd.DataFrame, header: str, real_views: int = 16
) -> str:
    """tables.md: the paper-shaped tables (mean of category means, 95% CI) with the
    paper's numbers beside ours, the paired differences between conditions (CD and IoU),
    then per-category tables."""
    overall = summary[summary.category == "mean of categories"]
    lines = [header, ""]
    titles = {
        "table1a": f"Table 1(a): mesh from k reconstructed views vs mesh from the {real_views} real views",
        "table1b": f"Table 1(b): code from the first k real views, {real_views} reconstructed views",
        "table2": "Table 2: OccNet IoU against ground truth, codes pooled over v real views",
        "gt_real": f"Ground truth: mesh from the {real_views} real views vs the ground-truth mesh",
        "gt_recon": f"Ground truth: mesh from {real_views} reconstructed views (code from {real_views}) "
        "vs the ground-truth mesh",
    }
    for table, title in titles.items():
        sub = overall[overall.table == table]
        if sub.empty:
            continue
        ks = sorted(sub.k.unique())
        lines += _table_head(title, "metric", ks)
        for metric in sub.metric.unique():
            cells = {int(r["k"]): _fmt(r) for r in sub[sub.metric == metric].to_dict("records")}
            lines.append(f"| {metric} (ours) | " + " | ".join(cells.get(k, "") for k in ks) + " |")
            paper = PAPER.get(table, {}).get(metric)
            if paper:
                lines.append(
                    f"| {metric} (paper) | "
                    + " | ".join(f"{paper[k]:.3f}" if k in paper else "" for k in ks)
                    + " |"
                )
        lines.append("")
    lines += [
        "Paper rows are the paper's numbers on real ShapeNet at 128 px with its own SDN and OccNet;",
        "ours are on the data and checkpoints named in manifest.json. Values: mean of category means",
        "[95% bootstrap CI]. CD is x10^3 (squared distances, 2048 points per mesh); IoU in Table 1 is",
        "the paper's volume overlap; Table 2's is OccNet's occupancy IoU over points.npz.",
        "",
    ]
    if not differences.empty:
        lines += [
            "### Paired differences: metric(k) - metric(smallest k) on the same objects",
            "",
            "| table | metric | k vs k0 | difference [95% CI] | CI excludes 0 |",
            "|---|---|---|---:|---|",
        ]
        headline = differences.metric.isin(["delta_cd", "delta_iou", "delta_occnet_iou"])
        d = differences[(differences.category == "mean of categories") & headline]
        for r in d.to_dict("records"):
            separated = "yes" if r["ci_low"] > 0 or r["ci_high"] < 0 else "no"
            name = r["metric"].removeprefix("delta_")
            lines.append(f"| {r['table']} | {name} | {r['k']} vs {r['versus_k']} | {_fmt(r)} | {separated} |")
        lines.append("")
    lines += [
        "## Per category",
        "",
    ]
    per_cat = summary[summary.category != "mean of categories"]
    for (table, metric), g in per_cat.groupby(["table", "metric"], sort=False):
        ks = sorted(g.k.unique())
        lines += _table_head(f"{table} — {metric}", "category", ks)
        for cat, gc in g.groupby("category"):
            cells = {int(r["k"]): _fmt(r) for r in gc.to_dict("records")}
            lines.append(f"| {cat} | " + " | ".join(cells.get(k, "") for k in ks) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_curves(summary: pd.DataFrame, out: Path) -> list[Path]:
    """CD and IoU against the number of views, with 95% CIs, one PNG per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overall = summary[summary.category == "mean of categories"]
    paths = []
    for metric, label in (("cd", "CD x10^3 (lower is better)"), ("iou", "volume IoU (higher is better)")):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for table, name in (("table1a", "1(a): k reconstructed views"), ("table1b", "1(b): k input views")):
            g = overall[(overall.table == table) & (overall.metric == metric)].sort_values("k")
            if g.empty:
                continue
            ax.errorbar(
                g.k,
                g["mean"],
                # clipped: with one object per category the interval is the mean up to rounding
                yerr=[np.clip(g["mean"] - g.ci_low, 0, None), np.clip(g.ci_high - g["mean"], 0, None)],
                marker="o",
                capsize=3,
                label=name,
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of views k")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
        paths.append(save_plot(fig, out / f"{metric}_vs_views.png"))
    return paths


def write_figures(
    sdn: SDN,
    occ: OccupancyNetwork,
    ds: ShapeNetViews,
    picks: list[int],
    cfg: ShapeNetBenchConfig,
    threshold: float,
    out: Path,
) -> list[Path]:
    """Fig. 2/9 (input vs reconstructed sets), Fig. 4/11 (learned vs uniform prior samples),
    Fig. 5 (real vs reconstructed meshes, rendered) and Fig. 13 (1/4/8 input views)."""
    from sdn.data.synthetic_shapes.render import render_mesh, sample_cameras

    res, n = sdn.resolution, 8
    paths = []

    def save(name: str, rows: list[np.ndarray]) -> None:
        paths.append(save_rows(out / name, rows))

    rows = []
    for i in picks:
        real = ds[i]["images"][:n]
        rows += [
            strip(real),
            strip(sdn.reconstruct(real[None], n, seed=cfg.seed + i)[0]),
            white(4, n * res),
        ]
    save("fig2_input_vs_reconstruction.png", rows)
    learned = sdn.sample(len(picks), n, "learned", seed=cfg.seed)
    uniform = sdn.sample(len(picks), n, "uniform", seed=cfg.seed)
    save(
        "fig4_learned_vs_uniform_prior.png",
        [strip(learned[j]) for j in range(len(picks))]
        + [white(8, n * res)]
        + [strip(uniform[j]) for j in range(len(picks))],
    )
    cams = sample_cameras(np.random.default_rng(cfg.seed), 4, 2 * res, radius=0.8)
    rows = []
    for i in picks:
        real = ds[i]["images"][: cfg.real_views]
        recon = sdn.reconstruct(real[None], cfg.real_views, seed=cfg.seed + i)[0]
        meshes = [
            extract_mesh(occ, x, threshold, cfg.resolution0, cfg.upsampling_steps) for x in (real, recon)
        ]
        views = [np.concatenate(list(render_mesh(m, cams, 2 * res)), axis=1) for m in meshes]
        rows += [
            np.concatenate([views[0], white(2 * res, 8), views[1]], axis=1),
            white(4, views[0].shape[1] * 2 + 8),
        ]
    save("fig5_real_vs_reconstructed_meshes.png", rows)
    rows = []
    for i in picks:
        real = ds[i]["images"][:n]
        rows.append(strip(real))
        for k in (1, 4, 8):
            rows.append(strip(sdn.reconstruct(real[None, :k], n, seed=cfg.seed + i)[0]))
        rows.append(white(4, n * res))
    save("fig13_reconstruction_by_input_views.png", rows)
    return paths


def run_shapenet_benchmark(
    sdn_ckpt,
    occnet_ckpt,
    data,
    out,
    cfg: ShapeNetBenchConfig,
    cache_dir=None,
    progress: bool = True,
    command: str = "",
) -> dict:
    """Run the benchmark and write the report folder; returns the manifest."""
    cfg.validate()
    start = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sdn, occ = load_models(sdn_ckpt, occnet_ckpt)
    ds = open_split(data, cfg, sdn.resolution, cache_dir, progress)
    native = _native_resolution(ds)
    threshold = cfg.threshold if cfg.threshold is not None else occ.threshold
    # Objects: all, or max_objects spread evenly over the split (so every category is seen).
    n_obj = len(ds) if cfg.max_objects is None else min(cfg.max_objects, len(ds))
    indices = [int(i) for i in np.linspace(0, len(ds) - 1, n_obj).round()]
    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    init = (sdn_ckpt, occnet_ckpt, data, cfg, cache_dir, threads)
    rows = []
    bar = tqdm(total=len(indices), desc="objects", unit="obj", disable=not progress)
    if cfg.workers == 1:
        _init_worker(*init)
        for i in indices:
            rows += evaluate_object(i)
            bar.update()
    else:
        with get_context("spawn").Pool(cfg.workers, initializer=_init_worker, initargs=init) as pool:
            for r in pool.imap(evaluate_object, indices):
                rows += r
                bar.update()
    bar.close()
    objects = pd.DataFrame(rows)
    summary = summarise(objects, cfg.bootstrap, cfg.seed)
    differences = paired_differences(objects, cfg.bootstrap, cfg.seed)
    atomic_write_text(out / "objects.csv", objects.to_csv(index=False))
    for table in ("table1a", "table1b", "table2"):
        atomic_write_text(out / f"{table}.csv", summary[summary.table == table].to_csv(index=False))
    atomic_write_text(
        out / "ground_truth.csv", summary[summary.table.str.startswith("gt_")].to_csv(index=False)
    )
    sdn_cfg = sdn.cfg
    header = (
        f"# ShapeNet benchmark\n\nSDN `{Path(sdn_ckpt).name}` "
        f"(preset {sdn_cfg.preset}, recipe {sdn_cfg.recipe}, "
        f"aids: {json.dumps(sdn_cfg.aids.active()) or 'none'}), OccNet `{Path(occnet_ckpt).name}` "
        f"(threshold {threshold:g}); data `{data}` split {cfg.split}, {len(indices)} objects, "
        f"{sdn.resolution} px (native {native} px)."
    )
    atomic_write_text(out / "differences.csv", differences.to_csv(index=False))
    atomic_write_text(out / "tables.md", tables_markdown(summary, differences, header, cfg.real_views))
    figures = plot_curves(summary, out)
    picks = [indices[int(j)] for j in np.linspace(0, len(indices) - 1, min(4, len(indices))).round()]
    figures += write_figures(sdn, occ, ds, picks, cfg, threshold, out)
    manifest = {
        "benchmark": "shapenet",
        "command": command,
        "config": asdict(cfg),
        "sdn_checkpoint": {
            "path": str(sdn_ckpt),
            "sha256": sha256_file(sdn_ckpt),
            "preset": sdn_cfg.preset,
            "recipe": sdn_cfg.recipe,
            "aids": sdn_cfg.aids.active(),
        },
        "occnet_checkpoint": {
            "path": str(occnet_ckpt),
            "sha256": sha256_file(occnet_ckpt),
            "threshold": threshold,
        },
        "data": {
            "root": str(data),
            "split": cfg.split,
            "fingerprint": ds.fingerprint(),
            "objects": len(indices),
            "native_resolution": native,
        },
    }
    return finish_report(out, manifest, start)
