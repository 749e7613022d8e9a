"""Reference set models of known quality: a calibration ladder for both benchmarks.

Each reference is a real set model (:class:`sdn.set_model.SetModel`: ``resolution``,
``reconstruct``, and for the oracle ``sample``) that reads the dataset instead of
generating anything. Scored by the same harness as a learned model, the ladder shows
what each metric says for a model of known quality, so a learned model's numbers can be
placed between the rungs:

- ``oracle`` (shapes, faces), the ceiling: ``reconstruct`` returns real images of the
  SAME object / identity that are NOT in the input set, the best a perfect stochastic
  reconstruction can do. ``sample`` returns real sets of random objects / identities of
  the split.
- ``copy`` (shapes, faces), perfect memorisation: ``reconstruct`` returns the input
  images themselves, resampled with replacement. No ``sample``.
- ``copy-train`` (shapes, faces), a model that memorised its training sets: ``reconstruct``
  as ``copy``; ``sample`` returns real sets of the *training* split (the memorising floor of
  the novelty section, :mod:`benchmarks.distribution`).
- ``same-category`` (shapes): real views of ANOTHER object of the SAME category: keeps
  the category, not the instance. No ``sample``.
- ``other-category`` (shapes), the floor: real views of an object of ANOTHER category.
  No ``sample``.
- ``other-identity`` (faces), the floor: real images of ANOTHER identity. No ``sample``.

How a model knows which object / identity an input set shows. At construction it opens
the split with the benchmark's own loader (:class:`~sdn.data.shapenet.ShapeNetViews` or
:class:`~sdn.data.vggface2.VGGFace2Sets`, ``set_size=1`` so that every object / identity
and every image is enumerated) at the working resolution and with the benchmark's
``cache_dir``, hence the very pixels the benchmark's loader serves (both read the same
decoded-image cache). It indexes every image by the sha256 of its uint8 pixels. Input
images arrive as float tensors equal to uint8 / 255 (the loaders' decoded cache), so
they are quantised back with round(255 x) and looked up. The input set's item is the one
holding all of its images (where duplicated pixels make several items hold them all, the
first in the loader's order); an image found nowhere in the split, or a set mixing items,
raises ValueError. Images are compared by content: an output never has the pixels of an
input image where the model promises "not in the input", even when an object has two
identical views, and the "another object / identity" rungs never pick an item holding
any of the input's pixels.

What each returns, exactly (per set, every draw from ``np.random.default_rng(s)`` with
``s`` the set's seed, so a set's outputs are a function of (seed, set content, slot)
only: neither the batch composition nor ``n_out`` changes slot j):

- oracle: the A images of the set's item whose pixels are not in the input, in a seeded
  random order, slots 0..A-1; where ``n_out`` > A, slots A.. are drawn with replacement
  from those A. On shapes an object has V views (24 in the default synthetic data and in
  the real ShapeNet renders) and the benchmark's real set is the first 16 views of the
  loader's fixed seeded view choice, so with k inputs A = V - k: for k = 16 only 8
  distinct views remain for 16 outputs (each then appears twice on average). An item
  with no image outside the input (the regression fixtures' objects have exactly 16
  views: A = 0 at k = 16) raises ValueError. Outputs may include images of the
  benchmark's real set that were not in the input (k < the real set's size).
- copy: ``n_out`` slots drawn with replacement from the k input images.
- same-category / other-category / other-identity: one other item drawn uniformly from
  the eligible ones (same category and another object; another category; another
  identity), then its V images in a seeded random order, then draws with replacement
  where ``n_out`` > V.
- oracle ``sample(num_sets, set_size, prior, seed)``: per set, an item drawn uniformly
  from the split (among those with at least ``set_size`` images when any has), then
  images as for the other-item rungs. Both priors return real sets (the data distribution
  is the ceiling of either); the prior only picks the seed stream when ``seed`` is an int.
- copy-train ``sample``: per set, an item of the training split (``context.train_split``)
  drawn uniformly, and its real set exactly as the
  novelty section reads it: the benchmark's loader with ``set_size`` images, its fixed view
  choice (``random_views=False``, the context's seed), so every free set *is* a training set.

Seeds follow the SDN's convention (:mod:`sdn.seeding`): ``seed`` is one int per set, or
an int standing for ``set_seed(seed, STREAM_RECON / STREAM_LEARNED / STREAM_UNIFORM, b)``
for the sets' positions b.

The context (``benchmarks.models.base.ModelContext``, duck-typed here): ``benchmark``
("shapenet" | "faces"), ``data`` (root), ``split``, ``resolution`` (None: the side in
pixels of the split's first image file, as the shapes benchmark reports "native"; for the
real VGGFace2, whose photos vary in size, pass it), ``seed``, ``cache_dir``,
``categories`` (shapes) and ``set_size`` (faces, unused: every identity with at least one
image is indexed). Optional attributes read when present: ``train_split`` (``copy-train``'s training split;
default ``train``), ``crop`` (faces; default
``DEFAULT_FACES_CROP`` = "loose_bb", ``FacesBenchConfig.crop``'s default, the crop the
faces benchmark uses unless ``--crop`` says otherwise) and ``progress`` (default False).
The faces loader with ``set_size=1`` keeps identities the benchmark skips (fewer than its
``images_per_identity``), so its file list, hence its decoded-image cache entry, differs
from the benchmark's: the pixels are the same (same files, crop and resolution), decoded
once more into a second cache file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdn.data.shapenet import IMAGE_DIR, IMAGE_SUFFIXES, ShapeNetViews, list_categories, read_list
from sdn.data.vggface2 import VGGFace2Sets, read_image_list
from sdn.seeding import STREAM_LEARNED, STREAM_RECON, STREAM_UNIFORM, set_seeds

from ..distribution import open_training_sets

REFERENCES: dict[str, str] = {
    "oracle": "ceiling: real images of the same object/identity that are not in the input set",
    "copy": "memorisation: the input images themselves, resampled with replacement",
    "copy-train": "memorisation: copy's reconstructions; free samples are real training sets",
    "same-category": "real views of another object of the same category (keeps category, not instance)",
    "other-category": "floor: real views of an object of another category",
    "other-identity": "floor: real images of another identity",
}
AVAILABLE: dict[str, tuple[str, ...]] = {
    "shapenet": ("oracle", "copy", "copy-train", "same-category", "other-category"),
    "faces": ("oracle", "copy", "copy-train", "other-identity"),
}
DEFAULT_FACES_CROP = "loose_bb"  # FacesBenchConfig.crop's default (tests check they agree)
PRIORS = ("learned", "uniform")


def reference_model(name: str, context) -> object:
    """The reference model ``name`` (a key of :data:`REFERENCES`) on the split ``context``
    describes. Raises ValueError for an unknown benchmark, or a name that is not a
    reference of the context's benchmark (listing the valid names)."""
    bench = getattr(context, "benchmark", None)
    if bench not in AVAILABLE:
        raise ValueError(f"unknown benchmark {bench!r} for reference models; valid: {', '.join(AVAILABLE)}")
    valid = AVAILABLE[bench]
    if name not in valid:
        listing = "; ".join(f"{n} ({REFERENCES[n]})" for n in valid)
        where = [b for b, names in AVAILABLE.items() if name in names]
        note = f" ({name!r} is a reference of the {' and '.join(where)} benchmark only)" if where else ""
        raise ValueError(
            f"unknown reference model {name!r} for the {bench} benchmark{note}; valid: {listing}"
        )
    return _MODELS[name](name, _SplitIndex(context), context)


