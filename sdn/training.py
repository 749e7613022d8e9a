"""Training infrastructure shared by every trainer (SDN, OccNet, verifier).

- :func:`init_distributed`: torchrun / DistributedDataParallel set-up (gloo on CPU,
  nccl on CUDA); rank 0 alone writes files;
- :func:`batch_indices`: the data order as a pure function of the step (exact resume);
- :class:`CsvLog`: fixed-column metrics CSVs that are truncated to the resumed step;
- :func:`open_run`: the run folder's checkpoint, resume checks and run record;
- :func:`run_loop`: the step loop with progress bar (it/s, ETA), periodic logging,
  checkpoints, evaluations, a wall-time limit, and SIGINT/SIGTERM handling
  (checkpoint, then a clean exit).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from tqdm import tqdm

from .checkpoint import git_commit, load_checkpoint, package_version, rng_state, save_checkpoint
from .io import atomic_write_bytes, atomic_write_json

CHECKPOINT = "checkpoint.pt"


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
    dev = torch.device("cpu")
    if device == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return Dist(rank=rank, world=world, device=dev)


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
            f"the training split has {n_items} items, fewer than batch x world size = {per_step}"
        )
    steps_per_epoch = n_items // per_step
    epoch, within = divmod(step, steps_per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n_items)
    start = within * per_step + rank * batch
    return epoch, perm[start : start + batch]


def autocast(device: torch.device, precision: str):
    """bf16/fp16 autocast on the device's type, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16
    )


class CsvLog:
    """An append-only CSV with fixed columns (a missing value is left blank).

    Reopened for a resumed run, rows beyond the checkpoint's step are dropped, so the
    log matches the training that actually continues; a fresh run starts a new file.
    """

    def __init__(self, path: Path, fields, resume_step: int | None):
        self.path, self.fields = Path(path), list(fields)
        rows = []
        if resume_step is not None and self.path.exists():
            with self.path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(float(r["step"])) <= resume_step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, self.fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(self.path, buf.getvalue().encode())

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore", restval="")
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG encoding of an (H, W, 3) uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def run_versions() -> dict:
    return {
        "sdn_bench": package_version(),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }


def config_differences(old: dict, new: dict, resumable: set[str]) -> list[str]:
    """Config keys (``section.key``) that differ, except those in ``resumable`` (the step
    budget and bookkeeping intervals, which a resumed run may change)."""
    diff = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                name = f"{section}.{key}"
                if name not in resumable and a.get(key) != b.get(key):
                    diff.append(name)
        elif a != b:
            diff.append(section)
    return diff


def config_changes(old: dict, new: dict) -> dict[str, list]:
    """``{"section.key": [old value, new value]}`` for every key that differs."""
    value = lambda c, k: c.get(k.split(".")[0], {}).get(k.split(".")[1])  # noqa: E731
    return {k: [value(old, k), value(new, k)] for k in config_differences(old, new, set())}


@dataclass
class Run:
    """A run folder: where its checkpoint lives, what it was trained on, its record."""

    out: Path
    kind: str
    config: dict
    fingerprint: str
    d: Dist
    record: dict
    resumed: dict | None  # the checkpoint resumed from, or None

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT

    def save(self, step: int, state: dict, path: Path | None = None, gather: bool = True, **extra) -> None:
        """Checkpoint ``state``. With ``gather`` every rank must call this (the RNG states
        are gathered to rank 0, for exact resume); without it only the caller's RNG
        state is stored (for a copy such as the best checkpoint, written by rank 0)."""
        rngs = [rng_state()]
        if gather and self.d.world > 1:
            rngs = [None] * self.d.world
            dist.all_gather_object(rngs, rng_state())
        if self.d.main:
            save_checkpoint(
                path or self.checkpoint_path,
                self.kind,
                self.config,
                state,
                step,
                self.fingerprint,
                rng_ranks=rngs,
                **extra,
            )

    def write_record(self) -> None:
        if self.d.main:
            atomic_write_json(self.out / "run.json", self.record)


