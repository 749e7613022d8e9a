"""The SDN training-aid ablation on a CPU preset: same data, same wall time per variant.

    python -m benchmarks.perf.sdn_ablation --data data/shapes-default --out runs/ablation --minutes 6

Each variant is the ``aided`` recipe with one aid removed, plus the faithful recipe
and the full aided recipe. Every run writes its own folder; rerunning with a larger
``--minutes`` resumes each run for the remaining wall time. The summary
table (``ablation.md`` and ``ablation.csv`` in ``--out``) holds each run's last
held-out evaluation (sdn.quality) and its steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from sdn.config import RECIPES, apply_overrides, preset
from sdn.io import atomic_write_text
from sdn.trainer import train_sdn

AID_DEFAULT_OFF = {
    "warmup_steps": 0, "decoder_code_dropout": 0.0, "code_standardise": False, "code_margin": 0.0,
    "code_term_mean": False, "cond_bn": False, "ema": 0.0,
}  # fmt: skip


def variants() -> dict[str, tuple[str, list[str]]]:
    out = {"faithful": ("faithful", []), "aided": ("aided", [])}
    for aid in RECIPES["aided"]:
        if aid in ("code_term_mean", "ema"):
            continue  # ema only changes evaluation samples; code_term_mean goes with code_margin
        out[f"aided - {aid}"] = ("aided", [f"aids.{aid}={AID_DEFAULT_OFF[aid]}"])
    return out


COLUMNS = [
    "variant", "steps", "code_agree_own", "code_agree_other", "code_agree_corrected",
    "retrieval_colour_histogram", "retrieval_colour_histogram_ceiling", "retrieval_mean_image",
    "retrieval_mean_image_ceiling", "retrieval_chance", "distinct_codes", "prior_nll_bits",
    "diversity_recon", "diversity_real", "diversity_ratio",
]  # fmt: skip


def run_totals(run_dir: Path) -> tuple[int, float]:
    """Steps trained and training wall time (s) of a run folder, over all its sessions
    (run.json); (0, 0.0) for a folder without one."""
    if not (run_dir / "run.json").exists():
        return 0, 0.0
    sessions = json.loads((run_dir / "run.json").read_text()).get("sessions", [])
    steps = sum(s["end_step"] - s["start_step"] for s in sessions)
    return steps, sum(s.get("wall_s", 0.0) for s in sessions)


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--preset", "preset_name", default="cpu-32", show_default=True)
@click.option("--minutes", default=6.0, show_default=True, type=float, help="Wall time per variant.")
@click.option("--only", default=None, help="Comma-separated variant names (default: all).")
@click.option("--cache-dir", default=None)
def main(data, out, preset_name, minutes, only, cache_dir):
    out = Path(out)
    chosen = variants()
    if only:
        chosen = {k: v for k, v in chosen.items() if k in only.split(",")}
    rows = []
    for name, (recipe, overrides) in chosen.items():
        run_dir = out / name.replace(" ", "").replace("-", "_minus_", 1) if " - " in name else out / name
        cfg = apply_overrides(
            preset(preset_name, "shapes", recipe),
            overrides + ["train.steps=1000000", f"train.max_minutes={minutes}", "train.eval_every=500"],
        )
        spent = run_totals(run_dir)[1] / 60
        if spent < minutes - 0.5:  # new, or extended to a larger --minutes: resume for the rest
            cfg = apply_overrides(cfg, [f"train.max_minutes={minutes - spent}"])
            train_sdn(data, cfg, run_dir, resume=(run_dir / "checkpoint.pt").exists(), cache_dir=cache_dir)
        record = json.loads((run_dir / "run.json").read_text())
        if record["sessions"][-1].get("status") == "interrupted":
            raise SystemExit(f"interrupted during {name!r}; rerun the same command to continue")
        rows.append({"variant": name, "steps": record["steps_done"], **record.get("last_eval", {})})
    df = pd.DataFrame(rows)[COLUMNS]
    atomic_write_text(out / "ablation.csv", df.to_csv(index=False))
    atomic_write_text(out / "ablation.md", df.to_markdown(index=False, floatfmt=".3f") + "\n")
    print(df.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
