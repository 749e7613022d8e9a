"""Training of the project's face verifier (:mod:`evaluation.verifier`) on the *train*
identities of a VGGFace2-layout root.

Each step: ``batch_images`` images drawn from every training image (a seeded
permutation per epoch, as a pure function of the step), each mirrored with probability
1/2 when ``flip``; cross-entropy over the training identities through the configured
head (ArcFace by default); AdamW with a linear warm-up. Evaluation: verification AUC
and TPR at FPR 1e-2 on held-out *train* identities (``val_*``, which pick ``best.pt``;
:func:`sdn.data.vggface2.hold_out_identities`). The test identities are never read here:
they are the benchmarks' alone (``sdn-bench faces``). Checkpoint, resume, progress,
signal and metrics-CSV conventions are the shared ones (:mod:`sdn.training`); the
checkpoint kind is "verifier".
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from evaluation.verification import auc, roc_curve, tpr_at_fpr
from sdn.checkpoint import set_rng_state
from sdn.data.vggface2 import VGGFace2Sets, hold_out_identities, resolve_crop
from sdn.training import CsvLog, Schedule, autocast, batch_indices, init_distributed, open_run, run_loop

from .verifier import VerifierConfig, VerifierNet

RESUMABLE = {
    "train.steps",
    "train.checkpoint_every",
    "train.eval_every",
    "train.log_every",
    "train.max_minutes",
}
METRIC_FIELDS = ("step", "loss", "acc", "lr", "it_s")
FPR = 1e-2
SELECTED_BY = "val_auc"  # best.pt: the highest held-out train-identity AUC
EVAL_FIELDS = ("step", "val_auc", "val_tpr@1e-2", "val_pos", "val_neg")


def _pick_rows(ds: VGGFace2Sets, identities, per_identity: int, seed: int) -> np.ndarray:
    """Up to ``per_identity`` flat rows of each identity (a seeded choice), concatenated."""
    rows = []
    for i in identities:
        r = ds.identity_rows(int(i))
        rng = np.random.default_rng([seed, int(i)])
        rows.append(np.sort(rng.permutation(r)[:per_identity]))
    return np.concatenate(rows)


def _pairs(labels: np.ndarray, negatives: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All positive pairs (i < j, same label) and ``negatives`` seeded distinct negative pairs
    (all of them when there are no more), as (P, 2) and (Q, 2) index arrays."""
    n = len(labels)
    i, j = np.triu_indices(n, 1)
    same = labels[i] == labels[j]
    pos = np.stack([i[same], j[same]], 1)
    n_neg = int((~same).sum())
    if n_neg <= negatives:
        return pos, np.stack([i[~same], j[~same]], 1)
    rng = np.random.default_rng(seed)
    picked: set[tuple[int, int]] = set()
    while len(picked) < negatives:
        a, b = rng.integers(0, n, (2, 2 * (negatives - len(picked)) + 16))
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            if labels[x] != labels[y] and len(picked) < negatives:
                picked.add((min(x, y), max(x, y)))
    return pos, np.array(sorted(picked), dtype=np.int64)


def _verification(emb: torch.Tensor, labels: np.ndarray, negatives: int, seed: int) -> dict:
    """AUC and TPR at FPR 1e-2 (:mod:`evaluation.verification`'s ROC and interpolation) of
    cosine similarity over all positive pairs and ``negatives`` seeded negative pairs."""
    pos, neg = _pairs(labels, negatives, seed)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("verification needs at least two identities with two images each")
    e = emb.float().numpy()
    pairs = np.concatenate([pos, neg])
    scores = (e[pairs[:, 0]] * e[pairs[:, 1]]).sum(1)
    y = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    fpr, tpr, _ = roc_curve(scores, y)
    return {"auc": auc(fpr, tpr), "tpr@1e-2": tpr_at_fpr(fpr, tpr, FPR), "pos": len(pos), "neg": len(neg)}


@torch.no_grad()
def _embed_rows(model: VerifierNet, ds: VGGFace2Sets, rows, device, precision: str, batch: int = 256):
    was = model.training
    model.eval()
    out = []
    try:
        for s in range(0, len(rows), batch):
            x = ds.flat_images(rows[s : s + batch]).to(device)
            if precision != "fp32":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                out.append(model.embed(x).cpu())
    finally:
        model.train(was)
    return torch.cat(out)


