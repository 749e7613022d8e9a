"""Sets of face images of one identity from any VGGFace2-layout root (DESIGN.md §3.2).

The same class reads the real VGGFace2 and a synthetic set written in its layout::

    ROOT/{train,test}/<identity>/<image>_<face>.jpg
    ROOT/{train,test}_list.txt               one relative path per line (n000001/0001_01.jpg)
    ROOT/identity_meta.csv                   Class_ID, Name, Sample_Num, Flag, Gender (optional)
    ROOT/bb_landmark/loose_bb_{train,test}.csv   NAME_ID,X,Y,W,H (needed for crop="loose_bb")

The list file is authoritative: an image on disk but not listed is ignored, a listed
image that is missing is an error. Identities and their images are sorted, so the
order does not depend on the list's order.

Crops (``crop=``), all resized (Lanczos) to ``resolution`` and stored in the shared
decoded-image cache (:mod:`.image_cache`, keyed by files, resolution and boxes):

- ``"loose_bb"``: a square of side ``1.3 x max(W, H)`` centred on the loose bounding
  box (VGGFace2 practice: the loose box extended by 30%). Where the square would leave
  the image it is shifted back inside; where it is larger than the image it is shrunk
  to the image's shorter side. The crop is therefore always a square inside the image:
  no padding, no change of aspect ratio.
- ``"mtcnn"``: facenet-pytorch's MTCNN detector (weights ship with the package, nothing
  downloads) finds the faces; the one overlapping the loose box most (when the csv
  exists), else the largest, is cropped as facenet-pytorch's ``extract_face`` does:
  the box widened by ``mtcnn_margin`` pixels of a 160-px output (default 14, as in
  facenet-pytorch's LFW evaluation) and clipped to the image. Where no face is found
  the ``loose_bb`` square (or, without a csv, the whole image) is used and counted in
  :attr:`VGGFace2Sets.crop_fallbacks`. Detected boxes are cached on disk, keyed like
  the image cache, so detection runs once per image.
- ``"none"``: the whole image, resized (aspect ratio not kept).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from tqdm import tqdm

from ..io import atomic_write_bytes
from .content_hash import update_with_file
from .image_cache import DEFAULT_CACHE_DIR, cached_images
from .image_cache import fingerprint as files_fingerprint

SPLITS = ("train", "test")
CROPS = ("loose_bb", "mtcnn", "none")
LOOSE_BB_SCALE = 1.3
MTCNN_MARGIN = 14
MTCNN_SIZE = 160


@dataclass(frozen=True)
class IdentityMeta:
    """One row of ``identity_meta.csv``. flag: 1 = train, 0 = test (VGGFace2's convention)."""

    class_id: str
    name: str
    sample_num: int | None
    flag: int | None
    gender: str


@dataclass(frozen=True)
class Identity:
    class_id: str  # the folder name, e.g. n000001
    name: str  # from identity_meta.csv, else the class id
    index: int  # position in VGGFace2Sets.identities
    paths: tuple[Path, ...]  # its images, sorted


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1].replace('""', '"')
    return s


def _int_or_none(s: str) -> int | None:
    s = _unquote(s)
    try:
        return int(s)
    except ValueError:
        return None


