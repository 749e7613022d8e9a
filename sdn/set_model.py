"""The set-model interface through which the benchmarks talk to a model (DESIGN.md §2).

A baseline or a user's own set model is scored by the same harness by implementing
these three members; the SDN is the first implementation, not a special case.
Images are float tensors in [0, 1], (B, n, 3, H, W).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class SetModel(Protocol):
    resolution: int

    def reconstruct(self, sets: torch.Tensor, n_out: int, seed: int | torch.Generator = 0) -> torch.Tensor:
        """sets (B, n, 3, H, W) in [0, 1] -> (B, n_out, 3, H, W) in [0, 1]."""
        ...

    def sample(
        self, num_sets: int, set_size: int, prior: str = "learned", seed: int | torch.Generator = 0
    ) -> torch.Tensor:
        """-> (num_sets, set_size, 3, H, W) in [0, 1], from the learned or a uniform prior."""
        ...
