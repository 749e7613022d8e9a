"""Training loop of the SDN: one ψ (generator) step, then one θ step, per minibatch.

Run folder (``out``):

- ``checkpoint.pt``: the latest checkpoint (every ``checkpoint_every`` steps, at the
  end, and on SIGINT/SIGTERM), atomic; ``--resume`` continues from it bit-exactly;
- ``metrics.csv``: one row every ``log_every`` steps: each loss term, real and fake
  energies, code agreement of generated sets, prior NLL, it/s;
- ``eval.csv``: held-out quality (:mod:`sdn.quality`) on validation sets at every
  evaluation (:func:`open_training_data`: shapes, the ``val`` split; faces, train
  identities held out of training);
- ``samples/step_NNNNNNN.png``: input set | reconstruction | learned-prior sample |
  uniform-prior sample, for a few validation sets;
- ``run.json``: configuration, aids, versions, seeds, device, world size, timings.

The trainer never reads the test split: it is the benchmarks' alone, so no choice made
from training figures (a checkpoint, a recipe) has seen it.

Data parallelism: under ``torchrun`` every rank draws a different slice of each
global batch; gradients are averaged by DistributedDataParallel (gloo on CPU, nccl
on CUDA); rank 0 alone writes files.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from .checkpoint import load_checkpoint, set_rng_state
from .config import SDNConfig, TrainConfig
from .data.shapenet import ShapeNetViews
from .data.vggface2 import VGGFace2Sets, hold_out_identities
from .io import atomic_write_bytes, sha256_file
from .losses import generator_loss, theta_loss
from .model import SDN, to_model_range
from .quality import QUALITY_FIELDS, held_out_quality
from .setcode import binarize
from .training import (
    CsvLog,
    Dist,
    Schedule,
    autocast,
    batch_indices,
    config_changes,
    config_differences,
    init_distributed,
    open_run,
    png_bytes,
    run_loop,
)

DATASETS = ("shapes", "faces")
SAMPLE_SETS = 4


# ----------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------


def open_dataset(
    dataset: str,
    root,
    split: str,
    set_size: int,
    resolution: int,
    random_views: bool,
    seed: int,
    cache_dir=None,
    progress=True,
) -> ShapeNetViews | VGGFace2Sets:
    """Sets of ``set_size`` images: views of one object (``shapes``: OccNet layout) or
    images of one identity (``faces``: VGGFace2 layout, loose-box crops). Both datasets
    have the same API (len, items with ``images``, ``set_epoch``, ``fingerprint``)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; this version trains on: {', '.join(DATASETS)}")
    loader = ShapeNetViews if dataset == "shapes" else VGGFace2Sets
    return loader(
        root,
        split,
        set_size=set_size,
        resolution=resolution,
        random_views=random_views,
        seed=seed,
        cache_dir=cache_dir,
        progress=progress,
    )


@dataclass
class TrainingData:
    """What one SDN run reads. ``train``: sets of n images with random views, of which training
    draws the items ``train_items`` (K,); ``val``: sets of 2n images with fixed views, of which
    the held-out quality uses the items ``val_items`` (M,). Never the test split."""

    train: ShapeNetViews | VGGFace2Sets
    train_items: np.ndarray
    val: ShapeNetViews | VGGFace2Sets
    val_items: np.ndarray


