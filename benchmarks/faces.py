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
  outside every evaluated set (so no image appears twice); the applied fraction
  round(p·set_size)/set_size differs from the nominal p when p·set_size is not an integer
  (a warning and a line of summary.md say so).

Generated images depend on (seed, set identity, image slot) only (DESIGN.md §6), never on
the chunk size or the number of processes: the reconstructions of identity i use the set
seed ``set_seed(seed, STREAM_RECON, class_id_i)`` for every context size (common random
numbers across contexts), free sample s ``set_seed(seed, STREAM_LEARNED, s)`` and uniform
sample s ``set_seed(seed, STREAM_UNIFORM, s)``; the figures show the same sets. ``chunk``
(sets per forward pass) is an execution setting, recorded in the manifest under "execution".

Sharding. Under torchrun (``--nproc_per_node N``, gloo on CPU) rank r embeds the real sets
and generates and embeds the reconstructions of every N-th identity, every N-th free and
uniform sample set, and every N-th embedder batch of the label-noise replacements; rank 0
gathers the embeddings, puts them in the unsharded order, and alone forms the pairs,
bootstraps and writes the report (:func:`run_faces_benchmark`; the manifest's
machine.world_size is N). The label-noise draws are made from ``seed`` on every rank. Like
``chunk``, N changes only which sets share a forward pass and the threads per rank, hence
float noise only, which can still reorder near-tied pair scores. Measured on 24 identities
of the regression fixtures, one process against 2 ranks: bit-identical at chunk 32; at
chunk 5, pair scores up to 2.6e-7 apart, ROC points and summaries identical; at chunk 1,
2 threads against 1, one curve 2 ROC points shorter and an interval bound 2.8e-5 apart.
With the ranks' thread count and chunk 1 the reports are bit-identical
(tests/test_faces_sharding.py).

Pairs, ROC, AUC, TPR at FPR, EER, identity-bootstrap CIs and the equivalent label noise
come from :mod:`evaluation.verification`. The equivalent label noise of a curve at FPR f
is the applied fraction at which the noisy-real TPR at f equals the curve's; its interval
maps the curve's TPR interval through the same inversion (the noisy-real curves' own
sampling noise is not propagated: say so when reading it). An interval exists only with
at least ``MIN_PER_STRATUM`` identities (else NaN bounds, "n too small", no verdict). A
TPR at an FPR below 1/n_neg is under-resolved: marked † in summary.md and
``under_resolved`` in the CSVs. Every random draw is seeded by ``seed``: a rerun writes
the same numbers.

