"""The ShapeNet benchmark: Table 1(a), Table 1(b) and Table 2 (DESIGN.md §5).

For each test object, R is its first 16 fixed views. M is the OccNet mesh from R (codes
pooled over the 16 views).

- Table 1(a): the set model encodes R and generates 16 views; M̂_k is the OccNet mesh
  from the first k of them, k in ``recon_views``; metrics(M̂_k, M).
- Table 1(b): the model encodes the first k views of R, k in ``input_views``, and
  generates 16 views; M̂_k from those 16; metrics(M̂_k, M).
- Table 2: OccNet's IoU of the network's occupancies at the 100k points of ``points.npz``
  (codes pooled over the first v real views, probabilities thresholded) against the
  ground-truth occupancy, v in ``table2_views`` (1 and 5 in the paper): OccNet's own
  definition, no mesh (:func:`benchmarks.shapenet_real.table2_rows`).
- Ground-truth rows: M vs the ground truth (``gt_real``), and M̂ (16 from 16) vs the ground
  truth (``gt_recon``). The ground truth (column ``gt_source``) is the object's mesh
  ``model.ply`` when present (``mesh``), else, as in real ShapeNet preprocessed by OccNet, its
  point files (``point files``: :func:`evaluation.geometry.point_file_metrics`): CD x10^3
  against 2048 points and Chamfer-L1, normal consistency and F-score against
  ``dense_points`` points drawn from ``pointcloud.npz``, and the paper's volume IoU estimated
  over the uniform points of ``points.npz``. Both sources add ``occnet_iou``: the mesh's
  occupancy at ``points.npz`` against the ground truth's.

Work done once per object: every mesh is sampled once (2048 and ``dense_points`` surface
points, 2048 volume points in its extraction-grid cells) and its samples serve every
comparison it takes part in; the meshes of an object's generated sets are decoded together.
The real side (M and its samples, the ground truth's samples, Table 2 and ``gt_real``) does
not depend on the set model and is cached on disk across runs
(:mod:`benchmarks.shapenet_real`; ``use_cache=False`` / ``--no-cache`` recomputes it); the
manifest's ``execution.real_side_cache`` says how many objects came from the cache.

Metrics per pair (:mod:`evaluation.geometry`): CD x10^3 (the paper's), Chamfer-L1,
normal consistency, F-score at 1%, the paper's volume IoU.

Per-object status (objects.csv):

- ``mesh_status``: ``ok``; ``empty`` when the predicted or the reference mesh has no faces
  (the pair scores the documented worst value, or the best when both are empty); ``failed``
  when the volume IoU cannot be estimated (:class:`evaluation.geometry.VolumeSamplingError`:
  the mesh encloses no volume or fills less than 0.05% of its bounding box): ``iou`` is NaN
  and left out of its mean and n, the other metrics are kept.
- ``watertight``: False when a mesh whose containment the row uses is not watertight; its
  inside test is then the majority vote of ray parities (:func:`evaluation.geometry.mesh_occupancy`).
  Empty for Table 2's rows, which have no mesh (their ``mesh_status`` is ``ok``).

Summary CSVs (tidy: table, metric, k, category, mean, ci_low, ci_high, n): each metric per
category and as the mean of the category means, with a 95% percentile bootstrap interval
(objects resampled within each category). An interval exists only when every resampled
category has at least ``MIN_PER_STRATUM`` (3) objects (:mod:`evaluation.intervals`);
otherwise ci_low and ci_high are NaN and tables.md prints "n too small". Extra metric rows:

- ``cd_median``: the median of the per-object CD x10^3 in the ``mean`` column (the mean of
  the category medians in the "mean of categories" row), bootstrapped the same way: robust
  to the worst-case values of empty meshes;
- ``n_empty``, ``n_failed``, ``n_not_watertight``: counts of the rows with that status in
  the ``mean`` column (summed over categories in the "mean of categories" row), n = objects,
  no interval.

Seeds (DESIGN.md §6): an object's reconstructions are seeded by
``set_seed(seed, STREAM_RECON, "synset/object_id")`` in every condition (Table 1(a), every k
of Table 1(b): common random numbers), its figure sets by ``STREAM_FIGURE``; the surface and
volume samples of each mesh by ``set_seed(seed, STREAM_GEOMETRY, "synset/object_id|mesh")``
(:func:`benchmarks.shapenet_real.mesh_rng`);
each category's bootstrap by ``set_seed(seed, STREAM_BOOTSTRAP, category)``. So an object's
rows do not depend on ``--workers``, the evaluation order or the other objects scored.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import trimesh
from tqdm import tqdm

from evaluation.geometry import N_POINTS, ExtractionGrid, sample_mesh
from evaluation.inception import InceptionFeatures
from evaluation.intervals import MIN_PER_STRATUM, N_TOO_SMALL, excludes, format_interval, interval_exists
from occnet_multiview.extract import extract_meshes
from occnet_multiview.model import OccupancyNetwork
from sdn.data.occnet_files import Points
from sdn.data.shapenet import ShapeNetViews
from sdn.io import atomic_write_text
from sdn.seeding import STREAM_FIGURE, STREAM_LEARNED, STREAM_RECON, STREAM_UNIFORM, set_seed, set_seeds
from sdn.training import init_distributed

from .distribution import (
    Section,
    SectionInputs,
    SectionSettings,
    append_section,
    compute_section,
    section_entry,
    section_markdown,
    training_sets_or_note,
    write_section,
)
from .figures import save_plot, save_rows, strip, white
from .ladder import ReferenceCache, calibrate, check_single_process, clear_calibration
from .manifest import finish_report, sha256_file, subset_digest
from .models import LoadedModel, ModelContext, load_model, wrap_model
from .models.contract import CheckedSetModel
from .models.folder import Request
from .shapenet_real import (
    GT_MESH,
    GT_POINT_FILES,
    STREAM_GEOMETRY,
    RealSettings,
    RealSide,
    RealSideCache,
    cache_key,
    compute_real_side,
    mesh_rng,
    object_digest,
    score_pair,
    score_truth,
)
from .sharding import gather_to_main, threads_per_rank

METRICS = ("cd", "chamfer_l1", "normal_consistency", "f_score", "iou")
COUNTS = ("n_empty", "n_failed", "n_not_watertight")  # count rows of the summary CSVs
STREAM_BOOTSTRAP = 101  # the bootstrap's stream (shapenet_real.STREAM_GEOMETRY: the mesh samples')
OBJECT_COLUMNS = ["category", "synset", "object_id", "table", "k", *METRICS, "occnet_iou", "mesh_status"]
OBJECT_COLUMNS += ["watertight", "gt_source"]
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
    # The OccNet's precision in evaluation: "fp32", or "bf16" autocast (as it trains; ~3.5x
    # faster decoding on AMX-bf16 CPUs). Part of the config, so reports at different
    # precisions are not compared.
    precision: str = "fp32"
    # The novelty / realism section (benchmarks/distribution.py): on or off; free sets per
    # prior (None: one per scored object); the split the model was trained on (its sets are
    # the memorisation test's training sets); the k of the k-NN figures.
    distribution: bool = True
    free_sets: int | None = None
    train_split: str = "train"
    knn_k: int = 5
    # A local TorchScript Inception (inception-2015-12-05.pt) for the standard FID beside the
    # OccNet-feature figures (evaluation/inception.py); None: none. Never downloaded.
    fid_weights: str | None = None

    def validate(self) -> None:
        for name in ("recon_views", "input_views", "table2_views"):
            ks = getattr(self, name)
            if not ks or any(k < 1 or k > self.real_views for k in ks):
                raise ValueError(f"{name} must be set sizes in [1, {self.real_views}], got {ks}")
        if self.max_objects is not None and self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.free_sets is not None and self.free_sets < 2:
            raise ValueError(f"free_sets must be >= 2 (or None: one per object), got {self.free_sets}")
        if self.distribution and self.train_split == self.split:
            raise ValueError(f"train_split must differ from the evaluated split {self.split!r}")


def load_models(
    model, occnet_ckpt, data, cfg: ShapeNetBenchConfig, cache_dir=None, model_args: dict | None = None
) -> tuple[LoadedModel, OccupancyNetwork]:
    """The set model and the OccNet. ``model``: a spec (``--model``: an SDN checkpoint path,
    ``python:module:factory``, ``ref:NAME``, ``folder:DIR``; :func:`benchmarks.models.load_model`,
    ``model_args`` for ``python:``), an object implementing :class:`sdn.set_model.SetModel`
    (:func:`benchmarks.models.wrap_model`) or a :class:`benchmarks.models.LoadedModel`. The
    model must work at the OccNet's resolution (the contract checks it)."""
    occ = OccupancyNetwork.from_checkpoint(occnet_ckpt)
    if isinstance(model, LoadedModel):
        return model, occ
    context = ModelContext(
        "shapenet", Path(data), cfg.split, occ.resolution, cfg.seed, cache_dir, cfg.categories or None, None,
        train_split=cfg.train_split,
    )  # fmt: skip
    if isinstance(model, (str, Path)):
        return load_model(str(model), context, model_args), occ
    return wrap_model(model, context), occ