def read_identity_meta(path: str | os.PathLike) -> dict[str, IdentityMeta]:
    """``identity_meta.csv`` as class id -> :class:`IdentityMeta`.

    Robust to the real file's quirks: comma-plus-space separators, a trailing comma,
    a byte-order mark, blank lines, and names that contain commas or quotes, quoted or
    not. The first field is the class id and the last three are Sample_Num, Flag and
    Gender; the name is everything between, with one level of quotes removed. The
    header line (first field ``Class_ID``) is skipped. Raises ValueError naming the
    file (and line) when it is missing or a line has fewer than five fields.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"identity meta file not found: {path}")
    out: dict[str, IdentityMeta] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
        line = raw.strip()
        while line.endswith(","):
            line = line[:-1].rstrip()
        if not line:
            continue
        parts = line.split(",")
        if len(parts) < 5:
            raise ValueError(f"{path}:{lineno}: expected 5 fields (Class_ID, Name, ...), got {raw!r}")
        class_id = _unquote(parts[0])
        if class_id.lower() == "class_id":
            continue
        name = _unquote(",".join(parts[1:-3]))
        out[class_id] = IdentityMeta(
            class_id, name, _int_or_none(parts[-3]), _int_or_none(parts[-2]), _unquote(parts[-1])
        )
    return out


def read_image_list(path: str | os.PathLike) -> list[str]:
    """Relative image paths of a ``{split}_list.txt`` (blank lines and a missing final newline
    tolerated). Raises ValueError naming the file when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image list not found: {path}")
    return [line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()]


def read_loose_bb(path: str | os.PathLike) -> dict[str, tuple[float, float, float, float]]:
    """``loose_bb_{split}.csv`` as NAME_ID (``n000001/0001_01``, no ``.jpg``) -> (X, Y, W, H)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"bounding-box file not found: {path}")
    out = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip():
                continue
            if row[0].strip().upper() == "NAME_ID":
                continue
            try:
                if len(row) < 5:
                    raise ValueError("fewer than 4 numbers")
                out[row[0].strip()] = tuple(float(v) for v in row[1:5])
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: expected NAME_ID,X,Y,W,H, got {row} ({e})") from e
    return out


def square_box(bb, size, scale: float = LOOSE_BB_SCALE) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the square of side ``scale x max(W, H)`` centred on the
    box ``bb`` = (X, Y, W, H), shrunk to the image's shorter side if larger, and shifted
    inside the image ``size`` = (width, height)."""
    x, y, w, h = bb
    iw, ih = size
    side = min(scale * max(w, h), iw, ih)
    cx, cy = x + w / 2, y + h / 2
    left = min(max(cx - side / 2, 0.0), iw - side)
    top = min(max(cy - side / 2, 0.0), ih - side)
    return (left, top, left + side, top + side)


def resolve_crop(root: str | os.PathLike, crop: str) -> str:
    """``"auto"`` -> ``"loose_bb"`` when ``bb_landmark/loose_bb_{train,test}.csv`` both exist
    under ``root``, else ``"none"``; any other value is returned unchanged."""
    if crop != "auto":
        return crop
    bb = Path(root) / "bb_landmark"
    return "loose_bb" if all((bb / f"loose_bb_{s}.csv").is_file() for s in SPLITS) else "none"


