"""The image encoder c(x): SAGAN's discriminator body with d_z outputs (paper §2.3, §4.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ResBlockDown, SelfAttention, levels, sn_linear


class Encoder(nn.Module):
    """c(x): residual downsampling blocks (spectral norm) with one self-attention block,
    ReLU, global sum pooling and a linear layer to ``d_z`` outputs.

    Widths are ``ch * 2^i`` (capped at 16 ch) at each level; after the last 2x down
    step (4x4 features) one more block at constant width, as in SAGAN.
    x: (N, 3, H, W) in [-1, 1] -> (N, d_z).
    """

    def __init__(self, resolution: int, ch: int, d_z: int, attn_res: int = 0):
        super().__init__()
        n = levels(resolution)
        widths = [ch * min(16, 2**i) for i in range(n + 1)]
        blocks: list[nn.Module] = []
        cin, res = 3, resolution
        for i in range(n):
            blocks.append(ResBlockDown(cin, widths[i], down=True, first=(i == 0)))
            cin, res = widths[i], res // 2
            if attn_res and res == attn_res:
                blocks.append(SelfAttention(cin))
        blocks.append(ResBlockDown(cin, widths[n], down=False))
        self.blocks = nn.Sequential(*blocks)
        self.out = sn_linear(widths[n], d_z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x))
        return self.out(h.sum(dim=(2, 3)))
