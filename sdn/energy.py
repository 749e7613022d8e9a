"""The energy E(x, z) = ||x - d(z, c(x))||^2 + d0(c(x)) (paper Eq. 8, DESIGN.md §4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .upsampler import Upsampler


class EnergyDecoder(nn.Module):
    """d(z, c(x)): shaped like the generator, without BatchNorm and self-attention.

    z: (N, d_z), code: (N, d_z) -> reconstruction (N, 3, R, R) in [-1, 1].
    """

    def __init__(self, resolution: int, ch: int, d_z: int):
        super().__init__()
        self.net = Upsampler(2 * d_z, resolution, ch, norm=False)

    def forward(self, z: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, code], dim=1))


class UnaryEnergy(nn.Module):
    """d0(c(x)): a two-layer ReLU MLP with d_z hidden units. code (N, d_z) -> (N,)."""

    def __init__(self, d_z: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_z, d_z), nn.ReLU(), nn.Linear(d_z, 1))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code).squeeze(1)


def reconstruction_error(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Squared error per image, *averaged over pixels and channels*.

    The paper writes ||x - d||^2 without saying how it is normalised; the per-pixel
    mean keeps the margins γ0 = 1, γ1 = 0.1 meaningful at every resolution. Images in
    [-1, 1], so the value lies in [0, 4]. x, recon: (N, 3, H, W) -> (N,) float32.
    """
    return F.mse_loss(recon.float(), x.float(), reduction="none").flatten(1).mean(dim=1)
