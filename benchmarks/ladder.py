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
Where the floor scores within ``MIN_SPAN`` (10%) of the ceiling the metric cannot tell a
faithful model from one that keeps nothing of its input (faces `recon`: real sets of another
identity are as self-consistent as the oracle's): no normalised score is given, and the
``note`` column says why.

Headline metrics: shapes Table 1(a) and 1(b) IoU and CD at every k (lower CD is better: the
formula handles either direction); faces `recon` and `recon and real` AUC and TPR at FPR
1e-1 at every context size.

Intervals. Shapes: a paired 95% percentile bootstrap over objects, resampled within each
category (the same resample for the model and both references, seeded by ``seed`` and the
category) of s computed from the means of category means; it exists only when every category
has >= ``MIN_PER_STRATUM`` objects with all three values, else "n too small". Faces: a paired
identity bootstrap (:func:`evaluation.verification.bootstrap_replicates`) over the scored
pairs each report keeps in ``pairs.npz`` (the model and its references are scored on the
same pairs: the pairs depend on the identities, set sizes and seed only), the same resampled
identities for the three, of s from the resampled AUC or TPR (scores stored as float32: the
point value is the report's own, from float64 scores); it exists only with >=
``MIN_PER_STRATUM`` identities.

Cache. A reference's report depends only on the data, the OccNet or embedder, the settings,
the seed and the code, so it is stored whole in :class:`ReferenceCache` (``<cache
dir>/references/<key digest>/<name>/``) and copied from there on the next run with the same
key: the key is the scored model's manifest without what does not define the numbers
(command, model, wall time, execution, files, machine, local paths, workers), plus the
reference's name, :func:`benchmarks.manifest.source_digest` and the torch version.
``<out>/references/ladder.json`` says which references came from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from evaluation.intervals import MIN_PER_STRATUM, format_interval, interval_exists
from evaluation.verification import bootstrap_replicates, curve_statistics
from sdn.data.image_cache import DEFAULT_CACHE_DIR
from sdn.io import atomic_write_json, atomic_write_text
from sdn.seeding import set_seed

from .distribution import FREE, SET_FILE, plot_histogram
from .manifest import source_digest
from .report_index import write_index

LADDER = {
    "shapenet": {"ceiling": "oracle", "floor": "other-category", "also": ("same-category", "copy")},
    "faces": {"ceiling": "oracle", "floor": "other-identity", "also": ("copy",)},
}
# Where the scored report has training sets (its novelty section scored memorisation),
# ``copy-train`` takes the place of ``copy``: it reconstructs exactly as ``copy`` (the same
# draws, so the same Table 1 / Figure 8 rung) and its free samples are training sets, the
# memorising floor of the novelty section. Without a training split on disk it cannot sample,
# and ``copy`` stays.
MEMORISING = {"copy": "copy-train"}
# The novelty section's rungs: real test sets (the oracle's samples) and memorised training sets.
NOVELTY_RUNG = {"ceiling": "oracle", "floor": "copy-train"}
NOVELTY_METRICS = {"d_train_median": ("d_train", np.median), "authenticity": ("copy", np.mean)}
STREAM_LADDER = 102  # the calibration bootstrap's stream
COLUMNS = ["table", "metric", "k", "model", "ceiling", "floor", "normalised", "ci_low", "ci_high", "n"]
COLUMNS.append("note")
# A floor within this fraction of the ceiling (|ceiling - floor| < MIN_SPAN |ceiling|): the
# metric hardly depends on what the input was (real sets of something else score as high as
# real sets of the same thing), so it measures consistency, not faithfulness, and a normalised
# score would divide by noise. Such rows get no normalised score and say so (`recon` AUC).
MIN_SPAN = 0.1
NO_SCALE = "no scale (floor within 10% of ceiling)"


def _without_scale(rows: list[dict]) -> pd.DataFrame:
    """The calibration rows as a frame, those whose ceiling and floor are within ``MIN_SPAN``
    of each other blanked (normalised score and interval NaN) and annotated."""
    df = pd.DataFrame(rows, columns=COLUMNS)
    flat = (df.ceiling - df.floor).abs() < MIN_SPAN * df.ceiling.abs()
    df.loc[flat, ["normalised", "ci_low", "ci_high"]] = float("nan")
    df["note"] = np.where(flat, NO_SCALE, "")
    return df


def references(benchmark: str, bounds_only: bool = False, memorising: bool = False) -> list[str]:
    """The reference names scored for ``benchmark``: ceiling, floor, then the others (with
    ``bounds_only``: the ceiling and floor alone, all a normalised score needs; with
    ``memorising``, the model's report has training sets: ``copy-train`` for ``copy``,
    :data:`MEMORISING`)."""
    rung = LADDER[benchmark]
    also = [MEMORISING.get(n, n) if memorising else n for n in rung["also"]]
    return [rung["ceiling"], rung["floor"], *([] if bounds_only else also)]


def has_training_sets(manifest: dict) -> bool:
    """Whether the report's novelty section had training sets (manifest ``distribution``)."""
    return bool((manifest.get("distribution") or {}).get("train_sets"))


def scored_references(benchmark: str, out: Path) -> list[str]:
    """The references of the ladder that the report ``out`` has under ``out/references``."""
    names = dict.fromkeys(references(benchmark) + references(benchmark, memorising=True))
    return [n for n in names if (out / "references" / n).is_dir()]


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
    return _normalised_interval(boot[:, 0], boot[:, 1], boot[:, 2])


def _normalised_interval(model: np.ndarray, ceiling: np.ndarray, floor: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of (model - floor) / (ceiling - floor) over paired bootstrap
    replicates (each (n_boot,)), replicates without a scale dropped; NaN bounds when none has one."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (model - floor) / (ceiling - floor)
    s = s[np.isfinite(s)]
    if not len(s):
        return float("nan"), float("nan")
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
    return _without_scale(rows)


def _novelty_values(per_set: pd.DataFrame, column: str) -> np.ndarray:
    """The free-sample sets' values of ``column`` of a novelty_sets.csv (authenticity: 1 - copy)."""
    free = per_set[per_set.source == FREE]
    if column == "copy":
        return 1.0 - free["copy"].astype(str).str.lower().eq("true").to_numpy(np.float64)
    return free[column].to_numpy(np.float64)


def novelty_calibration(out: Path, n_boot: int, seed: int) -> pd.DataFrame:
    """Normalised novelty of the model's free samples (report ``out``): median distance to the
    nearest training set and authenticity, between the memorising floor ``ref:copy-train``
    (its free samples are training sets) and the ceiling ``ref:oracle`` (its free samples are
    real test sets), from the three reports' novelty_sets.csv. The three are independent
    samples of sets, so the interval resamples each on its own (``n_boot`` times, seeded
    ``set_seed(seed, STREAM_LADDER, "novelty|<metric>|<which>")``). No rows when a report
    lacks the file or free samples (a model without ``sample``, no training split)."""
    folders = {
        "model": out,
        "ceiling": out / "references" / NOVELTY_RUNG["ceiling"],
        "floor": out / "references" / NOVELTY_RUNG["floor"],
    }
    files = {n: p / SET_FILE for n, p in folders.items()}
    if not all(f.is_file() for f in files.values()):
        return _without_scale([])
    per_set = {n: pd.read_csv(f) for n, f in files.items()}
    set_size = pd.read_csv(out / "novelty.csv").set_size.max()
    rows = []
    for metric, (column, stat) in NOVELTY_METRICS.items():
        vals = {n: _novelty_values(f, column) for n, f in per_set.items()}
        if any(len(v) == 0 or not np.isfinite(v).all() for v in vals.values()):
            continue
        means = {n: float(stat(v)) for n, v in vals.items()}
        reps = {}
        for n, v in vals.items():
            rng = np.random.default_rng(set_seed(seed, STREAM_LADDER, f"novelty|{metric}|{n}"))
            v = np.sort(v)
            reps[n] = stat(v[rng.integers(0, len(v), size=(n_boot, len(v)))], axis=1)
        lo, hi = (float("nan"), float("nan"))
        if min(len(v) for v in vals.values()) >= MIN_PER_STRATUM:
            lo, hi = _normalised_interval(reps["model"], reps["ceiling"], reps["floor"])
        rows.append({
            "table": "novelty", "metric": metric, "k": int(set_size), **means,
            "normalised": normalise(means["model"], means["ceiling"], means["floor"]),
            "ci_low": lo, "ci_high": hi, "n": len(vals["model"]),
        })  # fmt: skip
    return _without_scale(rows)


def _faces_interval(
    model: tuple, ceiling: tuple, floor: tuple, metric: str, n_boot: int, seed: int, name: str
) -> tuple[float, float]:
    """The 95% percentile interval of the normalised ``metric`` ("auc" or "tpr@0.1") over
    ``n_boot`` paired identity resamples (module docstring) of three scorings of the same
    pairs, each (scores (P,), labels (P,), identity (P, 2)); seeded by
    ``set_seed(seed, STREAM_LADDER, name)``. NaN bounds when no interval exists."""
    if not all(np.array_equal(model[i], other[i]) for other in (ceiling, floor) for i in (1, 2)):
        raise ValueError(
            f"calibration {name}: the model and its references were not scored on the same pairs "
            "(other identities, set sizes or seed?)"
        )
    stats = {metric: curve_statistics((0.1,))[metric]}
    reps = bootstrap_replicates(
        [model[0], ceiling[0], floor[0]], model[1], model[2], stats, n_boot,
        set_seed(seed, STREAM_LADDER, name),
    )  # fmt: skip
    if reps is None:
        return float("nan"), float("nan")
    return _normalised_interval(reps[:, 0, 0], reps[:, 1, 0], reps[:, 2, 0])


def faces_calibration(model: Path, ceiling: Path, floor: Path, n_boot: int, seed: int) -> pd.DataFrame:
    """Normalised `recon` and `recon and real` AUC and TPR at FPR 1e-1 from three faces
    reports (summary.csv for the values, pairs.npz for the paired interval), per context
    size; n = identities."""
    from .faces import PAIRS_FILE, load_pairs

    folders = {"model": model, "ceiling": ceiling, "floor": floor}
    frames = {n: pd.read_csv(p / "summary.csv") for n, p in folders.items()}
    pairs = {n: load_pairs(p / PAIRS_FILE) for n, p in folders.items()}
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
                lo, hi = _faces_interval(
                    *(pairs[n][(curve, int(k))] for n in folders), metric, n_boot, seed,
                    f"{curve}|{metric}|{k}",
                )  # fmt: skip
                rows.append({
                    "table": curve, "metric": metric, "k": int(k), **means,
                    "normalised": normalise(means["model"], means["ceiling"], means["floor"]),
                    "ci_low": lo, "ci_high": hi, "n": int(frames["model"].n.max()),
                })  # fmt: skip
    return _without_scale(rows)


def reference_values(benchmark: str, folder: Path) -> pd.DataFrame:
    """Every reference's headline values (table, metric, k, reference, value) from the reports
    under ``folder/references/``: the ladder beside the model."""
    rows = []
    for name in scored_references(benchmark, folder):
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
        if (path / "novelty.csv").is_file():
            t = pd.read_csv(path / "novelty.csv")
            t = t[(t.source == FREE) & t.metric.isin(list(NOVELTY_METRICS))]
            rows += [{"table": "novelty", "metric": r.metric, "k": int(r.set_size), "reference": name,
                      "value": r.mean} for r in t.itertuples()]  # fmt: skip
    return pd.DataFrame(rows, columns=["table", "metric", "k", "reference", "value"])


_UNDEFINING = {"command", "model", "wall_s", "execution", "files", "machine"}  # manifest top level
# Inside its sections: where, not what.
_LOCAL = {"root", "path", "source", "weights", "workers", "fid_weights"}


def reference_key(benchmark: str, name: str, manifest: dict) -> dict:
    """What reference ``name``'s report depends on, from the scored model's ``manifest``
    (module docstring)."""
    scored = {
        k: ({kk: vv for kk, vv in v.items() if kk not in _LOCAL} if isinstance(v, dict) else v)
        for k, v in manifest.items()
        if k not in _UNDEFINING
    }
    key = {
        "format": 1, "benchmark": benchmark, "reference": name, "code": source_digest(),
        "torch": torch.__version__, "scored": scored,
    }  # fmt: skip
    return json.loads(json.dumps(key, sort_keys=True))  # as key.json holds it (tuples as lists)


class ReferenceCache:
    """Reference reports stored whole under ``<root>/references/<key digest>/`` (root: the
    benchmark's cache folder, default ``~/.cache/sdn-bench``), with the key in ``key.json``."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = (Path(root) if root is not None else DEFAULT_CACHE_DIR.parent) / "references"

    @staticmethod
    def digest(key: dict) -> str:
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]

    def folder(self, key: dict) -> Path:
        return self.root / self.digest(key)

    def load(self, key: dict, dest: Path) -> bool:
        """Copy the cached report of ``key`` to ``dest`` (replacing it); False on a miss."""
        entry = self.folder(key)
        try:
            if json.loads((entry / "key.json").read_text()) != key:
                return False
        except (OSError, json.JSONDecodeError):
            return False
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(entry / "report", dest)
        return True

    def save(self, key: dict, report: Path) -> None:
        """Store ``report`` under ``key``: built in a temporary folder, renamed into place."""
        entry = self.folder(key)
        if entry.exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=self.root))
        try:
            shutil.copytree(report, tmp / "report")
            atomic_write_json(tmp / "key.json", key)
            os.replace(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not entry.exists():
                raise


def clear_calibration(out: Path) -> None:
    """Remove a previous run's calibration from the report folder ``out``, before the
    benchmark writes it (a report must not list or show the ladder of another run)."""
    for name in ("calibration.csv", "calibration.md"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "references", ignore_errors=True)


def score_with_references(
    benchmark: str,
    run: Callable[[str, Path], dict],
    out: Path,
    manifest: dict,
    n_boot: int,
    seed: int,
    cache: ReferenceCache | None = None,
    echo=print,
    bounds_only: bool = False,
) -> pd.DataFrame:
    """Score every reference of the ladder (``bounds_only``: the ceiling and floor) with
    ``run(spec, folder)`` (the benchmark with the model's settings, into
    ``out/references/<name>``; the model's own report is ``out``, ``manifest`` its manifest)
    or copy it from ``cache``, write ``references/ladder.json``, then
    :func:`write_calibration` and the report's index."""
    clear_calibration(out)
    done = []
    for name in references(benchmark, bounds_only, has_training_sets(manifest)):
        folder = out / "references" / name
        key = reference_key(benchmark, name, manifest)
        hit = cache is not None and cache.load(key, folder)
        if not hit:
            run(f"ref:{name}", folder)
            if cache is not None:
                cache.save(key, folder)
        echo(f"ref:{name}: {'from the cache' if hit else 'scored'} ({folder})")
        done.append({
            "name": name, "spec": f"ref:{name}", "source": "cache" if hit else "scored",
            "key_digest": ReferenceCache.digest(key),
            "cache_folder": str(cache.folder(key)) if cache else None,
        })  # fmt: skip
    rung = LADDER[benchmark]
    atomic_write_json(
        out / "references" / "ladder.json",
        {"benchmark": benchmark, "ceiling": rung["ceiling"], "floor": rung["floor"], "references": done},
    )
    cal = write_calibration(benchmark, out, n_boot, seed)
    write_index(out)
    return cal


def write_calibration(benchmark: str, out: Path, n_boot: int, seed: int) -> pd.DataFrame:
    """calibration.csv and calibration.md of the report ``out`` (its references scored under
    ``out/references``): the normalised scores and the ladder table."""
    rung = LADDER[benchmark]
    ceiling, floor = out / "references" / rung["ceiling"], out / "references" / rung["floor"]
    calibration = shapes_calibration if benchmark == "shapenet" else faces_calibration
    cal = calibration(out, ceiling, floor, n_boot, seed)
    novelty = novelty_calibration(out, n_boot, seed)
    cal = pd.concat([cal, novelty], ignore_index=True) if len(novelty) else cal
    atomic_write_text(out / "calibration.csv", cal.to_csv(index=False))
    memorising = out / "references" / NOVELTY_RUNG["floor"] / SET_FILE
    if (out / SET_FILE).is_file() and memorising.is_file():  # the histogram with the memorising floor
        plot_histogram(pd.read_csv(out / SET_FILE), out, pd.read_csv(memorising))
    ladder = reference_values(benchmark, out)
    wide = ladder.pivot_table(
        index=["table", "metric", "k"], columns="reference", values="value", aggfunc="first"
    )
    names = scored_references(benchmark, out)
    lines = [
        f"# Calibration ({benchmark})",
        "",
        f"Normalised score s = (model - floor) / (ceiling - floor); ceiling `ref:{rung['ceiling']}`, "
        f"floor `ref:{rung['floor']}` (benchmarks/ladder.py). s = 1: as good as real images of the same "
        "object/identity; s = 0: no better than real images of something else. Novelty rows: ceiling "
        f"`ref:{NOVELTY_RUNG['ceiling']}` (its free samples are real test sets), floor "
        f"`ref:{NOVELTY_RUNG['floor']}` (its free samples are training sets): s = 1 as novel as unseen real "
        "sets, s = 0 memorised.",
        "",
        "| table | metric | k | model | "
        + " | ".join(f"ref:{n}" for n in names)
        + " | normalised [95% CI] |",
        "|---|---|---:|---:|" + "---:|" * len(names) + "---:|",
    ]
    for r in cal.itertuples():
        at = (r.table, r.metric, r.k)
        refs = [wide.loc[at, n] if at in wide.index and n in wide.columns else float("nan") for n in names]
        cells = " | ".join(f"{v:.3f}" for v in refs)
        score = r.note if r.note else f"{r.normalised:.3f} {format_interval(r.ci_low, r.ci_high)}"
        lines.append(f"| {r.table} | {r.metric} | {r.k} | {r.model:.3f} | {cells} | {score} |")
    lines += [
        "",
        f"Intervals (95%): a paired bootstrap, the same resample for the model and both references; "
        f"shapes over objects within categories, faces over identities (pairs.npz); novelty rows: the "
        f"three reports' free sets resampled independently (they are independent samples). None (\"n too "
        f"small\") unless every category has >= {MIN_PER_STRATUM} objects, or there are >= "
        f"{MIN_PER_STRATUM} identities. References: references/ladder.json says which came from the cache.",
        "",
        f"{NO_SCALE}: real images of something else score within {MIN_SPAN:.0%} of real images of the same "
        "thing, so the metric measures the consistency of a set, not its faithfulness to the input, and "
        "no normalised score is given.",
        "",
    ]
    atomic_write_text(out / "calibration.md", "\n".join(lines))
    return cal


def check_single_process(references: bool) -> None:
    """The ladder runs in one process: under torchrun only rank 0 holds the model's manifest
    (the references' cache key), so ``references`` with a world size > 1 is refused."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if references and world > 1:
        raise ValueError(
            f"--references runs in one process, got a torchrun world of {world}: score the model "
            "under torchrun, then the ladder without it"
        )


def calibrate(
    benchmark: str,
    run: Callable[[str, Path], dict],
    out: Path,
    manifest: dict,
    references: bool,
    n_boot: int,
    seed: int,
    cache: ReferenceCache | None,
    echo=print,
    bounds_only: bool = False,
) -> dict:
    """After a benchmark wrote the report ``out`` (``manifest``; empty on a torchrun rank other
    than 0): with ``references`` score the ladder (:func:`score_with_references`). Returns
    ``manifest``. The caller clears any previous calibration before the benchmark writes
    (:func:`clear_calibration`), so neither the manifest nor the index lists a stale one."""
    if manifest and references:
        score_with_references(benchmark, run, out, manifest, n_boot, seed, cache, echo, bounds_only)
        echo(f"{out}: calibration.md (the ladder and normalised scores)")
    return manifest
