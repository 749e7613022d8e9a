"""The third report section of both benchmarks: are free-sample sets novel, realistic and
diverse? (``novelty.csv``, ``realism.csv``, ``novelty_sets.csv``, ``novelty_histogram.png``
and a section of ``tables.md`` / ``summary.md``.)

Inputs, per report (:class:`SectionInputs`): image embeddings of the model's free-sample
sets from the learned and the uniform prior (F sets of n images each, set s seeded
``set_seed(seed, STREAM_LEARNED / STREAM_UNIFORM, s)``), of the real sets of the evaluated
split (S sets: the benchmark's real sets) and of the real sets of the split the model was
trained on (T sets; absent when that split is not on disk). The feature space is the
benchmark's: on faces the verification embedder (unit embeddings), on shapes the OccNet's
image encoder (:meth:`occnet_multiview.model.OccupancyNetwork.view_codes`: each view's
code before pooling, unit-normalised here). A **set embedding** is the mean of its images'
unit embeddings, renormalised (:func:`evaluation.coverage.set_embeddings`, IJB-style
templates). Distances are Euclidean between unit vectors, sqrt(2 - 2 cos), unitless in [0, 2].

novelty.csv (tidy: source, metric, set_size, mean, ci_low, ci_high, n), per source
("free samples", "uniform samples", and "real test sets": the novel ceiling inside the
report itself):

- ``d_train_median``: the median over sets of the distance to the nearest *training* set;
- ``d_test_median``: the median distance to the nearest real test set (for the real test
  sets themselves: to the nearest *other* test set);
- ``copy_fraction``: the copy test (:func:`evaluation.novelty.copy_fraction`): the fraction of
  sets closer to their nearest training set t than t is to its own nearest training
  neighbour. Held-out real sets land there about as often as a fresh draw of the training
  distribution does (not 0: the "real test sets" row gives the level); copies of training
  sets always;
- ``authenticity`` = 1 - copy_fraction (in the spirit of Alaa et al. 2022).

realism.csv (tidy: source, level, metric, k, mean, ci_low, ci_high, n, n_real), free and
uniform samples against the real test sets:

- level ``image``: ``frechet`` (:func:`evaluation.realism.frechet_distance` on the unit image
  embeddings, squared distance units, the plug-in estimate: biased upwards at finite N,
  comparable only at equal N and D, hence n and n_real are stated; no interval: a bootstrap
  over sets duplicates them, and the estimator's bias then moves more than its spread: on
  the reference shapes report the percentile interval [0.056, 0.137] excluded the estimate
  0.050), ``kid`` (unbiased MMD², cubic kernel, ``kid_subsets`` subsets of
  ``kid_subset_size``; the row's ``mean`` is the mean over subsets, the ``kid_std`` row their
  standard deviation, NaN when a subset holds every row; no interval) and the four k-NN
  figures below on the images;
- level ``set``: ``precision``, ``recall``, ``density``, ``coverage``
  (:func:`evaluation.coverage.prdc`, k = ``k`` neighbours) on the set embeddings;
- level ``inception`` (only with ``--fid-weights``): ``frechet`` (the standard FID) and
  ``kid`` of the Inception pool3 features (:mod:`evaluation.inception`, clean-fid's
  conventions), same images, same estimators.

Intervals (95% percentile bootstrap, ``n_boot`` resamples, seeded
``set_seed(seed, STREAM_DISTRIBUTION, "<source>|<metric>")``): the novelty figures resample
the source's sets. Each k-NN figure is a mean over the points of one side given the k-NN
balls of the two samples (precision and density over the fakes, recall and coverage over
the reals); its interval resamples that side with the balls held fixed, so it states the
sampling error of that mean, not of the manifold estimate. An interval exists only with
at least ``MIN_PER_STRATUM`` points (else NaN bounds, "n too small").

Invariance: every figure is a function of the *multisets* of sets (each set's embedding a
function of its own images: each set is embedded alone). Values bootstrapped are sorted
first and KID's subsets are drawn from the rows in a canonical (lexicographic) order, so
neither the order of the sets nor the chunking changes a number (tests/test_distribution_section.py).

What it cannot tell. The feature spaces are the benchmark's own networks, not Inception:
values are comparable between models scored with the same embedder / OccNet only (the
manifest names it). Set-level figures with S ~ 100 sets in D ~ 100-500 dimensions are noisy,
and density/coverage depend on k. A model can be novel (far from training sets) by being
bad: read novelty beside realism and the paper's tables. Inception FID with clean-fid's
conventions is computed only from a local weights file (``--fid-weights``,
:mod:`evaluation.inception`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.coverage import kth_neighbour_radius, prdc_per_point, set_embeddings
from evaluation.intervals import MIN_PER_STRATUM, format_interval
from evaluation.novelty import nearest
from evaluation.realism import frechet_distance, kid
from sdn.io import atomic_write_text, sha256_file
from sdn.seeding import set_seed

from .figures import save_plot

STREAM_DISTRIBUTION = 103  # the section's bootstrap stream
FREE, UNIFORM, REAL_TEST = "free samples", "uniform samples", "real test sets"
NOVELTY_COLUMNS = ["source", "metric", "set_size", "mean", "ci_low", "ci_high", "n"]
REALISM_COLUMNS = ["source", "level", "metric", "k", "mean", "ci_low", "ci_high", "n", "n_real"]
SET_COLUMNS = ["source", "set", "d_train", "d_test", "copy"]
HISTOGRAM = "novelty_histogram.png"
SET_FILE = "novelty_sets.csv"
NAN = float("nan")


@dataclass(frozen=True)
class SectionSettings:
    """k: the k-NN figures' neighbours. kid_subsets / kid_subset_size: KID's subsets.
    n_boot: bootstrap resamples.
    seed: the run's seed."""

    k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    n_boot: int = 1000
    seed: int = 0

    def validate(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1 neighbours, got {self.k}")
        if self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise ValueError(
                f"kid_subsets must be >= 1 and kid_subset_size >= 2, got {self.kid_subsets}, "
                f"{self.kid_subset_size}"
            )
        if self.n_boot < 10:
            raise ValueError(f"n_boot must be >= 10 resamples, got {self.n_boot}")


@dataclass
class SectionInputs:
    """Image embeddings (sets, n, D) of each side; ``free`` / ``uniform`` None for a model
    without ``sample``, ``train`` None when the training split is not on disk (``train_note``
    says why). ``feature``: the feature space, in words, for the report."""

    test: np.ndarray
    free: np.ndarray | None
    uniform: np.ndarray | None
    train: np.ndarray | None
    feature: str
    train_note: str = ""
    # Inception features (images, 2048) per side ("test", "free", "uniform") with --fid-weights.
    inception: dict[str, np.ndarray] | None = None

    def validate(self) -> None:
        dims = set()
        for name in ("test", "free", "uniform", "train"):
            e = getattr(self, name)
            if e is None:
                continue
            if not isinstance(e, np.ndarray) or e.ndim != 3 or min(e.shape) < 1:
                shape = getattr(e, "shape", type(e).__name__)
                raise ValueError(f"{name} embeddings must be an array (sets, n, D), got {shape}")
            dims.add(e.shape[2])
        if len(dims) > 1:
            raise ValueError(f"the embeddings' sizes D differ between sides: {sorted(dims)}")
        if self.test is None:
            raise ValueError("the section needs the real test sets")


def open_training_sets(
    benchmark: str, data, split: str, set_size: int, resolution: int, seed: int, cache_dir,
    categories=None, crop: str | None = None, progress: bool = False,
):  # fmt: skip
    """The training split's sets as the section reads them: the benchmark's loader
    (:class:`~sdn.data.shapenet.ShapeNetViews` for "shapenet", categories; else
    :class:`~sdn.data.vggface2.VGGFace2Sets`, crop) with ``set_size`` images per set in its
    fixed choice (``random_views=False``, ``seed``). ``ref:copy-train`` samples the same sets.
    Raises the loader's ValueError when the split cannot be read."""
    from sdn.data.shapenet import ShapeNetViews
    from sdn.data.vggface2 import VGGFace2Sets

    common = dict(set_size=set_size, resolution=resolution, random_views=False, seed=int(seed),
                  cache_dir=cache_dir, progress=progress)  # fmt: skip
    if benchmark == "shapenet":
        return ShapeNetViews(data, split, categories=categories, **common)
    return VGGFace2Sets(data, split, crop=crop, **common)


def training_sets_or_note(benchmark: str, data, split: str, *args, **kwargs):
    """(:func:`open_training_sets`, "") or (None, why) when the split cannot be read."""
    try:
        return open_training_sets(benchmark, data, split, *args, **kwargs), ""
    except ValueError as e:
        return None, f"split {split!r} of {data} cannot be read ({e})."


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows (N, D) scaled to unit L2 norm (ValueError for a zero row)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("an image embedding is the zero vector: it has no direction")
    return x / norms


def _canonical(x: np.ndarray) -> np.ndarray:
    """The rows of x (N, D) in lexicographic order: a function of the multiset of rows."""
    return x[np.lexsort(x.T[::-1])]


def _bootstrap(values: np.ndarray, stat, n_boot: int, seed: int, name: str) -> tuple[float, float]:
    """The 95% percentile interval of ``stat`` over resamples of ``values`` (N,), sorted first
    (so the interval depends on their multiset only); NaN bounds when N < MIN_PER_STRATUM."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    if len(values) < MIN_PER_STRATUM:
        return NAN, NAN
    rng = np.random.default_rng(set_seed(seed, STREAM_DISTRIBUTION, name))
    draws = values[rng.integers(0, len(values), size=(n_boot, len(values)))]
    lo, hi = np.percentile(stat(draws, axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def novelty_per_set(sets: np.ndarray, train: np.ndarray | None, test: np.ndarray, own_test: bool) -> dict:
    """Per set of ``sets`` (N, D) (set embeddings): the distance to the nearest training set
    (T, D) (NaN without ``train``), to the nearest test set (S, D) (``own_test``: ``sets`` are
    the test sets themselves, so the nearest *other* one) and the copy-test verdict."""
    if own_test:
        d_test = kth_neighbour_radius(test, 1) if len(test) > 1 else np.full(len(test), NAN)
    else:
        d_test = nearest(sets, test)[1]
    if train is None:
        nan = np.full(len(sets), NAN)
        return {"d_train": nan, "d_test": d_test, "copy": np.zeros(len(sets), dtype=bool)}
    idx, d_train = nearest(sets, train)
    own = kth_neighbour_radius(train, 1)  # (T,): each training set's nearest training neighbour
    return {"d_train": d_train, "d_test": d_test, "copy": d_train < own[idx]}


def _novelty_rows(source: str, per_set: dict, n: int, has_train: bool, s: SectionSettings) -> list[dict]:
    rows = []
    metrics = [("d_test_median", per_set["d_test"], np.median)]
    if has_train:
        copies = per_set["copy"].astype(np.float64)
        metrics = [
            ("d_train_median", per_set["d_train"], np.median),
            *metrics,
            ("copy_fraction", copies, np.mean),
            ("authenticity", 1.0 - copies, np.mean),
        ]
    for metric, values, stat in metrics:
        lo, hi = _bootstrap(values, stat, s.n_boot, s.seed, f"{source}|{metric}")
        rows.append({"source": source, "metric": metric, "set_size": n, "mean": float(stat(values)),
                     "ci_low": lo, "ci_high": hi, "n": len(values)})  # fmt: skip
    return rows


def knn_rows(source: str, level: str, real: np.ndarray, fake: np.ndarray, s: SectionSettings) -> list[dict]:
    """Precision, recall, density and coverage (:func:`evaluation.coverage.prdc`'s
    definitions) of fake (M, D) against real (N, D), each with the conditional bootstrap
    interval of the module docstring; rows of realism.csv. A side with <= k points gets NaN
    (no k-th neighbour)."""
    k = s.k
    if len(real) <= k or len(fake) <= k:
        return [
            {"source": source, "level": level, "metric": m, "k": k, "mean": NAN, "ci_low": NAN,
             "ci_high": NAN, "n": len(fake), "n_real": len(real)}
            for m in ("precision", "recall", "density", "coverage")
        ]  # fmt: skip
    rows = []
    for metric, values in prdc_per_point(real, fake, k).items():  # the values each figure averages
        lo, hi = _bootstrap(values, np.mean, s.n_boot, s.seed, f"{source}|{level}|{metric}")
        rows.append({"source": source, "level": level, "metric": metric, "k": k, "mean": float(values.mean()),
                     "ci_low": lo, "ci_high": hi, "n": len(fake), "n_real": len(real)})  # fmt: skip
    return rows


def _realism_of(
    source: str, level: str, fake: np.ndarray, real: np.ndarray, s: SectionSettings
) -> list[dict]:
    """The Fréchet distance and KID rows of features fake (M, D) against real (N, D), rows in
    canonical order. No interval for either (module docstring); KID's standard deviation over
    subsets is NaN when a subset holds every row (the subsets are then all the same)."""
    fake, real = _canonical(fake), _canonical(real)
    base = {"source": source, "level": level, "k": 0, "ci_low": NAN, "ci_high": NAN,
            "n": len(fake), "n_real": len(real)}  # fmt: skip
    kid_mean, kid_std = kid(fake, real, s.kid_subsets, s.kid_subset_size, rng=s.seed)
    if s.kid_subset_size >= min(len(fake), len(real)):
        kid_std = NAN
    return [
        {**base, "metric": "frechet", "mean": frechet_distance(fake, real)},
        {**base, "metric": "kid", "mean": kid_mean},
        {**base, "metric": "kid_std", "mean": kid_std},
    ]


def _realism_rows(source: str, fake: np.ndarray, test: np.ndarray, s: SectionSettings) -> list[dict]:
    """realism.csv's rows of one source: fake and test are image embeddings (sets, n, D)."""
    fake_img = _canonical(unit_rows(fake.reshape(-1, fake.shape[-1])))
    real_img = _canonical(unit_rows(test.reshape(-1, test.shape[-1])))
    rows = _realism_of(source, "image", fake_img, real_img, s)
    rows += knn_rows(source, "image", real_img, fake_img, s)
    rows += knn_rows(source, "set", set_embeddings(test), set_embeddings(fake), s)
    return rows


@dataclass
class Section:
    novelty: pd.DataFrame
    realism: pd.DataFrame
    per_set: pd.DataFrame
    inputs: SectionInputs
    settings: SectionSettings


def compute_section(inputs: SectionInputs, settings: SectionSettings) -> Section:
    """Every figure of the section (module docstring) from the embeddings."""
    inputs.validate()
    settings.validate()
    test = set_embeddings(inputs.test)
    if inputs.train is not None and len(inputs.train) < 2:
        inputs = replace(
            inputs,
            train=None,
            train_note=f"{len(inputs.train)} training set: the copy test needs at least 2.",
        )
    train = set_embeddings(inputs.train) if inputs.train is not None else None
    novelty, realism, per_set = [], [], []
    sources = [(REAL_TEST, inputs.test)]
    sources += [(name, e) for name, e in ((FREE, inputs.free), (UNIFORM, inputs.uniform)) if e is not None]
    for source, emb in sources:
        sets = set_embeddings(emb)
        values = novelty_per_set(sets, train, test, own_test=source == REAL_TEST)
        novelty += _novelty_rows(source, values, emb.shape[1], train is not None, settings)
        per_set.append(pd.DataFrame({"source": source, "set": np.arange(len(sets)), **values}))
        if source != REAL_TEST:
            realism += _realism_rows(source, emb, inputs.test, settings)
            if inputs.inception is not None:
                key = "free" if source == FREE else "uniform"
                realism += _realism_of(
                    source, "inception", inputs.inception[key], inputs.inception["test"], settings
                )
    return Section(
        pd.DataFrame(novelty, columns=NOVELTY_COLUMNS),
        pd.DataFrame(realism, columns=REALISM_COLUMNS),
        pd.concat(per_set, ignore_index=True)[SET_COLUMNS],
        inputs,
        settings,
    )


def section_entry(inputs: SectionInputs, train_split: str, train_fingerprint: str | None, fid=None) -> dict:
    """The manifest's ``distribution`` entry: what the section scored (``fid``: the
    :class:`evaluation.inception.InceptionFeatures` used, if any)."""
    return {
        "inception_sha256": None if fid is None else sha256_file(fid.path),
        "feature": inputs.feature,
        "test_sets": len(inputs.test),
        "free_sets_per_prior": None if inputs.free is None else len(inputs.free),
        "train_split": train_split,
        "train_sets": None if inputs.train is None else len(inputs.train),
        "train_fingerprint": train_fingerprint,
        "train_note": inputs.train_note,
        "seeds": "free set s: set_seed(seed, STREAM_LEARNED / STREAM_UNIFORM, s); bootstrap "
        f"set_seed(seed, {STREAM_DISTRIBUTION}, source|metric); KID subsets default_rng(seed)",
    }


def _cell(r) -> str:
    return f"{r['mean']:.3f} {format_interval(r['ci_low'], r['ci_high'])}"


def section_markdown(section: Section) -> list[str]:
    """The report's section: novelty and realism tables with their intervals."""
    inp, s = section.inputs, section.settings
    lines = [
        "",
        "## Novelty, coverage and realism of free samples",
        "",
        f"Feature space: {inp.feature}. Set embedding: the mean of the set's unit image embeddings, "
        "renormalised; distances between unit vectors, sqrt(2 - 2 cos). "
        f"{len(inp.test)} real test sets"
        + (f", {len(inp.train)} real training sets" if inp.train is not None else "")
        + (f", {len(inp.free)} free sets per prior" if inp.free is not None else "")
        + f". Intervals: 95% bootstrap ({s.n_boot} resamples; benchmarks/distribution.py).",
        "",
    ]
    if inp.train is None:
        lines += [
            f"No training sets: {inp.train_note} Memorisation (distance to training sets, copy test) "
            "is not scored.",
            "",
        ]
    if inp.free is None:
        lines += ["The model has no `sample`: no free sets, so no novelty or realism of samples.", ""]
    nov = section.novelty
    sources = list(dict.fromkeys(nov.source))
    metrics = list(dict.fromkeys(nov.metric))
    lines += ["| source | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for src in sources:
        g = nov[nov.source == src].set_index("metric")
        lines.append(f"| {src} | " + " | ".join(_cell(g.loc[m]) for m in metrics) + " |")
    lines += [
        "",
        "d_train / d_test: median distance to the nearest training / test set (for real test sets, the "
        "nearest other one). copy_fraction: sets closer to their nearest training set than that set's own "
        "nearest training neighbour (the copy test): a memorising model scores 1, held-out real sets give "
        "the level of novel sets (the `real test sets` row). authenticity = 1 - copy_fraction.",
        "",
    ]
    real = section.realism
    if len(real):
        lines += [
            f"Realism against the real test sets (k = {s.k} neighbours for the k-NN figures):",
            "",
            "| source | level | frechet | kid (std) | precision | recall | density | coverage |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for (src, level), g in real.groupby(["source", "level"], sort=False):
            g = g.set_index("metric")
            fd = f"{g.loc['frechet', 'mean']:.3g}" if "frechet" in g.index else "-"
            kd = "-"
            if "kid" in g.index:
                std = g.loc["kid_std", "mean"]
                kd = f"{g.loc['kid', 'mean']:.3g} ({f'{std:.2g}' if np.isfinite(std) else 'all rows'})"
            knn = " | ".join(
                _cell(g.loc[m]) if m in g.index else "-"
                for m in ("precision", "recall", "density", "coverage")
            )
            lines.append(f"| {src} | {level} | {fd} | {kd} | {knn} |")
        n_fake, n_real = int(real.n.iloc[0]), int(real.n_real.iloc[0])
        lines += [
            "",
            f"frechet: the Fréchet distance of the unit image embeddings ({n_fake} generated vs {n_real} "
            "real images), a plug-in estimate biased upwards at finite N: compare only at equal N and "
            'feature space; no interval. kid: unbiased MMD², cubic kernel, mean (std) over subsets ("all '
            'rows": one subset holds every image, so there is no spread); no interval. The k-NN intervals '
            "hold the manifolds fixed (benchmarks/distribution.py).",
            "",
        ]
    return lines


def append_section(markdown: str, section_lines: list[str]) -> str:
    """A report's markdown with the section's lines (none: unchanged) after a blank line."""
    if not section_lines:
        return markdown
    return markdown.rstrip("\n") + "\n" + "\n".join(section_lines).rstrip("\n") + "\n"


def plot_histogram(per_set: pd.DataFrame, out: Path, memorising: pd.DataFrame | None = None) -> Path | None:
    """novelty_histogram.png: the distance of each set to its nearest training set, for free
    samples and real test sets (``per_set``: a report's novelty_sets.csv) and the memorising
    floor (``memorising``: ``ref:copy-train``'s, when the ladder ran). None without training
    sets."""
    if not np.isfinite(per_set.d_train).any():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(REAL_TEST, per_set[per_set.source == REAL_TEST].d_train)]
    if (per_set.source == FREE).any():
        groups.append((FREE, per_set[per_set.source == FREE].d_train))
    if memorising is not None and (memorising.source == FREE).any():
        m = memorising[memorising.source == FREE].d_train
        groups.append(("memorising reference (ref:copy-train)", m))
    values = np.concatenate([np.asarray(v, np.float64) for _, v in groups])
    bins = np.linspace(0.0, max(float(np.nanmax(values)), 1e-6) * 1.05, 31)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, v in groups:
        ax.hist(np.asarray(v), bins=bins, alpha=0.5, label=f"{label} (n={len(v)})")
    ax.set_xlabel("distance to the nearest training set (set embeddings)")
    ax.set_ylabel("sets")
    ax.legend(fontsize=8)
    return save_plot(fig, out / HISTOGRAM)


def write_section(section: Section, out: Path) -> list[Path]:
    """novelty.csv, realism.csv, novelty_sets.csv and the histogram into the report folder."""
    paths = []
    for name, frame in (("novelty.csv", section.novelty), ("realism.csv", section.realism),
                        (SET_FILE, section.per_set)):  # fmt: skip
        atomic_write_text(out / name, frame.to_csv(index=False))
        paths.append(out / name)
    figure = plot_histogram(section.per_set, out)
    return paths + ([figure] if figure else [])