def open_training_data(
    dataset: str, root, t: TrainConfig, resolution: int, cache_dir=None, progress=True
) -> TrainingData:
    """The training and validation sets of a run with train config ``t``.

    ``shapes``: validation is the ``val`` split (``val.lst``). ``faces`` (VGGFace2 has no
    validation split): ``t.eval_sets`` seeded train identities with at least 2n images
    (:func:`~sdn.data.vggface2.hold_out_identities`, as the verifier holds out its own) are
    removed from training and validated on, each through its own seeded 2n images."""
    n = t.set_size
    train = open_dataset(dataset, root, "train", n, resolution, True, t.seed, cache_dir, progress)
    if dataset == "shapes":
        val = open_dataset(dataset, root, "val", 2 * n, resolution, False, t.seed, cache_dir, progress)
        return TrainingData(train, np.arange(len(train)), val, np.arange(len(val)))
    held = hold_out_identities(train, t.eval_sets, t.seed, min_images=2 * n)
    val = VGGFace2Sets(
        root, "train", set_size=2 * n, resolution=resolution, random_views=False, seed=t.seed,
        max_per_identity=2 * n, cache_dir=cache_dir, progress=progress,
    )  # fmt: skip
    held_ids = {train.identities[int(i)].class_id for i in held}
    val_items = np.array([i.index for i in val.identities if i.class_id in held_ids], dtype=np.int64)
    return TrainingData(train, np.setdiff1d(np.arange(len(train)), held), val, val_items)


def load_batch(ds: ShapeNetViews | VGGFace2Sets, indices: np.ndarray, epoch: int) -> torch.Tensor:
    """Sets (B, n, 3, H, W) in [0, 1] for the given items, views drawn for ``epoch``."""
    ds.set_epoch(epoch)
    return torch.stack([ds[int(i)]["images"] for i in indices])