def open_split(data, cfg: ShapeNetBenchConfig, resolution: int, cache_dir, progress: bool) -> ShapeNetViews:
    """The evaluated split with each object's fixed first ``real_views`` views."""
    return ShapeNetViews(
        data, cfg.split, categories=cfg.categories or None, set_size=cfg.real_views, resolution=resolution,
        random_views=False, seed=cfg.seed, cache_dir=cache_dir, progress=progress,
    )  # fmt: skip


def selected_objects(ds: ShapeNetViews, cfg: ShapeNetBenchConfig) -> list[int]:
    """The scored objects' indices: all, or ``max_objects`` spread evenly over the split (so
    every category is seen)."""
    n_obj = len(ds) if cfg.max_objects is None else min(cfg.max_objects, len(ds))
    return [int(i) for i in np.linspace(0, len(ds) - 1, n_obj).round()]


def figure_picks(indices: list[int]) -> list[int]:
    """The (at most 4) objects the figures show, spread over the scored ones."""
    return [indices[int(j)] for j in np.linspace(0, len(indices) - 1, min(4, len(indices))).round()]


def _native_resolution(ds: ShapeNetViews) -> int:
    from PIL import Image

    with Image.open(ds.objects[0].views[0]) as im:
        return im.size[0]


def object_key(ds: ShapeNetViews, index: int) -> str:
    """The object's id ``synset/object_id``: its seeds and its entry in the subset digest."""
    obj = ds.objects[index]
    return f"{obj.synset}/{obj.object_id}"


# ----------------------------------------------------------------------------------
# Per-object work (runs in worker processes)
# ----------------------------------------------------------------------------------

_STATE: dict = {}


