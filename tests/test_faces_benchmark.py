"""`sdn-bench faces` end to end on tiny synthetic identities and tiny checkpoints."""

import json

import pandas as pd
import pytest

from benchmarks.faces import CURVES, FacesBenchConfig, run_faces_benchmark
from evaluation.verifier import verifier_preset
from evaluation.verifier_trainer import train_verifier
from sdn.config import apply_overrides, preset
from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces
from sdn.trainer import train_sdn


@pytest.fixture(scope="module")
def tiny_faces_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faces-bench")
    root, cache = tmp / "faces", tmp / "cache"
    cfg = FacesConfig(identities=10, images_per_identity=10, resolution=32, test_fraction=0.5, seed=3)
    generate_faces(root, cfg, progress=False)
    over = [
        "train.steps=2",
        "train.set_size=3",
        "train.batch_sets=2",
        "train.eval_sets=2",
        "train.precision=fp32",
    ]
    train_sdn(root, apply_overrides(preset("tiny-16", "faces"), over), tmp / "sdn", dataset="faces",
              progress=False, cache_dir=cache)  # fmt: skip
    vcfg = apply_overrides(verifier_preset("tiny"), ["train.steps=2", "train.precision=fp32"])
    train_verifier(root, vcfg, tmp / "verifier", progress=False, cache_dir=cache)
    return root, tmp / "sdn" / "checkpoint.pt", tmp / "verifier" / "best.pt", cache


def tiny_config(**kw) -> FacesBenchConfig:
    base = dict(set_size=3, context_sizes=(1, 3, 6), noise_levels=(0.0, 0.34, 0.67), bootstrap=20)
    return FacesBenchConfig(**{**base, **kw})


def test_faces_end_to_end_writes_every_file(tiny_faces_run, tmp_path):
    root, sdn, verifier, cache = tiny_faces_run
    out = tmp_path / "report"
    manifest = run_faces_benchmark(
        sdn, root, out, tiny_config(), str(verifier), cache_dir=cache, progress=False
    )
    expected = [
        "curves.csv",
        "summary.csv",
        "summary.md",
        "equivalent_noise.csv",
        "manifest.json",
        "index.md",
    ]
    expected += ["fig6_input_vs_reconstruction.png", "fig7_learned_vs_uniform_prior.png"]
    expected += [
        f"{f}{s}.png" for f in ("fig8a_roc", "fig8b_context", "fig8c_label_noise") for s in ("", "_logfpr")
    ]
    for name in expected:
        assert (out / name).is_file(), name
    assert set(expected) <= set(manifest["files"])
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == [
        "curve",
        "context_size",
        "noise",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "n",
    ]
    assert set(summary.curve) == set(CURVES)
    assert set(summary[summary.curve == "recon"].context_size) == {1, 3, 6}
    assert set(summary[summary.curve == "real"].noise) == {0.0, 0.34, 0.67}
    stats = summary[summary.metric.isin(["auc", "tpr@0.01", "eer"])]
    assert stats["mean"].between(0, 1).all() and (stats.ci_low <= stats["mean"] + 1e-9).all()
    assert (stats["mean"] <= stats.ci_high + 1e-9).all()
    # real sets: 5 test identities x C(3, 2) positives, capped negatives = 10 per positive
    pos = summary[(summary.curve == "real") & (summary.noise == 0) & (summary.metric == "n_pos")]["mean"]
    neg = summary[(summary.curve == "real") & (summary.noise == 0) & (summary.metric == "n_neg")]["mean"]
    assert pos.item() == 15 and neg.item() == min(150, 3 * 3 * 10)
    eq = pd.read_csv(out / "equivalent_noise.csv")
    assert list(eq.columns) == ["curve", "context_size", "noise", "fpr", "value", "ci_low", "ci_high", "text"]
    assert set(eq.fpr) == {0.01, 0.1} and eq["value"].between(0, 0.67).all()
    noise_rows = summary[summary.metric.str.startswith("equivalent_label_noise")]
    assert len(noise_rows) == len(eq) == 2 * 8  # 8 curves: recon and recon-and-real at 3 contexts, 2 priors
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["curve", "context_size", "noise", "fpr", "tpr", "threshold"]
    md = (out / "summary.md").read_text()
    assert "Figure 8(a)" in md and "free samples beat uniform samples" in md
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["benchmark"] == "faces" and on_disk["data"]["identities"] == 5


def test_faces_is_seeded(tiny_faces_run, tmp_path):
    root, sdn, verifier, cache = tiny_faces_run
    for name in ("a", "b"):
        run_faces_benchmark(
            sdn, root, tmp_path / name, tiny_config(), str(verifier), cache_dir=cache, progress=False
        )
    a, b = (pd.read_csv(tmp_path / n / "summary.csv") for n in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)


def test_faces_bad_input(tiny_faces_run, tmp_path):
    root, sdn, verifier, cache = tiny_faces_run
    with pytest.raises(ValueError, match="max_identities must be >= 2"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(max_identities=1), str(verifier))
    with pytest.raises(ValueError, match="set_size must be >= 2"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(set_size=1), str(verifier))
    with pytest.raises(ValueError, match="no identity has at least 12 images"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(context_sizes=(1, 12)), str(verifier),
                            cache_dir=cache, progress=False)  # fmt: skip
    missing = tmp_path / "nowhere" / "20180402-114759-vggface2.pt"
    with pytest.raises(ValueError, match=str(missing)):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(), "facenet-vggface2", weights=missing)
    with pytest.raises(ValueError, match="kind is 'sdn', expected 'verifier'"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(), str(sdn))