def eval_sets(
    ds: ShapeNetViews | VGGFace2Sets, items: np.ndarray, count: int, set_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` of the validation ``items`` (M,) of ``ds``, evenly spaced, with fixed views: an
    input set and a disjoint second real set, each (N, n, 3, H, W) in [0, 1]."""
    count = min(count, len(items))
    if count < 2:
        raise ValueError(f"held-out evaluation needs at least 2 validation sets, there are {len(items)}")
    picks = items[np.linspace(0, len(items) - 1, count).round().astype(int)]  # spread over categories
    sets = torch.stack([ds[int(i)]["images"] for i in picks])  # (N, 2n, 3, H, W)
    return sets[:, :set_size], sets[:, set_size : 2 * set_size]


# ----------------------------------------------------------------------------------
# The two optimisation steps
# ----------------------------------------------------------------------------------


class ThetaObjective(nn.Module):
    """The θ loss (Eq. 10) as one forward pass, so DDP can average its gradients."""

    def __init__(self, model: SDN):
        super().__init__()
        self.encoder, self.decoder, self.d0, self.prior = model.encoder, model.decoder, model.d0, model.prior
        self.model = [model]  # a list: not registered, so parameters are not counted twice

    def forward(self, x_real: torch.Tensor, n: int, with_fake: bool) -> dict[str, torch.Tensor]:
        """x_real: (B*n, 3, H, W) in [-1, 1], set by set. ``with_fake`` False (warm-up)
        drops the generated-set terms; otherwise X' = G(z(X), z') is drawn (no gradient
        into G) from the generator's current weights."""
        model = self.model[0]
        cfg = model.cfg
        b = x_real.shape[0] // n
        c_real = self.encoder(x_real)
        m_real, _ = model.mean_code(c_real, n)
        z = binarize(m_real)  # (B, d_z), straight-through
        z_img = z.repeat_interleave(n, dim=0)  # (B*n, d_z)
        nll = -self.prior.log_prob(z.detach())
        recon_r, d0_r = model.energy_terms(x_real, z_img, c_real, cfg.aids.decoder_code_dropout)
        recon_f = d0_f = None
        if with_fake:
            with torch.no_grad():
                x_fake = model.generate(z.detach(), n).flatten(0, 1)  # (B*n, 3, H, W)
            if cfg.train.channels_last:
                x_fake = x_fake.contiguous(memory_format=torch.channels_last)
            c_fake = self.encoder(x_fake)
            recon_f, d0_f = model.energy_terms(x_fake, z_img, c_fake, cfg.aids.decoder_code_dropout)
            recon_f, d0_f = recon_f.view(b, n), d0_f.view(b, n)
        terms = theta_loss(
            nll, recon_r.view(b, n), d0_r.view(b, n), recon_f, d0_f, cfg.train.gamma0, cfg.train.gamma1
        )
        out = {f"t_{k}": v for k, v in terms.items()}
        out["e_real"] = (recon_r + d0_r).mean().detach()
        if recon_f is not None:
            out["e_fake"] = (recon_f + d0_f).mean().detach()
        out["nll_bits"] = nll.mean().detach() / math.log(2.0)
        return out


def _theta_params(model: SDN) -> list[nn.Parameter]:
    return [p for m in (model.encoder, model.decoder, model.d0, model.prior) for p in m.parameters()]


def ema_decay(decay: float, updates: int) -> float:
    """The EMA decay after ``updates`` generator updates: min(decay, (1 + n) / (10 + n)).

    The warm-up (as in TensorFlow's ExponentialMovingAverage with num_updates) keeps
    the average from being dominated by the initial weights early in training; with
    a constant 0.999, 500 updates would still leave 61% weight on the initialisation.
    """
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def _ema_update(model: SDN, decay: float) -> None:
    for pe, p in zip(model.generator_ema.parameters(), model.generator.parameters(), strict=True):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(model.generator_ema.buffers(), model.generator.buffers(), strict=True):
        be.copy_(b)


class Trainer:
    """Owns the model, its optimisers and the step counter; ``step(batch)`` does ψ then θ."""

    def __init__(self, cfg: SDNConfig, d: Dist):
        self.cfg, self.d = cfg, d
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        self.model = SDN(cfg).to(d.device)
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        t = cfg.train
        self.opt_g = torch.optim.Adam(self.model.generator.parameters(), lr=t.lr_g, betas=t.betas)
        self.opt_t = torch.optim.Adam(_theta_params(self.model), lr=t.lr_theta, betas=t.betas)
        fp16 = t.precision == "fp16"
        self.scaler_g = torch.amp.GradScaler(d.device.type, enabled=fp16)
        self.scaler_t = torch.amp.GradScaler(d.device.type, enabled=fp16)
        self.theta = ThetaObjective(self.model)
        self.g_net: nn.Module = self.model.generator
        self.theta_net: nn.Module = self.theta
        if d.world > 1:
            ids = [d.device.index] if d.device.type == "cuda" else None
            self.g_net = DDP(self.model.generator, device_ids=ids)
            self.theta_net = DDP(self.theta, device_ids=ids, find_unused_parameters=True)
        self.step_count = 0
        torch.manual_seed(cfg.train.seed * 1000 + 17 + d.rank)  # per-rank noise streams

    def _images(self, sets: torch.Tensor) -> torch.Tensor:
        x = to_model_range(sets.reshape(-1, *sets.shape[2:]).to(self.d.device))  # (B*n, 3, H, W)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.train.channels_last else x

    def _generate(self, z: torch.Tensor, n: int) -> torch.Tensor:
        """(B*n, 3, H, W) from the (possibly DDP-wrapped) generator, with gradient."""
        zz = z.repeat_interleave(n, dim=0)
        noise = torch.randn(zz.shape[0], self.cfg.model.noise_dim, device=self.d.device)
        return self.g_net(zz, noise)

    def psi_step(self, x: torch.Tensor, n: int) -> dict[str, float]:
        """One generator step with θ fixed (Eq. 9)."""
        model, cfg = self.model, self.cfg
        b = x.shape[0] // n
        theta = _theta_params(model)
        for p in theta:
            p.requires_grad_(False)
        try:
            with autocast(self.d.device, cfg.train.precision):
                with torch.no_grad():
                    c_real = model.encoder(x)
                    stats = model.batch_code_stats(c_real, n)
                    z = binarize(model.mean_code(c_real, n, stats)[0])
                fake = self._generate(z, n)
                c_fake = model.encoder(fake)
                m_fake, _ = model.mean_code(c_fake, n, stats)
                recon_f, d0_f = model.energy_terms(fake, z.repeat_interleave(n, dim=0), c_fake)
                terms = generator_loss(
                    m_fake,
                    z,
                    recon_f.view(b, n),
                    d0_f.view(b, n),
                    cfg.aids.code_margin,
                    cfg.aids.code_term_mean,
                )
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler_g.scale(terms["loss"]).backward()
            self.scaler_g.step(self.opt_g)
            self.scaler_g.update()
        finally:
            for p in theta:
                p.requires_grad_(True)
        if model.generator_ema is not None:
            _ema_update(model, ema_decay(cfg.aids.ema, self.step_count - cfg.aids.warmup_steps))
        agree = (torch.sign(m_fake.detach()) == z).float().mean()
        return {
            "g_loss": terms["loss"].item(),
            "g_code": terms["code"].item(),
            "g_energy": terms["energy"].item(),
            "g_code_agree": agree.item(),
        }

    def theta_step(self, x: torch.Tensor, n: int, warmup: bool) -> dict[str, float]:
        """One θ step (Eq. 10); in warm-up, without the generated-set terms."""
        with autocast(self.d.device, self.cfg.train.precision):
            terms = self.theta_net(x, n, not warmup)
        self.opt_t.zero_grad(set_to_none=True)
        self.scaler_t.scale(terms["t_loss"]).backward()
        self.scaler_t.step(self.opt_t)
        self.scaler_t.update()
        return {k: v.item() for k, v in terms.items()}

    def step(self, sets: torch.Tensor) -> dict[str, float]:
        """One training iteration on sets (B, n, 3, H, W) in [0, 1]."""
        n = sets.shape[1]
        x = self._images(sets)
        warmup = self.step_count < self.cfg.aids.warmup_steps
        out = {"phase": 0.0 if warmup else 1.0}
        if not warmup:
            out.update(self.psi_step(x, n))
        out.update(self.theta_step(x, n, warmup))
        self.step_count += 1
        return out

    # ----- checkpoint state ----------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optim": {"g": self.opt_g.state_dict(), "theta": self.opt_t.state_dict()},
            "scaler": {"g": self.scaler_g.state_dict(), "theta": self.scaler_t.state_dict()},
        }

    def load_state(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.opt_g.load_state_dict(ckpt["optim"]["g"])
        self.opt_t.load_state_dict(ckpt["optim"]["theta"])
        self.scaler_g.load_state_dict(ckpt["scaler"]["g"])
        self.scaler_t.load_state_dict(ckpt["scaler"]["theta"])
        self.step_count = int(ckpt["step"])
        t = self.cfg.train  # the configured rates, which a resume may have lowered
        for opt, lr in ((self.opt_g, t.lr_g), (self.opt_t, t.lr_theta)):
            for group in opt.param_groups:
                group["lr"] = lr


# ----------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------


METRIC_FIELDS = (
    "step", "phase", "g_loss", "g_code", "g_energy", "g_code_agree", "t_loss", "t_nll", "t_real_recon",
    "t_real_d0", "t_fake_recon", "t_fake_d0", "e_real", "e_fake", "nll_bits", "it_s",
)  # fmt: skip


def sample_grid(model: SDN, inputs: torch.Tensor, seed: int) -> np.ndarray:
    """(rows*H, n*W, 3) uint8: per set, rows input | reconstruction | learned | uniform sample."""
    k, n = min(SAMPLE_SETS, inputs.shape[0]), inputs.shape[1]
    x = inputs[np.linspace(0, inputs.shape[0] - 1, k).round().astype(int)]  # spread over categories
    blocks = [
        x,
        model.reconstruct(x, n, seed=seed).cpu(),
        model.sample(k, n, "learned", seed=seed).cpu(),
        model.sample(k, n, "uniform", seed=seed).cpu(),
    ]
    rows = []
    for i in range(k):
        for blk in blocks:
            rows.append(torch.cat(list(blk[i]), dim=2))  # (3, H, n*W)
        rows.append(torch.ones_like(rows[-1][:, :2]))  # a thin white separator
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()
    return (grid * 255).round().astype(np.uint8)


RESUMABLE = {  # may change on --resume or --init-from (recorded in run.json)
    "train.lr_g",  # a manual step decay for a final phase
    "train.lr_theta",
    "train.steps",
    "train.checkpoint_every",
    "train.eval_every",
    "train.log_every",
    "train.max_minutes",
}


# A restart from exported weights also starts its optimisers and gradient scalers afresh, so its
# arithmetic may follow the machine: bf16 autocast is emulated, about 12x slower than fp32, on a
# CPU without AVX512-bf16 or AMX (measured on a 2-core AMD EPYC, AVX2 only). Recorded in the
# restart's config_changes and so in the exported manifest.
RESTART_MAY_CHANGE = RESUMABLE | {"train.precision", "train.channels_last"}


def train_sdn(
    data: str | os.PathLike,
    cfg: SDNConfig,
    out: str | os.PathLike,
    dataset: str = "shapes",
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    selection=None,
    selection_every: int = 0,
    init_from: str | os.PathLike | None = None,
) -> dict:
    """Train (or resume) an SDN; returns the run record (also written to run.json).

    init_from: a new run (not ``resume``) starts from these weights, an exported checkpoint
    (``sdn-bench export``; a sitting on a machine without the run folder): the same
    configuration (``RESTART_MAY_CHANGE`` aside) and data fingerprint are required, the step count
    continues from the checkpoint's, and the optimisers, scalers and RNG streams start
    afresh (an exported checkpoint has none), so the run is *not* the uninterrupted one; the
    run record's ``restarts`` says so, with the file's sha256.

    selection: an optional selection score on validation data, called on rank 0 as
    ``selection(model, step, run_dir) -> dict`` at every evaluation whose step is a multiple
    of ``selection_every`` (0: every evaluation), its ``fields`` appended to ``eval.csv`` and
    plotted by ``selection.plot(eval_csv, out)`` into ``selection.png``; ``describe()`` goes
    to run.json (:mod:`benchmarks.selection` builds them: the benchmark, reduced, on
    validation sets)."""
    cfg.validate()
    t, m = cfg.train, cfg.model
    if selection is not None and (selection_every < 0 or selection_every % t.eval_every):
        raise ValueError(
            f"selection_every={selection_every} is not a multiple of train.eval_every={t.eval_every}: "
            "the selection runs at evaluations only, so it would never run"
        )
    d = init_distributed(device)
    show = progress and d.main
    sets = open_training_data(dataset, data, t, m.resolution, cache_dir, show)
    train_ds = sets.train
    run = open_run(
        out,
        "sdn",
        cfg.to_dict(),
        train_ds.fingerprint(),
        d,
        resume,
        RESUMABLE,
        aids=cfg.aids.active(),
        dataset=dataset,
        data=str(data),
        selection=selection.describe() if selection is not None else None,
    )
    trainer = Trainer(cfg, d)
    if run.resumed is not None:
        trainer.load_state(run.resumed)
        set_rng_state(run.resumed["rng_ranks"][d.rank])  # Trainer() reseeded; restore again
    elif init_from is not None:
        run.record["restarts"] = [
            restart_from_export(
                trainer, init_from, run.config, run.fingerprint, getattr(train_ds, "names_fingerprint", None)
            )
        ]
    start = trainer.step_count
    inputs, second = eval_sets(sets.val, sets.val_items, t.eval_sets, t.set_size)
    metrics = evals = None
    if d.main:
        (run.out / "samples").mkdir(parents=True, exist_ok=True)
        metrics = CsvLog(run.out / "metrics.csv", METRIC_FIELDS, start if resume else None)
        extra = tuple(selection.fields) if selection is not None else ()
        evals = CsvLog(run.out / "eval.csv", ("step",) + QUALITY_FIELDS + extra, start if resume else None)

    def step_fn(step: int) -> dict:
        epoch, idx = batch_indices(step, len(sets.train_items), t.batch_sets, d.rank, d.world, t.seed)
        return trainer.step(load_batch(train_ds, sets.train_items[idx], epoch))

    def eval_fn(step: int) -> dict:
        q = held_out_quality(trainer.model, inputs.to(d.device), second.to(d.device), seed=t.seed)
        if selection is not None and (selection_every == 0 or step % selection_every == 0):
            q.update(selection(trainer.model, step, run.out))
        evals.write({"step": step, **q})
        if selection is not None:
            selection.plot(run.out / "eval.csv", run.out / "selection.png")
        grid = sample_grid(trainer.model, inputs.to(d.device), t.seed)
        atomic_write_bytes(run.out / "samples" / f"step_{step:07d}.png", png_bytes(grid))
        return q

    schedule = Schedule(t.steps, t.log_every, t.checkpoint_every, t.eval_every, t.max_minutes)
    postfix = lambda row: {"g": f"{row.get('g_loss', float('nan')):.3f}", "t": f"{row['t_loss']:.3f}"}  # noqa: E731
    run_loop(run, schedule, start, step_fn, trainer.state, eval_fn, metrics, "sdn", progress, postfix)
    return run.record


def restart_from_export(
    trainer: Trainer, path: str | os.PathLike, config: dict, fingerprint: str, names_fingerprint=None
) -> dict:
    """Load the weights of the exported SDN checkpoint ``path`` into ``trainer`` (see
    :func:`train_sdn`'s ``init_from``); ValueError naming the file when its configuration or
    data differ. ``fingerprint``: the run's training data's (already computed by the run); a
    file written before content fingerprints is checked by ``names_fingerprint()`` (the
    loader's, where it has one), and the record's ``data_check`` says which. Returns the
    restart's record."""
    ckpt = load_checkpoint(path, kind="sdn", map_location=str(trainer.d.device))
    saved = SDNConfig.from_dict(ckpt["config"]).to_dict()  # an older file's config with today's defaults
    diff = config_differences(saved, config, RESTART_MAY_CHANGE)
    if diff:
        raise ValueError(f"{path} was trained with another configuration (differs in {', '.join(diff)})")
    check = "content"
    if ckpt["data_fingerprint"] != fingerprint:
        if names_fingerprint is None or ckpt["data_fingerprint"] != names_fingerprint():
            raise ValueError(
                f"{path} was trained on other data ({ckpt['data_fingerprint']} != {fingerprint})"
            )
        check = "names only (the file predates content fingerprints)"
    own = trainer.model.state_dict()
    trainer.model.load_state_dict({k: v.to(own[k].dtype) for k, v in ckpt["model"].items()})
    trainer.step_count = int(ckpt["step"])
    return {
        "step": trainer.step_count, "from": str(path), "sha256": sha256_file(path),
        "weights_dtype": ckpt.get("weights_dtype", "float32"), "data_check": check,
        "config_changes": config_changes(saved, config),  # RESTART_MAY_CHANGE keys only
        "note": "weights only: optimisers, gradient scalers and RNG streams restarted",
    }  # fmt: skip


def validation_quality(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    dataset: str = "shapes",
    device: str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """The held-out figures (:func:`~sdn.quality.held_out_quality`, plus ``step``) of an SDN
    checkpoint on the validation sets its training run evaluates on (:func:`open_training_data`
    with the checkpoint's own config), as ``eval.csv`` holds them. For a checkpoint trained
    before validation identities were held out of the faces training data, those identities
    were seen in training and the figures are not held-out ones."""
    ckpt = load_checkpoint(checkpoint, kind="sdn", map_location=device)
    model = SDN.from_checkpoint(checkpoint, map_location=device)  # float32 weights, eval mode
    t = model.cfg.train
    sets = open_training_data(dataset, data, t, model.cfg.model.resolution, cache_dir, progress)
    inputs, second = eval_sets(sets.val, sets.val_items, t.eval_sets, t.set_size)
    q = held_out_quality(model, inputs.to(model.device), second.to(model.device), seed=t.seed)
    return {"step": int(ckpt["step"]), **q}
