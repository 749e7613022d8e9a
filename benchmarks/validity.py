"""Does the instrument work? The calibration ladder on the default synthetic data, written to
docs/benchmark-validity.md:

    python -m benchmarks.validity --objects 26 --out docs/benchmark-validity.md

Scores the reference SDNs and the reference models (:mod:`benchmarks.models.references`) with
both benchmarks, then checks, from the reports' per-object rows (shapes) and curve summaries
(faces):

1. the ladder's order, oracle > same-category > other-category (shapes Table 1(a) IoU and CD,
   paired differences over objects with a 95% bootstrap interval, objects pooled across
   categories: with 2 objects per category no stratified interval exists) and oracle >
   other-identity (faces `recon and real` AUC: the curves' own identity-bootstrap intervals,
   which are not paired, so separation is read conservatively as non-overlap);
2. trends a perfect model must show: Table 1(a) IoU from k = 1 to 16 for ref:oracle and
   ref:copy; Figure 8(b) `recon and real` AUC across context sizes for ref:oracle;
3. a power curve: the half-width of the paired interval of the SDN-vs-oracle difference in
   Table 1(a) IoU against the number of objects (resampling n of the observed objects);
4. which metrics tell faithful from unfaithful: `recon` AUC of ref:other-identity, whose
   sets are self-consistent real identities, against the oracle's;
5. where the reference SDN sits: its normalised scores (benchmarks/ladder.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import pandas as pd

from sdn.io import atomic_write_text

from .faces import FacesBenchConfig, load_faces_model, run_faces_benchmark
from .ladder import normalise
from .shapenet import ShapeNetBenchConfig, run_shapenet_benchmark
from .shipped import FACES_SDN, OCCNET, SHAPES_SDN, VERIFIER, shipped_checkpoint

SHAPES_MODELS = {
    "sdn": SHAPES_SDN,  # a shipped checkpoint (benchmarks.shipped)
    "oracle": "ref:oracle",
    "copy": "ref:copy",
    "same-category": "ref:same-category",
    "other-category": "ref:other-category",
}
FACES_MODELS = {
    "sdn": FACES_SDN,
    "oracle": "ref:oracle",
    "copy": "ref:copy",
    "other-identity": "ref:other-identity",
}
N_BOOT = 2000


def paired_interval(diff: np.ndarray, seed: int = 0, n: int | None = None) -> tuple[float, float, float]:
    """Mean of per-object differences (N,) and its 95% percentile bootstrap interval over
    objects (resampling n of them, default N)."""
    rng = np.random.default_rng(seed)
    n = len(diff) if n is None else n
    boot = diff[rng.integers(0, len(diff), size=(N_BOOT, n))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def _objects(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "objects.csv", dtype={"synset": str, "object_id": str})


def _wide(reports: dict[str, Path], table: str, metric: str, k: int) -> pd.DataFrame:
    """Per-object values (objects x models) of one (table, metric, k)."""
    cols = {}
    for name, folder in reports.items():
        o = _objects(folder)
        o = o[(o.table == table) & (o.k == k)].set_index(["synset", "object_id"])
        cols[name] = o[metric]
    return pd.DataFrame(cols).dropna()


def _fmt(m, lo, hi) -> str:
    return f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def shapes_section(reports: dict[str, Path]) -> list[str]:
    lines = ["## Shapes (Table 1)", ""]
    lines += [
        "### 1. The ladder's order (paired differences over objects, 95% bootstrap CI)",
        "",
        "| metric | k | oracle - same-category | same-category - other-category | ordered |",
        "|---|---:|---:|---:|---|",
    ]
    for metric in ("iou", "cd"):
        sign = 1 if metric == "iou" else -1  # better minus worse, so > 0 means ordered
        for k in (1, 4, 8, 16):
            w = _wide(reports, "table1a", metric, k)
            a = paired_interval(sign * (w["oracle"] - w["same-category"]).to_numpy())
            b = paired_interval(sign * (w["same-category"] - w["other-category"]).to_numpy())
            ordered = "yes" if a[1] > 0 and b[1] > 0 else "no"
            lines.append(
                f"| {metric} ({'higher' if sign > 0 else 'lower'} is better; shown better - worse) "
                f"| {k} | {_fmt(*a)} | {_fmt(*b)} | {ordered} |"
            )
    lines += [
        "",
        "### 2. Trends a perfect model must show: Table 1(a) IoU, k = 16 minus k = 1",
        "",
        "| model | IoU k=1 | IoU k=16 | difference [95% CI] |",
        "|---|---:|---:|---:|",
    ]
    for name in ("oracle", "copy", "sdn"):
        lo_k, hi_k = (_wide({name: reports[name]}, "table1a", "iou", k)[name] for k in (1, 16))
        both = pd.concat([lo_k, hi_k], axis=1, keys=["a", "b"]).dropna()
        d = paired_interval((both.b - both.a).to_numpy())
        lines.append(f"| {name} | {both.a.mean():.3f} | {both.b.mean():.3f} | {_fmt(*d)} |")
    w = _wide(reports, "table1a", "iou", 16)
    diff = (w["oracle"] - w["sdn"]).to_numpy()
    lines += [
        "",
        "### 3. Power: half-width of the paired 95% CI of oracle - SDN, Table 1(a) IoU at k = 16",
        "",
        "| objects | half-width |",
        "|---:|---:|",
    ]
    for n in (6, 13, 26, 52, 130):
        _, lo, hi = paired_interval(diff, n=n)
        lines.append(f"| {n} | {(hi - lo) / 2:.3f} |")
    sd = float(diff.std(ddof=1))
    lines += [
        "",
        f"(n > {len(diff)} resamples the {len(diff)} observed differences: an extrapolation; "
        f"their SD is {sd:.3f}, so a ±0.02 interval needs about {int(np.ceil((1.96 * sd / 0.02) ** 2))} "
        "objects.)",
        "",
    ]
    lines += [
        "### 5. Where the reference SDN sits (normalised, 1 = oracle, 0 = other-category)",
        "",
        "| metric | k | SDN | oracle | other-category | normalised |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for metric in ("iou", "cd"):
        for k in (1, 16):
            w = _wide(reports, "table1a", metric, k).mean()
            s = normalise(w["sdn"], w["oracle"], w["other-category"])
            lines.append(
                f"| {metric} | {k} | {w['sdn']:.3f} | {w['oracle']:.3f} | {w['other-category']:.3f} "
                f"| {s:.3f} |"
            )
    return lines + [""]


def _auc(folder: Path, curve: str, k=None) -> pd.Series:
    s = pd.read_csv(folder / "summary.csv")
    sel = (s.curve == curve) & (s.metric == "auc") & (s.noise == 0)
    sel &= s.context_size.isna() if k is None else s.context_size == k
    return s[sel].iloc[0]


def faces_section(reports: dict[str, Path], cfg: FacesBenchConfig) -> list[str]:
    n = cfg.set_size
    lines = [
        "## Faces (Figure 8)",
        "",
        "### 1. The ladder's order and 4. faithfulness vs consistency",
        "",
        "| model | recon and real AUC [95% CI] | recon AUC [95% CI] |",
        "|---|---:|---:|",
    ]
    for name in reports:
        rr, r = _auc(reports[name], "recon and real", n), _auc(reports[name], "recon", n)
        lines.append(
            f"| {name} | {rr['mean']:.3f} [{rr.ci_low:.3f}, {rr.ci_high:.3f}] | "
            f"{r['mean']:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] |"
        )
    o, f = _auc(reports["oracle"], "recon and real", n), _auc(reports["other-identity"], "recon and real", n)
    lines += [
        "",
        f"Oracle above other-identity on `recon and real` AUC: "
        f"{'yes (intervals do not overlap)' if o.ci_low > f.ci_high else 'not separated'}.",
        "",
    ]
    ro, rf = _auc(reports["oracle"], "recon", n), _auc(reports["other-identity"], "recon", n)
    lines += [
        f"`recon` AUC of ref:other-identity ({rf['mean']:.3f}) against the oracle's ({ro['mean']:.3f}): "
        "`recon` pairs reconstructions among themselves, so a model returning a consistent *wrong* "
        "identity scores like a faithful one. `recon` measures consistency, not faithfulness; "
        "`recon and real` measures faithfulness.",
        "",
    ]
    lines += [
        "### 2. Figure 8(b) for the oracle: `recon and real` AUC by context size",
        "",
        "| context | oracle | SDN |",
        "|---:|---:|---:|",
    ]
    for k in sorted(cfg.context_sizes):
        a, b = _auc(reports["oracle"], "recon and real", k), _auc(reports["sdn"], "recon and real", k)
        lines.append(f"| {k} | {a['mean']:.3f} | {b['mean']:.3f} |")
    s = normalise(_auc(reports["sdn"], "recon and real", n)["mean"], o["mean"], f["mean"])
    lines += [
        "",
        f"### 5. The reference SDN: `recon and real` AUC normalised {s:.3f} (1 = oracle, 0 = "
        "other-identity).",
        "",
    ]
    return lines


@click.command()
@click.option("--shapes-data", default="data/shapes-default", show_default=True)
@click.option("--faces-data", default="data/faces-default", show_default=True)
@click.option("--objects", default=26, show_default=True, type=int, help="Shapes test objects.")
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--work", default="runs/validity", show_default=True)
@click.option("--out", default="docs/benchmark-validity.md", show_default=True)
def main(shapes_data, faces_data, objects, workers, work, out):
    start, work = time.time(), Path(work)
    cfg = ShapeNetBenchConfig(max_objects=objects, workers=workers)
    shapes = {name: work / "shapes" / name for name in SHAPES_MODELS}
    occnet = shipped_checkpoint(OCCNET)
    for name, spec in SHAPES_MODELS.items():
        if not (shapes[name] / "manifest.json").is_file():
            spec = spec if spec.startswith("ref:") else str(shipped_checkpoint(spec))
            run_shapenet_benchmark(spec, occnet, shapes_data, shapes[name], cfg, command="validity")
    fcfg = FacesBenchConfig()
    faces = {name: work / "faces" / name for name in FACES_MODELS}
    sdn = load_faces_model(str(shipped_checkpoint(FACES_MODELS["sdn"])), faces_data, fcfg)
    for name, spec in FACES_MODELS.items():
        if not (faces[name] / "manifest.json").is_file():
            model = (
                sdn
                if name == "sdn"
                else load_faces_model(spec, faces_data, fcfg, resolution=sdn.model.resolution)
            )
            run_faces_benchmark(
                model, faces_data, faces[name], fcfg, str(shipped_checkpoint(VERIFIER)), command="validity"
            )
    lines = [
        "# Does the instrument work? The calibration ladder on the default data",
        "",
        f"`python -m benchmarks.validity --objects {objects} --out {out}` ({time.time() - start:.0f} s on 2 "
        f"cores; reports in `{work}`). Shapes: {objects} test objects of `{shapes_data}` (reference OccNet, "
        f"fp32); faces: the test identities of `{faces_data}` (reference verifier). The reference models "
        "are defined in benchmarks/models/references.py; on shapes `ref:oracle` returns the object's views "
        "outside the 16 real ones (24 - k available, so at k = 16 only 8 distinct views fill 16 slots).",
        "",
        *shapes_section(shapes),
        *faces_section(faces, fcfg),
    ]
    atomic_write_text(Path(out), "\n".join(lines))
    print(f"{out} written ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
