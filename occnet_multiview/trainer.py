"""Training of the multi-view OccNet on an OccNet-layout ShapeNet root.

Each step: B objects, K random views each (codes pooled), ``points_per_object``
points subsampled from ``points.npz`` with their occupancies, BCE with logits summed
over points and averaged over objects (OccNet's loss), Adam. Validation: the
occupancy IoU (OccNet's, over 20k of each object's uniform points) of single-view
predictions at each candidate threshold; ``best.pt`` keeps the checkpoint with the
best validation IoU and its threshold. Checkpoint, resume, progress, signal and
metrics-CSV conventions are the shared ones (:mod:`sdn.training`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from evaluation.geometry import occupancy_iou
from sdn.checkpoint import set_rng_state
from sdn.data.overlap import check_disjoint
from sdn.data.shapenet import ShapeNetViews
from sdn.training import CsvLog, Schedule, autocast, batch_indices, init_distributed, open_run, run_loop

from .config import OccNetConfig
from .model import OccupancyNetwork

RESUMABLE = {  # may change on --resume (recorded in run.json "config_changes")
    "train.lr",  # a manual step decay
    "train.steps",
    "train.checkpoint_every",
    "train.eval_every",
    "train.log_every",
    "train.max_minutes",
}
VAL_POINTS = 20_000
METRIC_FIELDS = ("step", "loss", "occupancy_rate", "it_s")


class PointCache:
    """``points.npz`` of each object, decoded once: points (N, 3) float16, occupancies (N,) bool."""

    def __init__(self, ds: ShapeNetViews):
        self.ds = ds
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self._cache:
            p = self.ds.points(index)
            self._cache[index] = (p.points.astype(np.float16), p.occupancies)
        return self._cache[index]

    def sample(self, indices, count: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, count, 3) points and (B, count) occupancies, drawn without replacement."""
        pts, occ = [], []
        for i in indices:
            p, o = self.get(int(i))
            pick = rng.choice(len(p), size=min(count, len(p)), replace=False)
            pts.append(torch.from_numpy(p[pick].astype(np.float32)))
            occ.append(torch.from_numpy(o[pick].astype(np.float32)))
        return torch.stack(pts), torch.stack(occ)


def _views(ds: ShapeNetViews, indices, epoch: int) -> torch.Tensor:
    ds.set_epoch(epoch)
    return torch.stack([ds[int(i)]["images"] for i in indices])  # (B, K, 3, H, W)


def validation_dataset(
    data, cfg: OccNetConfig, cache_dir=None, progress: bool = True, views: int = 1
) -> ShapeNetViews:
    """The validation split with ``views`` fixed views per object (the trainer scores one).
    The views of an object are nested: its first ``k`` views are the same for every
    ``views >= k`` (:meth:`ShapeNetViews.view_choice`), so 1 and 4 pooled views compare the
    same first view with and without three more."""
    return ShapeNetViews(
        data,
        "val",
        set_size=views,
        resolution=cfg.model.resolution,
        random_views=False,
        seed=cfg.train.seed,
        cache_dir=cache_dir,
        progress=progress,
    )


def validation_picks(n_objects: int, val_objects: int) -> np.ndarray:
    """Indices of the validated objects: ``val_objects`` (0 = all) spread evenly over the split."""
    n = n_objects if val_objects == 0 else min(val_objects, n_objects)
    return np.linspace(0, n_objects - 1, n).round().astype(int)


