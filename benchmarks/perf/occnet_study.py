"""The OccNet study of the issue "Stronger reference models": validation IoU against the
number of training objects and against views per training sample, at equal steps.

    python -m benchmarks.perf.occnet_study train --variant n2600 --minutes 50
    python -m benchmarks.perf.occnet_study report

Every variant trains the ``cpu-32`` OccNet on nested subsets of one leak-free set
(``data/shapes-large-s1``: ``sdn-bench data shapes --out data/shapes-large-s1
--objects-per-category 286 --seed 1 --splits train,val``; seed 1, so none of its objects is
an object of ``data/shapes-default``, which :func:`sdn.data.overlap.check_disjoint` verifies
before training) and is validated on the same 130 of its validation objects, single view,
at each candidate threshold (the threshold is chosen there, never on a test split). ``train``
runs one sitting of one variant (``--minutes`` of wall time, ``--steps`` at most, resumed
exactly from its run folder) and then stores the variant's figures in the committed record
``docs/occnet-study-runs.json`` (validation IoU per evaluated step, steps, wall time, best),
so that a study outlives the machine its run folders were on; ``report`` writes
``docs/occnet-study.md`` from the records (refreshed from any run folder present):
validation IoU at every evaluated step, each variant's best and its s/step,
and the learning curves beside it (``docs/occnet-study.png``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from occnet_multiview.config import occnet_preset
from occnet_multiview.model import OccupancyNetwork
from occnet_multiview.trainer import (
    VAL_POINTS,
    PointCache,
    best_threshold,
    train_occnet,
    validation_dataset,
    validation_object_ious,
    validation_picks,
)
from sdn.checkpoint import load_checkpoint
from sdn.config import apply_overrides
from sdn.io import atomic_write_text

from ..shapenet import bootstrap_summary
from .sdn_ablation import run_totals

VARIANTS = {  # name -> overrides of the cpu-32 preset
    "n455": ["train.train_per_category=35"],  # the size of data/shapes-default's train split
    "n1300": ["train.train_per_category=100"],
    "n2600": ["train.train_per_category=200"],
    "n2600-k4": ["train.train_per_category=200", "train.views_per_sample=4"],
}
RECORDS = Path("docs/occnet-study-runs.json")  # the committed figures of every variant trained
# Thresholds below OccNet's 0.2 too: early in training the best one sat at 0.2, the edge of
# the default grid (0.2-0.5), so the grid could not say where the optimum was.
THRESHOLDS = "0.1,0.15,0.2,0.3,0.4,0.5"
COMMON = [
    "train.val_objects=130", "train.eval_every=500", "train.checkpoint_every=250",
    f"train.thresholds={THRESHOLDS}",
]  # fmt: skip


def variant_config(name: str, minutes: float, steps: int = 100_000):
    """The cpu-32 OccNet config of variant ``name`` with a sitting of ``minutes``, stopping at
    ``steps`` at the latest (the learning rate is constant: ``steps`` only caps the run)."""
    if name not in VARIANTS:
        known = ", ".join(VARIANTS)
        raise click.BadParameter(f"unknown variant {name!r}; known: {known}", param_hint="--variant")
    overrides = [*COMMON, *VARIANTS[name], f"train.max_minutes={minutes}", f"train.steps={steps}"]
    return apply_overrides(occnet_preset("cpu-32"), overrides)


work_option = click.option("--work", default="runs/occnet-study", show_default=True, help="Run folders.")
records_option = click.option(
    "--records", default=str(RECORDS), show_default=True, help="The committed records file."
)


@click.group()
def main():
    """Train the study's variants in sittings, then report."""


@main.command()
@click.option("--variant", required=True)
@click.option("--minutes", default=50.0, show_default=True, type=float, help="This sitting's wall time.")
@click.option("--steps", default=100_000, show_default=True, type=int, help="Stop at this step.")
@click.option("--data", default="data/shapes-large-s1", show_default=True)
@click.option("--held-out", default="data/shapes-default", show_default=True, help="Must share no object.")
@work_option
@records_option
def train(variant, minutes, steps, data, held_out, work, records):
    """One sitting of one variant (resumed when its run folder exists), then its record."""
    out = Path(work) / variant
    cfg = variant_config(variant, minutes, steps)
    record = train_occnet(data, cfg, out, resume=(out / "checkpoint.pt").is_file(), held_out=[held_out])
    store_record(Path(records), variant_record(out, variant, data))
    best = record.get("best", {})
    iou = best.get("best_iou", float("nan"))
    click.echo(f"{variant}: best validation IoU {iou:.3f} at step {best.get('step')}")


