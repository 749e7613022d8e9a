"""Mathematical properties of the SDN modules and losses."""

from __future__ import annotations

import itertools

import pytest
import torch

from sdn.config import apply_overrides, preset
from sdn.energy import reconstruction_error
from sdn.losses import code_term, generator_loss, theta_loss
from sdn.model import SDN
from sdn.prior import MADE
from sdn.seeding import STREAM_RECON, set_seed, set_seeds
from sdn.setcode import binarize


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return SDN(preset("tiny-16", "shapes", "faithful")).eval()


def test_encode_is_permutation_invariant_for_any_set_size(tiny_model):
    torch.manual_seed(1)
    sets = torch.rand(3, 5, 3, 16, 16)
    z = tiny_model.encode(sets)
    assert z.shape == (3, 16) and set(z.unique().tolist()) <= {-1.0, 1.0}
    perm = torch.randperm(5)
    assert torch.equal(tiny_model.encode(sets[:, perm]), z)
    # Invariance holds exactly for the pre-binarisation mean code too (up to float sums).
    codes = tiny_model.encoder(sets.flatten(0, 1) * 2 - 1)
    m1, _ = tiny_model.mean_code(codes, 5)
    m2, _ = tiny_model.mean_code(tiny_model.encoder(sets[:, perm].flatten(0, 1) * 2 - 1), 5)
    torch.testing.assert_close(m1, m2, atol=1e-5, rtol=1e-5)
    for n in (1, 2, 17):
        assert tiny_model.encode(torch.rand(2, n, 3, 16, 16)).shape == (2, 16)


def test_straight_through_binarize():
    m = torch.tensor([[-0.3, 0.0, 2.0]], requires_grad=True)
    z = binarize(m)
    assert z.tolist() == [[-1.0, 1.0, 1.0]]
    (z * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert m.grad.tolist() == [[1.0, 2.0, 3.0]]  # identity gradient


def test_made_is_autoregressive_by_jacobian():
    torch.manual_seed(0)
    made = MADE(d=7, hidden=20)
    z = torch.randint(0, 2, (7,)).float() * 2 - 1
    jac = torch.autograd.functional.jacobian(lambda v: made.logits(v[None])[0], z)  # (7 out, 7 in)
    upper = torch.triu(torch.ones(7, 7, dtype=torch.bool))  # j >= i: must not influence logit i
    assert torch.all(jac[upper] == 0)
    assert torch.count_nonzero(jac[~upper]) > 0


def test_made_is_normalised_and_sampling_matches_its_distribution():
    torch.manual_seed(0)
    made = MADE(d=3, hidden=12)
    with torch.no_grad():
        for p in made.parameters():
            p.mul_(3.0)  # a far-from-uniform distribution
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3)))
    probs = made.log_prob(codes).exp()
    assert abs(probs.sum().item() - 1.0) < 1e-5
    n = 40_000
    samples = made.sample(n, torch.Generator().manual_seed(3))
    freq = torch.stack([(samples == c).all(dim=1).float().mean() for c in codes])
    # Stated bound: 0.015 is more than 5 standard errors (sqrt(0.25 / 40000) = 0.0025).
    assert (freq - probs).abs().max().item() < 0.015


def test_reconstruction_error_is_per_pixel_mean():
    x = torch.zeros(2, 3, 4, 4)
    r = torch.full((2, 3, 4, 4), 0.5)
    r[1] = 1.0
    assert reconstruction_error(x, r).tolist() == [0.25, 1.0]


def test_code_term_hand_computed():
    m = torch.tensor([[0.5, -0.2, 0.1], [-1.0, 2.0, 0.0]])
    z = torch.tensor([[1.0, 1.0, -1.0], [-1.0, 1.0, 1.0]])
    # m*z = [[0.5, -0.2, -0.1], [1.0, 2.0, 0.0]] -> negatives summed: 0.3 and 0.0
    torch.testing.assert_close(code_term(m, z), torch.tensor([0.3, 0.0]))
    # margin 0.5: relu(0.5 - m*z) = [[0, 0.7, 0.6], [0, 0, 0.5]]
    torch.testing.assert_close(code_term(m, z, margin=0.5), torch.tensor([1.3, 0.5]))
    torch.testing.assert_close(code_term(m, z, margin=0.5, mean_bits=True), torch.tensor([1.3, 0.5]) / 3)


def test_generator_loss_hand_computed():
    m = torch.tensor([[0.5, -0.2]])
    z = torch.tensor([[1.0, 1.0]])
    recon = torch.tensor([[0.1, 0.3]])
    d0 = torch.tensor([[-0.5, 0.2]])
    out = generator_loss(m, z, recon, d0)
    torch.testing.assert_close(out["code"], torch.tensor(0.2))
    torch.testing.assert_close(out["energy"], torch.tensor(0.1 + 0.3 - 0.5 + 0.2))
    torch.testing.assert_close(out["loss"], torch.tensor(0.3))


