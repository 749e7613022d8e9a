"""The faces benchmark: Figure 8(a), 8(b) and 8(c) with numbers (DESIGN.md §5).

For each test identity i (``max_identities`` of them, spread evenly over the split, or
all), the loader's fixed seeded choice gives m = max(set_size, max(context_sizes))
images; the real set R_i is the first ``set_size`` of them. Images are loaded at the
SDN's resolution (the resolution the SDN sees and generates), then each embedder
resizes them to its own input.

- 8(a) ``real`` (R_i), ``recon`` (R̂_i: the SDN encodes R_i and generates ``set_size``
  images), ``recon and real`` (R̂_i against R_i), ``free samples`` / ``uniform samples``
  (``num_free_sets`` sets of ``set_size`` images from the learned / uniform prior).
- 8(b) ``recon`` and ``recon and real`` where the SDN encodes the first k images of the
  identity (k in ``context_sizes``) and generates ``set_size``; ``recon and real``
  compares them with R_i.
- 8(c) ``real`` after label noise p (``noise_levels``): in each R_i exactly
  round(p·set_size) images are replaced by images of other test identities taken from
  outside every evaluated set (so no image appears twice).

Pairs, ROC, AUC, TPR at FPR, EER, identity-bootstrap CIs and the equivalent label noise
come from :mod:`evaluation.verification`. The equivalent label noise of a curve at FPR f
is the p at which the noisy-real TPR at f equals the curve's; its interval maps the
curve's TPR interval through the same inversion (the noisy-real curves' own sampling
noise is not propagated: say so when reading it). Every random draw is seeded by
``seed``: a rerun writes the same numbers.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from evaluation.embedders import Embedder, load_embedder
from evaluation.verification import (
    FPR_TARGETS,
    Pairs,
    contaminate,
    cross_set_pairs,
    equivalent_label_noise,
    fpr_key,
    roc_curve,
    summarize,
    within_set_pairs,
)
from sdn.data.vggface2 import CROPS, VGGFace2Sets
from sdn.io import atomic_write_text
from sdn.model import SDN

from .figures import save_plot, save_rows, strip, white
from .manifest import finish_report, sha256_file

CURVES = ("real", "recon", "recon and real", "free samples", "uniform samples")
GENERATION_BATCH = 32  # sets generated per forward pass


@dataclass
class FacesBenchConfig:
    """split / set_size: the real sets R_i. context_sizes: Figure 8(b)'s input set sizes.
    noise_levels: Figure 8(c)'s label-noise levels (must include 0). num_free_sets: sets
    sampled from each prior (None: as many as identities). max_identities: identities
    scored, spread evenly over the split (None: all). neg_per_pos: sampled negative pairs
    per positive. noise_fprs: the FPRs at which equivalent label noise is reported (a
    subset of fpr_targets). crop: the loader's crop."""

    split: str = "test"
    set_size: int = 8
    context_sizes: tuple = (1, 4, 8, 16)
    noise_levels: tuple = (0.0, 0.1, 0.25, 0.5)
    num_free_sets: int | None = None
    max_identities: int | None = None
    neg_per_pos: float = 10.0
    fpr_targets: tuple = FPR_TARGETS
    noise_fprs: tuple = (1e-2, 1e-1)
    bootstrap: int = 1000
    crop: str = "loose_bb"
    seed: int = 0

    def validate(self) -> None:
        if self.set_size < 2:
            raise ValueError(f"set_size must be >= 2 (positive pairs live inside a set), got {self.set_size}")
        if not self.context_sizes or min(self.context_sizes) < 1:
            raise ValueError(f"context_sizes must be set sizes >= 1, got {self.context_sizes}")
        levels = sorted(self.noise_levels)
        if len(levels) < 2 or levels[0] != 0 or len(set(levels)) != len(levels) or levels[-1] > 1:
            raise ValueError(
                f"noise_levels must be >= 2 distinct values in [0, 1] including 0, got {self.noise_levels}"
            )
        if self.num_free_sets is not None and self.num_free_sets < 2:
            raise ValueError(
                f"num_free_sets must be >= 2 (negatives need two sets), got {self.num_free_sets}"
            )
        if self.max_identities is not None and self.max_identities < 2:
            raise ValueError(
                f"max_identities must be >= 2 (negatives need two identities), got {self.max_identities}"
            )
        if not set(self.noise_fprs) <= set(self.fpr_targets):
            raise ValueError(f"noise_fprs {self.noise_fprs} must be among fpr_targets {self.fpr_targets}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        if self.bootstrap < 10:
            raise ValueError(f"bootstrap must be >= 10 resamples, got {self.bootstrap}")

    @property
    def images_per_identity(self) -> int:
        return max(self.set_size, max(self.context_sizes))


# ----------------------------------------------------------------------------------
# Images and embeddings
# ----------------------------------------------------------------------------------


def open_identities(data, cfg: FacesBenchConfig, resolution: int, cache_dir, progress: bool):
    """The split with a fixed choice of ``cfg.images_per_identity`` images per identity,
    and the identities scored (indices into it)."""
    ds = VGGFace2Sets(
        data,
        cfg.split,
        set_size=cfg.images_per_identity,
        resolution=resolution,
        crop=cfg.crop,
        random_views=False,
        seed=cfg.seed,
        cache_dir=cache_dir,
        progress=progress,
    )
    if len(ds) < 2:
        raise ValueError(
            f"{data}: the faces benchmark needs at least two identities with >= "
            f"{cfg.images_per_identity} images in split {cfg.split!r}, found {len(ds)}"
        )
    count = len(ds) if cfg.max_identities is None else min(cfg.max_identities, len(ds))
    return ds, [int(i) for i in np.linspace(0, len(ds) - 1, count).round()]


def _batched(fn, items: torch.Tensor, progress: bool, desc: str) -> torch.Tensor:
    """Apply ``fn`` to consecutive chunks of ``GENERATION_BATCH`` rows of ``items`` (B, ...)
    and concatenate the results along dim 0."""
    chunks = range(0, len(items), GENERATION_BATCH)
    return torch.cat(
        [fn(items[s : s + GENERATION_BATCH]) for s in tqdm(chunks, desc=desc, disable=not progress)]
    )


def _embed_sets(embedder: Embedder, sets: torch.Tensor) -> np.ndarray:
    """sets (B, n, 3, H, W) in [0, 1] -> embeddings (B, n, D)."""
    b, n = sets.shape[:2]
    return embedder.embed(sets.flatten(0, 1)).reshape(b, n, -1).numpy()  # (B*n, D) -> (B, n, D)


def label_noise_pool(ds: VGGFace2Sets, picks: list[int]) -> tuple[torch.Tensor, np.ndarray]:
    """The images of the scored identities outside their evaluated choice (K, 3, H, W) and
    their identity labels (K,): the replacements of Figure 8(c)."""
    rows, labels = [], []
    for i in picks:
        chosen = set(ds.view_choice(i).tolist())
        own = [r for j, r in enumerate(ds.identity_rows(i)) if j not in chosen]
        rows += own
        labels += [i] * len(own)
    if not rows:
        raise ValueError(
            "label noise needs test images outside the evaluated sets, but every identity has exactly "
            f"{ds.set_size} images; lower --set-size/--context-sizes or use identities with more images"
        )
    return ds.flat_images(rows), np.asarray(labels)


# ----------------------------------------------------------------------------------
# Curves
# ----------------------------------------------------------------------------------


@dataclass
class Curve:
    """One ROC curve of the report: its condition (curve name, context size or None,
    noise level) and its scored pairs."""

    curve: str
    context_size: int | None
    noise: float
    pairs: Pairs


def measure_curves(
    sdn: SDN, embedder: Embedder, ds: VGGFace2Sets, picks: list[int], cfg: FacesBenchConfig, progress: bool
) -> list[Curve]:
    """Generate, embed and pair every set of Figure 8(a)-(c)."""
    n, seed = cfg.set_size, cfg.seed
    images = torch.stack([ds[i]["images"] for i in picks])  # (I, m, 3, H, W)
    real = _embed_sets(embedder, images[:, :n])  # (I, n, D)
    curves = [Curve("real", None, 0.0, within_set_pairs(list(real), seed, cfg.neg_per_pos))]
    for k in sorted(set(cfg.context_sizes) | {n}):
        recon = _batched(
            lambda x, k=k: sdn.reconstruct(x[:, :k], n, seed=seed + k), images, progress, f"recon k={k}"
        )  # (I, n, 3, H, W)
        emb = _embed_sets(embedder, recon)
        curves.append(Curve("recon", k, 0.0, within_set_pairs(list(emb), seed, cfg.neg_per_pos)))
        curves.append(
            Curve("recon and real", k, 0.0, cross_set_pairs(list(emb), list(real), seed, cfg.neg_per_pos))
        )
    num_free = cfg.num_free_sets or len(picks)
    for prior in ("learned", "uniform"):
        sets = sdn.sample(num_free, n, prior, seed=seed)  # (num_free, n, 3, H, W)
        name = "free samples" if prior == "learned" else "uniform samples"
        curves.append(
            Curve(name, None, 0.0, within_set_pairs(list(_embed_sets(embedder, sets)), seed, cfg.neg_per_pos))
        )
    pool_images, pool_labels = label_noise_pool(ds, picks)
    pool = embedder.embed(pool_images).numpy()
    for p in sorted(cfg.noise_levels):
        if p == 0:
            continue
        noisy = contaminate(list(real), p, pool, pool_labels, labels=np.asarray(picks), rng=seed)
        curves.append(Curve("real", None, float(p), within_set_pairs(noisy.sets, seed, cfg.neg_per_pos)))
    return curves


def summary_rows(curves: list[Curve], cfg: FacesBenchConfig) -> pd.DataFrame:
    """Tidy summary, one row per (curve, context_size, noise, metric): mean (the value on
    all pairs), ci_low, ci_high (identity bootstrap, 95%) and n (identities). Metrics:
    auc, tpr@<fpr>, eer (fractions), n_pos, n_neg (pair counts, CI = value), and
    equivalent_label_noise@<fpr> (a fraction of each set, clipped to the measured noise
    levels; the exact bound is in equivalent_noise.csv)."""
    rows, tpr_ci = [], {}
    for c in curves:
        s = summarize(
            c.pairs.scores,
            c.pairs.labels,
            c.pairs.identity,
            ci=True,
            n_boot=cfg.bootstrap,
            rng=cfg.seed,
            fpr_targets=cfg.fpr_targets,
        )
        cond = {"curve": c.curve, "context_size": c.context_size, "noise": c.noise}
        n_ids = len(np.unique(c.pairs.identity))
        values = s.as_dict()
        for metric in ["auc", *(fpr_key(t) for t in cfg.fpr_targets), "eer"]:
            lo, hi = s.ci[metric]
            rows.append(
                {**cond, "metric": metric, "mean": values[metric], "ci_low": lo, "ci_high": hi, "n": n_ids}
            )
        for metric in ("n_pos", "n_neg"):
            rows.append(
                {
                    **cond,
                    "metric": metric,
                    "mean": values[metric],
                    "ci_low": values[metric],
                    "ci_high": values[metric],
                    "n": n_ids,
                }
            )
        tpr_ci[(c.curve, c.context_size, c.noise)] = (values, s.ci, n_ids)
    levels = sorted(cfg.noise_levels)
    for f in cfg.noise_fprs:
        key = fpr_key(f)
        noisy = [tpr_ci[("real", None, float(p))][0][key] for p in levels]
        for (curve, context, noise), (values, ci, n_ids) in tpr_ci.items():
            if curve == "real":
                continue
            eq = equivalent_label_noise(levels, noisy, values[key])
            lo = equivalent_label_noise(levels, noisy, ci[key][1]).value  # more TPR -> less noise
            hi = equivalent_label_noise(levels, noisy, ci[key][0]).value
            rows.append(
                {
                    "curve": curve,
                    "context_size": context,
                    "noise": noise,
                    "metric": f"equivalent_label_noise@{f:g}",
                    "mean": eq.value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": n_ids,
                    "text": eq.format(),
                }
            )
    return pd.DataFrame(rows)


def equivalent_noise_table(summary: pd.DataFrame) -> pd.DataFrame:
    """equivalent_noise.csv: per curve and FPR, the equivalent label noise ``value`` with
    its interval and ``text`` ("0.23", or "< 0" / "> 0.5" outside the measured levels).
    Not a tidy summary (no ``mean`` column): the same numbers are rows of summary.csv."""
    eq = summary[summary.metric.str.startswith("equivalent_label_noise")].copy()
    eq.insert(3, "fpr", eq.metric.str.split("@").str[1].astype(float))
    eq = eq.rename(columns={"mean": "value"}).drop(columns=["metric", "n"])
    return eq[["curve", "context_size", "noise", "fpr", "value", "ci_low", "ci_high", "text"]]


def curve_points(curves: list[Curve]) -> pd.DataFrame:
    """curves.csv: every ROC point (fpr, tpr, threshold) of every curve."""
    frames = []
    for c in curves:
        fpr, tpr, thr = roc_curve(c.pairs.scores, c.pairs.labels)
        frames.append(
            pd.DataFrame(
                {
                    "curve": c.curve,
                    "context_size": c.context_size,
                    "noise": c.noise,
                    "fpr": fpr,
                    "tpr": tpr,
                    "threshold": thr,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------


def _value(summary: pd.DataFrame, curve: str, metric: str, context=None, noise: float = 0.0) -> pd.Series:
    sel = (summary.curve == curve) & (summary.metric == metric) & (summary.noise == noise)
    sel &= summary.context_size.isna() if context is None else summary.context_size == context
    return summary[sel].iloc[0]


def _fmt(r) -> str:
    return f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _verdict(better: pd.Series, worse: pd.Series) -> str:
    """'yes' when ``better``'s interval lies above ``worse``'s, 'no' when below, else 'not separated'."""
    if better["ci_low"] > worse["ci_high"]:
        return "yes"
    if better["ci_high"] < worse["ci_low"]:
        return "no (the reverse holds)"
    return "not separated (CIs overlap)"


def summary_markdown(summary: pd.DataFrame, cfg: FacesBenchConfig, header: str) -> str:
    """summary.md: the Figure 8 numbers, and the paper's statements checked against them."""
    n = cfg.set_size
    lines = [header, "", "### Figure 8(a)", ""]
    stats = ["auc", *(fpr_key(t) for t in cfg.fpr_targets), "eer"]
    head = "| curve | " + " | ".join(stats) + " | pairs (+/-) |"
    rule = "|---|" + "---:|" * (len(stats) + 1)

    def row(label, curve, context=None, noise=0.0) -> str:
        cells = [_fmt(_value(summary, curve, m, context, noise)) for m in stats]
        pos = int(_value(summary, curve, "n_pos", context, noise)["mean"])
        neg = int(_value(summary, curve, "n_neg", context, noise)["mean"])
        return f"| {label} | " + " | ".join(cells) + f" | {pos} / {neg} |"

    lines += [head, rule]
    lines += [
        row("real", "real"),
        row(f"recon (context {n})", "recon", n),
        row(f"recon and real (context {n})", "recon and real", n),
        row("free samples", "free samples"),
        row("uniform samples", "uniform samples"),
        "",
    ]
    lines += ["### Figure 8(b): context size", "", head, rule]
    for k in sorted(cfg.context_sizes):
        lines += [
            row(f"recon, context {k}", "recon", k),
            row(f"recon and real, context {k}", "recon and real", k),
        ]
    lines += ["", "### Figure 8(c): real sets with label noise", "", head, rule]
    lines += [row(f"real, noise {p:g}", "real", None, float(p)) for p in sorted(cfg.noise_levels)]
    lines += [
        "",
        "### Equivalent label noise",
        "",
        "| curve | " + " | ".join(f"at FPR {f:g}" for f in cfg.noise_fprs) + " |",
        "|---|" + "---:|" * len(cfg.noise_fprs),
    ]
    eq = summary[summary.metric.str.startswith("equivalent_label_noise")]
    for (curve, context), g in eq.groupby(["curve", "context_size"], dropna=False, sort=False):
        label = curve if pd.isna(context) else f"{curve}, context {int(context)}"
        cells = [f"{r['text']} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" for r in g.to_dict("records")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### The paper's statements, checked",
        "",
        "| statement (paper, VGGFace2 at 128 px) | here | holds |",
        "|---|---|---|",
    ]
    real_auc, recon_auc = _value(summary, "real", "auc"), _value(summary, "recon", "auc", n)
    lines.append(
        f"| reconstructions are close to real sets (AUC) | recon {_fmt(recon_auc)} vs real {_fmt(real_auc)} "
        f"| gap {real_auc['mean'] - recon_auc['mean']:+.3f}; "
        f"{'CIs overlap' if _verdict(real_auc, recon_auc).startswith('not') else 'CIs separated'} |"
    )
    free, uni = _value(summary, "free samples", "auc"), _value(summary, "uniform samples", "auc")
    lines.append(
        f"| free samples beat uniform samples (AUC) | {_fmt(free)} vs {_fmt(uni)} | {_verdict(free, uni)} |"
    )
    ks = sorted(cfg.context_sizes)
    lo_k, hi_k = (_value(summary, "recon and real", "auc", k) for k in (ks[0], ks[-1]))
    lines.append(
        f"| more context brings recon closer to real (recon and real AUC, context {ks[0]} -> {ks[-1]}) "
        f"| {_fmt(lo_k)} -> {_fmt(hi_k)} | {_verdict(hi_k, lo_k)} |"
    )
    if 0.1 in cfg.noise_fprs:
        r = eq[
            (eq.curve == "recon") & (eq.context_size == n) & (eq.metric == "equivalent_label_noise@0.1")
        ].iloc[0]
        lines.append(
            f"| at FPR 10% reconstructions equal real sets with 25% label noise "
            f"| {r['text']} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | "
            f"{'yes' if r['ci_low'] <= 0.25 <= r['ci_high'] else 'no'} |"
        )
    lines += [
        "",
        "Values: the statistic on all pairs [95% CI, identities resampled]; TPR at FPR by linear",
        "interpolation of the ROC; pairs: positives / sampled negatives. Equivalent label noise: the",
        "noise p at which real sets' TPR equals the curve's (text '< 0' / '> max' outside the measured",
        "levels); its interval maps the curve's TPR interval only. The paper reports curves only;",
        "its statements are qualitative.",
    ]
    return "\n".join(lines) + "\n"


def plot_figure8(curves: pd.DataFrame, cfg: FacesBenchConfig, out: Path) -> list[Path]:
    """fig8a/b/c ROC plots (TPR against FPR), each with linear and log FPR axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = cfg.set_size

    def pick(curve, context=None, noise=0.0):
        sel = (curves.curve == curve) & (curves.noise == noise)
        sel &= curves.context_size.isna() if context is None else curves.context_size == context
        return curves[sel]

    panels = {
        "fig8a_roc": [
            ("real", pick("real")),
            ("recon", pick("recon", n)),
            ("recon and real", pick("recon and real", n)),
            ("free samples", pick("free samples")),
            ("uniform samples", pick("uniform samples")),
        ],
        "fig8b_context": [
            (f"{c}, context {k}", pick(c, k))
            for k in sorted(cfg.context_sizes)
            for c in ("recon", "recon and real")
        ],
        "fig8c_label_noise": [
            (f"real, noise {p:g}", pick("real", None, float(p))) for p in sorted(cfg.noise_levels)
        ]
        + [("recon", pick("recon", n))],
    }
    paths = []
    for name, series in panels.items():
        for log in (False, True):
            fig, ax = plt.subplots(figsize=(5, 4.5))
            for label, g in series:
                style = "--" if label == "recon" and name == "fig8c_label_noise" else "-"
                ax.plot(g.fpr, g.tpr, style, label=label, lw=1.5)
            if log:
                ax.set_xscale("log")
                ax.set_xlim(1e-4, 1)
            else:
                ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
            ax.set_xlabel("false positive rate" + (" (log)" if log else ""))
            ax.set_ylabel("true positive rate")
            ax.legend(fontsize=7, loc="lower right")
            ax.grid(alpha=0.3)
            paths.append(save_plot(fig, out / f"{name}{'_logfpr' if log else ''}.png"))
    return paths


def write_sample_figures(
    sdn: SDN, ds: VGGFace2Sets, picks: list[int], cfg: FacesBenchConfig, out: Path
) -> list[Path]:
    """Fig. 6/10 (input sets above their reconstructions) and Fig. 7/12 (sets from the
    learned prior above sets from the uniform prior), four sets each."""
    shown = [picks[int(j)] for j in np.linspace(0, len(picks) - 1, min(4, len(picks))).round()]
    n, res = cfg.set_size, sdn.resolution
    rows = []
    for i in shown:
        real = ds[i]["images"][:n]
        rows += [strip(real), strip(sdn.reconstruct(real[None], n, seed=cfg.seed + i)[0]), white(4, n * res)]
    paths = [save_rows(out / "fig6_input_vs_reconstruction.png", rows)]
    learned = sdn.sample(len(shown), n, "learned", seed=cfg.seed)
    uniform = sdn.sample(len(shown), n, "uniform", seed=cfg.seed)
    rows = [strip(s) for s in learned] + [white(8, n * res)] + [strip(s) for s in uniform]
    paths.append(save_rows(out / "fig7_learned_vs_uniform_prior.png", rows))
    return paths


def run_faces_benchmark(
    sdn_ckpt,
    data,
    out,
    cfg: FacesBenchConfig,
    embedder: str = "verifier",
    weights=None,
    cache_dir=None,
    progress: bool = True,
    command: str = "",
) -> dict:
    """Run the benchmark and write the report folder; returns the manifest.

    embedder: ``facenet-vggface2``, ``facenet-casia``, or a verifier checkpoint path
    (``weights``: the facenet weights file, default under $TORCH_HOME/checkpoints)."""
    cfg.validate()
    start = time.time()
    out = Path(out)
    sdn = SDN.from_checkpoint(sdn_ckpt)
    emb = load_embedder(embedder, weights)
    ds, picks = open_identities(data, cfg, sdn.resolution, cache_dir, progress)
    out.mkdir(parents=True, exist_ok=True)
    curves = measure_curves(sdn, emb, ds, picks, cfg, progress)
    summary = summary_rows(curves, cfg)
    points = curve_points(curves)
    atomic_write_text(out / "curves.csv", points.to_csv(index=False))
    atomic_write_text(out / "equivalent_noise.csv", equivalent_noise_table(summary).to_csv(index=False))
    atomic_write_text(out / "summary.csv", summary.drop(columns="text").to_csv(index=False))
    sdn_cfg = sdn.cfg
    header = (
        f"# Faces benchmark (Figure 8)\n\nSDN `{Path(sdn_ckpt).name}` (preset {sdn_cfg.preset}, recipe "
        f"{sdn_cfg.recipe}), embedder `{emb.name}` ({emb.resolution} px); data `{data}` split {cfg.split}, "
        f"{len(picks)} identities, sets of {cfg.set_size} at {sdn.resolution} px, crop {cfg.crop}."
    )
    atomic_write_text(out / "summary.md", summary_markdown(summary, cfg, header))
    plot_figure8(points, cfg, out)
    write_sample_figures(sdn, ds, picks, cfg, out)
    manifest = {
        "benchmark": "faces",
        "command": command or " ".join(sys.argv),
        "config": asdict(cfg),
        "sdn_checkpoint": {
            "path": str(sdn_ckpt),
            "sha256": sha256_file(sdn_ckpt),
            "preset": sdn_cfg.preset,
            "recipe": sdn_cfg.recipe,
            "aids": sdn_cfg.aids.active(),
        },
        "embedder": {
            "name": emb.name,
            "resolution": emb.resolution,
            "dim": emb.dim,
            "source": str(embedder),
            "weights": None if weights is None else str(weights),
        },
        "data": {
            "root": str(data),
            "split": cfg.split,
            "fingerprint": ds.fingerprint(),
            "identities": len(picks),
            "skipped_identities": ds.skipped_identities,
            "images_per_identity": cfg.images_per_identity,
        },
    }
    return finish_report(out, manifest, start)
