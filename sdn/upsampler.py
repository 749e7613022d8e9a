"""The upsampling network shared by the generator G(z, z') and the energy decoder d(z, c(x))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConditionalBatchNorm, ResBlockUp, SelfAttention, levels, sn_conv, sn_linear


class Upsampler(nn.Module):
    """SAGAN generator body: linear to 4x4, residual up blocks, [BN] ReLU conv3x3 tanh.

    Widths are ``ch * 2^(n-i)`` (capped at 16 ch) from 4x4 up to the output.
    ``norm`` adds BatchNorm (the generator; the energy decoder has none); ``cond_dim``
    > 0 makes every BN conditional on a vector y; ``attn_res`` places one
    self-attention block at that feature side (0 = none).
    inp: (B, in_dim), y: (B, cond_dim) or None -> (B, 3, R, R) in [-1, 1].
    """

    def __init__(
        self, in_dim: int, resolution: int, ch: int, norm: bool, cond_dim: int = 0, attn_res: int = 0
    ):
        super().__init__()
        n = levels(resolution)
        widths = [ch * min(16, 2 ** (n - i)) for i in range(n + 1)]
        self.first_ch = widths[0]
        self.linear = sn_linear(in_dim, widths[0] * 16)
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        res = 4
        for i in range(n):
            self.blocks.append(ResBlockUp(widths[i], widths[i + 1], norm=norm, cond_dim=cond_dim))
            res *= 2
            if attn_res and res == attn_res:
                self.attn[str(i)] = SelfAttention(widths[i + 1])
        self.out_bn = ConditionalBatchNorm(widths[n], cond_dim) if norm else None
        self.out_conv = sn_conv(widths[n], 3)

    def forward(self, inp: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(inp).view(inp.shape[0], self.first_ch, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, y)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        if self.out_bn is not None:
            h = self.out_bn(h, y)
        return torch.tanh(self.out_conv(F.relu(h)))
