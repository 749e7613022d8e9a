"""A benchmark sharded over torchrun ranks (gloo on CPU, :func:`sdn.training.init_distributed`).

Rank r of N scores the strided slice ``items[r::N]`` of the evaluated items (so every rank
sees every part of the split), keyed by each item's index in the unsharded order;
:func:`gather_to_main` brings every rank's results to rank 0, which alone puts them back in
that order and writes the report. Each rank runs with its share of the node's cores
(:func:`threads_per_rank`).
"""

from __future__ import annotations

import os
from typing import TypeVar

import torch.distributed as dist

from sdn.training import Dist

T = TypeVar("T")


def threads_per_rank(workers: int = 1) -> int:
    """Intra-op threads for each of ``workers`` processes of this rank: the cores this process
    may run on (``os.sched_getaffinity``) shared by the node's LOCAL_WORLD_SIZE torchrun
    ranks (at least 1)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, len(os.sched_getaffinity(0)) // (workers * per_node))


def gather_to_main(d: Dist, results: dict[int, T]) -> dict[int, T] | None:
    """Every rank's ``results`` ({item index: result}, disjoint across ranks) merged on
    rank 0; None on the other ranks. In one process (world 1) ``results`` itself. A
    collective: every rank must call it, in the same order."""
    if d.world == 1:
        return results
    gathered: list | None = [None] * d.world if d.main else None
    dist.gather_object(results, gathered, dst=0)
    if gathered is None:
        return None
    merged = {i: r for part in gathered for i, r in part.items()}
    if len(merged) != sum(len(part) for part in gathered):
        raise ValueError(
            "ranks returned results for the same item index: each rank must score a disjoint slice"
        )
    return merged
