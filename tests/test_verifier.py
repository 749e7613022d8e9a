"""The verifier: config, heads, training smoke test, exact resume, best.pt, a tiny overfit."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from evaluation.verifier import (
    ClassifierHead,
    VerifierConfig,
    VerifierModelConfig,
    VerifierNet,
    verifier_preset,
)
from evaluation.verifier_trainer import _pairs, _verification, train_verifier
from sdn.checkpoint import load_checkpoint
from sdn.config import apply_overrides
from tests.test_vggface2_loader import write_vggface2


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """8 train identities x 6 images, 3 test identities x 4 images, colour-coded."""
    counts = {
        "train": {f"n{k:06d}": 6 for k in range(1, 9)},
        "test": {f"n{k:06d}": 4 for k in range(20, 23)},
    }
    return write_vggface2(tmp_path_factory.mktemp("faces") / "root", counts, meta=None)


def _cfg(*overrides):
    base = ["train.precision=fp32", "train.val_fraction=0.25", "train.log_every=1"]
    return apply_overrides(verifier_preset("tiny"), base + list(overrides))


def test_config_presets_and_strictness():
    cfg = verifier_preset("cpu-64")
    assert cfg.model.head == "arcface" and cfg.model.margin == 0.5 and cfg.model.resolution == 64
    assert VerifierConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown verifier train config keys \['stepz'\]"):
        VerifierConfig.from_dict({"train": {"stepz": 3}})
    with pytest.raises(ValueError, match="unknown verifier preset 'huge'"):
        verifier_preset("huge")
    with pytest.raises(ValueError, match="head must be one of"):
        apply_overrides(cfg, ["model.head=triplet"])
    with pytest.raises(ValueError, match="multiple of 16"):
        apply_overrides(cfg, ["model.resolution=40"])


def test_heads_apply_their_margins():
    torch.manual_seed(0)
    emb, labels = torch.randn(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    for head, m in (("cosface", 0.35), ("arcface", 0.5)):
        h = ClassifierHead(VerifierModelConfig(embed_dim=16, head=head, margin=m, scale=10.0), 3)
        plain, marg = h(emb), h(emb, labels)
        onehot = torch.nn.functional.one_hot(labels, 3).bool()
        assert torch.equal(plain[~onehot], marg[~onehot])  # other classes untouched
        assert (marg[onehot] < plain[onehot]).all()  # the true class is made harder
        cos = plain[onehot] / 10.0
        if head == "cosface":
            torch.testing.assert_close(marg[onehot], 10.0 * (cos - m))
        else:
            ok = cos > np.cos(np.pi - m)
            torch.testing.assert_close(marg[onehot][ok], 10.0 * torch.cos(torch.acos(cos[ok]) + m))
    soft = ClassifierHead(VerifierModelConfig(embed_dim=16, head="softmax"), 3)
    assert torch.equal(soft(emb), soft(emb, labels))


def test_verification_helper_against_a_naive_count():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 3)
    emb = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(12, 5))).float(), dim=1)
    pos, neg = _pairs(labels, 10_000, 0)
    assert len(pos) == 4 * 3 and len(neg) == 12 * 11 // 2 - 12  # all pairs when few
    out = _verification(emb, labels, 10_000, 0)
    s = emb @ emb.T
    wins = [(s[a, b] > s[c, d]) + 0.5 * (s[a, b] == s[c, d]) for a, b in pos for c, d in neg]
    assert out["auc"] == pytest.approx(float(np.mean(wins)))
    _, some = _pairs(labels, 20, 3)
    assert len(some) == 20 and len({tuple(p) for p in some.tolist()}) == 20
    assert all(labels[a] != labels[b] for a, b in some)
    with pytest.raises(ValueError, match="at least two identities"):
        _verification(emb[:3], labels[:3], 10, 0)


def test_trains_resumes_exactly_and_keeps_the_best(faces, tmp_path):
    kw = dict(progress=False, cache_dir=tmp_path / "c")
    cfg = _cfg("train.steps=6", "train.eval_every=3", "train.checkpoint_every=3", "train.precision=bf16")
    half = apply_overrides(cfg, ["train.steps=3"])
    full_rec = train_verifier(faces, cfg, tmp_path / "full", **kw)
    train_verifier(faces, half, tmp_path / "half", **kw)
    record = train_verifier(faces, cfg, tmp_path / "half", resume=True, **kw)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt", "verifier")
    b = load_checkpoint(tmp_path / "half" / "checkpoint.pt", "verifier")
    assert a["kind"] == "verifier" and a["step"] == b["step"] == 6
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["config"]["train"]["crop"] == "loose_bb"  # "auto" resolved: the fixture has loose boxes
    assert record["num_classes"] == 6 and len(record["val_identities"]) == 2
    assert record["best_selected_by"] == "val_auc" and record["last_eval"] == full_rec["last_eval"]
    assert {"val_auc", "val_tpr@1e-2"} <= set(record["last_eval"])
    assert not any(k.startswith("test") for k in record["last_eval"])
    assert [s["status"] for s in record["sessions"]] == ["finished", "finished"]
    best = load_checkpoint(tmp_path / "half" / "best.pt", "verifier")
    assert best["selected_by"] == "val_auc" and best["val_auc"] == record["best"]["val_auc"]
    with open(tmp_path / "half" / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 7))
    model = VerifierNet.from_checkpoint(tmp_path / "half" / "best.pt")
    assert model.num_classes == 6 and model.crop == "loose_bb" and not model.training
    with pytest.raises(ValueError, match="exists: pass --resume"):
        train_verifier(faces, cfg, tmp_path / "full", **kw)
    with pytest.raises(ValueError, match=r"differs in model.head"):
        train_verifier(
            faces, apply_overrides(cfg, ["model.head=softmax"]), tmp_path / "full", resume=True, **kw
        )


def test_too_few_identities_for_validation(faces, tmp_path):
    with pytest.raises(ValueError, match="too few to hold out 7 .* lower train.val_fraction"):
        train_verifier(
            faces, _cfg("train.val_fraction=0.9"), tmp_path / "r", progress=False, cache_dir=tmp_path
        )
    with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 1\)"):
        _cfg("train.val_fraction=0")


def test_training_never_reads_the_test_identities(faces, tmp_path):
    """Selection is on held-out train identities: a test split whose every image is corrupt
    does not stop training."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(faces, root)
    for img in (root / "test").rglob("*.jpg"):
        img.write_bytes(b"not a jpeg")
    kw = dict(progress=False, cache_dir=tmp_path / "c")
    rec = train_verifier(root, _cfg("train.steps=2"), tmp_path / "r", **kw)
    assert rec["best_selected_by"] == "val_auc" and "val_auc" in rec["last_eval"]


def test_overfits_the_fixture(faces, tmp_path):
    """Colour-coded identities: a few dozen steps classify the training images and verify
    the held-out train identities well."""
    cfg = _cfg("train.steps=100", "train.lr=0.01", "train.eval_every=50")
    rec = train_verifier(faces, cfg, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    with open(tmp_path / "run" / "metrics.csv") as f:
        acc = [float(r["acc"]) for r in csv.DictReader(f)]
    assert np.mean(acc[:10]) < 0.5 and np.mean(acc[-10:]) > 0.6, acc  # chance is 1/6
    assert rec["best_selected_by"] == "val_auc" and rec["last_eval"]["val_auc"] > 0.95