def real_settings(cfg: ShapeNetBenchConfig, threshold: float) -> RealSettings:
    return RealSettings(
        cfg.seed, threshold, cfg.resolution0, cfg.upsampling_steps, cfg.real_views, tuple(cfg.table2_views),
        cfg.dense_points, cfg.precision,
    )  # fmt: skip


def _set_state(
    model: CheckedSetModel,
    occ: OccupancyNetwork,
    ds: ShapeNetViews,
    cfg: ShapeNetBenchConfig,
    cache: RealSideCache | None,
) -> None:
    threshold = cfg.threshold if cfg.threshold is not None else occ.threshold
    _STATE.update(model=model, occ=occ, ds=ds, cfg=cfg, threshold=threshold, cache=cache)


def _init_worker(
    spec: str, model_args, occnet_ckpt, data, cfg: ShapeNetBenchConfig, cache_dir, cache, threads: int
) -> None:
    torch.set_num_threads(threads)
    loaded, occ = load_models(spec, occnet_ckpt, data, cfg, cache_dir, model_args)
    ds = open_split(data, cfg, occ.resolution, cache_dir, progress=False)
    _set_state(loaded.model, occ, ds, cfg, cache)


def reconstruction_requests(cfg: ShapeNetBenchConfig, key: str, real: torch.Tensor) -> dict[str, Request]:
    """What Tables 1(a) and 1(b) ask of the set model for object ``key`` with real views
    ``real`` (real_views, 3, H, W): ``all``, real_views views from all of them (1(a), and
    1(b)'s k = real_views), and ``input|k``, real_views views from the first k, for each
    other k of ``input_views``. One seed per object in every condition (common random
    numbers): ``set_seed(seed, STREAM_RECON, key)``."""
    seed = set_seed(cfg.seed, STREAM_RECON, key)
    n = cfg.real_views
    requests = {"all": Request("reconstruct", n, seed, real, about={"object": key, "use": "table1", "k": n})}
    for k in cfg.input_views:
        if k != n:
            about = {"object": key, "use": "table1b", "k": k}
            requests[f"input|{k}"] = Request("reconstruct", n, seed, real[:k], about=about)
    return requests


def _real_side(index: int, real: torch.Tensor, points: Points, key: str) -> tuple[RealSide, bool]:
    """Object ``index``'s real side (``real``: its views, ``points``: its points.npz), from the
    cache when it holds it (then True), else computed (and stored when a cache is used)."""
    s = _STATE
    ds, obj = s["ds"], s["ds"].objects[index]
    files = [obj.path / name for name in ("points.npz", "pointcloud.npz", "model.ply")]
    cache, digest = s["cache"], None
    if cache is not None:
        digest = object_digest(real, files)
        side = cache.load(key, digest)
        if side is not None:
            return side, True
    truth_mesh = trimesh.load(files[2], process=False) if files[2].is_file() else None
    cloud = ds.pointcloud(index) if truth_mesh is None and files[1].is_file() else None
    side = compute_real_side(
        s["occ"], real, points, truth_mesh, cloud, key, real_settings(s["cfg"], s["threshold"])
    )  # fmt: skip
    if cache is not None:
        cache.save(key, digest, side)
    return side, False


def evaluate_object(index: int) -> tuple[list[dict], bool]:
    """Every row of every table for one object (uses the worker's models, data and cache),
    and whether its real side came from the cache.

    The set model makes 16 views from all real views (Table 1(a): M̂_k from their first k) and
    16 from each smaller input set (Table 1(b)); their meshes are extracted together (one
    decoder pass per refinement level), each mesh is sampled once and compared with M's
    samples (1(b)'s k = 16 is 1(a)'s k = 16 mesh: encoding all views with the same seed
    reproduces it), and the 16-from-16 mesh with the ground truth's (``gt_recon``)."""
    s = _STATE
    cfg, ds, model, occ, threshold = s["cfg"], s["ds"], s["model"], s["occ"], s["threshold"]
    obj, key = ds.objects[index], object_key(ds, index)
    real = ds[index]["images"]  # (16, 3, H, W)
    points = ds.points(index)  # read once: the real side (when computed) and gt_recon
    side, cached = _real_side(index, real, points, key)
    generated = {name: r.answer(model) for name, r in reconstruction_requests(cfg, key, real).items()}
    sets = {f"recon|{k}": generated["all"][:k] for k in sorted({*cfg.recon_views, cfg.real_views})}
    sets.update((name, images) for name, images in generated.items() if name != "all")
    meshes = extract_meshes(
        occ, list(sets.values()), threshold, cfg.resolution0, cfg.upsampling_steps, precision=cfg.precision
    )
    samples = {
        name: sample_mesh(
            mesh, mesh_rng(cfg.seed, key, name), N_POINTS, cfg.dense_points, ExtractionGrid(grid, threshold)
        )
        for name, (mesh, grid) in zip(sets, meshes, strict=True)
    }
    full_name = f"recon|{cfg.real_views}"
    full = samples[full_name]
    scores = {}  # mesh name -> its metrics against M, each pair scored once

    def against_m(name: str) -> dict:
        if name not in scores:
            scores[name] = score_pair(samples[name], side.real)
        return scores[name]

    rows = [{"table": "table1a", "k": k, **against_m(f"recon|{k}")} for k in cfg.recon_views]
    for k in cfg.input_views:
        rows.append(
            {"table": "table1b", "k": k, **against_m(full_name if k == cfg.real_views else f"input|{k}")}
        )
    rows += side.rows
    gt_recon = score_truth(full, side.truth, points, side.gt_source)
    rows.append({"table": "gt_recon", "k": cfg.real_views, **gt_recon})
    base = {"category": obj.category.split(",")[0], "synset": obj.synset, "object_id": obj.object_id}
    order = {t: i for i, t in enumerate(("table1a", "table1b", "table2", "gt_real", "gt_recon"))}
    return [{**base, **r} for r in sorted(rows, key=lambda r: order[r["table"]])], cached


