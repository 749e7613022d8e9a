"""`sdn-bench faces` end to end on tiny synthetic identities and tiny checkpoints."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.disclosure import THETA_STEP_GENERATOR_BN
from benchmarks.faces import (
    CURVES,
    FacesBenchConfig,
    _verdict,
    measure_curves,
    open_identities,
    run_calibrated_faces,
    run_faces_benchmark,
)
from benchmarks.manifest import sha256_file
from evaluation.embedders import load_embedder
from evaluation.intervals import N_TOO_SMALL
from evaluation.verifier import verifier_preset
from evaluation.verifier_trainer import train_verifier
from sdn.config import apply_overrides, preset
from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces
from sdn.model import SDN
from sdn.trainer import train_sdn

TEST_IDENTITIES = 12  # more than one generation chunk of 7


@pytest.fixture(scope="module")
def tiny_faces_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faces-bench")
    root, cache = tmp / "faces", tmp / "cache"
    cfg = FacesConfig(
        identities=2 * TEST_IDENTITIES, images_per_identity=10, resolution=32, test_fraction=0.5, seed=3
    )
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


@pytest.fixture(scope="module")
def default_report(tiny_faces_run, tmp_path_factory):
    """The tiny report at the default chunk (32: all identities in one chunk)."""
    root, sdn, verifier, cache = tiny_faces_run
    out = tmp_path_factory.mktemp("faces-report") / "report"
    with pytest.warns(UserWarning, match=r"p·n = 1.02 is not an integer; the applied fraction is 0.333"):
        manifest = run_faces_benchmark(
            sdn, root, out, tiny_config(), str(verifier), cache_dir=cache, progress=False
        )
    return out, manifest


def test_faces_end_to_end_writes_every_file(default_report):
    out, manifest = default_report
    expected = [
        "curves.csv",
        "summary.csv",
        "summary.md",
        "equivalent_noise.csv",
        "manifest.json",
        "index.md",
    ]
    expected += ["fig6_input_vs_reconstruction.png", "fig7_learned_vs_uniform_prior.png"]
    expected += ["novelty.csv", "realism.csv", "novelty_sets.csv", "novelty_histogram.png"]
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
        "applied_noise",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "n",
        "under_resolved",
    ]
    assert set(summary.curve) == set(CURVES)
    assert set(summary[summary.curve == "recon"].context_size) == {1, 3, 6}
    assert set(summary[summary.curve == "real"].noise) == {0.0, 0.34, 0.67}
    real = summary[summary.curve == "real"]
    np.testing.assert_allclose(real.applied_noise, real.noise.map({0.0: 0.0, 0.34: 1 / 3, 0.67: 2 / 3}))
    stats = summary[summary.metric.isin(["auc", "tpr@0.01", "eer"])]
    assert stats["mean"].between(0, 1).all() and (stats.ci_low <= stats["mean"] + 1e-9).all()
    assert (stats["mean"] <= stats.ci_high + 1e-9).all()
    # real sets: 12 test identities x C(3, 2) positives, capped negatives = 10 per positive
    pos = summary[(summary.curve == "real") & (summary.noise == 0) & (summary.metric == "n_pos")]["mean"]
    neg = summary[(summary.curve == "real") & (summary.noise == 0) & (summary.metric == "n_neg")]["mean"]
    assert pos.item() == 36 and neg.item() == 360
    # under-resolved exactly where target · n_neg < 1 (real: 1e-3 with 360 negatives)
    key = ["curve", "context_size", "noise"]
    n_neg = summary[summary.metric == "n_neg"].set_index(key)["mean"]
    tpr = summary[summary.metric.str.startswith("tpr@")].set_index(key)
    expected = tpr.metric.str.split("@").str[1].astype(float) * n_neg.reindex(tpr.index) < 1
    assert (tpr.under_resolved == expected).all() and expected.any() and not expected.all()
    assert not summary[summary.metric.isin(["auc", "eer", "n_pos", "n_neg"])].under_resolved.any()
    eq = pd.read_csv(out / "equivalent_noise.csv")
    assert list(eq.columns) == [
        "curve", "context_size", "noise", "applied_noise", "fpr", "value", "ci_low", "ci_high", "text",
        "under_resolved",
    ]  # fmt: skip
    assert set(eq.fpr) == {0.01, 0.1} and eq["value"].between(0, 2 / 3 + 1e-9).all()
    noise_rows = summary[summary.metric.str.startswith("equivalent_label_noise")]
    assert len(noise_rows) == len(eq) == 2 * 8  # 8 curves: recon and recon-and-real at 3 contexts, 2 priors
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["curve", "context_size", "noise", "fpr", "tpr", "threshold"]
    md = (out / "summary.md").read_text()
    assert "Figure 8(a)" in md and "free samples beat uniform samples" in md
    assert (
        "real, noise 0.34 (applied 0.333)" in md and "Warning: p·3 is not an integer for p = 0.34, 0.67" in md
    )
    assert "† under-resolved" in md and " †" in md.split("### Figure 8(b)")[0]
    # the paper's 25 % sentence, read on both curves, each verdict saying which
    assert "| `recon` curve (reconstructions among themselves), context 3 |" in md
    assert "| `recon and real` curve (the paper's calibration of its gap to `real`), context 3 |" in md
    assert (
        "aids: none; trained in fp32, channels_last: yes; generator BatchNorm in the θ step: training" in md
    )
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["benchmark"] == "faces" and on_disk["data"]["identities"] == TEST_IDENTITIES
    assert on_disk["execution"] == {"chunk": 32} and len(on_disk["data"]["subset_sha256"]) == 64
    assert on_disk["model"]["kind"] == "sdn" and on_disk["model"]["can_sample"]
    sdn = on_disk["model"]["description"]
    assert (sdn["precision"], sdn["channels_last"], sdn["aids"]) == ("fp32", True, {})
    assert on_disk["embedder"]["sha256"] == sha256_file(on_disk["embedder"]["weights"])
    assert sdn["theta_step_generator_bn"] == THETA_STEP_GENERATOR_BN


def test_faces_too_few_identities_draws_no_interval(tiny_faces_run, tmp_path):
    root, sdn, verifier, cache = tiny_faces_run
    out = tmp_path / "two"
    cfg = tiny_config(max_identities=2, noise_levels=(0.0, 1 / 3, 2 / 3))
    run_faces_benchmark(sdn, root, out, cfg, str(verifier), cache_dir=cache, progress=False)
    summary = pd.read_csv(out / "summary.csv")
    stats = summary[~summary.metric.isin(["n_pos", "n_neg"])]
    assert stats.ci_low.isna().all() and stats.ci_high.isna().all() and (stats.n == 2).all()
    assert pd.read_csv(out / "equivalent_noise.csv")[["ci_low", "ci_high"]].isna().all().all()
    md = (out / "summary.md").read_text()
    assert f"[{N_TOO_SMALL}]" in md and "Warning: p·3" not in md
    verdicts = md.split("### The paper's statements, checked")[1]
    assert verdicts.count(f"| {N_TOO_SMALL} |") == 4  # free vs uniform, context, 25% on both curves
    assert f"; {N_TOO_SMALL} |" in verdicts  # the AUC gap
    assert "not separated" not in verdicts


def test_verdict_needs_both_intervals():
    row = lambda lo, hi: pd.Series({"ci_low": lo, "ci_high": hi})  # noqa: E731
    assert _verdict(row(0.8, 0.9), row(0.5, 0.6)) == "yes"
    assert _verdict(row(0.8, 0.9), row(float("nan"), float("nan"))) == N_TOO_SMALL
    assert _verdict(row(float("nan"), 0.9), row(0.5, 0.6)) == N_TOO_SMALL


@pytest.mark.filterwarnings("ignore:label noise")
def test_faces_bad_input(tiny_faces_run, tmp_path):
    root, sdn, verifier, cache = tiny_faces_run
    with pytest.raises(ValueError, match="max_identities must be >= 2"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(max_identities=1), str(verifier))
    with pytest.raises(ValueError, match="set_size must be >= 2"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(set_size=1), str(verifier))
    with pytest.raises(ValueError, match=r"noise levels 0 and 0.1 both replace 0 of 3 images"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(noise_levels=(0, 0.1, 0.5)), str(verifier))
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(), str(verifier), chunk=0)
    with pytest.raises(ValueError, match="no identity has at least 12 images"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(context_sizes=(1, 12)), str(verifier),
                            cache_dir=cache, progress=False)  # fmt: skip
    missing = tmp_path / "nowhere" / "20180402-114759-vggface2.pt"
    with pytest.raises(ValueError, match=str(missing)):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(), "facenet-vggface2", weights=missing)
    with pytest.raises(ValueError, match="kind is 'sdn', expected 'verifier'"):
        run_faces_benchmark(sdn, root, tmp_path / "r", tiny_config(), str(sdn))


# --------------------------------------------------------------------------- invariance (DESIGN.md §6)


@pytest.mark.parametrize("chunk", [1, 7])
def test_faces_report_does_not_depend_on_chunk(default_report, tiny_faces_run, tmp_path, chunk):
    """chunk 1 and 7 (12 identities: two chunks, the second partial) against the default
    run (chunk 32, all identities at once): the same report up to float noise."""
    root, sdn, verifier, cache = tiny_faces_run
    ref, _ = default_report
    out = tmp_path / f"chunk{chunk}"
    with pytest.warns(UserWarning, match="not an integer"):
        manifest = run_faces_benchmark(
            sdn, root, out, tiny_config(), str(verifier), cache_dir=cache, progress=False, chunk=chunk
        )
    assert manifest["execution"] == {"chunk": chunk}
    for name in ("summary.csv", "equivalent_noise.csv", "novelty.csv", "realism.csv"):
        a, b = pd.read_csv(ref / name), pd.read_csv(out / name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-6, obj=name)
    assert (ref / "summary.md").read_text().split("\n")[3:] == (out / "summary.md").read_text().split("\n")[
        3:
    ]


def test_identities_in_different_chunks_get_different_noise(tiny_faces_run, monkeypatch):
    """Under chunk 7, identities j and j + 7 sit at the same position of two chunks: they must
    get different set seeds (so different noise for the same input), every context size of an
    identity the same seed, and each identity the seeds it gets under chunk 1."""
    root, sdn_path, verifier, cache = tiny_faces_run
    sdn, emb, cfg = SDN.from_checkpoint(sdn_path), load_embedder(str(verifier)), tiny_config()
    ds, picks = open_identities(root, cfg, sdn.resolution, cache, False)
    assert len(picks) > 7
    original = SDN.reconstruct

    def reconstruct_calls(chunk):
        """The per-set seeds of every ``reconstruct`` call of ``measure_curves``."""
        calls = []

        def spy(self, sets, n_out, seed=0):
            calls.append(list(seed))
            return original(self, sets, n_out, seed=seed)

        monkeypatch.setattr(SDN, "reconstruct", spy)
        measure_curves(sdn, emb, ds, picks, cfg, False, chunk=chunk)
        monkeypatch.setattr(SDN, "reconstruct", original)
        return calls

    calls7, calls1 = reconstruct_calls(7), reconstruct_calls(1)
    contexts = len({1, 3, 6} | {cfg.set_size})
    assert len(calls7) == 2 * contexts and len(calls1) == len(picks) * contexts
    for c in range(2):  # the contexts of one chunk share the chunk's seeds (common random numbers)
        assert all(calls7[c * contexts + k] == calls7[c * contexts] for k in range(contexts))
    seeds7 = calls7[0] + calls7[contexts]
    assert seeds7 == [calls1[i * contexts][0] for i in range(len(picks))]  # same seed whatever the chunk
    assert len(set(seeds7)) == len(picks) and seeds7[0] != seeds7[7]
    same_input = ds[picks[0]]["images"][None].repeat(2, 1, 1, 1, 1)  # identity 0's set, twice
    a, b = sdn.reconstruct(same_input, cfg.set_size, seed=[seeds7[0], seeds7[7]])
    assert not np.allclose(a.numpy(), b.numpy())  # identities 0 and 7 get different noise


def test_novelty_scores_training_sets_and_copy_train_is_the_memorising_floor(
    tiny_faces_run, tmp_path
):
    """With a train split on disk the report's novelty section has training sets, the ladder
    scores ``copy-train`` in place of ``copy`` (the same reconstructions) and every free set of
    copy-train is a training set: copy fraction 1, distance 0. The calibration has novelty rows
    between copy-train (0) and the oracle (1)."""
    root, sdn, verifier, cache = tiny_faces_run
    out = tmp_path / "m"
    with pytest.warns(UserWarning, match="not an integer"):
        run_calibrated_faces(sdn, root, out, tiny_config(), str(verifier), references=True, cache_dir=cache,
                             progress=False, echo=lambda _: None)  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["distribution"]["train_sets"] == TEST_IDENTITIES  # the other half of the identities
    ladder = json.loads((out / "references" / "ladder.json").read_text())
    assert [r["name"] for r in ladder["references"]] == ["oracle", "other-identity", "copy-train"]
    memorised = pd.read_csv(out / "references" / "copy-train" / "novelty.csv").set_index(["source", "metric"])
    assert memorised.loc[("free samples", "copy_fraction"), "mean"] == 1.0
    assert memorised.loc[("free samples", "d_train_median"), "mean"] < 1e-6
    oracle = pd.read_csv(out / "references" / "oracle" / "novelty.csv").set_index(["source", "metric"])
    assert oracle.loc[("free samples", "copy_fraction"), "mean"] < 1.0  # real test sets are novel
    cal = pd.read_csv(out / "calibration.csv")
    novelty = cal[cal.table == "novelty"].set_index("metric")
    assert set(novelty.index) == {"d_train_median", "authenticity"}
    assert novelty.loc["authenticity", "floor"] == 0.0
    assert "memorising reference" not in (out / "summary.md").read_text()  # the figure's legend, not the text
    assert (out / "novelty_histogram.png").is_file()
