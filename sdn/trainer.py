"""Training loop of the SDN: one ψ (generator) step, then one θ step, per minibatch.

Run folder (``out``):

- ``checkpoint.pt``: the latest checkpoint (every ``checkpoint_every`` steps, at the
  end, and on SIGINT/SIGTERM), atomic; ``--resume`` continues from it bit-exactly;
- ``metrics.csv``: one row every ``log_every`` steps: each loss term, real and fake
  energies, code agreement of generated sets, prior NLL, it/s;
- ``eval.csv``: held-out quality (:mod:`sdn.quality`) at every evaluation;
- ``samples/step_NNNNNNN.png``: input set | reconstruction | learned-prior sample |
  uniform-prior sample, for a few test sets;
- ``run.json``: configuration, aids, versions, seeds, device, world size, timings.

Data parallelism: under ``torchrun`` every rank draws a different slice of each
global batch; gradients are averaged by DistributedDataParallel (gloo on CPU, nccl
on CUDA); rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import platform
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from .checkpoint import (
    git_commit,
    load_checkpoint,
    package_version,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import SDNConfig
from .data.shapenet import ShapeNetViews
from .io import atomic_write_bytes, atomic_write_json
from .losses import generator_loss, theta_loss
from .model import SDN, to_model_range
from .quality import QUALITY_FIELDS, held_out_quality
from .setcode import binarize

DATASETS = ("shapes",)
CHECKPOINT = "checkpoint.pt"
SAMPLE_SETS = 4


# ----------------------------------------------------------------------------------
# Distributed helpers
# ----------------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    if world == 1:
        return Dist(device=torch.device(device))
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    dev = (
        torch.device(device, int(os.environ.get("LOCAL_RANK", "0")))
        if device == "cuda"
        else torch.device("cpu")
    )
    if device == "cuda":
        torch.cuda.set_device(dev)
    return Dist(rank=rank, world=world, device=dev)


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
):
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; this version trains on: {', '.join(DATASETS)}")
    return ShapeNetViews(
        root,
        split,
        set_size=set_size,
        resolution=resolution,
        random_views=random_views,
        seed=seed,
        cache_dir=cache_dir,
        progress=progress,
    )


def batch_indices(
    step: int, n_items: int, batch: int, rank: int, world: int, seed: int
) -> tuple[int, np.ndarray]:
    """Dataset indices of ``rank``'s share of global batch ``step``, and its epoch.

    Each epoch is a seeded permutation; global batch s covers positions
    [s' * B * W, (s' + 1) * B * W) of it (s' = s within the epoch; the tail that does
    not fill a global batch is dropped) and rank r takes its B-slice. A pure function
    of the step, so resuming reproduces the data order exactly.
    """
    per_step = batch * world
    if n_items < per_step:
        raise ValueError(
            f"the training split has {n_items} sets, fewer than batch_sets x world size = {per_step}"
        )
    steps_per_epoch = n_items // per_step
    epoch, within = divmod(step, steps_per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n_items)
    start = within * per_step + rank * batch
    return epoch, perm[start : start + batch]


def load_batch(ds: ShapeNetViews, indices: np.ndarray, epoch: int) -> torch.Tensor:
    """Sets (B, n, 3, H, W) in [0, 1] for the given items, views drawn for ``epoch``."""
    ds.set_epoch(epoch)
    return torch.stack([ds[int(i)]["images"] for i in indices])


def eval_sets(ds: ShapeNetViews, count: int, set_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` test objects evenly spaced through the split, with fixed views: an input
    set and a disjoint second
    real set, each (N, n, 3, H, W) in [0, 1]."""
    count = min(count, len(ds))
    if count < 2:
        raise ValueError(f"held-out evaluation needs at least 2 test sets, the split has {len(ds)}")
    picks = np.linspace(0, len(ds) - 1, count).round().astype(int)  # spread over categories
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
            if cfg.train.precision != "fp32":
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


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _theta_params(model: SDN) -> list[nn.Parameter]:
    return [p for m in (model.encoder, model.decoder, model.d0, model.prior) for p in m.parameters()]


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
        if cfg.train.precision != "fp32":
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
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.train.precision != "fp32" else x

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
            with _autocast(self.d.device, cfg.train.precision):
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
            _ema_update(model, cfg.aids.ema)
        agree = (torch.sign(m_fake.detach()) == z).float().mean()
        return {
            "g_loss": terms["loss"].item(),
            "g_code": terms["code"].item(),
            "g_energy": terms["energy"].item(),
            "g_code_agree": agree.item(),
        }

    def theta_step(self, x: torch.Tensor, n: int, warmup: bool) -> dict[str, float]:
        """One θ step (Eq. 10); in warm-up, without the generated-set terms."""
        with _autocast(self.d.device, self.cfg.train.precision):
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