# ----------------------------------------------------------------------------------
# Aggregation
# ----------------------------------------------------------------------------------


def bootstrap_summary(
    df: pd.DataFrame, metric: str, n_boot: int, seed: int, statistic: str = "mean"
) -> list[dict]:
    """Per-category statistic and the mean of the category statistics, each with a 95%
    percentile bootstrap interval over ``n_boot`` resamples (objects drawn with replacement
    within each category; category c's draws seeded by ``set_seed(seed, STREAM_BOOTSTRAP, c)``,
    so they do not depend on the other categories).

    df: one row per object (columns category, <metric>); NaN values (failed metrics) are left
    out. statistic: "mean" or "median" of a category's values, reported in the ``mean`` field.
    Rows: category, mean, ci_low, ci_high, n (the values used). An interval exists only when
    every resampled category has >= ``MIN_PER_STRATUM`` values (the "mean of categories" row
    needs every category to); otherwise ci_low and ci_high are NaN. A category without values
    has a NaN statistic, and so has the "mean of categories" row."""
    reduce = {"mean": np.mean, "median": np.median}.get(statistic)
    if reduce is None:
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    groups = {c: g[metric].dropna().to_numpy(float) for c, g in df.groupby("category", sort=True)}
    nan = float("nan")
    out, boot = [], {}
    for c, v in groups.items():
        row = {"category": c, "mean": float(reduce(v)) if len(v) else nan, "ci_low": nan, "ci_high": nan}
        if interval_exists([len(v)]):
            rng = np.random.default_rng(set_seed(seed, STREAM_BOOTSTRAP, c))
            boot[c] = reduce(v[rng.integers(0, len(v), size=(n_boot, len(v)))], axis=1)  # (n_boot,)
            row["ci_low"], row["ci_high"] = (float(x) for x in np.percentile(boot[c], [2.5, 97.5]))
        out.append({**row, "n": len(v)})
    overall = {"category": "mean of categories", "mean": float(np.mean([r["mean"] for r in out]))}
    overall["ci_low"] = overall["ci_high"] = nan
    if interval_exists(len(v) for v in groups.values()):
        lo, hi = np.percentile(np.mean([boot[c] for c in groups], axis=0), [2.5, 97.5])
        overall["ci_low"], overall["ci_high"] = float(lo), float(hi)
    out.append({**overall, "n": int(sum(len(v) for v in groups.values()))})
    return out


def count_rows(g: pd.DataFrame) -> list[dict]:
    """The count rows of one (table, k) group g (one row per object): ``n_empty``, ``n_failed``
    (rows whose mesh_status is empty / failed) and ``n_not_watertight`` (watertight False),
    per category and summed in the "mean of categories" row; mean = the count, n = objects,
    no interval (NaN bounds)."""
    flags = {
        "n_empty": g.mesh_status == "empty",
        "n_failed": g.mesh_status == "failed",
        "n_not_watertight": g.watertight.eq(False),  # Table 2 rows have no mesh (None)
    }
    rows = []
    for metric in COUNTS:
        per_cat = flags[metric].groupby(g.category, sort=True)
        cats = [(c, int(f.sum()), len(f)) for c, f in per_cat] + [
            ("mean of categories", int(flags[metric].sum()), len(g))
        ]
        rows += [
            {"metric": metric, "category": c, "mean": count, "ci_low": np.nan, "ci_high": np.nan, "n": n}
            for c, count, n in cats
        ]
    return rows


def _table_metrics(table: str) -> list[str]:
    if table == "table2":
        return ["occnet_iou"]
    return [*METRICS, "occnet_iou"] if table.startswith("gt_") else list(METRICS)