def open_run(
    out, kind: str, config: dict, fingerprint: str, d: Dist, resume: bool, resumable: set[str], **record
) -> Run:
    """Check the run folder against ``resume`` and, when resuming, the checkpoint's kind,
    configuration and data fingerprint. The caller loads the model and optimiser state
    from ``run.resumed`` and then restores this rank's RNG state
    (``set_rng_state(run.resumed["rng_ranks"][rank])``)."""
    out = Path(out)
    path = out / CHECKPOINT
    if resume and not path.exists():
        raise ValueError(f"--resume given but there is no checkpoint at {path}")
    if not resume and path.exists():
        raise ValueError(f"{path} exists: pass --resume to continue it, or choose another --out")
    rec = {
        "kind": kind,
        "config": config,
        "data_fingerprint": fingerprint,
        "device": str(d.device),
        "world_size": d.world,
        "versions": run_versions(),
        "sessions": [],
        **record,
    }
    ckpt = None
    if resume:
        ckpt = load_checkpoint(path, kind=kind, map_location=str(d.device))
        diff = config_differences(ckpt["config"], config, resumable)
        if diff:
            raise ValueError(
                f"{path} was trained with another configuration (differs in {', '.join(diff)}); "
                "resume with the same options"
            )
        if ckpt["data_fingerprint"] != fingerprint:
            raise ValueError(
                f"{path} was trained on other data (fingerprint {ckpt['data_fingerprint']} != {fingerprint})"
            )
        if (out / "run.json").exists():
            previous = json.loads((out / "run.json").read_text())
            rec["sessions"] = previous.get("sessions", [])
            for key in ("last_eval", "best", "config_changes", "restarts"):
                if key in previous:
                    rec[key] = previous[key]
        change = config_changes(ckpt["config"], config)
        if change:  # resumable keys only (others were refused above): keep their history
            rec.setdefault("config_changes", []).append({"step": ckpt["step"], **change})
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    return Run(out, kind, config, fingerprint, d, rec, ckpt)


class StopFlag:
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


@dataclass
class Schedule:
    steps: int
    log_every: int
    checkpoint_every: int
    eval_every: int
    max_minutes: float = 0.0


def run_loop(
    run: Run,
    schedule: Schedule,
    start_step: int,
    step_fn: Callable[[int], dict],
    state_fn: Callable[[], dict],
    eval_fn: Callable[[int], dict],
    metrics: CsvLog | None,
    desc: str,
    progress: bool = True,
    postfix: Callable[[dict], dict] | None = None,
) -> str:
    """Run steps ``start_step .. schedule.steps``; returns the status ("finished",
    "interrupted" by a signal, or "time-limit").

    ``step_fn(step)`` trains one step and returns a metrics row; ``state_fn()`` gives the
    checkpoint state; ``eval_fn(step)`` (rank 0 only) returns held-out figures, stored
    as the record's ``last_eval``. The session (steps, wall time, status) is appended
    to ``run.record["sessions"]`` and run.json is written at the end.
    """
    d, s = run.d, schedule
    session = {"start_step": start_step, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    run.record["sessions"].append(session)
    t0 = last_time = time.time()
    last_log, step, status = start_step, start_step, "finished"

    def evaluate(at: int) -> None:
        run.record["last_eval"] = {"step": at, **eval_fn(at)}

    bar = tqdm(total=s.steps, initial=start_step, desc=desc, unit="it", disable=not (progress and d.main))
    with StopFlag() as flag:
        while step < s.steps:
            row = step_fn(step)
            step += 1
            if d.main and (step % s.log_every == 0 or step == s.steps):
                now = time.time()
                row["it_s"] = (step - last_log) / max(now - last_time, 1e-9)
                last_log, last_time = step, now
                metrics.write({"step": step, **row})
                if postfix:
                    bar.set_postfix(postfix(row))
            bar.update()
            stop = flag.stop or (s.max_minutes > 0 and time.time() - t0 > s.max_minutes * 60)
            if d.world > 1:
                flag_t = torch.tensor([float(stop)], device=d.device)
                dist.all_reduce(flag_t)
                stop = bool(flag_t.item() > 0)
            if step % s.checkpoint_every == 0 or step == s.steps or stop:
                run.save(step, state_fn())
            evaluated = step % s.eval_every == 0 or step == s.steps
            if d.main and evaluated:
                evaluate(step)
            if stop:
                status = "interrupted" if flag.stop else "time-limit"
                if d.main and not flag.stop and not evaluated:
                    evaluate(step)
                break
    bar.close()
    session.update(end_step=step, wall_s=round(time.time() - t0, 2), status=status)
    run.record["steps_done"] = step
    run.write_record()
    if d.world > 1:
        dist.barrier()
    return status
