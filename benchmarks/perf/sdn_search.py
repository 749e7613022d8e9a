"""The SDN search of the issue "Stronger reference models": capacity, code size, batch size,
recipe and a final-phase EMA, each chosen by the selection score on validation data.

    python -m benchmarks.perf.sdn_search train --variant wide --minutes 45
    python -m benchmarks.perf.sdn_search shipped     # the shipped reference SDN, same score
    python -m benchmarks.perf.sdn_search final --lr-divisor 4 --minutes 45
    python -m benchmarks.perf.sdn_search report
    python -m benchmarks.perf.sdn_search paired REPORT REFERENCE   # Table 1(a) IoU, paired

Every variant is the ``cpu-32`` shapes preset with the overrides below, trained on
``data/shapes-default`` (train split) in sittings of ``--minutes`` (resumed exactly), with the
selection score (:mod:`benchmarks.selection`: Table 1(a) IoU at k = 1 and 16 on 39 ``val``
objects, normalised by the ladder, with paired intervals) at every ``--selection-every``
steps. ``report`` writes ``docs/sdn-ablation.md``: per variant its steps, wall time, s/it,
its last and best selection score with the normalised IoU intervals, plus the shipped
reference SDN scored by the same selection (``shipped``: its training steps and wall time
from its manifest). The figures live in the committed ``docs/sdn-ablation-runs.json``,
refreshed from every run folder present, so a variant trained on an earlier machine keeps its
row. ``final`` is the final phase of the shipped SDN: a restart from its exported weights
(``train_sdn``'s ``init_from``: fresh optimisers, recorded in run.json ``restarts``) with both
learning rates divided by ``--lr-divisor``, scored by the same selection. No test split is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pandas as pd

from sdn.checkpoint import load_checkpoint
from sdn.config import SDNConfig, apply_overrides, preset
from sdn.io import atomic_write_json, atomic_write_text
from sdn.trainer import train_sdn

from ..models.sdn_checkpoint import load_sdn
from ..selection import ShapesSelection
from ..shipped import OCCNET, SHAPES_SDN, shipped_checkpoint
from .occnet_study import load_records, paired_mean_difference, write_records
from .sdn_ablation import run_totals

VARIANTS = {  # name -> (recipe, overrides of the cpu-32 preset)
    "base": ("faithful", []),
    "wide": ("faithful", ["model.g_ch=32", "model.d_ch=32"]),
    "dz512": ("faithful", ["model.d_z=512"]),
    "batch8": ("faithful", ["train.batch_sets=8"]),
    "aided": ("aided", []),
    "ema": ("faithful", ["aids.ema=0.999"]),
}
SELECTION_FIELDS = ("sel_table1a_iou_k1", "sel_table1a_iou_k16")
RECORDS = Path("docs/sdn-ablation-runs.json")  # the committed figures of every run scored so far


def variant_config(name: str, minutes: float, seed: int):
    if name not in VARIANTS:
        known = ", ".join(VARIANTS)
        raise click.BadParameter(f"unknown variant {name!r}; known: {known}", param_hint="--variant")
    recipe, overrides = VARIANTS[name]
    common = ["train.steps=1000000", f"train.max_minutes={minutes}", "train.eval_every=500"]
    common.append(f"train.seed={seed}")
    return apply_overrides(preset("cpu-32", "shapes", recipe), [*overrides, *common])


@click.group()
def main():
    """Train the search's variants in sittings, then report."""


@main.command()
@click.option("--variant", required=True)
@click.option("--minutes", default=45.0, show_default=True, type=float, help="The variant's total wall time.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--selection-every", default=1000, show_default=True, type=int)
@click.option("--data", default="data/shapes-default", show_default=True)
@click.option("--work", default="runs/sdn-search", show_default=True)
def train(variant, minutes, seed, selection_every, data, work):
    """Train one variant until it has ``--minutes`` of wall time in all (resumed when it exists)."""
    out = Path(work) / f"{variant}-s{seed}"
    spent = run_totals(out)[1] / 60
    if spent >= minutes - 0.5:
        click.echo(f"{out}: {spent:.0f} min done already")
        return
    cfg = variant_config(variant, minutes - spent, seed)
    selection = ShapesSelection(str(shipped_checkpoint(OCCNET)), data, seed=seed)
    train_sdn(data, cfg, out, resume=(out / "checkpoint.pt").is_file(), selection=selection,
              selection_every=selection_every)  # fmt: skip