def summarise(objects: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Tidy summary: one row per (table, metric, k, category) with mean, CI and n: each of the
    table's metrics (:func:`bootstrap_summary`), ``cd_median`` (median per category, mean of the
    category medians overall) and the counts of :func:`count_rows`."""
    rows = []
    for (table, k), g in objects.groupby(["table", "k"], sort=True):
        cond = {"table": table, "k": int(k)}
        for metric in _table_metrics(table):
            rows += [{**cond, "metric": metric, **r} for r in bootstrap_summary(g, metric, n_boot, seed)]
        if "cd" in _table_metrics(table):
            median = bootstrap_summary(g, "cd", n_boot, seed, statistic="median")
            rows += [{**cond, "metric": "cd_median", **r} for r in median]
        rows += [{**cond, **r} for r in count_rows(g)]
    columns = ["table", "metric", "k", "category", "mean", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=columns)


def paired_differences(objects: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Whether the conditions are separated: for each table with several k, the per-object
    difference metric(k) - metric(k0) against the table's smallest k0, on the same objects,
    summarised like :func:`summarise` (category means and the mean of category means, each
    with a 95% bootstrap interval over objects, when every category has >= MIN_PER_STRATUM
    objects with both values). A paired interval that excludes 0 separates the two
    conditions even when their marginal intervals overlap.
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
    """'mean [ci_low, ci_high]', or 'mean [n too small]' when the interval does not exist."""
    return f"{r['mean']:.3f} {format_interval(r['ci_low'], r['ci_high'])}"


def _table_head(title: str, first: str, ks) -> list[str]:
    """A Markdown section title and table header with one column per k."""
    return [
        f"### {title}",
        "",
        f"| {first} | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|" + "---:|" * len(ks),
    ]


def _count_table(summary: pd.DataFrame) -> list[str]:
    """The empty / failed / not-watertight counts per table and k (all categories), and per
    category wherever one of them is non-zero."""
    counts = summary[summary.metric.isin(COUNTS)]
    if counts.empty:
        return []
    wide = counts.pivot_table(
        index=["table", "k", "category"], columns="metric", values="mean", aggfunc="first"
    )
    objects = counts[counts.metric == COUNTS[0]].set_index(["table", "k", "category"])["n"]
    lines = [
        "### Empty and failed meshes",
        "",
        "empty: the predicted or reference mesh has no faces (scored with the documented worst value, "
        "the best when both are empty); failed: the volume IoU could not be estimated (the mesh encloses "
        "no volume or fills < 0.05% of its bounding box; IoU left out of the mean); not watertight: "
        "containment by a majority vote of ray parities along 3 directions instead of a single ray test.",
        "",
        "| table | k | category | empty | failed | not watertight | objects |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for (table, k, cat), r in wide.iterrows():
        if cat != "mean of categories" and not any(r[c] for c in COUNTS):
            continue
        name = "all" if cat == "mean of categories" else cat
        cells = " | ".join(str(int(r[c])) for c in COUNTS)
        lines.append(f"| {table} | {k} | {name} | {cells} | {int(objects[(table, k, cat)])} |")
    return lines + [""]


def tables_markdown(
    summary: pd.DataFrame,
    differences: pd.DataFrame,
    header: str,
    real_views: int = 16,
    gt_sources: dict[str, int] | None = None,
) -> str:
    """tables.md: the paper-shaped tables (mean of category means, 95% CI or "n too small")
    with the paper's numbers beside ours, the notes (interval rule, CD median, ground-truth
    source: ``gt_sources`` maps a source to its number of objects), the empty / failed mesh
    counts, the paired differences between conditions (CD and IoU; "CI excludes 0" is
    "n too small" where the interval does not exist), then per-category tables."""
    values = summary[~summary.metric.isin(COUNTS)]
    overall = values[values.category == "mean of categories"]
    lines = [header, ""]
    titles = {
        "table1a": f"Table 1(a): mesh from k reconstructed views vs mesh from the {real_views} real views",
        "table1b": f"Table 1(b): code from the first k real views, {real_views} reconstructed views",
        "table2": "Table 2: OccNet IoU against ground truth, codes pooled over v real views",
        "gt_real": f"Ground truth: mesh from the {real_views} real views vs the ground truth",
        "gt_recon": f"Ground truth: mesh from {real_views} reconstructed views (code from {real_views}) "
        "vs the ground truth",
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
        "[95% bootstrap CI]. CD is x10^3 (squared distances, 2048 points per mesh); cd_median is the",
        "mean of the category medians of CD; IoU in Table 1 is the paper's volume overlap; Table 2's",
        "is OccNet's occupancy IoU over points.npz.",
        f"An interval is shown only when every category resampled has at least {MIN_PER_STRATUM} objects;",
        f'otherwise "{N_TOO_SMALL}" (and no separation verdict is drawn from it).',
    ]
    if gt_sources:
        described = {
            GT_MESH: "the ground-truth mesh model.ply",
            GT_POINT_FILES: "pointcloud.npz (CD, Chamfer-L1, normal consistency, F-score) and points.npz "
            "(volume IoU and occnet_iou), as OccNet evaluates",
        }
        parts = [f"{described[src]} for {n} objects" for src, n in sorted(gt_sources.items())]
        lines.append("Ground-truth rows score against " + "; ".join(parts) + ".")
    lines.append("")
    lines += _count_table(summary)
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
            separated = excludes(r["ci_low"], r["ci_high"], 0.0)
            name = r["metric"].removeprefix("delta_")
            lines.append(f"| {r['table']} | {name} | {r['k']} vs {r['versus_k']} | {_fmt(r)} | {separated} |")
        lines.append("")
    lines += [
        "## Per category",
        "",
    ]
    per_cat = values[values.category != "mean of categories"]
    for (table, metric), g in per_cat.groupby(["table", "metric"], sort=False):
        ks = sorted(g.k.unique())
        lines += _table_head(f"{table} — {metric}", "category", ks)
        for cat, gc in g.groupby("category"):
            cells = {int(r["k"]): _fmt(r) for r in gc.to_dict("records")}
            lines.append(f"| {cat} | " + " | ".join(cells.get(k, "") for k in ks) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_curves(summary: pd.DataFrame, out: Path) -> list[Path]:
    """CD and IoU against the number of views, one PNG per metric, with 95% CIs as error
    bars where an interval exists (none where it is "n too small")."""
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
            (line,) = ax.plot(g.k, g["mean"], marker="o", label=name)
            ci = g[np.isfinite(g.ci_low) & np.isfinite(g.ci_high)]
            if not ci.empty:
                err = [np.clip(ci["mean"] - ci.ci_low, 0, None), np.clip(ci.ci_high - ci["mean"], 0, None)]
                ax.errorbar(ci.k, ci["mean"], yerr=err, fmt="none", capsize=3, color=line.get_color())
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of views k")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
        paths.append(save_plot(fig, out / f"{metric}_vs_views.png"))
    return paths


FIGURE_VIEWS = 8  # images per row of the figures


def figure_requests(ds: ShapeNetViews, picks: list[int], cfg: ShapeNetBenchConfig, can_sample: bool) -> dict:
    """What the figures ask of the set model: per picked object i, ``(i, k, n_out)`` -> the
    reconstruction of its first k real views (Fig. 2: k = n_out = 8; Fig. 5: k = n_out =
    real_views; Fig. 13: k = 1, 4, 8, n_out = 8), seeded ``set_seed(seed, STREAM_FIGURE,
    synset/object_id)``; and, when the model can sample, ``(prior, j)`` -> free sample j of 8
    images (Fig. 4), seeded ``set_seed(seed, STREAM_LEARNED or STREAM_UNIFORM, j)``."""
    n, requests = FIGURE_VIEWS, {}
    for i in picks:
        key = object_key(ds, i)
        real = ds[i]["images"]
        seed = set_seed(cfg.seed, STREAM_FIGURE, key)
        for k, n_out in ((n, n), (cfg.real_views, cfg.real_views), (1, n), (4, n)):
            about = {"object": key, "use": "figures", "k": min(k, len(real))}
            requests[(i, min(k, len(real)), n_out)] = Request(
                "reconstruct", n_out, seed, real[:k], about=about
            )
    if can_sample:
        for prior, stream in (("learned", STREAM_LEARNED), ("uniform", STREAM_UNIFORM)):
            for j, seed in enumerate(set_seeds(cfg.seed, stream, range(len(picks)))):
                requests[(prior, j)] = Request("sample", n, seed, prior=prior, about={"use": "figures"})
    return requests


def write_figures(
    model: CheckedSetModel,
    can_sample: bool,
    occ: OccupancyNetwork,
    ds: ShapeNetViews,
    picks: list[int],
    cfg: ShapeNetBenchConfig,
    threshold: float,
    out: Path,
) -> list[Path]:
    """Fig. 2/9 (input vs reconstructed sets), Fig. 4/11 (learned vs uniform prior samples;
    only for a model that can sample), Fig. 5 (real vs reconstructed meshes, rendered) and
    Fig. 13 (1/4/8 input views), from :func:`figure_requests`."""
    from sdn.data.synthetic_shapes.render import render_mesh, sample_cameras

    res, n = model.resolution, FIGURE_VIEWS
    images = {name: r.answer(model) for name, r in figure_requests(ds, picks, cfg, can_sample).items()}
    paths = []

    def save(name: str, rows: list[np.ndarray]) -> None:
        paths.append(save_rows(out / name, rows))

    def real(i: int, k: int) -> torch.Tensor:
        return ds[i]["images"][:k]

    rows = []
    for i in picks:
        rows += [strip(real(i, n)), strip(images[(i, len(real(i, n)), n)]), white(4, n * res)]
    save("fig2_input_vs_reconstruction.png", rows)
    if can_sample:
        save(
            "fig4_learned_vs_uniform_prior.png",
            [strip(images[("learned", j)]) for j in range(len(picks))]
            + [white(8, n * res)]
            + [strip(images[("uniform", j)]) for j in range(len(picks))],
        )
    cams = sample_cameras(np.random.default_rng(cfg.seed), 4, 2 * res, radius=0.8)
    rows = []
    for i in picks:
        pair = (real(i, cfg.real_views), images[(i, cfg.real_views, cfg.real_views)])
        meshes = extract_meshes(
            occ, pair, threshold, cfg.resolution0, cfg.upsampling_steps, precision=cfg.precision
        )
        views = [np.concatenate(list(render_mesh(m, cams, 2 * res)), axis=1) for m, _ in meshes]
        rows += [
            np.concatenate([views[0], white(2 * res, 8), views[1]], axis=1),
            white(4, views[0].shape[1] * 2 + 8),
        ]
    save("fig5_real_vs_reconstructed_meshes.png", rows)
    rows = []
    for i in picks:
        rows.append(strip(real(i, n)))
        rows += [strip(images[(i, min(k, len(real(i, n))), n)]) for k in (1, 4, 8)]
        rows.append(white(4, n * res))
    save("fig13_reconstruction_by_input_views.png", rows)
    return paths


def section_requests(cfg: ShapeNetBenchConfig, count: int) -> list[Request]:
    """The novelty / realism section's free sets: ``cfg.free_sets`` (None: ``count``, one per
    scored object) sets of ``real_views`` images per prior, set s seeded
    ``set_seed(seed, STREAM_LEARNED or STREAM_UNIFORM, s)``: learned first, then uniform."""
    requests = []
    for prior, stream in (("learned", STREAM_LEARNED), ("uniform", STREAM_UNIFORM)):
        for s, seed in enumerate(set_seeds(cfg.seed, stream, range(cfg.free_sets or count))):
            about = {"use": "novelty", "set": s}
            requests.append(Request("sample", cfg.real_views, seed, prior=prior, about=about))
    return requests


@torch.no_grad()
def shapes_section(
    model: CheckedSetModel, can_sample: bool, occ: OccupancyNetwork, ds: ShapeNetViews, indices: list[int],
    cfg: ShapeNetBenchConfig, data, cache_dir, progress: bool, fid: InceptionFeatures | None = None,
) -> tuple[Section, dict]:  # fmt: skip
    """The novelty / realism section (:mod:`benchmarks.distribution`) in the OccNet's image
    feature space: each view's code (:meth:`OccupancyNetwork.view_codes`, fp32), sets embedded
    one at a time (``fid``: also their Inception features, one set per batch). Returns the
    section and its manifest entry."""
    inception: dict[str, list] = {"test": [], "free": [], "uniform": []}

    def embed(images: torch.Tensor, side: str | None = None) -> np.ndarray:  # (V, 3, H, W) -> (V, c)
        if fid is not None and side is not None:
            inception[side].append(fid.features(images))
        return occ.view_codes(images[None].float())[0].numpy()

    bar = lambda items, what: tqdm(items, desc=what, unit="set", disable=not progress)  # noqa: E731
    test = np.stack([embed(ds[i]["images"], "test") for i in bar(indices, "novelty: real test sets")])
    free = uniform = None
    if can_sample:
        requests = section_requests(cfg, len(indices))
        sides = {"learned": "free", "uniform": "uniform"}
        codes = np.stack(
            [embed(r.answer(model), sides[r.prior]) for r in bar(requests, "novelty: free sets")]
        )
        free, uniform = codes[: len(codes) // 2], codes[len(codes) // 2 :]
    train_ds, note = training_sets_or_note(
        "shapenet", data, cfg.train_split, cfg.real_views, occ.resolution, cfg.seed, cache_dir,
        categories=cfg.categories or None, progress=progress,
    )  # fmt: skip
    train = None
    if train_ds is not None:
        train = np.stack(
            [embed(train_ds[i]["images"]) for i in bar(range(len(train_ds)), "novelty: train sets")]
        )
    feature = (
        f"the OccNet image encoder's per-view code ({occ.cfg.model.encoder}, c_dim {test.shape[-1]}, fp32)"
    )
    features = None
    if fid is not None and can_sample:
        features = {side: np.concatenate(rows) for side, rows in inception.items()}
    inputs = SectionInputs(test, free, uniform, train, feature, note, features)
    section = compute_section(inputs, SectionSettings(k=cfg.knn_k, n_boot=cfg.bootstrap, seed=cfg.seed))
    fingerprint = None if train_ds is None else train_ds.fingerprint()
    return section, section_entry(inputs, cfg.train_split, fingerprint, fid)


def _header(loaded: LoadedModel, occnet_ckpt, threshold, data, cfg, keys, native, resolution) -> str:
    described = loaded.heading()
    if not loaded.can_sample:
        described += " (no `sample`: no prior-sample figure)"
    return (
        f"# ShapeNet benchmark\n\n{described}, OccNet `{Path(occnet_ckpt).name}` (threshold {threshold:g}, "
        f"evaluated in {cfg.precision}); "
        f"data `{data}` split {cfg.split}, {len(keys)} objects (subset sha256 `{subset_digest(keys)}`), "
        f"{resolution} px (native {native} px).\n\nSeeds: run seed {cfg.seed}; an object's reconstructions "
        f"set_seed({cfg.seed}, STREAM_RECON, synset/object_id) in every condition (common random numbers), "
        "its figures STREAM_FIGURE; metric samples per (object, mesh); bootstrap per category."
    )


def run_shapenet_benchmark(
    model,
    occnet_ckpt,
    data,
    out,
    cfg: ShapeNetBenchConfig,
    cache_dir=None,
    progress: bool = True,
    command: str = "",
    use_cache: bool = True,
    model_args: dict | None = None,
) -> dict:
    """Run the benchmark and write the report folder; returns the manifest.

    model: a spec (``--model``; :func:`load_models`, ``model_args`` for ``python:``), a
    :class:`benchmarks.models.LoadedModel`, or an object implementing
    :class:`sdn.set_model.SetModel` (objects need ``cfg.workers`` 1: worker processes load the
    model from its spec). The harness talks to the model only through the contract
    (:class:`benchmarks.models.contract.CheckedSetModel`).
    cache_dir: the decoded-image cache folder; the real-side cache lives in its
    ``shapenet-real`` subfolder (:mod:`benchmarks.shapenet_real`). use_cache: False computes
    every real side afresh and stores none (the report is the same either way).

    Launched by torchrun (``torchrun --nproc_per_node N -m benchmarks.cli shapenet ...``, gloo
    on CPU), rank r scores the strided slice ``indices[r::N]`` (each rank with ``cfg.workers``
    processes and its share of the node's cores), rank 0 gathers every object's rows, puts them
    in the unsharded order and alone writes the report; the other ranks return ``{}``. Every
    draw is seeded by the object, so the report does not depend on the world size beyond the
    float noise of another thread count per rank (tests/test_shapenet_sharding.py)."""
    cfg.validate()
    fid = InceptionFeatures(cfg.fid_weights) if cfg.fid_weights and cfg.distribution else None
    if not isinstance(model, (str, Path)) and cfg.workers != 1:
        raise ValueError(
            f"a set model object is evaluated in this process only: workers must be 1, got {cfg.workers} "
            "(name the model by a spec, --model, to use worker processes)"
        )
    start = time.time()
    out = Path(out)
    d = init_distributed("cpu")
    loaded, occ = load_models(model, occnet_ckpt, data, cfg, cache_dir, model_args)
    set_model = loaded.model
    ds = open_split(data, cfg, occ.resolution, cache_dir, progress and d.main)
    native = _native_resolution(ds)
    threshold = cfg.threshold if cfg.threshold is not None else occ.threshold
    indices = selected_objects(ds, cfg)
    keys = [object_key(ds, i) for i in indices]
    threads = threads_per_rank(cfg.workers)
    mine = indices[d.rank :: d.world]  # a strided slice: every rank sees every category
    occnet_sha = sha256_file(occnet_ckpt)
    settings = real_settings(cfg, threshold)
    cache = RealSideCache(cache_dir, cache_key(occnet_sha, settings)) if use_cache else None
    by_object: dict[int, tuple[list[dict], bool]] = {}
    bar = tqdm(total=len(mine), desc=f"objects (rank {d.rank})", unit="obj", disable=not progress)
    if cfg.workers == 1:
        torch.set_num_threads(threads)
        _set_state(set_model, occ, ds, cfg, cache)
        for i in mine:
            by_object[i] = evaluate_object(i)
            bar.update()
    else:
        init = (str(model), model_args, occnet_ckpt, data, cfg, cache_dir, cache, threads)
        with get_context("spawn").Pool(cfg.workers, initializer=_init_worker, initargs=init) as pool:
            for i, r in zip(mine, pool.imap(evaluate_object, mine), strict=True):
                by_object[i] = r
                bar.update()
    bar.close()
    by_object = gather_to_main(d, by_object)  # rank 0 alone writes the report
    if by_object is None:
        return {}
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for i in indices for row in by_object[i][0]]  # the unsharded order
    from_cache = sum(by_object[i][1] for i in indices)
    if progress:
        print(
            f"real side: {from_cache} of {len(indices)} objects from the cache"
            if cache
            else "real side: no cache"
        )
    objects = pd.DataFrame(rows, columns=OBJECT_COLUMNS)
    summary = summarise(objects, cfg.bootstrap, cfg.seed)
    differences = paired_differences(objects, cfg.bootstrap, cfg.seed)
    atomic_write_text(out / "objects.csv", objects.to_csv(index=False))
    for table in ("table1a", "table1b", "table2"):
        atomic_write_text(out / f"{table}.csv", summary[summary.table == table].to_csv(index=False))
    atomic_write_text(
        out / "ground_truth.csv", summary[summary.table.str.startswith("gt_")].to_csv(index=False)
    )
    gt_rows = objects[objects.table == "gt_real"]
    gt_sources = dict(Counter(gt_rows.gt_source))
    header = _header(loaded, occnet_ckpt, threshold, data, cfg, keys, native, set_model.resolution)
    atomic_write_text(out / "differences.csv", differences.to_csv(index=False))
    figures = plot_curves(summary, out)
    picks = figure_picks(indices)
    figures += write_figures(set_model, loaded.can_sample, occ, ds, picks, cfg, threshold, out)
    section_md, distribution = [], None
    if cfg.distribution:
        section, distribution = shapes_section(
            set_model, loaded.can_sample, occ, ds, indices, cfg, data, cache_dir, progress, fid
        )
        write_section(section, out)
        section_md = section_markdown(section)
    markdown = tables_markdown(summary, differences, header, cfg.real_views, gt_sources)
    atomic_write_text(out / "tables.md", append_section(markdown, section_md))
    manifest = {
        "benchmark": "shapenet",
        "command": command,
        "config": asdict(cfg),
        "model": loaded.manifest(),
        "execution": {
            "real_side_cache": {
                "used": cache is not None,
                "folder": str(cache.folder) if cache else None,
                "objects_from_cache": from_cache,
                "objects_computed": len(indices) - from_cache,
            },
        },
        "occnet_checkpoint": {
            "path": str(occnet_ckpt),
            "sha256": occnet_sha,
            "threshold": threshold,
        },
        "data": {
            "root": str(data),
            "split": cfg.split,
            "fingerprint": ds.fingerprint(),
            "objects": len(indices),
            "subset_sha256": subset_digest(keys),
            "native_resolution": native,
            "ground_truth_sources": gt_sources,
        },
        "seeds": {
            "seed": cfg.seed,
            "reconstructions": "set_seed(seed, STREAM_RECON, synset/object_id), every condition",
            "figures": "set_seed(seed, STREAM_FIGURE, synset/object_id)",
            "metric_samples": f"set_seed(seed, {STREAM_GEOMETRY}, synset/object_id|mesh), "
            "mesh in real, truth, recon|k, input|k",
            "bootstrap": f"set_seed(seed, {STREAM_BOOTSTRAP}, category)",
        },
        "min_per_stratum": MIN_PER_STRATUM,
        "distribution": distribution,
    }
    return finish_report(out, manifest, start)


def run_calibrated_shapenet(
    model,
    occnet_ckpt,
    data,
    out,
    cfg: ShapeNetBenchConfig,
    references: bool = False,
    cache_dir=None,
    use_cache: bool = True,
    command: str = "",
    model_args: dict | None = None,
    progress: bool = True,
    echo=print,
    bounds_only: bool = False,
) -> dict:
    """:func:`run_shapenet_benchmark`, then, with ``references``, the calibration ladder with
    the same settings into ``out/references`` and ``out/calibration.csv|md``
    (:mod:`benchmarks.ladder`; the references' reports are cached unless ``use_cache`` is
    False). Returns the model's manifest."""
    check_single_process(references)
    clear_calibration(Path(out))

    def run(spec, folder, args=None):
        return run_shapenet_benchmark(
            spec, occnet_ckpt, data, folder, cfg, cache_dir, progress, command, use_cache, args
        )

    manifest = run(model, out, model_args)
    cache = ReferenceCache(cache_dir) if use_cache else None
    return calibrate(
        "shapenet", run, Path(out), manifest, references, cfg.bootstrap, cfg.seed, cache, echo, bounds_only
    )