# ----------------------------------------------------------------------------------
# The split's images and their content index
# ----------------------------------------------------------------------------------


def _digest(u8: np.ndarray) -> bytes:
    """A uint8 image (3, H, W)'s content key."""
    return hashlib.sha256(np.ascontiguousarray(u8).tobytes()).digest()


def _quantise(images: torch.Tensor) -> np.ndarray:
    """float images (..., 3, H, W) in [0, 1] -> uint8 numpy, round(255 x)."""
    x = images.detach().to(device="cpu", dtype=torch.float32).numpy()
    return np.clip(np.rint(x * np.float32(255.0)), 0, 255).astype(np.uint8)  # numpy: torch's round is slow


def _first_image_side(path: Path) -> int:
    with Image.open(path) as im:
        return im.size[0]


def _native_shapes(root: Path, split: str) -> int:
    """The side of the first view of the first object of ``split`` (as the benchmark's
    ``_native_resolution``)."""
    for synset in list_categories(root):
        lst = root / synset / f"{split}.lst"
        for oid in read_list(lst) if lst.is_file() else []:
            img_dir = root / synset / oid / IMAGE_DIR
            views = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if views:
                return _first_image_side(views[0])
    raise ValueError(f"{root}: no view image in split {split!r}")


def _native_faces(root: Path, split: str) -> int:
    rel = read_image_list(root / f"{split}_list.txt")
    if not rel:
        raise ValueError(f"{root / f'{split}_list.txt'}: split {split!r} is empty")
    return _first_image_side(root / split / rel[0])