@main.command()
@click.option("--lr-divisor", default=4.0, show_default=True, type=float)
@click.option("--minutes", default=45.0, show_default=True, type=float, help="The phase's total wall time.")
@click.option("--selection-every", default=1000, show_default=True, type=int)
@click.option(
    "--precision", default=None, type=click.Choice(["fp32", "bf16", "fp16"]),
    help="The phase's arithmetic (default: the shipped SDN's); fp32 where the CPU lacks bf16 hardware.",
)  # fmt: skip
@click.option("--data", default="data/shapes-default", show_default=True)
@click.option("--work", default="runs/sdn-search", show_default=True)
def final(lr_divisor, minutes, selection_every, precision, data, work):
    """Continue the shipped SDN at lower learning rates until the phase has ``--minutes`` of wall
    time in all (``<work>/final-lr<divisor>-s<seed>``, resumed when it exists)."""
    if lr_divisor < 1:
        raise click.BadParameter(
            f"{lr_divisor} would raise the learning rates; expected >= 1", param_hint="--lr-divisor"
        )
    path = shipped_checkpoint(SHAPES_SDN)
    cfg = SDNConfig.from_dict(load_checkpoint(path, kind="sdn")["config"])
    out = Path(work) / f"final-lr{lr_divisor:g}-s{cfg.train.seed}"
    spent = run_totals(out)[1] / 60
    if spent >= minutes - 0.5:
        click.echo(f"{out}: {spent:.0f} min done already")
        return
    t = cfg.train
    overrides = [f"train.lr_g={t.lr_g / lr_divisor}", f"train.lr_theta={t.lr_theta / lr_divisor}"]
    if precision is not None:
        overrides.append(f"train.precision={precision}")
    cfg = apply_overrides(cfg, [*overrides, "train.steps=1000000", f"train.max_minutes={minutes - spent}"])
    selection = ShapesSelection(str(shipped_checkpoint(OCCNET)), data, seed=cfg.train.seed)
    resume = (out / "checkpoint.pt").is_file()
    train_sdn(data, cfg, out, resume=resume, selection=selection, selection_every=selection_every,
              init_from=None if resume else path)  # fmt: skip


@main.command()
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--data", default="data/shapes-default", show_default=True)
@click.option("--work", default="runs/sdn-search", show_default=True)
def shipped(seed, data, work):
    """Score the shipped shapes SDN by the variants' selection into ``<work>/shipped/score.json``."""
    path = shipped_checkpoint(SHAPES_SDN)
    manifest = json.loads(Path(f"{path}.json").read_text())
    model, _ = load_sdn(path)
    selection = ShapesSelection(str(shipped_checkpoint(OCCNET)), data, seed=seed)
    out = Path(work) / "shipped"
    score = selection(model, int(manifest["step"]), out)
    record = {"sha256": manifest["sha256"], "step": int(manifest["step"]),
              "wall_s": float(manifest["training_wall_s"]), **score}  # fmt: skip
    atomic_write_json(out / "score.json", record)
    click.echo(f"{out / 'score.json'}: selection score {score['selection_score']:.3f}")


def _cell(row, tag: str) -> str:
    lo, hi = row.get(f"{tag}_norm_lo"), row.get(f"{tag}_norm_hi")
    ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else " [n too small]"
    return f"{row[tag]:.3f} / {row[f'{tag}_norm']:.2f}{ci}"


