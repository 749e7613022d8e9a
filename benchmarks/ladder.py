"""The calibration ladder: reference set models of known quality scored beside a model, and
the model's normalised scores (DESIGN.md §6; :mod:`benchmarks.models.references`).

``--references`` makes a benchmark score, after the model, each reference of
:data:`LADDER` (into ``<out>/references/<name>/``, ordinary reports) and write
``<out>/calibration.csv`` and ``<out>/calibration.md``: for every headline metric the
model's value, each reference's, and the normalised score

    s = (model - floor) / (ceiling - floor)

with the ceiling ``ref:oracle`` (real images of the same object / identity, not the input)
and the floor ``ref:other-category`` (shapes) or ``ref:other-identity`` (faces): s = 1 is a
perfect stochastic reconstruction, s = 0 a model that keeps nothing of the input. It is
unitless and may leave [0, 1] (a model better than the oracle or worse than the floor).

Headline metrics: shapes Table 1(a) and 1(b) IoU and CD at every k (lower CD is better: the
formula handles either direction); faces `recon` and `recon and real` AUC and TPR at FPR
1e-1 at every context size.

Intervals. Shapes: a paired 95% percentile bootstrap over objects, resampled within each
category (the same resample for the model and both references, seeded by ``seed`` and the
category) of s computed from the means of category means; it exists only when every category
has >= ``MIN_PER_STRATUM`` objects with all three values, else "n too small". Faces: the
identity bootstrap of each curve is not kept in the reports, so no paired interval is
computed; the point value is given and the interval column says "not computed".

The references' rows depend only on the data, the OccNet or embedder, the settings and the
seed; on shapes the real side is cached, and each reference pays for its own meshes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.intervals import MIN_PER_STRATUM, format_interval, interval_exists
from sdn.io import atomic_write_text
from sdn.seeding import set_seed

LADDER = {
    "shapenet": {"ceiling": "oracle", "floor": "other-category", "also": ("same-category", "copy")},
    "faces": {"ceiling": "oracle", "floor": "other-identity", "also": ("copy",)},
}
HIGHER_IS_BETTER = {"iou": True, "cd": False, "auc": True, "tpr@0.1": True}
STREAM_LADDER = 102  # the calibration bootstrap's stream
COLUMNS = ["table", "metric", "k", "model", "ceiling", "floor", "normalised", "ci_low", "ci_high", "n"]


def references(benchmark: str) -> list[str]:
    """The reference names scored for ``benchmark``: ceiling, floor, then the others."""
    rung = LADDER[benchmark]
    return [rung["ceiling"], rung["floor"], *rung["also"]]


def normalise(model: float, ceiling: float, floor: float) -> float:
    """(model - floor) / (ceiling - floor); NaN when ceiling equals floor (no scale)."""
    span = ceiling - floor
    return float((model - floor) / span) if span != 0 else float("nan")


def _mean_of_category_means(values: np.ndarray, categories: np.ndarray) -> float:
    return float(np.mean([values[categories == c].mean() for c in np.unique(categories)]))


def _paired_interval(
    vals: dict[str, np.ndarray], cats: np.ndarray, n_boot: int, seed: int, name: str
) -> tuple[float, float]:
    """The 95% percentile interval of the normalised score over ``n_boot`` resamples of the
    objects within each category, the same resample for the model, ceiling and floor
    (``vals``: their per-object values (N,); ``cats``: the objects' categories (N,)); category
    c's draws seeded by ``set_seed(seed, STREAM_LADDER, "<name>|c")``. NaN bounds when a
    category has fewer than MIN_PER_STRATUM objects or no resample has a scale."""
    nan = (float("nan"), float("nan"))
    categories = np.unique(cats)
    if not interval_exists(int((cats == c).sum()) for c in categories):
        return nan
    per_cat = []
    for c in categories:
        idx = np.flatnonzero(cats == c)
        rng = np.random.default_rng(set_seed(seed, STREAM_LADDER, f"{name}|{c}"))
        draw = idx[rng.integers(0, len(idx), size=(n_boot, len(idx)))]  # (n_boot, n_c)
        per_cat.append(np.stack([vals[n][draw].mean(axis=1) for n in ("model", "ceiling", "floor")], axis=1))
    boot = np.mean(per_cat, axis=0)  # (n_boot, 3): model, ceiling, floor
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (boot[:, 0] - boot[:, 2]) / (boot[:, 1] - boot[:, 2])
    s = s[np.isfinite(s)]
    if not len(s):
        return nan
    lo, hi = np.percentile(s, [2.5, 97.5])
    return float(lo), float(hi)


def shapes_calibration(model: Path, ceiling: Path, floor: Path, n_boot: int, seed: int) -> pd.DataFrame:
    """Normalised Table 1 scores from three shapes reports' objects.csv (module docstring):
    one row per (table, metric, k) with the model's, ceiling's and floor's mean of category
    means, the normalised score and its paired bootstrap interval, n = objects."""
    frames = {
        name: pd.read_csv(path / "objects.csv", dtype={"synset": str, "object_id": str})
        for name, path in (("model", model), ("ceiling", ceiling), ("floor", floor))
    }
    keys = ["category", "synset", "object_id", "table", "k"]
    rows = []
    for table in ("table1a", "table1b"):
        for metric in ("iou", "cd"):
            parts = [
                f[f.table == table][[*keys, metric]].rename(columns={metric: n}) for n, f in frames.items()
            ]
            wide = parts[0].merge(parts[1], on=keys).merge(parts[2], on=keys).dropna()
            for k, g in wide.groupby("k", sort=True):
                cats = g.category.to_numpy()
                vals = {n: g[n].to_numpy(float) for n in frames}
                means = {n: _mean_of_category_means(v, cats) for n, v in vals.items()}
                row = {"table": table, "metric": metric, "k": int(k), **means, "n": len(g)}
                row["normalised"] = normalise(means["model"], means["ceiling"], means["floor"])
                row["ci_low"], row["ci_high"] = _paired_interval(
                    vals, cats, n_boot, seed, f"{table}|{metric}|{k}"
                )
                rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def faces_calibration(model: Path, ceiling: Path, floor: Path) -> pd.DataFrame:
    """Normalised `recon` and `recon and real` AUC and TPR at FPR 1e-1 from three faces
    reports' summary.csv, per context size (point values; no paired interval, module doc)."""
    frames = {
        n: pd.read_csv(p / "summary.csv")
        for n, p in (("model", model), ("ceiling", ceiling), ("floor", floor))
    }
    rows = []
    for curve in ("recon", "recon and real"):
        for metric in ("auc", "tpr@0.1"):
            picked = {
                n: f[(f.curve == curve) & (f.metric == metric)].set_index("context_size")["mean"]
                for n, f in frames.items()
            }
            for k in sorted(
                set(picked["model"].index) & set(picked["ceiling"].index) & set(picked["floor"].index)
            ):
                means = {n: float(v[k]) for n, v in picked.items()}
                rows.append({
                    "table": curve, "metric": metric, "k": int(k), **means,
                    "normalised": normalise(means["model"], means["ceiling"], means["floor"]),
                    "ci_low": float("nan"), "ci_high": float("nan"), "n": int(frames["model"].n.max()),
                })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def reference_values(benchmark: str, folder: Path) -> pd.DataFrame:
    """Every reference's headline values (table, metric, k, reference, value) from the reports
    under ``folder/references/``: the ladder beside the model."""
    rows = []
    for name in references(benchmark):
        path = folder / "references" / name
        if benchmark == "shapenet":
            for table in ("table1a", "table1b"):
                t = pd.read_csv(path / f"{table}.csv")
                t = t[(t.category == "mean of categories") & t.metric.isin(["iou", "cd"])]
                rows += [
                    {"table": table, "metric": r.metric, "k": int(r.k), "reference": name, "value": r.mean}
                    for r in t.itertuples()
                ]
        else:
            t = pd.read_csv(path / "summary.csv")
            t = t[t.curve.isin(["recon", "recon and real"]) & t.metric.isin(["auc", "tpr@0.1"])]
            rows += [{"table": r.curve, "metric": r.metric, "k": int(r.context_size), "reference": name,
                      "value": r.mean} for r in t.itertuples()]  # fmt: skip
    return pd.DataFrame(rows, columns=["table", "metric", "k", "reference", "value"])


def score_with_references(benchmark: str, run, out: Path, n_boot: int, seed: int) -> pd.DataFrame:
    """Score every reference of the ladder with ``run(spec, folder)`` (the benchmark with the
    model's settings, into ``out/references/<name>``; the model's own report is ``out``), then
    :func:`write_calibration`."""
    for name in references(benchmark):
        run(f"ref:{name}", out / "references" / name)
    return write_calibration(benchmark, out, n_boot, seed)


def write_calibration(benchmark: str, out: Path, n_boot: int, seed: int) -> pd.DataFrame:
    """calibration.csv and calibration.md of the report ``out`` (its references scored under
    ``out/references``): the normalised scores and the ladder table."""
    rung = LADDER[benchmark]
    ceiling, floor = out / "references" / rung["ceiling"], out / "references" / rung["floor"]
    if benchmark == "shapenet":
        cal = shapes_calibration(out, ceiling, floor, n_boot, seed)
    else:
        cal = faces_calibration(out, ceiling, floor)
    atomic_write_text(out / "calibration.csv", cal.to_csv(index=False))
    ladder = reference_values(benchmark, out)
    wide = ladder.pivot_table(
        index=["table", "metric", "k"], columns="reference", values="value", aggfunc="first"
    )
    names = references(benchmark)
    lines = [
        f"# Calibration ({benchmark})",
        "",
        f"Normalised score s = (model - floor) / (ceiling - floor); ceiling `ref:{rung['ceiling']}`, "
        f"floor `ref:{rung['floor']}` (benchmarks/ladder.py). s = 1: as good as real images of the same "
        "object/identity; s = 0: no better than real images of something else.",
        "",
        "| table | metric | k | model | "
        + " | ".join(f"ref:{n}" for n in names)
        + " | normalised [95% CI] |",
        "|---|---|---:|---:|" + "---:|" * len(names) + "---:|",
    ]
    for r in cal.itertuples():
        at = (r.table, r.metric, r.k)
        refs = [wide.loc[at, n] if at in wide.index and n in wide.columns else float("nan") for n in names]
        if benchmark == "faces":
            ci = "[not computed]"
        else:
            ci = format_interval(r.ci_low, r.ci_high)
        cells = " | ".join(f"{v:.3f}" for v in refs)
        lines.append(
            f"| {r.table} | {r.metric} | {r.k} | {r.model:.3f} | {cells} | {r.normalised:.3f} {ci} |"
        )
    lines += [
        "",
        f'Intervals: shapes, a paired bootstrap over objects within categories (none, "n too small", '
        f"unless every category has >= {MIN_PER_STRATUM} objects); faces, not computed (the reports do "
        "not keep the per-identity bootstrap of each curve).",
        "",
    ]
    atomic_write_text(out / "calibration.md", "\n".join(lines))
    return cal
