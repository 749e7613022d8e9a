"""The SDN's selection score: the benchmark itself, reduced, on validation data, during training.

A checkpoint or a recipe is chosen on validation data only (the test split is the
benchmarks' alone). The selection score is the calibrated headline of the benchmark the SDN
is for, computed by the same harness and the same ladder (:mod:`benchmarks.ladder`) on
validation sets:

- shapes (:class:`ShapesSelection`): Table 1(a) IoU at k = 1 and k = 16 on ``objects``
  objects of the ``val`` split (default 39, three per category: 26, two per category, would
  leave every interval "n too small" under the project's >= 3 per stratum rule), the real side
  and the references cached after the first evaluation;
- faces (:class:`FacesSelection`): `recon` and `recon and real` AUC at k = the set size on the
  train identities the run holds out of training (:func:`sdn.data.vggface2.hold_out_identities`,
  the trainer's own choice), the references cached likewise.

Each returns, per headline metric, the model's value, its normalised score
s = (model - floor) / (ceiling - floor) and the paired 95% interval of s, plus
``selection_score``: the mean of the normalised scores that exist (the number that ranks
checkpoints and recipes; faces `recon` AUC has none on the synthetic data, its ceiling and
floor being within 10%, so there the score is `recon and real`'s). The reports of every
evaluation stay in ``<run>/selection/step_NNNNNNN/``;
``<run>/selection.png`` plots the normalised scores against steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sdn.data.vggface2 import VGGFace2Sets, hold_out_identities

from .faces import FacesBenchConfig, run_calibrated_faces
from .figures import save_plot
from .shapenet import ShapeNetBenchConfig, run_calibrated_shapenet


def _quiet(*_args) -> None:
    return None


def _tag(table: str, metric: str, k: int) -> str:
    """The eval.csv column stem of one headline metric."""
    return f"sel_{table.replace(' ', '_')}_{metric}_k{k}"


def _read(folder: Path, picks: list[tuple[str, str, int]]) -> dict[str, float]:
    """The selection fields from ``folder/calibration.csv`` for the (table, metric, k) picks."""
    cal = pd.read_csv(folder / "calibration.csv").set_index(["table", "metric", "k"])
    out, scores = {}, []
    for table, metric, k in picks:
        r = cal.loc[(table, metric, k)]
        tag = _tag(table, metric, k)
        out[tag] = float(r.model)
        out[f"{tag}_norm"] = float(r.normalised)
        out[f"{tag}_norm_lo"], out[f"{tag}_norm_hi"] = float(r.ci_low), float(r.ci_high)
        scores.append(float(r.normalised))
    finite = [s for s in scores if np.isfinite(s)]  # a metric without a scale has none (ladder.py)
    out["selection_score"] = float(np.mean(finite)) if finite else float("nan")
    return out


def _fields(picks: list[tuple[str, str, int]]) -> tuple[str, ...]:
    tags = [_tag(*p) for p in picks]
    return tuple(f for tag in tags for f in (tag, f"{tag}_norm", f"{tag}_norm_lo", f"{tag}_norm_hi")) + (
        "selection_score",
    )


def plot_selection(eval_csv: Path, fields: tuple[str, ...], out: Path) -> Path:
    """The normalised selection scores of ``eval_csv`` against steps, with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = pd.read_csv(eval_csv)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in (f for f in fields if f.endswith("_norm")):
        rows = ev.dropna(subset=[name])
        lo, hi = rows[f"{name}_lo"], rows[f"{name}_hi"]
        ax.errorbar(rows.step, rows[name], yerr=[rows[name] - lo, hi - rows[name]], capsize=3, marker="o",
                    label=name.removeprefix("sel_").removesuffix("_norm"))  # fmt: skip
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.axhline(0.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("step")
    ax.set_ylabel("normalised score (0 floor, 1 ceiling)")
    ax.legend(fontsize=7)
    return save_plot(fig, out)


class _Selection:
    picks: list

    @property
    def fields(self) -> tuple[str, ...]:
        return _fields(self.picks)

    def plot(self, eval_csv: Path, out: Path) -> Path:
        return plot_selection(eval_csv, self.fields, out)


@dataclass
class ShapesSelection(_Selection):
    """The shapes selection score (module docstring): ``occnet`` the OccNet checkpoint, ``data``
    the run's OccNet-layout root, ``objects`` validation objects, Table 1(a) at the set sizes
    ``ks`` (the largest is the real views' count); ``bench``: other
    :class:`~benchmarks.shapenet.ShapeNetBenchConfig` fields (e.g. a coarser extraction)."""

    occnet: str
    data: str
    objects: int = 39
    seed: int = 0
    cache_dir: str | None = None
    bootstrap: int = 500
    ks: tuple = (1, 16)
    bench: dict = field(default_factory=dict)

    @property
    def picks(self) -> list[tuple[str, str, int]]:
        return [("table1a", "iou", k) for k in self.ks]

    def describe(self) -> dict:
        return {"benchmark": "shapenet", "split": "val", "objects": self.objects, "occnet": self.occnet,
                "metrics": [list(p) for p in self.picks], "seed": self.seed, "bench": self.bench}  # fmt: skip

    def __call__(self, model, step: int, run_dir: Path) -> dict[str, float]:
        """Score ``model`` (an SDN, or any set model object) at ``step`` into ``run_dir/selection``."""
        cfg = ShapeNetBenchConfig(
            split="val", recon_views=tuple(self.ks), input_views=(max(self.ks),), real_views=max(self.ks),
            max_objects=self.objects, bootstrap=self.bootstrap, seed=self.seed, distribution=False,
            **self.bench,
        )  # fmt: skip
        folder = Path(run_dir) / "selection" / f"step_{step:07d}"
        run_calibrated_shapenet(model, self.occnet, self.data, folder, cfg, references=True,
                                cache_dir=self.cache_dir, progress=False, echo=_quiet,
                                bounds_only=True)  # fmt: skip
        return _read(folder, self.picks)


@dataclass
class FacesSelection(_Selection):
    """The faces selection score (module docstring): ``embedder`` the verifier checkpoint,
    ``data`` the run's VGGFace2-layout root; ``held_out``, ``set_size`` and ``seed`` as the
    run's train config (``eval_sets``, ``set_size``, ``seed``) chooses its validation
    identities."""

    embedder: str
    data: str
    held_out: int
    set_size: int
    seed: int = 0
    cache_dir: str | None = None
    bootstrap: int = 500
    _held: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def picks(self) -> list[tuple[str, str, int]]:
        return [("recon", "auc", self.set_size), ("recon and real", "auc", self.set_size)]

    def describe(self) -> dict:
        return {"benchmark": "faces", "split": "train (held-out identities)", "identities": self.held_out,
                "embedder": self.embedder, "metrics": [list(p) for p in self.picks],
                "seed": self.seed}  # fmt: skip

    def identities(self, resolution: int) -> tuple[str, ...]:
        """The class ids the training run holds out (the trainer's own choice), found once per
        resolution: the train split is not reopened at every evaluation."""
        if resolution not in self._held:
            self._held[resolution] = self._held_out(resolution)
        return self._held[resolution]

    def _held_out(self, resolution: int) -> tuple[str, ...]:
        train = VGGFace2Sets(self.data, "train", set_size=self.set_size, resolution=resolution,
                             random_views=True, seed=self.seed, cache_dir=self.cache_dir,
                             progress=False)  # fmt: skip
        held = hold_out_identities(train, self.held_out, self.seed, min_images=2 * self.set_size)
        return tuple(train.identities[int(i)].class_id for i in held)

    def __call__(self, model, step: int, run_dir: Path) -> dict[str, float]:
        """Score ``model`` at ``step`` into ``run_dir/selection``."""
        cfg = FacesBenchConfig(
            split="train", set_size=self.set_size, context_sizes=(1, self.set_size), noise_levels=(0.0, 1.0),
            identities=self.identities(model.resolution), bootstrap=self.bootstrap, seed=self.seed,
            distribution=False,
        )  # fmt: skip
        folder = Path(run_dir) / "selection" / f"step_{step:07d}"
        run_calibrated_faces(model, self.data, folder, cfg, self.embedder, references=True,
                             cache_dir=self.cache_dir, progress=False, echo=_quiet,
                             bounds_only=True)  # fmt: skip
        return _read(folder, self.picks)


def selection_for(dataset: str, data, train, occnet=None, embedder=None, cache_dir=None) -> _Selection:
    """The selection score of a run on ``dataset`` ("shapes" or "faces") with train config
    ``train`` (its seed; for faces its held-out identities): the shipped OccNet or verifier
    unless ``occnet`` / ``embedder`` names another (:mod:`benchmarks.shipped`)."""
    from .shipped import OCCNET, VERIFIER, resolve_checkpoint

    if dataset == "shapes":
        occnet = resolve_checkpoint(occnet, OCCNET)
        return ShapesSelection(occnet, str(data), seed=train.seed, cache_dir=cache_dir)
    return FacesSelection(resolve_checkpoint(embedder, VERIFIER), str(data), train.eval_sets, train.set_size,
                          seed=train.seed, cache_dir=cache_dir)  # fmt: skip
