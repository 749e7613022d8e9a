"""View-sets of ShapeNet objects from any Occupancy Networks layout root (DESIGN.md §3.1).

The same class reads the real preprocessed ShapeNet (``img_choy2016/000.jpg``,
137 px) and the synthetic one this project writes (``.png``, any size).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset

from .content_hash import update_with_file
from .image_cache import cached_images
from .occnet_files import Cameras, PointCloud, Points, read_cameras, read_pointcloud, read_points

IMAGE_DIR = "img_choy2016"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")
OBJECT_FILES = ("points.npz", "pointcloud.npz")


@dataclass(frozen=True)
class ShapeObject:
    synset: str
    category: str  # human-readable name (from metadata.yaml, else the synset)
    category_index: int
    object_id: str
    path: Path
    views: tuple[Path, ...]


def read_list(path: Path) -> list[str]:
    """Model ids of a ``.lst`` file: one per line, blank lines and a missing final newline tolerated."""
    if not path.is_file():
        raise ValueError(f"split file not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_metadata(root: Path) -> dict[str, dict]:
    """``metadata.yaml``'s synset -> {id, name, ...} entries; {} when the file is absent."""
    path = root / "metadata.yaml"
    if not path.is_file():
        return {}
    try:
        # BaseLoader keeps every scalar a string: unquoted synsets such as 03001627 would
        # otherwise be read as octal integers by YAML 1.1.
        meta = yaml.load(path.read_text(), Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a mapping synset -> {{id, name}}")
    return {str(k): v for k, v in meta.items() if isinstance(v, dict)}


def list_categories(root: Path) -> list[str]:
    """Synset folders under ``root`` (folders holding at least one split file), sorted."""
    return sorted(
        d.name for d in root.iterdir() if d.is_dir() and any((d / f"{s}.lst").is_file() for s in SPLITS)
    )


class ShapeNetViews(Dataset):
    """Sets of ``set_size`` views of one object.

    Args:
        root: dataset root (OccNet layout).
        split: "train", "val" or "test".
        categories: synset ids or names (metadata.yaml); None = every category folder.
        set_size: n, the number of views per set (>= 1).
        resolution: output side in pixels; images are resized (Lanczos) and cached.
        random_views: True draws a random n-of-V subset each time (training; call
            :meth:`set_epoch` to vary it reproducibly); False returns a fixed,
            seeded choice per object (evaluation).
        seed: seeds both choices.
        cache_dir: where the decoded-image cache lives (see :mod:`.image_cache`).
        max_per_category: keep the first N objects of each category's split file (its order,
            a seeded permutation for the synthetic sets: a random subset, nested as N grows);
            None keeps all.

    An item is a dict: ``images`` (n, 3, H, W) float32 in [0, 1]; ``views`` (n,) int64
    view indices; ``synset``, ``category``, ``object_id`` (str); ``category_index`` and
    ``index`` (int).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        categories=None,
        set_size: int = 8,
        resolution: int = 64,
        random_views: bool = True,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
        max_per_category: int | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"dataset root not found: {self.root}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if set_size < 1:
            raise ValueError(f"set_size must be >= 1, got {set_size}")
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        if max_per_category is not None and max_per_category < 1:
            raise ValueError(f"max_per_category must be >= 1 or None, got {max_per_category}")
        self.split, self.set_size, self.resolution = split, set_size, resolution
        self.random_views, self.seed, self.epoch = random_views, seed, 0
        meta = read_metadata(self.root)
        available = list_categories(self.root)
        if not available:
            raise ValueError(f"{self.root}: no category folders with {'/'.join(SPLITS)}.lst files")
        self.synsets = self._resolve(categories, available, meta)
        self.objects: list[ShapeObject] = []
        for ci, synset in enumerate(self.synsets):
            name = str(meta.get(synset, {}).get("name", synset))
            for oid in read_list(self.root / synset / f"{split}.lst")[:max_per_category]:
                self.objects.append(self._object(synset, name, ci, oid))
        if not self.objects:
            raise ValueError(f"{self.root}: split {split!r} is empty for categories {self.synsets}")
        paths = [v for o in self.objects for v in o.views]
        self._offsets = np.cumsum([0] + [len(o.views) for o in self.objects])
        self._pixels = cached_images(paths, resolution, cache_dir, progress=progress)

    def _resolve(self, categories, available: list[str], meta: dict) -> list[str]:
        if not categories:
            return available
        by_name = {}
        for s in available:
            for n in str(meta.get(s, {}).get("name", "")).split(","):
                if n.strip():
                    by_name[n.strip()] = s
        out = []
        for c in categories:
            s = c if c in available else by_name.get(c)
            if s is None:
                listing = ", ".join(f"{s} ({meta.get(s, {}).get('name', '?')})" for s in available)
                raise ValueError(f"unknown category {c!r} in {self.root}; available: {listing}")
            out.append(s)
        return out

    def _object(self, synset: str, name: str, ci: int, oid: str) -> ShapeObject:
        path = self.root / synset / oid
        img_dir = path / IMAGE_DIR
        if not img_dir.is_dir():
            raise ValueError(f"object {synset}/{oid} has no image folder: {img_dir}")
        views = tuple(sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        if len(views) < self.set_size:
            raise ValueError(f"{img_dir} has {len(views)} views, fewer than the set size {self.set_size}")
        return ShapeObject(synset, name, ci, oid, path, views)

    def fingerprint(self) -> str:
        """sha256 (hex, 16 chars) of the split's content and the resolution: the content
        (:mod:`.content_hash`: relative path, size and bytes) of every file this loader reads
        for the split: ``metadata.yaml``, each category's ``<split>.lst``, and per object its
        views, ``cameras.npz``, ``points.npz`` and ``pointcloud.npz`` (a missing one counts as
        missing). Same bytes give the same fingerprint on any machine and under any root."""
        h = hashlib.sha256(f"content-v1|{self.split}|{self.resolution}\n".encode())
        update_with_file(h, self.root / "metadata.yaml", self.root)
        for synset in self.synsets:
            update_with_file(h, self.root / synset / f"{self.split}.lst", self.root)
        for o in self.objects:
            for path in (*o.views, o.path / IMAGE_DIR / "cameras.npz", *(o.path / f for f in OBJECT_FILES)):
                update_with_file(h, path, self.root)
        return h.hexdigest()[:16]

    def names_fingerprint(self) -> str:
        """The fingerprint that files written before content fingerprints (2026-12-01) carry:
        sha256 (hex, 16 chars) of the split, the resolution and each object's name and view file
        names, no bytes. A restart from such a file (:func:`sdn.trainer.restart_from_export`)
        can check its data by names only, and records that it did."""
        h = hashlib.sha256(f"{self.split}|{self.resolution}".encode())
        for o in self.objects:
            h.update(f"{o.synset}/{o.object_id}:{','.join(v.name for v in o.views)}\n".encode())
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.objects)

    def set_epoch(self, epoch: int) -> None:
        """Vary the random view choice per epoch, reproducibly (like DistributedSampler)."""
        self.epoch = epoch

    def view_choice(self, index: int) -> np.ndarray:
        """The view indices (n,) the item ``index`` uses now."""
        obj = self.objects[index]
        v = len(obj.views)
        if self.random_views:
            rng = np.random.default_rng([self.seed, self.epoch, index])
        else:
            digest = hashlib.sha256(f"{obj.synset}/{obj.object_id}".encode()).digest()
            rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
        return rng.permutation(v)[: self.set_size]

    def images(self, index: int, views) -> torch.Tensor:
        """Views ``views`` (k,) of object ``index`` as (k, 3, H, W) float32 in [0, 1]."""
        rows = self._offsets[index] + np.asarray(views, dtype=np.int64)
        pix = np.asarray(self._pixels[rows])  # (k, H, W, 3) uint8
        return torch.from_numpy(pix).permute(0, 3, 1, 2).float().div_(255.0)

    def __getitem__(self, index: int) -> dict:
        obj = self.objects[index]
        views = self.view_choice(index)
        return {
            "images": self.images(index, views),
            "views": torch.from_numpy(views.astype(np.int64)),
            "synset": obj.synset,
            "category": obj.category,
            "category_index": obj.category_index,
            "object_id": obj.object_id,
            "index": index,
        }

    def points(self, index: int) -> Points:
        return read_points(self.objects[index].path / "points.npz")

    def pointcloud(self, index: int) -> PointCloud:
        return read_pointcloud(self.objects[index].path / "pointcloud.npz")

    def cameras(self, index: int) -> Cameras:
        return read_cameras(self.objects[index].path / IMAGE_DIR / "cameras.npz")