class _SplitIndex:
    """Every item (object / identity) of the split, its group (category / identity) and the
    content key of each of its images, read through the benchmark's loader."""

    def __init__(self, context):
        self.benchmark = context.benchmark
        self.root = Path(context.data)
        self.split = str(context.split)
        progress = bool(getattr(context, "progress", False))
        res = context.resolution
        if self.benchmark == "shapenet":
            self.resolution = int(res) if res is not None else _native_shapes(self.root, self.split)
            self.crop = None
            self.ds = ShapeNetViews(
                self.root, self.split, categories=context.categories or None, set_size=1,
                resolution=self.resolution, random_views=False, seed=int(context.seed),
                cache_dir=context.cache_dir, progress=progress,
            )  # fmt: skip
            self.keys = [f"{o.synset}/{o.object_id}" for o in self.ds.objects]
            groups = [o.synset for o in self.ds.objects]
            self.counts = [len(o.views) for o in self.ds.objects]
            self.item_word, self.group_word = "object", "category"
        else:
            self.resolution = int(res) if res is not None else _native_faces(self.root, self.split)
            self.crop = getattr(context, "crop", None) or DEFAULT_FACES_CROP
            self.ds = VGGFace2Sets(
                self.root, self.split, set_size=1, resolution=self.resolution, crop=self.crop,
                random_views=False, seed=int(context.seed), cache_dir=context.cache_dir, progress=progress,
            )  # fmt: skip
            self.keys = list(self.ds.class_ids)
            groups = list(self.keys)
            self.counts = [len(i.paths) for i in self.ds.identities]
            self.item_word, self.group_word = "identity", "identity"
        self.groups = np.array(groups)
        self.items = np.arange(len(self.keys))
        # Content keys through the loaders' public images(): the same float path the inputs took.
        self.digests: list[list[bytes]] = []
        self.where: dict[bytes, list[int]] = {}
        for i, count in enumerate(self.counts):
            u8 = _quantise(self.ds.images(i, np.arange(count)))
            ds_i = [_digest(x) for x in u8]
            self.digests.append(ds_i)
            for d in ds_i:
                hits = self.where.setdefault(d, [])
                if not hits or hits[-1] != i:
                    hits.append(i)

    def images(self, item: int, views) -> torch.Tensor:
        return self.ds.images(item, np.asarray(views, dtype=np.int64))

    def identify(self, name: str, b: int, images: torch.Tensor) -> tuple[int, set[bytes], set[int]]:
        """The item of set ``b`` (images (k, 3, H, W)), its images' content keys, and every
        item holding any of them."""
        keys = [_digest(x) for x in _quantise(images)]
        common: set[int] | None = None
        touched: set[int] = set()
        for j, d in enumerate(keys):
            hits = self.where.get(d)
            if hits is None:
                raise ValueError(
                    f"reference model {name!r} only reconstructs sets of the dataset's split: image {j} "
                    f"of set {b} is not an image of split {self.split!r} of {self.root} at "
                    f"{self.resolution} px"
                )
            touched.update(hits)
            common = set(hits) if common is None else common & set(hits)
        if not common:
            raise ValueError(
                f"reference model {name!r}: set {b} mixes images of several {self.item_word} items of "
                f"split {self.split!r} of {self.root} ({', '.join(self.keys[i] for i in sorted(touched))})"
            )
        return min(common), set(keys), touched


