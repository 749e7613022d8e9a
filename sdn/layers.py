"""SAGAN building blocks: spectrally normalised layers, self-attention, residual blocks.

Shapes use (B, C, H, W) for feature maps. Every conv and linear layer is spectrally
normalised (Miyato et al.), as in SAGAN's generator and discriminator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(cin: int, cout: int, k: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, padding=k // 2))


def sn_linear(cin: int, cout: int, bias: bool = True) -> nn.Module:
    return spectral_norm(nn.Linear(cin, cout, bias=bias))


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + γ · attention(x), γ initialised to 0.

    Keys and values are max-pooled 2x2 (as in BigGAN) to quarter the cost.
    x: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, ch: int):
        super().__init__()
        self.ck, self.cv = max(ch // 8, 1), max(ch // 2, 1)
        self.theta = sn_conv(ch, self.ck, 1)
        self.phi = sn_conv(ch, self.ck, 1)
        self.g = sn_conv(ch, self.cv, 1)
        self.o = sn_conv(self.cv, ch, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q = self.theta(x).flatten(2)  # (B, ck, HW)
        k = F.max_pool2d(self.phi(x), 2).flatten(2)  # (B, ck, HW/4)
        v = F.max_pool2d(self.g(x), 2).flatten(2)  # (B, cv, HW/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, HW, HW/4)
        out = (v @ attn.transpose(1, 2)).view(b, self.cv, h, w)
        return x + self.gamma * self.o(out)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are linear in a condition y (B, cond_dim).

    Without a condition (cond_dim 0) it is plain BatchNorm with learned affine.
    """

    def __init__(self, ch: int, cond_dim: int = 0):
        super().__init__()
        self.cond = cond_dim > 0
        self.bn = nn.BatchNorm2d(ch, affine=not self.cond)
        if self.cond:
            self.gain = sn_linear(cond_dim, ch, bias=False)
            self.bias = sn_linear(cond_dim, ch, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.bn(x)
        if self.cond:
            gain = 1.0 + self.gain(y)[:, :, None, None]
            return out * gain + self.bias(y)[:, :, None, None]
        return out


class ResBlockUp(nn.Module):
    """Generator block: [BN] ReLU up2 conv [BN] ReLU conv, plus up2 conv1x1 shortcut.

    x: (B, cin, H, W) -> (B, cout, 2H, 2W). ``norm`` False drops BN (energy decoder).
    """

    def __init__(self, cin: int, cout: int, norm: bool = True, cond_dim: int = 0):
        super().__init__()
        self.norm = norm
        self.conv1, self.conv2 = sn_conv(cin, cout), sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1)
        if norm:
            self.bn1, self.bn2 = ConditionalBatchNorm(cin, cond_dim), ConditionalBatchNorm(cout, cond_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bn1(x, y) if self.norm else x
        h = F.interpolate(F.relu(h), scale_factor=2, mode="nearest")
        h = self.conv1(h)
        h = self.bn2(h, y) if self.norm else h
        h = self.conv2(F.relu(h))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResBlockDown(nn.Module):
    """Discriminator block: ReLU conv ReLU conv avgpool, plus conv1x1 avgpool shortcut.

    The first block (``first``) skips the leading ReLU and pools before its shortcut
    conv, as in SAGAN. x: (B, cin, H, W) -> (B, cout, H/2, W/2) (or H, W if not ``down``).
    """

    def __init__(self, cin: int, cout: int, down: bool = True, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = sn_conv(cin, cout), sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.skip(F.avg_pool2d(s, 2))
        else:
            if self.skip is not None:
                s = self.skip(s)
            if self.down:
                s = F.avg_pool2d(s, 2)
        return h + s


def levels(resolution: int) -> int:
    """Number of 2x resolution steps between 4x4 and ``resolution``."""
    n = int(round(math.log2(resolution))) - 2
    if 4 * 2**n != resolution:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return n
