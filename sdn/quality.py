"""Held-out quality of a set model, computed during training (issue: SDN, 'held-out quality')
on validation sets (never the test split, which the benchmarks alone read; the trainer's
:func:`sdn.trainer.open_training_data` says which sets).

All images are (N, n, 3, H, W) float in [0, 1]. Feature spaces are fixed and
documented so that figures from different runs are comparable:

- ``colour-histogram``: a joint RGB histogram (4 bins per channel, 64 bins) over the
  *foreground* pixels of all images of a set (a pixel is background when all its
  channels exceed 0.94, i.e. the white render background; all pixels when a set has
  no foreground), L1-normalised; sets are compared by L1 distance.
- ``mean-image``: the set's mean image, average-pooled to 8x8 (192 values); compared
  by Euclidean distance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FEATURE_SPACES = ("colour-histogram", "mean-image")
QUALITY_FIELDS = (
    "code_agree_own", "code_agree_other", "code_agree_corrected", "retrieval_chance",
    "retrieval_colour_histogram", "retrieval_colour_histogram_ceiling", "retrieval_mean_image",
    "retrieval_mean_image_ceiling", "distinct_codes", "num_sets", "prior_nll_bits",
    "diversity_recon", "diversity_real", "diversity_ratio",
)  # fmt: skip
BACKGROUND = 0.94


def code_agreement(z_recon: torch.Tensor, z_input: torch.Tensor) -> dict[str, float]:
    """Fraction of equal bits between the codes of reconstructions and of inputs.

    z_recon, z_input: (N, d) in {-1, 1}, row i of each from the same input set.
    ``own`` = mean_i agree(z_recon_i, z_input_i); ``other`` = mean over i != j of
    agree(z_recon_i, z_input_j), the baseline (codes of different sets share many
    bits); ``corrected`` = own - other. Needs N >= 2.
    """
    n, d = z_input.shape
    if n < 2:
        raise ValueError("code agreement needs at least 2 sets (the baseline compares across sets)")
    agree = (z_recon.float() @ z_input.float().T + d) / (2 * d)  # (N, N) fraction of equal bits
    own = agree.diagonal().mean().item()
    other = ((agree.sum() - agree.diagonal().sum()) / (n * (n - 1))).item()
    return {"own": own, "other": other, "corrected": own - other}


def set_features(sets: torch.Tensor, space: str) -> torch.Tensor:
    """Features (N, D) of sets (N, n, 3, H, W) in [0, 1] in a named space (see module doc)."""
    if space == "colour-histogram":
        n_sets = sets.shape[0]
        pix = sets.permute(0, 1, 3, 4, 2).reshape(n_sets, -1, 3)  # (N, n*H*W, 3)
        fg = ~(pix > BACKGROUND).all(dim=2)  # (N, P)
        bins = (pix.clamp(0, 1 - 1e-6) * 4).long()
        idx = bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]  # (N, P) in [0, 64)
        feats = torch.zeros(n_sets, 64)
        for i in range(n_sets):
            use = fg[i] if fg[i].any() else torch.ones_like(fg[i])
            feats[i] = torch.bincount(idx[i][use], minlength=64).float()
        return feats / feats.sum(dim=1, keepdim=True)
    if space == "mean-image":
        return F.adaptive_avg_pool2d(sets.float().mean(dim=1), 8).flatten(1)
    raise ValueError(f"unknown feature space {space!r}; expected one of {FEATURE_SPACES}")


def retrieval_top1(queries: torch.Tensor, gallery: torch.Tensor, space: str) -> float:
    """Top-1 accuracy of matching query set i to gallery set i among all N gallery sets.

    queries, gallery: (N, n, 3, H, W) in [0, 1]. Distances: L1 for colour
    histograms, L2 for mean images. Chance is 1/N.
    """
    q, g = set_features(queries, space), set_features(gallery, space)
    p = 1.0 if space == "colour-histogram" else 2.0
    nearest = torch.cdist(q, g, p=p).argmin(dim=1)
    return (nearest == torch.arange(len(q))).float().mean().item()


def within_set_diversity(sets: torch.Tensor) -> float:
    """Mean over sets of the per-pixel standard deviation across a set's images,
    averaged over pixels and channels (units: [0, 1] intensity). sets: (N, n, 3, H, W), n >= 2."""
    if sets.shape[1] < 2:
        raise ValueError("within-set diversity needs sets of at least 2 images")
    return sets.float().std(dim=1).mean().item()


@torch.no_grad()
def held_out_quality(model, inputs: torch.Tensor, second: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """All held-out figures for a set model on N validation sets.

    inputs: (N, n, 3, H, W) in [0, 1], the input sets; second: a disjoint real set
    of the same N objects (same shape), the retrieval ceiling. The model must provide
    ``reconstruct``, ``encode`` and a ``prior.nll_bits``.
    """
    n_sets, n = inputs.shape[:2]
    recon = model.reconstruct(inputs, n, seed=seed).cpu()
    z_in, z_rec = model.encode(inputs).cpu(), model.encode(recon).cpu()
    out = {f"code_agree_{k}": v for k, v in code_agreement(z_rec, z_in).items()}
    out["retrieval_chance"] = 1.0 / n_sets
    for space in FEATURE_SPACES:
        key = space.replace("-", "_")
        out[f"retrieval_{key}"] = retrieval_top1(recon, inputs, space)
        out[f"retrieval_{key}_ceiling"] = retrieval_top1(second, inputs, space)
    out["distinct_codes"] = float(torch.unique(z_in, dim=0).shape[0])
    out["num_sets"] = float(n_sets)
    out["prior_nll_bits"] = model.prior.nll_bits(z_in.to(model.device)).mean().item()
    out["diversity_recon"] = within_set_diversity(recon)
    out["diversity_real"] = within_set_diversity(inputs)
    out["diversity_ratio"] = out["diversity_recon"] / max(out["diversity_real"], 1e-12)
    return out