Memory. Images are loaded, generated and embedded chunk by chunk; only embeddings, pairs
and the label-noise replacements actually drawn are kept (their uint8 pixels come from the
loader's memory-mapped cache, one embedder batch at a time). Sharded, a rank keeps its
share of the embeddings; rank 0 then receives all of them (gather_object's pickled copies
transiently double them) and alone holds the pairs. With I identities, m images
per identity, n = set_size, R px, D-dim embeddings, c = ``chunk``, K = |context_sizes ∪
{n}|, F free sets per prior, L noise levels > 0, ρ = neg_per_pos, E the embedder's batch
size, the dominant allocations are, in bytes:

- transient, generation: one chunk of real images (c, m, 3, R, R) float32 12·c·m·R², one
  reconstructed chunk 12·c·n·R², one batch of replacements 12·E·R² (plus the networks'
  activations on them);
- kept: embeddings float32 4·D·n·(I·(1 + K) + 2F), replacements 4·D·I·round(p_max·n);
  pairs, 41 bytes each (score, label, four int64 indices), P = (1 + ρ)·I·n(n-1)/2 for each
  of the 3 + K + L within-set curves and P = (1 + ρ)·I·n² for each of the K cross curves;
- transient, pairing: the negative sample may permute all M negatives, 8·M with
  M ≈ (I·n)²/2 (within) or I(I-1)·n² (cross); the bootstrap: ~5 blocks of
  min(n_boot·P, 2·10⁶) float64, 80 MB.

Real test split (I = 500, R = 128, m = 16, n = 8, c = 32, D = 512, K = 4, F = 500, L = 3,
ρ = 10, E = 64): image chunk 100.7 MB, reconstructed chunk 50.3 MB, replacement batch
12.6 MB; embeddings 57.3 MB + 4.1 MB; pairs 10 x 6.3 MB (P = 154,000) + 4 x 14.4 MB
(P = 352,000) = 121 MB; negative sample up to 128 MB (M = 1.6·10⁷); bootstrap 80 MB. Peak
≈ 0.18 GB kept + 0.2 GB transient ≈ 0.4 GB above the process's models and libraries,
independent of the number of unused test images (before, the whole split's unused images,
~161,000, were decoded as float32 at 197 kB each, ~32 GB, besides 1.6 GB of all real images
and 0.8 GB of all reconstructions at once). Measured on the tiny test data (12 identities,
6 images of 32 px, chunk 32, CPU): the run raised the process's maximum RSS from 845 to
959 MiB (+114 MiB, mostly figures and torch workspaces), tracemalloc peak (Python and
numpy allocations) 28.6 MiB.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from evaluation.embedders import Embedder, load_embedder
from evaluation.inception import InceptionFeatures
from evaluation.intervals import MIN_PER_STRATUM, N_TOO_SMALL, format_interval, has_interval
from evaluation.verification import (
    FPR_TARGETS,
    Pairs,
    applied_fraction,
    apply_replacements,
    cross_set_pairs,
    draw_replacements,
    equivalent_label_noise,
    fpr_key,
    is_under_resolved,
    roc_curve,
    summarize,
    within_set_pairs,
)
from sdn.data.vggface2 import CROPS, VGGFace2Sets
from sdn.io import atomic_write_bytes, atomic_write_text, npz_bytes
from sdn.seeding import STREAM_LEARNED, STREAM_RECON, STREAM_UNIFORM, set_seeds
from sdn.training import Dist, init_distributed

from .distribution import (
    Section,
    SectionInputs,
    SectionSettings,
    append_section,
    compute_section,
    section_entry,
    section_markdown,
    training_sets_or_note,
    write_section,
)
from .figures import save_plot, save_rows, strip, white
from .ladder import ReferenceCache, calibrate, check_single_process, clear_calibration
from .manifest import finish_report, sha256_file, subset_digest
from .models import LoadedModel, ModelContext, load_model, wrap_model
from .models.contract import CheckedSetModel
from .models.folder import Request
from .sharding import gather_to_main, threads_per_rank

CURVES = ("real", "recon", "recon and real", "free samples", "uniform samples")
PAPER_EQUIVALENT_NOISE = 0.25  # the paper: at FPR 10% reconstructions equal real sets with 25% label noise


@dataclass
class FacesBenchConfig:
    """split / set_size: the real sets R_i. context_sizes: Figure 8(b)'s input set sizes.
    noise_levels: Figure 8(c)'s nominal label-noise levels p (must include 0; distinct
    applied fractions round(p·set_size)/set_size). num_free_sets: sets sampled from each
    prior (None: as many as identities). max_identities: identities scored, spread evenly
    over the split (None: all). neg_per_pos: sampled negative pairs per positive.
    noise_fprs: the FPRs at which equivalent label noise is reported (a subset of
    fpr_targets). crop: the loader's crop."""

    split: str = "test"
    set_size: int = 8
    context_sizes: tuple = (1, 4, 8, 16)
    noise_levels: tuple = (0.0, 0.1, 0.25, 0.5)
    num_free_sets: int | None = None
    max_identities: int | None = None
    # Class ids to score (their order in the split); empty: max_identities spread over the
    # split. The SDN's selection score names the train identities its run held out.
    identities: tuple = ()
    neg_per_pos: float = 10.0
    fpr_targets: tuple = FPR_TARGETS
    noise_fprs: tuple = (1e-2, 1e-1)
    bootstrap: int = 1000
    crop: str = "loose_bb"
    seed: int = 0
    # The novelty / realism section (benchmarks/distribution.py): on or off; the split the
    # model was trained on (its identities' sets are the memorisation test's training sets);
    # the k of the k-NN figures.
    distribution: bool = True
    train_split: str = "train"
    knn_k: int = 5
    # A local TorchScript Inception (inception-2015-12-05.pt) for the standard FID beside the
    # embedder-feature figures (evaluation/inception.py); None: none. Never downloaded.
    fid_weights: str | None = None

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
        seen: dict[float, float] = {}
        for p in levels:
            a = applied_fraction(p, self.set_size)
            if a in seen:
                raise ValueError(
                    f"noise levels {seen[a]:g} and {p:g} both replace {round(a * self.set_size)} of "
                    f"{self.set_size} images (applied fraction {a:g}): they measure the same curve; "
                    f"drop one or change set_size"
                )
            seen[a] = p
        if self.num_free_sets is not None and self.num_free_sets < 2:
            raise ValueError(
                f"num_free_sets must be >= 2 (negatives need two sets), got {self.num_free_sets}"
            )
        if self.identities and (len(set(self.identities)) < 2 or self.max_identities is not None):
            raise ValueError(
                f"identities must name >= 2 distinct class ids, without max_identities; got "
                f"{len(set(self.identities))} and max_identities={self.max_identities}"
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
        if self.distribution and self.train_split == self.split:
            raise ValueError(f"train_split must differ from the evaluated split {self.split!r}")

    @property
    def images_per_identity(self) -> int:
        return max(self.set_size, max(self.context_sizes))

    def inexact_noise_levels(self) -> list[float]:
        """The nominal levels p whose p·set_size is not an integer (applied fraction != p)."""
        return [
            p for p in sorted(self.noise_levels) if abs(p * self.set_size - round(p * self.set_size)) > 1e-9
        ]


# ----------------------------------------------------------------------------------
# Images and embeddings
# ----------------------------------------------------------------------------------


def open_identities(data, cfg: FacesBenchConfig, resolution: int, cache_dir, progress: bool):
    """The split with a fixed choice of ``cfg.images_per_identity`` images per identity,
    and the identities scored (indices into it). Raises ValueError when fewer than two
    identities qualify. Identities are named by their class id (the folder, ``n000001``),
    unique by construction: display names in identity_meta.csv may repeat."""
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
    if cfg.identities:
        wanted = set(cfg.identities)
        picks = [i for i, c in enumerate(ds.class_ids) if c in wanted]
        missing = sorted(wanted - {ds.class_ids[i] for i in picks})
        if missing:
            raise ValueError(
                f"{data}: {len(missing)} of the requested identities are not in split {cfg.split!r} with >= "
                f"{cfg.images_per_identity} images, e.g. {', '.join(missing[:3])}"
            )
        return ds, picks
    count = len(ds) if cfg.max_identities is None else min(cfg.max_identities, len(ds))
    return ds, [int(i) for i in np.linspace(0, len(ds) - 1, count).round()]


def _embed_sets(embedder: Embedder, sets: torch.Tensor) -> np.ndarray:
    """sets (B, n, 3, H, W) in [0, 1] -> embeddings (B, n, D), each set embedded on its own
    (one batch of its n images): an embedder's float results vary with the batch size
    (~1e-7), enough to flip near-tied pair scores, so a set's embeddings must not depend on
    which sets share its chunk."""
    return np.stack([embedder.embed(s).numpy() for s in sets])  # B x (n, D)


def _check_chunk(chunk: int) -> None:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer (sets per forward pass), got {chunk!r}")


def _in_chunks(
    fn: Callable[[Sequence[int]], np.ndarray], items: Sequence[int], chunk: int, progress: bool, desc: str
) -> dict[int, np.ndarray]:
    """``fn(items[s : s + chunk])`` over consecutive chunks of ``items`` (item indices; each
    result an array (len(chunk), ...)) as {item: its row (...)}."""
    rows: dict[int, np.ndarray] = {}
    for s in tqdm(range(0, len(items), chunk), desc=desc, disable=not progress):
        part = items[s : s + chunk]
        rows.update(zip(part, fn(part), strict=True))
    return rows


def label_noise_pool(ds: VGGFace2Sets, picks: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The candidate replacements of Figure 8(c), without loading them: the flat rows (K,)
    of the scored identities' images outside their evaluated choice and the identity
    labels (K,) (indices into ``ds``)."""
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
    return np.asarray(rows, dtype=np.int64), np.asarray(labels)


# ----------------------------------------------------------------------------------
# Curves
# ----------------------------------------------------------------------------------


@dataclass
class Curve:
    """One ROC curve of the report: its condition (curve name, context size or None,
    nominal noise level and the applied fraction round(p·n)/n) and its scored pairs."""

    curve: str
    context_size: int | None
    noise: float
    applied_noise: float
    pairs: Pairs


CALIBRATED_CURVES = ("recon", "recon and real")  # the curves benchmarks.ladder normalises
PAIRS_FILE = "pairs.npz"


def save_pairs(curves: list[Curve], path: Path) -> None:
    """``pairs.npz``: the scored pairs of the curves the calibration ladder normalises
    (``CALIBRATED_CURVES`` at every context size, no label noise), so that a model and its
    references, scored on the same pairs, can be bootstrapped together
    (:func:`benchmarks.ladder.faces_calibration`). Per curve ``<curve>|<k>``: ``|scores``
    (P,) float32 cosine scores, ``|labels`` (P,) bool, ``|identity`` (P, 2) int32 identity
    indices (positions in the evaluated identities). Written atomically."""
    arrays = {}
    for c in curves:
        if c.curve in CALIBRATED_CURVES and c.noise == 0:
            tag = f"{c.curve}|{c.context_size}"
            arrays[f"{tag}|scores"] = c.pairs.scores.astype(np.float32)
            arrays[f"{tag}|labels"] = c.pairs.labels
            arrays[f"{tag}|identity"] = c.pairs.identities.astype(np.int32)
    atomic_write_bytes(path, npz_bytes(arrays))


def load_pairs(path: Path) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The curves of a ``pairs.npz`` (:func:`save_pairs`): (curve, k) -> (scores (P,),
    labels (P,), identity (P, 2)); ValueError naming the file when it is missing."""
    if not path.is_file():
        raise ValueError(f"{path}: no scored pairs (a faces report written before {PAIRS_FILE} existed?)")
    with np.load(path, allow_pickle=False) as z:
        tags = sorted({name.rsplit("|", 1)[0] for name in z.files})
        return {
            (tag.rsplit("|", 1)[0], int(tag.rsplit("|", 1)[1])): tuple(
                z[f"{tag}|{part}"] for part in ("scores", "labels", "identity")
            )
            for tag in tags
        }


def faces_requests(
    ds: VGGFace2Sets, picks: list[int], cfg: FacesBenchConfig, can_sample: bool
) -> list[Request]:
    """Every request the benchmark makes of the set model (:func:`measure_curves` and
    :func:`write_sample_figures` ask exactly these, in batches): for each scored identity i
    and each k of context_sizes and set_size, ``set_size`` images from its first k images,
    seeded ``set_seed(seed, STREAM_RECON, class_id_i)``; and, for a model that can sample,
    ``num_free_sets`` (default: one per identity) sets of ``set_size`` per prior, set s seeded
    ``set_seed(seed, STREAM_LEARNED or STREAM_UNIFORM, s)``."""
    n = cfg.set_size
    seeds = set_seeds(cfg.seed, STREAM_RECON, [ds.class_ids[i] for i in picks])
    requests = []
    for i, seed in zip(picks, seeds, strict=True):
        images = ds[i]["images"]
        for k in sorted(set(cfg.context_sizes) | {n}):
            about = {"identity": ds.class_ids[i], "k": k}
            requests.append(Request("reconstruct", n, seed, images[:k], about=about))
    if can_sample:
        for prior, stream in (("learned", STREAM_LEARNED), ("uniform", STREAM_UNIFORM)):
            for s, seed in enumerate(set_seeds(cfg.seed, stream, range(cfg.num_free_sets or len(picks)))):
                requests.append(Request("sample", n, seed, prior=prior, about={"set": s}))
    return requests


def measure_curves(
    sdn: CheckedSetModel,
    embedder: Embedder,
    ds: VGGFace2Sets,
    picks: list[int],
    cfg: FacesBenchConfig,
    progress: bool,
    chunk: int = 32,
    d: Dist | None = None,
) -> tuple[list[Curve], dict[str, np.ndarray | None]]:
    """Generate, embed and pair every set of Figure 8(a)-(c), ``chunk`` sets per forward
    pass; the result does not depend on ``chunk`` (module docstring). Returns the curves and
    the embeddings (sets, n, D) the novelty / realism section reuses: ``test`` (the real sets
    R_i), ``free`` and ``uniform`` (the sample sets; None for a model without ``sample``).

    d: the torchrun process group (None: one process). Rank r of N embeds the real sets and
    generates and embeds the reconstructions of the identities ``picks[r::N]``, the free and
    uniform sample sets r, r + N, ..., and every N-th embedder batch of the label-noise
    replacements (the batches of one process); rank 0 gathers the embeddings, puts them in
    the unsharded order and alone forms the pairs. The label-noise draws are made on every
    rank from the seed alone. Returns the curves and embeddings on rank 0, ([], {}) on the
    other ranks."""
    _check_chunk(chunk)
    d = d or Dist()
    n, seed, count = cfg.set_size, cfg.seed, len(picks)
    recon_seeds = set_seeds(seed, STREAM_RECON, [ds.class_ids[i] for i in picks])
    ks = sorted(set(cfg.context_sizes) | {n})
    tag = f" (rank {d.rank})" if d.world > 1 else ""

    def identity_sets(js: Sequence[int]) -> np.ndarray:
        """Positions js (c,) in ``picks`` -> embeddings (c, 1 + K, n, D): R_i, then R̂_i per k of ks."""
        images = torch.stack([ds[picks[j]]["images"] for j in js])  # (c, m, 3, H, W)
        seeds = [recon_seeds[j] for j in js]
        sets = [_embed_sets(embedder, images[:, :n])]  # (c, n, D)
        for k in ks:
            recon = sdn.reconstruct(images[:, :k], n, seed=seeds)  # (c, n, 3, H, W)
            sets.append(_embed_sets(embedder, recon))
        return np.stack(sets, axis=1)

    my_identities = range(count)[d.rank :: d.world]  # positions in picks
    by_identity = gather_to_main(
        d, _in_chunks(identity_sets, my_identities, chunk, progress, f"real and reconstructions{tag}")
    )
    num_free = cfg.num_free_sets or count
    free_seeds = {
        prior: set_seeds(seed, stream, range(num_free))
        for prior, stream in (("learned", STREAM_LEARNED), ("uniform", STREAM_UNIFORM))
    }

    def sample_sets(ss: Sequence[int]) -> np.ndarray:
        """Set indices ss (c,) -> embeddings (c, 2, n, D): set s of the learned, then of the uniform prior."""
        sets = [
            _embed_sets(embedder, sdn.sample(len(ss), n, prior, seed=[seeds[s] for s in ss]))
            for prior, seeds in free_seeds.items()
        ]
        return np.stack(sets, axis=1)

    can_sample = hasattr(sdn, "sample")  # a model without sample gets no free / uniform curves
    my_samples = range(num_free if can_sample else 0)[d.rank :: d.world]
    by_sample = gather_to_main(
        d, _in_chunks(sample_sets, my_samples, chunk, progress, f"free and uniform samples{tag}")
    )
    pool_rows, pool_labels = label_noise_pool(ds, picks)
    labels = np.asarray(picks)
    levels = [float(p) for p in sorted(cfg.noise_levels) if p > 0]
    draws = {p: draw_replacements([n] * count, p, pool_labels, labels, rng=seed) for p in levels}
    needed = np.unique(np.concatenate([r.drawn_rows for r in draws.values()]))  # (U,) pool indices
    # Replacements are embedded one embedder batch at a time, whatever chunk is. This rank takes
    # every N-th batch whole, so its rows cut into batches again are the batches of one process.
    size, total = embedder.batch_size, len(needed)
    my_rows = [u for b in range(0, total, size)[d.rank :: d.world] for u in range(b, min(b + size, total))]
    by_replacement = gather_to_main(
        d,
        _in_chunks(
            lambda us: embedder.embed(ds.flat_images(pool_rows[needed[us]])).numpy(),  # (len(us), D)
            my_rows,
            size,
            progress,
            f"label-noise replacements{tag}",
        ),
    )
    if by_identity is None or by_sample is None or by_replacement is None:
        return [], {}  # not rank 0
    sets = np.stack([by_identity[j] for j in range(count)])  # (I, 1 + K, n, D), the order of picks

    pool = np.stack([by_replacement[u] for u in range(total)])  # (U, D)
    real = sets[:, 0]  # (I, n, D)
    curves = [Curve("real", None, 0.0, 0.0, within_set_pairs(list(real), seed, cfg.neg_per_pos))]
    for j, k in enumerate(ks):
        emb = sets[:, 1 + j]  # (I, n, D)
        curves.append(Curve("recon", k, 0.0, 0.0, within_set_pairs(list(emb), seed, cfg.neg_per_pos)))
        curves.append(
            Curve(
                "recon and real", k, 0.0, 0.0, cross_set_pairs(list(emb), list(real), seed, cfg.neg_per_pos)
            )
        )
    embedded = {"test": real, "free": None, "uniform": None}
    if can_sample:
        samples = np.stack([by_sample[s] for s in range(num_free)])  # (F, 2, n, D)
        for j, name in enumerate(("free samples", "uniform samples")):
            emb = samples[:, j]  # (F, n, D)
            embedded["free" if j == 0 else "uniform"] = emb
            curves.append(Curve(name, None, 0.0, 0.0, within_set_pairs(list(emb), seed, cfg.neg_per_pos)))
    for p in levels:
        noisy = apply_replacements(list(real), draws[p].reindexed(needed), pool, pool_labels[needed], labels)
        curves.append(
            Curve("real", None, p, noisy.applied, within_set_pairs(noisy.sets, seed, cfg.neg_per_pos))
        )
    return curves, embedded


def summary_rows(curves: list[Curve], cfg: FacesBenchConfig) -> pd.DataFrame:
    """Tidy summary, one row per (curve, context_size, noise, metric): mean (the value on
    all pairs), ci_low, ci_high (identity bootstrap, 95%; NaN when fewer than
    MIN_PER_STRATUM identities), n (identities) and under_resolved (True for a TPR at an
    FPR below 1/n_neg of the curve, and for an equivalent noise whose curve or calibration
    curves are so at that FPR; False elsewhere). ``applied_noise`` is the fraction of each
    set actually replaced, round(noise·n)/n. Metrics: auc, tpr@<fpr>, eer (fractions),
    n_pos, n_neg (pair counts, CI = value), and equivalent_label_noise@<fpr> (an applied
    fraction of each set, clipped to the measured levels; the exact bound is in
    equivalent_noise.csv, the ``text`` column)."""
    rows, measured = [], {}
    for c in curves:
        s = summarize(
            c.pairs.scores,
            c.pairs.labels,
            c.pairs.identities,
            ci=True,
            n_boot=cfg.bootstrap,
            rng=cfg.seed,
            fpr_targets=cfg.fpr_targets,
        )
        cond = {
            "curve": c.curve,
            "context_size": c.context_size,
            "noise": c.noise,
            "applied_noise": c.applied_noise,
        }
        n_ids = c.pairs.n_identities
        values = s.as_dict()
        unresolved = {fpr_key(t) for t in s.under_resolved}
        for metric in ["auc", *(fpr_key(t) for t in cfg.fpr_targets), "eer", "n_pos", "n_neg"]:
            v = values[metric]
            lo, hi = s.ci.get(metric, (v, v))  # pair counts: CI = value
            rows.append(
                {**cond, "metric": metric, "mean": v, "ci_low": lo, "ci_high": hi, "n": n_ids,
                 "under_resolved": metric in unresolved}
            )  # fmt: skip
        measured[(c.curve, c.context_size, c.noise)] = (c, values, s, n_ids)
    real = sorted((c for c, *_ in measured.values() if c.curve == "real"), key=lambda c: c.noise)
    applied = [c.applied_noise for c in real]
    for f in cfg.noise_fprs:
        key = fpr_key(f)
        noisy = [measured[("real", None, c.noise)][1][key] for c in real]
        calib_unres = any(is_under_resolved(f, c.pairs.n_neg) for c in real)
        for c, values, s, n_ids in measured.values():
            if c.curve == "real":
                continue
            eq = equivalent_label_noise(applied, noisy, values[key])
            lo, hi = s.ci[key]
            if has_interval(lo, hi):  # more TPR -> less noise
                lo, hi = (equivalent_label_noise(applied, noisy, t).value for t in (hi, lo))
            rows.append(
                {
                    "curve": c.curve,
                    "context_size": c.context_size,
                    "noise": c.noise,
                    "applied_noise": c.applied_noise,
                    "metric": f"equivalent_label_noise@{f:g}",
                    "mean": eq.value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": n_ids,
                    "under_resolved": calib_unres or f in s.under_resolved,
                    "text": eq.format(),
                }
            )
    return pd.DataFrame(rows)


def equivalent_noise_table(summary: pd.DataFrame) -> pd.DataFrame:
    """equivalent_noise.csv: per curve and FPR, the equivalent label noise ``value`` (an
    applied fraction) with its interval (NaN when none exists), ``text`` ("0.23", or
    "< 0" / "> 0.5" outside the measured levels) and ``under_resolved``; ``noise`` and
    ``applied_noise`` are the curve's own nominal and applied noise. Not a tidy summary (no
    ``mean`` column): the same numbers are rows of summary.csv."""
    eq = summary[summary.metric.str.startswith("equivalent_label_noise")].copy()
    eq.insert(4, "fpr", eq.metric.str.split("@").str[1].astype(float))
    eq = eq.rename(columns={"mean": "value"}).drop(columns=["metric", "n"])
    return eq[
        ["curve", "context_size", "noise", "applied_noise", "fpr", "value", "ci_low", "ci_high", "text",
         "under_resolved"]
    ]  # fmt: skip


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


def _interval(r, digits: int = 3) -> str:
    """ "[lo, hi]" of a summary row, or "[n too small]" when no interval exists."""
    return format_interval(r["ci_low"], r["ci_high"], digits)


def _dagger(r) -> str:
    """ " †" for an under-resolved summary row, else ""."""
    return " †" if r["under_resolved"] else ""


def _fmt(r) -> str:
    """A summary row as "value [lo, hi]", with † when under-resolved."""
    return f"{r['mean']:.3f} {_interval(r)}{_dagger(r)}"


def _verdict(better: pd.Series, worse: pd.Series) -> str:
    """'yes' when ``better``'s interval lies above ``worse``'s, 'no' when below, 'n too small'
    when either interval does not exist, else 'not separated'."""
    if not (
        has_interval(better["ci_low"], better["ci_high"]) and has_interval(worse["ci_low"], worse["ci_high"])
    ):
        return N_TOO_SMALL
    if better["ci_low"] > worse["ci_high"]:
        return "yes"
    if better["ci_high"] < worse["ci_low"]:
        return "no (the reverse holds)"
    return "not separated (CIs overlap)"


def _contains(r, value: float) -> str:
    """'yes' when the row's interval contains ``value``, 'no' when not, 'n too small' without one."""
    if not has_interval(r["ci_low"], r["ci_high"]):
        return N_TOO_SMALL
    return "yes" if r["ci_low"] <= value <= r["ci_high"] else "no"


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
    ]
    if (summary.curve == "free samples").any():
        lines += [row("free samples", "free samples"), row("uniform samples", "uniform samples")]
    else:
        lines.append("| free / uniform samples | the model has no `sample`: not scored |" + " |" * len(stats))
    lines += [
        "",
    ]
    lines += ["### Figure 8(b): context size", "", head, rule]
    for k in sorted(cfg.context_sizes):
        lines += [
            row(f"recon, context {k}", "recon", k),
            row(f"recon and real, context {k}", "recon and real", k),
        ]
    lines += ["", "### Figure 8(c): real sets with label noise", "", head, rule]
    for p in sorted(cfg.noise_levels):
        a = _value(summary, "real", "auc", None, float(p))["applied_noise"]
        lines.append(row(f"real, noise {p:g} (applied {a:.3g})", "real", None, float(p)))
    inexact = cfg.inexact_noise_levels()
    lines += [
        "",
        f"Noise p nominal, applied = round(p·{n})/{n} images replaced per set of {n}.",
    ]
    if inexact:
        lines.append(
            f"Warning: p·{n} is not an integer for p = {', '.join(f'{p:g}' for p in inexact)}; the applied "
            f"fractions ({', '.join(f'{applied_fraction(p, n):.3g}' for p in inexact)}) are what is measured "
            "and what equivalent label noise interpolates over."
        )
    lines += [
        "",
        "### Equivalent label noise (applied fraction)",
        "",
        "| curve | " + " | ".join(f"at FPR {f:g}" for f in cfg.noise_fprs) + " |",
        "|---|" + "---:|" * len(cfg.noise_fprs),
    ]
    eq = summary[summary.metric.str.startswith("equivalent_label_noise")]
    for (curve, context), g in eq.groupby(["curve", "context_size"], dropna=False, sort=False):
        label = curve if pd.isna(context) else f"{curve}, context {int(context)}"
        cells = [f"{r['text']} {_interval(r, 2)}{_dagger(r)}" for r in g.to_dict("records")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### The paper's statements, checked",
        "",
        "| statement (paper, VGGFace2 at 128 px) | reading | here | holds |",
        "|---|---|---|---|",
    ]
    real_auc, recon_auc = _value(summary, "real", "auc"), _value(summary, "recon", "auc", n)
    gap = _verdict(real_auc, recon_auc)
    gap_text = gap if gap == N_TOO_SMALL else ("CIs overlap" if gap.startswith("not") else "CIs separated")
    lines.append(
        f"| reconstructions are close to real sets (AUC) | `recon` vs `real` | recon {_fmt(recon_auc)} vs "
        f"real {_fmt(real_auc)} | gap {real_auc['mean'] - recon_auc['mean']:+.3f}; {gap_text} |"
    )
    if (summary.curve == "free samples").any():
        free, uni = _value(summary, "free samples", "auc"), _value(summary, "uniform samples", "auc")
        lines.append(
            f"| free samples beat uniform samples (AUC) | `free samples` vs `uniform samples` | "
            f"{_fmt(free)} vs {_fmt(uni)} | {_verdict(free, uni)} |"
        )
    ks = sorted(cfg.context_sizes)
    lo_k, hi_k = (_value(summary, "recon and real", "auc", k) for k in (ks[0], ks[-1]))
    lines.append(
        f"| more context brings recon closer to real (AUC, context {ks[0]} -> {ks[-1]}) | `recon and real` "
        f"| {_fmt(lo_k)} -> {_fmt(hi_k)} | {_verdict(hi_k, lo_k)} |"
    )
    if 0.1 in cfg.noise_fprs:
        readings = (
            ("recon", "`recon` curve (reconstructions among themselves)"),
            ("recon and real", "`recon and real` curve (the paper's calibration of its gap to `real`)"),
        )
        for curve, reading in readings:
            r = eq[(eq.curve == curve) & (eq.context_size == n) & (eq.metric == "equivalent_label_noise@0.1")]
            r = r.iloc[0]
            lines.append(
                f"| at FPR 10% reconstructions equal real sets with {PAPER_EQUIVALENT_NOISE:.0%} label noise "
                f"| {reading}, context {n} | {r['text']} {_interval(r, 2)}{_dagger(r)} "
                f"| {_contains(r, PAPER_EQUIVALENT_NOISE)} |"
            )
    lines += [
        "",
        "Values: the statistic on all pairs [95% CI, identities resampled: a positive weighted by its",
        "identity's count, a negative by the product of its two identities' counts]; "
        f"'{N_TOO_SMALL}': fewer than {MIN_PER_STRATUM}",
        "identities, no interval and no verdict. TPR at FPR by linear interpolation of the ROC; pairs:",
        "positives / sampled negatives. † under-resolved: the target FPR is below 1/n_neg of the curve",
        "(or, for equivalent noise, of a calibration curve), so the value is read on the curve's first",
        "segment and is not resolved by the data. Equivalent label noise: the applied fraction of",
        "replaced images at which real sets' TPR equals the curve's (text '< 0' / '> max' outside the",
        "measured levels); its interval maps the curve's TPR interval only. The paper reports curves",
        "only; its statements are qualitative.",
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
                if g.empty:  # a model without sample has no free / uniform curves
                    continue
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
    sdn: CheckedSetModel, ds: VGGFace2Sets, picks: list[int], cfg: FacesBenchConfig, out: Path
) -> list[Path]:
    """Fig. 6/10 (input sets above their reconstructions) and Fig. 7/12 (sets from the
    learned prior above sets from the uniform prior; only for a model that can sample), four
    sets each: the very sets scored (the same set seeds as ``measure_curves``)."""
    shown = [picks[int(j)] for j in np.linspace(0, len(picks) - 1, min(4, len(picks))).round()]
    n, res = cfg.set_size, sdn.resolution
    seeds = set_seeds(cfg.seed, STREAM_RECON, [ds.class_ids[i] for i in shown])
    rows = []
    for i, s in zip(shown, seeds, strict=True):
        real = ds[i]["images"][:n]
        rows += [strip(real), strip(sdn.reconstruct(real[None], n, seed=[s])[0]), white(4, n * res)]
    paths = [save_rows(out / "fig6_input_vs_reconstruction.png", rows)]
    if not hasattr(sdn, "sample"):
        return paths
    learned = sdn.sample(
        len(shown), n, "learned", seed=set_seeds(cfg.seed, STREAM_LEARNED, range(len(shown)))
    )
    uniform = sdn.sample(
        len(shown), n, "uniform", seed=set_seeds(cfg.seed, STREAM_UNIFORM, range(len(shown)))
    )
    rows = [strip(s) for s in learned] + [white(8, n * res)] + [strip(s) for s in uniform]
    paths.append(save_rows(out / "fig7_learned_vs_uniform_prior.png", rows))
    return paths


def _inception_features(
    fid: InceptionFeatures, sdn: CheckedSetModel, ds: VGGFace2Sets, picks: list[int], cfg: FacesBenchConfig
) -> dict[str, np.ndarray]:
    """Inception features (images, D) of the real sets and of the free and uniform sample sets
    (asked again with the same set seeds: the same images), one set per batch."""
    n = cfg.set_size
    out = {"test": np.concatenate([fid.features(ds[i]["images"][:n]) for i in picks])}
    for side, prior, stream in (("free", "learned", STREAM_LEARNED), ("uniform", "uniform", STREAM_UNIFORM)):
        seeds = set_seeds(cfg.seed, stream, range(cfg.num_free_sets or len(picks)))
        out[side] = np.concatenate([fid.features(sdn.sample(1, n, prior, seed=[s])[0]) for s in seeds])
    return out


def faces_section(
    embedded: dict, embedder: Embedder, embedder_sha: str, data, cfg: FacesBenchConfig, resolution: int,
    cache_dir, progress: bool, inception: dict[str, np.ndarray] | None = None, fid=None,
) -> tuple[Section, dict]:  # fmt: skip
    """The novelty / realism section (:mod:`benchmarks.distribution`) in the embedder's space:
    the real and sample sets' embeddings of :func:`measure_curves` (``embedded``), and the
    training split's identities, each its first ``set_size`` images (the loader's fixed
    choice), embedded one set at a time; ``inception``: :func:`_inception_features` (``fid``
    the network). Returns the section and its manifest entry."""
    train, fingerprint = None, None
    train_ds, note = training_sets_or_note(
        "faces", data, cfg.train_split, cfg.set_size, resolution, cfg.seed, cache_dir, crop=cfg.crop,
        progress=progress,
    )  # fmt: skip
    if train_ds is not None:
        bar = tqdm(range(len(train_ds)), desc="novelty: train sets", unit="set", disable=not progress)
        train = np.stack([_embed_sets(embedder, train_ds[i]["images"][None])[0] for i in bar])
        fingerprint = train_ds.fingerprint()
    feature = f"the embedder {embedder.name}'s unit embeddings (D {embedder.dim}, sha256 {embedder_sha[:12]})"
    inputs = SectionInputs(
        embedded["test"], embedded["free"], embedded["uniform"], train, feature, note, inception
    )
    section = compute_section(inputs, SectionSettings(k=cfg.knn_k, n_boot=cfg.bootstrap, seed=cfg.seed))
    return section, section_entry(inputs, cfg.train_split, fingerprint, fid)


def load_faces_model(
    model, data, cfg: FacesBenchConfig, cache_dir=None, model_args=None, resolution: int | None = None
) -> LoadedModel:
    """The scored set model: a spec (:func:`benchmarks.models.load_model`), a
    :class:`benchmarks.models.LoadedModel` (as is) or a SetModel object (wrapped). Faces sets
    are scored at the model's own resolution (the embedder resizes); ``resolution`` is given
    to models that take theirs from the context (reference models: the scored model's, when
    they calibrate it; None: the data's native size)."""
    if isinstance(model, LoadedModel):
        return model
    context = ModelContext(
        "faces", Path(data), cfg.split, resolution, cfg.seed, cache_dir, None, cfg.set_size, cfg.crop,
        cfg.train_split,
    )  # fmt: skip
    if isinstance(model, (str, Path)):
        return load_model(str(model), context, model_args)
    return wrap_model(model, context)


def run_faces_benchmark(
    model,
    data,
    out,
    cfg: FacesBenchConfig,
    embedder: str = "verifier",
    weights=None,
    cache_dir=None,
    progress: bool = True,
    command: str = "",
    chunk: int = 32,
    model_args: dict | None = None,
) -> dict:
    """Run the benchmark and write the report folder; returns the manifest.

    model: a spec (``--model``: an SDN checkpoint path, ``python:module:factory`` with
    ``model_args``, ``ref:NAME``, ``folder:DIR``; :func:`benchmarks.models.load_model`), a
    :class:`benchmarks.models.LoadedModel`, or an object implementing
    :class:`sdn.set_model.SetModel`. The harness talks to it only through the contract; a
    model without ``sample`` gets no free- and uniform-sample curves (the summary says so).

    embedder: ``facenet-vggface2``, ``facenet-casia``, or a verifier checkpoint path
    (``weights``: the facenet weights file, default under $TORCH_HOME/checkpoints).
    chunk: sets generated per forward pass (memory only: the report does not depend on it).

    Launched by torchrun (``torchrun --nproc_per_node N -m benchmarks.cli faces ...``, gloo on
    CPU), each rank uses its share of the node's cores and rank r embeds the real sets and
    generates and embeds the reconstructions of the identities ``picks[r::N]`` and the free
    and uniform sample sets r, r + N, ... (:func:`measure_curves`); rank 0 gathers the
    embeddings, puts them in the unsharded order, forms the pairs, computes the curves and
    bootstrap and alone writes the report; the other ranks return ``{}``. Every generated set
    is seeded by its identity or set index and every other draw by ``cfg.seed``, so the report
    does not depend on the world size beyond the float noise of another thread count per rank
    (tests/test_faces_sharding.py)."""
    cfg.validate()
    _check_chunk(chunk)
    fid = InceptionFeatures(cfg.fid_weights) if cfg.fid_weights and cfg.distribution else None
    d = init_distributed("cpu")
    if d.main:
        for p in cfg.inexact_noise_levels():
            warnings.warn(
                f"label noise {p:g} with sets of {cfg.set_size}: p·n = {p * cfg.set_size:g} is not an "
                f"integer; the applied fraction is {applied_fraction(p, cfg.set_size):g}",
                stacklevel=2,
            )
    start = time.time()
    out = Path(out)
    torch.set_num_threads(threads_per_rank())
    loaded = load_faces_model(model, data, cfg, cache_dir, model_args)
    sdn = loaded.model
    emb = load_embedder(embedder, weights)
    ds, picks = open_identities(data, cfg, sdn.resolution, cache_dir, progress and d.main)
    curves, embedded = measure_curves(sdn, emb, ds, picks, cfg, progress, chunk=chunk, d=d)
    if not d.main:
        return {}
    out.mkdir(parents=True, exist_ok=True)
    summary = summary_rows(curves, cfg)
    points = curve_points(curves)
    atomic_write_text(out / "curves.csv", points.to_csv(index=False))
    atomic_write_text(out / "equivalent_noise.csv", equivalent_noise_table(summary).to_csv(index=False))
    atomic_write_text(out / "summary.csv", summary.drop(columns="text").to_csv(index=False))
    save_pairs(curves, out / PAIRS_FILE)
    embedder_sha = sha256_file(emb.weights)
    subset = subset_digest([ds.class_ids[i] for i in picks])
    header = (
        f"# Faces benchmark (Figure 8)\n\n{loaded.heading()}, embedder `{emb.name}` "
        f"({emb.resolution} px, sha256 `{embedder_sha[:12]}`); data `{data}` split {cfg.split}, "
        f"{len(picks)} identities (subset sha256 `{subset}`), sets of {cfg.set_size} at {sdn.resolution} px, "
        f"crop {cfg.crop}; seed {cfg.seed}."
    )
    section_md, distribution = [], None
    if cfg.distribution:
        can_sample = embedded["free"] is not None
        inception = _inception_features(fid, sdn, ds, picks, cfg) if fid is not None and can_sample else None
        section, distribution = faces_section(
            embedded, emb, embedder_sha, data, cfg, sdn.resolution, cache_dir, progress, inception, fid
        )
        write_section(section, out)
        section_md = section_markdown(section)
    atomic_write_text(out / "summary.md", append_section(summary_markdown(summary, cfg, header), section_md))
    plot_figure8(points, cfg, out)
    write_sample_figures(sdn, ds, picks, cfg, out)
    manifest = {
        "benchmark": "faces",
        "command": command or " ".join(sys.argv),
        "config": asdict(cfg),
        "execution": {"chunk": chunk},
        "model": loaded.manifest(),
        "embedder": {
            "name": emb.name,
            "resolution": emb.resolution,
            "dim": emb.dim,
            "source": str(embedder),
            "weights": str(emb.weights),
            "sha256": embedder_sha,
        },
        "data": {
            "root": str(data),
            "split": cfg.split,
            "fingerprint": ds.fingerprint(),
            "identities": len(picks),
            "subset_sha256": subset,
            "skipped_identities": ds.skipped_identities,
            "images_per_identity": cfg.images_per_identity,
        },
        "distribution": distribution,
    }
    return finish_report(out, manifest, start)


def run_calibrated_faces(
    model,
    data,
    out,
    cfg: FacesBenchConfig,
    embedder: str = "verifier",
    weights=None,
    references: bool = False,
    cache_dir=None,
    use_cache: bool = True,
    command: str = "",
    model_args: dict | None = None,
    progress: bool = True,
    echo=print,
    bounds_only: bool = False,
) -> dict:
    """:func:`run_faces_benchmark`, then, with ``references``, the calibration ladder with the
    same settings, at the scored model's resolution, into ``out/references`` and
    ``out/calibration.csv|md`` (:mod:`benchmarks.ladder`; the references' reports are cached
    unless ``use_cache`` is False; ``bounds_only``: the ceiling and floor alone). Returns the
    model's manifest."""
    check_single_process(references)
    clear_calibration(Path(out))
    loaded = load_faces_model(model, data, cfg, cache_dir, model_args)

    def run(spec, folder):
        ref = load_faces_model(spec, data, cfg, cache_dir, resolution=loaded.model.resolution)
        return run_faces_benchmark(ref, data, folder, cfg, embedder, weights, cache_dir, progress, command)

    manifest = run_faces_benchmark(loaded, data, out, cfg, embedder, weights, cache_dir, progress, command)
    cache = ReferenceCache(cache_dir) if use_cache else None
    return calibrate(
        "faces", run, Path(out), manifest, references, cfg.bootstrap, cfg.seed, cache, echo, bounds_only
    )
