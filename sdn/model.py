"""The Set Distribution Network: encoder, energy, generator and prior in one module."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .config import SDNConfig
from .encoder import Encoder
from .energy import EnergyDecoder, UnaryEnergy, reconstruction_error
from .generator import Generator
from .prior import MADE
from .seeding import STREAM_LEARNED, STREAM_RECON, STREAM_UNIFORM, set_seeds
from .setcode import binarize, set_mean

PRIORS = ("learned", "uniform")


def _per_set_seeds(seed: int | Sequence[int], num_sets: int, stream: int) -> list[torch.Generator]:
    """One CPU generator per set: ``seed`` is a sequence of ``num_sets`` set seeds, or an int
    expanded to ``set_seed(seed, stream, b)`` for b = 0..num_sets-1 (:mod:`sdn.seeding`)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        seeds = set_seeds(int(seed), stream, range(num_sets))
    elif isinstance(seed, Sequence) or isinstance(seed, np.ndarray):
        seeds = [int(s) for s in seed]
        if len(seeds) != num_sets:
            raise ValueError(f"seed: expected one seed per set ({num_sets}), got {len(seeds)}")
    else:
        raise ValueError(f"seed must be an int or a sequence of per-set ints, got {type(seed).__name__}")
    return [torch.Generator().manual_seed(s) for s in seeds]


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> [-1, 1] (the paper's normalisation)."""
    return x * 2.0 - 1.0


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> [0, 1], clamped."""
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def check_sets(sets: torch.Tensor, resolution: int, name: str = "sets") -> None:
    """Raise ValueError unless ``sets`` is (B, n, 3, resolution, resolution) with B, n >= 1."""
    if sets.dim() != 5 or sets.shape[2] != 3 or sets.shape[3] != resolution or sets.shape[4] != resolution:
        raise ValueError(f"{name} must be (B, n, 3, {resolution}, {resolution}), got {tuple(sets.shape)}")
    if sets.shape[0] < 1 or sets.shape[1] < 1:
        raise ValueError(
            f"{name} needs at least one set of at least one image, got shape {tuple(sets.shape)}"
        )


class CodeStandardiser(nn.Module):
    """Per-dimension standardisation of mean codes (the ``code_standardise`` aid).

    Training: m (B, d) is standardised with the batch's mean and variance, which
    also update running averages (momentum 0.1), unless ``stats`` are given (then
    those are used and nothing is updated). Eval: the running averages.
    """

    def __init__(self, d: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.register_buffer("running_mean", torch.zeros(d))
        self.register_buffer("running_var", torch.ones(d))

    def forward(self, m: torch.Tensor, stats=None):
        if not self.training:
            stats = (self.running_mean, self.running_var)
        elif stats is None:
            mean, var = m.mean(dim=0), m.var(dim=0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
            stats = (mean, var)
        mean, var = stats
        return (m - mean) / torch.sqrt(var + self.eps), stats


class SDN(nn.Module):
    """A Set Distribution Network (paper §2; DESIGN.md §4).

    Internally images are in [-1, 1]; the public methods :meth:`encode`,
    :meth:`reconstruct` and :meth:`sample` take and return [0, 1] images, like the
    data loaders, and run in eval mode without gradients.
    """

    def __init__(self, cfg: SDNConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        m, aids = cfg.model, cfg.aids
        self.resolution, self.d_z = m.resolution, m.d_z
        self.encoder = Encoder(m.resolution, m.d_ch, m.d_z, m.attn_res)
        self.code_norm = CodeStandardiser(m.d_z) if aids.code_standardise else None
        self.decoder = EnergyDecoder(m.resolution, m.g_ch, m.d_z)
        self.d0 = UnaryEnergy(m.d_z)
        self.generator = Generator(m.resolution, m.g_ch, m.d_z, m.noise_dim, m.attn_res, cond_bn=aids.cond_bn)
        self.prior = MADE(m.d_z, m.made_hidden)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if aids.ema > 0 else None

    # ----- building blocks (images in [-1, 1]) ---------------------------------------
    def mean_code(
        self, codes: torch.Tensor, set_size: int, stats: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Pre-binarisation set code: image codes (B*n, d_z) -> m (B, d_z).

        With the ``code_standardise`` aid, m is standardised per dimension; ``stats``
        (mean, var) reuses a real batch's statistics (for generated sets). Returns
        (m, the statistics used, or None without the aid).
        """
        m = set_mean(codes.float(), set_size)
        if self.code_norm is None:
            return m, None
        return self.code_norm(m, stats)

    def batch_code_stats(
        self, codes: torch.Tensor, set_size: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-dimension (mean, var) of a batch's set-mean codes, for ``mean_code(stats=...)``;
        None without the ``code_standardise`` aid. codes: (B*n, d_z)."""
        if self.code_norm is None:
            return None
        m = set_mean(codes.float(), set_size)
        return m.mean(dim=0), m.var(dim=0, unbiased=False)

    def energy_terms(
        self, x: torch.Tensor, z: torch.Tensor, codes: torch.Tensor, code_dropout: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction error and unary energy.

        x: (N, 3, H, W) in [-1, 1]; z: (N, d_z) set code of each image's set;
        codes: (N, d_z) = c(x). ``code_dropout`` zeroes whole c(x) vectors at the
        decoder input with that probability (an aid). Returns recon (N,), d0 (N,).
        """
        dec_in = codes
        if code_dropout > 0:
            keep = (torch.rand(codes.shape[0], 1, device=codes.device) >= code_dropout).to(codes.dtype)
            dec_in = codes * keep
        recon = reconstruction_error(x, self.decoder(z.to(dec_in.dtype), dec_in))
        return recon, self.d0(codes).float()

    def generate(
        self,
        z: torch.Tensor,
        n: int,
        gen: torch.Generator | None = None,
        ema: bool = False,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images per code: z (B, d_z) -> (B, n, 3, R, R) in [-1, 1]. ``noise`` (B, n,
        noise_dim), when given, is the z' of each image; otherwise it is drawn from ``gen``."""
        g = self.generator_ema if (ema and self.generator_ema is not None) else self.generator
        b = z.shape[0]
        if noise is None:
            noise = torch.randn(
                b * n, self.cfg.model.noise_dim, generator=gen, device=gen.device if gen else z.device
            )
        zz = z.repeat_interleave(n, dim=0)  # (B*n, d_z), set by set
        x = g(zz, noise.reshape(b * n, -1).to(z.device))
        return x.view(b, n, *x.shape[1:])

    # ----- the public set-model interface (images in [0, 1]) -------------------------
    @torch.no_grad()
    def encode(self, sets: torch.Tensor) -> torch.Tensor:
        """Set codes: sets (B, n, 3, H, W) in [0, 1], any n >= 1 -> (B, d_z) in {-1, 1}; each set
        encoded in its own forward pass (see :meth:`_generate_eval`)."""
        check_sets(sets, self.resolution)
        was = self.training
        self.eval()
        try:
            n = sets.shape[1]
            codes = [self.mean_code(self.encoder(to_model_range(s.to(self.device))), n)[0] for s in sets]
            return binarize(torch.cat(codes))  # one pass per set, as in _generate_eval
        finally:
            self.train(was)

    @torch.no_grad()
    def reconstruct(self, sets: torch.Tensor, n_out: int, seed: int | Sequence[int] = 0) -> torch.Tensor:
        """Encode each set and generate ``n_out`` new images of it (EMA generator if any).

        sets (B, n, 3, H, W) in [0, 1] -> (B, n_out, 3, H, W) in [0, 1].
        seed: one integer seed per set (a sequence of length B, see :mod:`sdn.seeding`), or
        an int, which stands for the per-set seeds ``set_seed(seed, STREAM_RECON, b)`` of the
        sets' positions b in this call. Image slot j of set b depends only on that set's seed,
        its code and j: not on B, n_out or the other sets of the call.
        """
        if n_out < 1:
            raise ValueError(f"n_out must be >= 1, got {n_out}")
        seeds = _per_set_seeds(seed, sets.shape[0], STREAM_RECON)
        z = self.encode(sets)
        return self._generate_eval(z, self._slot_noise(seeds, n_out))

    @torch.no_grad()
    def sample(
        self, num_sets: int, set_size: int, prior: str = "learned", seed: int | Sequence[int] = 0
    ) -> torch.Tensor:
        """Free samples: codes from the learned MADE prior or a uniform prior over
        {-1, 1}^d_z, then ``set_size`` images each -> (num_sets, set_size, 3, H, W) in [0, 1].

        seed: one integer seed per set (a sequence of length ``num_sets``), or an int standing
        for ``set_seed(seed, STREAM_LEARNED or STREAM_UNIFORM, s)``, s = 0..num_sets-1. Set s
        draws, from its own generator, d_z uniforms that fix its code (bit i is +1 when
        u_i < P(z_i = +1 | z_<i), or u_i < 1/2 under the uniform prior), then its images' noise
        slot by slot: a set does not depend on how many others are drawn with it."""
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        if num_sets < 1 or set_size < 1:
            raise ValueError(f"num_sets and set_size must be >= 1, got {num_sets} and {set_size}")
        gens = _per_set_seeds(seed, num_sets, STREAM_LEARNED if prior == "learned" else STREAM_UNIFORM)
        u = torch.stack([torch.rand(self.d_z, generator=g) for g in gens])  # (num_sets, d_z)
        if prior == "learned":
            was = self.prior.training
            self.prior.eval()
            z = self.prior.sample_from_uniforms(u.to(self.device))
            self.prior.train(was)
        else:
            z = torch.where(u < 0.5, 1.0, -1.0).to(self.device)
        return self._generate_eval(z, self._slot_noise(gens, set_size))

    def _slot_noise(self, gens: list[torch.Generator], n: int) -> torch.Tensor:
        """(B, n, noise_dim): slot by slot from each set's generator, one fixed-size draw per slot
        (torch's normal sampler takes another path for other sizes), so slot j does not depend on n."""
        dim = self.cfg.model.noise_dim
        return torch.stack([torch.stack([torch.randn(dim, generator=g) for _ in range(n)]) for g in gens])

    def _generate_eval(self, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """z (B, d_z), noise (B, n, noise_dim) -> (B, n, 3, R, R) in [0, 1], eval mode (BatchNorm
        with its running statistics, so images do not depend on their batch), one forward pass
        per set: a CPU's float kernels may round differently at another batch size (seen on an
        AVX2-only CPU: ~3e-7, enough to flip an 8-bit pixel now and then), so a set's images must
        not depend on which sets share its call."""
        was = self.training
        self.eval()
        try:
            n, one = noise.shape[1], lambda b: slice(b, b + 1)  # noqa: E731
            sets = [self.generate(z[one(b)], n, ema=True, noise=noise[one(b)]) for b in range(z.shape[0])]
            return to_unit_range(torch.cat(sets))
        finally:
            self.train(was)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location: str = "cpu") -> SDN:
        """Rebuild the model from a checkpoint alone (kind ``sdn``); eval mode."""
        from .checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, kind="sdn", map_location=map_location)
        model = cls(SDNConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["model"])
        return model.eval()
