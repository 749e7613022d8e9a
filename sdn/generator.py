"""The generator G(z, z'): one image per noise vector, conditioned on the set code."""

from __future__ import annotations

import torch
from torch import nn

from .upsampler import Upsampler


class Generator(nn.Module):
    """SAGAN generator (spectral norm, BatchNorm, self-attention) fed [z, z'].

    ``cond_bn`` (a training aid) also makes every BatchNorm conditional on z.
    z: (B, d_z) in {-1, 1}, noise: (B, noise_dim) -> (B, 3, R, R) in [-1, 1].
    """

    def __init__(
        self, resolution: int, ch: int, d_z: int, noise_dim: int, attn_res: int, cond_bn: bool = False
    ):
        super().__init__()
        self.d_z, self.noise_dim = d_z, noise_dim
        self.net = Upsampler(
            d_z + noise_dim, resolution, ch, norm=True, cond_dim=d_z if cond_bn else 0, attn_res=attn_res
        )

    def forward(self, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, noise], dim=1), z)
