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
runs one sitting of one variant (``--minutes`` of wall time, resumed exactly from its run
folder); ``report`` writes ``docs/occnet-study.md`` from the run folders' ``eval.csv`` and
``run.json``: validation IoU at the steps every variant has reached, each variant's best
and its s/step.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from occnet_multiview.config import occnet_preset
from occnet_multiview.trainer import train_occnet
from sdn.config import apply_overrides
from sdn.io import atomic_write_text

from .sdn_ablation import run_totals

VARIANTS = {  # name -> overrides of the cpu-32 preset
    "n455": ["train.train_per_category=35"],  # the size of data/shapes-default's train split
    "n1300": ["train.train_per_category=100"],
    "n2600": ["train.train_per_category=200"],
    "n2600-k4": ["train.train_per_category=200", "train.views_per_sample=4"],
}
COMMON = ["train.val_objects=130", "train.eval_every=500", "train.checkpoint_every=250"]


def variant_config(name: str, minutes: float, steps: int = 100_000):
    """The cpu-32 OccNet config of variant ``name`` with a sitting of ``minutes``, stopping at
    ``steps`` at the latest (the learning rate is constant: ``steps`` only caps the run)."""
    if name not in VARIANTS:
        known = ", ".join(VARIANTS)
        raise click.BadParameter(f"unknown variant {name!r}; known: {known}", param_hint="--variant")
    overrides = [*COMMON, *VARIANTS[name], f"train.max_minutes={minutes}", f"train.steps={steps}"]
    return apply_overrides(occnet_preset("cpu-32"), overrides)


@click.group()
def main():
    """Train the study's variants in sittings, then report."""


@main.command()
@click.option("--variant", required=True)
@click.option("--minutes", default=50.0, show_default=True, type=float, help="This sitting's wall time.")
@click.option("--steps", default=100_000, show_default=True, type=int, help="Stop at this step.")
@click.option("--data", default="data/shapes-large-s1", show_default=True)
@click.option("--held-out", default="data/shapes-default", show_default=True, help="Must share no object.")
@click.option("--work", default="runs/occnet-study", show_default=True)
def train(variant, minutes, steps, data, held_out, work):
    """One sitting of one variant (resumed when its run folder exists)."""
    out = Path(work) / variant
    cfg = variant_config(variant, minutes, steps)
    record = train_occnet(data, cfg, out, resume=(out / "checkpoint.pt").is_file(), held_out=[held_out])
    best = record.get("best", {})
    iou = best.get("best_iou", float("nan"))
    click.echo(f"{variant}: best validation IoU {iou:.3f} at step {best.get('step')}")


def _variant_rows(work: Path) -> tuple[pd.DataFrame, list[dict]]:
    evals, facts = [], []
    for name in VARIANTS:
        folder = work / name
        if not (folder / "eval.csv").is_file():
            continue
        ev = pd.read_csv(folder / "eval.csv").assign(variant=name)
        run = json.loads((folder / "run.json").read_text())
        steps, wall = run_totals(folder)
        facts.append({
            "variant": name, "overrides": ", ".join(VARIANTS[name]), "steps": int(ev.step.max()),
            "train_objects": run.get("leak_check", {}).get("train_objects"),
            "s_per_step": wall / steps if steps else float("nan"), "wall_min": wall / 60,
            "best_iou": run.get("best", {}).get("best_iou"), "best_step": run.get("best", {}).get("step"),
            "best_threshold": run.get("best", {}).get("best_threshold"),
        })  # fmt: skip
        evals.append(ev)
    return (pd.concat(evals) if evals else pd.DataFrame()), facts


@main.command()
@click.option("--work", default="runs/occnet-study", show_default=True)
@click.option("--out", default="docs/occnet-study.md", show_default=True)
def report(work, out):
    """docs/occnet-study.md from the variants trained so far."""
    ev, facts = _variant_rows(Path(work))
    if not facts:
        raise click.UsageError(f"{work}: no variant has an eval.csv yet")
    lines = [
        "# OccNet study: training objects and views per sample, at equal steps",
        "",
        "`python -m benchmarks.perf.occnet_study report` (module docstring: data, variants, sittings). "
        "Validation: 130 objects of `data/shapes-large-s1`'s val split (seed 1, disjoint from "
        "`data/shapes-default`), one view, 100k points each (the first 100k of points.npz), the mean "
        "IoU at the best of thresholds 0.2-0.5. No test split is read.",
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
    common = sorted(set.intersection(*(set(g.step) for _, g in ev.groupby("variant"))))
    wide = ev[ev.step.isin(common)].pivot_table(index="step", columns="variant", values="best_iou")
    wide = wide[[f["variant"] for f in facts]]  # the variants' order
    lines += ["", "Validation IoU (best threshold) at the steps every variant has reached:", ""]
    lines += ["| step | " + " | ".join(wide.columns) + " |", "|---:|" + "---:|" * len(wide.columns)]
    lines += [f"| {s} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for s, row in wide.iterrows()]
    atomic_write_text(out, "\n".join(lines) + "\n")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
