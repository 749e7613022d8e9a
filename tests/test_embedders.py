"""The embedder contract, facenet weight loading (never downloading), and the verifier embedder."""

from __future__ import annotations

import pytest
import torch

from evaluation.embedders import (
    FACENET_URL,
    FacenetEmbedder,
    VerifierEmbedder,
    facenet_weights_path,
    load_embedder,
    torch_home,
)
from evaluation.verifier import VerifierNet, verifier_preset
from sdn.checkpoint import save_checkpoint


def _check_contract(emb, n: int = 5, side: int = 40):
    torch.manual_seed(0)
    images = torch.rand(n, 3, side, side + 7)
    out = emb.embed(images)
    assert out.shape == (n, emb.dim) and out.dtype == torch.float32 and out.device.type == "cpu"
    torch.testing.assert_close(out.norm(dim=1), torch.ones(n))
    assert torch.equal(emb.embed(images), out)  # deterministic: eval mode, no dropout
    emb.batch_size = 2  # batching does not change the result
    torch.testing.assert_close(emb.embed(images), out, atol=1e-5, rtol=1e-5)
    assert emb.embed(images[:0]).shape == (0, emb.dim)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        emb.embed(images * 2 - 1)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        emb.embed(images[0])
    return out


@pytest.fixture
def torch_home_with_facenet(tmp_path, monkeypatch):
    """A TORCH_HOME holding a random-init InceptionResnetV1 state dict in the official layout
    (8631 logits, as 20180402-114759-vggface2.pt)."""
    from facenet_pytorch import InceptionResnetV1

    home = tmp_path / "torch-home"
    (home / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    net = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)
    torch.save(net.state_dict(), home / "checkpoints" / "20180402-114759-vggface2.pt")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def test_facenet_loads_from_torch_home(torch_home_with_facenet):
    emb = load_embedder("facenet-vggface2")
    assert isinstance(emb, FacenetEmbedder) and emb.resolution == 160 and emb.dim == 512
    assert emb.weights == torch_home_with_facenet / "checkpoints" / "20180402-114759-vggface2.pt"
    assert not emb.model.training and not emb.model.classify
    _check_contract(emb, n=3)
    # an explicit path works too, wherever the file is
    same = FacenetEmbedder("facenet-vggface2", weights=emb.weights)
    x = torch.rand(2, 3, 160, 160)
    torch.testing.assert_close(same.embed(x), emb.embed(x))


def test_facenet_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    expected = tmp_path / "empty" / "checkpoints" / "20180402-114759-vggface2.pt"
    with pytest.raises(ValueError, match=f"weights not found at {expected}. Nothing is downloaded"):
        load_embedder("facenet-vggface2")
    with pytest.raises(ValueError, match="20180408-102900-casia-webface.pt") as e:
        load_embedder("facenet-casia")
    assert FACENET_URL.format(file="20180408-102900-casia-webface.pt") in str(e.value)
    with pytest.raises(ValueError, match="weights not found at .*elsewhere.pt"):
        load_embedder("facenet-casia", weights=tmp_path / "elsewhere.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.pt: not a readable state dict"):
        load_embedder("facenet-vggface2", weights=bad)
    # torch.hub's default: $XDG_CACHE_HOME/torch, else ~/.cache/torch
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_home() == tmp_path / "xdg" / "torch"
    assert facenet_weights_path("facenet-casia").parent == tmp_path / "xdg" / "torch" / "checkpoints"


def _verifier_checkpoint(path, num_classes: int = 5):
    cfg = verifier_preset("tiny")
    torch.manual_seed(0)
    net = VerifierNet(cfg, num_classes)
    cfg_dict = cfg.to_dict()
    cfg_dict["train"]["crop"] = "loose_bb"
    save_checkpoint(path, "verifier", cfg_dict, {"model": net.state_dict()}, 0, "fp")
    return path


def test_verifier_embedder_contract(tmp_path):
    path = _verifier_checkpoint(tmp_path / "run" / "best.pt")
    emb = load_embedder(path)
    assert isinstance(emb, VerifierEmbedder) and emb.resolution == 32 and emb.dim == 16
    assert emb.crop == "loose_bb" and not emb.model.training
    _check_contract(emb)
    x = torch.rand(3, 3, 32, 32)
    for other in (load_embedder("verifier", weights=tmp_path / "run"), load_embedder(tmp_path / "run")):
        assert other.weights == path
        torch.testing.assert_close(other.embed(x), emb.embed(x))
    with pytest.raises(ValueError, match="needs weights="):
        load_embedder("verifier")
    with pytest.raises(ValueError, match="unknown embedder 'arcface'.*facenet-vggface2"):
        load_embedder("arcface")
    save_checkpoint(tmp_path / "occ.pt", "occnet", {}, {"model": {}}, 0, "fp")
    with pytest.raises(ValueError, match="kind is 'occnet', expected 'verifier'"):
        load_embedder(tmp_path / "occ.pt")