def final_objects(folder: Path, data: str) -> dict:
    """Per-object validation IoU of the run folder's last checkpoint, at the threshold of
    highest mean IoU there, on the objects and view its trainer validates: {"step",
    "threshold", "objects" (synset/model id), "categories", "iou"}. The paired comparison of
    variants at one step rests on these (the trainer's eval.csv holds means only)."""
    ckpt = load_checkpoint(folder / "checkpoint.pt", kind="occnet")
    model = OccupancyNetwork.from_state(ckpt)
    cfg = model.cfg
    val = validation_dataset(data, cfg, progress=False)
    picks = validation_picks(len(val), cfg.train.val_objects)
    per = validation_object_ious(model, val, PointCache(val), picks, cfg.train.thresholds)
    best = best_threshold(per)
    objs = [val.objects[int(i)] for i in picks]
    return {
        "step": int(ckpt["step"]), "threshold": float(best),
        "objects": [f"{o.synset}/{o.object_id}" for o in objs], "categories": [o.synset for o in objs],
        "iou": [round(float(x), 6) for x in per[best]],
    }  # fmt: skip


def variant_record(folder: Path, name: str, data: str | None = None) -> dict:
    """A variant's figures from its run folder: facts, its validation IoU per step and, when
    ``data`` is given, its last checkpoint's per-object IoU (:func:`final_objects`; else the
    stored record's, if any)."""
    ev = pd.read_csv(folder / "eval.csv")
    run = json.loads((folder / "run.json").read_text())
    steps, wall = run_totals(folder)
    best = run.get("best", {})
    return {
        "variant": name, "overrides": ", ".join(VARIANTS[name]), "steps": int(ev.step.max()),
        "train_objects": run["train_objects"],  # the subset trained on (leak_check's is the whole split)
        "s_per_step": wall / steps if steps else float("nan"), "wall_min": wall / 60,
        "best_iou": best.get("best_iou"), "best_step": best.get("step"),
        "best_threshold": best.get("best_threshold"),
        "eval": [[int(r.step), float(r.best_iou), float(r.best_threshold)] for r in ev.itertuples()],
        "source": f"run folder {folder}",
        **({"final_objects": final_objects(folder, data)} if data is not None else {}),
    }  # fmt: skip