def _paired_cell(record: dict, k: str) -> str:
    p = record.get("vs_shipped", {}).get(k)
    if p is None:
        return "—"
    ci = "n too small" if p["ci_low"] is None else f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}]"
    return f"{p['diff']:+.3f} {ci}"


def _scored(row) -> dict[str, float]:
    """The figures of one scored evaluation (an eval.csv row or a score.json) that a report cell
    needs: step, selection score and each selection field with its normalised interval (None
    where the evaluation had none: n too small)."""
    keys = ["step", "selection_score"]
    for tag in SELECTION_FIELDS:
        keys += [tag, f"{tag}_norm", f"{tag}_norm_lo", f"{tag}_norm_hi"]
    values = {k: float(row[k]) if k in row else float("nan") for k in keys}
    return {k: v if np.isfinite(v) else None for k, v in values.items()}


def _table1a_iou(report: Path, k: int) -> pd.Series:
    """Per-object Table 1(a) IoU at ``k`` of a selection report, indexed (category, synset, object)."""
    o = pd.read_csv(report / "objects.csv", dtype={"synset": str, "object_id": str})
    o = o[(o.table == "table1a") & (o.k == k)]
    return o.set_index(["category", "synset", "object_id"]).iou.sort_index()


def paired_vs(report: Path, reference: Path) -> dict[str, dict] | None:
    """Table 1(a) IoU of the selection report ``report`` minus ``reference``'s, paired over
    the same validation objects, at k = 1 and 16: {"k1"|"k16": {"n", "diff", "ci_low",
    "ci_high"}} (the stratified bootstrap of
    :func:`benchmarks.perf.occnet_study.paired_mean_difference`: an interval only with >= 3
    objects a category). None when either report is missing or they scored other objects."""
    if not (report / "objects.csv").is_file() or not (reference / "objects.csv").is_file():
        return None
    out = {}
    for k in (1, 16):
        a, b = _table1a_iou(report, k), _table1a_iou(reference, k)
        if not a.index.equals(b.index):
            return None
        categories = list(a.index.get_level_values("category"))
        r = paired_mean_difference(categories, list(a.values), list(b.values))
        out[f"k{k}"] = {key: (None if pd.isna(v) else float(v)) for key, v in r.items()}
    return out


def run_record(folder: Path, shipped_report: Path | None = None) -> dict | None:
    """A variant's record from its run folder (None when it has no selection score yet), with
    its best step's Table 1(a) IoU paired against ``shipped_report`` (:func:`paired_vs`)."""
    if not (folder / "eval.csv").is_file():
        return None
    ev = pd.read_csv(folder / "eval.csv")
    scored = ev.dropna(subset=["selection_score"]) if "selection_score" in ev else ev.iloc[:0]
    if scored.empty:
        return None
    steps, wall = run_totals(folder)
    best = scored.loc[scored.selection_score.idxmax()]
    record = {"steps": steps, "wall_s": wall, "best": _scored(best), "last": _scored(scored.iloc[-1]),
              "source": f"run folder {folder}"}  # fmt: skip
    if shipped_report is not None:
        paired = paired_vs(folder / "selection" / f"step_{int(best.step):07d}", shipped_report)
        if paired is not None:
            record["vs_shipped"] = paired
    restarts = json.loads((folder / "run.json").read_text()).get("restarts")
    if restarts:  # steps and wall time are this run's; its weights started at the restart's step
        r = restarts[0]
        show = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
        changes = ", ".join(f"{k} {show(a)}→{show(b)}" for k, (a, b) in r.get("config_changes", {}).items()
                            if k.startswith(("train.lr", "train.precision")))  # fmt: skip
        record["label"] = (
            f"{folder.name}: from step {r['step']} of {Path(r['from']).name} ({r['sha256'][:12]}); {changes}"
        )
    return record