def _sample_seeds(num_sets, set_size, prior: str, seed) -> list[int]:
    """The per-set seeds of a ``sample`` call, its arguments checked."""
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    for label, v in (("num_sets", num_sets), ("set_size", set_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {v!r}")
    return _set_seeds(seed, int(num_sets), STREAM_LEARNED if prior == "learned" else STREAM_UNIFORM)


def _order_then_replace(rng: np.random.Generator, available: int, n: int) -> np.ndarray:
    """Slots 0..available-1: a random permutation of range(available); later slots: draws
    with replacement. Slot j does not depend on n."""
    out = rng.permutation(available)[:n]
    if n > available:
        out = np.concatenate([out, rng.integers(available, size=n - available)])
    return out


def _set_seeds(seed, count: int, stream: int) -> list[int]:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return set_seeds(int(seed), stream, range(count))
    if isinstance(seed, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(seed, str):
        seeds = [int(s) for s in seed]
        if len(seeds) != count:
            raise ValueError(f"seed: expected one seed per set ({count}), got {len(seeds)}")
        return seeds
    raise ValueError(f"seed must be an int or a sequence of per-set ints, got {type(seed).__name__}")


# ----------------------------------------------------------------------------------
# The models
# ----------------------------------------------------------------------------------


class _Reference:
    definition = ""

    def __init__(self, name: str, index: _SplitIndex, context=None):
        self.name = name
        self.index = index
        self.context = context
        self.resolution = index.resolution

    def describe(self) -> dict:
        d = {
            "name": self.name,
            "kind": "reference",
            "definition": self.definition,
            "dataset": str(self.index.root),
            "split": self.index.split,
            "benchmark": self.index.benchmark,
            "resolution": self.resolution,
        }
        if self.index.crop is not None:
            d["crop"] = self.index.crop
        return d

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.index.root}, split={self.index.split!r})"

    @torch.no_grad()
    def reconstruct(self, sets: torch.Tensor, n_out: int, seed: int | Sequence[int] = 0) -> torch.Tensor:
        """sets (B, n, 3, H, W) in [0, 1], images of the split -> (B, n_out, 3, H, W) float32."""
        if not isinstance(sets, torch.Tensor) or sets.dim() != 5 or sets.shape[2] != 3:
            shape = tuple(sets.shape) if isinstance(sets, torch.Tensor) else type(sets).__name__
            raise ValueError(f"sets must be a (B, n, 3, H, W) tensor, got {shape}")
        r = self.resolution
        if sets.shape[3:] != (r, r):
            raise ValueError(f"{self.name}: works at {r} px, got images of {sets.shape[3]}x{sets.shape[4]}")
        if sets.shape[0] < 1 or sets.shape[1] < 1:
            raise ValueError(
                f"sets must hold at least one set of at least one image, got {tuple(sets.shape)}"
            )
        if isinstance(n_out, bool) or not isinstance(n_out, (int, np.integer)) or n_out < 1:
            raise ValueError(f"n_out must be an integer >= 1, got {n_out!r}")
        seeds = _set_seeds(seed, sets.shape[0], STREAM_RECON)
        out = []
        for b, (images, s) in enumerate(zip(sets, seeds, strict=True)):
            item, keys, touched = self.index.identify(self.name, b, images)
            out.append(self._one(b, images, item, keys, touched, int(n_out), np.random.default_rng(s)))
        return torch.stack(out).to(device=sets.device, dtype=torch.float32)

    def _one(self, b, images, item, keys, touched, n_out, rng) -> torch.Tensor:
        raise NotImplementedError

    def _views_of(self, item: int, n: int, rng: np.random.Generator) -> torch.Tensor:
        return self.index.images(item, _order_then_replace(rng, self.index.counts[item], n))


class Oracle(_Reference):
    definition = (
        "Real images of the input set's own object/identity that are not in the input set, in a seeded "
        "random order, drawn with replacement from them once all are used."
    )

    def _one(self, b, images, item, keys, touched, n_out, rng) -> torch.Tensor:
        ix = self.index
        others = [v for v, d in enumerate(ix.digests[item]) if d not in keys]
        if not others:
            raise ValueError(
                f"oracle: {ix.item_word} {ix.keys[item]} of {ix.root} has {ix.counts[item]} images, all in "
                f"the input set {b} ({images.shape[0]} images): none is left to return (the oracle needs "
                f"items with more images than the input set, e.g. > 16 views per object for the shapes "
                f"benchmark's 16-view real set)"
            )
        return ix.images(item, np.asarray(others)[_order_then_replace(rng, len(others), n_out)])

    @torch.no_grad()
    def sample(
        self, num_sets: int, set_size: int, prior: str = "learned", seed: int | Sequence[int] = 0
    ) -> torch.Tensor:
        """Real sets: per set, a random item of the split (among those with at least
        ``set_size`` images when any has) and ``set_size`` of its images -> (num_sets,
        set_size, 3, H, W) float32. Both priors return real sets."""
        seeds = _sample_seeds(num_sets, set_size, prior, seed)
        counts = np.asarray(self.index.counts)
        pool = self.index.items[counts >= set_size]
        if not len(pool):
            pool = self.index.items
        out = []
        for s in seeds:
            rng = np.random.default_rng(s)
            item = int(pool[rng.integers(len(pool))])
            out.append(self._views_of(item, int(set_size), rng))
        return torch.stack(out).float()


class Copy(_Reference):
    definition = "The input images themselves, drawn with replacement (seeded): perfect memorisation."

    def _one(self, b, images, item, keys, touched, n_out, rng) -> torch.Tensor:
        return images.detach().float().cpu()[torch.from_numpy(rng.integers(images.shape[0], size=n_out))]


class CopyTrain(Copy):
    definition = (
        "Reconstructions as copy (the input images, drawn with replacement); free samples are real sets "
        "of the training split, the novelty section's own training sets: a model that memorised its "
        "training data."
    )

    def __init__(self, name: str, index: _SplitIndex, context=None):
        super().__init__(name, index, context)
        self.train_split = str(getattr(context, "train_split", "train"))
        if self.train_split == index.split:
            raise ValueError(
                f"copy-train: the training split must differ from the evaluated split {index.split!r}"
            )
        self._loaders = {}

    def describe(self) -> dict:
        return {**super().describe(), "train_split": self.train_split}

    def _train_sets(self, set_size: int):
        """The training split's loader with ``set_size`` images per set: the novelty section's
        own (:func:`benchmarks.distribution.open_training_sets`)."""
        if set_size not in self._loaders:
            ix, c = self.index, self.context
            self._loaders[set_size] = open_training_sets(
                ix.benchmark, ix.root, self.train_split, set_size, ix.resolution, c.seed, c.cache_dir,
                categories=c.categories or None, crop=ix.crop,
            )  # fmt: skip
        return self._loaders[set_size]

    @torch.no_grad()
    def sample(
        self, num_sets: int, set_size: int, prior: str = "learned", seed: int | Sequence[int] = 0
    ) -> torch.Tensor:
        """Training sets: per set, an item of the training split drawn uniformly (seeded) and its
        real set of ``set_size`` images -> (num_sets, set_size, 3, H, W) float32."""
        seeds = _sample_seeds(num_sets, set_size, prior, seed)
        ds = self._train_sets(int(set_size))
        picks = [int(np.random.default_rng(s).integers(len(ds))) for s in seeds]
        return torch.stack([ds[i]["images"][:set_size] for i in picks]).float()


class _OtherItem(_Reference):
    """Images of one other item drawn uniformly from those ``_pool`` allows."""

    def __init__(self, name: str, index: _SplitIndex, context=None):
        super().__init__(name, index, context)
        self._check()

    def _pool(self, item: int) -> np.ndarray:
        raise NotImplementedError

    def _check(self) -> None:
        pass

    def _one(self, b, images, item, keys, touched, n_out, rng) -> torch.Tensor:
        ix = self.index
        pool = self._pool(item)
        pool = pool[~np.isin(pool, list(touched))]
        if not len(pool):
            raise ValueError(
                f"{self.name}: no eligible {ix.item_word} for set {b} ({ix.item_word} {ix.keys[item]}, "
                f"{ix.group_word} {ix.groups[item]}) in split {ix.split!r} of {ix.root}"
            )
        return self._views_of(int(pool[rng.integers(len(pool))]), n_out, rng)


class SameCategory(_OtherItem):
    definition = (
        "Real views, in a seeded random order, of another object of the input object's category, drawn "
        "uniformly (seeded) among that category's other objects of the split."
    )

    def _pool(self, item: int) -> np.ndarray:
        return self.index.items[self.index.groups == self.index.groups[item]]

    def _check(self) -> None:
        _, counts = np.unique(self.index.groups, return_counts=True)
        if counts.max() < 2:
            raise ValueError(
                f"same-category needs a category with at least two objects in split {self.index.split!r} "
                f"of {self.index.root}"
            )


class OtherCategory(_OtherItem):
    definition = (
        "Real views, in a seeded random order, of an object drawn uniformly (seeded) among the split's "
        "objects of the other categories."
    )

    def _pool(self, item: int) -> np.ndarray:
        return self.index.items[self.index.groups != self.index.groups[item]]

    def _check(self) -> None:
        if len(np.unique(self.index.groups)) < 2:
            raise ValueError(
                f"other-category needs at least two categories in split {self.index.split!r} of "
                f"{self.index.root}, found {sorted(set(self.index.groups.tolist()))}"
            )


class OtherIdentity(OtherCategory):
    definition = (
        "Real images, in a seeded random order, of an identity drawn uniformly (seeded) among the split's "
        "other identities."
    )

    def _check(self) -> None:
        if len(self.index.items) < 2:
            raise ValueError(
                f"other-identity needs at least two identities in split {self.index.split!r} of "
                f"{self.index.root}"
            )


_MODELS = {
    "oracle": Oracle,
    "copy": Copy,
    "copy-train": CopyTrain,
    "same-category": SameCategory,
    "other-category": OtherCategory,
    "other-identity": OtherIdentity,
}