def _image_size(path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise ValueError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"corrupt or unreadable image: {path} ({e})") from e


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class VGGFace2Sets(Dataset):
    """Sets of ``set_size`` images of one identity; the face counterpart of
    :class:`~sdn.data.shapenet.ShapeNetViews`, with the same API (``len``, items with
    ``images``, ``set_epoch``, ``view_choice``, ``images(index, views)``, ``fingerprint``).

    Args:
        root: dataset root (VGGFace2 layout).
        split: "train" or "test".
        set_size: n, images per set (>= 1). Identities with fewer images are skipped and
            counted in :attr:`skipped_identities` (their ids in :attr:`skipped`).
        resolution: output side in pixels.
        crop: "loose_bb", "mtcnn" or "none" (see the module docstring).
        random_views: True draws a random n-of-V subset per item (training; vary it with
            :meth:`set_epoch`); False a fixed, seeded choice per identity (evaluation).
        seed: seeds both choices (and the ``max_per_identity`` subset).
        max_per_identity: keep at most this many images of each identity (a seeded
            subset; 0 = all). Bounds the cache for the real data (~360 images/identity).
        cache_dir: decoded-image cache folder (default ``~/.cache/sdn-bench/images``);
            crop boxes are cached under ``<cache_dir>/boxes``.
        mtcnn_margin: facenet-pytorch's margin for crop="mtcnn".
        detector_device: where MTCNN runs.

    An item is a dict: ``images`` (n, 3, H, W) float32 in [0, 1]; ``views`` (n,) int64
    image indices within the identity; ``identity`` (class id), ``name`` (str);
    ``identity_index`` and ``index`` (int, equal).

    A flat per-image view for classifiers: :attr:`flat_paths`, :attr:`flat_labels`
    (identity indices), :meth:`flat_images`, :meth:`identity_rows`, or :meth:`flat`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        set_size: int = 8,
        resolution: int = 64,
        crop: str = "loose_bb",
        random_views: bool = True,
        seed: int = 0,
        max_per_identity: int = 0,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
        mtcnn_margin: int = MTCNN_MARGIN,
        detector_device: str = "cpu",
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"dataset root not found: {self.root}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        if set_size < 1:
            raise ValueError(f"set_size must be >= 1, got {set_size}")
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        if max_per_identity and max_per_identity < set_size:
            raise ValueError(f"max_per_identity ({max_per_identity}) is below the set size {set_size}")
        self.split, self.set_size, self.resolution, self.crop = split, set_size, resolution, crop
        self.random_views, self.seed, self.epoch = random_views, seed, 0
        self.max_per_identity, self.mtcnn_margin = max_per_identity, mtcnn_margin
        self.cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
        self.list_path = self.root / f"{split}_list.txt"
        self.bb_path = self.root / "bb_landmark" / f"loose_bb_{split}.csv"
        meta_path = self.root / "identity_meta.csv"
        self.meta = read_identity_meta(meta_path) if meta_path.is_file() else {}

        rel = read_image_list(self.list_path)
        if not rel:
            raise ValueError(f"{self.list_path}: split {split!r} is empty")
        groups: dict[str, list[str]] = {}
        for r in rel:
            ident, sep, _ = r.partition("/")
            if not sep:
                raise ValueError(f"{self.list_path}: {r!r} is not <identity>/<image>")
            groups.setdefault(ident, []).append(r)
        self.identities: list[Identity] = []
        self.skipped: list[str] = []
        self._rel: list[str] = []
        for ident in sorted(groups):
            files = sorted(set(groups[ident]))
            if max_per_identity and len(files) > max_per_identity:
                digest = hashlib.sha256(ident.encode()).digest()
                rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
                files = sorted(rng.choice(files, max_per_identity, replace=False).tolist())
            if len(files) < set_size:
                self.skipped.append(ident)
                continue
            name = self.meta[ident].name if ident in self.meta else ident
            paths = tuple(self.root / split / f for f in files)
            self.identities.append(Identity(ident, name, len(self.identities), paths))
            self._rel += files
        if not self.identities:
            raise ValueError(
                f"{self.list_path}: no identity has at least {set_size} images "
                f"({len(self.skipped)} identities skipped)"
            )
        self.flat_paths: list[Path] = [p for i in self.identities for p in i.paths]
        self.flat_labels = np.concatenate(
            [np.full(len(i.paths), i.index, dtype=np.int64) for i in self.identities]
        )
        self._offsets = np.cumsum([0] + [len(i.paths) for i in self.identities])
        self.crop_fallbacks = 0
        boxes = None if crop == "none" else self._boxes(progress, detector_device)
        self._pixels = cached_images(self.flat_paths, resolution, cache_dir, boxes=boxes, progress=progress)

    # -- crop boxes --------------------------------------------------------------------------

    def _boxes(self, progress: bool, detector_device: str) -> list[tuple]:
        """One crop box per flat image, computed once and cached on disk."""
        bb = None
        if self.crop == "loose_bb" or self.bb_path.is_file():
            bb = read_loose_bb(self.bb_path)  # raises naming the file when crop="loose_bb"
        bb_digest = hashlib.sha256(self.bb_path.read_bytes()).hexdigest() if bb is not None else "none"
        if self.crop == "loose_bb":
            settings = f"loose_bb|{LOOSE_BB_SCALE}|{bb_digest}"
        else:
            settings = f"mtcnn|{self.mtcnn_margin}|{MTCNN_SIZE}|{LOOSE_BB_SCALE}|{bb_digest}"
        key = files_fingerprint(self.flat_paths, 0, settings)
        path = self.cache_dir / "boxes" / f"{key}.npy"
        if path.is_file():
            arr = np.load(path)
            if arr.shape == (len(self.flat_paths), 5):
                self.crop_fallbacks = int(arr[:, 4].sum())
                return [tuple(float(v) for v in r[:4]) for r in arr]
        arr = np.zeros((len(self.flat_paths), 5), np.float64)
        detector = None
        if self.crop == "mtcnn":
            from facenet_pytorch import MTCNN  # imported lazily: only this crop needs it

            detector = MTCNN(image_size=MTCNN_SIZE, margin=self.mtcnn_margin, device=detector_device)
        desc = "detecting faces" if detector is not None else "reading image sizes"
        for row, (p, rel) in enumerate(
            tqdm(
                list(zip(self.flat_paths, self._rel, strict=True)),
                desc=desc,
                unit="img",
                disable=not progress,
            )
        ):
            name_id = rel.rsplit(".", 1)[0]
            if bb is not None and name_id not in bb and self.crop == "loose_bb":
                raise ValueError(f"{self.bb_path}: no loose box for {name_id}")
            if detector is None:
                arr[row, :4] = square_box(bb[name_id], _image_size(p))
            else:
                arr[row] = self._detect(detector, p, bb.get(name_id) if bb else None)
        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(path, buf.getvalue())
        self.crop_fallbacks = int(arr[:, 4].sum())
        return [tuple(float(v) for v in r[:4]) for r in arr]

    def _detect(self, detector, path: Path, loose) -> tuple:
        """(left, top, right, bottom, fell_back) of the MTCNN crop of ``path``."""
        if not path.is_file():
            raise ValueError(f"image not found: {path}")
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError(f"corrupt or unreadable image: {path} ({e})") from e
        iw, ih = img.size
        found, _ = detector.detect(img)
        if found is None or len(found) == 0:
            if loose is not None:
                return (*square_box(loose, (iw, ih)), 1.0)
            return (0.0, 0.0, float(iw), float(ih), 1.0)
        box = found[0]  # the largest (MTCNN's select_largest)
        if loose is not None:
            lb = (loose[0], loose[1], loose[0] + loose[2], loose[1] + loose[3])
            best = max(found, key=lambda b: _iou(b, lb))
            if _iou(best, lb) > 0:
                box = best
        # facenet-pytorch's extract_face: a margin in output pixels, then clip to the image.
        mx = self.mtcnn_margin * (box[2] - box[0]) / (MTCNN_SIZE - self.mtcnn_margin)
        my = self.mtcnn_margin * (box[3] - box[1]) / (MTCNN_SIZE - self.mtcnn_margin)
        return (
            float(int(max(box[0] - mx / 2, 0))),
            float(int(max(box[1] - my / 2, 0))),
            float(int(min(box[2] + mx / 2, iw))),
            float(int(min(box[3] + my / 2, ih))),
            0.0,
        )

    # -- the set API (as ShapeNetViews) -----------------------------------------------------------

    @property
    def skipped_identities(self) -> int:
        """How many identities of the split had fewer than ``set_size`` images."""
        return len(self.skipped)

    @property
    def names(self) -> list[str]:
        """Identity names (identity_meta.csv; the class id where the file has none), by index."""
        return [i.name for i in self.identities]

    @property
    def class_ids(self) -> list[str]:
        return [i.class_id for i in self.identities]

    def fingerprint(self) -> str:
        """sha256 (hex, 16 chars) of the split's content, the resolution and the crop settings:
        the content (:mod:`.content_hash`: relative path, size and bytes) of every file this
        loader reads for the split: ``<split>_list.txt``, ``identity_meta.csv``,
        ``bb_landmark/loose_bb_<split>.csv`` (a missing one counts as missing) and each used
        image. Same bytes give the same fingerprint on any machine and under any root."""
        h = hashlib.sha256(
            f"content-v1|{self.split}|{self.resolution}|{self.crop}|{LOOSE_BB_SCALE}|{self.mtcnn_margin}\n".encode()
        )
        for path in (self.list_path, self.root / "identity_meta.csv", self.bb_path, *self.flat_paths):
            update_with_file(h, path, self.root)
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.identities)

    def set_epoch(self, epoch: int) -> None:
        """Vary the random image choice per epoch, reproducibly (like DistributedSampler)."""
        self.epoch = epoch

    def view_choice(self, index: int) -> np.ndarray:
        """The image indices (n,) within identity ``index`` that its item uses now."""
        ident = self.identities[index]
        if self.random_views:
            rng = np.random.default_rng([self.seed, self.epoch, index])
        else:
            digest = hashlib.sha256(ident.class_id.encode()).digest()
            rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
        return rng.permutation(len(ident.paths))[: self.set_size]

    def images(self, index: int, views) -> torch.Tensor:
        """Images ``views`` (k,) of identity ``index`` as (k, 3, H, W) float32 in [0, 1]."""
        return self.flat_images(self._offsets[index] + np.asarray(views, dtype=np.int64))

    def __getitem__(self, index: int) -> dict:
        ident = self.identities[index]
        views = self.view_choice(index)
        return {
            "images": self.images(index, views),
            "views": torch.from_numpy(views.astype(np.int64)),
            "identity": ident.class_id,
            "name": ident.name,
            "identity_index": ident.index,
            "index": index,
        }

    # -- the flat per-image view --------------------------------------------------------------

    def identity_rows(self, index: int) -> np.ndarray:
        """Flat rows (positions in :attr:`flat_paths`) of identity ``index``'s images."""
        return np.arange(self._offsets[index], self._offsets[index + 1])

    def flat_images(self, rows) -> torch.Tensor:
        """Flat images ``rows`` (k,) as (k, 3, H, W) float32 in [0, 1]."""
        rows = np.asarray(rows, dtype=np.int64)
        pix = np.asarray(self._pixels[rows])  # (k, H, W, 3) uint8
        return torch.from_numpy(pix).permute(0, 3, 1, 2).float().div_(255.0)

    def flat(self) -> FaceImages:
        """A per-image Dataset over the same images (items: image, label, path)."""
        return FaceImages(self)