def train_verifier(
    data: str | os.PathLike,
    cfg: VerifierConfig,
    out: str | os.PathLike,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Train (or resume) the verifier; returns the run record (also written to run.json).

    ``cfg.train.crop == "auto"`` is resolved against ``data`` first; the checkpoint
    stores the resolved configuration, so a checkpoint says how its faces were cut.
    """
    cfg.validate()
    cfg = VerifierConfig.from_dict(cfg.to_dict())
    cfg.train.crop = resolve_crop(data, cfg.train.crop)
    d = init_distributed(device)
    t, m = cfg.train, cfg.model
    show = progress and d.main
    common = dict(resolution=m.resolution, crop=t.crop, random_views=False, seed=t.seed, cache_dir=cache_dir)
    train_ds = VGGFace2Sets(
        data, "train", set_size=1, max_per_identity=t.images_per_identity, progress=show, **common
    )

    # Hold out validation identities (with >= 2 images) from the training classes.
    n_ids = len(train_ds)
    try:
        val_ids = hold_out_identities(train_ds, max(2, round(t.val_fraction * n_ids)), t.seed)
    except ValueError as e:
        raise ValueError(f"{e}; lower train.val_fraction") from e
    train_ids = np.setdiff1d(np.arange(n_ids), val_ids)
    class_of = np.full(n_ids, -1, dtype=np.int64)
    class_of[train_ids] = np.arange(len(train_ids))
    train_rows = np.concatenate([train_ds.identity_rows(int(i)) for i in train_ids])
    train_labels = class_of[train_ds.flat_labels[train_rows]]
    val_rows = _pick_rows(train_ds, val_ids, t.eval_images_per_identity, t.seed)

    run = open_run(
        out,
        "verifier",
        cfg.to_dict(),
        train_ds.fingerprint(),
        d,
        resume,
        RESUMABLE,
        data=str(data),
        num_classes=len(train_ids),
        val_identities=[train_ds.identities[int(i)].class_id for i in val_ids],
        best_selected_by=SELECTED_BY,
    )

    torch.manual_seed(t.seed)
    model = VerifierNet(cfg, len(train_ids)).to(d.device)
    if t.precision != "fp32":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    scaler = torch.amp.GradScaler(d.device.type, enabled=t.precision == "fp16")
    net = (
        DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None) if d.world > 1 else model
    )
    start = 0
    best = run.record.get("best", {SELECTED_BY: -1.0})
    if run.resumed is not None:
        model.load_state_dict(run.resumed["model"])
        opt.load_state_dict(run.resumed["optim"])
        scaler.load_state_dict(run.resumed["scaler"])
        start = run.resumed["step"]
        set_rng_state(run.resumed["rng_ranks"][d.rank])
    metrics = evals = None
    if d.main:
        metrics = CsvLog(run.out / "metrics.csv", METRIC_FIELDS, start if resume else None)
        evals = CsvLog(run.out / "eval.csv", EVAL_FIELDS, start if resume else None)

    def state() -> dict:
        return {"model": model.state_dict(), "optim": opt.state_dict(), "scaler": scaler.state_dict()}

    def step_fn(step: int) -> dict:
        _, idx = batch_indices(step, len(train_rows), t.batch_images, d.rank, d.world, t.seed)
        x = train_ds.flat_images(train_rows[idx])
        if t.flip:
            mirror = torch.from_numpy(np.random.default_rng([t.seed, step, d.rank]).random(len(idx)) < 0.5)
            x[mirror] = x[mirror].flip(-1)
        x = x.to(d.device)
        if t.precision != "fp32":
            x = x.contiguous(memory_format=torch.channels_last)
        labels = torch.from_numpy(train_labels[idx]).to(d.device)
        lr = t.lr * min(1.0, (step + 1) / t.warmup_steps) if t.warmup_steps else t.lr
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(d.device, t.precision):
            logits, plain = net(x, labels)
        loss = F.cross_entropy(logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        acc = (plain.argmax(1) == labels).float().mean().item()
        return {"loss": loss.item(), "acc": acc, "lr": lr}

    def score(ds: VGGFace2Sets, rows: np.ndarray) -> dict:
        emb = _embed_rows(model, ds, rows, d.device, t.precision)
        return _verification(emb, ds.flat_labels[rows], t.eval_negatives, t.seed)

    def eval_fn(step: int) -> dict:
        v = {f"val_{k}": x for k, x in score(train_ds, val_rows).items()}
        evals.write({"step": step, **v})
        if v[SELECTED_BY] > best[SELECTED_BY]:
            best.clear()
            best.update(step=step, **v)
            run.record["best"] = dict(best)
            run.save(step, state(), run.out / "best.pt", gather=False, selected_by=SELECTED_BY, **v)
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
        "verifier",
        progress,
        lambda r: {"loss": f"{r['loss']:.2f}", "acc": f"{r['acc']:.2f}"},
    )
    return run.record
