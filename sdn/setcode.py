"""The set code z(X) = binarize(mean_i c(x_i)) with a straight-through gradient."""

from __future__ import annotations

import torch


def binarize(m: torch.Tensor) -> torch.Tensor:
    """Sign in the forward pass (0 maps to +1), identity gradient in the backward pass.

    m: (B, d_z) real -> (B, d_z) in {-1, 1}; d z / d m is taken as the identity
    (the straight-through estimator).
    """
    hard = torch.where(m >= 0, torch.ones_like(m), -torch.ones_like(m))
    return m + (hard - m).detach()


def set_mean(codes: torch.Tensor, set_size: int) -> torch.Tensor:
    """Mean image code of each set: codes (B*n, d) ordered set by set -> (B, d)."""
    if codes.shape[0] % set_size:
        raise ValueError(f"{codes.shape[0]} codes do not split into sets of {set_size}")
    return codes.view(-1, set_size, codes.shape[1]).mean(dim=1)  # (B, n, d) -> (B, d)
