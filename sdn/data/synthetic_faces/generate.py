"""Write a synthetic VGGFace2 (DESIGN.md §3.2): procedural faces in the real on-disk layout.

``ROOT/`` holds:

- ``train/<id>/<image>_<face>.jpg`` and ``test/<id>/...``: identities ``n000001`` ...,
  disjoint between the splits (test ~ ``test_fraction`` of them, both non-empty);
  file names such as ``0001_01.jpg`` with, as in VGGFace2, occasional gaps in the
  image numbers and occasional face index ``02``; JPEG quality 90, 4:4:4;
- ``train_list.txt``, ``test_list.txt``: ``n000001/0001_01.jpg`` per line, relative
  to the split folder, sorted;
- ``identity_meta.csv``: ``Class_ID, Name, Sample_Num, Flag, Gender`` separated by
  comma-plus-space, names quoted (some contain a comma), Flag 1 = train, 0 = test;
- ``bb_landmark/loose_bb_{split}.csv`` (``NAME_ID,X,Y,W,H``, integers) and
  ``bb_landmark/loose_landmark_{split}.csv`` (``NAME_ID,P1X,P1Y,...,P5Y``: left eye,
  right eye, nose tip, left and right mouth corner, "left" meaning the image's left
  as in MTCNN), in pixels of the image with pixel (col j, row i) centred at
  (j + 0.5, i + 0.5); ``NAME_ID`` is ``n000001/0001_01``;
- not in VGGFace2: ``synthetic_meta_{split}.csv`` (per image: pose in degrees,
  expression, accessories, light, framing), ``synthetic_identities.csv`` (each
  identity's attributes) and ``generation.json`` (configuration and every run).

Each identity is a pure function of (seed, identity number) and each image of
(seed, identity number, image index): the same configuration gives byte-identical
files whatever the number of workers. An identity's folder is written under a
temporary name and renamed, so an interrupted run leaves only whole identities,
and a rerun skips them. ``splits`` limits a run to rendering the identities of some
splits; the tables (lists, meta, boxes, landmarks) are always written for every identity
(they need no rendering, and the loader reads ``identity_meta.csv`` and both
``loose_bb_*.csv``). Like ``workers`` it is not part of the recorded configuration, so a
later run with more splits adds the missing identities.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image
from tqdm import tqdm

from ...config import require_positive, strict_from_dict
from ...io import atomic_write_json, atomic_write_text
from ..generation import check_splits, generation_record
from .face_model import Identity, Variation, identity_record, sample_identity, sample_variation
from .render import annotate, render_face

GENERATOR_VERSION = 1
JPEG_QUALITY = 90
MIN_RESOLUTION = 32
SPLITS = ("train", "test")
BB_HEADER = "NAME_ID,X,Y,W,H"
LANDMARK_HEADER = "NAME_ID,P1X,P1Y,P2X,P2Y,P3X,P3Y,P4X,P4Y,P5X,P5Y"
META_HEADER = "Class_ID, Name, Sample_Num, Flag, Gender"
SYNTHETIC_META_FIELDS = (
    "yaw",
    "pitch",
    "roll",
    "smile",
    "mouth_open",
    "blink",
    "glasses",
    "hat",
    "background",
    "light_azimuth",
    "light_elevation",
    "head_fraction",
)


@dataclass
class FacesConfig:
    """What defines the dataset's content (``workers`` only changes the speed)."""

    identities: int = 500
    images_per_identity: int = 24
    resolution: int = 64
    test_fraction: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        require_positive(self, ("images_per_identity",))
        if self.identities < 2:
            raise ValueError(f"identities must be >= 2 (one each for train and test), got {self.identities}")
        if self.identities > 999_999:
            raise ValueError(f"identities must be <= 999999 (ids are n + 6 digits), got {self.identities}")
        if self.images_per_identity > 4999:
            raise ValueError(
                f"images_per_identity must be <= 4999 (image numbers are 4 digits), "
                f"got {self.images_per_identity}"
            )
        if self.resolution < MIN_RESOLUTION:
            raise ValueError(f"resolution must be >= {MIN_RESOLUTION} pixels, got {self.resolution}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")

    @classmethod
    def from_dict(cls, data: dict) -> FacesConfig:
        return strict_from_dict(cls, data, "faces config")


def class_id(number: int) -> str:
    """VGGFace2-style identity folder name of identity ``number`` (1-based): ``n000001``."""
    return f"n{number:06d}"


def person_name(number: int, identities: int) -> str:
    """Display name; every tenth (3, 13, ...) contains a comma, as some VGGFace2 names do."""
    name = f"Synthetic_Person_{number:0{max(4, len(str(identities)))}d}"
    return f"{name}, Jr." if number % 10 == 3 else name


def _rng(seed: int, number: int, *tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, number, *tag]))


def identity_splits(cfg: FacesConfig) -> dict[int, str]:
    """Split ("train" or "test") of each identity number 1..N: a seeded ``test_fraction`` of
    the identities (at least 1, at most N - 1) is held out for test."""
    n = cfg.identities
    n_test = min(n - 1, max(1, round(cfg.test_fraction * n)))
    order = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2**31])).permutation(n)
    test = {int(i) + 1 for i in order[:n_test]}
    return {k: "test" if k in test else "train" for k in range(1, n + 1)}


