"""Gradient routing of the SDN training step (sdn.trainer.Trainer): which parameters each of
the ψ and θ steps may change, and that the prior's NLL reaches the prior only.

Parameters only: buffers are not routed by gradients. Every module that runs in training mode
advances its spectral-norm power iteration (the encoder's in the ψ step too, as in SAGAN), and
the generator's BatchNorm running statistics move in both steps (sdn.config.TrainConfig)."""

from __future__ import annotations

import pytest
import torch

from sdn.config import apply_overrides, preset
from sdn.trainer import Trainer
from sdn.training import Dist

SETS, N = 2, 3


@pytest.fixture
def trainer() -> Trainer:
    return Trainer(apply_overrides(preset("tiny-16", "shapes"), ["train.precision=fp32"]), Dist())


@pytest.fixture
def x() -> torch.Tensor:
    """(SETS*N, 3, 16, 16) images in [-1, 1], set by set, as Trainer.step passes them."""
    return torch.rand(SETS * N, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def theta_modules(t: Trainer) -> dict[str, torch.nn.Module]:
    m = t.model
    return {"encoder": m.encoder, "decoder": m.decoder, "d0": m.d0, "prior": m.prior}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    return [k for k, v in module.named_parameters() if not torch.equal(before[k], v.detach())]


def test_psi_step_changes_only_the_generator(trainer, x):
    gen_before = params(trainer.model.generator)
    theta_before = {name: params(mod) for name, mod in theta_modules(trainer).items()}
    trainer.psi_step(x, N)
    moved = set(changed(gen_before, trainer.model.generator))
    # Adam moves every parameter with a non-zero gradient (at initialisation the self-attention
    # gain is 0, so the attention projections get none yet).
    with_grad = {k for k, p in trainer.model.generator.named_parameters() if p.grad.abs().sum() > 0}
    assert with_grad and moved == with_grad
    for name, mod in theta_modules(trainer).items():
        assert changed(theta_before[name], mod) == [], name
        assert all(p.grad is None and p.requires_grad for p in mod.parameters()), name
    assert trainer.opt_t.state == {}  # the θ optimiser never stepped


def test_theta_step_changes_no_generator_parameter(trainer, x):
    gen_before = params(trainer.model.generator)
    theta_before = {name: params(mod) for name, mod in theta_modules(trainer).items()}
    trainer.theta_step(x, N, warmup=False)
    assert changed(gen_before, trainer.model.generator) == []
    assert all(p.grad is None for p in trainer.model.generator.parameters())
    for name, mod in theta_modules(trainer).items():
        assert changed(theta_before[name], mod), name
    assert trainer.opt_g.state == {}


def test_prior_nll_is_on_stop_gradient_codes(trainer, x):
    """The NLL term alone gives the prior a gradient and the encoder none."""
    terms = trainer.theta(x, N, True)
    terms["t_nll"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.model.prior.parameters())
    assert all(p.grad is None for p in trainer.model.encoder.parameters())
    assert all(p.grad is None for p in trainer.model.generator.parameters())