def load_records(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def store_record(path: Path, record: dict) -> None:
    """Put ``record`` (:func:`variant_record`) into the records file, atomically."""
    records = load_records(path)
    records[record["variant"]] = record
    atomic_write_text(path, json.dumps(records, indent=1, sort_keys=True) + "\n")


def _variant_rows(work: Path, records_path: Path) -> tuple[pd.DataFrame, list[dict]]:
    """The eval rows (variant, step, best_iou, best_threshold) and facts of every variant with
    a run folder under ``work`` or a record in ``records_path`` (the folder wins)."""
    records = load_records(records_path)
    evals, facts = [], []
    for name in VARIANTS:
        folder = work / name
        if (folder / "eval.csv").is_file():  # the stored per-object IoUs stay (their step says when)
            record = {**records.get(name, {}), **variant_record(folder, name)}
        elif name in records:
            record = records[name]
        else:
            continue
        facts.append({k: v for k, v in record.items() if k != "eval"})
        ev = pd.DataFrame(record["eval"], columns=["step", "best_iou", "best_threshold"]).assign(variant=name)
        evals.append(ev)
    return (pd.concat(evals) if evals else pd.DataFrame()), facts


def plot_curves(ev: pd.DataFrame, out: Path) -> Path:
    """Validation IoU (best threshold) against steps, one line per variant of ``ev``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..figures import save_plot

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in ev.groupby("variant", sort=False):
        ax.plot(g.step, g.best_iou, marker="o", label=name)
    ax.set(xlabel="training step", ylabel="validation IoU (best threshold)", title="OccNet study")
    ax.grid(alpha=0.3)
    ax.legend()
    save_plot(fig, out)
    plt.close(fig)
    return out


@main.command()
@click.option("--data", default="data/shapes-large-s1", show_default=True)
@work_option
@records_option
def objects(data, work, records):
    """Store the per-object validation IoU of every run folder's last checkpoint in the records
    (``train`` does it after each sitting; this is for folders trained before it did)."""
    for name in VARIANTS:
        folder = Path(work) / name
        if (folder / "checkpoint.pt").is_file():
            store_record(Path(records), variant_record(folder, name, data))
            click.echo(f"{name}: per-object IoU stored")


def paired_rows(facts: list[dict], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Each variant's mean validation IoU minus the first variant's, paired over the same
    objects at the same step (``final_objects``), with the 95 % percentile bootstrap interval
    of the mean of the per-category mean differences (objects resampled within each category,
    :func:`benchmarks.shapenet.bootstrap_summary`; no interval under 3 objects a category).
    Variants without per-object figures, or at another step or on other objects, are left out."""
    have = [f for f in facts if "final_objects" in f]
    if len(have) < 2:
        return []
    ref = have[0]["final_objects"]
    rows = []
    for f in have[1:]:
        fo = f["final_objects"]
        if fo["step"] != ref["step"] or fo["objects"] != ref["objects"]:
            continue
        diff = pd.DataFrame({"category": fo["categories"], "d": pd.Series(fo["iou"]) - pd.Series(ref["iou"])})
        overall = bootstrap_summary(diff, "d", n_boot, seed)[-1]
        rows.append({
            "variant": f["variant"], "reference": have[0]["variant"], "step": fo["step"],
            "n": len(fo["iou"]), "diff": overall["mean"], "ci_low": overall["ci_low"],
            "ci_high": overall["ci_high"],
        })  # fmt: skip
    return rows


@main.command()
@work_option
@click.option("--out", default="docs/occnet-study.md", show_default=True)
@records_option
def report(work, out, records):
    """docs/occnet-study.md from the variants trained so far (run folders, else records)."""
    ev, facts = _variant_rows(Path(work), Path(records))
    if not facts:
        raise click.UsageError(f"{work}: no variant has an eval.csv yet, and {records} has no record")
    lines = [
        "# OccNet study: training objects and views per sample, at equal steps",
        "",
        "`python -m benchmarks.perf.occnet_study report` (module docstring: data, variants, sittings). "
        "Validation: 130 objects of `data/shapes-large-s1`'s val split (seed 1, disjoint from "
        f"`data/shapes-default`), one view, the first {VAL_POINTS // 1000}k uniform points of each, the mean "
        f"IoU at the best of thresholds {THRESHOLDS}. No test split is read. Figures from "
        "`docs/occnet-study-runs.json` (each variant's source says where they were read).",
        "",
        "| variant | overrides | train objects | steps | s/step | wall (min) | best IoU (step, threshold) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for f in facts:
        lines.append(
            f"| {f['variant']} | {f['overrides']} | {f['train_objects']} | {f['steps']} "
            f"| {f['s_per_step']:.2f} | {f['wall_min']:.0f} "
            f"| {f['best_iou']:.3f} ({f['best_step']}, {f['best_threshold']:g}) |"
        )
    # Every evaluated step; a variant that has not reached a step shows "-" there, so the
    # comparison at equal steps is a row whose cells are all filled.
    wide = ev.pivot_table(index="step", columns="variant", values="best_iou")
    wide = wide[[f["variant"] for f in facts]]  # the variants' order
    lines += ["", "Validation IoU (best threshold) per evaluated step (-: not reached):", ""]
    lines += ["| step | " + " | ".join(wide.columns) + " |", "|---:|" + "---:|" * len(wide.columns)]
    lines += [
        f"| {s} | " + " | ".join("-" if pd.isna(v) else f"{v:.3f}" for v in row) + " |"
        for s, row in wide.iterrows()
    ]
    paired = paired_rows(facts)
    if paired:
        lines += [
            "", f"Paired differences at step {paired[0]['step']} (last checkpoints, each at its own best "
            f"threshold; {paired[0]['n']} objects, 95 % bootstrap interval within categories):", "",
            "| variant | minus | mean IoU difference | 95 % interval |", "|---|---|---:|---|",
        ]  # fmt: skip
        for r in paired:
            ci = "n too small" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
            lines.append(f"| {r['variant']} | {r['reference']} | {r['diff']:+.3f} | {ci} |")
    curves = plot_curves(ev, Path(out).with_suffix(".png"))
    lines += ["", f"![validation IoU against steps]({curves.name})"]
    atomic_write_text(out, "\n".join(lines) + "\n")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