# ----------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------


METRIC_FIELDS = (
    "step", "phase", "g_loss", "g_code", "g_energy", "g_code_agree", "t_loss", "t_nll", "t_real_recon",
    "t_real_d0", "t_fake_recon", "t_fake_d0", "e_real", "e_fake", "nll_bits", "it_s",
)  # fmt: skip


class CsvLog:
    """An append-only CSV with fixed columns (a missing value is left blank).

    Reopened for a resumed run, rows beyond the checkpoint's step are dropped, so the
    log matches the training that actually continues; a fresh run starts a new file.
    """

    def __init__(self, path: Path, fields, resume_step: int | None):
        self.path, self.fields = path, list(fields)
        rows = []
        if resume_step is not None and path.exists():
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(float(r["step"])) <= resume_step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, self.fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(path, buf.getvalue().encode())

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore", restval="")
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def sample_grid(model: SDN, inputs: torch.Tensor, seed: int) -> np.ndarray:
    """(rows*H, n*W, 3) uint8: per set, rows input | reconstruction | learned | uniform sample."""
    k, n = min(SAMPLE_SETS, inputs.shape[0]), inputs.shape[1]
    x = inputs[:k]
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


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _versions() -> dict:
    return {
        "sdn_bench": package_version(),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


# ----------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and exits at the end of the step."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


RESUMABLE = {
    "train.steps",
    "train.checkpoint_every",
    "train.eval_every",
    "train.log_every",
    "train.max_minutes",
}


def config_differences(old: dict, new: dict) -> list[str]:
    """Config keys (section.key) that differ, ignoring those a resumed run may change
    (the step budget and the bookkeeping intervals)."""
    diff = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                name = f"{section}.{key}"
                if name not in RESUMABLE and a.get(key) != b.get(key):
                    diff.append(name)
        elif a != b:
            diff.append(section)
    return diff


def train_sdn(
    data: str | os.PathLike,
    cfg: SDNConfig,
    out: str | os.PathLike,
    dataset: str = "shapes",
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Train (or resume) an SDN; returns the run record (also written to run.json)."""
    cfg.validate()
    d = init_distributed(device)
    out = Path(out)
    ckpt_path = out / CHECKPOINT
    if resume and not ckpt_path.exists():
        raise ValueError(f"--resume given but there is no checkpoint at {ckpt_path}")
    if not resume and ckpt_path.exists():
        raise ValueError(f"{ckpt_path} exists: pass --resume to continue it, or choose another --out")
    t, m = cfg.train, cfg.model
    train_ds = open_dataset(
        dataset, data, "train", t.set_size, m.resolution, True, t.seed, cache_dir, progress and d.main
    )
    test_ds = open_dataset(
        dataset, data, "test", 2 * t.set_size, m.resolution, False, t.seed, cache_dir, progress and d.main
    )
    fingerprint = train_ds.fingerprint()

    trainer = Trainer(cfg, d)
    record = {
        "config": cfg.to_dict(),
        "aids": cfg.aids.active(),
        "dataset": dataset,
        "data": str(data),
        "data_fingerprint": fingerprint,
        "device": str(d.device),
        "world_size": d.world,
        "versions": _versions(),
        "sessions": [],
    }
    if resume:
        ckpt = load_checkpoint(ckpt_path, kind="sdn", map_location=str(d.device))
        diff = config_differences(ckpt["config"], cfg.to_dict())
        if diff:
            raise ValueError(
                f"{ckpt_path} was trained with another configuration (differs in {', '.join(diff)}); "
                "resume with the same preset, recipe and options"
            )
        if ckpt["data_fingerprint"] != fingerprint:
            raise ValueError(
                f"{ckpt_path} was trained on other data "
                f"(fingerprint {ckpt['data_fingerprint']} != {fingerprint})"
            )
        trainer.load_state(ckpt)
        set_rng_state(ckpt["rng_ranks"][d.rank])
        if (out / "run.json").exists():
            record["sessions"] = json.loads((out / "run.json").read_text()).get("sessions", [])
    start_step = trainer.step_count
    inputs, second = eval_sets(test_ds, t.eval_sets, t.set_size)

    if d.main:
        (out / "samples").mkdir(parents=True, exist_ok=True)
    metrics = CsvLog(out / "metrics.csv", METRIC_FIELDS, start_step if resume else None) if d.main else None
    evals = (
        CsvLog(out / "eval.csv", ("step",) + QUALITY_FIELDS, start_step if resume else None)
        if d.main
        else None
    )
    session = {"start_step": start_step, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": 0.0}
    record["sessions"].append(session)

    def checkpoint(step: int) -> None:
        rngs = [rng_state()]
        if d.world > 1:
            rngs = [None] * d.world
            dist.all_gather_object(rngs, rng_state())
        if d.main:
            save_checkpoint(
                ckpt_path, "sdn", cfg.to_dict(), trainer.state(), step, fingerprint, rng_ranks=rngs
            )

    def evaluate(step: int) -> dict:
        q = held_out_quality(trainer.model, inputs.to(d.device), second.to(d.device), seed=t.seed)
        evals.write({"step": step, **q})
        atomic_write_bytes(
            out / "samples" / f"step_{step:07d}.png",
            _png(sample_grid(trainer.model, inputs.to(d.device), t.seed)),
        )
        return q

    t0 = time.time()
    last_log, last_time = start_step, time.time()
    status = "finished"
    bar = tqdm(total=t.steps, initial=start_step, desc="sdn", unit="it", disable=not (progress and d.main))
    with _StopFlag() as flag:
        while trainer.step_count < t.steps:
            step = trainer.step_count
            epoch, idx = batch_indices(step, len(train_ds), t.batch_sets, d.rank, d.world, t.seed)
            row = trainer.step(load_batch(train_ds, idx, epoch))
            done = trainer.step_count
            if d.main and (done % t.log_every == 0 or done == t.steps):
                now = time.time()
                row["it_s"] = (done - last_log) / max(now - last_time, 1e-9)
                last_log, last_time = done, now
                metrics.write({"step": done, **row})
                bar.set_postfix(g=f"{row.get('g_loss', float('nan')):.3f}", t=f"{row['t_loss']:.3f}")
            bar.update()
            stop = flag.stop or (t.max_minutes > 0 and time.time() - t0 > t.max_minutes * 60)
            if d.world > 1:
                s = torch.tensor([float(stop)], device=d.device)
                dist.all_reduce(s)
                stop = bool(s.item() > 0)
            if done % t.checkpoint_every == 0 or done == t.steps or stop:
                checkpoint(done)
            if d.main and (done % t.eval_every == 0 or done == t.steps):
                record["last_eval"] = {"step": done, **evaluate(done)}
            if stop:
                status = "interrupted" if flag.stop else "time-limit"
                if d.main and not flag.stop and done % t.eval_every != 0:
                    record["last_eval"] = {"step": done, **evaluate(done)}
                break
    bar.close()
    session.update(end_step=trainer.step_count, wall_s=round(time.time() - t0, 2), status=status)
    record["steps_done"] = trainer.step_count
    if d.main:
        atomic_write_json(out / "run.json", record)
    if d.world > 1:
        dist.barrier()
    return record