def shipped_record(score_json: Path) -> dict:
    """The shipped SDN's record from ``shipped``'s score.json (training from its manifest)."""
    rec = json.loads(score_json.read_text())
    scored = _scored(rec)
    return {"steps": int(rec["step"]), "wall_s": float(rec["wall_s"]), "best": scored, "last": scored,
            "label": f"shipped {SHAPES_SDN} ({rec['sha256'][:12]})", "source": str(score_json)}  # fmt: skip


@main.command()
@click.argument("report", type=click.Path(exists=True, file_okay=False))
@click.argument("reference", type=click.Path(exists=True, file_okay=False))
def paired(report, reference):
    """Table 1(a) IoU of the shapes report REPORT minus REFERENCE's at k = 1 and 16, paired over
    the same objects (:func:`paired_vs`): e.g. a model against its ladder's
    ``references/same-category``, or two models' reports."""
    result = paired_vs(Path(report), Path(reference))
    if result is None:
        raise click.UsageError(f"{report} and {reference}: no objects.csv in one, or other objects scored")
    for k, r in result.items():
        ci = "n too small" if r["ci_low"] is None else f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
        click.echo(f"Table 1(a) IoU {k}: {r['diff']:+.3f} {ci} (n = {int(r['n'])})")


@main.command()
@click.option("--work", default="runs/sdn-search", show_default=True)
@click.option("--out", default="docs/sdn-ablation.md", show_default=True)
@click.option("--records", default=str(RECORDS), show_default=True, help="The committed records file.")
def report(work, out, records):
    """docs/sdn-ablation.md from the records of every variant trained so far, each refreshed
    from its run folder under ``--work`` where one is present (run folders do not outlive a
    machine; the records file is committed)."""
    stored = load_records(Path(records))
    shipped_reports = sorted((Path(work) / "shipped" / "selection").glob("step_*"))
    for folder in sorted(Path(work).glob("*-s*")):
        record = run_record(folder, shipped_reports[-1] if shipped_reports else None)
        if record is not None:
            stored[folder.name] = record
    if (Path(work) / "shipped" / "score.json").is_file():
        stored["shipped"] = shipped_record(Path(work) / "shipped" / "score.json")
    if not stored:
        raise click.UsageError(f"{work}: no variant has a selection score yet, and {records} holds none")
    write_records(Path(records), stored)
    rows = [
        {**stored[name], "folder": stored[name].get("label", name)}
        for name in sorted(stored)
        if name != "shipped"
    ]
    if "shipped" in stored:  # the reference SDN, one scored checkpoint: the last row
        rows.append({**stored["shipped"], "folder": stored["shipped"]["label"]})
    for r in rows:
        r["wall_min"], r["s_per_it"] = r["wall_s"] / 60, r["wall_s"] / r["steps"] if r["steps"] else np.nan
    lines = [
        "# SDN search: selection score on validation data",
        "",
        "`python -m benchmarks.perf.sdn_search report` (module docstring). Cells: Table 1(a) IoU on 39 "
        "`val` objects / its normalised score [paired 95% interval]; selection score = mean of the two "
        "normalised scores; minus shipped: the best step's Table 1(a) IoU minus the shipped SDN's on "
        "the same objects [paired 95% interval] (only where both selection reports were on the "
        "machine). No test split is read.",
        "",
        "| run | steps | wall (min) | s/it | best step | best score | IoU k=1 | IoU k=16 | last step "
        "| last score | minus shipped k=1 | minus shipped k=16 |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---|---|",
    ]
    for r in rows:
        b, last = r["best"], r["last"]
        cells = " | ".join(_cell(b, tag) for tag in SELECTION_FIELDS)
        lines.append(
            f"| {r['folder']} | {r['steps']} | {r['wall_min']:.0f} | {r['s_per_it']:.2f} | {int(b['step'])} "
            f"| {b['selection_score']:.3f} | {cells} | {int(last['step'])} | {last['selection_score']:.3f} "
            f"| {_paired_cell(r, 'k1')} | {_paired_cell(r, 'k16')} |"
        )
    atomic_write_text(out, "\n".join(lines) + "\n")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