def identity_images(cfg: FacesConfig, number: int) -> tuple[Identity, list[tuple[str, Variation]]]:
    """Identity ``number``'s attributes and its images' file stems (``0001_01``) and variations."""
    ident = sample_identity(_rng(cfg.seed, number, 0))
    names = _rng(cfg.seed, number, 1)
    images, image_no = [], 0
    for j in range(cfg.images_per_identity):
        image_no += 1 + int(names.random() < 0.15)
        face = 2 if names.random() < 0.08 else 1
        images.append((f"{image_no:04d}_{face:02d}", sample_variation(_rng(cfg.seed, number, 2, j))))
    return ident, images


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def identity_records(cfg: FacesConfig, number: int) -> tuple[Identity, list]:
    """Identity ``number``'s attributes and one (file stem, annotation, variation) per image
    in file order, without rendering."""
    ident, images = identity_images(cfg, number)
    return ident, [(stem, annotate(ident, var, cfg.resolution), var) for stem, var in images]


def write_identity(cfg: FacesConfig, number: int, split: str, root: Path) -> tuple[bool, Identity, list]:
    """Render identity ``number`` into ``root/split`` unless it is already there.

    Returns whether it was generated and its :func:`identity_records`.
    """
    ident, records = identity_records(cfg, number)
    final = root / split / class_id(number)
    if final.is_dir():
        return False, ident, records
    tmp = root / split / f".tmp-{class_id(number)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for stem, _, var in records:
        (tmp / f"{stem}.jpg").write_bytes(_jpeg(render_face(ident, var, cfg.resolution)))
    os.rename(tmp, final)
    return True, ident, records


def _work(args) -> tuple[int, bool, Identity, list]:
    cfg, number, split, root = args
    return (number, *write_identity(cfg, number, split, Path(root)))


def _fmt(v) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _write_tables(
    root: Path, cfg: FacesConfig, split_of: dict[int, str], people: dict[int, tuple[Identity, list]]
) -> None:
    """The list, meta, box, landmark and synthetic-metadata files from every identity's records."""
    lines = {s: {"list": [], "bb": [BB_HEADER], "lm": [LANDMARK_HEADER]} for s in SPLITS}
    synth = {s: [",".join(["NAME_ID", *SYNTHETIC_META_FIELDS])] for s in SPLITS}
    meta = [META_HEADER]
    attrs = []
    for number in sorted(people):
        split, cid = split_of[number], class_id(number)
        ident, records = people[number]
        attrs.append({"Class_ID": cid, **identity_record(ident)})
        meta.append(
            f'{cid}, "{person_name(number, cfg.identities)}", {len(records)}, '
            f"{int(split == 'train')}, {ident.gender}"
        )
        for stem, ann, var in records:
            name_id = f"{cid}/{stem}"
            out = lines[split]
            out["list"].append(f"{name_id}.jpg")
            out["bb"].append(f"{name_id},{','.join(str(v) for v in ann.box)}")
            out["lm"].append(f"{name_id},{','.join(f'{v:.2f}' for v in ann.landmarks.ravel())}")
            synth[split].append(",".join([name_id, *(_fmt(getattr(var, f)) for f in SYNTHETIC_META_FIELDS)]))
    for s in SPLITS:
        atomic_write_text(root / f"{s}_list.txt", "\n".join(lines[s]["list"]) + "\n")
        atomic_write_text(root / "bb_landmark" / f"loose_bb_{s}.csv", "\n".join(lines[s]["bb"]) + "\n")
        atomic_write_text(root / "bb_landmark" / f"loose_landmark_{s}.csv", "\n".join(lines[s]["lm"]) + "\n")
        atomic_write_text(root / f"synthetic_meta_{s}.csv", "\n".join(synth[s]) + "\n")
    atomic_write_text(root / "identity_meta.csv", "\n".join(meta) + "\n")
    keys = list(attrs[0])
    rows = [",".join(keys)] + [",".join(str(a[k]) for k in keys) for a in attrs]
    atomic_write_text(root / "synthetic_identities.csv", "\n".join(rows) + "\n")


def _versions() -> dict:
    return {
        "sdn_bench_faces_generator": GENERATOR_VERSION,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }


def generate_faces(
    out: str | os.PathLike,
    cfg: FacesConfig,
    workers: int = 1,
    progress: bool = True,
    splits: tuple[str, ...] = SPLITS,
) -> dict:
    """Generate (or resume) the identities of ``splits`` of the dataset under ``out`` (the
    tables are written whole); returns this run's record (``identities_generated``,
    ``identities_skipped``, ``images_per_second``, ``wall_s``, ...)."""
    cfg.validate()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_splits(splits, SPLITS)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    record = generation_record(root, asdict(cfg), GENERATOR_VERSION, generator="sdn-bench faces")
    atomic_write_json(root / "generation.json", record)
    for stale in root.glob("*/.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    split_of = identity_splits(cfg)
    for s in SPLITS:
        (root / s).mkdir(exist_ok=True)
    tasks = [(cfg, k, split_of[k], str(root)) for k in split_of if split_of[k] in splits]
    start = time.time()
    made = 0
    people = {k: identity_records(cfg, k) for k in split_of if split_of[k] not in splits}
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            tqdm(total=len(tasks) * cfg.images_per_identity, desc="faces", unit="img", disable=not progress)
        )
        if workers == 1:
            results = map(_work, tasks)
        else:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            results = pool.imap_unordered(_work, tasks, chunksize=1)
        for number, did, ident, records in results:
            made += did
            people[number] = (ident, records)
            bar.update(cfg.images_per_identity)
    _write_tables(root, cfg, split_of, people)
    wall = time.time() - start
    images = made * cfg.images_per_identity
    record["runs"].append(
        {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)),
            "wall_s": round(wall, 2),
            "identities_generated": made,
            "identities_skipped": len(tasks) - made,
            "images_generated": images,
            "images_per_second": round(images / wall, 2) if made else None,
            "splits": [s for s in SPLITS if s in splits],
            "workers": workers,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "versions": _versions(),
        }
    )
    atomic_write_json(root / "generation.json", record)
    return record["runs"][-1]
