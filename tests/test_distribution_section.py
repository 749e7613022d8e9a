"""The novelty / realism section (benchmarks/distribution.py): its figures against naive
loops and the metric modules, the copy test on a memorising model, invariance to the order of
sets, the Inception path, the novelty calibration and the ``copy-train`` reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmarks.distribution import (
    FREE,
    REAL_TEST,
    SET_FILE,
    UNIFORM,
    SectionInputs,
    SectionSettings,
    compute_section,
    knn_rows,
    section_markdown,
    write_section,
)
from benchmarks.ladder import novelty_calibration
from evaluation.coverage import prdc, set_embeddings
from evaluation.inception import InceptionFeatures, clean_resize

D, N_IMG = 6, 4


def _population(rng, n_sets: int, centres: np.ndarray, spread: float = 0.15) -> np.ndarray:
    """Sets (n_sets, N_IMG, D): each set a random centre of ``centres`` plus per-set and
    per-image noise (a set distribution with identities)."""
    ids = rng.integers(len(centres), size=n_sets)
    set_shift = rng.normal(scale=spread, size=(n_sets, 1, D))
    return centres[ids][:, None, :] + set_shift + rng.normal(scale=0.05, size=(n_sets, N_IMG, D))


def _inputs(seed: int = 0) -> SectionInputs:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, D))
    train, test = _population(rng, 60, centres), _population(rng, 30, centres)
    free = train[rng.integers(len(train), size=25)]  # a memorising model: copies of training sets
    uniform = np.eye(D)[0] + rng.normal(scale=0.1, size=(25, N_IMG, D))  # mode collapse: one direction
    return SectionInputs(test, free, uniform, train, "a test feature space")


SIDES = ("test", "free", "uniform", "train")
SETTINGS = SectionSettings(k=3, kid_subsets=5, kid_subset_size=50, n_boot=200, seed=0)


def _value(frame: pd.DataFrame, **where) -> float:
    hit = frame
    for k, v in where.items():
        hit = hit[hit[k] == v]
    assert len(hit) == 1, where
    return float(hit["mean"].iloc[0])


def test_novelty_figures_equal_a_naive_loop_and_the_copy_test_flags_memorisation():
    inputs = _inputs()
    section = compute_section(inputs, SETTINGS)
    train, test = set_embeddings(inputs.train), set_embeddings(inputs.test)
    for source, sets in ((FREE, inputs.free), (REAL_TEST, inputs.test)):
        e = set_embeddings(sets)
        d_train, d_test, copies = [], [], []
        for i, g in enumerate(e):
            dt = [np.linalg.norm(g - t) for t in train]
            j = int(np.argmin(dt))
            own = min(np.linalg.norm(train[j] - t) for jj, t in enumerate(train) if jj != j)
            d_train.append(dt[j])
            copies.append(dt[j] < own)
            others = [
                np.linalg.norm(g - t) for jj, t in enumerate(test) if not (source == REAL_TEST and jj == i)
            ]
            d_test.append(min(others))
        nov = section.novelty[section.novelty.source == source]
        assert _value(nov, metric="d_train_median") == pytest.approx(np.median(d_train), abs=1e-12)
        assert _value(nov, metric="d_test_median") == pytest.approx(np.median(d_test), abs=1e-12)
        assert _value(nov, metric="copy_fraction") == pytest.approx(np.mean(copies))
        assert _value(nov, metric="authenticity") == pytest.approx(1 - np.mean(copies))
    nov = section.novelty
    assert _value(nov, source=FREE, metric="copy_fraction") == 1.0  # exact copies are always flagged
    assert _value(nov, source=FREE, metric="d_train_median") < 1e-12
    assert 0.1 < _value(nov, source=REAL_TEST, metric="copy_fraction") < 0.9  # held-out real sets pass
    lo = nov[(nov.source == FREE) & (nov.metric == "d_train_median")].ci_low.iloc[0]
    assert np.isfinite(lo)


def test_knn_rows_equal_prdc_and_their_intervals_bracket_the_value():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 5)), rng.normal(0.3, 1.0, size=(35, 5))
    rows = pd.DataFrame(knn_rows("x", "image", real, fake, SETTINGS))
    ref = prdc(real, fake, k=SETTINGS.k)
    for metric, value in ref.items():
        r = rows[rows.metric == metric].iloc[0]
        assert r["mean"] == pytest.approx(value)
        assert r.ci_low <= r["mean"] <= r.ci_high
    tiny = pd.DataFrame(knn_rows("x", "set", real[:3], fake[:3], SETTINGS))  # k = 3: no 3rd neighbour
    assert tiny["mean"].isna().all() and tiny.ci_low.isna().all()


def test_section_is_invariant_to_the_order_of_sets():
    inputs = _inputs(2)
    rng = np.random.default_rng(5)
    shuffled = SectionInputs(
        *(
            getattr(inputs, n)[rng.permutation(len(getattr(inputs, n)))]
            for n in ("test", "free", "uniform", "train")
        ),
        inputs.feature,
    )
    a, b = compute_section(inputs, SETTINGS), compute_section(shuffled, SETTINGS)
    for x, y in ((a.novelty, b.novelty), (a.realism, b.realism)):
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-9, atol=1e-12)


def test_realism_rows_and_markdown_cover_both_priors_and_missing_sides(tmp_path):
    section = compute_section(_inputs(), SETTINGS)
    real = section.realism
    assert set(real.source) == {FREE, UNIFORM} and set(real.level) == {"image", "set"}
    # copies of training sets look real and cover the test sets; a collapsed mode does neither
    assert _value(real, source=FREE, level="image", metric="frechet") < _value(
        real, source=UNIFORM, level="image", metric="frechet"
    )
    assert _value(real, source=FREE, level="set", metric="coverage") > _value(
        real, source=UNIFORM, level="set", metric="coverage"
    )
    text = "\n".join(section_markdown(section))
    assert "## Novelty, coverage and realism" in text and "copy_fraction" in text
    written = write_section(section, tmp_path)
    assert {p.name for p in written} == {"novelty.csv", "realism.csv", SET_FILE, "novelty_histogram.png"}
    inputs = _inputs()
    bare = compute_section(
        SectionInputs(inputs.test, None, None, None, "f", "no train split here."), SETTINGS
    )
    assert set(bare.novelty.source) == {REAL_TEST} and bare.realism.empty
    assert set(bare.novelty.metric) == {"d_test_median"}  # no training sets: no memorisation figures
    text = "\n".join(section_markdown(bare))
    assert "no train split here." in text and "no `sample`" in text


def test_bad_section_inputs_are_rejected():
    inputs = _inputs()
    with pytest.raises(ValueError, match="sizes D differ"):
        compute_section(SectionInputs(inputs.test, inputs.free[..., :3], None, None, "f"), SETTINGS)
    one = compute_section(SectionInputs(inputs.test[:1], None, None, inputs.train[:1], "f"), SETTINGS)
    assert one.novelty["mean"].isna().all() and "the copy test needs at least 2" in one.inputs.train_note
    with pytest.raises(ValueError, match="k must be >= 1"):
        compute_section(inputs, SectionSettings(k=0))


def test_novelty_calibration_places_the_model_between_copy_train_and_the_oracle(tmp_path):
    def report(folder, d_train, copies):
        folder.mkdir(parents=True)
        n = len(d_train)
        pd.DataFrame(
            {"source": FREE, "set": range(n), "d_train": d_train, "d_test": 0.1, "copy": copies}
        ).to_csv(folder / SET_FILE, index=False)
        row = {"source": FREE, "metric": "d_train_median", "set_size": 4, "mean": np.median(d_train),
               "ci_low": 0, "ci_high": 0, "n": n}  # fmt: skip
        pd.DataFrame([row]).to_csv(folder / "novelty.csv", index=False)

    rng = np.random.default_rng(0)
    model = tmp_path / "m"
    report(model, rng.uniform(0.2, 0.4, 20), [True] * 10 + [False] * 10)  # the model: halfway
    report(model / "references" / "oracle", rng.uniform(0.4, 0.6, 20), [True] * 0 + [False] * 20)
    report(model / "references" / "copy-train", np.zeros(20), [True] * 20)
    cal = novelty_calibration(model, 200, 0).set_index("metric")
    assert cal.loc["authenticity", "normalised"] == pytest.approx(0.5)
    assert cal.loc["authenticity", "floor"] == 0.0 and cal.loc["authenticity", "ceiling"] == 1.0
    med = cal.loc["d_train_median"]
    assert med.normalised == pytest.approx(med.model / med.ceiling)  # the floor is 0
    assert med.ci_low < med.normalised < med.ci_high
    (model / "references" / "copy-train" / SET_FILE).unlink()
    assert novelty_calibration(model, 200, 0).empty  # no floor: no rows


def test_clean_resize_is_pil_bicubic_per_channel_in_float_mode():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(2, 3, 20, 20), dtype=np.uint8)
    out = clean_resize(torch.from_numpy(u8).float() / 255)
    assert out.shape == (2, 3, 299, 299)
    expected = np.asarray(
        Image.fromarray(u8[1, 2].astype(np.float32), mode="F").resize((299, 299), Image.BICUBIC)
    )
    assert np.array_equal(out[1, 2], expected)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        clean_resize(torch.zeros(3, 8, 8))


class _Body(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))  # (N, 3): a stand-in for pool3


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = _Body()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_inception_features_load_a_local_torchscript_file_only(tmp_path):
    missing = tmp_path / "inception-2015-12-05.pt"
    with pytest.raises(ValueError, match=f"no file at {missing}.*nothing is downloaded"):
        InceptionFeatures(missing)
    torch.jit.save(torch.jit.script(_Net()), str(missing))
    fid = InceptionFeatures(missing, batch_size=2)
    images = torch.rand(5, 3, 16, 16)
    got = fid.features(images)
    expected = (clean_resize(images) - 128.0) / 128.0
    assert got.shape == (5, 3)
    assert np.allclose(got, expected.mean(axis=(2, 3)), atol=1e-5)
    torch.jit.save(torch.jit.script(_Body()), str(tmp_path / "body.pt"))
    with pytest.raises(ValueError, match="has no `layers` module"):
        InceptionFeatures(tmp_path / "body.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a TorchScript file"):
        InceptionFeatures(tmp_path / "junk.pt")


def test_cli_names_a_missing_fid_weights_file(tmp_path):
    from click.testing import CliRunner

    from benchmarks import regression
    from benchmarks.cli import main

    missing = tmp_path / "inception-2015-12-05.pt"
    args = ["shapenet", "--model", "ref:oracle", "--occnet", str(regression.FIXTURE_MODELS["occnet"]),
            "--data", str(regression.FIXTURE_DATA["shapes"]), "--out", str(tmp_path / "r"),
            "--fid-weights", str(missing)]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and f"no file at {missing}" in r.output
