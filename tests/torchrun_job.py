"""Run a benchmark job script in one process or under torchrun with gloo processes (the
sharding tests of both harnesses)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_job(job, out, cache, world: int, env: dict | None = None) -> None:
    """``python job out cache`` in one process (world 1), or under ``torch.distributed.run
    --nproc_per_node world``; one OpenMP thread per process, plus ``env``."""
    launcher = [sys.executable]
    if world > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(world)]
    res = subprocess.run(
        [*launcher, str(job), str(out), str(cache)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
