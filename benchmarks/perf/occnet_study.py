"""The OccNet study of the issue "Stronger reference models": validation IoU against the
number of training objects and against views per training sample, at equal steps.

    python -m benchmarks.perf.occnet_study train --variant n2600 --minutes 50
    python -m benchmarks.perf.occnet_study shipped
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

The paired comparisons rest on per-object IoUs of checkpoints (:func:`checkpoint_objects`),
from 1 fixed view and from 4 pooled ones (the benchmark meshes pooled views, and a variant
trained on 4 views a sample is judged fairly there only), kept in the records for every step
scored: ``train`` scores the last checkpoint of each sitting, ``objects`` a run folder's or a
saved copy's, and ``shipped`` the shipped OccNet on the same objects and thresholds, the
model a variant has to beat to replace it.
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
RECIPE_CHANGES = ("train.lr",)  # sitting overrides that change what is trained (shown with the variant)
VAL_OBJECTS = 130  # validation objects of data/shapes-large-s1 (of 390), spread over its val split
VIEWS = (1, 4)  # pooled views per validated object (the trainer validates on 1)
COMMON = [
    f"train.val_objects={VAL_OBJECTS}", "train.eval_every=500", "train.checkpoint_every=250",
    f"train.thresholds={THRESHOLDS}",
]  # fmt: skip


def variant_config(name: str, minutes: float, steps: int = 100_000, extra: tuple[str, ...] = ()):
    """The cpu-32 OccNet config of variant ``name`` with a sitting of ``minutes``, stopping at
    ``steps`` at the latest (the learning rate is constant: ``steps`` only caps the run), with
    this sitting's ``extra`` overrides (e.g. a lowered ``train.lr`` for a final phase; the
    trainer accepts resumable keys only and records each change in run.json)."""
    if name not in VARIANTS:
        known = ", ".join(VARIANTS)
        raise click.BadParameter(f"unknown variant {name!r}; known: {known}", param_hint="--variant")
    overrides = [*COMMON, *VARIANTS[name], f"train.max_minutes={minutes}", f"train.steps={steps}", *extra]
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
@click.option("--set", "extra", multiple=True, metavar="KEY=VALUE",
              help="A resumable override for this sitting, e.g. train.lr=3e-5 (repeat it in later sittings).")
@click.option("--data", default="data/shapes-large-s1", show_default=True)
@click.option("--held-out", default="data/shapes-default", show_default=True, help="Must share no object.")
@work_option
@records_option
def train(variant, minutes, steps, extra, data, held_out, work, records):
    """One sitting of one variant (resumed when its run folder exists), then its record."""
    out = Path(work) / variant
    cfg = variant_config(variant, minutes, steps, extra)
    record = train_occnet(data, cfg, out, resume=(out / "checkpoint.pt").is_file(), held_out=[held_out])
    store_record(Path(records), variant_record(out, variant, data))
    best = record.get("best", {})
    iou = best.get("best_iou", float("nan"))
    click.echo(f"{variant}: best validation IoU {iou:.3f} at step {best.get('step')}")


def checkpoint_objects(path: Path, data: str, views: tuple[int, ...] = VIEWS) -> dict:
    """Per-object validation IoU of the OccNet checkpoint ``path`` on the study's validation
    objects (``VAL_OBJECTS`` of ``data``'s val split, :func:`validation_picks`), from each
    number of pooled fixed views in ``views`` (nested: the 4 views start with the 1), each at
    its own best of the study's thresholds: {"step", "objects" (synset/model id),
    "categories", "views": {"1": {"threshold", "iou"}, ...}}. The study's thresholds and
    objects, not the checkpoint's own, so that any OccNet (a variant's or the shipped one)
    is scored on the same footing; the paired comparisons rest on these (the trainer's
    eval.csv holds single-view means only)."""
    ckpt = load_checkpoint(path, kind="occnet")
    model = OccupancyNetwork.from_state(ckpt)
    thresholds = [float(t) for t in THRESHOLDS.split(",")]
    out, cache = {"step": int(ckpt["step"]), "views": {}}, None
    for k in views:
        val = validation_dataset(data, model.cfg, progress=False, views=k)
        cache = cache or PointCache(val)  # the same objects in the same order for every k
        picks = validation_picks(len(val), VAL_OBJECTS)
        per = validation_object_ious(model, val, cache, picks, thresholds)
        best = best_threshold(per)
        out["views"][str(k)] = {"threshold": float(best), "iou": [round(float(x), 6) for x in per[best]]}
    objs = [val.objects[int(i)] for i in picks]
    out["objects"] = [f"{o.synset}/{o.object_id}" for o in objs]
    out["categories"] = [o.synset for o in objs]
    return out


def variant_record(folder: Path, name: str, data: str | None = None) -> dict:
    """A variant's figures from its run folder: facts, its validation IoU per step and, when
    ``data`` is given, its last checkpoint's per-object IoU (:func:`checkpoint_objects`, under
    "objects" by step; :func:`store_record` keeps those of earlier steps)."""
    ev = pd.read_csv(folder / "eval.csv")
    run = json.loads((folder / "run.json").read_text())
    steps, wall = run_totals(folder)
    best = run.get("best", {})
    changes = [f"{k}={v[1]:g} from step {c['step']}" for c in run.get("config_changes", [])
               for k, v in c.items() if k in RECIPE_CHANGES]  # fmt: skip
    record = {
        "variant": name, "overrides": ", ".join([*VARIANTS[name], *changes]), "steps": int(ev.step.max()),
        "train_objects": run["train_objects"],  # the subset trained on (leak_check's is the whole split)
        "s_per_step": wall / steps if steps else float("nan"), "wall_min": wall / 60,
        "best_iou": best.get("best_iou"), "best_step": best.get("step"),
        "best_threshold": best.get("best_threshold"),
        "eval": [[int(r.step), float(r.best_iou), float(r.best_threshold)] for r in ev.itertuples()],
        "source": f"run folder {folder}",
    }  # fmt: skip
    if data is not None:
        entry = checkpoint_objects(folder / "checkpoint.pt", data)
        record["objects"] = {str(entry["step"]): entry}
    return record


def load_records(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def store_record(path: Path, record: dict) -> None:
    """Put ``record`` (:func:`variant_record`) into the records file, atomically, keeping the
    per-object figures the stored record has for other steps (a variant's run folder holds
    its last checkpoint only, so those of earlier steps live only here)."""
    records = load_records(path)
    objects = {**records.get(record["variant"], {}).get("objects", {}), **record.get("objects", {})}
    records[record["variant"]] = {**record, **({"objects": objects} if objects else {})}
    write_records(path, records)


def write_records(path: Path, records: dict) -> None:
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
@click.option("--variant", default=None, help="With --checkpoint: the variant it belongs to.")
@click.option("--checkpoint", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Score this checkpoint of --variant (a copy of an earlier step) instead.")  # fmt: skip
@work_option
@records_option
def objects(data, variant, checkpoint, work, records):
    """Store the per-object validation IoU of every run folder's last checkpoint in the records
    (``train`` does it after each sitting), or of one ``--checkpoint`` of ``--variant``."""
    if checkpoint is not None:
        if variant not in VARIANTS:
            raise click.BadParameter(f"--checkpoint needs --variant, one of {', '.join(VARIANTS)}")
        stored = load_records(Path(records)).get(variant)
        if stored is None:
            raise click.UsageError(f"{records} has no record of {variant}; train it first")
        entry = checkpoint_objects(Path(checkpoint), data)
        store_record(Path(records), {**stored, "objects": {str(entry["step"]): entry}})
        click.echo(f"{variant}: per-object IoU of step {entry['step']} stored")
        return
    for name in VARIANTS:
        folder = Path(work) / name
        if (folder / "checkpoint.pt").is_file():
            store_record(Path(records), variant_record(folder, name, data))
            click.echo(f"{name}: per-object IoU stored")


@main.command()
@click.option("--checkpoint", default="checkpoints/occnet-shapes-cpu32.pt", show_default=True,
              type=click.Path(exists=True, dir_okay=False))  # fmt: skip
@click.option("--data", default="data/shapes-large-s1", show_default=True)
@records_option
def shipped(checkpoint, data, records):
    """Score the shipped OccNet on the study's validation objects (record "shipped"): the
    reference every variant must beat to replace it."""
    manifest = json.loads(Path(f"{checkpoint}.json").read_text())
    entry = checkpoint_objects(Path(checkpoint), data)
    record = {
        "variant": "shipped", "checkpoint": checkpoint, "sha256": manifest["sha256"],
        "trained_on": manifest["data"], "note": manifest["note"], "objects": {str(entry["step"]): entry},
    }  # fmt: skip
    write_records(Path(records), {**load_records(Path(records)), "shipped": record})  # replaced whole
    click.echo(f"shipped: {checkpoint} scored at step {entry['step']}")


def paired_difference(
    entry: dict, reference: dict, views: str, n_boot: int = 2000, seed: int = 0
) -> dict | None:
    """Mean validation IoU of ``entry`` minus ``reference`` (two :func:`checkpoint_objects`
    results) from ``views`` pooled views, paired over the same objects: {"n", "diff",
    "ci_low", "ci_high"}, the interval being the 95 % percentile bootstrap of the mean of the
    per-category mean differences (objects resampled within each category,
    :func:`benchmarks.shapenet.bootstrap_summary`; NaN under 3 objects a category). None when
    the two were scored on other objects or one lacks ``views``."""
    mine, theirs = entry["views"].get(views), reference["views"].get(views)
    if entry["objects"] != reference["objects"] or mine is None or theirs is None:
        return None
    return paired_mean_difference(entry["categories"], mine["iou"], theirs["iou"], n_boot, seed)


def paired_mean_difference(
    categories: list[str], a: list[float], b: list[float], n_boot: int = 2000, seed: int = 0
) -> dict:
    """Mean of ``a - b`` (per object, same order) with its bootstrap interval within
    ``categories``, as :func:`paired_difference` describes."""
    d = pd.DataFrame({"category": categories, "d": pd.Series(a) - pd.Series(b)})
    overall = bootstrap_summary(d, "d", n_boot, seed)[-1]
    return {"n": len(d), "diff": overall["mean"], "ci_low": overall["ci_low"], "ci_high": overall["ci_high"]}


def paired_rows(entries: list[tuple[str, dict]], reference: tuple[str, dict]) -> list[dict]:
    """:func:`paired_difference` of each (name, entry) of ``entries`` against ``reference``
    (name, entry), for every number of views in ``VIEWS`` that both have: rows {"variant",
    "reference", "step", "views", "n", "diff", "ci_low", "ci_high"}."""
    rows = []
    for name, entry in entries:
        for k in map(str, VIEWS):
            r = paired_difference(entry, reference[1], k)
            if r is not None:
                rows.append({"variant": name, "reference": reference[0], "step": entry["step"],
                             "views": k, **r})  # fmt: skip
    return rows


def pooling_gain(entry: dict, views: tuple[str, str] = ("4", "1")) -> dict | None:
    """IoU from ``views[0]`` pooled views minus from ``views[1]`` of one checkpoint
    (:func:`checkpoint_objects`), paired per object, as :func:`paired_difference`."""
    high, low = (entry["views"].get(k) for k in views)
    if high is None or low is None:
        return None
    return paired_mean_difference(entry["categories"], high["iou"], low["iou"])


def _ci(r: dict) -> str:
    return "n too small" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"


def _paired_table(rows: list[dict]) -> list[str]:
    lines = ["| variant | minus | step | views | n | mean IoU difference | 95 % interval |",
             "|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['variant']} | {r['reference']} | {r['step']} | {r['views']} | {r['n']} "
                     f"| {r['diff']:+.3f} | {_ci(r)} |")  # fmt: skip
    return lines


def comparison_lines(facts: list[dict], shipped: dict | None) -> list[str]:
    """The report's per-object tables: each checkpoint's mean IoU from 1 and 4 pooled views
    with its pooling gain; paired differences at every step that two or more variants have
    per-object figures for (against the first of them); and each variant's last scored
    checkpoint against the shipped OccNet (``shipped``, the record the ``shipped`` command stores)."""
    scored = [(f["variant"], f["objects"]) for f in facts if f.get("objects")]
    ckpts = [(name, objs[s]) for name, objs in scored for s in sorted(objs, key=int)]
    # The shipped file is replaced when a variant wins: the label names the scored one's sha256.
    label = f"shipped {shipped['sha256'][:12]}" if shipped and "sha256" in shipped else "shipped"
    shipped_entry = next(iter(shipped["objects"].values())) if shipped is not None else None
    if shipped_entry is not None:
        ckpts.append((label, shipped_entry))
    if not ckpts:
        return []
    lines = ["", "Per-object validation IoU of the scored checkpoints (each at its own best threshold per "
             f"number of views; {len(ckpts[0][1]['objects'])} objects; gain: 4 pooled views minus 1, paired, "
             "95 % bootstrap interval within categories):", "",
             "| checkpoint | step | 1 view (threshold) | 4 views (threshold) | gain 4 - 1 [95 %] |",
             "|---|---:|---:|---:|---|"]  # fmt: skip
    for name, e in ckpts:
        cells = [f"{pd.Series(v['iou']).mean():.3f} ({v['threshold']:g})" if v else "-"
                 for v in (e["views"].get("1"), e["views"].get("4"))]  # fmt: skip
        g = pooling_gain(e)
        gain = "-" if g is None else f"{g['diff']:+.3f} {_ci(g)}"
        lines.append(f"| {name} | {e['step']} | {cells[0]} | {cells[1]} | {gain} |")
    for step in sorted({s for _, objs in scored for s in objs}, key=int):
        at = [(name, objs[step]) for name, objs in scored if step in objs]
        rows = paired_rows(at[1:], at[0]) if len(at) > 1 else []
        if rows:
            lines += ["", f"Paired differences at step {step}:", "", *_paired_table(rows)]
    if shipped_entry is not None and scored:
        last = [(name, objs[max(objs, key=int)]) for name, objs in scored]
        rows = paired_rows(last, (label, shipped_entry))
        if rows:
            title = f"Each variant's last scored checkpoint minus the shipped OccNet ({label}):"
            lines += ["", title, "", *_paired_table(rows)]
    return lines


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
        f"`data/shapes-default`), one fixed view (the trainer's figures: curves and the first two tables) "
        f"and 4 pooled ones (the per-object tables), the first {VAL_POINTS // 1000}k uniform points of each, "
        f"the mean IoU at the best of thresholds {THRESHOLDS}. s/step and wall time are every sitting's, "
        "whatever else ran beside it (run.json). No test split is read. Figures from "
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
    lines += comparison_lines(facts, load_records(Path(records)).get("shipped"))
    curves = plot_curves(ev, Path(out).with_suffix(".png"))
    lines += ["", f"![validation IoU against steps]({curves.name})"]
    atomic_write_text(out, "\n".join(lines) + "\n")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
