"""The SDN objectives: the generator loss (paper Eq. 9) and the θ loss (Eq. 10).

Both take per-set or per-image terms that the model computed and reduce them the
same way: a sum over the images of a set, then a mean over the sets of the batch.
The reconstruction error is the per-pixel mean squared error
(:func:`sdn.energy.reconstruction_error`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def code_term(
    m_fake: torch.Tensor, z: torch.Tensor, margin: float = 0.0, mean_bits: bool = False
) -> torch.Tensor:
    """The soft indicator's loss ||[m(X') ⊙ z - γ_z]_-||_1 per set.

    m_fake: (B, d_z) pre-binarisation mean code of each generated set (the sign has
    no gradient, so the mean code is used); z: (B, d_z) in {-1, 1}, the code the set
    was generated from. [·]_- keeps the negative entries, so the term is
    Σ_j relu(γ_z - m_j z_j) (γ_z = 0 in the paper); ``mean_bits`` averages over the
    d_z bits instead. Returns (B,).
    """
    per_bit = F.relu(margin - m_fake * z)
    return per_bit.mean(dim=1) if mean_bits else per_bit.sum(dim=1)


def generator_loss(
    m_fake: torch.Tensor,
    z: torch.Tensor,
    recon_fake: torch.Tensor,
    d0_fake: torch.Tensor,
    margin: float = 0.0,
    mean_bits: bool = False,
) -> dict[str, torch.Tensor]:
    """Eq. 9: mean over sets of [ code_term + Σ_{x ∈ X'} E(x, z) ], E = recon + d0.

    m_fake, z: (B, d_z); recon_fake, d0_fake: (B, n) per generated image.
    Returns the total ``loss`` and its terms ``code`` and ``energy`` (scalars).
    """
    code = code_term(m_fake, z, margin, mean_bits).mean()
    energy = (recon_fake + d0_fake).sum(dim=1).mean()
    return {"loss": code + energy, "code": code, "energy": energy}


def theta_loss(
    nll: torch.Tensor,
    recon_real: torch.Tensor,
    d0_real: torch.Tensor,
    recon_fake: torch.Tensor | None,
    d0_fake: torch.Tensor | None,
    gamma0: float = 1.0,
    gamma1: float = 0.1,
) -> dict[str, torch.Tensor]:
    """Eq. 10, mean over sets of

        -log p̄(Ω(z(X)))
        + Σ_{x ∈ X}  ( recon(x) + [γ0 + d0(x)]_+ )
        + Σ_{x ∈ X'} ( [γ1 - recon(x)]_+ + [γ0 - d0(x)]_+ ).

    nll: (B,) prior NLL in nats of the stop-gradient codes; recon_*, d0_*: (B, n).
    ``recon_fake``/``d0_fake`` None drops the generated-set terms (the warm-up aid).
    Returns ``loss`` and each term (scalars).
    """
    terms = {
        "nll": nll.mean(),
        "real_recon": recon_real.sum(dim=1).mean(),
        "real_d0": F.relu(gamma0 + d0_real).sum(dim=1).mean(),
    }
    if recon_fake is not None and d0_fake is not None:
        terms["fake_recon"] = F.relu(gamma1 - recon_fake).sum(dim=1).mean()
        terms["fake_d0"] = F.relu(gamma0 - d0_fake).sum(dim=1).mean()
    terms["loss"] = sum(terms.values())
    return terms