def test_theta_loss_hand_computed():
    nll = torch.tensor([2.0, 4.0])
    recon_r = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    d0_r = torch.tensor([[-2.0, 0.5], [-0.5, -1.0]])  # [1 + d0]_+ = [[0, 1.5], [0.5, 0]]
    recon_f = torch.tensor([[0.05, 0.5], [0.0, 0.2]])  # [0.1 - r]_+ = [[0.05, 0], [0.1, 0]]
    d0_f = torch.tensor([[2.0, 0.0], [0.5, 1.0]])  # [1 - d0]_+ = [[0, 1], [0.5, 0]]
    out = theta_loss(nll, recon_r, d0_r, recon_f, d0_f, gamma0=1.0, gamma1=0.1)
    torch.testing.assert_close(out["nll"], torch.tensor(3.0))
    torch.testing.assert_close(out["real_recon"], torch.tensor((0.3 + 0.7) / 2))
    torch.testing.assert_close(out["real_d0"], torch.tensor((1.5 + 0.5) / 2))
    torch.testing.assert_close(out["fake_recon"], torch.tensor((0.05 + 0.1) / 2))
    torch.testing.assert_close(out["fake_d0"], torch.tensor((1.0 + 0.5) / 2))
    torch.testing.assert_close(out["loss"], torch.tensor(3.0 + 0.5 + 1.0 + 0.075 + 0.75))
    warm = theta_loss(nll, recon_r, d0_r, None, None)
    assert "fake_recon" not in warm and torch.isclose(warm["loss"], torch.tensor(4.5))


def test_sample_and_reconstruct_shapes_and_seeds(tiny_model):
    a = tiny_model.sample(2, 3, "learned", seed=5)
    assert a.shape == (2, 3, 3, 16, 16) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, tiny_model.sample(2, 3, "learned", seed=5))
    assert not torch.equal(a, tiny_model.sample(2, 3, "learned", seed=6))
    u = tiny_model.sample(2, 3, "uniform", seed=[7, 8])
    assert u.shape == a.shape
    r = tiny_model.reconstruct(torch.rand(2, 4, 3, 16, 16), n_out=6, seed=1)
    assert r.shape == (2, 6, 3, 16, 16)


def test_generated_images_depend_on_set_seed_and_slot_only(tiny_model):
    """Invariance rule (sdn/seeding.py): a set's images do not depend on the other sets of the
    call (chunking), bit for bit (one forward pass per set: batched, an AVX2-only CPU rounded
    ~3e-7 differently), and slot j does not depend on how many images are generated (to float
    rounding: the n images of a set share a pass)."""
    torch.manual_seed(2)
    sets = torch.rand(5, 3, 3, 16, 16)
    seeds = set_seeds(0, STREAM_RECON, ["a", "b", "c", "d", "e"])
    whole = tiny_model.reconstruct(sets, 4, seed=seeds)
    for lo, hi in ((0, 1), (1, 4), (4, 5)):  # chunks of 1, 3 and 1 sets
        part = tiny_model.reconstruct(sets[lo:hi], 4, seed=seeds[lo:hi])
        assert torch.equal(part, whole[lo:hi])
    torch.testing.assert_close(tiny_model.reconstruct(sets, 2, seed=seeds), whole[:, :2], atol=1e-5, rtol=0)
    # identical images in two sets only when the seeds and the codes agree
    assert not torch.allclose(whole[0], tiny_model.reconstruct(sets[:1], 4, seed=seeds[1:2])[0])
    for prior in ("learned", "uniform"):
        free = tiny_model.sample(6, 3, prior, seed=list(range(6)))
        assert torch.equal(tiny_model.sample(2, 3, prior, seed=[2, 3]), free[2:4])
        torch.testing.assert_close(tiny_model.sample(6, 1, prior, seed=list(range(6))), free[:, :1],
                                   atol=1e-5, rtol=0)  # fmt: skip
    with pytest.raises(ValueError, match=r"one seed per set \(5\), got 2"):
        tiny_model.reconstruct(sets, 2, seed=[1, 2])


def test_set_seed_is_a_function_of_its_arguments():
    assert set_seed(0, STREAM_RECON, "n000001") == set_seed(0, STREAM_RECON, "n000001")
    seeds = {set_seed(s, t, i) for s in (0, 1) for t in (0, 1) for i in (0, 1, "0", "1")}
    assert len(seeds) == 16 and all(0 <= x < 2**63 for x in seeds)
    with pytest.raises(ValueError, match="non-negative"):
        set_seed(-1, 0, 0)
    with pytest.raises(ValueError, match="set id"):
        set_seed(0, 0, 1.5)


def test_bad_input_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match=r"at least one set of at least one image"):
        tiny_model.encode(torch.rand(2, 0, 3, 16, 16))
    with pytest.raises(ValueError, match=r"must be \(B, n, 3, 16, 16\), got \(2, 4, 3, 32, 32\)"):
        tiny_model.encode(torch.rand(2, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="n_out must be >= 1"):
        tiny_model.reconstruct(torch.rand(1, 2, 3, 16, 16), n_out=0)
    with pytest.raises(ValueError, match="prior must be one of"):
        tiny_model.sample(1, 2, prior="gaussian")


def test_presets_and_overrides():
    cfg = preset("paper-128", "shapes")
    assert cfg.model.d_z == 2048 and preset("paper-128", "faces").model.d_z == 256
    assert cfg.aids.active() == {}  # the faithful recipe has no aid on
    assert preset("cpu-32", "shapes", "aided").aids.active()
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError, match="unknown key 'emma'"):
        apply_overrides(cfg, ["aids.emma=0.9"])
    with pytest.raises(ValueError, match="not of the form"):
        apply_overrides(cfg, ["steps=3"])
    new = apply_overrides(cfg, ["aids.ema=0.99", "train.steps=7", "aids.cond_bn=true"])
    assert (
        new.aids.ema == 0.99 and new.train.steps == 7 and new.aids.cond_bn and new.recipe == "faithful+custom"
    )
    from sdn.config import SDNConfig

    with pytest.raises(ValueError, match="unknown model config keys"):
        SDNConfig.from_dict({"model": {"dz": 3}})


def test_ema_decay_warm_up():
    from sdn.trainer import ema_decay

    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 90) == pytest.approx(0.91)
    assert ema_decay(0.999, 100_000) == 0.999