@torch.no_grad()
def validation_object_ious(
    model: OccupancyNetwork, val: ShapeNetViews, cache: PointCache, picks, thresholds
) -> dict[float, np.ndarray]:
    """{threshold: (len(picks),) occupancy IoU of each picked validation object}, predicted
    from the fixed views of ``val`` (:func:`validation_dataset`; codes average-pooled when
    there are several) over the first ``VAL_POINTS`` of its uniform points."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    ious = {t: [] for t in thresholds}
    try:
        for i in picks:
            pts, occ = cache.get(int(i))
            p = torch.from_numpy(pts[:VAL_POINTS].astype(np.float32))[None].to(device)
            prob = torch.sigmoid(model(val[int(i)]["images"][None].to(device), p)).float()[0].cpu().numpy()
            for t in thresholds:
                ious[t].append(occupancy_iou(prob >= t, occ[:VAL_POINTS]))
    finally:
        model.train(was)
    return {t: np.asarray(v, dtype=float) for t, v in ious.items()}


def best_threshold(per_object: dict[float, np.ndarray]) -> float:
    """The threshold of highest mean IoU in ``per_object`` (:func:`validation_object_ious`);
    the first in grid order among equals."""
    return max(per_object, key=lambda t: float(np.mean(per_object[t])))


def validation_iou(model: OccupancyNetwork, val: ShapeNetViews, cache: PointCache, picks, thresholds) -> dict:
    """Mean occupancy IoU over the picked validation objects (:func:`validation_object_ious`)
    at each threshold: {"iou@0.2": ..., ..., "best_threshold": t, "best_iou": ...}, the best
    threshold being the one of highest mean IoU."""
    per = validation_object_ious(model, val, cache, picks, thresholds)
    out = {f"iou@{t:g}": float(np.mean(v)) for t, v in per.items()}
    best = best_threshold(per)
    out["best_threshold"], out["best_iou"] = float(best), out[f"iou@{best:g}"]
    return out


def train_occnet(
    data: str | os.PathLike,
    cfg: OccNetConfig,
    out: str | os.PathLike,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    held_out: Sequence[str | os.PathLike] = (),
) -> dict:
    """Train (or resume) the OccNet; returns the run record (also written to run.json).

    held_out: dataset roots whose val and test objects the training split must not hold
    (the benchmark's data, when training on another set): checked by the generator's
    parameters (:func:`sdn.data.overlap.check_disjoint`, which also checks ``data``'s own
    splits), a ValueError before anything is trained; the run record's ``leak_check`` says
    what was checked."""
    cfg.validate()
    leak_check = check_disjoint(data, held_out)
    d = init_distributed(device)
    t, m = cfg.train, cfg.model
    show = progress and d.main
    train_ds = ShapeNetViews(
        data,
        "train",
        set_size=t.views_per_sample,
        resolution=m.resolution,
        random_views=True,
        seed=t.seed,
        cache_dir=cache_dir,
        progress=show,
        max_per_category=t.train_per_category or None,
    )
    val_ds = validation_dataset(data, cfg, cache_dir, show)
    run = open_run(
        out, "occnet", cfg.to_dict(), train_ds.fingerprint(), d, resume, RESUMABLE, data=str(data),
        leak_check=leak_check, train_objects=len(train_ds),
    )  # fmt: skip

    torch.manual_seed(t.seed)
    model = OccupancyNetwork(cfg).to(d.device)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    scaler = torch.amp.GradScaler(d.device.type, enabled=t.precision == "fp16")
    net = (
        DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None) if d.world > 1 else model
    )
    start = 0
    best = run.record.get("best", {"best_iou": -1.0})
    if run.resumed is not None:
        model.load_state_dict(run.resumed["model"])
        opt.load_state_dict(run.resumed["optim"])
        for group in opt.param_groups:  # the configured rate, which a resume may have lowered
            group["lr"] = t.lr
        scaler.load_state_dict(run.resumed["scaler"])
        start = run.resumed["step"]
        set_rng_state(run.resumed["rng_ranks"][d.rank])
    cache, val_cache = PointCache(train_ds), PointCache(val_ds)
    picks = validation_picks(len(val_ds), t.val_objects)
    metrics = evals = None
    if d.main:
        metrics = CsvLog(run.out / "metrics.csv", METRIC_FIELDS, start if resume else None)
        evals = CsvLog(
            run.out / "eval.csv",
            ["step"] + [f"iou@{x:g}" for x in t.thresholds] + ["best_threshold", "best_iou"],
            start if resume else None,
        )

    def state() -> dict:
        return {"model": model.state_dict(), "optim": opt.state_dict(), "scaler": scaler.state_dict()}

    def step_fn(step: int) -> dict:
        epoch, idx = batch_indices(step, len(train_ds), t.batch_objects, d.rank, d.world, t.seed)
        images = _views(train_ds, idx, epoch).to(d.device)
        pts, occ = cache.sample(idx, t.points_per_object, np.random.default_rng([t.seed, step, d.rank]))
        with autocast(d.device, t.precision):
            logits = net(images, pts.to(d.device)).float()
        loss = (
            F.binary_cross_entropy_with_logits(logits, occ.to(d.device), reduction="none").sum(dim=1).mean()
        )
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return {"loss": loss.item(), "occupancy_rate": occ.mean().item()}

    def eval_fn(step: int) -> dict:
        v = validation_iou(model, val_ds, val_cache, picks, t.thresholds)
        evals.write({"step": step, **v})
        if v["best_iou"] > best["best_iou"]:
            best.update(step=step, **v)
            run.record["best"] = dict(best)
            run.save(
                step,
                state(),
                run.out / "best.pt",
                gather=False,
                threshold=v["best_threshold"],
                val_iou=v["best_iou"],
            )
        return v

    schedule = Schedule(t.steps, t.log_every, t.checkpoint_every, t.eval_every, t.max_minutes)
    run_loop(
        run,
        schedule,
        start,
        step_fn,
        state,
        eval_fn,
        metrics,
        "occnet",
        progress,
        lambda r: {"loss": f"{r['loss']:.1f}"},
    )
    return run.record
