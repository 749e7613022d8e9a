"""The prior p̄(z) over binary set codes: MADE (Germain et al.) with three masked layers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    def __init__(self, cin: int, cout: int, mask: torch.Tensor):
        super().__init__(cin, cout)
        self.register_buffer("mask", mask.float())  # (cout, cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Autoregressive Bernoulli model over z in {-1, 1}^d.

    Three masked fully connected layers d -> h -> h -> d with ReLU between. Input
    unit i has degree i+1; hidden unit k has degree (k mod (d-1)) + 1; output unit i
    sees only hidden units of degree <= i, so logit i depends on z_<i alone (output 0
    is a learned marginal). Logit i parameterises P(z_i = +1 | z_<i).
    """

    def __init__(self, d: int, hidden: int):
        super().__init__()
        if d < 2:
            raise ValueError(f"MADE needs d >= 2, got {d}")
        self.d = d
        deg_in = torch.arange(1, d + 1)
        deg_h = torch.arange(hidden) % (d - 1) + 1
        self.l1 = MaskedLinear(d, hidden, deg_h[:, None] >= deg_in[None, :])
        self.l2 = MaskedLinear(hidden, hidden, deg_h[:, None] >= deg_h[None, :])
        self.l3 = MaskedLinear(hidden, d, deg_in[:, None] > deg_h[None, :])

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) in {-1, 1} -> logits (B, d) of P(z_i = +1 | z_<i)."""
        return self.l3(F.relu(self.l2(F.relu(self.l1(z)))))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p̄(z) in nats, one pass. z (B, d) in {-1, 1} -> (B,)."""
        target = (z > 0).float()
        return -F.binary_cross_entropy_with_logits(self.logits(z.float()), target, reduction="none").sum(
            dim=1
        )

    def nll_bits(self, z: torch.Tensor) -> torch.Tensor:
        """-log2 p̄(z), (B,)."""
        return -self.log_prob(z) / math.log(2.0)

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Autoregressive sampling, one pass per dimension -> (num, d) in {-1, 1}."""
        u = torch.rand(num, self.d, generator=generator, device=generator.device if generator else None)
        return self.sample_from_uniforms(u.to(self.l1.weight.device))

    @torch.no_grad()
    def sample_from_uniforms(self, u: torch.Tensor) -> torch.Tensor:
        """Inverse-CDF sampling from given uniforms, one pass per dimension: u (B, d) in [0, 1)
        -> z (B, d) in {-1, 1} with z_i = +1 iff u_i < P(z_i = +1 | z_<i). Row b depends only on
        u[b], so a sample does not depend on the other rows of the batch."""
        if u.dim() != 2 or u.shape[1] != self.d:
            raise ValueError(f"u must be (B, {self.d}), got {tuple(u.shape)}")
        z = torch.zeros_like(u)
        for i in range(self.d):
            p = torch.sigmoid(self.logits(z)[:, i])
            z[:, i] = torch.where(u[:, i] < p, 1.0, -1.0)
        return z