class FaceImages(Dataset):
    """Every image of a :class:`VGGFace2Sets` once: item ``i`` is a dict with ``image``
    (3, H, W) float32 in [0, 1], ``label`` (the identity index) and ``path`` (str)."""

    def __init__(self, sets: VGGFace2Sets):
        self.sets = sets
        self.paths, self.labels = sets.flat_paths, sets.flat_labels
        self.num_classes = len(sets.identities)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        return {
            "image": self.sets.flat_images([i])[0],
            "label": int(self.labels[i]),
            "path": str(self.paths[i]),
        }


def hold_out_identities(ds: VGGFace2Sets, count: int, seed: int, min_images: int = 2) -> np.ndarray:
    """Indices (k,) into ``ds.identities``, sorted, of ``count`` identities held out of training for
    validation: a seeded choice among those with at least ``min_images`` images. Training on the
    rest and validating on these keeps every choice (a checkpoint, a recipe) off the test split.
    Raises ValueError when fewer than ``count`` identities qualify or fewer than 2 would remain."""
    eligible = np.array([i.index for i in ds.identities if len(i.paths) >= min_images], dtype=np.int64)
    if len(eligible) < count or len(ds) - count < 2:
        raise ValueError(
            f"{ds.root}: {len(ds)} {ds.split} identities ({len(eligible)} with >= {min_images} images) "
            f"are too few to hold out {count} for validation and train on >= 2"
        )
    return np.sort(np.random.default_rng([seed, 1]).choice(eligible, count, replace=False))
